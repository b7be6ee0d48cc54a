import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { once } from 'node:events';
import { join } from 'node:path';
import { cpSync, chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { PROJECT_ROOT } from '../../src/config/loader.js';
import { dropBlocker } from '../../src/server/privileges.js';

export const CLI = join(PROJECT_ROOT, 'dist', 'src', 'cli', 'main.js');

/**
 * Whether `nobody` can read this checkout's code and images. Started as root, `swfw serve` drops to
 * nobody and refuses a checkout it could not read after the drop (a clone under /root, or in a
 * `mktemp -d` directory). Such a checkout is still a fresh machine, so the tests then tell serve to
 * keep root (SWFW_RUN_AS=root), except the tests of the drop itself, which copy what serve needs
 * to a directory nobody can read (readableRuntime()).
 */
export const CHECKOUT_READABLE_BY_NOBODY: boolean = dropBlocker('nobody', [join(PROJECT_ROOT, 'dist'), join(PROJECT_ROOT, 'fixtures', 'images')]) === null;

export interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** A running `swfw` child process with its output collected. Stop it with `stop()` (by PID). */
export class CliProcess {
  stdout = '';
  stderr = '';
  readonly exited: Promise<CliResult>;

  constructor(readonly child: ChildProcess) {
    child.stdout?.setEncoding('utf8').on('data', (s: string) => (this.stdout += s));
    child.stderr?.setEncoding('utf8').on('data', (s: string) => (this.stderr += s));
    this.exited = once(child, 'exit').then(([code, signal]) => ({
      code: code as number | null,
      signal: signal as NodeJS.Signals | null,
      stdout: this.stdout,
      stderr: this.stderr,
    }));
  }

  /** Resolves with the first match of `pattern` in stdout+stderr; rejects on exit or timeout. */
  async waitFor(pattern: RegExp, timeoutMs = 15_000): Promise<RegExpMatchArray> {
    const deadline = Date.now() + timeoutMs;
    let exited = false;
    void this.exited.then(() => (exited = true));
    for (;;) {
      const match = (this.stdout + this.stderr).match(pattern);
      if (match) return match;
      if (exited || Date.now() > deadline) {
        throw new Error(`never printed ${pattern} (exited=${exited})\nstdout: ${this.stdout}\nstderr: ${this.stderr}`);
      }
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
  }

  /** Sends `signal` to the child's PID and waits for it to exit (SIGKILL after `killAfterMs`). */
  async stop(signal: NodeJS.Signals = 'SIGTERM', killAfterMs = 15_000): Promise<CliResult> {
    if (this.child.exitCode === null && this.child.signalCode === null) {
      this.child.kill(signal);
      const timer = setTimeout(() => this.child.kill('SIGKILL'), killAfterMs);
      try {
        return await this.exited;
      } finally {
        clearTimeout(timer);
      }
    }
    return this.exited;
  }
}

export interface CliOptions {
  env?: NodeJS.ProcessEnv;
  /** Prefix the command, e.g. ['setpriv', '--bounding-set=-net_bind_service']. */
  wrapper?: string[];
  /** Another build's main.js (a copy of the runtime, see readableRuntime()). */
  cli?: string;
  spawn?: SpawnOptions;
}

/** Starts `node dist/src/cli/main.js ARGS` with a clean env (plus `env`). */
export function startCli(args: string[], options: CliOptions = {}): CliProcess {
  const env = {
    PATH: process.env['PATH'] ?? '/usr/bin:/bin',
    HOME: process.env['HOME'] ?? '/tmp',
    ...(CHECKOUT_READABLE_BY_NOBODY ? {} : { SWFW_RUN_AS: 'root' }),
    // serve's default images directory is a production path (/srv/firmware); the tests serve the fixtures.
    SWFW_IMAGES: join(PROJECT_ROOT, 'fixtures', 'images'),
    ...options.env,
  };
  const command = [...(options.wrapper ?? []), process.execPath, options.cli ?? CLI, ...args];
  const child = spawn(command[0]!, command.slice(1), { env, stdio: ['ignore', 'pipe', 'pipe'], ...options.spawn });
  return new CliProcess(child);
}

/** Runs the CLI to completion (killed after `timeoutMs`). */
export async function runCli(args: string[], options: CliOptions & { timeoutMs?: number } = {}): Promise<CliResult> {
  const cli = startCli(args, options);
  const timer = setTimeout(() => cli.child.kill('SIGKILL'), options.timeoutMs ?? 20_000);
  try {
    return await cli.exited;
  } finally {
    clearTimeout(timer);
  }
}

/**
 * The built CLI at a path `nobody` can read: this checkout when it is readable, otherwise a copy of
 * what serve loads (dist, node_modules, config, the fixture images) in a new world-readable
 * directory. `remove()` deletes the copy.
 */
export function readableRuntime(): { cli: string; images: string; remove(): void } {
  if (CHECKOUT_READABLE_BY_NOBODY) return { cli: CLI, images: join(PROJECT_ROOT, 'fixtures', 'images'), remove: () => {} };
  const root = mkdtempSync(join(tmpdir(), 'swfw-runtime-'));
  chmodSync(root, 0o755);
  for (const part of ['package.json', 'dist', 'node_modules', 'config', join('fixtures', 'images')]) cpSync(join(PROJECT_ROOT, part), join(root, part), { recursive: true });
  return { cli: join(root, 'dist', 'src', 'cli', 'main.js'), images: join(root, 'fixtures', 'images'), remove: () => rmSync(root, { recursive: true, force: true }) };
}
