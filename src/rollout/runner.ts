import { randomUUID } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { RefusalError, describeError } from '../core/errors.js';
import { silentLogger, type Logger } from '../core/logger.js';
import { parsePortRange, portRangeSize } from '../core/portRange.js';
import type { CatalogEntry } from '../catalog/index.js';
import { loadServerConfig } from '../config/loader.js';
import type { OneTimeAccess } from '../server/server.js';
import { FirmwareServer, StartError } from '../server/server.js';
import type { TransferProgress, TransferRecord } from '../server/context.js';
import { judgeEvidence } from '../verify/evidence.js';
import { driverFor as defaultDriverFor, redactSecrets, SwitchOutputError, type SwitchDriver, type SwitchSession } from '../switches/index.js';
import type { InventorySwitch } from './inventory.js';
import { nameSwitches, planRollout, type PlannedSwitch, type RolloutPlanConfig } from './plan.js';
import { Journal } from './journal.js';
import { countOutcomes, JournalFold, type Hashes, type RolloutState, type SwitchOutcome } from './state.js';
import { JOURNAL_FILE, lockStateDir, readControl, releaseLock } from './control.js';
import { HOST_KEY_MISMATCH_VERDICT, NO_PINNED_HOST_KEY, cannotContact, decide, gatherFacts, hostKeyCheckFor, isHostKeyError, switchTarget } from './precheck.js';

/** The journal record of a host key trusted on first use: `{ name, address, fingerprint }`. */
export const HOST_KEY_RECORD = 'host-key';
/** The verdict of a switch whose platform cannot pull over FTP (Aruba AOS-CX, ArubaOS-Switch, Brocade FOS). */
export const UNSUPPORTED_PLATFORM_VERDICT = 'unsupported-platform';
/** The verdict of a switch whose output could not be read (a cut digest): a parse fault, never evidence about the bytes. */
export const UNREADABLE_OUTPUT_VERDICT = 'unreadable-switch-output';

/** How often the runner looks at the control file while paused or between switches. */
const CONTROL_POLL_MS = 250;

export type RunOutcome = 'completed' | 'halted' | 'aborted' | 'window-closed';

export interface RunnerEvent {
  type: 'wave' | 'switch' | 'progress' | 'paused' | 'end';
  wave?: number;
  name?: string;
  outcome?: SwitchOutcome;
  reason?: string;
  bytes?: number;
  expectedBytes?: number;
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
}

export interface RunSummary {
  outcome: RunOutcome;
  reason: string;
  state: RolloutState;
}

class Semaphore {
  private waiting: (() => void)[] = [];
  constructor(private free: number) {}
  async take(): Promise<void> {
    if (this.free > 0) {
      this.free--;
      return;
    }
    await new Promise<void>((resolve) => this.waiting.push(resolve));
  }
  give(): void {
    const next = this.waiting.shift();
    if (next) next();
    else this.free++;
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
  private server: FirmwareServer | null = null;
  private ownsServer = false;
  private readonly grants = new Map<string, { name: string; access: OneTimeAccess }>();
  private readonly byName = new Map<string, InventorySwitch>();
  private planned = new Map<string, PlannedSwitch>();
  private stopReason: { outcome: RunOutcome; reason: string } | null = null;
  private haltReason: string | null = null;
  private paused = false;
  /** Switches told to copy whose data connection is not up yet: at most one per passive port. */
  private connecting!: Semaphore;
  /** Per one-time user: gives back the `connecting` slot (once) when the server accepts its data connection. */
  private readonly dataConnected = new Map<string, () => void>();

  constructor(private readonly options: RunnerOptions) {
    this.logger = (options.logger ?? silentLogger).child({ component: 'rollout' });
    this.now = options.now ?? Date.now;
    for (const s of options.inventory) this.byName.set(s.name, s);
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
      for (const { access } of this.grants.values()) access.revoke();
      this.grants.clear();
      this.server?.off('transfer', this.onTransfer);
      this.server?.off('transfer-start', this.onTransferStart);
      this.server?.off('transfer-progress', this.onProgress);
      if (this.ownsServer) await this.server?.stop(0);
      await journal.close();
      if (!o.lockHeld) releaseLock(o.stateDir);
    }
  }

  private async runLocked(journal: Journal): Promise<RunSummary> {
    const o = this.options;
    const { planned, waves, problems } = planRollout(o.plan, o.inventory, o.findImage);
    if (problems.length) throw new RefusalError(problems.map((p) => `targets.${p.platform}: ${p.message} (needed by ${nameSwitches(p.switches)})`).join('; '));
    this.planned = new Map(planned.map((p) => [p.name, p]));
    let state = this.fold!.state;
    if (state.start) {
      if (state.start['planDigest'] !== o.planDigest) throw new RefusalError('the plan changed since this rollout started: start a new one with another --state directory');
      if (state.end && (state.end['outcome'] === 'halted' || state.end['outcome'] === 'aborted' || state.end['outcome'] === 'completed')) {
        return { outcome: state.end['outcome'] as RunOutcome, reason: `already ended: ${String(state.end['reason'])}`, state };
      }
      await this.startServer();
      await journal.append('run-resume', { pid: process.pid });
      this.logger.info('resuming rollout', { runId: state.runId });
    } else {
      // The server first: a plan whose server cannot start leaves nothing in the journal, so the
      // fixed plan starts afresh in the same state directory.
      await this.startServer();
      await journal.append('run-start', {
        runId: randomUUID(),
        planPath: o.planPath,
        planDigest: o.planDigest,
        inventoryPath: o.inventoryPath,
        waves,
        // A DNS name is resolved once, at load: the journal keeps what SSH and the grant use.
        switches: planned.map((p) => {
          const sw = this.byName.get(p.name)!;
          return { name: p.name, address: sw.address, resolvedAddress: sw.resolvedAddress, driver: sw.driver, wave: p.wave, image: p.image };
        }),
      });
    }
    state = this.fold!.state;
    const range = parsePortRange(o.plan.server.pasvRange);
    // A passive port is held from PASV until the data connection is accepted, then free for the
    // next switch. So at most one switch per port may be between "copy" and its data connection:
    // more would queue in the server's PASV wait. Once connected, transfers need no port, and up to
    // `concurrency` of them run at once.
    const pasvPorts = typeof range === 'string' ? 5 : portRangeSize(range);
    this.connecting = new Semaphore(Math.min(o.plan.concurrency, pasvPorts));

    const total = state.switches.size;
    for (let w = 0; w < state.waves.length; w++) {
      if (state.wavesDone.has(w)) continue;
      const todo = state.waves[w]!.filter((n) => state.switches.get(n)?.outcome == null);
      await journal.append('wave-start', { wave: w, switches: todo.length });
      o.onEvent?.({ type: 'wave', wave: w });
      await this.pool(todo, o.plan.concurrency, async (name) => {
        if (!(await this.gate(total))) return;
        await this.processSwitch(name);
        this.checkThreshold(total);
      });
      if (this.stopReason || this.haltReason) break;
      state = this.fold!.state;
      const counts = countOutcomes(state.waves[w]!.map((n) => state.switches.get(n)!));
      await journal.append('wave-end', { wave: w, counts });
      if (w === 0 && o.plan.waves.canary > 0 && counts.failed > 0) {
        this.haltReason = `canary wave failed (${counts.failed} of ${state.waves[0]!.length})`;
        break;
      }
    }
    const outcome: RunOutcome = this.stopReason?.outcome ?? (this.haltReason ? 'halted' : 'completed');
    const reason = this.stopReason?.reason ?? this.haltReason ?? 'every wave done';
    state = this.fold!.state;
    await journal.append('run-end', { outcome, reason, counts: countOutcomes(state.switches.values()) });
    o.onEvent?.({ type: 'end', reason });
    return { outcome, reason, state: this.fold!.state };
  }

  private async startServer(): Promise<void> {
    if (this.options.server) {
      this.server = this.options.server;
      const limit = this.server.maxConnections();
      if (limit < this.options.plan.concurrency) {
        this.logger.warn('the plan runs more switches at once than the server takes connections: the rest get 421', { concurrency: this.options.plan.concurrency, maxConnections: limit });
      }
    } else {
      const s = this.options.plan.server;
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
          maxConnections: String(Math.max(defaults.maxConnections, this.options.plan.concurrency * 2)),
          maxPerIp: String(Math.max(defaults.maxPerIp, this.options.plan.concurrency * 2)),
        },
      });
      this.server = new FirmwareServer({ config, accounts: [], logger: (this.options.logger ?? silentLogger).child({ component: 'server' }) });
      try {
        await this.server.start();
      } catch (err) {
        this.server = null;
        // A port in use, no privilege for 21, no passive port: the plan's server section to fix (exit 2).
        if (err instanceof StartError) throw new RefusalError(`the plan's server cannot start: ${err.message}`);
        throw err;
      }
      this.ownsServer = true;
    }
    this.server.on('transfer', this.onTransfer);
    this.server.on('transfer-start', this.onTransferStart);
    this.server.on('transfer-progress', this.onProgress);
  }

  /** The data connection is up: the switch's passive port is free for the next one. */
  private readonly onTransferStart = (p: TransferProgress): void => {
    this.dataConnected.get(p.user)?.();
    this.onProgress(p);
  };

  private readonly onTransfer = (record: TransferRecord): void => {
      const grant = this.grants.get(record.user);
      if (!grant) return;
      // Not awaited (an event handler): the switch's next record is appended after this one, so it
      // cannot become durable first; a failed write fails every later append as well.
      this.journal!.append('audit', {
        name: grant.name,
        record: { client: record.client, user: record.user, path: record.path, offset: record.offset, bytes: record.bytes, sha256: record.sha256, result: record.result, code: record.code, durationMs: record.durationMs, commands: record.commands },
      }).catch((err: Error) => this.logger.error('cannot journal a transfer audit record', { switch: grant.name, error: err.message }));
  };

  private readonly onProgress = (p: TransferProgress): void => {
    const grant = this.grants.get(p.user);
    if (grant) this.options.onEvent?.({ type: 'progress', name: grant.name, bytes: p.bytes, expectedBytes: p.expectedBytes });
  };

  /** Whether a new switch may start now: waits while paused; false once aborted, halted or out of the window. */
  private async gate(total: number): Promise<boolean> {
    for (;;) {
      if (this.stopReason || this.haltReason) return false;
      const command = readControl(this.options.stateDir);
      if (command === 'abort') {
        await this.journal!.append('control', { command: 'abort' });
        this.stopReason = { outcome: 'aborted', reason: 'aborted by the operator' };
        return false;
      }
      if (command === 'pause') {
        if (!this.paused) {
          this.paused = true;
          await this.journal!.append('control', { command: 'pause' });
          this.options.onEvent?.({ type: 'paused' });
        }
        await sleep(CONTROL_POLL_MS);
        continue;
      }
      if (this.paused) {
        this.paused = false;
        await this.journal!.append('control', { command: 'resume' });
      }
      const deadline = this.options.deadline ?? null;
      if (deadline !== null && this.now() >= deadline) {
        this.stopReason = { outcome: 'window-closed', reason: 'the maintenance window closed; resume in the next one' };
        return false;
      }
      void total;
      return true;
    }
  }

  private checkThreshold(total: number): void {
    const { maxFailed, maxFailedPercent } = this.options.plan;
    const failed = countOutcomes(this.fold!.state.switches.values()).failed;
    if (maxFailed !== null && failed > maxFailed) this.haltReason ??= `failure threshold: ${failed} switches failed (more than ${maxFailed})`;
    if (maxFailedPercent !== null && (failed * 100) / total > maxFailedPercent) {
      this.haltReason ??= `failure threshold: ${failed} of ${total} switches failed (more than ${maxFailedPercent}%)`;
    }
  }

  private async pool(names: string[], concurrency: number, work: (name: string) => Promise<void>): Promise<void> {
    let next = 0;
    const worker = async () => {
      while (next < names.length) await work(names[next++]!);
    };
    await Promise.all(Array.from({ length: Math.min(concurrency, names.length) }, worker));
  }

  private async done(name: string, outcome: SwitchOutcome, reason: string, extra: { verdict?: string | null; hashes?: Hashes | null } = {}): Promise<void> {
    await this.journal!.append('switch', { name, phase: 'done', outcome, reason, verdict: extra.verdict ?? null, hashes: extra.hashes ?? null });
    this.options.onEvent?.({ type: 'switch', name, outcome, reason });
    this.logger.info('switch done', { switch: name, outcome, reason });
  }

  private async processSwitch(name: string): Promise<void> {
    const o = this.options;
    const sw = this.byName.get(name);
    const plan = this.planned.get(name)!;
    const entry = o.findImage(plan.image)!;
    const journal = this.journal!;
    await journal.append('switch', { name, phase: 'precheck' });
    if (!sw) return this.done(name, 'failed', 'no longer in the inventory');
    const driver = (o.driverFor ?? defaultDriverFor)(sw.driver);
    const refused = cannotContact(sw, driver);
    if (refused) {
      await journal.append('switch', { name, phase: 'prechecked', precheck: { reachable: false, error: refused } });
      return this.done(name, 'failed', refused, { verdict: driver.unsupported ? UNSUPPORTED_PLATFORM_VERDICT : null });
    }
    let session: SwitchSession | null = null;
    let secret = '';
    const recorded = journal.records.find((r) => r.t === HOST_KEY_RECORD && r['name'] === name);
    const hostKey = hostKeyCheckFor(sw, o.plan.hostKeys, (recorded?.['fingerprint'] as string | undefined) ?? null, async (fingerprint) => {
      // Durable before the key exchange goes on (the password comes after it).
      await journal.append(HOST_KEY_RECORD, { name, address: sw.resolvedAddress, fingerprint });
    });
    if (hostKey === null) {
      await journal.append('switch', { name, phase: 'prechecked', precheck: { reachable: false, error: NO_PINNED_HOST_KEY } });
      return this.done(name, 'failed', NO_PINNED_HOST_KEY);
    }
    try {
      const target = await switchTarget(sw, o.plan, hostKey, o.env);
      secret = target.password;
      session = await driver.connect(target);
    } catch (err) {
      if (isHostKeyError(err)) {
        await journal.append('switch', { name, phase: 'prechecked', precheck: { reachable: false, error: err.message } });
        return this.done(name, 'failed', err.message, { verdict: HOST_KEY_MISMATCH_VERDICT });
      }
      await journal.append('switch', { name, phase: 'prechecked', precheck: { reachable: false, error: redactSecrets(describeError(err), [secret]) } });
      return this.done(name, 'failed', `unreachable: ${redactSecrets(describeError(err), [secret])}`);
    }
    try {
      const facts = await gatherFacts(session, driver, plan, entry, o.plan.hashBytesPerSecond);
      const reference = { sha256: entry.sha256, md5: entry.md5, sha512: entry.sha512 } as Record<string, string>;
      const { model, version, freeBytes, onFlash } = facts;
      await journal.append('switch', {
        name,
        phase: 'prechecked',
        precheck: { reachable: true, model, version, freeBytes, onFlash, ssh: facts.session.algorithms, login: facts.session.authMethod, prompt: facts.session.prompt },
      });
      const decision = decide(facts, plan, entry);
      if (decision.action === 'skip') return this.done(name, 'skipped', decision.reason);
      if (decision.action === 'already-on-flash') {
        return this.done(name, 'verified', decision.reason, {
          verdict: 'verified',
          hashes: { catalogSha256: entry.sha256, serverSha256: null, switchDigests: { [facts.algorithm!]: facts.digest! }, switchAlgorithm: facts.algorithm },
        });
      }
      if (decision.action === 'fail') return this.done(name, 'failed', decision.reason);
      // The transfer: one-time credentials for this switch, this image, from where its FTP
      // connections come (`ftpSource`, else its resolved management address) only.
      // The slot first: the one-time password's lifetime starts at the grant, and must not be
      // spent waiting behind switches that hold every slot.
      await this.connecting.take();
      let slotHeld = true;
      const giveSlot = () => {
        if (!slotHeld) return;
        slotHeld = false;
        this.connecting.give();
      };
      let access: OneTimeAccess | null = null;
      let outcome;
      const started = this.now();
      const source = sw.ftpSource ?? sw.resolvedAddress!;
      try {
        access = await this.server!.grantOneTimeAccess({ sourceAddress: source, imagePath: plan.image, validForMs: o.plan.credentialMinutes * 60_000 });
        this.grants.set(access.user, { name, access });
        this.dataConnected.set(access.user, giveSlot);
        await journal.append('switch', { name, phase: 'transfer', user: access.user, source });
        const address = o.plan.server.address;
        const port = this.server!.address().port;
        const host = address.includes(':') ? `[${address}]` : address;
        const url = `ftp://${access.user}:${encodeURIComponent(access.password)}@${host}${port === 21 ? '' : `:${port}`}${access.path}`;
        outcome = await session.pull({ url, fileName: plan.fileName, timeoutMs: o.plan.pullTimeoutMs });
      } finally {
        access?.revoke();
        if (access) this.dataConnected.delete(access.user);
        giveSlot();
      }
      const durationMs = Math.round(this.now() - started);
      const audits = this.fold!.state.switches.get(name)!.audit.filter((a) => a['user'] === access!.user);
      const audit = audits.at(-1) ?? null;
      await journal.append('switch', {
        name,
        phase: 'transferred',
        ok: outcome.ok,
        message: outcome.message,
        bytes: outcome.bytes ?? (audit?.['bytes'] as number | undefined) ?? null,
        durationMs,
        ...(outcome.notes?.length ? { notes: outcome.notes } : {}),
      });
      if (!outcome.ok) {
        // No audit record at all: the switch never reached the server (or was refused before RETR).
        // The ftpSource hint only where a wrong source address is a likely cause: the switch got no
        // FTP reply it could show, or its login was refused (530). A 425 or 550 has other causes.
        const reply = /\b([45]\d\d)\b/.exec(outcome.message)?.[1];
        const hint = !sw.ftpSource && (reply === undefined || reply === '530') ? '; if the switch sources FTP from another address, set ftpSource' : '';
        const why = audit ? outcome.message : `${outcome.message} (the server saw no transfer from ${source}${hint})`;
        return this.done(name, 'failed', `the switch's copy failed: ${why}`, { hashes: { catalogSha256: entry.sha256, serverSha256: (audit?.['sha256'] as string) ?? null, switchDigests: {}, switchAlgorithm: null } });
      }
      await journal.append('switch', { name, phase: 'verify' });
      const switchDigests: Record<string, string> = {};
      // One hash, the platform's best (as the pre-check asks): every on-switch hash re-reads the
      // whole image from flash, minutes for a large image on a real switch, and a second weaker
      // algorithm adds no evidence the strong one lacks.
      const found = await session.fileHash(plan.fileName, { expectedBytes: entry.size, ...(o.plan.hashBytesPerSecond ? { bytesPerSecond: o.plan.hashBytesPerSecond } : {}) });
      if (found) switchDigests[found.algorithm] = found.digest;
      const report = judgeEvidence({
        reference: { digests: reference, size: entry.size },
        client: { digests: switchDigests, bytes: outcome.bytes ?? entry.size },
        server: audit ? { sha256: (audit['sha256'] as string | null) ?? null, bytes: audit['bytes'] as number, offset: audit['offset'] as number, result: audit['result'] as 'complete' | 'aborted' } : null,
      });
      const hashes: Hashes = { catalogSha256: entry.sha256, serverSha256: (audit?.['sha256'] as string) ?? null, switchDigests, switchAlgorithm: report.algorithms[0] ?? null };
      if (report.ok && audit && audit['sha256'] !== entry.sha256) {
        return this.done(name, 'failed', 'the switch holds the right bytes but the server audit disagrees with the catalog', { verdict: 'wrong-image-served', hashes });
      }
      return this.done(name, report.ok ? 'verified' : 'failed', report.reason, { verdict: report.verdict, hashes });
    } catch (err) {
      // A switch whose output cannot be read is a parse fault: it says nothing about the bytes.
      const verdict = err instanceof SwitchOutputError ? UNREADABLE_OUTPUT_VERDICT : null;
      return this.done(name, 'failed', redactSecrets(describeError(err), [secret]), { verdict });
    } finally {
      await session.close().catch(() => {});
    }
  }
}
