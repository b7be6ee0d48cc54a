/**
 * The coordinator of a multi-site rollout: the runner's policy (waves, canary, thresholds, pause,
 * abort, reports) with "work on this switch here" replaced by "add a job to its site's queue".
 * Each switch's job ID is fixed by the rollout and the switch, so a coordinator resumed after a
 * crash re-adds its wave and nothing runs twice. Results come back on the rollout's results queue
 * and are journaled (fdatasync) before anything acts on them; a result posted twice folds once.
 *
 * Pause, resume and abort are queue operations, so they hold while the coordinator is down. A site
 * over its own failure threshold is paused and drained; the other sites go on.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { RefusalError } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import type { CatalogEntry } from '../catalog/index.js';
import { resultsQueue, siteQueue, type Consumer, type EngineJob, type JobEngine } from '../engine/index.js';
import { nameSwitches, siteWindow, type RolloutPlanConfig } from './plan.js';
import { resultJobId, SITE_JOB_VERSION, transferJobId, transferResultProblem, type TransferJobData, type TransferResult } from './siteJobs.js';
import { countOutcomes } from './state.js';
import type { SwitchWorkEvent } from './transfer.js';
import type { ExecutorRun, SwitchExecutor } from './runner.js';
import { nextWindow } from './window.js';

/** The verdict of a switch whose site answered its job with nothing the coordinator accepts. */
export const NO_RESULT_VERDICT = 'no-result-from-site';
/** Attempts of a site job whose agent fails for its own reasons (a journal it cannot write, Redis lost mid-post). */
const JOB_ATTEMPTS = 5;
const JOB_BACKOFF_MS = 5000;
/** How often a halted site's running jobs are looked at until they have finished. */
const SETTLE_POLL_MS = 250;
/** The results queue's lease: its consumer only journals, so a short one. */
const RESULTS_LOCK_MS = 30_000;
/**
 * Results journaled at once. Their appends share one write and one fdatasync (the journal's group
 * commit); one at a time, each waited for its own fdatasync and capped the coordinator near 600
 * switches a second. A result posted twice is still folded once: the check and the append happen
 * in one turn of the event loop.
 */
const RESULTS_CONCURRENCY = 32;

/** How often the jobs of switches still waiting for a result are looked for in their queues. */
const RECONCILE_MS = 30_000;

export interface EngineExecutorOptions {
  engine: JobEngine;
  /** How often a job still waited for is checked to exist, ms (default 30 s); a lost one is added again. */
  reconcileMs?: number;
  plan: RolloutPlanConfig;
  findImage: (file: string) => CatalogEntry | undefined;
  logger: Logger;
  now?: () => number;
  onEvent?: (event: SwitchWorkEvent) => void;
}

export class EngineExecutor implements SwitchExecutor {
  /** Every switch of a wave is handed to its site at once: the sites' queues limit what runs. */
  readonly concurrency = Number.MAX_SAFE_INTEGER;
  private rollout: ExecutorRun | null = null;
  private results: Consumer[] = [];
  private readonly waiting = new Map<string, () => void>();
  /** The job of each switch handed off and still waiting for its result: what reconcile() looks for. */
  private readonly handedOff = new Map<string, { site: string; jobId: string; data: TransferJobData; delayMs: number }>();
  private reconciling: NodeJS.Timeout | null = null;
  private reconcileRunning = false;
  /** Switches whose site job was seen finished with no result to journal, at the last reconcile. */
  private readonly answeredNothing = new Set<string>();
  private readonly now: () => number;
  private readonly notStarted = new Map<string, string>();
  private halted = false;

  constructor(private readonly options: EngineExecutorOptions) {
    this.now = options.now ?? Date.now;
  }

  /** The sites of the rollout's switches, sorted. */
  private sites(): string[] {
    const run = this.rollout!;
    return [...new Set([...run.planned.keys()].map((n) => run.byName.get(n)?.site ?? ''))].filter(Boolean).sort();
  }

  startFields() {
    return { engine: { url: this.options.engine.displayUrl, sites: this.sites() } };
  }

  async open(run: ExecutorRun): Promise<void> {
    this.rollout = run;
    const { engine, plan } = this.options;
    const homeless = [...run.planned.keys()].filter((n) => !run.byName.get(n)?.site);
    if (homeless.length) throw new RefusalError(`a rollout on a job engine needs a site for every switch: ${nameSwitches(homeless)} ${homeless.length === 1 ? 'has' : 'have'} none (inventory: site)`);
    const unknown = Object.keys(plan.sites).filter((s) => !this.sites().includes(s));
    if (unknown.length) this.options.logger.warn('the plan names sites no switch of the inventory is at', { sites: unknown });
    if (!run.fold.state.start) {
      // One rollout at a time per site: a site queue is the site's, and its pause, drain and
      // concurrency are the site's too. Jobs of another rollout still there are refused here.
      const busy: string[] = [];
      for (const site of this.sites()) {
        const c = await engine.counts(siteQueue(site)).catch((err: Error) => {
          throw new RefusalError(`the job engine at ${engine.displayUrl} refused to read ${siteQueue(site)}: ${err.message}`);
        });
        if (c.waiting + c.delayed + c.active > 0) busy.push(`${site} (${c.waiting + c.delayed + c.active} jobs)`);
      }
      if (busy.length) throw new RefusalError(`another rollout still has jobs at ${nameSwitches(busy)}: let it finish, or abort it with swfw rollout abort --engine, first`);
    }
    for (const site of this.sites()) {
      try {
        if ((await engine.workers(siteQueue(site))) === 0) {
          this.options.logger.warn(`no agent is connected to ${siteQueue(site)}: its switches wait in the queue until one is (swfw agent --site ${site})`, { site });
        }
        await engine.setConcurrency(siteQueue(site), plan.sites[site]?.concurrency ?? plan.concurrency);
        // A paused rollout's queues are paused again by the runner as soon as it reads the control file.
        if (!run.fold.state.haltedSites.has(site)) await engine.resume(siteQueue(site));
      } catch (err) {
        // The first writes: an ACL user that may only read is refused here, before the journal's first record.
        throw new RefusalError(`the job engine at ${engine.displayUrl} refused to set up ${siteQueue(site)}: ${(err as Error).message}`);
      }
    }
    this.reconciling = setInterval(() => void this.reconcile(), this.options.reconcileMs ?? RECONCILE_MS);
    // One results queue per site: a site's agent (and its Redis ACL user) answers for its own switches only.
    for (const site of this.sites()) {
      this.results.push(await engine.work<TransferResult>(resultsQueue(run.runId(), site), { concurrency: RESULTS_CONCURRENCY, lockDurationMs: RESULTS_LOCK_MS }, (job) => this.onResult(job, site)));
    }
  }

  async run(name: string): Promise<void> {
    const run = this.rollout!;
    const { engine, plan } = this.options;
    const state = run.fold.state;
    const s = state.switches.get(name)!;
    const sw = run.byName.get(name);
    const site = s.site ?? sw?.site ?? null;
    if (s.outcome !== null || this.halted || !site || state.haltedSites.has(site)) return;
    const planned = run.planned.get(name)!;
    const entry = this.options.findImage(planned.image)!;
    const window = siteWindow(plan, site);
    let delayMs = 0;
    if (window) {
      const { opensAt, closesAt } = nextWindow(window, this.now());
      if (closesAt <= this.now()) {
        this.notStarted.set(name, `the window of site ${site} has ended`);
        return;
      }
      delayMs = Math.max(0, opensAt - this.now());
    }
    // Registered before the add, in the same turn as the check above: a result that arrives at
    // any point after it finds the waiter.
    const settled = new Promise<void>((resolve) => this.waiting.set(name, resolve));
    if (!sw) {
      // No longer in the inventory: nothing to send, the runner's own verdict.
      await run.journal.append({ t: 'switch', name, phase: 'precheck' });
      await run.journal.append({ t: 'switch', name, phase: 'done', outcome: 'failed', reason: 'no longer in the inventory', verdict: null, hashes: null });
      this.waiting.delete(name);
      return;
    }
    const jobId = transferJobId(run.runId(), name);
    const data: TransferJobData = {
      v: SITE_JOB_VERSION,
      rolloutId: run.runId(),
      site,
      name,
      planned,
      image: { file: entry.file, sha256: entry.sha256, size: entry.size, version: entry.version },
      switch: sw,
      settings: { sshTimeoutMs: plan.sshTimeoutMs, pullTimeoutMs: plan.pullTimeoutMs, hashBytesPerSecond: plan.hashBytesPerSecond, sshWeakAlgorithms: plan.sshWeakAlgorithms, credentialMinutes: plan.credentialMinutes, hostKeys: plan.hostKeys },
      window,
      resultQueue: resultsQueue(run.runId(), site),
    };
    await run.journal.append({ t: 'job', name, site, jobId, rolloutId: run.runId(), wave: planned.wave, image: planned.image });
    this.handedOff.set(name, { site, jobId, data, delayMs });
    try {
      await engine.add(siteQueue(site), 'transfer', data, { jobId, delayMs, attempts: JOB_ATTEMPTS, backoffMs: JOB_BACKOFF_MS });
      await settled;
    } finally {
      this.handedOff.delete(name);
    }
  }

  /**
   * Adds again the job of a switch still waiting for its result when its queue no longer has it:
   * a Redis restarted without its data (no AOF, a failover to a replica that lagged) loses jobs,
   * and a coordinator would otherwise wait forever. Its ID is unchanged, so a job that still
   * exists is never doubled, and an agent that had finished the switch posts its journaled verdict.
   */
  private async reconcile(): Promise<void> {
    if (this.reconcileRunning) return;
    this.reconcileRunning = true;
    try {
      await this.reconcileOnce();
    } finally {
      this.reconcileRunning = false;
    }
  }

  private async reconcileOnce(): Promise<void> {
    const { engine, logger } = this.options;
    const run = this.rollout!;
    for (const [name, job] of [...this.handedOff]) {
      if (!this.handedOff.has(name) || run.fold.state.switches.get(name)?.outcome != null) continue;
      try {
        const state = await engine.jobState(siteQueue(job.site), job.jobId);
        if (state === 'unknown') {
          logger.warn('a job vanished from its site queue (Redis lost data?): adding it again', { switch: name, site: job.site, job: job.jobId });
          await engine.add(siteQueue(job.site), 'transfer', job.data, { jobId: job.jobId, attempts: JOB_ATTEMPTS, backoffMs: JOB_BACKOFF_MS });
          continue;
        }
        const result = state === 'completed' || state === 'failed' ? await engine.jobState(resultsQueue(run.runId(), job.site), resultJobId(job.jobId)) : null;
        if (result === null || result === 'waiting' || result === 'active' || result === 'delayed') {
          this.answeredNothing.delete(name);
          continue;
        }
        // The site's job is finished and no result is left to journal: the agent dropped it (an
        // agent of another swfw version), or its result was refused. Seen twice in a row (a
        // result in flight is seen once at most), the switch fails rather than wait forever.
        if (!this.answeredNothing.has(name)) {
          this.answeredNothing.add(name);
          continue;
        }
        this.answeredNothing.delete(name);
        const reason = `site ${job.site}'s agent finished the job without a result this coordinator accepts (an agent of another swfw version, or a refused result: see both logs)`;
        await run.journal.append({ t: 'switch', name, phase: 'precheck' });
        await run.journal.append({ t: 'switch', name, phase: 'done', outcome: 'failed', reason, verdict: NO_RESULT_VERDICT, hashes: null });
        this.options.onEvent?.({ type: 'switch', name, outcome: 'failed', reason });
        this.release(name);
      } catch (err) {
        logger.warn('cannot look for a job in its site queue (will try again)', { switch: name, error: (err as Error).message });
        return;
      }
    }
  }

  private async onResult(job: EngineJob<TransferResult>, site: string): Promise<void> {
    const run = this.rollout!;
    const r = job.data;
    const state = run.fold.state;
    const name = typeof r === 'object' && r !== null && typeof r.name === 'string' ? r.name : '';
    const s = state.switches.get(name);
    const problem = !s ? 'no switch of this rollout' : transferResultProblem(r, { rolloutId: run.runId(), name, site: s.site ?? '', jobId: s.jobId ?? transferJobId(run.runId(), name) });
    if (problem || !s || s.site !== site) {
      // Never journaled: only a result that answers this switch's own job, from its own site's
      // queue, in the switch's own record shapes, may reach the fold.
      this.options.logger.warn('a result refused', { job: job.id, queue: resultsQueue(run.runId(), site), switch: name, problem: problem ?? `posted for site ${site}, the switch is at ${s?.site}` });
      return;
    }
    if (r.notStarted) {
      this.notStarted.set(name, `${r.notStarted} (site ${site})`);
    } else if (s.outcome === null) {
      await run.journal.append({ t: 'site-result', name, site, jobId: r.jobId, records: r.records });
      // Read through the fold again: it applies the new record on access.
      const folded = run.fold.state.switches.get(name)!;
      if (folded.outcome !== null) {
        this.options.onEvent?.({ type: 'switch', name, outcome: folded.outcome, reason: folded.reason ?? '' });
        await this.checkSiteThreshold(site);
      }
    }
    this.release(name);
  }

  private release(name: string): void {
    this.waiting.get(name)?.();
    this.waiting.delete(name);
  }

  /** A site over its own threshold: its queue paused and drained, journaled; the other sites go on. */
  private async checkSiteThreshold(site: string): Promise<void> {
    const run = this.rollout!;
    const policy = this.options.plan.sites[site];
    const state = run.fold.state;
    if (!policy || state.haltedSites.has(site)) return;
    const mine = [...state.switches.values()].filter((s) => s.site === site);
    const failed = countOutcomes(mine).failed;
    let reason: string | null = null;
    if (policy.maxFailed !== null && failed > policy.maxFailed) reason = `site ${site}: ${failed} switches failed (more than ${policy.maxFailed})`;
    else if (policy.maxFailedPercent !== null && (failed * 100) / mine.length > policy.maxFailedPercent) reason = `site ${site}: ${failed} of ${mine.length} switches failed (more than ${policy.maxFailedPercent}%)`;
    if (!reason) return;
    await run.journal.append({ t: 'site-halt', site, reason });
    this.options.logger.warn('site halted by its failure threshold', { site, reason });
    await this.stopSites([site]);
  }

  /**
   * Pauses and drains the sites' queues (waiting and delayed jobs removed; running transfers
   * finish and report), then lets go every switch of those sites still waiting for a result.
   */
  private async stopSites(sites: string[]): Promise<void> {
    const { engine } = this.options;
    for (const site of sites) {
      await engine.pause(siteQueue(site));
      await engine.drain(siteQueue(site), true);
    }
    void (async () => {
      for (const site of sites) while ((await engine.counts(siteQueue(site))).active > 0) await sleep(SETTLE_POLL_MS);
      // Their last results are in the results queues now: let the consumers journal them first.
      for (const site of sites) {
        for (;;) {
          const c = await engine.counts(resultsQueue(this.rollout!.runId(), site));
          if (c.waiting + c.active + c.delayed === 0) break;
          await sleep(SETTLE_POLL_MS);
        }
      }
      const state = this.rollout!.fold.state;
      for (const [name, release] of [...this.waiting]) {
        const site = state.switches.get(name)?.site;
        if (site && sites.includes(site)) {
          this.waiting.delete(name);
          release();
        }
      }
    })().catch((err: Error) => this.options.logger.error('cannot settle a halted site', { error: err.message }));
  }

  async pause(paused: boolean): Promise<void> {
    const halted = this.rollout!.fold.state.haltedSites;
    for (const site of this.sites()) {
      if (halted.has(site)) continue;
      if (paused) await this.options.engine.pause(siteQueue(site));
      else await this.options.engine.resume(siteQueue(site));
    }
  }

  async halt(): Promise<void> {
    this.halted = true;
    await this.stopSites(this.sites());
  }

  partialHalt(): string | null {
    const parts = [...this.rollout!.fold.state.haltedSites.values()];
    if (this.notStarted.size) parts.push(`${nameSwitches([...this.notStarted.keys()])} not started: ${[...new Set(this.notStarted.values())].join('; ')}`);
    return parts.length ? parts.join('; ') : null;
  }

  async close(): Promise<void> {
    if (this.reconciling) clearInterval(this.reconciling);
    this.reconciling = null;
    await Promise.all(this.results.map((c) => c.close()));
    this.results = [];
    const end = this.rollout?.fold.state.end;
    if (end && end.outcome !== 'window-closed') {
      // Ended for good (completed, halted, aborted): its results are journaled, their queues' keys go.
      for (const site of this.sites()) {
        await this.options.engine.removeQueue(resultsQueue(this.rollout!.runId(), site)).catch((err: Error) => this.options.logger.warn('cannot remove a results queue', { site, error: err.message }));
      }
    }
    for (const release of this.waiting.values()) release();
    this.waiting.clear();
  }
}
