/**
 * What travels through the job engine between the coordinator and a site's agent: plain data,
 * and never a secret. The switch's SSH credentials are references (passwordEnv, passwordFile) the
 * agent resolves on its own host; the one-time FTP credentials are minted by the agent and never
 * leave it (BullMQ stores job data in clear text: its production guide).
 */
import { createHash } from 'node:crypto';
import { resultsQueue } from '../engine/index.js';
import type { InventorySwitch } from './inventory.js';
import type { PlannedSwitch } from './plan.js';
import type { SiteSwitchRecord } from './records.js';
import type { SwitchSettings } from './transfer.js';
import type { MaintenanceWindow } from './window.js';

/** A rollout ID as it names files and queues (a UUID): nothing that could climb out of a directory. */
export const ROLLOUT_ID = /^[A-Za-z0-9-]{1,64}$/;

/** The version of the job and result shapes; an agent refuses jobs of a version it does not know. */
export const SITE_JOB_VERSION = 1;

/** "Process this switch at this site": one job in `swfw.site.<site>`. */
export interface TransferJobData {
  v: typeof SITE_JOB_VERSION;
  rolloutId: string;
  site: string;
  name: string;
  planned: PlannedSwitch;
  /** The image as the coordinator's catalog has it: the site's catalog must hold the same bytes. */
  image: { file: string; sha256: string; size: number; version: string };
  switch: InventorySwitch;
  settings: SwitchSettings;
  /** The site's maintenance window (in the site's time zone), or null: always open. */
  window: MaintenanceWindow | null;
  /** Where the agent posts the result. */
  resultQueue: string;
}

/** What the agent reports for one switch: its journal records, from which the coordinator folds the verdict. */
export interface TransferResult {
  v: typeof SITE_JOB_VERSION;
  rolloutId: string;
  site: string;
  name: string;
  jobId: string;
  /** The agent that worked on it: host and pid. */
  agent: string;
  /** Every record of the switch in the agent's journal, the `done` one last. */
  records: SiteSwitchRecord[];
  /** Set instead of a verdict when the switch was not started and will not be (its window ended): it stays pending. */
  notStarted?: string;
}

/**
 * The job ID of a switch in a rollout: `r<rolloutId>.<name>`, so the coordinator's add is
 * idempotent (a resumed coordinator re-adds its wave and nothing runs twice). BullMQ forbids `:`
 * in IDs; a name with characters outside `[A-Za-z0-9._-]` is replaced by a hash of it.
 */
export function transferJobId(rolloutId: string, name: string): string {
  const safe = /^[A-Za-z0-9._-]{1,100}$/.test(name) ? name : `h${createHash('sha256').update(name).digest('hex').slice(0, 24)}`;
  return `r${rolloutId}.${safe}`;
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const isText = (v: unknown, max = 1024): v is string => typeof v === 'string' && v.length > 0 && v.length <= max;

/**
 * What is wrong with a job's data, or null. The agent checks every job before touching anything:
 * job data comes from Redis, and a job written by anyone but the coordinator (a bug, an older
 * swfw, someone with write access) must neither crash the agent nor steer where it writes or
 * posts. Only the shape is checked here; what the job may make the agent do is the agent's call.
 */
export function transferJobProblem(data: unknown): string | null {
  if (!isObject(data)) return 'not an object';
  if (data['v'] !== SITE_JOB_VERSION) return `version ${String(data['v'])} (this agent reads ${SITE_JOB_VERSION})`;
  if (typeof data['rolloutId'] !== 'string' || !ROLLOUT_ID.test(data['rolloutId'])) return 'rolloutId is not a rollout ID';
  if (!isText(data['site'], 63) || !isText(data['name'], 253)) return 'site or name missing';
  if (data['resultQueue'] !== resultsQueue(data['rolloutId'], data['site'])) return "resultQueue is not the rollout's results queue for the site";
  const planned = data['planned'];
  if (!isObject(planned) || !isText(planned['image']) || typeof planned['wave'] !== 'number' || !isText(planned['targetVersion'], 256)) return 'planned is incomplete';
  const image = data['image'];
  if (!isObject(image) || !isText(image['file']) || typeof image['sha256'] !== 'string' || !/^[0-9a-f]{64}$/.test(image['sha256'])) return 'image is incomplete';
  const sw = data['switch'];
  if (!isObject(sw) || !isText(sw['address'], 253) || !isText(sw['driver'], 64) || typeof sw['port'] !== 'number' || !isObject(sw['credentials']) || !isText(sw['credentials']['username'], 256)) return 'switch is incomplete';
  const settings = data['settings'];
  if (!isObject(settings) || typeof settings['pullTimeoutMs'] !== 'number' || typeof settings['sshTimeoutMs'] !== 'number' || typeof settings['credentialMinutes'] !== 'number' || !Array.isArray(settings['sshWeakAlgorithms'])) return 'settings are incomplete';
  if (settings['hostKeys'] !== 'pinned' && settings['hostKeys'] !== 'trust-on-first-use') return 'settings.hostKeys is not a policy';
  return null;
}

/** The record types a result may carry: the switch's own steps, its audit, its host key. */
const RESULT_RECORD_TYPES = new Set(['switch', 'audit', 'host-key']);
const SWITCH_PHASES = new Set(['precheck', 'prechecked', 'transfer', 'transferred', 'verify', 'done']);

/**
 * What is wrong with a result, for the switch and site it must answer, or null. Checked before
 * the coordinator journals it: a result is data from Redis, and only the switch's own records,
 * in their own shapes, may reach the fold (a forged one must not set another switch's verdict,
 * or leave a record the fold cannot read).
 */
export function transferResultProblem(data: unknown, expect: { rolloutId: string; name: string; site: string; jobId: string }): string | null {
  if (!isObject(data)) return 'not an object';
  if (data['v'] !== SITE_JOB_VERSION) return `version ${String(data['v'])}`;
  if (data['rolloutId'] !== expect.rolloutId || data['name'] !== expect.name || data['site'] !== expect.site || data['jobId'] !== expect.jobId) return 'it does not answer the job the coordinator added for this switch';
  if (data['notStarted'] !== undefined) return typeof data['notStarted'] === 'string' ? null : 'notStarted is not text';
  const records = data['records'];
  if (!Array.isArray(records) || records.length === 0 || records.length > 10_000) return 'records is not a list of records';
  for (const r of records as unknown[]) {
    if (!isObject(r) || typeof r['t'] !== 'string' || !RESULT_RECORD_TYPES.has(r['t']) || r['name'] !== expect.name || typeof r['at'] !== 'string') return 'a record is not one of the switch\'s own';
    if (r['t'] === 'switch' && (typeof r['phase'] !== 'string' || !SWITCH_PHASES.has(r['phase']))) return 'a switch record has no known phase';
    if (r['t'] === 'switch' && r['phase'] === 'done' && !['verified', 'skipped', 'failed'].includes(String(r['outcome']))) return 'a verdict has no known outcome';
    if (r['t'] === 'audit' && !isObject(r['record'])) return 'an audit record is empty';
  }
  const last = records.at(-1) as Record<string, unknown>;
  if (last['t'] !== 'switch' || last['phase'] !== 'done') return 'the last record is not a verdict';
  return null;
}

/** The ID of a job's result: posting it twice adds it once. */
export const resultJobId = (jobId: string): string => `${jobId}.r`;
