/**
 * The swfw benchmark: swfw serve against vsftpd (and swfw pull against curl) on loopback, in one
 * run. `npm run bench` for the full run (writes bench/RESULTS.md), `npm run bench -- --smoke` for
 * a sub-minute check that the harness and every transfer path work. See `--help`.
 */
import { existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { prepareImages } from './images.js';
import { machineInfo } from './machine.js';
import { parseOptions, UsageError, USAGE, VSFTPD, WORK_DIR, type BenchOptions } from './options.js';
import { HarnessError, killAllNow, quick, which } from './proc.js';
import { markdownReport, textTable, writeReport } from './report.js';
import { startSwfw, startVsftpd, type RunningServer } from './servers.js';
import { runFigures } from './figures.js';
import { procStatusBytes } from './memory.js';
import { cores, cpuSourceOf, removeStaleCgroups, sha256MsPerByte, untrackAllNow } from './cpu.js';

/** Exit codes: the table is the product, so a missed target is not a failure unless --strict. */
const Exit = { OK: 0, HARNESS_FAILED: 1, USAGE: 2, TARGET_MISSED: 3, INTERRUPTED: 130 } as const;
/** A smoke run should stay well under a minute; past this we say so (it is not a failure). */
const SMOKE_BUDGET_MS = 60_000;

const started = performance.now();
const log = (line: string): void => {
  process.stderr.write(`[bench ${((performance.now() - started) / 1000).toFixed(1).padStart(6)} s] ${line}\n`);
};

/**
 * The Debian package, when vsftpd is missing and we are root. A temporary policy-rc.d stops the
 * package's post-install from starting a system vsftpd on port 21, which is not ours to stop.
 */
function installVsftpd(): void {
  if (process.getuid?.() !== 0) throw new HarnessError(`${VSFTPD} is missing; install it: apt-get install vsftpd`);
  log('vsftpd is missing: installing the Debian package');
  const policy = '/usr/sbin/policy-rc.d';
  const created = !existsSync(policy);
  if (created) writeFileSync(policy, '#!/bin/sh\nexit 101\n', { mode: 0o755 });
  try {
    quick('env', ['DEBIAN_FRONTEND=noninteractive', 'apt-get', 'update', '-qq'], 300_000);
    const install = quick('env', ['DEBIAN_FRONTEND=noninteractive', 'apt-get', 'install', '-y', '-qq', '--no-install-recommends', 'vsftpd'], 600_000);
    if (install?.code !== 0 || !existsSync(VSFTPD)) throw new HarnessError(`apt-get install vsftpd failed: ${install?.stderr.trim().slice(-400) ?? ''}`);
  } finally {
    if (created) rmSync(policy, { force: true });
  }
}

function checkTools(): void {
  const missing = ['curl', 'python3', 'bash', 'sha256sum'].filter((tool) => !which(tool));
  if (missing.length) throw new HarnessError(`missing tools: ${missing.join(', ')} (apt-get install curl python3 coreutils)`);
  if (!existsSync(VSFTPD)) installVsftpd();
  // vsftpd chroots into anon_root and drops to the ftp user: both need root.
  if (process.getuid?.() !== 0) throw new HarnessError('vsftpd needs root (it chroots into anon_root); run the benchmark as root');
}

async function bench(options: BenchOptions, servers: RunningServer[]): Promise<number> {
  checkTools();
  removeStaleCgroups();
  const machine = machineInfo();
  mkdirSync(WORK_DIR, { recursive: true });
  log(`${options.smoke ? 'smoke' : 'full'} run: ${options.warmups} warm-up + ${options.reps} counted rounds; work dir ${WORK_DIR}`);
  const images = prepareImages(WORK_DIR, options.smoke ? 'smoke' : 'full', options.sizes, log);

  const swfw = await startSwfw({ workDir: WORK_DIR, imagesDir: images.dir, port: options.swfwPort, pasv: options.swfwPasv, raiseLimits: options.raiseSwfwLimits });
  servers.push(swfw);
  log(`swfw serve running (pid ${swfw.pid}, port ${options.swfwPort}, log ${swfw.logFile})`);
  const swfwNoHash = await startSwfw({ workDir: WORK_DIR, imagesDir: images.dir, port: options.swfwNoHashPort, pasv: options.swfwNoHashPasv, raiseLimits: options.raiseSwfwLimits, hashSentBytes: false });
  servers.push(swfwNoHash);
  log(`swfw serve --no-hash-sent-bytes running (pid ${swfwNoHash.pid}, port ${options.swfwNoHashPort}; figures 1b and 3b)`);
  const vsftpd = await startVsftpd({ workDir: WORK_DIR, imagesDir: images.dir, port: options.vsftpdPort, pasv: options.vsftpdPasv });
  servers.push(vsftpd);
  log(`vsftpd running (pid ${vsftpd.pid}, port ${options.vsftpdPort}); its CPU is counted by ${cpuSourceOf(vsftpd.pid)}`);

  const swfwStartRssBytes = procStatusBytes(swfw.pid, 'VmRSS') ?? Number.NaN;
  const sha256 = sha256MsPerByte();
  log(`SHA-256 on one core: ${(1 / sha256 / 1e6).toFixed(2)} GB/s (${((sha256 * 1024 ** 3) / 1000).toFixed(2)} s per GiB); ${cores()} cores`);
  const rows = await runFigures({ options, images, swfw, swfwNoHash, vsftpd, workDir: WORK_DIR, swfwStartRssBytes, log, cores: cores(), sha256MsPerByte: sha256 });
  await stopAll(servers);

  const durationMs = performance.now() - started;
  process.stdout.write(`\n${textTable(rows)}\n\n`);
  if (options.resultsFile) {
    const report = markdownReport(rows, machine, {
      options,
      command: `npm run bench${process.argv.length > 2 ? ` -- ${process.argv.slice(2).join(' ')}` : ''}`,
      swfwCommand: swfw.setup,
      vsftpdConfig: vsftpd.setup,
      vsftpdCpuSource: cpuSourceOf(vsftpd.pid),
      durationMs,
    });
    writeReport(options.resultsFile, report);
    log(`wrote ${options.resultsFile}`);
  }
  log(`done in ${(durationMs / 1000).toFixed(1)} s`);
  if (options.smoke && durationMs > SMOKE_BUDGET_MS) log(`note: the smoke run took longer than ${SMOKE_BUDGET_MS / 1000} s (machine busy?)`);
  const missed = rows.filter((r) => r.verdict === 'MISS');
  if (missed.length) log(`missed targets: figure ${missed.map((r) => r.id).join(', ')}`);
  return options.strict && missed.length ? Exit.TARGET_MISSED : Exit.OK;
}

/** Stops the servers we started, newest first; each by its PID. */
async function stopAll(servers: RunningServer[]): Promise<void> {
  for (const server of servers.splice(0).reverse()) {
    log(`stopping ${server.endpoint.name} (pid ${server.pid})`);
    await server.stop();
  }
}

async function main(): Promise<void> {
  let options: BenchOptions | null;
  try {
    options = parseOptions(process.argv.slice(2));
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    process.stderr.write(`bench: ${err.message}\n\n${USAGE}\n`);
    process.exitCode = Exit.USAGE;
    return;
  }
  if (!options) {
    process.stdout.write(`${USAGE}\n`);
    return;
  }
  const servers: RunningServer[] = [];
  // Every way out stops what we started: normal end, error, Ctrl-C, and (last resort) exit.
  process.on('exit', () => {
    killAllNow();
    untrackAllNow();
  });
  let interrupted = false;
  const onSignal = (signal: NodeJS.Signals) => {
    if (interrupted) return;
    interrupted = true;
    log(`${signal}: stopping the servers`);
    void stopAll(servers).finally(() => process.exit(Exit.INTERRUPTED));
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    process.exitCode = await bench(options, servers);
  } catch (err) {
    if (interrupted) return;
    log(err instanceof HarnessError ? `FAILED: ${err.message}` : `FAILED: ${(err as Error).stack ?? String(err)}`);
    process.exitCode = Exit.HARNESS_FAILED;
  } finally {
    if (!interrupted) await stopAll(servers);
    process.removeListener('SIGINT', onSignal);
    process.removeListener('SIGTERM', onSignal);
  }
}

await main();
