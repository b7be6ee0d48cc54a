/**
 * `swfw agent`: the daemon at one site of a multi-site rollout. It serves the site's images on the
 * site's port 21 and passive range (the same hardened FirmwareServer as `swfw serve`), takes the
 * jobs of its site's queue, and works on each switch with the same processSwitch as the embedded
 * runner. It journals every step in its own journal (fdatasync), one file per rollout, and posts
 * each verdict to the rollout's results queue.
 *
 * Exactly one transfer per switch, whatever the engine redelivers (a lease lost over the WAN, a
 * crashed agent, a partition):
 * - a job whose switch is running in this process attaches to that run (no second copy);
 * - a job whose switch already has a verdict in the journal gets that verdict again, untouched;
 * - a job whose switch was left mid-way by a process that died is pre-checked again, as `resume`
 *   does; the pre-check finds the image on flash when the dead process's copy completed.
 */
import { mkdirSync } from 'node:fs';
import { basename } from 'node:path';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { describeError } from '../core/errors.js';
import { cidrContains, type Cidr } from '../core/address.js';
import type { Logger } from '../core/logger.js';
import type { CatalogEntry } from '../catalog/index.js';
import { resultJobId, ROLLOUT_ID, SITE_JOB_VERSION, transferJobProblem, type TransferJobData, type TransferResult } from './siteJobs.js';
import { resultsQueue, siteQueue, type Consumer, type EngineJob, type JobEngine } from '../engine/index.js';
import type { FirmwareServer } from '../server/server.js';
import type { SwitchDriver } from '../switches/index.js';
import { Journal } from './journal.js';
import type { SiteSwitchRecord } from './records.js';
import { JournalFold } from './state.js';
import { GrantDesk, processSwitch, type SwitchJob, type SwitchWorkContext } from './transfer.js';
import { nextWindow } from './window.js';

export interface AgentOptions {
  site: string;
  engine: JobEngine;
  /** The running FTP server of the site. */
  server: FirmwareServer;
  /** The address the site's switches reach that server at. */
  serverAddress: string;
  /** Passive ports of the server: at most this many switches between PASV and their data connection. */
  passivePorts: number;
  /** The site's catalog. */
  findImage: (file: string) => CatalogEntry | undefined;
  /** Journals, one per rollout: `<stateDir>/rollouts/<rolloutId>.jsonl`. */
  stateDir: string;
  /** Switches this agent works on at once (the queue's global concurrency, set by the coordinator, may be lower). */
  concurrency: number;
  /** The lease on a job, ms: a job whose agent stops renewing it for this long is redelivered. */
  lockDurationMs: number;
  logger: Logger;
  env?: NodeJS.ProcessEnv;
  now?: () => number;
  driverFor?: (name: string) => SwitchDriver;
  /**
   * The networks this site's switches are in: a job naming a switch outside them is refused
   * before any SSH (a forged job could otherwise make the agent log in elsewhere with the
   * credentials it references). Empty: any address.
   */
  switchNetworks?: readonly Cidr[];
  /** The work on one switch; default processSwitch. The scale benchmark gives a short sleep here. */
  work?: (ctx: SwitchWorkContext, job: SwitchJob) => Promise<unknown>;
}

interface RolloutJournal {
  journal: Journal;
  fold: JournalFold;
}

export class SiteAgent {
  private readonly desk: GrantDesk;
  private readonly journals = new Map<string, RolloutJournal>();
  /** Switches being worked on in this process, by `rolloutId/name`: a redelivered job attaches here. */
  private readonly running = new Map<string, Promise<SiteSwitchRecord[]>>();
  private consumer: Consumer | null = null;
  private forceStop: () => void = () => {};
  private readonly forced = new Promise<void>((resolve) => (this.forceStop = resolve));
  private readonly now: () => number;
  private readonly logger: Logger;
  readonly agentId = `${hostname()}/${process.pid}`;

  constructor(private readonly options: AgentOptions) {
    this.now = options.now ?? Date.now;
    this.logger = options.logger.child({ component: 'agent', site: options.site });
    this.desk = new GrantDesk(options.server, Math.min(options.concurrency, options.passivePorts), this.logger);
    mkdirSync(join(options.stateDir, 'rollouts'), { recursive: true, mode: 0o700 });
  }

  /**
   * Makes a stop() under way stop waiting (a second signal): for running switches, whose jobs are
   * redelivered after their lease and pre-checked again, and for an engine that does not answer.
   */
  stopNow(): void {
    this.forceStop();
  }

  /** Starts taking the site's jobs. */
  async start(): Promise<void> {
    const o = this.options;
    this.consumer = await o.engine.work<TransferJobData>(siteQueue(o.site), { concurrency: o.concurrency, lockDurationMs: o.lockDurationMs }, (job) => this.handle(job));
    this.logger.info('agent taking jobs', { queue: siteQueue(o.site), concurrency: o.concurrency });
  }

  /**
   * Stops taking jobs and waits for the running ones (their transfers finish and their results
   * are posted); revokes every grant; closes the journals. The server is the caller's to stop.
   */
  async stop(): Promise<void> {
    await Promise.race([this.consumer?.close(), this.forced]);
    this.consumer = null;
    await Promise.race([Promise.allSettled([...this.running.values()]), this.forced]);
    this.desk.close();
    await Promise.all([...this.journals.values()].map((j) => j.journal.close()));
    this.journals.clear();
  }

  private journalFor(rolloutId: string): RolloutJournal {
    let entry = this.journals.get(rolloutId);
    if (!entry) {
      if (!ROLLOUT_ID.test(rolloutId)) throw new Error(`not a rollout ID: ${rolloutId}`);
      const journal = Journal.open(join(this.options.stateDir, 'rollouts', `${rolloutId}.jsonl`), this.now);
      entry = { journal, fold: new JournalFold(journal.records) };
      this.journals.set(rolloutId, entry);
    }
    return entry;
  }

  private recordsOf(journal: Journal, name: string): SiteSwitchRecord[] {
    return journal.records.filter((r): r is SiteSwitchRecord => (r.t === 'switch' || r.t === 'audit' || r.t === 'host-key') && r.name === name);
  }

  private async post(job: EngineJob<TransferJobData>, records: SiteSwitchRecord[], notStarted?: string): Promise<void> {
    const d = job.data;
    const result: TransferResult = { v: SITE_JOB_VERSION, rolloutId: d.rolloutId, site: d.site, name: d.name, jobId: job.id, agent: this.agentId, records, ...(notStarted ? { notStarted } : {}) };
    // Always this site's results queue of the rollout (transferJobProblem holds resultQueue to it).
    await this.options.engine.add(resultsQueue(d.rolloutId, this.options.site), 'result', result, { jobId: resultJobId(job.id), attempts: 1 });
  }

  private async handle(job: EngineJob<TransferJobData>): Promise<void> {
    const d = job.data;
    const problem = transferJobProblem(d) ?? (d.site !== this.options.site ? `it is for site ${String(d.site)}` : null);
    if (problem) {
      this.logger.error('a job this agent will not work on', { job: job.id, problem });
      // When the job names a rollout, a switch and this site sanely, its coordinator is told (an
      // agent of another swfw version, say), so it does not wait forever; nothing is touched.
      const sane = typeof d === 'object' && d !== null && typeof d.rolloutId === 'string' && ROLLOUT_ID.test(d.rolloutId) && typeof d.name === 'string' && d.name.length <= 253 && d.site === this.options.site;
      if (sane) {
        await this.post(job, this.failedWithoutJournal(d.name, `site ${d.site}'s agent (${this.agentId}) cannot work on this job: ${problem}`, 'job-refused-by-agent'));
      }
      return;
    }
    const key = `${d.rolloutId}/${d.name}`;
    try {
      const running = this.running.get(key);
      if (running) {
        // Redelivered while this process still works on it (its lease was lost): attach.
        this.logger.warn('job redelivered while its switch is in progress here: attaching, no second copy', { job: job.id, switch: d.name });
        await this.post(job, await running);
        return;
      }
      const { journal, fold } = this.journalFor(d.rolloutId);
      if (fold.state.switches.get(d.name)?.outcome) {
        // Done before (a result not acknowledged, a lease lost at the end): the same verdict again.
        this.logger.info('job redelivered after its switch was done: posting the journaled verdict again', { job: job.id, switch: d.name });
        await this.post(job, this.recordsOf(journal, d.name));
        return;
      }
      if (d.window) {
        const { opensAt, closesAt } = nextWindow(d.window, this.now());
        if (closesAt <= this.now()) {
          await this.post(job, this.recordsOf(journal, d.name), 'the maintenance window ended before the switch was started');
          return;
        }
        if (opensAt > this.now()) {
          // The site's window closed since the job was added (or it came early): until it opens again.
          this.logger.info('window closed: job delayed to the next opening', { job: job.id, switch: d.name, opensAt: new Date(opensAt).toISOString() });
          throw await job.delayUntil(opensAt);
        }
      }
      const work = this.work(job, journal, fold);
      this.running.set(key, work);
      try {
        await this.post(job, await work);
      } finally {
        this.running.delete(key);
      }
    } catch (err) {
      if (err instanceof Error && err.name === 'DelayedError') throw err;
      // Retried by the engine; on the last attempt the coordinator hears why, so nothing waits forever.
      this.logger.error('cannot work on a job', { job: job.id, switch: d.name, attempt: job.attemptsMade + 1, error: describeError(err) });
      if (job.attemptsMade + 1 < job.attempts) throw err;
      await this.post(job, this.failedWithoutJournal(d.name, `the agent at site ${d.site} could not work on the switch: ${describeError(err)}`, null));
    }
  }

  /** A failed verdict for a result when this agent's journal cannot (or must not) hold one. */
  private failedWithoutJournal(name: string, reason: string, verdict: string | null): SiteSwitchRecord[] {
    const at = new Date(this.now()).toISOString();
    return [
      { seq: 0, at, t: 'switch', name, phase: 'precheck' },
      { seq: 0, at, t: 'switch', name, phase: 'done', outcome: 'failed', reason, verdict, hashes: null },
    ];
  }

  /** Why a switch address is refused (outside --switch-networks), or null. */
  private outsideNetworks(address: string): string | null {
    const networks = this.options.switchNetworks ?? [];
    if (networks.length === 0 || networks.some((n) => cidrContains(n, address))) return null;
    return `the switch's address ${address} is outside this site's networks (swfw agent --switch-networks): not contacted`;
  }

  private async work(job: EngineJob<TransferJobData>, journal: Journal, fold: JournalFold): Promise<SiteSwitchRecord[]> {
    const d = job.data;
    const o = this.options;
    await journal.append({ t: 'job', name: d.name, site: d.site, jobId: job.id, rolloutId: d.rolloutId, wave: d.planned.wave, image: d.planned.image, address: d.switch.address, driver: d.switch.driver });
    const entry = o.findImage(d.image.file);
    const outside = this.outsideNetworks(d.switch.resolvedAddress ?? d.switch.address);
    if (outside) {
      await journal.append({ t: 'switch', name: d.name, phase: 'precheck' });
      await journal.append({ t: 'switch', name: d.name, phase: 'done', outcome: 'failed', reason: outside, verdict: 'outside-site-networks', hashes: null });
      return this.recordsOf(journal, d.name);
    }
    if (!entry || entry.sha256 !== d.image.sha256) {
      // The site's mirror must hold the bytes the plan was made with: anything else is no transfer.
      const have = entry ? `has ${d.image.file} with SHA-256 ${entry.sha256.slice(0, 12)}…` : `has no ${d.image.file}`;
      await journal.append({ t: 'switch', name: d.name, phase: 'precheck' });
      await journal.append({ t: 'switch', name: d.name, phase: 'done', outcome: 'failed', reason: `site ${d.site}'s catalog ${have}; the plan's image is ${d.image.sha256.slice(0, 12)}…: sync the site's images`, verdict: 'site-image-mismatch', hashes: null });
      return this.recordsOf(journal, d.name);
    }
    // The file the switch writes is named by the site's own catalog entry, never by the job.
    const planned = { ...d.planned, image: entry.file, fileName: basename(entry.file) };
    await (o.work ?? processSwitch)(
      { desk: this.desk, journal, fold, serverAddress: o.serverAddress, settings: d.settings, env: o.env, now: this.now, logger: this.logger, ...(o.driverFor ? { driverFor: o.driverFor } : {}) },
      { name: d.name, switch: d.switch, planned, entry },
    );
    return this.recordsOf(journal, d.name);
  }
}
