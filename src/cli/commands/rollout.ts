import { existsSync, mkdirSync, readdirSync, rmdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Option, type Command } from '../program.js';
import { ConfigError } from '../../core/errors.js';
import { formatCount } from '../../core/format.js';
import { ExitCode, ExitError } from '../exitCodes.js';
import { createLogger } from '../../log/logger.js';
import { connectEngine, redactUrl, resultsQueue, siteQueue, type JobEngine } from '../../engine/index.js';
import type { Logger } from '../../core/logger.js';
import {
  EngineExecutor,
  DocumentError,
  dryRunPrechecks,
  JOURNAL_FILE,
  RolloutRunner,
  activeRunner,
  buildReport,
  countOutcomes,
  foldJournal,
  prepareRollout,
  lockStateDir,
  nameSwitches,
  readControl,
  readJournal,
  releaseLock,
  runInWindows,
  writeControl,
  writeReports,
  ProgressRenderer,
  ProgressTracker,
  renderProgress,
  type MaintenanceWindow,
  type RunnerEvent,
  type RunSummary,
} from '../../rollout/index.js';

interface RunFlags {
  inventory: string;
  state: string;
  dryRun?: boolean;
  offline?: boolean;
  reportDir?: string;
  json?: boolean;
  logLevel: string;
  /** schedule: after a window closes with switches pending, wait for the next window and go on. */
  everyWindow?: boolean;
  /** Multi-site: the job engine whose site agents work on the switches. */
  engine?: string;
  engineCa?: string;
}

/** Connects to the engine of `--engine` (refusing a lossy one), or null without the flag. */
function openEngine(flags: { engine?: string; engineCa?: string }, logger: Logger): Promise<JobEngine> | null {
  if (!flags.engine) return null;
  return connectEngine({ url: flags.engine, ...(flags.engineCa ? { caFile: flags.engineCa } : {}), logger });
}

/** The sites of a multi-site rollout's journal, and the halted ones; null for a single-site rollout. */
function journaledSites(stateDir: string): { sites: string[]; halted: Set<string> } | null {
  const path = join(stateDir, JOURNAL_FILE);
  if (!existsSync(path)) return null;
  const state = foldJournal(readJournal(path).records);
  if (!state.start?.engine) return null;
  return { sites: state.start.engine.sites, halted: new Set(state.haltedSites.keys()) };
}

/** Exit code of a rollout that did not verify every switch. */
const ROLLOUT_INCOMPLETE = ExitCode.TRANSFER_FAILED;

/**
 * Wave, pause and switch lines on stdout, and on a TTY stderr the live progress block (overall and
 * per active switch). Returns the event handler and a `stop` that clears the block's timer.
 */
function progressPrinter(
  json: boolean,
  switches: readonly { name: string; address: string; image: string; plannedBytes: number | null; outcome: 'verified' | 'skipped' | 'failed' | null }[],
): { onEvent: (e: RunnerEvent) => void; stop: () => void } {
  const tracker = new ProgressTracker(switches);
  const images = new Map(switches.map((s) => [s.name, s.image]));
  const display = new ProgressRenderer(process.stderr, (now, width) => renderProgress(tracker.state(), now, width));
  if (!json) display.start();
  const say = (text: string) => display.print(text, process.stdout);
  const onEvent = (e: RunnerEvent): void => {
    if (json) return;
    if (e.type === 'progress') {
      // The runner forwards the server's transfer-progress events by switch name.
      tracker.transferProgress({ client: tracker.addressOf(e.name!) ?? e.name!, path: images.get(e.name!) ?? '', bytes: e.bytes!, expectedBytes: e.expectedBytes! }, Date.now());
      display.update();
      return;
    }
    if (e.type === 'wave') say(`wave ${e.wave}\n`);
    if (e.type === 'paused') say('paused: no new switches until `swfw rollout resume`\n');
    if (e.type === 'switch') {
      tracker.switchDone(e.name!, e.outcome!);
      display.update();
      say(`${e.name}: ${e.outcome}: ${e.reason}\n`);
    }
  };
  return { onEvent, stop: () => display.stop() };
}

/** Plan, inventory and catalog, with every problem as one `path: message` line and exit 2. */
async function prepare(planPath: string, inventoryPath: string) {
  let prepared;
  try {
    prepared = await prepareRollout(planPath, inventoryPath);
  } catch (err) {
    // Unreadable or unparsable files are usage errors too, not failures.
    if (err instanceof DocumentError) throw new ExitError(ExitCode.USAGE, err.message);
    throw err;
  }
  if (prepared.problems.length) {
    throw new ConfigError(
      prepared.problems.map((p) => ({
        path: `${planPath}: targets.${p.platform}`,
        message: `${p.message} (needed by ${nameSwitches(p.switches)} in ${inventoryPath})`,
      })),
    );
  }
  return prepared;
}

async function runRollout(planPath: string | undefined, flags: RunFlags, mode: 'run' | 'schedule' | 'resume'): Promise<void> {
  const stateDir = resolve(flags.state);
  if (mode === 'resume') {
    const other = activeRunner(stateDir);
    if (other !== null) {
      engineFlagProblem(stateDir, flags, 'resume');
      await writeControl(stateDir, 'run');
      await queueControl(stateDir, flags, 'resume');
      process.stdout.write(`resumed: runner pid ${other} starts new switches again\n`);
      return;
    }
    const start = readJournal(join(stateDir, JOURNAL_FILE)).records.find((r) => r.t === 'run-start');
    if (!start || start.t !== 'run-start') throw new ExitError(ExitCode.USAGE, `no rollout journal in ${stateDir}`);
    if (start.engine && !flags.engine) throw new ExitError(ExitCode.USAGE, `this rollout runs on the job engine at ${start.engine.url}: resume it with --engine URL`);
    if (!start.engine && flags.engine) throw new ExitError(ExitCode.USAGE, 'this rollout ran here, without a job engine: resume it without --engine');
    planPath = start.planPath;
    flags.inventory ??= start.inventoryPath;
    // An abort asked for while no runner worked stays asked for: this run ends the rollout as
    // aborted (running transfers, on an engine, finish) instead of taking it back.
    if (readControl(stateDir) !== 'abort') await writeControl(stateDir, 'run');
  }
  const prepared = await prepare(planPath!, flags.inventory);
  if (flags.dryRun && flags.engine && !flags.offline) {
    throw new ExitError(ExitCode.USAGE, "--dry-run pre-checks switches from this host, and on a job engine only the sites' agents reach them: use --dry-run --offline for the waves and sites");
  }
  if (flags.dryRun) {
    // Read-only pre-checks (show version, dir, one hash) unless --offline; nothing is written anywhere.
    const checks = flags.offline
      ? null
      : await dryRunPrechecks({ planned: prepared.planned, inventory: prepared.inventory, findImage: prepared.findImage, plan: prepared.plan });
    const rows = prepared.planned.map((p, i) => {
      const sw = prepared.inventory.find((s) => s.name === p.name)!;
      const check = checks?.[i] ?? null;
      return {
        wave: p.wave,
        name: p.name,
        address: sw.address,
        resolvedAddress: sw.resolvedAddress,
        driver: sw.driver,
        site: sw.site,
        image: p.image,
        targetVersion: p.targetVersion,
        precheck: check
          ? { reachable: check.reachable, version: check.facts?.version ?? null, freeBytes: check.facts?.freeBytes ?? null, onFlash: check.facts?.onFlash ?? null, ssh: check.facts?.session.algorithms ?? null }
          : null,
        action: check ? check.decision.action : 'pre-check; skip if on target or image on flash; else transfer and verify',
        reason: check ? check.decision.reason : null,
      };
    });
    if (flags.json) process.stdout.write(`${JSON.stringify({ dryRun: true, contacted: checks !== null, waves: prepared.waves, switches: rows })}\n`);
    else {
      prepared.waves.forEach((names, w) => process.stdout.write(`wave ${w}${w === 0 && prepared.plan.waves.canary > 0 ? ' (canary)' : ''}: ${formatCount(names.length, 'switch', 'switches')}\n`));
      for (const r of rows) {
        const where = r.resolvedAddress && r.resolvedAddress !== r.address ? `${r.address} [${r.resolvedAddress}]` : r.address;
        process.stdout.write(`  wave ${r.wave}  ${r.name} ${where} (${r.driver}${r.site ? `, site ${r.site}` : ''}) → ${r.image} (${r.targetVersion})${r.reason ? `: ${r.action}: ${r.reason}` : ''}\n`);
      }
      process.stdout.write(checks ? 'dry run: switches were only read (version, flash, hash); nothing was changed\n' : 'dry run: nothing was contacted or changed\n');
    }
    return;
  }
  // With --json, stdout carries one JSON object at the end; waiting notes go to stderr.
  const note = (text: string) => (flags.json ? process.stderr : process.stdout).write(`${text}\n`);
  const logger = createLogger({ level: flags.logLevel as 'info', logFile: null });
  const reportDir = flags.reportDir ?? stateDir;
  /** One run of the runner, and the reports written after it. */
  interface Ran {
    outcome: string;
    summary: RunSummary;
    reports: Awaited<ReturnType<typeof writeReports>>;
  }
  const runOnce = async (deadline: number | null, lockHeld = false): Promise<Ran> => {
    // Switches a resumed rollout (or an earlier window) already finished count as done from the start.
    const journalPath = join(stateDir, JOURNAL_FILE);
    const previous = existsSync(journalPath) ? foldJournal(readJournal(journalPath).records).switches : null;
    const progress = progressPrinter(
      !!flags.json,
      prepared.planned.map((p) => ({
        name: p.name,
        address: prepared.inventory.find((s) => s.name === p.name)?.address ?? p.name,
        image: p.image,
        plannedBytes: prepared.findImage(p.image)?.size ?? null,
        outcome: previous?.get(p.name)?.outcome ?? null,
      })),
    );
    try {
      const executor = engine ? new EngineExecutor({ engine, plan: prepared.plan, findImage: prepared.findImage, logger, onEvent: progress.onEvent }) : undefined;
      const summary = await new RolloutRunner({ stateDir, ...prepared, logger, deadline, lockHeld, onEvent: progress.onEvent, ...(executor ? { executor } : {}) }).run();
      // After every window, so a rollout spread over several nights has current reports each morning.
      const reports = await writeReports(reportDir, summary.state);
      return { outcome: summary.outcome, summary, reports };
    } finally {
      progress.stop();
    }
  };
  let ran: Ran;
  let engine: JobEngine | null = null;
  try {
    engine = await openEngine(flags, logger);
    // On a job engine, each switch's job waits in its site's queue for the site's window (its
    // delay), so `schedule` is `run`: the coordinator need not wait itself.
    ran = mode === 'schedule' && prepared.plan.window && !engine ? await scheduled(prepared.plan.window, stateDir, !!flags.everyWindow, note, runOnce) : await runOnce(null);
  } finally {
    await engine?.close();
    await logger.close();
  }
  const { summary, reports } = ran;
  const counts = countOutcomes(summary.state.switches.values());
  if (flags.json) process.stdout.write(`${JSON.stringify({ outcome: summary.outcome, reason: summary.reason, counts, reports })}\n`);
  else process.stdout.write(`rollout ${summary.outcome}: ${summary.reason}; verified ${counts.verified}, skipped ${counts.skipped}, failed ${counts.failed}, pending ${counts.pending}\nreports: ${reports.html}\n`);
  if (summary.outcome !== 'completed' || counts.failed > 0) {
    throw new ExitError(ROLLOUT_INCOMPLETE, `rollout ${summary.outcome}${counts.failed ? ` with ${formatCount(counts.failed, 'failed switch', 'failed switches')}` : ''}`);
  }
}

/**
 * `schedule` with a window: waits for it and runs in it (in every window, with --every-window).
 * The state directory's runner lock is held the whole time, waits included, so `status` shows
 * this process and `resume` cannot start a second runner outside the window. An `abort` written
 * while waiting ends the wait (the clock is re-read, and the control file with it, at least once
 * a minute).
 */
async function scheduled<T extends { outcome: string }>(
  window: MaintenanceWindow,
  stateDir: string,
  everyWindow: boolean,
  note: (text: string) => void,
  runOnce: (deadline: number | null, lockHeld: boolean) => Promise<T>,
): Promise<T> {
  const createdDir = !existsSync(stateDir);
  mkdirSync(stateDir, { recursive: true });
  lockStateDir(stateDir);
  try {
    // The CLI is the boundary that owns the real clock; the waiting logic gets it injected.
    const clock = {
      now: Date.now,
      sleep: async (ms: number) => {
        await sleep(ms);
        if (readControl(stateDir) === 'abort') throw new ExitError(ROLLOUT_INCOMPLETE, 'aborted by the operator while waiting for the window');
      },
    };
    const iso = (at: number) => (Number.isFinite(at) ? new Date(at).toISOString() : 'no end');
    let runs = 0;
    const last = await runInWindows({
      window,
      clock,
      everyWindow,
      onWait: ({ opensAt, closesAt }) => note(`${runs ? 'window closed; waiting for the next one' : 'waiting for the window'}: ${iso(opensAt)} to ${iso(closesAt)}`),
      onOpen: ({ closesAt }) => {
        runs++;
        note(`window open until ${iso(closesAt)}`);
      },
      runOnce: (deadline) => runOnce(deadline, true),
    });
    if (!last) {
      const ended = window.kind === 'absolute' && window.notAfter !== null ? ` at ${iso(window.notAfter)}` : '';
      throw new ExitError(ROLLOUT_INCOMPLETE, `the maintenance window ended${ended}: no switch was started`);
    }
    return last;
  } finally {
    releaseLock(stateDir);
    // A schedule that never got to run leaves no empty state directory behind.
    if (createdDir && readdirSync(stateDir).length === 0) rmdirSync(stateDir);
  }
}

async function statusCommand(flags: { state: string; json?: boolean; engine?: string; engineCa?: string }): Promise<void> {
  const stateDir = resolve(flags.state);
  const path = join(stateDir, JOURNAL_FILE);
  if (!existsSync(path)) {
    // `schedule` holds the lock while it waits for its first window, before any journal exists.
    const waiting = activeRunner(stateDir);
    if (waiting === null) throw new ExitError(ExitCode.USAGE, `no rollout journal in ${stateDir}`);
    if (flags.json) process.stdout.write(`${JSON.stringify({ runner: { pid: waiting }, control: readControl(stateDir), outcome: null, reason: 'waiting for the first window', waves: [], totals: null })}\n`);
    else process.stdout.write(`rollout not started yet: runner pid ${waiting} is waiting for the first window\n`);
    return;
  }
  const state = foldJournal(readJournal(path).records);
  if (!state.start) throw new ExitError(ExitCode.USAGE, `no rollout journal in ${stateDir} (a run refused before it started leaves nothing to continue)`);
  const report = buildReport(state);
  const runner = activeRunner(stateDir);
  const live = await engineStatus(state.start.engine?.sites ?? null, state.runId, flags);
  const queues = live?.queues ?? null;
  const unjournaled = live?.resultsWaiting ?? 0;
  const status = { runner: runner === null ? null : { pid: runner }, control: state.control, outcome: report.outcome, reason: report.reason, waves: report.waves, sites: report.sites, ...(live ?? {}), totals: report.totals };
  if (flags.json) {
    process.stdout.write(`${JSON.stringify({ ...status, switches: report.switches })}\n`);
    return;
  }
  const control = readControl(stateDir);
  const running = runner
    ? `running (pid ${runner})${control === 'pause' ? ', paused: no new switches until `swfw rollout resume`' : control === 'abort' ? ', aborting: running switches finish' : ''}`
    : control === 'abort'
      ? 'interrupted, abort requested: `swfw rollout resume` ends it as aborted'
      : 'interrupted: `swfw rollout resume` continues it';
  process.stdout.write(`rollout ${report.runId}: ${report.outcome ?? running}${report.reason ? ` (${report.reason})` : ''}\n`);
  for (const w of report.waves) process.stdout.write(`  wave ${w.wave}: ${formatCount(w.size, 'switch', 'switches')}, verified ${w.verified}, skipped ${w.skipped}, failed ${w.failed}, pending ${w.pending}\n`);
  for (const x of report.sites) {
    const q = queues?.find((y) => y.site === x.site);
    const live = q ? `; queue ${q.paused ? 'paused' : 'running'}: ${q.waiting} waiting, ${q.delayed} delayed, ${q.active} active; ${formatCount(q.agents, 'agent', 'agents')} connected` : '';
    process.stdout.write(`  site ${x.site}: ${formatCount(x.size, 'switch', 'switches')}, verified ${x.verified}, skipped ${x.skipped}, failed ${x.failed}, pending ${x.pending}${x.halted ? ` (halted: ${x.halted})` : ''}${live}\n`);
  }
  if (queues && queues.length > 0 && queues.every((q) => q.agents === 0 && q.waiting + q.delayed + q.active + q.completed + q.failed === 0)) {
    // Nothing of this rollout in any of its queues, not even finished jobs: likely another Redis.
    process.stdout.write(`  warning: ${flags.engine ? redactUrl(flags.engine) : 'the engine'} has no job of this rollout in any of its site queues and no agent: is it the engine the rollout runs on (${state.start.engine?.url ?? '?'})?\n`);
  }
  if (unjournaled) process.stdout.write(`  ${formatCount(unjournaled, 'result', 'results')} posted by the agents and not journaled yet: ${runner ? 'the coordinator is on it' : '`swfw rollout resume --engine URL` journals them'}\n`);
  for (const s of report.switches.filter((r) => r.outcome === 'failed')) process.stdout.write(`  failed ${s.name}: ${s.reason}\n`);
}

/** Runs `work` on a short-lived connection to the engine of `flags` (status, pause, resume, abort). */
async function withEngine<T>(flags: { engine: string; engineCa?: string }, work: (engine: JobEngine) => Promise<T>): Promise<T> {
  const logger = createLogger({ level: 'warn', logFile: null });
  try {
    const engine = await connectEngine({ url: flags.engine, ...(flags.engineCa ? { caFile: flags.engineCa } : {}), logger });
    try {
      return await work(engine);
    } finally {
      await engine.close();
    }
  } finally {
    await logger.close();
  }
}

/** With --engine, each site queue's live counts and connected agents, and the results not journaled yet; null without it. */
async function engineStatus(sites: string[] | null, runId: string | null, flags: { engine?: string; engineCa?: string }) {
  if (!flags.engine) return null;
  if (!sites || !runId) throw new ExitError(ExitCode.USAGE, 'this rollout ran without a job engine: say status without --engine');
  return withEngine({ ...flags, engine: flags.engine }, async (engine) => {
    const queues = await Promise.all(
      sites.map(async (site) => ({ site, paused: await engine.isPaused(siteQueue(site)), agents: await engine.workers(siteQueue(site)), ...(await engine.counts(siteQueue(site))) })),
    );
    let waiting = 0;
    for (const site of sites) {
      const r = await engine.counts(resultsQueue(runId, site));
      waiting += r.waiting + r.active + r.delayed;
    }
    return { queues, resultsWaiting: waiting };
  });
}

/** `--engine` and `--engine-ca`: a multi-site rollout's job engine. */
function engineOptions(c: Command): Command {
  return c
    .option('--engine <url>', "multi-site: the job engine (redis:// or rediss://) whose site agents work on the switches; the sites' queues hold pause and abort")
    .option('--engine-ca <file>', "PEM CA of the engine's TLS certificate (rediss://)");
}

/**
 * The queue side of pause, resume and abort for a rollout on a job engine: it holds while the
 * coordinator is down. Pause pauses every site queue of the rollout; abort also drains them
 * (waiting and delayed jobs removed, running transfers finish); resume resumes every site not
 * halted by its own threshold. Returns what was done, or null for a rollout without an engine.
 */
/** Refuses (exit 2) `--engine` for a rollout without one, and its absence for a rollout on one. */
function engineFlagProblem(stateDir: string, flags: { engine?: string }, command: 'pause' | 'abort' | 'resume'): void {
  const sites = journaledSites(stateDir);
  if (!sites && flags.engine) throw new ExitError(ExitCode.USAGE, `no rollout on a job engine in ${stateDir}`);
  if (sites && !flags.engine) throw new ExitError(ExitCode.USAGE, `this rollout runs on a job engine: say --engine URL, so the sites' queues are ${command === 'resume' ? 'resumed' : 'paused'} too`);
}

async function queueControl(stateDir: string, flags: { engine?: string; engineCa?: string }, command: 'pause' | 'abort' | 'resume'): Promise<string | null> {
  engineFlagProblem(stateDir, flags, command);
  const sites = journaledSites(stateDir);
  if (!sites || !flags.engine) return null;
  const engineFlags = { ...flags, engine: flags.engine };
  return withEngine(engineFlags, async (engine) => {
    const touched = command === 'resume' ? sites.sites.filter((s) => !sites.halted.has(s)) : sites.sites;
    for (const site of touched) {
      if (command === 'resume') await engine.resume(siteQueue(site));
      else await engine.pause(siteQueue(site));
      if (command === 'abort') await engine.drain(siteQueue(site), true);
    }
    return `${command === 'resume' ? 'resumed' : command === 'abort' ? 'paused and drained' : 'paused'} the queues of ${formatCount(touched.length, 'site', 'sites')}: ${touched.join(', ')}`;
  });
}

export function registerRollout(program: Command): void {
  const rollout = program.command('rollout').description('scheduled firmware rollouts to switch fleets (waves, journal, reports)');
  const common = (c: Command) =>
    engineOptions(c)
      .option('--state <dir>', 'rollout state directory (journal, control, reports)', 'rollout-state')
      .option('--report-dir <dir>', 'where the JSON, CSV and HTML reports go (default: the state directory)')
      .option('--json', 'one JSON object at the end')
      .addOption(new Option('--log-level <level>', 'log level on stderr').choices(['error', 'warn', 'info', 'debug']).default('warn'));
  common(
    rollout
      .command('run')
      .description('run a rollout now (starts the embedded FTP server from the plan)')
      .argument('<plan>', 'plan (YAML)')
      .requiredOption('--inventory <file>', 'inventory (YAML or JSON; required)')
      .option('--dry-run', 'print the waves and what would happen to whom: read-only pre-checks of every switch, nothing changed')
      .option('--offline', 'with --dry-run: contact no switch, print the waves only'),
  ).action((plan: string, flags: RunFlags) => runRollout(plan, flags, 'run'));
  common(
    rollout
      .command('schedule')
      .description("wait for the plan's maintenance window, run, and stop starting switches when it closes")
      .argument('<plan>', 'plan (YAML)')
      .requiredOption('--inventory <file>', 'inventory (YAML or JSON; required)')
      .option('--every-window', 'when a window closes with switches pending, wait for the next one and go on, until the rollout ends'),
  ).action((plan: string, flags: RunFlags) => runRollout(plan, flags, 'schedule'));
  common(rollout.command('resume').description('un-pause a running rollout, or continue one whose runner stopped (crash, reboot, window end)').option('--inventory <file>', 'inventory (default: the one the run started with)')).action(
    (flags: RunFlags) => runRollout(undefined, flags, 'resume'),
  );
  rollout
  engineOptions(
    rollout
      .command('status')
      .description("waves, sites and switches from the journal; with --engine, the sites' queues and agents too")
      .option('--state <dir>', 'rollout state directory', 'rollout-state')
      .option('--json', 'one JSON object'),
  ).action(statusCommand);
  for (const [name, command, text] of [
    ['pause', 'pause', 'start no new switches (running ones finish); on a job engine, pauses the sites\' queues'],
    ['abort', 'abort', 'start no new switches and end the rollout once running ones finish; on a job engine, drains the sites\' queues'],
  ] as const) {
    engineOptions(
      rollout
        .command(name)
        .description(text)
        .option('--state <dir>', 'rollout state directory', 'rollout-state'),
    ).action(async (flags: { state: string; engine?: string; engineCa?: string }) => {
      const stateDir = resolve(flags.state);
      // Refused before anything is written: a refusal that half happened would mislead.
      engineFlagProblem(stateDir, flags, command);
      await writeControl(stateDir, command);
      const sites = await queueControl(stateDir, flags, command);
      process.stdout.write(`${name}: requested${sites ? `; ${sites}` : ''}\n`);
    });
  }
}
