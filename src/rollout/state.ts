import type { AuditEntry, Hashes, JournalRecord, Operator, OutcomeCounts, PrecheckRecord, StartSwitch, SwitchOutcome, SwitchStep } from './records.js';

export type { Hashes, SwitchOutcome } from './records.js';

export interface SwitchState {
  name: string;
  /** As the inventory wrote it: an address or a DNS name. */
  address: string;
  /** What the name resolved to when the rollout started (journals before this field: the address). */
  resolvedAddress: string | null;
  /** The driver (platform CLI) of the switch; null in journals from before it was recorded. */
  driver: string | null;
  wave: number;
  image: string;
  /** Multi-site: the site whose agent works on the switch; null in a single-site rollout. */
  site: string | null;
  /** Multi-site: the job ID of the switch in its site's queue. */
  jobId: string | null;
  /** The last phase journaled: precheck, transfer, transferred, verify, done. */
  phase: SwitchStep['phase'] | null;
  outcome: SwitchOutcome | null;
  attempts: number;
  transfers: number;
  precheck: PrecheckRecord | null;
  bytes: number | null;
  durationMs: number | null;
  verdict: string | null;
  reason: string | null;
  hashes: Hashes | null;
  /** When its latest attempt began (its pre-check: the SSH connect); null before any. */
  startedAt: string | null;
  /** When its latest transfer was asked for, and when it ended. */
  transferStartedAt: string | null;
  transferredAt: string | null;
  /** When the verdict was journaled (the agent's clock, for a multi-site switch). */
  doneAt: string | null;
  /** Questions the switch asked during its copy and how they were answered ("declined to erase the flash"). */
  notes: string[];
  audit: AuditEntry[];
}

export interface RolloutState {
  runId: string | null;
  start: Extract<JournalRecord, { t: 'run-start' }> | null;
  waves: string[][];
  wavesDone: Set<number>;
  switches: Map<string, SwitchState>;
  control: string | null;
  end: Extract<JournalRecord, { t: 'run-end' }> | null;
  /** Multi-site: sites halted by their own failure threshold, and why. */
  haltedSites: Map<string, string>;
  /** When each wave first started (a resumed run starts its unfinished wave again: the first one counts). */
  waveStartedAt: Map<number, string>;
  /** Every time a runner took the rollout up again, by whom. */
  resumes: { at: string; pid: number; operator: Operator | null }[];
}

function emptyState(): RolloutState {
  return { runId: null, start: null, waves: [], wavesDone: new Set(), switches: new Map(), control: null, end: null, haltedSites: new Map(), waveStartedAt: new Map(), resumes: [] };
}

/** Folds the journal into the current state; pure, so status and resume agree by construction. */
export function foldJournal(records: readonly JournalRecord[]): RolloutState {
  const state = emptyState();
  for (const r of records) applyRecord(state, r);
  return state;
}

/**
 * The state of a journal that is still growing, folded incrementally: each record is applied once,
 * in order, by the same applyRecord as foldJournal. A running rollout asks for its state after
 * every switch; folding the whole journal each time cost O(records²) (3 s of CPU for 200 switches).
 */
export class JournalFold {
  private readonly live = emptyState();
  private applied = 0;

  constructor(private readonly records: readonly JournalRecord[]) {}

  /** The state after every record appended so far. Later appends update the same object. */
  get state(): RolloutState {
    while (this.applied < this.records.length) applyRecord(this.live, this.records[this.applied++]!);
    return this.live;
  }
}

function applyRecord(state: RolloutState, r: JournalRecord): void {
  switch (r.t) {
    case 'run-start': {
      state.runId = r.runId;
      state.start = r;
      state.waves = r.waves;
      for (const s of r.switches) state.switches.set(s.name, newSwitchState(s));
      break;
    }
    case 'run-resume':
      state.end = null;
      state.resumes.push({ at: r.at, pid: r.pid, operator: r.operator ?? null });
      break;
    case 'wave-start':
      if (!state.waveStartedAt.has(r.wave)) state.waveStartedAt.set(r.wave, r.at);
      break;
    case 'wave-end':
      state.wavesDone.add(r.wave);
      break;
    case 'control':
      state.control = r.command;
      break;
    case 'run-end':
      state.end = r;
      break;
    case 'job': {
      // An agent's journal learns its switches from their jobs; a coordinator's knew them at start.
      let s = state.switches.get(r.name);
      if (!s) {
        s = newSwitchState({ name: r.name, address: r.address ?? '', driver: r.driver, wave: r.wave, image: r.image, site: r.site });
        state.switches.set(r.name, s);
      }
      s.site = r.site;
      s.jobId = r.jobId;
      break;
    }
    case 'site-result': {
      const s = state.switches.get(r.name);
      // A result posted twice (a redelivered job, a coordinator restarted before it acknowledged
      // the first) is folded once: the first one that ends the switch wins.
      if (!s || s.outcome !== null || !Array.isArray(r.records)) break;
      // Only the switch's own records (the coordinator checks this before journaling; the fold
      // holds to it too, so no journal can set another switch's verdict or the rollout's end).
      for (const inner of r.records) {
        if ((inner.t === 'switch' || inner.t === 'audit' || inner.t === 'host-key') && inner.name === r.name) applyRecord(state, inner);
      }
      break;
    }
    case 'site-halt':
      state.haltedSites.set(r.site, r.reason);
      break;
    case 'switch':
      applyStep(state.switches.get(r.name), r, r.at);
      break;
    case 'audit':
      state.switches.get(r.name)?.audit.push(r.record);
      break;
    case 'host-key':
      break;
    default: {
      // A record type this version does not know (a newer swfw wrote it): skipped, as before.
      const unknown: never = r;
      void unknown;
    }
  }
}

function applyStep(s: SwitchState | undefined, step: SwitchStep, at: string): void {
  if (!s) return;
  s.phase = step.phase;
  switch (step.phase) {
    case 'precheck':
      s.attempts++;
      s.outcome = null;
      s.startedAt = at;
      s.transferStartedAt = null;
      s.transferredAt = null;
      s.doneAt = null;
      break;
    case 'prechecked':
      s.precheck = step.precheck;
      break;
    case 'transfer':
      s.transfers++;
      s.transferStartedAt = at;
      break;
    case 'transferred':
      s.bytes = step.bytes ?? s.bytes;
      s.durationMs = step.durationMs;
      s.transferredAt = at;
      s.notes = step.notes ?? [];
      break;
    case 'done':
      s.outcome = step.outcome;
      s.verdict = step.verdict ?? null;
      s.reason = step.reason;
      s.hashes = step.hashes ?? s.hashes;
      s.doneAt = at;
      break;
    case 'verify':
      break;
  }
}

function newSwitchState(s: StartSwitch): SwitchState {
  return {
    name: s.name,
    address: s.address,
    resolvedAddress: s.resolvedAddress === undefined ? s.address : s.resolvedAddress,
    driver: s.driver ?? null,
    wave: s.wave,
    image: s.image,
    site: s.site ?? null,
    jobId: null,
    phase: null,
    outcome: null,
    attempts: 0,
    transfers: 0,
    precheck: null,
    bytes: null,
    durationMs: null,
    verdict: null,
    reason: null,
    hashes: null,
    startedAt: null,
    transferStartedAt: null,
    transferredAt: null,
    doneAt: null,
    notes: [],
    audit: [],
  };
}

export function countOutcomes(switches: Iterable<SwitchState>): OutcomeCounts {
  const counts = { verified: 0, skipped: 0, failed: 0, pending: 0 };
  for (const s of switches) counts[s.outcome ?? 'pending']++;
  return counts;
}
