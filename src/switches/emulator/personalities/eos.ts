/**
 * Arista EOS, as SWITCH-CLI-REFERENCE.md §2.4 describes it: a login in unprivileged mode
 * (`sw>`), `enable` (asking for a password only with the `userexec` fault), `show version` with
 * the model on its first line and `Software image version: …`, `dir flash:` ending with
 * `N bytes total (M bytes free)`, `copy ftp://user:pass@host[:port]/path flash:NAME` ending
 * `Copy completed successfully.` or `% Error copying …`, the VRF taken from the CLI context
 * (`cli vrf NAME`, or the older `routing-context vrf NAME`; `default` and `management` exist),
 * `verify /md5|/sha512 flash:NAME` → `verify /sha512 (flash:NAME) = <hex>`, ` --More-- ` paging
 * until `terminal length 0`, and any number of exec requests per connection.
 *
 * Unconfirmed details, chosen here: nothing is printed while a copy or a verify runs; the prompt
 * shows the VRF context (`sw(vrf:management)#`); `dir`, `copy` and `verify` need privileged mode
 * (`% Invalid input (privileged mode required)`); `Password:` is asked when the URL names a user
 * but no password; the error texts of a failed copy and of a missing file; the pager's erase
 * (CR, spaces, CR).
 */
import { basename } from 'node:path';
import type { CliIo } from '../terminal.js';
import { maskedUrl, wrapped, type CliSessionState, type EmulatedSwitchState, type Personality } from '../personality.js';

const VRFS = new Set(['default', 'management']);
const MODEL = 'DCS-7050SX3-48YC8-R';

/** The VRF context of each session (`cli vrf NAME`). */
const sessionVrf = new WeakMap<CliSessionState, string>();

const INVALID = '% Invalid input\n';
const PRIVILEGED = '% Invalid input (privileged mode required)\n';
const INCOMPLETE = '% Incomplete command\n';

function showVersion(sw: EmulatedSwitchState): string {
  return `Arista ${MODEL}
Hardware version: 12.01
Serial number: JPE26114477
Hardware MAC address: 7483.ef4a.1c02
System MAC address: 7483.ef4a.1c02

Software image version: ${sw.version}
Architecture: x86_64
Internal build version: ${sw.version}-35442176.${sw.version.replace(/\./g, '')}
Internal build ID: 7e1c3a52-9d0b-4f6e-a8b1-5c2f0d94e613
Image format version: 3.0
Image optimization: None

Uptime: 6 weeks, 2 days, 19 hours and 3 minutes
Total memory: 16024612 kB
Free memory: 11230976 kB

`;
}

/** `Nov 30 12:00`: the EOS `dir` date. */
function eosDate(d: Date): string {
  const month = d.toLocaleString('en-US', { month: 'short', timeZone: 'UTC' });
  const pad = (n: number) => String(n).padStart(2, '0');
  return `${month} ${String(d.getUTCDate()).padStart(2)} ${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}`;
}

/** `flash:NAME`, `flash:/NAME`, `file:/mnt/flash/NAME` → {shown (as typed), name}; anything else → null. */
function flashPath(arg: string): { shown: string; name: string } | null {
  let m = arg.match(/^flash:\/?(.*)$/);
  if (m) return { shown: arg, name: m[1]! };
  m = arg.match(/^file:\/mnt\/flash\/(.*)$/);
  if (m) return { shown: arg, name: m[1]! };
  return null;
}

async function dir(io: CliIo, sw: EmulatedSwitchState): Promise<void> {
  let out = 'Directory of flash:/\n\n';
  const entries = [
    { mode: 'drwx', name: '.extensions', size: 4096, mtime: new Date('2026-10-04T08:12:00Z') },
    { mode: 'drwx', name: 'schedule', size: 4096, mtime: new Date('2026-10-04T08:12:00Z') },
    { mode: '-rwx', name: 'startup-config', size: 1431, mtime: new Date('2026-10-04T08:15:00Z') },
    ...(await sw.flash.files()).map((f) => ({ mode: '-rwx', ...f })),
  ].sort((a, b) => a.name.localeCompare(b.name));
  for (const e of entries) out += `       ${e.mode}  ${String(e.size).padStart(10)}           ${eosDate(e.mtime)}  ${e.name}\n`;
  out += `\n${sw.flash.capacity} bytes total (${await sw.flash.free()} bytes free)\n`;
  return io.print(out);
}

async function verify(io: CliIo, sw: EmulatedSwitchState, algorithm: 'md5' | 'sha512', path: { shown: string; name: string }): Promise<void> {
  const missing = () => io.print(`% Error: cannot open ${path.shown} (No such file or directory)\n`);
  if (!path.name || (await sw.flash.size(path.name)) === null) return missing();
  const rate = sw.faults.hashBytesPerSecond;
  const digest = await sw.flash.hash(path.name, algorithm, { signal: io.signal, ...(rate ? { bytesPerSecond: rate } : {}) });
  if (digest === null) return missing();
  return io.print(`verify /${algorithm} (${path.shown}) = ${wrapped(digest, sw.faults.wrapDigests)}\n`);
}

/** What curl (EOS's copy) says about a failed transfer. */
function reason(result: { stage: 'open' | 'read' | 'write'; replyCode: number | null; message: string }): string {
  if (result.stage === 'write') return 'No space left on device';
  if (result.stage === 'read') return 'Transferred a partial file';
  if (result.replyCode === 530) return 'Access denied: 530';
  if (result.replyCode === 550) return 'The file does not exist';
  if (result.replyCode !== null) return `Server returned ${result.replyCode}`;
  return "Couldn't connect to server";
}

async function copy(io: CliIo, sw: EmulatedSwitchState, url: string, dest: { shown: string; name: string }): Promise<void> {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return io.print(INVALID);
  }
  const path = decodeURIComponent(parsed.pathname);
  const name = basename(dest.name || path);
  const shownDest = `flash:/${name}`;
  if (!parsed.hostname || !path || path.endsWith('/')) return io.print(`% Error copying ${maskedUrl(url)} to ${shownDest} (URL malformed)\n`);
  let full = url;
  if (parsed.username && !parsed.password) {
    const password = await io.ask('Password: ', { echo: false });
    if (io.signal.aborted) return;
    full = `ftp://${parsed.username}:${encodeURIComponent(password)}@${parsed.host}${parsed.pathname}`;
  }
  const result = await sw.copy(full, name, io.signal);
  if (io.signal.aborted) return;
  if (!result.ok) return io.print(`% Error copying ${maskedUrl(url)} to ${shownDest} (${reason(result)})\n`);
  return io.print('Copy completed successfully.\n');
}

export const eosPersonality: Personality = {
  name: 'arista-eos',
  catalogPlatform: 'arista-eos',
  defaultVersion: '4.29.5M',
  exec: 'many',
  pager: { marker: ' --More-- ', erase: '\r          \r' },
  initialMode: () => 'user',
  greeting: () => 'Last login: Sat Nov 28 09:41:17 2026 from 127.0.0.1\n',
  prompt: (sw, session) => {
    const vrf = sessionVrf.get(session) ?? 'default';
    return `${sw.name}${vrf === 'default' ? '' : `(vrf:${vrf})`}${session.mode === 'user' ? '>' : '#'}`;
  },
  async run(line, io, sw, session) {
    if (line === '') return;
    if (line === 'exit' || line === 'logout' || line === 'quit') return 'exit';
    const words = line.split(/\s+/);
    const privileged = session.mode !== 'user';
    if (line === 'enable' || line === 'en') {
      if (privileged) return;
      if (sw.faults.userExec) {
        const given = await io.ask('Password: ', { echo: false });
        if (given !== sw.password) return io.print('% Access denied\n');
      }
      session.mode = 'exec';
      return;
    }
    if (line === 'disable') {
      session.mode = 'user';
      return;
    }
    if (words[0] === 'terminal') {
      if ((words[1] === 'length' || words[1] === 'width') && /^\d+$/.test(words[2] ?? '') && words.length === 3) {
        if (words[1] === 'length') session.terminalLength = Number(words[2]);
        return;
      }
      return io.print(words.length < 3 ? INCOMPLETE : INVALID);
    }
    let m = line.match(/^(?:cli vrf|routing-context vrf) (\S+)$/);
    if (m) {
      if (!VRFS.has(m[1]!)) return io.print(`% VRF ${m[1]} does not exist\n`);
      sessionVrf.set(session, m[1]!);
      return;
    }
    if (/^sh(ow?)? ver(s|si|sio|sion)?$/.test(line)) return io.print(showVersion(sw));
    if (/^(dir|copy|verify)\b/.test(line) && !privileged) return io.print(PRIVILEGED);
    m = line.match(/^dir(?: (\S+))?$/);
    if (m) {
      if (m[1] !== undefined && !/^flash:\/?$/.test(m[1])) return io.print(INVALID);
      return dir(io, sw);
    }
    m = line.match(/^verify \/(\S+) (\S+)$/);
    if (m) {
      const path = flashPath(m[2]!);
      if (!path || (m[1] !== 'md5' && m[1] !== 'sha512') || (m[1] === 'sha512' && sw.faults.noSha512)) return io.print(INVALID);
      return verify(io, sw, m[1], path);
    }
    m = line.match(/^copy (\S+) (\S+)$/);
    if (m) {
      const dest = flashPath(m[2]!);
      if (!m[1]!.startsWith('ftp://') || !dest) return io.print(INVALID);
      return copy(io, sw, m[1]!, dest);
    }
    if (/^(copy|verify)( \S+)?$/.test(line)) return io.print(INCOMPLETE);
    return io.print(INVALID);
  },
};
