import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { expect } from 'chai';
import { startTestServer, type TestServer } from '../helpers/testServer.js';
import type { TransferRecord } from '../../src/server/context.js';

/**
 * Shared plumbing for the interop suites: run a real FTP client with a hard timeout, hash what it
 * wrote, and check the three views of one download against each other (the file on disk, the
 * bytes the client wrote, the server's audit record of the bytes it sent).
 */

/** Every client run gets this long before it is killed (SIGKILL, by its PID). */
export const CLIENT_TIMEOUT_MS = 20_000;
/** The server emits its audit record just after 226; a client may exit before it lands. */
const AUDIT_WAIT_MS = 5_000;
/** Output kept per stream: enough for a verbose curl or lftp debug log of one transfer. */
const MAX_OUTPUT_CHARS = 1_000_000;

/** Fixture images, as paths inside the served repository. */
export const IMAGES = {
  cisco: '/cisco/c9300-universalk9.17.09.04a.SPA.bin',
  aruba: '/aruba/ArubaOS-CX_6300_10_13_1000.swi',
  dell: '/dell/OS10_10.5.6.0.bin',
} as const;

export interface RunResult {
  /** Exit code, or null when the process died by a signal. */
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  timedOut: boolean;
}

export interface RunOptions {
  timeoutMs?: number;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
}

/** Children still running, so an after hook can kill any stray one by its PID. */
const running = new Set<ChildProcess>();

/**
 * Runs a client to completion and never throws on a nonzero exit (tests assert on it).
 * It is killed with SIGKILL by its PID when it outlives `timeoutMs`.
 */
export function run(command: string, args: string[], options: RunOptions = {}): Promise<RunResult> {
  const timeoutMs = options.timeoutMs ?? CLIENT_TIMEOUT_MS;
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, {
      env: options.env ?? clientEnv(),
      cwd: options.cwd,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    running.add(child);
    let stdout = '';
    let stderr = '';
    let timedOut = false;
    child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
      if (stdout.length < MAX_OUTPUT_CHARS) stdout += chunk;
    });
    child.stderr!.setEncoding('utf8').on('data', (chunk: string) => {
      if (stderr.length < MAX_OUTPUT_CHARS) stderr += chunk;
    });
    const timer = setTimeout(() => {
      timedOut = true;
      killChild(child);
    }, timeoutMs);
    child.once('error', (err) => {
      clearTimeout(timer);
      running.delete(child);
      killChild(child);
      reject(new Error(`cannot run ${command}: ${err.message}`));
    });
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      running.delete(child);
      resolve({ code, signal, stdout, stderr, timedOut });
    });
  });
}

function killChild(child: ChildProcess): void {
  if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
  try {
    process.kill(child.pid, 'SIGKILL');
  } catch {
    // Already gone.
  }
}

/** Kills, by PID, every client this module started that is still running. For after hooks. */
export function killStrayClients(): void {
  for (const child of running) killChild(child);
  running.clear();
}

/**
 * A clean environment for clients: no proxy variables (curl and wget would send ftp:// through
 * an HTTP proxy), a C locale for stable messages, and HOME pointed at `home` when given so no
 * ~/.curlrc, ~/.wgetrc, ~/.lftprc or ~/.netrc of the machine changes what the client does.
 */
export function clientEnv(home?: string): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (/proxy$/i.test(key)) continue;
    env[key] = value;
  }
  env['LC_ALL'] = 'C';
  env['no_proxy'] = '*';
  if (home) env['HOME'] = home;
  return env;
}

/** Asserts a clean exit, with the client's output in the failure message. */
export function expectSuccess(result: RunResult, what: string): void {
  const detail = `${what}: exit ${result.code}${result.signal ? ` (${result.signal})` : ''}${result.timedOut ? ' after TIMEOUT' : ''}\n--- stdout\n${result.stdout.slice(-4000)}\n--- stderr\n${result.stderr.slice(-4000)}`;
  expect(result.timedOut, detail).to.equal(false);
  expect(result.code, detail).to.equal(0);
}

/** A private temporary directory; remove it with `removeTempDir` in an after hook. */
export function makeTempDir(label: string): string {
  return mkdtempSync(join(tmpdir(), `swfw-interop-${label}-`));
}

export function removeTempDir(dir: string | undefined): void {
  if (dir) rmSync(dir, { recursive: true, force: true });
}

/** SHA-256 (hex) of a file, or of its bytes from `offset` on. */
export async function sha256File(path: string, offset = 0): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path, { start: offset })) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/** The file on disk behind a repository path such as /cisco/x.bin. */
export function imageOnDisk(server: TestServer, remotePath: string): string {
  return join(server.images, ...remotePath.split('/').filter(Boolean));
}

/**
 * Waits for the audit record of the transfer of `remotePath` that finished after the first
 * `since` records (the record is emitted right after the 226 reply, so it can trail the client).
 */
export async function waitForTransfer(server: TestServer, remotePath: string, since: number): Promise<TransferRecord> {
  const deadline = Date.now() + AUDIT_WAIT_MS;
  for (;;) {
    const record = server.transfers.slice(since).find((r) => r.path === remotePath);
    if (record) return record;
    if (Date.now() > deadline) {
      const seen = server.transfers.slice(since).map((r) => `${r.path} ${r.code}`);
      throw new Error(`no audit record for ${remotePath} within ${AUDIT_WAIT_MS} ms (records since: ${seen.join(', ') || 'none'})`);
    }
    await delay(20);
  }
}

/**
 * The three-way check of one download: what the client wrote equals the image on disk (from
 * `offset` on, for resumed transfers), and the server's audit record says it sent exactly those
 * bytes, completely, with the same SHA-256.
 */
export async function expectVerifiedDownload(
  server: TestServer,
  remotePath: string,
  localFile: string,
  since: number,
  offset = 0,
): Promise<TransferRecord> {
  const onDisk = imageOnDisk(server, remotePath);
  const diskSize = statSync(onDisk).size;
  expect(statSync(localFile).size, `size of ${localFile}`).to.equal(diskSize);
  const [clientSha, diskSha, sentSha] = await Promise.all([
    sha256File(localFile),
    sha256File(onDisk),
    sha256File(onDisk, offset),
  ]);
  expect(clientSha, 'sha256 of what the client wrote vs the image on disk').to.equal(diskSha);
  const record = await waitForTransfer(server, remotePath, since);
  expect(record.result, `audit record ${JSON.stringify(record)}`).to.equal('complete');
  expect(record.code).to.equal(226);
  expect(record.offset).to.equal(offset);
  expect(record.bytes).to.equal(diskSize - offset);
  expect(record.sha256, 'audit record sha256 vs the bytes the server should have sent').to.equal(sentSha);
  return record;
}

/**
 * Every passive port a verbose client log shows (227 and 229 replies as curl -v, lftp debug or
 * ftplib debug print them). Used to assert that real clients were only offered ports in range.
 */
export function passivePortsIn(log: string): number[] {
  const ports: number[] = [];
  for (const match of log.matchAll(/227 [^(\r\n]*\((\d+),(\d+),(\d+),(\d+),(\d+),(\d+)\)/g)) {
    ports.push(Number(match[5]) * 256 + Number(match[6]));
  }
  for (const match of log.matchAll(/229 [^(\r\n]*\(\|\|\|(\d+)\|\)/g)) ports.push(Number(match[1]));
  return ports;
}

/** Asserts the log shows at least one passive reply, and that every port in it is in range. */
export function expectPortsInRange(log: string, server: TestServer): void {
  const ports = passivePortsIn(log);
  expect(ports, 'passive replies in the client log').to.not.be.empty;
  for (const port of ports) expect(port, 'passive port').to.be.within(server.pasvMin, server.pasvMax);
}

/** An ftp:// URL with credentials (user and password are URL-encoded). */
export function ftpUrl(server: TestServer, user: string, password: string, path: string): string {
  return `ftp://${encodeURIComponent(user)}:${encodeURIComponent(password)}@${server.host}:${server.port}${path}`;
}

/**
 * The hooks every interop suite needs: a temp dir for the client's files and HOME, and a real
 * server on the suite's own passive range; afterwards stray clients are killed by PID and both
 * are removed. `use` receives them once they exist.
 */
export function useInteropServer(label: string, pasvRange: string, use: (server: TestServer, work: string) => void): void {
  let server: TestServer | undefined;
  let work: string | undefined;
  before(async () => {
    work = makeTempDir(label);
    server = await startTestServer(pasvRange);
    use(server, work);
  });
  after(async () => {
    killStrayClients();
    await server?.stop();
    removeTempDir(work);
  });
}
