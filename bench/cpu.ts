/**
 * CPU accounting for the figures, and the floors it gives. Wall time on N cores can never be less
 * than the CPU-seconds a run burns divided by N, so a figure whose reference already keeps both
 * cores busy leaves no room for extra work such as hashing. The floors rest on the reference's
 * CPU and the hash's speed measured in the same run, not on figures from another day.
 */
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { availableParallelism } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { quick } from './proc.js';

/** Kernel clock ticks per second (USER_HZ) for /proc's CPU fields; 100 on every Linux we run on. */
const ticksPerSecond = (() => {
  const value = Number.parseInt(quick('getconf', ['CLK_TCK'])?.stdout.trim() ?? '', 10);
  return Number.isFinite(value) && value > 0 ? value : 100;
})();

/**
 * /proc/PID/stat fields 14-17: utime, stime, cutime, cstime. The comm field (2) may contain spaces
 * and parentheses, so fields are counted after its closing parenthesis.
 */
function statTimes(pid: number | 'self'): { own: number; children: number } | null {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
    // After the comm, field 3 (state) is index 0, so field N is index N - 3.
    const at = (n: number) => Number.parseInt(fields[n - 3] ?? '', 10);
    const ms = (ticks: number) => (ticks * 1000) / ticksPerSecond;
    return { own: ms(at(14) + at(15)), children: ms(at(16) + at(17)) };
  } catch {
    return null;
  }
}

/**
 * Control groups for servers that fork. vsftpd forks a process per session, which forks the
 * unprivileged process that sends the file; when the session's parent exits first, that process
 * is re-parented to init and its CPU never reaches vsftpd's counters (1 session in 8 here). A
 * cgroup counts every task that ever ran in it, whoever reaps it. cgroup v1's cpuacct, or v2.
 */
const CGROUP_PREFIX = 'swfw-bench-';
type CgroupRoot = { version: 1 | 2; dir: string };
let cgroupRoot: CgroupRoot | null | undefined;
/** PID of a tracked server → its cgroup directory. */
const cgroups = new Map<number, string>();

function findCgroupRoot(): CgroupRoot | null {
  if (cgroupRoot !== undefined) return cgroupRoot;
  if (existsSync('/sys/fs/cgroup/cpuacct/cpuacct.usage')) cgroupRoot = { version: 1, dir: '/sys/fs/cgroup/cpuacct' };
  else if (existsSync('/sys/fs/cgroup/cgroup.controllers')) cgroupRoot = { version: 2, dir: '/sys/fs/cgroup' };
  else cgroupRoot = null;
  return cgroupRoot;
}

/** Removes cgroups left by an earlier harness that was killed: its PID is in the name, and it is gone. */
export function removeStaleCgroups(): void {
  const root = findCgroupRoot();
  if (!root) return;
  for (const name of readdirSync(root.dir).filter((n) => n.startsWith(CGROUP_PREFIX))) {
    const harnessPid = /^\D+(\d+)-/.exec(name)?.[1];
    if (!harnessPid || existsSync(`/proc/${harnessPid}`)) continue;
    try {
      rmdirSync(join(root.dir, name));
    } catch {
      // Still holds a process: not ours to touch.
    }
  }
}

/** How a tracked server's CPU is counted, for the report. */
export function cpuSourceOf(pid: number): string {
  const root = findCgroupRoot();
  return cgroups.has(pid) && root
    ? `its own cgroup (${root.version === 1 ? 'v1 cpuacct' : 'v2'}), so every process it forks counts`
    : '/proc counters only (no writable cgroup): a session process re-parented to init goes uncounted';
}

/**
 * Puts a just-started server in a cgroup of its own, before it forks, so its CPU and that of
 * every process it forks is counted. False (and procfs is used) where cgroups are not writable.
 */
export function trackCpu(pid: number, label: string): boolean {
  const root = findCgroupRoot();
  if (!root) return false;
  const dir = join(root.dir, `${CGROUP_PREFIX}${process.pid}-${label}`);
  try {
    mkdirSync(dir);
    writeFileSync(join(dir, 'cgroup.procs'), String(pid));
    cgroups.set(pid, dir);
    return true;
  } catch {
    try {
      rmdirSync(dir);
    } catch {
      // Never created.
    }
    return false;
  }
}

function cgroupCpuMs(dir: string, version: 1 | 2): number {
  if (version === 1) return Number(readFileSync(join(dir, 'cpuacct.usage'), 'utf8').trim()) / 1e6;
  const usec = /^usage_usec (\d+)$/m.exec(readFileSync(join(dir, 'cpu.stat'), 'utf8'))?.[1];
  return Number(usec ?? 0) / 1000;
}

/** Removes a stopped server's cgroup; it empties once the server's processes are reaped. */
export async function untrackCpu(pid: number): Promise<void> {
  const dir = cgroups.get(pid);
  if (!dir) return;
  const deadline = Date.now() + SETTLE_MAX_MS;
  for (;;) {
    try {
      rmdirSync(dir);
      cgroups.delete(pid);
      return;
    } catch {
      if (Date.now() >= deadline) return; // left for removeStaleCgroups on the next run
      await sleep(SETTLE_POLL_MS);
    }
  }
}

const EXIT_RMDIR_MS = 1_000;

/**
 * For 'exit' handlers, which cannot wait: synchronous removal, retried for up to a second while
 * processes just sent SIGKILL die. What still fails is removed by the next run's removeStaleCgroups.
 */
export function untrackAllNow(): void {
  const pause = new Int32Array(new SharedArrayBuffer(4));
  const deadline = Date.now() + EXIT_RMDIR_MS;
  for (const dir of cgroups.values()) {
    for (;;) {
      try {
        rmdirSync(dir);
        break;
      } catch {
        if (Date.now() >= deadline) break;
        Atomics.wait(pause, 0, 0, SETTLE_POLL_MS); // a synchronous sleep
      }
    }
  }
  cgroups.clear();
}

/**
 * After a run, its server may still be finishing: vsftpd's session processes exit just after the
 * client does. We wait until the measured servers have no other process left (in their cgroup,
 * or as children), at least SETTLE_MIN_MS and at most SETTLE_MAX_MS, so that work is counted in
 * this run and not the next.
 */
const SETTLE_MIN_MS = 50;
const SETTLE_MAX_MS = 3_000;
const SETTLE_POLL_MS = 10;

/** Other live processes of a server: in its cgroup if it has one, else its children (single-threaded vsftpd). */
function helperPids(pid: number): string[] {
  try {
    const group = cgroups.get(pid);
    const listed = group ? readFileSync(join(group, 'cgroup.procs'), 'utf8') : readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8');
    return listed.trim().split(/\s+/).filter((p) => p && p !== String(pid));
  } catch {
    return [];
  }
}

/** False when a server still had other processes after SETTLE_MAX_MS. */
async function settle(pids: readonly number[]): Promise<boolean> {
  await sleep(SETTLE_MIN_MS);
  const deadline = Date.now() + SETTLE_MAX_MS;
  for (;;) {
    if (!pids.some((pid) => helperPids(pid).length > 0)) return true;
    if (Date.now() >= deadline) return false;
    await sleep(SETTLE_POLL_MS);
  }
}

/**
 * CPU-ms so far: of each given long-running process (all its threads; for a tracked one, every
 * process in its cgroup), and of every child of this harness that has exited and been reaped
 * (curl, python, swfw pull, swfw rollout).
 */
function cpuSoFarMs(pids: readonly number[]): { byPid: number[]; children: number } {
  const byPid = pids.map((pid) => {
    const group = cgroups.get(pid);
    if (group) return cgroupCpuMs(group, findCgroupRoot()!.version);
    const t = statTimes(pid);
    return t ? t.own + t.children : 0;
  });
  return { byPid, children: statTimes('self')?.children ?? 0 };
}

export interface CpuUsed<T> {
  result: T;
  /** Everything below, summed. */
  cpuMs: number;
  /** Per entry of `pids`, in order. */
  byPidMs: number[];
  /** The harness's children that ran and were reaped meanwhile. */
  childrenMs: number;
  /** False when a server was still busy (another process alive) before or after: CPU may have crossed runs. */
  settled: boolean;
}

/**
 * Runs `work` and returns its result with the CPU-ms burnt meanwhile by `pids` and by the harness's
 * reaped children. Nothing else may run children at the same time: the harness runs one thing at a
 * time, and its long-lived servers are not reaped until they stop.
 */
export async function withCpu<T>(pids: readonly number[], work: () => Promise<T>): Promise<CpuUsed<T>> {
  // Settled before as well: what a previous run left running is not this run's.
  const settledBefore = pids.length === 0 || (await settle(pids));
  const before = cpuSoFarMs(pids);
  const result = await work();
  const settledAfter = await settle(pids);
  const after = cpuSoFarMs(pids);
  const byPidMs = after.byPid.map((ms, i) => ms - before.byPid[i]!);
  const childrenMs = after.children - before.children;
  return { result, cpuMs: byPidMs.reduce((a, b) => a + b, childrenMs), byPidMs, childrenMs, settled: settledBefore && settledAfter };
}

/** This machine's cores, as Node sees them (the bench's report prints nproc beside it). */
export const cores = (): number => availableParallelism();

const SHA256_PASSES = 6;

/**
 * SHA-256 speed on one core of this machine, in ms per byte: the CPU time (not the wall time, which
 * other guests' load stretches) of the best of several passes over 64 MiB of random bytes, so a
 * background burst cannot make the floors look higher than they are. The harness runs nothing
 * else meanwhile, so the process's CPU is this thread's.
 */
export function sha256MsPerByte(): number {
  const sample = randomBytes(64 * 1024 * 1024);
  let best = Number.POSITIVE_INFINITY;
  for (let pass = 0; pass < SHA256_PASSES; pass++) {
    const started = process.cpuUsage();
    createHash('sha256').update(sample).digest();
    const used = process.cpuUsage(started);
    best = Math.min(best, (used.user + used.system) / 1000);
  }
  return best / sample.length;
}

/**
 * The shortest wall time in which some work can finish: its CPU spread perfectly over every core,
 * but never less than its longest part that cannot be split (one SHA-256 stream, start-up + hash).
 */
export const floorMs = (cpuMs: number, serialMs: number, coreCount: number): number => Math.max(cpuMs / coreCount, serialMs);
