/**
 * Figure 7's machinery: an emulated fleet (`swfw emulate`), a one-image catalog, a plan, and one
 * timed `swfw rollout run` over them. Every child is started with spawnTracked and stopped by PID.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { HOST, PROJECT_ROOT, swfwArgv, type PortSpan } from './options.js';
import { HarnessError, hasExited, run, startUntilReady, tailLines, withoutSwfwEnv } from './proc.js';
import { assertPortsFree, spanPorts } from './servers.js';
import { withCpu } from './cpu.js';

/** The catalog platform the emulated switches report and the plan targets. */
export const ROLLOUT_PLATFORM = 'emulated';
/**
 * The CLI the emulated switches speak: NX-OS hashes with SHA-256 (`show file … sha256sum`), the
 * algorithm the 7f floor counts for each switch.
 */
const SWITCH_DRIVER = 'cisco-nxos';
const IMAGE_FILE = 'emulated/bench-2.0.bin';
const TARGET_VERSION = '2.0';
/** What the switches run before: anything but the target, so none is skipped as already current. */
const START_VERSION = '1.0';
const EMULATE_START_TIMEOUT_MS = 120_000;
const EMULATE_STOP_GRACE_MS = 30_000;
/** Where the emulated switches' flash goes when it exists (Linux's RAM-backed tmpfs). */
const RAM_DIR = '/dev/shm';

export interface RolloutSetup {
  switches: number;
  imageBytes: number;
  sshPort: number;
  firstOctet: number;
  pasv: PortSpan;
  /** Switches at once (the runner caps transfers at the passive range's size on top). */
  concurrency: number;
}

export interface RolloutRun {
  wallMs: number;
  verified: number;
  outcome: string;
  /** Per switch, from the runner's JSON report: one-time account granted to copy done (durationMs), ms. */
  transferMs: number[];
  /** Median per-switch time in each phase (the journal's step times), or null when unreadable. */
  phases: RolloutPhases | null;
  stateDir: string;
  command: string;
  /** CPU-ms during the timed run: the emulated switches (`swfw emulate`) and `swfw rollout run` (its embedded server included). */
  switchesCpuMs: number;
  rolloutCpuMs: number;
  /**
   * CPU-ms of a `--dry-run` over the same fleet just before: every switch's SSH login and its
   * read-only pre-checks (show version, dir), both sides, with no transfer.
   */
  dryRunCpuMs: number;
  dryRunMs: number;
}

const tail = tailLines;

/** The one-image repository: random bytes, catalogued with `swfw catalog add`. */
async function makeRepository(dir: string, bytes: number): Promise<string> {
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(join(dir, 'emulated'), { recursive: true, mode: 0o755 });
  writeFileSync(join(dir, IMAGE_FILE), randomBytes(bytes), { mode: 0o644 });
  const added = await run(process.execPath, swfwArgv('catalog', 'add', IMAGE_FILE, '--images', dir, '--platform', ROLLOUT_PLATFORM, '--version', TARGET_VERSION), {
    timeoutMs: 60_000,
    cwd: dir,
    env: withoutSwfwEnv(),
  });
  if (added.code !== 0) throw new HarnessError(`swfw catalog add failed (${added.code ?? added.signal}): ${tail(added.stderr)}`);
  return dir;
}

/** `swfw emulate`, running until the harness stops it; resolves once it printed "emulating N switches". */
async function startEmulator(root: string, setup: RolloutSetup, env: NodeJS.ProcessEnv, log: (line: string) => void): Promise<{ child: ChildProcess; inventory: string; stop: () => Promise<void> }> {
  const inventory = join(root, 'inventory.json');
  const logFile = join(root, 'emulate.log');
  const args = swfwArgv(
    'emulate',
    '--switches', String(setup.switches),
    '--platform', SWITCH_DRIVER,
    '--catalog-platform', ROLLOUT_PLATFORM,
    '--sw-version', START_VERSION,
    '--ssh-port', String(setup.sshPort),
    '--first-octet', String(setup.firstOctet),
    '--flash-bytes', String(Math.max(64 * 1024 * 1024, 4 * setup.imageBytes)),
    // Each real switch writes to its own flash; here 200 switches share one disk, whose page-cache
    // writes ran at 300-500 MiB/s on these VMs (tmpfs: 1.9 GiB/s). RAM stands in for their flash.
    ...(existsSync(RAM_DIR) ? ['--flash-under', RAM_DIR] : []),
    '--inventory-out', inventory,
  );
  // SIGTERM: the fleet closes its SSH servers and removes its flash directories.
  const { child, stop } = await startUntilReady({
    label: 'swfw emulate',
    args,
    env,
    cwd: PROJECT_ROOT,
    logFile,
    ready: /^emulating \d+ switches/m,
    timeoutMs: EMULATE_START_TIMEOUT_MS,
    stopGraceMs: EMULATE_STOP_GRACE_MS,
  });
  log(`  fig 7: swfw emulate running (pid ${child.pid}, ${setup.switches} switches on 127.0.1.${setup.firstOctet}-${setup.firstOctet + setup.switches - 1} port ${setup.sshPort})`);
  return { child, inventory, stop };
}

/**
 * Builds the repository, starts the fleet, writes the plan and times one `swfw rollout run --json`
 * from spawn to exit. Throws unless the rollout completed with every switch verified.
 */
export async function timedRollout(workDir: string, setup: RolloutSetup, log: (line: string) => void): Promise<RolloutRun> {
  await assertPortsFree(spanPorts(setup.pasv));
  const root = join(workDir, 'rollout');
  rmSync(root, { recursive: true, force: true });
  mkdirSync(root, { recursive: true });
  const images = await makeRepository(join(root, 'images'), setup.imageBytes);
  const env: NodeJS.ProcessEnv = { ...withoutSwfwEnv(), SWFW_SWITCH_PASSWORD: randomBytes(12).toString('base64url') };
  const emulator = await startEmulator(root, setup, env, log);
  try {
    const plan = join(root, 'plan.json');
    writeFileSync(
      plan,
      `${JSON.stringify(
        {
          targets: { [ROLLOUT_PLATFORM]: IMAGE_FILE },
          // The canary alone, then everyone else.
          waves: { canary: 1, percent: [100] },
          concurrency: setup.concurrency,
          failureThreshold: { maxFailed: 0 },
          // Port 0: the embedded server takes a free control port; the passive range is ours.
          server: { address: HOST, listen: HOST, port: 0, pasvRange: `${setup.pasv.min}-${setup.pasv.max}`, images },
          timeouts: { sshSeconds: 30, pullSeconds: 600 },
        },
        null,
        2,
      )}\n`,
    );
    const stateDir = join(root, 'state');
    const timeoutMs = 60_000 + setup.switches * 10_000;
    const emulatorPid = [emulator.child.pid!];
    // The SSH part of the job alone, for figure 7's floor: a dry run changes nothing on the switches.
    const dry = await withCpu(emulatorPid, () =>
      run(process.execPath, swfwArgv('rollout', 'run', plan, '--inventory', emulator.inventory, '--dry-run', '--json'), { timeoutMs, env, cwd: PROJECT_ROOT }),
    );
    if (dry.result.code !== 0) throw new HarnessError(`swfw rollout run --dry-run failed (exit ${dry.result.code ?? dry.result.signal}):\n${tail(dry.result.stderr)}`);
    const args = swfwArgv('rollout', 'run', plan, '--inventory', emulator.inventory, '--state', stateDir, '--json');
    const command = `node ${args.map((a) => a.replace(PROJECT_ROOT + '/', '')).join(' ')}`;
    if (hasExited(emulator.child)) throw new HarnessError('swfw emulate exited before the rollout');
    const timed = await withCpu(emulatorPid, () => run(process.execPath, args, { timeoutMs, env, cwd: PROJECT_ROOT }));
    const result = timed.result;
    writeFileSync(join(root, 'rollout.stdout'), result.stdout);
    writeFileSync(join(root, 'rollout.stderr'), result.stderr);
    const last = result.stdout.trim().split('\n').at(-1) ?? '';
    let summary: { outcome?: string; reason?: string; counts?: Record<string, number> };
    try {
      summary = JSON.parse(last) as typeof summary;
    } catch {
      throw new HarnessError(`swfw rollout run (exit ${result.code ?? result.signal}) printed no JSON summary:\n${tail(result.stderr)}`);
    }
    const verified = summary.counts?.['verified'] ?? 0;
    if (result.code !== 0 || summary.outcome !== 'completed' || verified !== setup.switches) {
      throw new HarnessError(
        `rollout did not verify every switch: exit ${result.code ?? result.signal}, outcome ${summary.outcome} (${summary.reason}), counts ${JSON.stringify(summary.counts)}; state in ${stateDir}\n${tail(result.stderr)}`,
      );
    }
    let transferMs: number[] = [];
    try {
      const report = JSON.parse(readFileSync(join(stateDir, 'rollout-report.json'), 'utf8')) as { switches?: { durationMs?: number | null }[] };
      transferMs = (report.switches ?? []).map((s) => s.durationMs).filter((ms): ms is number => typeof ms === 'number');
    } catch {
      // The report is for the note only; the JSON summary above is what is asserted.
    }
    return {
      wallMs: result.ms,
      verified,
      outcome: summary.outcome,
      transferMs,
      phases: phasesOf(join(stateDir, 'journal.jsonl')),
      stateDir,
      command,
      switchesCpuMs: timed.byPidMs[0]!,
      rolloutCpuMs: timed.childrenMs,
      dryRunCpuMs: dry.cpuMs,
      dryRunMs: dry.result.ms,
    };
  } finally {
    await emulator.stop();
  }
}

/** Median milliseconds per switch in each phase of its work, from the journal's step times. */
export interface RolloutPhases {
  /** SSH connect, login and the pre-check commands (precheck → prechecked). */
  precheck: number;
  /** A passive slot and the one-time grant (prechecked → transfer). */
  grant: number;
  /** The switch's copy (transfer → transferred). */
  copy: number;
  /** The switch's hash and the three-way verdict (verify → done). */
  verify: number;
  /** Rollout start to this switch's first step: waiting for its wave and a concurrency slot. */
  queued: number;
}

function phasesOf(journalFile: string): RolloutPhases | null {
  try {
    const records = readFileSync(journalFile, 'utf8').split('\n').filter(Boolean).map((line) => JSON.parse(line) as { t: string; at: string; name?: string; phase?: string });
    const start = Date.parse(records.find((r) => r.t === 'run-start')?.at ?? '');
    const steps = new Map<string, Record<string, number>>();
    for (const r of records) {
      if (r.t !== 'switch' || !r.name || !r.phase) continue;
      const times = steps.get(r.name) ?? {};
      times[r.phase] = Date.parse(r.at);
      steps.set(r.name, times);
    }
    const medianOf = (pick: (t: Record<string, number>) => number) => {
      const values = [...steps.values()].map(pick).filter((v) => Number.isFinite(v)).sort((a, b) => a - b);
      return values.length ? values[Math.floor(values.length / 2)]! : Number.NaN;
    };
    return {
      queued: medianOf((t) => t['precheck']! - start),
      precheck: medianOf((t) => t['prechecked']! - t['precheck']!),
      grant: medianOf((t) => t['transfer']! - t['prechecked']!),
      copy: medianOf((t) => t['transferred']! - t['transfer']!),
      verify: medianOf((t) => t['done']! - t['verify']!),
    };
  } catch {
    return null;
  }
}
