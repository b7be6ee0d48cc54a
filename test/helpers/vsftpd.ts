import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { chmodSync, copyFileSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { freePort } from './ports.js';

export const VSFTPD = '/usr/sbin/vsftpd';

export interface Vsftpd {
  host: string;
  port: number;
  /** The anonymous root: files copied in are served as `/<name>`. */
  root: string;
  /** PIDs of the session processes vsftpd forked (one or two per open session). */
  sessionPids(): number[];
  stop(): Promise<void>;
}

/** Children of `pid`, and their children, from /proc. */
function descendants(pid: number): number[] {
  const children = new Map<number, number[]>();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      // Field 4 of /proc/PID/stat is the parent PID; the command name (field 2) may contain spaces.
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      children.set(ppid, [...(children.get(ppid) ?? []), Number(name)]);
    } catch {
      // the process exited while we looked
    }
  }
  const found: number[] = [];
  const walk = (parent: number) => {
    for (const child of children.get(parent) ?? []) {
      found.push(child);
      walk(child);
    }
  };
  walk(pid);
  return found;
}

async function waitForGreeting(port: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const socket = connect({ host: '127.0.0.1', port });
      socket.setEncoding('utf8');
      socket.once('data', (text: string) => {
        socket.destroy();
        resolve(text.startsWith('220'));
      });
      socket.once('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`vsftpd did not greet on port ${port}`);
    await delay(50);
  }
}

/**
 * Starts a real vsftpd on 127.0.0.1 serving `files` to anonymous users, read-only, from a private
 * temp directory, with its passive range inside `pasv` (this suite's ports). It runs in the
 * foreground (background=NO) so it is stopped by its own PID.
 */
export async function startVsftpd(files: string[], pasv: { min: number; max: number }, extraConfig: string[] = []): Promise<Vsftpd> {
  const dir = mkdtempSync(join(tmpdir(), 'swfw-vsftpd-'));
  const root = join(dir, 'root');
  const empty = join(dir, 'empty');
  mkdirSync(root);
  mkdirSync(empty);
  for (const file of files) copyFileSync(file, join(root, basename(file)));
  // vsftpd refuses an anonymous root that others can write to; the temp dir is 0700.
  chmodSync(root, 0o755);
  chmodSync(empty, 0o755);
  chmodSync(dir, 0o755);
  const port = await freePort();
  const config = join(dir, 'vsftpd.conf');
  writeFileSync(
    config,
    [
      'listen=YES',
      'listen_ipv6=NO',
      'listen_address=127.0.0.1',
      `listen_port=${port}`,
      'anonymous_enable=YES',
      'local_enable=NO',
      `anon_root=${root}`,
      'no_anon_password=YES',
      'write_enable=NO',
      'background=NO',
      'seccomp_sandbox=NO',
      `secure_chroot_dir=${empty}`,
      'pasv_enable=YES',
      `pasv_min_port=${pasv.min}`,
      `pasv_max_port=${pasv.max}`,
      'xferlog_enable=NO',
      'use_localtime=NO',
      ...extraConfig,
      '',
    ].join('\n'),
  );
  const child: ChildProcess = spawn(VSFTPD, [config], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr?.setEncoding('utf8').on('data', (s: string) => (stderr += s));
  const exited = once(child, 'exit');
  try {
    await Promise.race([
      waitForGreeting(port, 5_000),
      exited.then(([code]) => {
        throw new Error(`vsftpd exited (${String(code)}): ${stderr}`);
      }),
    ]);
  } catch (err) {
    if (child.exitCode === null) child.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
  return {
    host: '127.0.0.1',
    port,
    root,
    sessionPids: () => (child.pid ? descendants(child.pid) : []),
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        await exited;
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/**
 * A system account for a vsftpd local-user test (root only): a home directory that is not the FTP
 * root `/`, a random password, the shell /bin/sh (Debian's vsftpd PAM stack wants a shell listed
 * in /etc/shells). `remove()` deletes the account; call it in every path.
 */
export function createLocalUser(home: string): { name: string; password: string; remove(): void } {
  const name = `swfwt${randomBytes(3).toString('hex')}`;
  const password = randomBytes(12).toString('base64url');
  execFileSync('useradd', ['--no-create-home', '--home-dir', home, '--shell', '/bin/sh', '--no-user-group', '--gid', 'nogroup', name], { stdio: 'ignore' });
  try {
    execFileSync('chpasswd', [], { input: `${name}:${password}\n`, stdio: ['pipe', 'ignore', 'ignore'] });
  } catch (err) {
    execFileSync('userdel', [name], { stdio: 'ignore' });
    throw err;
  }
  return {
    name,
    password,
    remove: () => {
      try {
        execFileSync('userdel', [name], { stdio: 'ignore' });
      } catch {
        // already gone
      }
    },
  };
}
