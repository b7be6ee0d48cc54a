/**
 * A real redis-server for a test: on a port the test owns, in a private temp directory, with the
 * settings swfw requires (AOF with fsync always, noeviction), started in the foreground and
 * stopped by its PID. Startup takes milliseconds.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';

export const REDIS_SERVER = '/usr/bin/redis-server';

export interface TestRedis {
  host: string;
  port: number;
  url: string;
  dir: string;
  pid: number;
  /** With `unixSocket`: the socket's path. */
  socketPath: string | null;
  /** SIGKILL (no shutdown save): what a crash does. */
  kill(): Promise<void>;
  /** Starts it again on the same port and directory (AOF replayed). */
  restart(): Promise<void>;
  /** Stops it and removes its directory. */
  stop(): Promise<void>;
}

export interface RedisOptions {
  host?: string;
  port: number;
  /** Extra `--name value` settings (e.g. ['--appendonly', 'no'] to test the refusal). */
  args?: string[];
  /** Run it through this prefix (e.g. ['ip', 'netns', 'exec', 'ns']). */
  prefix?: string[];
  /** Also listen on a Unix socket in its directory (`socketPath`): reachable from every network namespace. */
  unixSocket?: boolean;
}

async function waitReady(child: ChildProcess, output: () => string): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (!/Ready to accept connections/.test(output())) {
    if (child.exitCode !== null) throw new Error(`redis-server exited (${child.exitCode}): ${output().slice(-400)}`);
    if (Date.now() > deadline) throw new Error(`redis-server did not start: ${output().slice(-400)}`);
    await delay(10);
  }
}

export async function startRedis(options: RedisOptions): Promise<TestRedis> {
  const host = options.host ?? '127.0.0.1';
  const dir = mkdtempSync(join(tmpdir(), 'swfw-redis-'));
  let child: ChildProcess;
  const launch = async () => {
    let text = '';
    const args = [
      '--port', String(options.port), '--bind', host, '--dir', dir, '--save', '',
      '--appendonly', 'yes', '--appendfsync', 'always', '--maxmemory-policy', 'noeviction',
      '--daemonize', 'no', '--protected-mode', 'no',
      ...(options.unixSocket ? ['--unixsocket', join(dir, 'redis.sock'), '--unixsocketperm', '700'] : []),
      ...(options.args ?? []),
    ];
    const [command, ...rest] = [...(options.prefix ?? []), REDIS_SERVER, ...args];
    child = spawn(command!, rest, { stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout!.on('data', (d: Buffer) => (text += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (text += d.toString()));
    await waitReady(child, () => text);
  };
  const halt = async (signal: NodeJS.Signals) => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill(signal);
    await exited;
  };
  await launch();
  return {
    host,
    port: options.port,
    url: `redis://${host}:${options.port}`,
    dir,
    socketPath: options.unixSocket ? join(dir, 'redis.sock') : null,
    get pid() {
      return child.pid!;
    },
    kill: () => halt('SIGKILL'),
    restart: launch,
    stop: async () => {
      await halt('SIGTERM');
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
