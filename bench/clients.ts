import { createHash } from 'node:crypto';
import { createReadStream, existsSync, mkdirSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { swfwArgv } from './options.js';
import { HarnessError, quick, run, withoutSwfwEnv, type RunResult } from './proc.js';
import { ftpUrl, type Endpoint } from './servers.js';
import type { ImageFile } from './images.js';
import { PeakRss } from './memory.js';

/** One download as a client saw it. */
export interface Transfer {
  /** The client exited 0 and received exactly the file's size. */
  ok: boolean;
  bytes: number;
  ms: number;
  startedAt: number;
  endedAt: number;
  /** What the client said when it failed. */
  error: string | null;
}

/** Generous limits: a hang fails the run instead of stalling it. 20 MiB/s is far below either server. */
const BASE_TIMEOUT_MS = 30_000;
const SLOWEST_BYTES_PER_MS = (20 * 1024 * 1024) / 1000;
export const transferTimeoutMs = (bytes: number): number => Math.ceil(BASE_TIMEOUT_MS + bytes / SLOWEST_BYTES_PER_MS);

function curlArgs(endpoint: Endpoint, file: ImageFile, timeoutMs: number, output: string, writeOut: string): string[] {
  return [
    '-sS',
    '--max-time', String(Math.ceil(timeoutMs / 1000)),
    ...(endpoint.credentials ? ['-u', `${endpoint.credentials.user}:${endpoint.credentials.password}`] : []),
    '-o', output,
    '-w', writeOut,
    ftpUrl(endpoint, file.name),
  ];
}

/** Client-side kill timer: a little after curl's own --max-time, so curl normally reports first. */
const KILL_AFTER_MS = 10_000;

function transferOf(result: RunResult, bytes: number, file: ImageFile, client: string): Transfer {
  const ok = result.code === 0 && bytes === file.size;
  if (result.code === 0 && bytes !== file.size) {
    // A client that reports success with the wrong byte count means the server sent a wrong file.
    throw new HarnessError(`${client} got ${bytes} bytes of ${file.name}, expected ${file.size}`);
  }
  const error = ok ? null : result.stderr.trim().split('\n').filter((l) => !/^\d+$/.test(l)).pop() ?? `exit ${result.code ?? result.signal}`;
  return { ok, bytes, ms: result.ms, startedAt: result.startedAt, endedAt: result.endedAt, error };
}

/** `curl -o /dev/null`, with curl's own count of bytes received. */
export async function curlToNull(endpoint: Endpoint, file: ImageFile, timeoutMs = transferTimeoutMs(file.size), fromAddress?: string): Promise<Transfer> {
  const args = curlArgs(endpoint, file, timeoutMs, '/dev/null', '%{size_download}');
  // From its own loopback address, as each switch has its own: control and data connections both.
  if (fromAddress) args.unshift('--interface', fromAddress);
  const result = await run('curl', args, { timeoutMs: timeoutMs + KILL_AFTER_MS });
  return transferOf(result, Number.parseInt(result.stdout.trim(), 10), file, `curl from ${endpoint.name}`);
}

/** `curl | sha256sum`, what an admin does by hand; the digest must be the file's. */
export async function curlSha256sum(endpoint: Endpoint, file: ImageFile): Promise<Transfer> {
  const timeoutMs = transferTimeoutMs(file.size) * 2;
  // The byte count goes to stderr (%{stderr}, curl >= 7.63) so stdout carries only the data.
  const args = curlArgs(endpoint, file, timeoutMs, '-', '%{stderr}%{size_download}\\n');
  const result = await run('bash', ['-c', 'set -o pipefail; curl "$@" | sha256sum', 'curl-sha256sum', ...args], { timeoutMs: timeoutMs + KILL_AFTER_MS });
  const bytes = Number.parseInt(result.stderr.trim().split('\n').pop() ?? '', 10);
  const transfer = transferOf(result, bytes, file, `curl | sha256sum from ${endpoint.name}`);
  const digest = result.stdout.trim().split(/\s+/)[0];
  if (transfer.ok && digest !== file.sha256) throw new HarnessError(`curl | sha256sum of ${file.name} gave ${digest}, expected ${file.sha256}`);
  return transfer;
}

/**
 * `curl | openssl dgst -sha256`: the fastest pipeline an admin would build by hand (OpenSSL's
 * SHA-256, the same code Node's crypto uses); the digest must be the file's.
 */
export async function curlOpensslSha256(endpoint: Endpoint, file: ImageFile): Promise<Transfer> {
  const timeoutMs = transferTimeoutMs(file.size) * 2;
  const args = curlArgs(endpoint, file, timeoutMs, '-', '%{stderr}%{size_download}\\n');
  const result = await run('bash', ['-c', 'set -o pipefail; curl "$@" | openssl dgst -sha256 -r', 'curl-openssl', ...args], { timeoutMs: timeoutMs + KILL_AFTER_MS });
  const bytes = Number.parseInt(result.stderr.trim().split('\n').pop() ?? '', 10);
  const transfer = transferOf(result, bytes, file, `curl | openssl dgst -sha256 from ${endpoint.name}`);
  const digest = result.stdout.trim().split(/\s+/)[0];
  if (transfer.ok && digest !== file.sha256) throw new HarnessError(`curl | openssl dgst -sha256 of ${file.name} gave ${digest}, expected ${file.sha256}`);
  return transfer;
}

/**
 * N curls started together; the wall time runs from the first start to the last exit. With
 * `ownAddresses`, curl i comes from 127.0.10+⌊i/250⌋.(i%250+1): each its own client, as switches are.
 */
export async function curlConcurrent(endpoint: Endpoint, file: ImageFile, count: number, ownAddresses = false): Promise<{ wallMs: number; transfers: Transfer[] }> {
  const timeoutMs = transferTimeoutMs(file.size * count);
  const address = (i: number) => `127.0.${10 + Math.floor(i / 250)}.${(i % 250) + 1}`;
  const transfers = await Promise.all(Array.from({ length: count }, (_, i) => curlToNull(endpoint, file, timeoutMs, ownAddresses ? address(i) : undefined)));
  const wallMs = Math.max(...transfers.map((t) => t.endedAt)) - Math.min(...transfers.map((t) => t.startedAt));
  return { wallMs, transfers };
}

/** Fails the run when a transfer a figure depends on did not complete. */
export function requireOk(transfers: readonly Transfer[], what: string): void {
  const failed = transfers.filter((t) => !t.ok);
  if (failed.length) throw new HarnessError(`${what}: ${failed.length} of ${transfers.length} transfers failed (${failed[0]!.error})`);
}

/**
 * One python3 process: connect and log in, then RETR each file on the same control session with
 * ftplib (PASV, TYPE I, RETR, 226 per file). Only the RETR loop is timed; digests are computed
 * after the loop so hashing stays out of the measurement.
 */
const FTPLIB_LOOP = `
import ftplib, hashlib, json, sys, time
host, port, user, password = sys.argv[1:5]
names = sys.argv[5:]
ftp = ftplib.FTP()
ftp.connect(host, int(port), timeout=60)
ftp.login(user, password)
blobs = []
start = time.perf_counter()
for name in names:
    parts = []
    ftp.retrbinary('RETR ' + name, parts.append)
    blobs.append(b''.join(parts))
elapsed = time.perf_counter() - start
ftp.quit()
print(json.dumps({'seconds': elapsed, 'sha256': [hashlib.sha256(b).hexdigest() for b in blobs], 'sizes': [len(b) for b in blobs]}))
`;

/** Time of the RETR loop in ms; every file's size and digest are checked. */
export async function ftplibRetrLoop(endpoint: Endpoint, files: readonly ImageFile[]): Promise<number> {
  const user = endpoint.credentials?.user ?? 'anonymous';
  const password = endpoint.credentials?.password ?? '';
  const result = await run('python3', ['-c', FTPLIB_LOOP, endpoint.host, String(endpoint.port), user, password, ...files.map((f) => f.name)], {
    timeoutMs: 120_000,
  });
  if (result.code !== 0) throw new HarnessError(`ftplib RETR loop against ${endpoint.name} failed: ${result.stderr.trim().split('\n').slice(-3).join(' | ')}`);
  const report = JSON.parse(result.stdout) as { seconds: number; sha256: string[]; sizes: number[] };
  files.forEach((file, i) => {
    if (report.sizes[i] !== file.size || report.sha256[i] !== file.sha256) {
      throw new HarnessError(`ftplib from ${endpoint.name}: ${file.name} came back as ${report.sizes[i]} bytes / ${report.sha256[i]}`);
    }
  });
  return report.seconds * 1000;
}

// --- swfw pull ---------------------------------------------------------------------------------

export type PullSupport = { available: true } | { available: false; reason: string };

/**
 * Whether `swfw pull` is built. Exit status alone cannot tell: for an unknown subcommand
 * `swfw pull --help` prints the program's help and exits 0, so look for the subcommand's usage line.
 */
export function detectSwfwPull(pullArgs: string): PullSupport {
  const result = quick(process.execPath, swfwArgv('pull', '--help'));
  const help = `${result?.stdout ?? ''}${result?.stderr ?? ''}`;
  if (result?.code !== 0 || !/Usage: swfw pull\b/.test(help)) return { available: false, reason: 'swfw pull not built yet' };
  for (const flag of pullArgs.split(/\s+/).filter((a) => a.startsWith('--'))) {
    if (!help.includes(flag)) return { available: false, reason: `swfw pull has no ${flag} (set --pull-args)` };
  }
  return { available: true };
}

function sha256File(path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const hash = createHash('sha256');
    createReadStream(path, { highWaterMark: 1 << 20 })
      .on('data', (chunk) => hash.update(chunk))
      .once('error', reject)
      .once('end', () => resolve(hash.digest('hex')));
  });
}

/** `curl -o FILE` into the scratch dir: the by-hand download that keeps the image (figure 4c). */
export async function curlToFile(endpoint: Endpoint, file: ImageFile, scratchDir: string): Promise<Transfer> {
  rmSync(scratchDir, { recursive: true, force: true });
  mkdirSync(scratchDir, { recursive: true });
  const timeoutMs = transferTimeoutMs(file.size) * 2;
  try {
    const result = await run('curl', curlArgs(endpoint, file, timeoutMs, join(scratchDir, file.name), '%{size_download}'), { timeoutMs: timeoutMs + KILL_AFTER_MS });
    return transferOf(result, Number.parseInt(result.stdout.trim(), 10), file, `curl -o file from ${endpoint.name}`);
  } finally {
    rmSync(scratchDir, { recursive: true, force: true });
  }
}

/**
 * `swfw pull --sha256`, either `--out /dev/null` (verify in transit, keep nothing: pull's discard
 * mode) or into a scratch file (temp file, fsync, rename). Checks the exit code and the printed
 * digest; for a file also its size and its SHA-256 on disk. Records the client's peak RSS.
 */
export async function swfwPull(endpoint: Endpoint, file: ImageFile, template: string, scratchDir: string, keep: 'discard' | 'file'): Promise<Transfer & { peakRssBytes: number }> {
  rmSync(scratchDir, { recursive: true, force: true });
  mkdirSync(scratchDir, { recursive: true });
  const out = keep === 'discard' ? '/dev/null' : join(scratchDir, file.name);
  const args = template
    .split(/\s+/)
    .filter(Boolean)
    .map((arg) => arg.replaceAll('{url}', ftpUrl(endpoint, file.name)).replaceAll('{out}', out).replaceAll('{sha256}', file.sha256));
  // A holder, not a `let`: the sampler is created in a callback TypeScript cannot follow.
  const memory: { sampler: PeakRss | null } = { sampler: null };
  const timeoutMs = transferTimeoutMs(file.size) * 2;
  try {
    const result = await run(process.execPath, swfwArgv(...args), {
      timeoutMs,
      env: withoutSwfwEnv(),
      onSpawn: (pid) => {
        memory.sampler = new PeakRss(pid, true).start();
      },
    });
    const peakRssBytes = memory.sampler?.stop() ?? 0;
    const said = `${result.stdout}\n${result.stderr}`;
    if (result.code !== 0) throw new HarnessError(`swfw ${args.join(' ')} failed (exit ${result.code ?? result.signal}): ${said.trim().slice(-400)}`);
    // Our own check does not trust pull's verdict: the digest it printed (of every byte it
    // received, so it also proves the count) and, when it kept the file, the bytes on disk.
    if (!said.toLowerCase().includes(file.sha256)) throw new HarnessError(`swfw pull did not print the image's SHA-256 ${file.sha256}`);
    if (keep === 'file') {
      const bytes = existsSync(out) ? statSync(out).size : -1;
      if (bytes !== file.size) throw new HarnessError(`swfw pull wrote ${bytes} bytes to ${out}, expected ${file.size}`);
      const onDisk = await sha256File(out);
      if (onDisk !== file.sha256) throw new HarnessError(`swfw pull wrote a file with SHA-256 ${onDisk}, expected ${file.sha256}`);
    }
    return { ok: true, bytes: file.size, ms: result.ms, startedAt: result.startedAt, endedAt: result.endedAt, error: null, peakRssBytes };
  } finally {
    memory.sampler?.stop();
    rmSync(scratchDir, { recursive: true, force: true });
  }
}
