import { chmodSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { swfwArgv, Targets, type BenchOptions } from './options.js';
import type { ImageSet } from './images.js';
import type { RunningServer } from './servers.js';
import { curlConcurrent, curlOpensslSha256, curlToFile, curlToNull, detectSwfwPull, ftplibRetrLoop, requireOk, swfwPull, type Transfer } from './clients.js';
import { HarnessError, run, withoutSwfwEnv } from './proc.js';
import { PeakRss, procStatusBytes, resetPeakRss } from './memory.js';
import { timedRollout } from './rollout.js';
import { figureMultisite } from './multisite.js';
import { mebibytes, median, pairRatios, seconds, summarize, type Summary } from './stats.js';
import { floorMs, withCpu } from './cpu.js';

export interface BenchContext {
  options: BenchOptions;
  images: ImageSet;
  swfw: RunningServer;
  /** The same swfw with --no-hash-sent-bytes (figures 1b and 3b). */
  swfwNoHash: RunningServer;
  vsftpd: RunningServer;
  workDir: string;
  /** swfw's resident memory right after start-up: against "idle before figure 6" it shows growth. */
  swfwStartRssBytes: number;
  /** Progress lines (stderr); the table goes to stdout. */
  log: (line: string) => void;
  /** Cores the floors divide CPU-seconds by. */
  cores: number;
  /** One core's SHA-256 speed here (cpu.ts), for the floors of the figures that hash. */
  sha256MsPerByte: number;
}

/**
 * PASS/MISS against the target; smoke runs are not judged, only checked for correctness. Floor
 * rows say in how many rounds the figure's target was below what the work needs on this machine.
 */
export type Verdict = 'PASS' | 'MISS' | 'n/a' | 'info' | 'not judged (smoke)' | `target below floor in ${number}/${number} rounds`;

/** One row of the results table. */
export interface FigureRow {
  id: string;
  title: string;
  /** Human form of the target, e.g. "≤ 1.15". */
  target: string;
  /** The judged quantity over the counted runs: a ratio, or bytes for memory rows. */
  value: Summary | null;
  unit: 'ratio' | 'bytes' | 'ms';
  /** Medians of the absolute measurements behind the value. */
  absolute: string;
  verdict: Verdict;
  note?: string;
}

const MiB = 1024 * 1024;
/**
 * Tries per timed run. vsftpd picks a random passive port per PASV and kills the session with
 * "500 OOPS" when its binds collide, which happens now and then with 5 sessions on 5 ports. Such
 * a run is not a time: it is repeated, and the row says how often. A run still failing after this
 * many tries fails the benchmark.
 */
const MAX_TRIES = 3;

/** Runs repeated after a failed transfer, per server, with the last client error. */
class Repeats {
  private readonly byServer = new Map<string, { runs: number; error: string }>();
  record(server: string, error: string): void {
    const entry = this.byServer.get(server) ?? { runs: 0, error };
    entry.runs++;
    entry.error = error;
    this.byServer.set(server, entry);
  }
  /** For the row's note, e.g. "vsftpd: 1 run repeated (curl: (13) Bad PASV/EPSV response: 500)". */
  note(): { note: string } | Record<string, never> {
    if (this.byServer.size === 0) return {};
    const parts = [...this.byServer].map(([server, e]) => `${server}: ${e.runs} run${e.runs > 1 ? 's' : ''} repeated after a failed transfer (${e.error})`);
    return { note: parts.join('; ') };
  }
}

/** A run's wall time, with the CPU of the attempt it came from when the runner measured it itself. */
type Timed = number | { ms: number; cpuMs: number; settled: boolean };

/**
 * Times a run whose transfers must all succeed, repeating it (up to MAX_TRIES) when one fails.
 * Each attempt's CPU is measured alone (server `pid` and clients): a failed attempt's must not be
 * charged to the run that is kept.
 */
async function timeAllOk(what: string, server: RunningServer, repeats: Repeats, once: () => Promise<{ ms: number; transfers: Transfer[] }>): Promise<Timed> {
  for (let attempt = 1; ; attempt++) {
    const { result, cpuMs, settled } = await withCpu([server.pid], once);
    const { ms, transfers } = result;
    const failed = transfers.filter((t) => !t.ok);
    if (failed.length === 0) return { ms, cpuMs, settled };
    const error = `${failed.length} of ${transfers.length} failed: ${failed[0]!.error}`;
    if (attempt >= MAX_TRIES) throw new HarnessError(`${what}, ${server.endpoint.name}: ${error} (${MAX_TRIES} tries)`);
    repeats.record(server.endpoint.name, error);
  }
}

function judge(ctx: BenchContext, passed: boolean | null): Verdict {
  if (passed === null) return 'n/a';
  if (ctx.options.smoke) return 'not judged (smoke)';
  return passed ? 'PASS' : 'MISS';
}

const sizeLabel = (bytes: number): string => (bytes >= 1024 * MiB ? `${bytes / 1024 / MiB} GiB` : bytes >= MiB ? `${bytes / MiB} MiB` : `${bytes / 1024} KiB`);

const SETTLE_NOTE = '3 s after the run: its CPU may be counted in the next run';

/** Per runner, the counted rounds' wall times and the CPU burnt meanwhile (see cpu.ts). */
interface Rounds<K extends string> {
  ms: Record<K, number[]>;
  cpuMs: Record<K, number[]>;
}

/**
 * Runs each runner once per round, in the given order (swfw first, then the reference), for the
 * warm-up rounds and then the counted ones. A runner's CPU is that of its server (`pids`) plus
 * its clients, which are this harness's children.
 */
async function alternate<K extends string>(ctx: BenchContext, label: string, runners: Record<K, () => Promise<Timed>>, pids: Partial<Record<K, number[]>> = {}): Promise<Rounds<K>> {
  const names = Object.keys(runners) as K[];
  const empty = () => Object.fromEntries(names.map((n) => [n, [] as number[]])) as unknown as Record<K, number[]>;
  const counted: Rounds<K> = { ms: empty(), cpuMs: empty() };
  const { warmups, reps } = ctx.options;
  for (let round = 0; round < warmups + reps; round++) {
    const times: string[] = [];
    for (const name of names) {
      const outer = await withCpu(pids[name] ?? [], runners[name]);
      const own = typeof outer.result === 'number' ? null : outer.result;
      const ms = own?.ms ?? (outer.result as number);
      const cpuMs = own?.cpuMs ?? outer.cpuMs;
      times.push(`${name} ${seconds(ms)} (CPU ${seconds(cpuMs)})`);
      if (!(own?.settled ?? outer.settled)) ctx.log(`  ${label}: ${name}'s server still had a process running ${SETTLE_NOTE}`);
      if (round >= warmups) {
        counted.ms[name].push(ms);
        counted.cpuMs[name].push(cpuMs);
      }
    }
    ctx.log(`  ${label} ${round < warmups ? 'warm-up' : `round ${round - warmups + 1}/${reps}`}: ${times.join(', ')}`);
  }
  return counted;
}

/** Figures 1 and 3: each round runs `time` against swfw, vsftpd, then swfw --no-hash-sent-bytes. */
const withThreeServers = (ctx: BenchContext, label: string, time: (server: RunningServer) => Promise<Timed>) =>
  alternate(
    ctx,
    label,
    { swfw: () => time(ctx.swfw), vsftpd: () => time(ctx.vsftpd), 'no-hash swfw': () => time(ctx.swfwNoHash) },
    { swfw: [ctx.swfw.pid], vsftpd: [ctx.vsftpd.pid], 'no-hash swfw': [ctx.swfwNoHash.pid] },
  );

/** "1.13 s (CPU 1.85 s)": a run's wall time with the CPU-seconds burnt meanwhile. */
const wallAndCpu = (ms: number[], cpuMs: number[]): string => `${seconds(median(ms))} (CPU ${seconds(median(cpuMs))})`;

/**
 * Row 1b or 3b: the same figure for swfw with --no-hash-sent-bytes, run in the same rounds. Not a
 * target (the default hashes): it shows what the data path costs and what the hash adds.
 */
function withoutHashRow(id: string, title: string, noHash: number[], vsftpd: number[], noHashCpu: number[]): FigureRow {
  return {
    id,
    title,
    target: '— (report)',
    value: summarize(pairRatios(noHash, vsftpd)),
    unit: 'ratio',
    absolute: `swfw --no-hash-sent-bytes ${wallAndCpu(noHash, noHashCpu)}, vsftpd ${seconds(median(vsftpd))}`,
    verdict: 'info',
  };
}

interface FloorSpec {
  id: string;
  title: string;
  /** The figure's target ratio, compared with the floor's median. */
  target: number;
  /** The reference's counted rounds: wall and CPU. */
  refMs: number[];
  refCpuMs: number[];
  /** CPU work swfw must do on top of the reference's (the SHA-256), per round. */
  extraCpuMs: number;
  /** The part that cannot be split across cores (one SHA-256 stream). */
  serialMs: number;
  /** Wall time that must pass before any of that work can start (the pull's start-up); 0 if none. */
  beforeMs?: number;
  absolute: string;
}

/**
 * A floor row: per counted round, the shortest wall time in which the reference's measured CPU
 * work plus `extraCpuMs` (SHA-256 at this machine's measured speed) could finish on this machine's
 * cores (cpu.ts floorMs), ÷ the reference's wall. For figures 1, 3 and 4 the reference moves the
 * bytes with vsftpd's sendfile and curl; a round whose floor is above the target is one in which
 * a server doing that work and the hash could not have met the target here.
 */
function floorRow(ctx: BenchContext, spec: FloorSpec): FigureRow {
  const ratios = spec.refMs.map((ms, i) => ((spec.beforeMs ?? 0) + floorMs(spec.refCpuMs[i]! + spec.extraCpuMs, spec.serialMs, ctx.cores)) / ms);
  const value = summarize(ratios);
  const above = ratios.filter((r) => r > spec.target).length;
  const verdict: Verdict = ctx.options.smoke ? 'not judged (smoke)' : `target below floor in ${above}/${ratios.length} rounds`;
  return { id: spec.id, title: spec.title, target: `— (figure's target ≤ ${spec.target})`, value, unit: 'ratio', absolute: spec.absolute, verdict };
}

/**
 * Figure 1: one 1 GiB RETR to `curl -o /dev/null`, on swfw's defaults (`hashSentBytes:
 * per-version`: after the warm-up the version is known, its digest is carried, nothing is hashed);
 * row 1b: the same without any hash; row 1c: the first transfer of a new version (the file's ctime
 * moved by a chmod, so swfw hashes it on the stream), judged against its floor (1f).
 */
export async function figureServeLarge(ctx: BenchContext): Promise<FigureRow[]> {
  const file = ctx.images.large;
  const repeats = new Repeats();
  const time = (server: RunningServer) =>
    timeAllOk('figure 1', server, repeats, async () => {
      const transfer = await curlToNull(server.endpoint, file);
      return { ms: transfer.ms, transfers: [transfer] };
    });
  const rounds = await alternate(
    ctx,
    'fig 1',
    {
      swfw: () => time(ctx.swfw),
      vsftpd: () => time(ctx.vsftpd),
      'no-hash swfw': () => time(ctx.swfwNoHash),
      // A chmod to the same mode moves ctime only: a new file version with the same bytes, size and mtime.
      'swfw new version': () => {
        chmodSync(file.path, statSync(file.path).mode & 0o7777);
        return time(ctx.swfw);
      },
    },
    { swfw: [ctx.swfw.pid], vsftpd: [ctx.vsftpd.pid], 'no-hash swfw': [ctx.swfwNoHash.pid], 'swfw new version': [ctx.swfw.pid] },
  );
  const { ms: times, cpuMs } = rounds;
  const value = summarize(pairRatios(times.swfw, times.vsftpd));
  const row: FigureRow = {
    id: '1',
    title: `Serve ${sizeLabel(file.size)} to curl -o /dev/null, swfw on its defaults (hashSentBytes per-version), the version already hashed: swfw ÷ vsftpd`,
    target: `≤ ${Targets.serveLarge}`,
    value,
    unit: 'ratio',
    absolute: `swfw ${wallAndCpu(times.swfw, cpuMs.swfw)}, vsftpd ${wallAndCpu(times.vsftpd, cpuMs.vsftpd)}; CPU counts server and curl`,
    verdict: judge(ctx, value.median <= Targets.serveLarge),
    ...repeats.note(),
  };
  const hashMs = file.size * ctx.sha256MsPerByte;
  // 1c's floor per round, in ms: vsftpd's and curl's work plus one SHA-256 stream, on these cores.
  const floorAbsMs = cpuMs.vsftpd.map((cpu) => floorMs(cpu + hashMs, hashMs, ctx.cores));
  const newVersion = summarize(times['swfw new version'].map((ms, i) => ms / floorAbsMs[i]!));
  const newVersionRow: FigureRow = {
    id: '1c',
    title: `The first transfer of a new version of ${sizeLabel(file.size)} (hashed on the stream) ÷ its floor (1f)`,
    target: `≤ ${Targets.serveNewVersionVsFloor}`,
    value: newVersion,
    unit: 'ratio',
    absolute: `swfw ${wallAndCpu(times['swfw new version'], cpuMs['swfw new version'])}, floor ${seconds(median(floorAbsMs))}`,
    verdict: judge(ctx, newVersion.median <= Targets.serveNewVersionVsFloor),
  };
  const floor = floorRow(ctx, {
    id: '1f',
    title: `Floor of figure 1c here: (vsftpd's and curl's CPU + SHA-256 of ${sizeLabel(file.size)}) ÷ ${ctx.cores} cores, ÷ vsftpd's wall: the lowest ratio for a server doing vsftpd's work plus the hash of sent bytes`,
    target: Targets.serveNewVersionVsFloor,
    refMs: times.vsftpd,
    refCpuMs: cpuMs.vsftpd,
    extraCpuMs: hashMs,
    serialMs: hashMs,
    absolute: `SHA-256 of ${sizeLabel(file.size)} on one core ${seconds(hashMs)}; vsftpd + curl CPU ${seconds(median(cpuMs.vsftpd))} in ${seconds(median(times.vsftpd))} of wall`,
  });
  return [row, withoutHashRow('1b', `The same with swfw --no-hash-sent-bytes (data path alone): swfw ÷ vsftpd`, times['no-hash swfw'], times.vsftpd, cpuMs['no-hash swfw']), newVersionRow, floor];
}

/** Figure 2: 200 small RETRs on one ftplib session, only the loop timed. */
export async function figureSmallRetrs(ctx: BenchContext): Promise<FigureRow> {
  const files = ctx.images.small;
  const { ms: times } = await alternate(ctx, 'fig 2', {
    swfw: () => ftplibRetrLoop(ctx.swfw.endpoint, files),
    vsftpd: () => ftplibRetrLoop(ctx.vsftpd.endpoint, files),
  });
  const value = summarize(pairRatios(times.swfw, times.vsftpd));
  return {
    id: '2',
    title: `${files.length} × ${sizeLabel(files[0]!.size)} RETR on one session (python ftplib): swfw ÷ vsftpd`,
    target: `≤ ${Targets.smallRetrs}`,
    value,
    unit: 'ratio',
    absolute: `swfw ${seconds(median(times.swfw))}, vsftpd ${seconds(median(times.vsftpd))}`,
    verdict: judge(ctx, value.median <= Targets.smallRetrs),
  };
}

/** Figure 3: as many concurrent pulls as the passive range has ports. Returns swfw's median wall too. */
export async function figureConcurrent(ctx: BenchContext): Promise<{ row: FigureRow; noHashRow: FigureRow; floorRow: FigureRow; swfwMedianMs: number }> {
  const file = ctx.images.medium;
  const count = ctx.options.sizes.concurrent;
  const repeats = new Repeats();
  const time = (server: RunningServer) =>
    timeAllOk('figure 3', server, repeats, async () => {
      const { wallMs, transfers } = await curlConcurrent(server.endpoint, file, count);
      return { ms: wallMs, transfers };
    });
  const { ms: times, cpuMs } = await withThreeServers(ctx, 'fig 3', time);
  const value = summarize(pairRatios(times.swfw, times.vsftpd));
  // On the defaults the version is hashed once, in the warm-up: the counted rounds hash nothing,
  // so the floor is vsftpd's own work on these cores.
  const hashMs = 0;
  return {
    swfwMedianMs: median(times.swfw),
    noHashRow: withoutHashRow('3b', `The same with swfw --no-hash-sent-bytes (data path alone): wall swfw ÷ vsftpd`, times['no-hash swfw'], times.vsftpd, cpuMs['no-hash swfw']),
    floorRow: floorRow(ctx, {
      id: '3f',
      title: `Floor of figure 3 here: vsftpd's and the curls' CPU ÷ ${ctx.cores} cores, ÷ vsftpd's wall (the version was hashed in the warm-up: nothing left to hash)`,
      target: Targets.concurrentPulls,
      refMs: times.vsftpd,
      refCpuMs: cpuMs.vsftpd,
      extraCpuMs: hashMs,
      serialMs: 0,
      absolute: `vsftpd + curls CPU ${seconds(median(cpuMs.vsftpd))} in ${seconds(median(times.vsftpd))} of wall`,
    }),
    row: {
      id: '3',
      title: `${count} concurrent ${sizeLabel(file.size)} curl pulls (whole passive range): wall swfw ÷ vsftpd`,
      target: `≤ ${Targets.concurrentPulls}`,
      value,
      unit: 'ratio',
      absolute: `swfw ${wallAndCpu(times.swfw, cpuMs.swfw)}, vsftpd ${wallAndCpu(times.vsftpd, cpuMs.vsftpd)}; CPU counts server and curls`,
      verdict: judge(ctx, value.median <= Targets.concurrentPulls),
      ...repeats.note(),
    },
  };
}

/**
 * Figure 5: three times as many pulls as passive ports. swfw keeps one listener per port, queues
 * PASV for a free one and frees it at accept, so all should succeed in about 3× figure 3's time.
 * vsftpd binds a fresh listener per PASV; while five transfers hold the five ports its other
 * sessions get "500 OOPS" (5 of 15 succeeded in every run on the development machine).
 */
export async function figureOversubscribed(ctx: BenchContext, figure3SwfwMs: number): Promise<FigureRow> {
  const file = ctx.images.medium;
  const count = ctx.options.sizes.oversubscribed;
  const factor = count / ctx.options.sizes.concurrent;
  const successes: Record<'swfw' | 'vsftpd', number[]> = { swfw: [], vsftpd: [] };
  const errors = new Map<string, string>();
  const time = async (server: RunningServer) => {
    const { wallMs, transfers } = await curlConcurrent(server.endpoint, file, count, true);
    const ok = transfers.filter((t) => t.ok).length;
    successes[server.endpoint.name === 'vsftpd' ? 'vsftpd' : 'swfw'].push(ok);
    const failed = transfers.find((t) => !t.ok);
    if (failed?.error) errors.set(server.endpoint.name, failed.error);
    return wallMs;
  };
  const { ms: times } = await alternate(ctx, 'fig 5', { swfw: () => time(ctx.swfw), vsftpd: () => time(ctx.vsftpd) }, { swfw: [ctx.swfw.pid], vsftpd: [ctx.vsftpd.pid] });
  // The warm-up round's counts were pushed too; keep the counted rounds only.
  const counted = (name: 'swfw' | 'vsftpd') => successes[name].slice(ctx.options.warmups);
  const value = summarize(times.swfw.map((ms) => ms / (factor * figure3SwfwMs)));
  const swfwOk = counted('swfw');
  const vsftpdOk = counted('vsftpd');
  const allSwfwOk = swfwOk.every((n) => n === count);
  const okText = (runs: number[]) => `${median(runs)}/${count} ok (median; min ${Math.min(...runs)}, max ${Math.max(...runs)})`;
  const notes = [...errors].map(([name, error]) => `${name} failure: ${error}`);
  return {
    id: '5',
    title: `${count} concurrent ${sizeLabel(file.size)} curl pulls, each from its own address (127.0.10.x), through ${ctx.options.sizes.concurrent} passive ports: wall swfw ÷ ideal (${factor} × fig 3 swfw)`,
    target: `≤ ${Targets.oversubscribed}, all ok`,
    value,
    unit: 'ratio',
    absolute: `swfw ${seconds(median(times.swfw))}, ${okText(swfwOk)}; vsftpd ${seconds(median(times.vsftpd))}, ${okText(vsftpdOk)}`,
    verdict: judge(ctx, value.median <= Targets.oversubscribed && allSwfwOk),
    ...(notes.length ? { note: notes.join('; ') } : {}),
  };
}

/** Figure 6: swfw's peak RSS while it serves as many 1 GiB pulls as it has passive ports. */
export async function figureServerMemory(ctx: BenchContext): Promise<FigureRow> {
  const file = ctx.images.large;
  const count = ctx.options.sizes.concurrent;
  const pid = ctx.swfw.pid;
  const idle = procStatusBytes(pid, 'VmRSS') ?? Number.NaN;
  const peaks: number[] = [];
  let hwmReset = true;
  for (let run = 0; run < ctx.options.rssRuns; run++) {
    const reset = resetPeakRss(pid);
    hwmReset &&= reset;
    const sampler = new PeakRss(pid, reset).start();
    const { wallMs, transfers } = await curlConcurrent(ctx.swfw.endpoint, file, count);
    const peak = sampler.stop();
    requireOk(transfers, 'figure 6');
    peaks.push(peak);
    ctx.log(`  fig 6 run ${run + 1}/${ctx.options.rssRuns}: ${count} × ${sizeLabel(file.size)} in ${seconds(wallMs)}, server peak RSS ${mebibytes(peak)}`);
  }
  const value = summarize(peaks);
  return {
    id: '6',
    title: `swfw server peak RSS while serving ${count} × ${sizeLabel(file.size)} concurrently`,
    target: `≤ ${Targets.serverPeakRssMiB} MiB`,
    value,
    unit: 'bytes',
    absolute: `RSS after start ${mebibytes(ctx.swfwStartRssBytes)}, idle before this figure ${mebibytes(idle)}; judged on the max`,
    // Memory is judged on the worst run: a limit is only a limit if the peak stays under it.
    verdict: judge(ctx, value.max <= Targets.serverPeakRssMiB * MiB),
    note: hwmReset ? 'peak = max(VmHWM after clear_refs reset, VmRSS sampled every 50 ms)' : 'VmHWM could not be reset: VmRSS sampled every 50 ms',
  };
}

/** `swfw --version` runs behind figure 4's floor: the CLI's start-up alone. */
const STARTUP_RUNS = 3;

/**
 * Figure 4: pulling 1 GiB from vsftpd with `swfw pull --sha256` against `curl -o /dev/null`, with
 * `curl | sha256sum` (the by-hand way) beside them. Returns the ratio row, the reference row and the
 * client-memory row.
 */
export async function figurePull(ctx: BenchContext): Promise<FigureRow[]> {
  const file = ctx.images.large;
  const vsftpd = ctx.vsftpd.endpoint;
  const support = detectSwfwPull(ctx.options.pullArgs);
  const unavailable = support.available ? null : support.reason;
  const clientPeaks: number[] = [];
  const curl = async () => {
    const transfer = await curlToNull(vsftpd, file);
    requireOk([transfer], 'figure 4, curl -o /dev/null');
    return transfer.ms;
  };
  const curlSha = async () => {
    const transfer = await curlOpensslSha256(vsftpd, file);
    requireOk([transfer], 'figure 4, curl | openssl dgst -sha256');
    return transfer.ms;
  };
  const scratch = join(ctx.workDir, 'pull-scratch');
  let pullTimes: number[] | null = null;
  let keptTimes: { pull: number[]; curl: number[] } | null = null;
  let pullCpu: number[] = [];
  let curlTimes: number[];
  let curlCpu: number[];
  let shaTimes: number[];
  if (!unavailable) {
    const pull = (keep: 'discard' | 'file') => async () => {
      const transfer = await swfwPull(vsftpd, file, ctx.options.pullArgs, scratch, keep);
      if (keep === 'file') clientPeaks.push(transfer.peakRssBytes);
      return transfer.ms;
    };
    const curlFile = async () => {
      const transfer = await curlToFile(vsftpd, file, scratch);
      requireOk([transfer], 'figure 4c, curl -o file');
      return transfer.ms;
    };
    const rounds = await alternate(
      ctx,
      'fig 4',
      {
        'swfw pull': pull('discard'),
        'curl -o /dev/null': curl,
        'curl | openssl dgst -sha256': curlSha,
        'swfw pull to a file': pull('file'),
        'curl -o file': curlFile,
      },
      { 'swfw pull': [ctx.vsftpd.pid], 'curl -o /dev/null': [ctx.vsftpd.pid] },
    );
    const times = rounds.ms;
    pullTimes = times['swfw pull'];
    pullCpu = rounds.cpuMs['swfw pull'];
    curlTimes = times['curl -o /dev/null'];
    curlCpu = rounds.cpuMs['curl -o /dev/null'];
    shaTimes = times['curl | openssl dgst -sha256'];
    keptTimes = { pull: times['swfw pull to a file'], curl: times['curl -o file'] };
    clientPeaks.splice(0, ctx.options.warmups);
  } else {
    ctx.log(`  fig 4: ${unavailable}; measuring curl -o /dev/null and curl | openssl dgst -sha256 only`);
    const rounds = await alternate(ctx, 'fig 4', { 'curl -o /dev/null': curl, 'curl | openssl dgst -sha256': curlSha }, { 'curl -o /dev/null': [ctx.vsftpd.pid] });
    curlTimes = rounds.ms['curl -o /dev/null'];
    curlCpu = rounds.cpuMs['curl -o /dev/null'];
    shaTimes = rounds.ms['curl | openssl dgst -sha256'];
  }
  // The pull's start-up (node, the CLI) comes before it asks for any byte, so none of the
  // transfer's work (vsftpd sending, receiving, hashing) can overlap it; after it, every byte goes
  // through one SHA-256 stream. curl's own start-up CPU (a few ms) stays in the reference's CPU.
  const startupSamples: number[] = [];
  for (let i = 0; i < STARTUP_RUNS; i++) startupSamples.push((await run(process.execPath, swfwArgv('--version'), { timeoutMs: 30_000, env: withoutSwfwEnv() })).ms);
  const startupMs = median(startupSamples);
  const hashMs = file.size * ctx.sha256MsPerByte;
  const floorAbsMs = curlCpu.map((cpu) => startupMs + floorMs(cpu + hashMs, hashMs, ctx.cores));
  const title = `swfw pull --sha256 --out /dev/null of ${sizeLabel(file.size)} from vsftpd ÷ its floor (4f)`;
  const vsFloor = pullTimes ? summarize(pullTimes.map((ms, i) => ms / floorAbsMs[i]!)) : null;
  const pullRow: FigureRow = pullTimes
    ? {
        id: '4',
        title,
        target: `≤ ${Targets.pullVsFloor}`,
        value: vsFloor,
        unit: 'ratio',
        absolute: `swfw pull ${wallAndCpu(pullTimes, pullCpu)}, floor ${seconds(median(floorAbsMs))}; curl -o /dev/null ${wallAndCpu(curlTimes, curlCpu)} (CPU counts vsftpd and the client)`,
        verdict: judge(ctx, vsFloor!.median <= Targets.pullVsFloor),
      }
    : { id: '4', title, target: `≤ ${Targets.pullVsFloor}`, value: null, unit: 'ratio', absolute: `curl ${seconds(median(curlTimes))}`, verdict: 'n/a', note: `n/a (${unavailable ?? 'no pull runs'})` };
  const byHand = pullTimes ? summarize(pairRatios(pullTimes, shaTimes)) : null;
  const byHandRow: FigureRow = {
    id: '4d',
    title: `swfw pull --sha256 ÷ curl | openssl dgst -sha256, the fastest pipeline an admin would build by hand (${sizeLabel(file.size)} from vsftpd)`,
    target: `≤ ${Targets.pullVsOpenssl}`,
    value: byHand,
    unit: 'ratio',
    absolute: pullTimes ? `swfw pull ${seconds(median(pullTimes))}, curl | openssl dgst -sha256 ${seconds(median(shaTimes))}` : '',
    verdict: byHand ? judge(ctx, byHand.median <= Targets.pullVsOpenssl) : 'n/a',
    ...(byHand ? {} : { note: `n/a (${unavailable ?? 'no pull runs'})` }),
  };
  const referenceRow: FigureRow = {
    id: '4b',
    title: `Reference: curl | openssl dgst -sha256 ÷ curl -o /dev/null (${sizeLabel(file.size)} from vsftpd)`,
    target: '—',
    value: summarize(pairRatios(shaTimes, curlTimes)),
    unit: 'ratio',
    absolute: `curl | openssl dgst -sha256 ${seconds(median(shaTimes))}, curl ${seconds(median(curlTimes))}`,
    verdict: 'info',
  };
  const keptRow: FigureRow = keptTimes
    ? {
        id: '4c',
        title: `swfw pull --sha256 to a file ÷ curl -o file (${sizeLabel(file.size)} from vsftpd, same disk)`,
        target: '— (report)',
        value: summarize(pairRatios(keptTimes.pull, keptTimes.curl)),
        unit: 'ratio',
        absolute: `swfw pull ${seconds(median(keptTimes.pull))} (temp file, fsync, rename), curl -o file ${seconds(median(keptTimes.curl))} (no fsync)`,
        verdict: 'info',
      }
    : { id: '4c', title: 'swfw pull --sha256 to a file ÷ curl -o file', target: '— (report)', value: null, unit: 'ratio', absolute: '', verdict: 'n/a', note: `n/a (${unavailable ?? 'no pull runs'})` };
  const memoryRow: FigureRow = {
    id: '6b',
    title: `swfw pull client peak RSS, ${sizeLabel(file.size)} to a file`,
    target: `≤ ${Targets.clientPeakRssMiB} MiB`,
    value: clientPeaks.length ? summarize(clientPeaks) : null,
    unit: 'bytes',
    absolute: clientPeaks.length ? 'VmHWM/VmRSS of the pull process, sampled every 50 ms; judged on the max' : '',
    verdict: clientPeaks.length ? judge(ctx, Math.max(...clientPeaks) <= Targets.clientPeakRssMiB * MiB) : 'n/a',
    ...(clientPeaks.length ? {} : { note: `n/a (${unavailable ?? 'no sample'})` }),
  };
  const floor = floorRow(ctx, {
    id: '4f',
    title: `Floor of figure 4 here: swfw's start-up + (vsftpd's and curl's CPU + SHA-256 of ${sizeLabel(file.size)}) ÷ ${ctx.cores} cores, ÷ curl's wall: the lowest ratio for a pull that starts as swfw does and hashes every byte`,
    target: Targets.pullVsFloor,
    refMs: curlTimes,
    refCpuMs: curlCpu,
    extraCpuMs: hashMs,
    serialMs: hashMs,
    beforeMs: startupMs,
    absolute: `SHA-256 of ${sizeLabel(file.size)} on one core ${seconds(hashMs)}; swfw --version ${seconds(startupMs)}; vsftpd + curl CPU ${seconds(median(curlCpu))} in ${seconds(median(curlTimes))} of wall`,
  });
  return [pullRow, referenceRow, keptRow, byHandRow, floor, memoryRow];
}

/** Counted single-stream curls behind figure 7's ideal (after one warm-up). */
const THROUGHPUT_RUNS = 3;

/**
 * Figure 7: a whole rollout over an emulated fleet (`swfw emulate`), timed from `swfw rollout run`'s
 * spawn to its exit, against the ideal: every switch's bytes at the single-stream loopback
 * throughput, measured here with curl -o /dev/null of the medium image from swfw serve.
 */
export async function figureRollout(ctx: BenchContext): Promise<FigureRow[]> {
  const { rolloutSwitches: switches, rolloutBytes: imageBytes, concurrent } = ctx.options.sizes;
  const file = ctx.images.medium;
  const streamMs: number[] = [];
  const streamCpuMs: number[] = [];
  for (let i = 0; i < 1 + THROUGHPUT_RUNS; i++) {
    const { result: transfer, cpuMs } = await withCpu([ctx.swfw.pid], () => curlToNull(ctx.swfw.endpoint, file));
    requireOk([transfer], 'figure 7, single-stream throughput');
    if (i > 0) {
      streamMs.push(transfer.ms);
      streamCpuMs.push(cpuMs);
    }
  }
  const bytesPerMs = file.size / median(streamMs);
  const totalBytes = switches * imageBytes;
  const idealMs = totalBytes / bytesPerMs;
  ctx.log(`  fig 7: single stream ${sizeLabel(file.size)} from swfw serve in ${seconds(median(streamMs))} (${((bytesPerMs * 1000) / MiB).toFixed(0)} MiB/s); ideal for ${switches} × ${sizeLabel(imageBytes)} ${seconds(idealMs)}`);
  const result = await timedRollout(
    ctx.workDir,
    { switches, imageBytes, sshPort: ctx.options.rolloutSshPort, firstOctet: 1, pasv: ctx.options.rolloutPasv, concurrency: ctx.options.rolloutConcurrency },
    ctx.log,
  );
  const value = result.wallMs / idealMs;
  const perSwitchMs = (result.wallMs - idealMs) / switches;
  ctx.log(`  fig 7: ${result.verified}/${switches} verified in ${seconds(result.wallMs)} (ratio ${value.toFixed(2)})`);
  const transfers = result.transferMs.length
    ? `; per switch, one-time account granted to copy done (the wait for one of the ${concurrent} passive-port slots included) median ${median(result.transferMs).toFixed(0)} ms (max ${Math.max(...result.transferMs).toFixed(0)} ms), ${(result.transferMs.reduce((a, b) => a + b, 0) / result.wallMs).toFixed(1)} switches in that phase at once on average (a slot is held only until the switch's data connection is up)`
    : '';
  const phases = result.phases
    ? `; median per switch: waiting for its wave and a slot ${result.phases.queued.toFixed(0)} ms, SSH login and pre-check ${result.phases.precheck.toFixed(0)} ms, passive slot and grant ${result.phases.grant.toFixed(0)} ms, copy ${result.phases.copy.toFixed(0)} ms, on-switch hash and verdict ${result.phases.verify.toFixed(0)} ms`
    : '';
  const cpuMs = result.switchesCpuMs + result.rolloutCpuMs;
  // The floor: the CPU this run actually burnt (the emulated switches' and the rollout's, both
  // measured) packed perfectly on these cores. The emulator stands in for 200 switches' own CPUs
  // on the same 2 cores, so its work bounds the wall as much as swfw's; what wall time is left
  // above the floor is waiting (serial steps, idle cores), which is what figure 7 is to find. The
  // rollout's own CPU is tracked apart (7c).
  const floorAbsMs = floorMs(cpuMs, 0, ctx.cores);
  const floor: FigureRow = {
    id: '7f',
    title: `Floor of figure 7 here: the CPU the run burnt (emulated switches + swfw rollout, measured) ÷ ${ctx.cores} cores, ÷ ideal`,
    target: `— (figure's target ≤ ${Targets.rolloutVsFloor})`,
    value: summarize([floorAbsMs / idealMs]),
    unit: 'ratio',
    absolute: `${seconds(cpuMs)} of CPU (emulated switches ${seconds(result.switchesCpuMs)}, swfw rollout ${seconds(result.rolloutCpuMs)}) in ${seconds(floorAbsMs)} on ${ctx.cores} cores; a --dry-run of the fleet (SSH logins and pre-checks alone) took ${seconds(result.dryRunMs)} (CPU ${seconds(result.dryRunCpuMs)})`,
    verdict: ctx.options.smoke ? 'not judged (smoke)' : 'info',
  };
  const vsFloor = result.wallMs / floorAbsMs;
  const rollout: FigureRow = {
    id: '7',
    title: `Rollout of ${switches} emulated switches × ${sizeLabel(imageBytes)} (concurrency ${ctx.options.rolloutConcurrency}, ${concurrent} passive ports): wall ÷ its floor (7f)`,
    target: `≤ ${Targets.rolloutVsFloor}, all verified`,
    value: summarize([vsFloor]),
    unit: 'ratio',
    absolute: `wall ${seconds(result.wallMs)}, floor ${seconds(floorAbsMs)}, ideal ${seconds(idealMs)} (${mebibytes(totalBytes)} at ${((bytesPerMs * 1000) / MiB).toFixed(0)} MiB/s; wall ÷ ideal ${value.toFixed(2)}), overhead ${perSwitchMs.toFixed(0)} ms per switch; CPU ${seconds(cpuMs)} (emulated switches ${seconds(result.switchesCpuMs)}, swfw rollout ${seconds(result.rolloutCpuMs)}), ÷ ${ctx.cores} cores = ${seconds(cpuMs / ctx.cores)}`,
    verdict: judge(ctx, vsFloor <= Targets.rolloutVsFloor && result.verified === switches),
    note: `${result.verified}/${switches} verified; ideal from the median of ${THROUGHPUT_RUNS} curl -o /dev/null of ${sizeLabel(file.size)} from swfw serve in this run; wall = spawn to exit of ${result.command}${transfers}${phases}`,
  };
  const perSwitchCpu: FigureRow = {
    id: '7c',
    title: "The rollout process's own CPU per switch (swfw rollout run, its embedded server included; the emulated switches are another process, not counted)",
    target: '— (report)',
    value: summarize([result.rolloutCpuMs / switches]),
    unit: 'ms',
    absolute: `${seconds(result.rolloutCpuMs)} of CPU for ${switches} switches × ${sizeLabel(imageBytes)}`,
    verdict: 'info',
  };
  return [rollout, perSwitchCpu, floor];
}

/** Runs every figure in an order that lets figure 5 use figure 3's result; rows come back sorted. */
export async function runFigures(ctx: BenchContext): Promise<FigureRow[]> {
  const rows: FigureRow[] = [];
  if (ctx.options.only) {
    if (ctx.options.only.includes('7')) {
      ctx.log('figure 7: rollout over an emulated fleet (alone)');
      rows.push(...(await figureRollout(ctx)));
    }
    if (ctx.options.only.includes('8')) {
      ctx.log('figure 8: multi-site rollout at scale (alone)');
      rows.push(await figureMultisite(ctx));
    }
    return rows;
  }
  ctx.log('figure 1: one large RETR');
  rows.push(...(await figureServeLarge(ctx)));
  ctx.log('figure 2: small RETRs on one session');
  rows.push(await figureSmallRetrs(ctx));
  ctx.log('figure 3: concurrent pulls over the whole passive range');
  const concurrent = await figureConcurrent(ctx);
  rows.push(concurrent.row, concurrent.noHashRow, concurrent.floorRow);
  ctx.log('figure 5: ten times more pulls than passive ports, each from its own address');
  rows.push(await figureOversubscribed(ctx, concurrent.swfwMedianMs));
  ctx.log('figure 6: server memory under concurrent large pulls');
  rows.push(await figureServerMemory(ctx));
  ctx.log('figure 4: swfw pull --sha256 against curl');
  rows.push(...(await figurePull(ctx)));
  ctx.log('figure 7: rollout over an emulated fleet');
  rows.push(...(await figureRollout(ctx)));
  ctx.log('figure 8: multi-site rollout at scale (job engine)');
  rows.push(await figureMultisite(ctx));
  // 1, 1b, 2 … 4, 4b, 4c: a letter sorts after its figure, in alphabetical order.
  const order = (id: string) => Number.parseFloat(id) + (/[a-z]$/.test(id) ? (id.charCodeAt(id.length - 1) - 96) / 10 : 0);
  return rows.sort((a, b) => order(a.id) - order(b.id));
}
