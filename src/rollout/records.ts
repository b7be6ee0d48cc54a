/**
 * The journal's record types: the crash-safety contract, checked by the compiler. Every record is
 * one of these bodies plus `seq` (1, 2, …) and `at` (ISO 8601, when it was appended). A field
 * added later is optional here, so journals written before it still fold (state.ts fills it in).
 *
 * The embedded runner writes run-*, wave-*, control, host-key, switch and audit records. In a
 * multi-site rollout the coordinator also writes `job` (a switch handed to its site's queue),
 * `site-result` (what the site's agent reported, its switch records inside) and `site-halt`; each
 * agent writes `job`, host-key, switch and audit records to its own journal, one per rollout.
 */

import type { SessionFacts } from '../switches/index.js';
import type { MaintenanceWindow } from './window.js';

export type SwitchOutcome = 'verified' | 'skipped' | 'failed';
export type OutcomeCounts = Record<SwitchOutcome | 'pending', number>;
export type RunOutcome = 'completed' | 'halted' | 'aborted' | 'window-closed';

export interface Hashes {
  catalogSha256: string | null;
  serverSha256: string | null;
  switchDigests: Record<string, string>;
  /** The algorithm the switch's own hash was compared with. */
  switchAlgorithm: string | null;
}

/** What the pre-check learnt (or why it could not reach the switch). */
export interface PrecheckRecord {
  reachable: boolean;
  error?: string;
  model?: string | null;
  version?: string | null;
  freeBytes?: number | null;
  onFlash?: string | null;
  /** The SSH algorithms agreed. */
  ssh?: SessionFacts['algorithms'] | null;
  login?: SessionFacts['authMethod'] | null;
  prompt?: string | null;
}

/** The server's audit of one transfer to a switch (a subset of server/context.ts TransferRecord). */
export interface AuditEntry {
  client: string;
  user: string;
  path: string;
  offset: number;
  bytes: number;
  sha256: string | null;
  result: 'complete' | 'aborted';
  code: number;
  durationMs: number;
  /** The server's port of the data connection (in the passive range), or null without one; absent in older journals. */
  dataPort?: number | null;
  commands: string[];
}

/** Who started or resumed a run, and on which host: the report's header names them. */
export interface Operator {
  /** The account the runner ran as. */
  user: string;
  host: string;
  /** The person behind `sudo` (SUDO_USER), when it was not the account itself. */
  sudoUser?: string;
}

/** A catalog image the rollout installs, as the catalog had it when the run started. */
export interface StartImage {
  file: string;
  platform: string;
  version: string;
  size: number;
  sha256: string;
  md5?: string;
  sha512?: string;
  sha1?: string;
}

/** One switch as the rollout started it: its wave, image, and (multi-site) site. */
export interface StartSwitch {
  name: string;
  address: string;
  resolvedAddress?: string | null;
  driver?: string;
  wave: number;
  image: string;
  site?: string | null;
}

/** The steps of one switch, in the order they are journaled. */
export type SwitchStep =
  | { phase: 'precheck' }
  | { phase: 'prechecked'; precheck: PrecheckRecord }
  | { phase: 'transfer'; user: string; source: string }
  | { phase: 'transferred'; ok: boolean; message: string; bytes: number | null; durationMs: number; notes?: string[] }
  | { phase: 'verify' }
  | { phase: 'done'; outcome: SwitchOutcome; reason: string; verdict: string | null; hashes: Hashes | null };

export type SwitchRecordBody = { t: 'switch'; name: string } & SwitchStep;
export type AuditRecordBody = { t: 'audit'; name: string; record: AuditEntry };
/** A key first seen under trust-on-first-use: the SSH host key, or (`service: 'https'`) a REST API's certificate. */
export type HostKeyRecordBody = { t: 'host-key'; name: string; address: string | null; fingerprint: string; service?: 'https' };

/** A switch's own records, as an agent journals them and posts them back to the coordinator. */
export type SiteSwitchRecord = (SwitchRecordBody | AuditRecordBody | HostKeyRecordBody) & { seq: number; at: string };

export type JournalBody =
  | {
      t: 'run-start';
      runId: string;
      planPath: string;
      planDigest: string;
      inventoryPath: string;
      waves: string[][];
      switches: StartSwitch[];
      /** Multi-site: the job engine (password removed) and the sites the rollout uses. */
      engine?: { url: string; sites: string[] };
      /** Who ran it, from which host (journals before this field: unknown). */
      operator?: Operator;
      /** The images the plan installs, with their catalog version and digests. */
      images?: StartImage[];
      /** The embedded FTP server the switches pulled from (not on a job engine: each site has its own). */
      server?: { address: string; port: number; pasvRange: string; http?: number | null; https?: number | null };
      /** The plan's maintenance window, or null for none. */
      window?: MaintenanceWindow | null;
      concurrency?: number;
      /** Switches in the canary wave (0: no canary). */
      canary?: number;
    }
  | { t: 'run-resume'; pid: number; operator?: Operator }
  | { t: 'wave-start'; wave: number; switches: number }
  | { t: 'wave-end'; wave: number; counts: OutcomeCounts }
  | { t: 'control'; command: 'pause' | 'resume' | 'abort' }
  | { t: 'run-end'; outcome: RunOutcome; reason: string; counts: OutcomeCounts }
  | HostKeyRecordBody
  | SwitchRecordBody
  | AuditRecordBody
  /** A switch handed to its site's queue (coordinator), or received from it (agent). */
  | { t: 'job'; name: string; site: string; jobId: string; rolloutId: string; wave: number; image: string; address?: string; driver?: string }
  /** The coordinator: what a site's agent reported for one switch, its records inside. */
  | { t: 'site-result'; name: string; site: string; jobId: string; records: SiteSwitchRecord[] }
  /** The coordinator: a site crossed its own failure threshold; its queue is paused, the others go on. */
  | { t: 'site-halt'; site: string; reason: string };

export type JournalRecord = JournalBody & { seq: number; at: string };
export type RecordType = JournalBody['t'];
