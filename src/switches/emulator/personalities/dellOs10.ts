/**
 * Dell EMC OS10 (an S5248F-ON), as SWITCH-CLI-REFERENCE.md §1.3 describes it: `show version`
 * (`Dell EMC Networking OS10 Enterprise`, `OS Version:`, `Build Version:`, `System Type:`),
 * `image download ftp://user:pass@host[:port]/path`, which returns at once while the file is
 * fetched in the background into /var/os10-image (the CLI's `image:`), surviving the SSH session,
 * `show image status` whose `File Transfer State` is `download` while it runs and `idle`
 * otherwise, the outcome being in `State Detail` (`In progress`, `Completed: No error`,
 * `Failed: …`, or `No download information available` before any download), `dir image`,
 * `system "df -k /var/os10-image"` and `system "sha256sum|md5sum /var/os10-image/NAME"` run by the
 * Linux underneath, `--more--` paging until `terminal length 0`, and any number of exec requests.
 *
 * Unconfirmed details, chosen here: `image download` prints nothing and asks nothing; a second
 * one while a download runs is refused; `Failed:` reasons are curl's words (the `dlfail` fault:
 * `Failed: Connection reset by peer` after about half the file); the /var/os10-image directory
 * is on the `/var` mount in `df`; a new download's `Task Start` is at least a second after the
 * last one's `Task End`, so two downloads never look alike; the pager's erase (CR, spaces, CR);
 * nothing is printed while a digest is computed (Linux's sha256sum prints nothing until done).
 */
import { basename } from 'node:path';
import type { CliIo } from '../terminal.js';
import { wrapped, type EmulatedSwitchState, type Personality } from '../personality.js';
import { BackgroundJob } from '../backgroundJob.js';

const IMAGE_DIR = '/var/os10-image';
const MEMORY_KEY = 'dell-os10-image-download';
const ZERO_TIME = '0000-00-00T00:00:00Z';
const UNRECOGNIZED = '% Error: Unrecognized command.\n';
const ILLEGAL = '% Error: Illegal parameter.\n';

/** `2026-11-30T12:00:04Z`. */
function isoSeconds(ms: number): string {
  return new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');
}

/** One download's status, as `show image status` shows it. */
interface DownloadStatus {
  file: string;
  startMs: number;
  /** When the transfer really began (`startMs` may be a second later: see start()). */
  realStartMs: number;
  endMs: number | null;
  /** When the transfer really ended. */
  realEndMs: number | null;
  bytes: number;
  totalBytes: number | null;
  /** Outcome: `In progress`, `Completed: No error`, `Failed: …`. */
  detail: string;
}

/** The switch's image download: one at a time, outliving the session that started it. */
class ImageDownloads {
  last: DownloadStatus | null = null;
  private readonly job = new BackgroundJob();

  get running(): boolean {
    return this.job.running;
  }

  start(sw: EmulatedSwitchState, url: string, file: string): void {
    const now = Date.now();
    const previous = this.last?.endMs ?? this.last?.startMs ?? null;
    const startMs = previous !== null && Math.floor(now / 1000) <= Math.floor(previous / 1000) ? (Math.floor(previous / 1000) + 1) * 1000 : now;
    const status: DownloadStatus = { file, startMs, realStartMs: now, endMs: null, realEndMs: null, bytes: 0, totalBytes: null, detail: 'In progress' };
    this.last = status;
    let injected = false;
    const before = Date.now();
    const finish = (detail: string) => {
      status.detail = detail;
      status.realEndMs = Date.now();
      status.endMs = Math.max(status.realEndMs, status.startMs);
    };
    this.job.start(async (controller) => {
      const result = await sw.copy(url, file, controller.signal, (bytes, totalBytes) => {
        status.bytes = bytes;
        status.totalBytes = totalBytes;
        // The `dlfail` fault: the download breaks after it started (about half-way).
        if (sw.faults.downloadFails && !injected && bytes >= (totalBytes ? totalBytes / 2 : 64 * 1024)) {
          injected = true;
          controller.abort();
        }
      });
      if (injected) {
        // A transfer that completed just as it was broken off leaves nothing behind either.
        const stat = (await sw.flash.files()).find((f) => f.name === file);
        if (stat && stat.mtime.getTime() >= before - 1000) await sw.flash.remove(file);
        return finish('Failed: Connection reset by peer');
      }
      if (result.ok) {
        status.bytes = result.bytes;
        status.totalBytes ??= result.bytes;
        return finish('Completed: No error');
      }
      if (controller.signal.aborted) return finish('Failed: Operation aborted');
      finish(`Failed: ${curlReason(result)}`);
    }, (err) => finish(`Failed: ${err.message}`));
  }

  /** Stops a running download (the fleet stops; the switch goes away). */
  stop(): Promise<void> {
    return this.job.stop();
  }
}

/** curl's words for a failed transfer. */
function curlReason(result: { stage: 'open' | 'read' | 'write'; replyCode: number | null; message: string }): string {
  if (result.stage === 'write') return 'Failed writing received data to disk';
  if (result.stage === 'read') return 'Transferred a partial file';
  if (result.replyCode === 530) return 'Login denied';
  if (result.replyCode === 550) return 'Remote file not found';
  if (result.replyCode !== null) return `FTP server replied ${result.replyCode}`;
  return /timed? ?out/i.test(result.message) ? 'Timeout was reached' : "Couldn't connect to server";
}

function downloads(sw: EmulatedSwitchState): ImageDownloads {
  let d = sw.memory.get(MEMORY_KEY) as ImageDownloads | undefined;
  if (!d) {
    d = new ImageDownloads();
    sw.memory.set(MEMORY_KEY, d);
  }
  return d;
}

function showVersion(sw: EmulatedSwitchState): string {
  return `Dell EMC Networking OS10 Enterprise
Copyright (c) 1999-2026 by Dell Inc. All Rights Reserved.
OS Version: ${sw.version}
Build Version: ${sw.version.split('.').length >= 5 ? sw.version : `${sw.version}.187`}
Build Time: 2026-09-30T21:18:55+0000
System Type: S5248F-ON
Architecture: x86_64
Up Time: 3 weeks 4 days 02:17:41
`;
}

function imageStatus(sw: EmulatedSwitchState): string {
  const d = sw.memory.get(MEMORY_KEY) as ImageDownloads | undefined;
  const s = d?.last ?? null;
  const running = !!d?.running;
  const field = (label: string, value: string) => `  ${`${label}:`.padEnd(23)}${value}\n`;
  let out = `Image Upgrade State:     ${running ? 'download' : 'idle'}\n`;
  out += '==================================================\n';
  out += `File Transfer State:     ${running ? 'download' : 'idle'}\n`;
  out += '--------------------------------------------------\n';
  if (!s) {
    out += field('State Detail', 'No download information available');
    out += field('Task Start', ZERO_TIME);
    out += field('Task End', ZERO_TIME);
    out += field('Transfer Progress', '0 %');
    out += field('Transfer Bytes', '0 bytes');
    out += field('File Size', '0 bytes');
    out += field('Transfer Rate', '0 kbps');
  } else {
    const total = s.totalBytes ?? 0;
    const percent = total > 0 ? Math.min(100, Math.floor((s.bytes * 100) / total)) : 0;
    const seconds = Math.max(0.001, ((s.realEndMs ?? Date.now()) - s.realStartMs) / 1000);
    out += field('State Detail', s.detail);
    out += field('Task Start', isoSeconds(s.startMs));
    out += field('Task End', s.endMs === null ? ZERO_TIME : isoSeconds(s.endMs));
    out += field('Transfer Progress', `${percent} %`);
    out += field('Transfer Bytes', `${s.bytes} bytes`);
    out += field('File Size', `${total} bytes`);
    out += field('Transfer Rate', `${Math.round((s.bytes * 8) / 1000 / seconds)} kbps`);
  }
  out += 'Installation State:      idle\n';
  out += '--------------------------------------------------\n';
  out += field('State Detail', 'No install information available');
  out += field('Task Start', ZERO_TIME);
  out += field('Task End', ZERO_TIME);
  return out;
}

async function imageDownload(io: CliIo, sw: EmulatedSwitchState, url: string): Promise<void> {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return io.print(ILLEGAL);
  }
  if (parsed.protocol !== 'ftp:' || !parsed.hostname) return io.print(ILLEGAL);
  const file = basename(decodeURIComponent(parsed.pathname));
  if (!file || parsed.pathname.endsWith('/')) return io.print(ILLEGAL);
  const d = downloads(sw);
  if (d.running) return io.print('% Error: Image download is already in progress.\n');
  d.start(sw, url, file);
}

/** `2026-11-30T12:00:04Z   655363        NAME`. */
async function dirImage(io: CliIo, sw: EmulatedSwitchState): Promise<void> {
  let out = 'Directory contents for folder: image\nDate (modified)        Size (bytes)  Name\n---------------------  ------------  -----------\n';
  for (const f of await sw.flash.files()) out += `${isoSeconds(f.mtime.getTime()).padEnd(23)}${String(f.size).padEnd(14)}${f.name}\n`;
  return io.print(out);
}

/** The file under /var/os10-image a path names, or null. */
function imageFile(path: string): string | null {
  const m = path.match(/^\/var\/os10-image\/+([^/]+)$/);
  return m ? m[1]! : null;
}

async function df(io: CliIo, sw: EmulatedSwitchState, args: string[]): Promise<void> {
  const paths = args.filter((a) => !a.startsWith('-'));
  const bad = args.find((a) => a.startsWith('-') && !/^-[kPh]+$/.test(a));
  if (bad) return io.print(`df: invalid option -- '${bad.replace(/^-+/, '').replace(/[kPh]/g, '')[0] ?? '-'}'\nTry 'df --help' for more information.\n`);
  const kb = (n: number) => Math.floor(n / 1024);
  const free = await sw.flash.free();
  const rows: string[] = [];
  const errors: string[] = [];
  const row = (fs: string, size: number, used: number, avail: number, mount: string) =>
    `${fs.padEnd(14)} ${String(size).padStart(9)} ${String(used).padStart(8)} ${String(avail).padStart(9)} ${`${Math.ceil((used * 100) / Math.max(1, used + avail))}%`.padStart(4)} ${mount}`;
  const varRow = row('/dev/sda6', kb(sw.flash.capacity), kb(sw.flash.capacity - free), kb(free), '/var');
  const rootRow = row('/dev/sda4', 4063232, 2451688, 1385276, '/');
  const configRow = row('/dev/sda7', 1014680, 5312, 940556, '/config');
  for (const p of paths.length ? paths : ['/', '/var', '/config']) {
    const clean = p.replace(/\/+$/, '') || '/';
    if (clean === '/var' || clean === IMAGE_DIR || (clean.startsWith(`${IMAGE_DIR}/`) && (await sw.flash.size(basename(clean))) !== null)) rows.push(varRow);
    else if (clean === '/config') rows.push(configRow);
    else if (clean === '/' || clean === '/home' || clean === '/tmp') rows.push(rootRow);
    else errors.push(`df: ${p}: No such file or directory`);
  }
  let out = errors.map((e) => `${e}\n`).join('');
  if (rows.length) out += `Filesystem     1K-blocks     Used Available Use% Mounted on\n${rows.map((r) => `${r}\n`).join('')}`;
  return io.print(out);
}

async function sum(io: CliIo, sw: EmulatedSwitchState, tool: string, args: string[]): Promise<void> {
  const algorithm = tool.replace(/sum$/, '');
  if (args.length === 0) return io.print(''); // reads stdin: nothing comes, nothing printed
  let out = '';
  for (const path of args) {
    const name = imageFile(path);
    if (!name || (await sw.flash.size(name)) === null) {
      out += `${tool}: ${path}: No such file or directory\n`;
      continue;
    }
    const rate = sw.faults.hashBytesPerSecond;
    const hex = await sw.flash.hash(name, algorithm, { signal: io.signal, ...(rate ? { bytesPerSecond: rate } : {}) });
    out += hex === null ? `${tool}: ${path}: No such file or directory\n` : `${wrapped(hex, sw.faults.wrapDigests)}  ${path}\n`;
  }
  return io.print(out);
}

async function ls(io: CliIo, sw: EmulatedSwitchState, args: string[]): Promise<void> {
  const long = args.some((a) => /^-\w*l/.test(a));
  const paths = args.filter((a) => !a.startsWith('-'));
  const files = await sw.flash.files();
  const line = (f: { name: string; size: number; mtime: Date }, full: string) => {
    if (!long) return `${full}\n`;
    const d = f.mtime;
    const month = d.toLocaleString('en-US', { month: 'short', timeZone: 'UTC' });
    const hm = `${String(d.getUTCHours()).padStart(2, '0')}:${String(d.getUTCMinutes()).padStart(2, '0')}`;
    return `-rw-r--r-- 1 root root ${String(f.size).padStart(10)} ${month} ${String(d.getUTCDate()).padStart(2)} ${hm} ${full}\n`;
  };
  let out = '';
  for (const path of paths.length ? paths : ['.']) {
    if (path.replace(/\/+$/, '') === IMAGE_DIR) {
      if (long) out += `total ${files.reduce((n, f) => n + Math.ceil(f.size / 4096) * 4, 0)}\n`;
      for (const f of files) out += line(f, f.name);
      continue;
    }
    const name = imageFile(path);
    const f = name ? files.find((x) => x.name === name) : undefined;
    out += f ? line(f, path) : `ls: cannot access '${path}': No such file or directory\n`;
  }
  return io.print(out);
}

/** `system "…"`: one command line run by the Linux underneath (a few tools exist here). */
async function system(io: CliIo, sw: EmulatedSwitchState, command: string): Promise<void> {
  const words = command.trim().split(/\s+/).filter(Boolean);
  const tool = words[0];
  if (!tool) return;
  const args = words.slice(1);
  if (tool === 'df') return df(io, sw, args);
  if (tool === 'md5sum' || tool === 'sha1sum' || tool === 'sha256sum' || (tool === 'sha512sum' && !sw.faults.noSha512)) return sum(io, sw, tool, args);
  if (tool === 'ls') return ls(io, sw, args);
  return io.print(`sh: 1: ${tool}: not found\n`);
}

export const dellOs10Personality: Personality = {
  name: 'dell-os10',
  catalogPlatform: 'dell-os10',
  defaultVersion: '10.5.4.7',
  exec: 'many',
  pager: { marker: '--more--', erase: '\r        \r' },
  initialMode: () => 'exec',
  greeting: () => `Last login: Sat Nov 28 09:41:17 2026 from 127.0.0.1
-*-*-*-*-*-*-*-*-*-*-*-*-*-*-*-*-*-*-*-*-*-*-*-*-*-*-*-*-*-*-*-*-*-*-*-*-*-*
-*                Dell EMC Network Operating System (OS10)              *-
-*                                                                      *-
-* Copyright (c) 1999-2026 by Dell Inc. All Rights Reserved.            *-
-*                                                                      *-
-*-*-*-*-*-*-*-*-*-*-*-*-*-*-*-*-*-*-*-*-*-*-*-*-*-*-*-*-*-*-*-*-*-*-*-*-*-*

This product is protected by U.S. and international copyright and
intellectual property laws. Dell EMC and the Dell EMC logo are trademarks
of Dell Inc. in the United States and/or other jurisdictions.

`,
  prompt: (sw) => `${sw.name}#`,
  async run(line, io, sw, session) {
    if (line === '') return;
    if (line === 'exit' || line === 'quit') return 'exit';
    const words = line.split(/\s+/);
    if (words[0] === 'terminal') {
      if (words[1] === 'length' && /^\d+$/.test(words[2] ?? '') && words.length === 3) {
        session.terminalLength = Number(words[2]);
        return;
      }
      return io.print(words.length < 3 ? '% Error: Incomplete command.\n' : ILLEGAL);
    }
    if (words[0] === 'show') {
      if (words[1] === 'version' && words.length === 2) return io.print(showVersion(sw));
      if (words[1] === 'image' && words[2] === 'status' && words.length === 3) return io.print(imageStatus(sw));
      return io.print(UNRECOGNIZED);
    }
    if (words[0] === 'image') {
      if (words[1] === 'download' && words.length === 3) return imageDownload(io, sw, words[2]!);
      if (words[1] === 'download') return io.print(words.length < 3 ? '% Error: Incomplete command.\n' : ILLEGAL);
      return io.print(UNRECOGNIZED);
    }
    if (words[0] === 'dir') {
      if (words[1] === 'image' && words.length === 2) return dirImage(io, sw);
      if (words.length === 2 && /^(config|coredump|home|supportbundle|techsupport|usb)$/.test(words[1]!)) {
        return io.print(`Directory contents for folder: ${words[1]}\nDate (modified)        Size (bytes)  Name\n---------------------  ------------  -----------\n`);
      }
      return io.print(words.length === 1 ? '% Error: Incomplete command.\n' : ILLEGAL);
    }
    if (words[0] === 'system') {
      const rest = line.slice('system'.length).trim();
      const m = rest.match(/^"(.*)"$/);
      if (!rest || (rest.startsWith('"') && !m)) return io.print('% Error: Incomplete command.\n');
      return system(io, sw, m ? m[1]! : rest);
    }
    return io.print(UNRECOGNIZED);
  },
};
