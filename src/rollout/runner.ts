import { randomUUID } from 'node:crypto';
import { mkdirSync, rmSync } from 'node:fs';
import { hostname, userInfo } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { RefusalError } from '../core/errors.js';
import { silentLogger, type Logger } from '../core/logger.js';
import { parsePortRange, portRangeSize } from '../core/portRange.js';
import type { CatalogEntry } from '../catalog/index.js';
import { loadServerConfig } from '../config/loader.js';
import { FirmwareServer, StartError } from '../server/server.js';
import { driverFor as defaultDriverFor, type SwitchDriver } from '../switches/index.js';
import type { InventorySwitch } from './inventory.js';
import { nameSwitches, planRollout, type PlannedSwitch, type RolloutPlanConfig } from './plan.js';
import { Journal } from './journal.js';
import type { JournalBody, Operator, RunOutcome, StartImage, StartSwitch } from './records.js';
import { countOutcomes, JournalFold, type RolloutState } from './state.js';
import { JOURNAL_FILE, lockStateDir, readControl, releaseLock } from './control.js';
import { GrantDesk, processSwitch, type SwitchWorkEvent } from './transfer.js';

export type { RunOutcome } from './records.js';

/** How often the runner looks at the control file while paused or between switches. */
const CONTROL_POLL_MS = 250;

/** What a rollout tells its display: waves, switches, transfer progress, pause, the end. */
export type RunnerEvent =
  | SwitchWorkEvent
  | { type: 'wave'; wave: number }
  | { type: 'paused' }
  | { type: 'end'; reason: string };

/**
 * Where the switches are worked on: here, by the embedded FTP server (the default), or at their
 * sites, by the agents of a job engine (coordinator.ts). The runner keeps the policy (waves,
 * canary, thresholds, pause and abort) either way.
 */
export interface SwitchExecutor {
  /** Switches the runner may have under way at once. */
  readonly concurrency: number;
  /** Before the first record of a new rollout: anything that can refuse (a port, the engine) refuses here. */
  open(run: ExecutorRun): Promise<void>;
  /** The `run-start` fields this executor adds (the engine and its sites). */
  startFields(): Partial<Extract<JournalBody, { t: 'run-start' }>>;
  /** Works on one switch (or hands it off); resolves once its verdict is in the journal, or it will not get one in this run. */
  run(name: string): Promise<void>;
  /** The operator paused (true) or resumed (false). */
  pause(paused: boolean): Promise<void>;
  /** The rollout halted or was aborted: no switch is to start any more. */
  halt(reason: string): Promise<void>;
  /** A halt of part of the fleet (multi-site: a site over its own threshold), or null. */
  partialHalt(): string | null;
  close(): Promise<void>;
}

/** What an executor gets from the runner: the journal, its state, and the plan. */
export interface ExecutorRun {
  journal: Journal;
  fold: JournalFold;
  planned: ReadonlyMap<string, PlannedSwitch>;
  byName: ReadonlyMap<string, InventorySwitch>;
  runId: () => string;
}

export interface RunnerOptions {
  stateDir: string;
  plan: RolloutPlanConfig;
  planPath: string;
  planDigest: string;
  inventory: readonly InventorySwitch[];
  inventoryPath: string;
  findImage: (file: string) => CatalogEntry | undefined;
  /** A running server to use; default: start the embedded one from the plan. */
  server?: FirmwareServer;
  /** Where switches are worked on; default: here, with the embedded server (EmbeddedExecutor). */
  executor?: SwitchExecutor;
  logger?: Logger;
  env?: NodeJS.ProcessEnv;
  now?: () => number;
  /** No new switch is started at or after this instant (the window's end). */
  deadline?: number | null;
  /**
   * The caller holds the state directory's runner lock for longer than this run (`schedule
   * --every-window` holds it between windows): the runner neither takes nor releases it.
   */
  lockHeld?: boolean;
  driverFor?: (name: string) => SwitchDriver;
  onEvent?: (event: RunnerEvent) => void;
  /** Who runs this, journaled at start and resume for the report; default: this process's user and host. */
  operator?: Operator;
}

/** This process's account and host; the person behind sudo too, when there is one. */
export function currentOperator(env: NodeJS.ProcessEnv = process.env): Operator {
  let user: string;
  try {
    user = userInfo().username;
  } catch {
    // A uid without a passwd entry (a container's): its number says who it was.
    user = env['USER'] ?? `uid ${process.getuid?.() ?? '?'}`;
  }
  const sudoUser = env['SUDO_USER'];
  return { user, host: hostname(), ...(sudoUser && sudoUser !== user ? { sudoUser } : {}) };
}

export interface RunSummary {
  outcome: RunOutcome;
  reason: string;
  state: RolloutState;
}

/**
 * Works on switches here: the embedded FTP server (or the one given), one-time grants, and
 * processSwitch on this host.
 */
export class EmbeddedExecutor implements SwitchExecutor {
  private server: FirmwareServer | null = null;
  private ownsServer = false;
  private desk: GrantDesk | null = null;
  private ctx: ExecutorRun | null = null;

  constructor(private readonly options: RunnerOptions, private readonly logger: Logger) {}

  get concurrency(): number {
    return this.options.plan.concurrency;
  }

  startFields() {
    // The address switches were told to pull from, and the port the server really listens on (a plan's 0 is resolved here).
    const s = this.options.plan.server;
    const web = this.server?.httpEndpoints();
    return this.server ? { server: { address: s.address, port: this.server.address().port, pasvRange: s.pasvRange, http: web?.http?.port ?? null, https: web?.https?.port ?? null } } : {};
  }

  async open(run: ExecutorRun): Promise<void> {
    this.ctx = run;
    const o = this.options;
    if (o.server) {
      this.server = o.server;
      const limit = this.server.maxConnections();
      if (limit < o.plan.concurrency) {
        this.logger.warn('the plan runs more switches at once than the server takes connections: the rest get 421', { concurrency: o.plan.concurrency, maxConnections: limit });
      }
    } else {
      const s = o.plan.server;
      const hostPort = (host: string, port: number) => `${host.includes(':') ? `[${host}]` : host}:${port}`;
      // Sized to the plan: `concurrency` switches hold a control connection each at once, and
      // switches behind one NAT or ftpSource address share one source (serve's defaults, 64 and 8
      // per address, would answer the rest 421).
      const defaults = loadServerConfig({ env: {}, flags: { images: s.images } });
      const config = loadServerConfig({
        env: {},
        flags: {
          host: s.listen,
          port: String(s.port),
          pasvRange: s.pasvRange,
          images: s.images,
          pasvWait: String(s.pasvWait),
          logLevel: 'warn',
          maxConnections: String(Math.max(defaults.maxConnections, o.plan.concurrency * 2)),
          maxPerIp: String(Math.max(defaults.maxPerIp, o.plan.concurrency * 2)),
          // Switches that download over HTTP(S) (AOS-CX) get the same repository on these ports.
          ...(s.http !== null ? { http: hostPort(s.listen, s.http) } : {}),
          ...(s.https !== null ? { https: hostPort(s.listen, s.https) } : {}),
          ...(s.tlsCert !== null && s.tlsKey !== null ? { tlsCert: s.tlsCert, tlsKey: s.tlsKey } : {}),
        },
      });
      const server = new FirmwareServer({ config, accounts: [], logger: (o.logger ?? silentLogger).child({ component: 'server' }) });
      try {
        await server.start();
      } catch (err) {
        // A port in use, no privilege for 21, no passive port: the plan's server section to fix (exit 2).
        if (err instanceof StartError) throw new RefusalError(`the plan's server cannot start: ${err.message}`);
        throw err;
      }
      this.server = server;
      this.ownsServer = true;
    }
    const range = parsePortRange(o.plan.server.pasvRange);
    const pasvPorts = typeof range === 'string' ? 5 : portRangeSize(range);
    this.desk = new GrantDesk(this.server, Math.min(o.plan.concurrency, pasvPorts), this.logger, (e) => o.onEvent?.(e));
  }

  async run(name: string): Promise<void> {
    const o = this.options;
    const run = this.ctx!;
    const planned = run.planned.get(name)!;
    await processSwitch(
      { desk: this.desk!, journal: run.journal, fold: run.fold, serverAddress: o.plan.server.address, settings: o.plan, env: o.env, now: o.now ?? Date.now, logger: this.logger, driverFor: o.driverFor, onEvent: o.onEvent },
      { name, switch: run.byName.get(name), planned, entry: o.findImage(planned.image)! },
    );
  }

  async pause(): Promise<void> {}
  async halt(): Promise<void> {}
  partialHalt(): string | null {
    return null;
  }

  async close(): Promise<void> {
    this.desk?.close();
    if (this.ownsServer) await this.server?.stop(0);
  }
}

/**
 * Runs (or resumes) a rollout: waves in order, switches concurrently, everything journaled before
 * it is acted on. A switch already `done` in the journal is never touched again; one caught in the
 * middle is pre-checked again, and the pre-check skips the transfer when its flash already holds
 * the right bytes.
 */
export class RolloutRunner {
  private readonly logger: Logger;
  private readonly now: () => number;
  private journal: Journal | null = null;
  /** The journal's state, folded as records are appended. */
  private fold: JournalFold | null = null;
  private readonly executor: SwitchExecutor;
  private readonly byName = new Map<string, InventorySwitch>();
  private stopReason: { outcome: RunOutcome; reason: string } | null = null;
  private haltReason: string | null = null;
  private paused = false;

  constructor(private readonly options: RunnerOptions) {
    this.logger = (options.logger ?? silentLogger).child({ component: 'rollout' });
    this.now = options.now ?? Date.now;
    for (const s of options.inventory) this.byName.set(s.name, s);
    this.executor = options.executor ?? new EmbeddedExecutor(options, this.logger);
  }

  async run(): Promise<RunSummary> {
    const o = this.options;
    mkdirSync(o.stateDir, { recursive: true });
    if (!o.lockHeld) lockStateDir(o.stateDir);
    const journal = Journal.open(join(o.stateDir, JOURNAL_FILE), this.now);
    this.journal = journal;
    this.fold = new JournalFold(journal.records);
    try {
      return await this.runLocked(journal);
    } finally {
      await this.executor.close();
      await journal.close();
      // A run refused before its first record leaves no empty journal to be taken for a rollout.
      if (journal.records.length === 0) rmSync(join(o.stateDir, JOURNAL_FILE), { force: true });
      if (!o.lockHeld) releaseLock(o.stateDir);
    }
  }

  /**
   * Switches that download over HTTP(S) (AOS-CX) need the plan's embedded server to serve it: said
   * before anything starts, as a missing target is, not as a failed canary. (With `--engine` the
   * site agents serve, with their own `--https`; a server handed in by the caller is its own.)
   */
  private refuseRestSwitchesWithoutHttp(planned: readonly PlannedSwitch[]): void {
    const o = this.options;
    if (!(this.executor instanceof EmbeddedExecutor) || o.server || o.plan.server.http !== null || o.plan.server.https !== null) return;
    const driverFor = o.driverFor ?? defaultDriverFor;
    const needHttp = planned.filter((p) => {
      const schemes = driverFor(this.byName.get(p.name)!.driver).pullSchemes;
      return schemes.length > 0 && !schemes.includes('ftp');
    });
    if (needHttp.length === 0) return;
    throw new RefusalError(
      `server.https: ${needHttp.length} switch${needHttp.length === 1 ? '' : 'es'} download over HTTP(S) only (${nameSwitches(needHttp.map((p) => p.name))}) and the plan's server serves FTP only: set server.https with server.tlsCert and server.tlsKey (or server.http)`,
    );
  }

  private async runLocked(journal: Journal): Promise<RunSummary> {
    const o = this.options;
    const { planned, waves, problems } = planRollout(o.plan, o.inventory, o.findImage);
    if (problems.length) throw new RefusalError(problems.map((p) => `targets.${p.platform}: ${p.message} (needed by ${nameSwitches(p.switches)})`).join('; '));
    this.refuseRestSwitchesWithoutHttp(planned);
    const run: ExecutorRun = { journal, fold: this.fold!, planned: new Map(planned.map((p) => [p.name, p])), byName: this.byName, runId: () => this.fold!.state.runId! };
    let state = this.fold!.state;
    if (state.start) {
      if (state.start.planDigest !== o.planDigest) throw new RefusalError('the plan changed since this rollout started: start a new one with another --state directory');
      if (state.end && (state.end.outcome === 'halted' || state.end.outcome === 'aborted' || state.end.outcome === 'completed')) {
        return { outcome: state.end.outcome, reason: `already ended: ${state.end.reason}`, state };
      }
      await this.executor.open(run);
      await journal.append({ t: 'run-resume', pid: process.pid, operator: o.operator ?? currentOperator() });
      this.logger.info('resuming rollout', { runId: state.runId });
    } else {
      // The server (or engine) first: a plan that cannot start leaves nothing in the journal, so
      // the fixed plan starts afresh in the same state directory.
      const runId = randomUUID();
      run.runId = () => runId;
      await this.executor.open(run);
      const switches: StartSwitch[] = planned.map((p) => {
        const sw = this.byName.get(p.name)!;
        // A DNS name is resolved once, at load: the journal keeps what SSH and the grant use.
        return { name: p.name, address: sw.address, resolvedAddress: sw.resolvedAddress, driver: sw.driver, wave: p.wave, image: p.image, ...(sw.site ? { site: sw.site } : {}) };
      });
      const images = [...new Set(planned.map((p) => p.image))].sort().map((file): StartImage => {
        const e = o.findImage(file)!;
        return { file: e.file, platform: e.platform, version: e.version, size: e.size, sha256: e.sha256, md5: e.md5, sha512: e.sha512, ...(e.sha1 ? { sha1: e.sha1 } : {}) };
      });
      await journal.append({
        t: 'run-start',
        runId,
        planPath: o.planPath,
        planDigest: o.planDigest,
        inventoryPath: o.inventoryPath,
        waves,
        switches,
        operator: o.operator ?? currentOperator(),
        images,
        window: o.plan.window,
        concurrency: o.plan.concurrency,
        canary: o.plan.waves.canary,
        ...this.executor.startFields(),
      });
      run.runId = () => this.fold!.state.runId!;
    }
    state = this.fold!.state;

    const total = state.switches.size;
    for (let w = 0; w < state.waves.length; w++) {
      if (state.wavesDone.has(w)) continue;
      const todo = state.waves[w]!.filter((n) => state.switches.get(n)?.outcome == null);
      await journal.append({ t: 'wave-start', wave: w, switches: todo.length });
      o.onEvent?.({ type: 'wave', wave: w });
      // The control file is also watched while switches are under way, not only before each one
      // starts: a job engine's executor hands a whole wave off at once.
      const watching = this.watchControl();
      try {
        await this.pool(todo, this.executor.concurrency, async (name) => {
          if (!(await this.gate())) return;
          await this.executor.run(name);
          await this.checkThreshold(total);
        });
      } finally {
        watching.stop();
      }
      if (this.stopReason || this.haltReason) break;
      state = this.fold!.state;
      const counts = countOutcomes(state.waves[w]!.map((n) => state.switches.get(n)!));
      await journal.append({ t: 'wave-end', wave: w, counts });
      if (w === 0 && o.plan.waves.canary > 0 && counts.failed > 0) {
        await this.halt(`canary wave failed (${counts.failed} of ${state.waves[0]!.length})`);
        break;
      }
    }
    const outcome: RunOutcome = this.stopReason?.outcome ?? (this.haltReason ? 'halted' : 'completed');
    const partial = this.executor.partialHalt();
    const reason = this.stopReason?.reason ?? this.haltReason ?? (partial ? `every wave done; ${partial}` : 'every wave done');
    state = this.fold!.state;
    await journal.append({ t: 'run-end', outcome, reason, counts: countOutcomes(state.switches.values()) });
    o.onEvent?.({ type: 'end', reason });
    return { outcome, reason, state: this.fold!.state };
  }

  private async halt(reason: string): Promise<void> {
    if (this.haltReason) return;
    this.haltReason = reason;
    await this.executor.halt(reason);
  }

  /** Polls the control file until stopped: pause, resume and abort take effect while switches run. */
  private watchControl(): { stop: () => void } {
    let stopped = false;
    const loop = async () => {
      while (!stopped && !this.stopReason && !this.haltReason) {
        await this.applyControl();
        await sleep(CONTROL_POLL_MS);
      }
    };
    const done = loop().catch((err: Error) => this.logger.error('cannot apply a control command', { error: err.message }));
    return {
      stop: () => {
        stopped = true;
        void done;
      },
    };
  }

  /** Reads the operator's command, and journals and applies it when it changed. */
  private async applyControl(): Promise<'run' | 'pause' | 'abort'> {
    const command = readControl(this.options.stateDir);
    if (command === 'abort') {
      if (!this.stopReason) {
        this.stopReason = { outcome: 'aborted', reason: 'aborted by the operator' };
        await this.journal!.append({ t: 'control', command: 'abort' });
        await this.executor.halt('aborted by the operator');
      }
      return 'abort';
    }
    if (command === 'pause' && !this.paused) {
      this.paused = true;
      await this.journal!.append({ t: 'control', command: 'pause' });
      await this.executor.pause(true);
      this.options.onEvent?.({ type: 'paused' });
    } else if (command === 'run' && this.paused) {
      this.paused = false;
      await this.journal!.append({ t: 'control', command: 'resume' });
      await this.executor.pause(false);
    }
    return command;
  }

  /** Whether a new switch may start now: waits while paused; false once aborted, halted or out of the window. */
  private async gate(): Promise<boolean> {
    for (;;) {
      if (this.stopReason || this.haltReason) return false;
      const command = await this.applyControl();
      if (command === 'abort') return false;
      if (command === 'pause') {
        await sleep(CONTROL_POLL_MS);
        continue;
      }
      const deadline = this.options.deadline ?? null;
      if (deadline !== null && this.now() >= deadline) {
        this.stopReason = { outcome: 'window-closed', reason: 'the maintenance window closed; resume in the next one' };
        return false;
      }
      return true;
    }
  }

  private async checkThreshold(total: number): Promise<void> {
    const { maxFailed, maxFailedPercent } = this.options.plan;
    const failed = countOutcomes(this.fold!.state.switches.values()).failed;
    if (maxFailed !== null && failed > maxFailed) await this.halt(`failure threshold: ${failed} switches failed (more than ${maxFailed})`);
    if (maxFailedPercent !== null && (failed * 100) / total > maxFailedPercent) {
      await this.halt(`failure threshold: ${failed} of ${total} switches failed (more than ${maxFailedPercent}%)`);
    }
  }

  private async pool(names: string[], concurrency: number, work: (name: string) => Promise<void>): Promise<void> {
    let next = 0;
    const worker = async () => {
      while (next < names.length) await work(names[next++]!);
    };
    await Promise.all(Array.from({ length: Math.min(concurrency, names.length) }, worker));
  }
}
