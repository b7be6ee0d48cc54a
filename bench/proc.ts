import { spawn, spawnSync, type ChildProcess, type StdioOptions } from 'node:child_process';
import { closeSync, openSync, readFileSync, writeSync } from 'node:fs';
import { performance } from 'node:perf_hooks';

/** The harness itself failed: a server would not start, a child hung, bytes came back wrong. */
export class HarnessError extends Error {
  override name = 'HarnessError';
}

/**
 * Every child still running, by PID. Each child leads its own process group (detached), so a
 * pipeline or vsftpd with its forked sessions is stopped whole by signalling -PID, and nothing
 * we did not start is ever touched.
 */
const live = new Map<number, ChildProcess>();

/** Signals the child's process group; a group that is already gone is fine. */
export function signalGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ESRCH') throw err;
  }
}

/** Last-resort cleanup for 'exit' handlers: synchronous, SIGKILL to every child group still live. */
export function killAllNow(): void {
  for (const pid of live.keys()) signalGroup(pid, 'SIGKILL');
  live.clear();
}

/** Starts a tracked child in its own process group. */
export function spawnTracked(command: string, args: readonly string[], options: { env?: NodeJS.ProcessEnv; cwd?: string; stdio: StdioOptions }): ChildProcess {
  const child = spawn(command, args, { ...options, detached: true });
  if (child.pid === undefined) {
    // spawn failed (ENOENT...): the 'error' event carries why; the caller listens for it.
    return child;
  }
  const pid = child.pid;
  live.set(pid, child);
  child.once('exit', () => live.delete(pid));
  return child;
}

export const hasExited = (child: ChildProcess): boolean => child.exitCode !== null || child.signalCode !== null;

/** Waits for a child to exit; resolves false when it is still running after `timeoutMs`. */
export function waitForExit(child: ChildProcess, timeoutMs: number): Promise<boolean> {
  if (hasExited(child)) return Promise.resolve(true);
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      child.removeListener('exit', onExit);
      resolve(false);
    }, timeoutMs);
    const onExit = () => {
      clearTimeout(timer);
      resolve(true);
    };
    child.once('exit', onExit);
  });
}

/**
 * Stops a long-running child: `signal` first (to its PID, or to its whole group), SIGKILL to the
 * group when it has not exited after `graceMs`.
 */
export async function stopChild(child: ChildProcess, options: { signal: NodeJS.Signals; group: boolean; graceMs: number }): Promise<void> {
  const pid = child.pid;
  if (pid === undefined || hasExited(child)) return;
  if (options.group) signalGroup(pid, options.signal);
  else child.kill(options.signal);
  if (await waitForExit(child, options.graceMs)) {
    // Children the leader forked (vsftpd sessions) may outlive it briefly; the group goes too.
    signalGroup(pid, 'SIGKILL');
    return;
  }
  signalGroup(pid, 'SIGKILL');
  await waitForExit(child, 5_000);
}

export interface RunOptions {
  /** The child's group is killed and the run fails after this long. */
  timeoutMs: number;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** Called with the PID right after spawn (to sample its memory). */
  onSpawn?: (pid: number) => void;
}

export interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  /** performance.now() right before spawn and at the child's exit. */
  startedAt: number;
  endedAt: number;
  /** Wall time from spawn to exit: process start-up is included, the same for both servers. */
  ms: number;
}

/** Output kept per stream; more is drained and dropped (we only parse short -w lines and JSON). */
const MAX_CAPTURE_CHARS = 1 << 20;

/** Runs one command to completion with a hard timeout. Rejects with HarnessError on spawn failure or timeout. */
export function run(command: string, args: readonly string[], options: RunOptions): Promise<RunResult> {
  const label = [command, ...args.slice(0, 3)].join(' ');
  return new Promise((resolve, reject) => {
    const startedAt = performance.now();
    let endedAt = 0;
    const child = spawnTracked(command, args, { env: options.env, cwd: options.cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    let timedOut = false;
    child.stdout!.setEncoding('utf8').on('data', (text: string) => {
      if (stdout.length < MAX_CAPTURE_CHARS) stdout += text;
    });
    child.stderr!.setEncoding('utf8').on('data', (text: string) => {
      if (stderr.length < MAX_CAPTURE_CHARS) stderr += text;
    });
    const timer = setTimeout(() => {
      timedOut = true;
      if (child.pid !== undefined) signalGroup(child.pid, 'SIGKILL');
    }, options.timeoutMs);
    child.once('error', (err) => {
      clearTimeout(timer);
      reject(new HarnessError(`cannot run ${label}: ${err.message}`));
    });
    child.once('exit', () => {
      endedAt = performance.now();
    });
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      if (timedOut) {
        reject(new HarnessError(`${label} timed out after ${(options.timeoutMs / 1000).toFixed(0)} s${stderr ? `: ${stderr.trim().slice(-500)}` : ''}`));
        return;
      }
      resolve({ code, signal, stdout, stderr, startedAt, endedAt, ms: endedAt - startedAt });
    });
    if (child.pid !== undefined) options.onSpawn?.(child.pid);
  });
}

/** A short synchronous command for facts (versions, tool checks); null when it cannot run. */
export function quick(command: string, args: readonly string[], timeoutMs = 10_000): { code: number | null; stdout: string; stderr: string } | null {
  const result = spawnSync(command, args, { encoding: 'utf8', timeout: timeoutMs, stdio: ['ignore', 'pipe', 'pipe'] });
  if (result.error) return null;
  return { code: result.status, stdout: result.stdout, stderr: result.stderr };
}

/** Where a tool is on PATH, or null. */
export function which(tool: string): string | null {
  const result = quick('sh', ['-c', `command -v ${tool}`]);
  const path = result?.stdout.trim();
  return result?.code === 0 && path ? path : null;
}

/** The environment without SWFW_* variables: swfw reads them as config, and a developer's shell settings must not leak into a run. */
export function withoutSwfwEnv(): NodeJS.ProcessEnv {
  return Object.fromEntries(Object.entries(process.env).filter(([key]) => !key.startsWith('SWFW_')));
}

/** The last lines of a text, for error messages. */
export const tailLines = (text: string, lines = 15): string => text.trim().split('\n').slice(-lines).join('\n');

/** The last lines of a log file ('' when it cannot be read). */
export function logTail(file: string): string {
  try {
    return tailLines(readFileSync(file, 'utf8'));
  } catch {
    return '';
  }
}

export interface ReadyOptions {
  /** For messages: "swfw serve", "swfw emulate". */
  label: string;
  /** The program; default this Node (`args` then start with the script). */
  command?: string;
  args: readonly string[];
  env: NodeJS.ProcessEnv;
  cwd: string;
  /** stderr and stdout both go here (an undrained pipe would eventually block the child). */
  logFile: string;
  /** Written at the top of the log (the command line, say). */
  header?: string;
  /** The stdout line that says the child is ready. */
  ready: RegExp;
  timeoutMs: number;
  /** SIGTERM to its PID, then SIGKILL to its group after this long. */
  stopGraceMs: number;
}

/**
 * Starts a long-running swfw child (serve, emulate) and resolves once its stdout prints a line
 * matching `ready`. A child that exits first, or stays silent past `timeoutMs`, is stopped and the
 * start fails with the log's last lines.
 */
export async function startUntilReady(o: ReadyOptions): Promise<{ child: ChildProcess; pid: number; stop: () => Promise<void> }> {
  const logFd = openSync(o.logFile, 'w');
  if (o.header) writeSync(logFd, o.header);
  const child = spawnTracked(o.command ?? process.execPath, o.args, { env: o.env, cwd: o.cwd, stdio: ['ignore', 'pipe', logFd] });
  if (child.pid === undefined) {
    closeSync(logFd);
    throw new HarnessError(`cannot start ${o.label}`);
  }
  const pid = child.pid;
  child.on('error', () => {});
  // 'close' comes after stdout has ended, so no chunk is written to a closed descriptor.
  child.once('close', () => closeSync(logFd));
  const stop = () => stopChild(child, { signal: 'SIGTERM', group: false, graceMs: o.stopGraceMs });
  try {
    await new Promise<void>((resolve, reject) => {
      let seen = '';
      const onExit = (code: number | null, signal: NodeJS.Signals | null) => {
        clearTimeout(timer);
        reject(new HarnessError(`${o.label} exited during start-up (${signal ?? `code ${code}`}):\n${logTail(o.logFile)}`));
      };
      const timer = setTimeout(() => {
        child.removeListener('exit', onExit);
        reject(new HarnessError(`${o.label} printed no line matching ${o.ready} within ${o.timeoutMs / 1000} s:\n${logTail(o.logFile)}`));
      }, o.timeoutMs);
      child.stdout!.on('data', (chunk: Buffer) => {
        writeSync(logFd, chunk);
        if (seen.length < 64 * 1024) seen += chunk.toString('utf8');
        if (o.ready.test(seen)) {
          clearTimeout(timer);
          child.removeListener('exit', onExit);
          resolve();
        }
      });
      child.once('exit', onExit);
    });
  } catch (err) {
    await stop();
    throw err;
  }
  return { child, pid, stop };
}
