/**
 * Juniper Junos on an EX switch (Virtual Chassis member 0), as SWITCH-CLI-REFERENCE.md §2.5
 * describes it: the prompt `user@sw> ` after a `{master:0}` line, `show version` with `Hostname:`,
 * `Model:` and `Junos:` (or, on 12.x/13.x, only the `JUNOS EX  Software Suite [X]` package line),
 * `show system storage` with human-readable sizes and a `/.mount/var` row that is the flash,
 * `file copy ftp://user:pass@host[:port]/PATH /var/tmp/NAME` (`%2F` makes the path absolute; the
 * password `prompt` asks `Password for user@host:`), `file checksum md5|sha1|sha-256 /var/tmp/NAME`
 * → `SHA256 (/var/tmp/NAME) = <hex>` and its two missing-file forms (24.x and later: the odd
 * `sha256: (sha256: … No such file or directory) = directory`), errors as `error: …` lines,
 * `---(more NN%)---` paging until `set cli screen-length 0` (or for one command, `| no-more`), and any
 * number of exec requests.
 * A `root` login lands in the FreeBSD shell (`root@sw:~ % `), where `cli` starts the CLI.
 *
 * Unconfirmed details, chosen here: the output of a successful `file copy` is one fetch-style line
 * printed when the transfer ends (`/var/tmp//...transferring.file........100% of  640 kB  …`) and
 * nothing while it runs; a failed one prints `fetch: <url with the password masked>: <reason>`
 * and `error: file-fetch failed`; an existing file is overwritten without a question; only
 * /var/tmp is writable (it is the flash); `file checksum` prints nothing until the digest;
 * `unknown command.` for an unknown first word, `syntax error, expecting <command>.` after it; the
 * pager's erase (CR, spaces, CR).
 */
import { basename } from 'node:path';
import type { CliIo } from '../terminal.js';
import { wrapped, type CliSessionState, type EmulatedSwitchState, type Personality } from '../personality.js';

const MODEL = 'ex4300-48t';
const TMP = '/var/tmp';

/** Sessions that came from the root shell (`exit` in the CLI goes back to it). */
const fromShell = new WeakSet<CliSessionState>();

/** Before 14.1 EX has no `Junos:` line (ntc-templates `*_ex.raw`): the version fault `12.`/`13.` picks that form. */
function legacyVersion(version: string): boolean {
  return /^1[23]\./.test(version);
}

/** 24.x and later print the odd missing-file form of `file checksum` (§2.5). */
function newChecksumErrors(version: string): boolean {
  const major = Number(version.split('.')[0]);
  return Number.isFinite(major) && major >= 24;
}

function cliPrompt(sw: EmulatedSwitchState): string {
  return `${sw.username}@${sw.name}> `;
}

/** Where the `word`-th word (0-based) of the line starts; the last word's start past the end. */
function wordColumn(line: string, word: number): number {
  const starts = [...line.matchAll(/\S+/g)].map((m) => m.index!);
  return starts[Math.min(word, starts.length - 1)] ?? 0;
}

/** A caret under the word Junos did not take, then its complaint. */
function complain(sw: EmulatedSwitchState, line: string, word: number): string {
  const caret = `${' '.repeat(cliPrompt(sw).length + wordColumn(line, word))}^\n`;
  return word === 0 ? `${caret}unknown command.\n` : `${caret}syntax error, expecting <command>.\n`;
}

const HR = '--------------------------------------------------------------------------';

function showVersion(sw: EmulatedSwitchState): string {
  const v = sw.version;
  if (legacyVersion(v)) {
    return `fpc0:
${HR}
Hostname: ${sw.name}
Model: ${MODEL}
JUNOS Base OS boot [${v}]
JUNOS Base OS Software Suite [${v}]
JUNOS Kernel Software Suite [${v}]
JUNOS Crypto Software Suite [${v}]
JUNOS Online Documentation [${v}]
JUNOS EX  Software Suite [${v}]
JUNOS EX 4300 Software Suite [${v}]
JUNOS Web Management Platform Package [${v}]
`;
  }
  return `fpc0:
${HR}
Hostname: ${sw.name}
Model: ${MODEL}
Junos: ${v}
JUNOS OS Kernel 32-bit  [20260812.4f2c1a7_builder_stable_12]
JUNOS OS libs [20260812.4f2c1a7_builder_stable_12]
JUNOS OS runtime [20260812.4f2c1a7_builder_stable_12]
JUNOS OS time zone information [20260812.4f2c1a7_builder_stable_12]
JUNOS OS libs compat32 [20260812.4f2c1a7_builder_stable_12]
JUNOS OS 32-bit compatibility [20260812.4f2c1a7_builder_stable_12]
JUNOS py extensions [${v}]
JUNOS py base [${v}]
JUNOS OS vmguest [20260812.4f2c1a7_builder_stable_12]
JUNOS OS crypto [20260812.4f2c1a7_builder_stable_12]
JUNOS network stack and utilities [20260901.113020_builder_junos_234_r2]
JUNOS libs [20260901.113020_builder_junos_234_r2]
JUNOS runtime [20260901.113020_builder_junos_234_r2]
JUNOS Packet Forwarding Engine Support (EX 4300) [${v}]
JUNOS SDN Software Suite [${v}]
JUNOS Routing Software Suite [${v}]
JUNOS daemons [${v}]
JUNOS EX  Software Suite [${v}]
JUNOS Web Management Platform Package [${v}]
`;
}

/** FreeBSD `df -h` sizes: `7.0G`, `528M`, `36K`, `0B`. */
function human(bytes: number): string {
  const units = ['B', 'K', 'M', 'G', 'T'];
  let value = bytes;
  let unit = 0;
  while (value >= 1000 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  if (unit === 0) return `${Math.round(value)}B`;
  return value < 10 ? `${value.toFixed(1)}${units[unit]}` : `${Math.round(value)}${units[unit]}`;
}

async function storage(io: CliIo, sw: EmulatedSwitchState): Promise<void> {
  const free = await sw.flash.free();
  const used = sw.flash.capacity - free;
  const G = 1024 * 1024 * 1024;
  const M = 1024 * 1024;
  const rows: [string, number, number, number, string][] = [
    ['/dev/gpt/junos', 1.3 * G, 716 * M, 512 * M, '/.mount'],
    ['tmpfs', 1.2 * G, 44 * 1024, 1.2 * G, '/.mount/tmp'],
    ['/dev/gpt/var', sw.flash.capacity, used, free, '/.mount/var'],
    ['tmpfs', 1.2 * G, 620 * 1024, 1.2 * G, '/.mount/mfs'],
    ['/dev/gpt/config', 362 * M, 1.1 * M, 332 * M, '/.mount/config'],
    ['procfs', 4 * 1024, 4 * 1024, 0, '/proc'],
  ];
  const width = Math.max(...rows.map((r) => r[0].length)) + 2;
  const line = (fs: string, size: string, usedText: string, avail: string, capacity: string, mount: string) =>
    `${fs.padEnd(width)}${size.padStart(6)}${usedText.padStart(8)}${avail.padStart(8)}${capacity.padStart(9)}  ${mount}\n`;
  let out = `fpc0:\n${HR}\n${line('Filesystem', 'Size', 'Used', 'Avail', 'Capacity', 'Mounted on')}`;
  for (const [fs, size, u, avail, mount] of rows) {
    out += line(fs, human(size), human(u), human(avail), `${Math.round((u * 100) / Math.max(1, u + avail))}%`, mount);
  }
  return io.print(out);
}

/** `/var/tmp/NAME` → NAME; `/var/tmp`, `/var/tmp/` → ''; anything else → null. */
function tmpName(path: string): string | null {
  const m = path.match(/^\/var\/tmp(?:\/+(.*))?$/);
  if (!m) return null;
  return m[1] ?? '';
}

async function checksum(io: CliIo, sw: EmulatedSwitchState, kind: 'md5' | 'sha1' | 'sha-256', path: string): Promise<void> {
  const algorithm = kind === 'sha-256' ? 'sha256' : kind;
  const name = tmpName(path);
  const label = { md5: 'MD5', sha1: 'SHA1', 'sha-256': 'SHA256' }[kind];
  const missing = () =>
    io.print(newChecksumErrors(sw.version) ? `${algorithm}: (${algorithm}: ${path}: No such file or directory) = directory\n` : `error: stat: ${path}: No such file or directory\n`);
  if (!name || (await sw.flash.size(name)) === null) return missing();
  const rate = sw.faults.hashBytesPerSecond;
  const digest = await sw.flash.hash(name, algorithm, { signal: io.signal, ...(rate ? { bytesPerSecond: rate } : {}) });
  if (digest === null) return missing();
  return io.print(`${label} (${path}) = ${wrapped(digest, sw.faults.wrapDigests)}\n`);
}

/** FreeBSD fetch's words for what went wrong. */
function fetchReason(result: { stage: 'open' | 'read' | 'write'; replyCode: number | null; message: string }, dest: string): string {
  if (result.stage === 'write') return `${dest}: No space left on device`;
  if (result.stage === 'read') return 'transfer interrupted';
  if (result.replyCode === 530) return 'Not logged in';
  if (result.replyCode === 550) return 'File unavailable (e.g., file not found, no access)';
  if (result.replyCode !== null) return `${result.replyCode} ${result.message.replace(/^\d{3}\s*/, '')}`;
  return /timed? ?out/i.test(result.message) ? 'Operation timed out' : 'Connection refused';
}

/** `640 kB`, `12 MB`: fetch's sizes. */
function fetchSize(bytes: number): string {
  if (bytes < 10 * 1024 * 1024) return `${String(Math.round(bytes / 1024)).padStart(4)} kB`;
  return `${String(Math.round(bytes / (1024 * 1024))).padStart(4)} MB`;
}

async function fileCopy(io: CliIo, sw: EmulatedSwitchState, source: string, destination: string): Promise<void> {
  let parsed: URL;
  try {
    parsed = new URL(source);
  } catch {
    return io.print(`error: invalid URL: ${source}\n`);
  }
  // `%2F` at the start of the path makes it absolute (Juniper's URL format page).
  let path = parsed.pathname.replace(/^\/%2F/i, '/');
  path = path.replace(/^\/+/, '/');
  const name = tmpName(destination);
  if (name === null) return io.print(`error: ${destination}: Permission denied\nerror: file-fetch failed\n`);
  const target = basename(name || decodeURIComponent(path));
  if (!parsed.hostname || !target || path.endsWith('/')) return io.print(`error: invalid URL: ${source}\n`);
  const user = parsed.username;
  let password = parsed.password;
  if (password === 'prompt') {
    password = encodeURIComponent(await io.ask(`Password for ${decodeURIComponent(user)}@${parsed.hostname}:`, { echo: false }));
    if (io.signal.aborted) return;
  }
  const credentials = user ? `${user}${password ? `:${password}` : ''}@` : '';
  const url = `ftp://${credentials}${parsed.host}${path}`;
  const shownUrl = `ftp://${user ? `${user}${parsed.password ? ':*****' : ''}@` : ''}${parsed.host}${parsed.pathname}`;
  const result = await sw.copy(url, target, io.signal);
  if (io.signal.aborted) return;
  const dest = `${TMP}/${target}`;
  if (!result.ok) return io.print(`fetch: ${shownUrl}: ${fetchReason(result, dest)}\nerror: file-fetch failed\n`);
  const rate = result.bytes / result.seconds;
  const seconds = Math.max(1, Math.round(result.seconds));
  const elapsed = `${String(Math.floor(seconds / 60)).padStart(2, '0')}m${String(seconds % 60).padStart(2, '0')}s`;
  return io.print(`${TMP}//...transferring.file.........100% of ${fetchSize(result.bytes)} ${fetchSize(rate).trim()}ps ${elapsed}\n`);
}

async function fileList(io: CliIo, sw: EmulatedSwitchState, path: string, detail: boolean): Promise<void> {
  const name = tmpName(path);
  if (name === null) return io.print(`${path}: Permission denied\n`);
  const files = (await sw.flash.files()).filter((f) => !name || f.name === name);
  if (name && files.length === 0) return io.print(`${path}: No such file or directory\n`);
  let out = name ? '' : `${TMP}/:\n`;
  for (const f of files) {
    if (!detail) out += `${name ? `${TMP}/` : ''}${f.name}\n`;
    else {
      const d = f.mtime;
      const month = d.toLocaleString('en-US', { month: 'short', timeZone: 'UTC' });
      const hm = `${String(d.getUTCHours()).padStart(2, '0')}:${String(d.getUTCMinutes()).padStart(2, '0')}`;
      out += `-rw-r--r--  1 ${sw.username.padEnd(8)} wheel ${String(f.size).padStart(12)} ${month} ${String(d.getUTCDate()).padStart(2)} ${hm} ${name ? `${TMP}/` : ''}${f.name}\n`;
    }
  }
  if (detail && !name) out += `total files: ${files.length}\n`;
  return io.print(out);
}

/** The FreeBSD shell a root login lands in: `cli` starts the CLI, `cli -c "COMMAND"` runs one CLI command. */
async function shell(line: string, io: CliIo, sw: EmulatedSwitchState, session: CliSessionState): Promise<void | 'exit'> {
  if (line === '') return;
  if (line === 'exit' || line === 'logout') return 'exit';
  if (line === 'cli') {
    fromShell.add(session);
    session.mode = 'cli';
    return;
  }
  const m = line.match(/^cli -c (?:"(.*)"|'(.*)')$/);
  if (m) {
    const result = await cli((m[1] ?? m[2]!).trim(), io, sw, session);
    return result === 'exit' ? undefined : result;
  }
  return io.print(`${line.split(/\s+/)[0]}: Command not found.\n`);
}

async function cli(line: string, io: CliIo, sw: EmulatedSwitchState, session: CliSessionState): Promise<void | 'exit'> {
  if (line === '') return;
  // `| no-more`: this command's output is not paged.
  const noMore = line.match(/^(.*?)\s*\|\s*no-more$/);
  if (noMore) {
    const rows = session.terminalLength;
    session.terminalLength = 0;
    try {
      return await cli(noMore[1]!, io, sw, session);
    } finally {
      session.terminalLength = rows;
    }
  }
  const words = line.split(/\s+/);
  if (line === 'exit' || line === 'quit') {
    if (fromShell.has(session)) {
      session.mode = 'shell';
      return;
    }
    return 'exit';
  }
  if (words[0] === 'set') {
    if (words[1] !== 'cli') return io.print(complain(sw, line, 1));
    if ((words[2] === 'screen-length' || words[2] === 'screen-width') && /^\d+$/.test(words[3] ?? '') && words.length === 4) {
      const n = Number(words[3]);
      if (words[2] === 'screen-length') {
        session.terminalLength = n;
        return io.print(`Screen length set to ${n}\n`);
      }
      return io.print(`Screen width set to ${n}\n`);
    }
    return io.print(complain(sw, line, 2));
  }
  if (words[0] === 'show') {
    if (words[1] === 'version' && words.length === 2) return io.print(showVersion(sw));
    if (words[1] === 'system' && words[2] === 'storage' && words.length === 3) return storage(io, sw);
    return io.print(complain(sw, line, words[1] === 'system' ? 2 : 1));
  }
  if (words[0] === 'file') {
    if (words[1] === 'copy') {
      if (words.length !== 4) return io.print(complain(sw, line, words.length));
      if (!/^ftp:\/\//i.test(words[2]!)) return io.print(`error: ${words[2]}: No such file or directory\n`);
      return fileCopy(io, sw, words[2]!, words[3]!);
    }
    if (words[1] === 'checksum') {
      const kind = words[2];
      if ((kind !== 'md5' && kind !== 'sha1' && kind !== 'sha-256') || words.length !== 4) return io.print(complain(sw, line, kind === 'md5' || kind === 'sha1' || kind === 'sha-256' ? 3 : 2));
      return checksum(io, sw, kind, words[3]!);
    }
    if (words[1] === 'list') {
      const detail = words[2] === 'detail';
      const path = words[detail ? 3 : 2] ?? `${TMP}/`;
      return fileList(io, sw, path, detail);
    }
    return io.print(complain(sw, line, 1));
  }
  return io.print(complain(sw, line, 0));
}

export const junosPersonality: Personality = {
  name: 'juniper-junos',
  catalogPlatform: 'juniper-junos',
  defaultVersion: '21.4R3-S5.4',
  exec: 'many',
  pager: { marker: (shown) => `---(more ${Math.min(99, Math.floor(shown * 100))}%)---`, erase: `\r${' '.repeat(20)}\r` },
  initialMode: (sw) => (sw.username === 'root' ? 'shell' : 'cli'),
  greeting: (sw) => `Last login: Sat Nov 28 09:41:17 2026 from 127.0.0.1\n${sw.username === 'root' ? '' : '\n'}--- JUNOS ${sw.version} Kernel 32-bit  JNPR-12.1-20260812.4f2c1a7_buil\n`,
  prompt: (sw, session) => (session.mode === 'shell' ? `root@${sw.name}:~ % ` : `\r\n{master:0}\r\n${cliPrompt(sw)}`),
  run: (line, io, sw, session) => (session.mode === 'shell' ? shell(line, io, sw, session) : cli(line, io, sw, session)),
};
