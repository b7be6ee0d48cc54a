/**
 * Cisco NX-OS (Nexus 9000), as SWITCH-CLI-REFERENCE.md §2.3 describes it: `show version` with its
 * `NXOS: version …` line (`system:    version …` before 9.x) and the `cisco Nexus9000 … Chassis`
 * line, `dir bootflash:` ending with the `Usage for bootflash://sup-local` block,
 * `copy ftp://[user[:pass]@]host[:port]/path bootflash:[name] [vrf NAME]` with its questions
 * (`Enter vrf …`, the overwrite question, `Enter username:`, `Password:`) and the transfer.py
 * success and failure strings, `show file bootflash:NAME md5sum|sha256sum|sha512sum` printing the
 * digest alone (and nothing while it reads), `--More--` paging until `terminal length 0`, and any
 * number of exec requests per connection.
 *
 * Unconfirmed details, chosen here: the pager marker (`--More--` in reverse video, erased with
 * CR + erase-line), the order of the questions (vrf, overwrite, username, password), nothing
 * printed while the file transfers, the missing-file and the flash-full texts.
 */
import { basename } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { CliIo } from '../terminal.js';
import { wrapped, type CliSessionState, type EmulatedSwitchState, type Personality } from '../personality.js';

const VRFS = new Set(['default', 'management']);
const MODEL = 'C93180YC-FX';

/** Where the `word`-th word (0-based) of the line starts; the last word's start past the end. */
function wordColumn(line: string, word: number): number {
  const starts = [...line.matchAll(/\S+/g)].map((m) => m.index!);
  return starts[Math.min(word, starts.length - 1)] ?? 0;
}

/** The NX-OS reply to a line it cannot parse: a caret under the first word it did not know (the prompt counted). */
function invalid(sw: EmulatedSwitchState, session: CliSessionState, line: string, word: number): string {
  return `${' '.repeat(prompt(sw, session).length + wordColumn(line, word))}^\n% Invalid command at '^' marker.\n\n`;
}

function prompt(sw: EmulatedSwitchState, _session: CliSessionState): string {
  return `${sw.name}#`;
}

/** `9.3(7)` and later print `NXOS: version`, 7.x and older `system:    version` (§2.3). */
function isLegacy(version: string): boolean {
  const major = Number(version.split('.')[0]);
  return Number.isFinite(major) && major < 9;
}

/** `10.3(4a)` → `nxos64-cs.10.3.4a.M.bin`, `7.0(3)I7(9)` → `nxos.7.0.3.I7.9.bin`. */
function imageFile(version: string): string {
  const dotted = version.replace(/[()]/g, '.').replace(/\.+/g, '.').replace(/\.$/, '');
  return isLegacy(version) ? `nxos.${dotted}.bin` : `nxos64-cs.${dotted}.M.bin`;
}

async function showVersion(sw: EmulatedSwitchState): Promise<string> {
  const legacy = isLegacy(sw.version);
  const image = imageFile(sw.version);
  const software = legacy
    ? `  BIOS: version 07.69
  system:    version ${sw.version}
  BIOS compile time:  03/14/2020
  system image file is:    bootflash:///${image}
  system compile time:     6/2/2021 9:00:00 [06/02/2021 18:22:10]`
    : `  BIOS: version 05.51
  NXOS: version ${sw.version}
  BIOS compile time:  09/12/2025
  NXOS image file is: bootflash:///${image}
  NXOS compile time:  10/20/2026 11:00:00 [10/20/2026 20:14:37]
  NXOS boot mode: LXC`;
  return `Cisco Nexus Operating System (NX-OS) Software
TAC support: http://www.cisco.com/tac
Copyright (C) 2002-2026, Cisco and/or its affiliates.
All rights reserved.
The copyrights to certain works contained in this software are
owned by other third parties and used and distributed under their own
licenses, such as open source.  This software is provided "as is," and unless
otherwise stated, there is no warranty, express or implied, including but not
limited to warranties of merchantability and fitness for a particular purpose.
Certain components of this software are licensed under
the GNU General Public License (GPL) version 2.0 or
GNU General Public License (GPL) version 3.0  or the GNU
Lesser General Public License (LGPL) Version 2.1 or
Lesser General Public License (LGPL) Version 2.0.
A copy of each such license is available at
http://www.opensource.org/licenses/gpl-2.0.php and
http://opensource.org/licenses/gpl-3.0.html and
http://www.opensource.org/licenses/lgpl-2.1.php and
http://www.gnu.org/licenses/old-licenses/library.txt.

Software
${software}

Hardware
  cisco Nexus9000 ${MODEL} Chassis
  Intel(R) Xeon(R) CPU D-1528 @ 1.90GHz with 32617424 kB of memory.
  Processor Board ID FDO27051K2Q

  Device name: ${sw.name}
  bootflash: ${Math.floor(sw.flash.capacity / 1024)} kB

Kernel uptime is 27 day(s), 6 hour(s), 41 minute(s), 9 second(s)

Last reset at 412118 usecs after Mon Nov  2 07:31:14 2026

  Reason: Reset Requested by CLI command reload
  System version: ${sw.version}
  Service:

plugin
  Core Plugin, Ethernet Plugin

Active Package(s):

`;
}

/** `Nov 30 12:00:00 2026`: the NX-OS `dir` date. */
function nxDate(d: Date): string {
  const month = d.toLocaleString('en-US', { month: 'short', timeZone: 'UTC' });
  const pad = (n: number) => String(n).padStart(2, '0');
  return `${month} ${pad(d.getUTCDate())} ${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())} ${d.getUTCFullYear()}`;
}

/** `bootflash:NAME`, `bootflash:/NAME`, `bootflash:///NAME` → NAME; `bootflash:` → ''; anything else → null. */
function bootflashName(arg: string): string | null {
  const m = arg.match(/^bootflash:(?:\/{0,3})(.*)$/);
  if (!m) return null;
  return m[1]!;
}

async function dir(io: CliIo, sw: EmulatedSwitchState, only: string): Promise<void> {
  const files = await sw.flash.files();
  const shown = only ? files.filter((f) => f.name === only) : files;
  if (only && shown.length === 0) return io.print(`No such file or directory\n`);
  let out = '';
  if (!only) out += `       4096    ${nxDate(new Date('2026-11-02T07:33:40Z'))}  .rpmstore/\n       4096    ${nxDate(new Date('2026-11-02T07:34:02Z'))}  scripts/\n`;
  for (const f of shown) out += `${String(f.size).padStart(11)}    ${nxDate(f.mtime)}  ${f.name}\n`;
  const free = await sw.flash.free();
  out += `\nUsage for bootflash://sup-local\n${String(sw.flash.capacity - free).padStart(11)} bytes used\n${String(free).padStart(11)} bytes free\n${String(sw.flash.capacity).padStart(11)} bytes total\n`;
  return io.print(out);
}

async function showFile(io: CliIo, sw: EmulatedSwitchState, name: string, algorithm: 'md5' | 'sha256' | 'sha512'): Promise<void> {
  const missing = () => io.print(`/bootflash/${name}: No such file or directory\n`);
  if (!name || (await sw.flash.size(name)) === null) return missing();
  // NX-OS prints nothing while it reads the file: the digest comes alone, at the end.
  const rate = sw.faults.hashBytesPerSecond;
  const digest = await sw.flash.hash(name, algorithm, { signal: io.signal, ...(rate ? { bytesPerSecond: rate } : {}) });
  if (digest === null) return missing();
  return io.print(`${wrapped(digest, sw.faults.wrapDigests)}\n`);
}

interface CopyArgs {
  url: string;
  dest: string;
  vrf: string | null;
}

async function copy(io: CliIo, sw: EmulatedSwitchState, args: CopyArgs): Promise<void> {
  let parsed: URL;
  try {
    parsed = new URL(args.url);
  } catch {
    return io.print(`host nor service provided, or not known\n`);
  }
  if (!parsed.hostname) return io.print(`host nor service provided, or not known\n`);
  const path = decodeURIComponent(parsed.pathname);
  if (!path || path === '/' || path.endsWith('/')) return io.print(`copy: cannot access file ${args.url.replace(/\/\/[^@/]*@/, '//')}\n`);
  let vrf = args.vrf;
  if (vrf === null) {
    const answer = (await io.ask(`Enter vrf (If no input, current vrf 'default' is considered): `)).trim();
    if (io.signal.aborted) return;
    vrf = answer || 'default';
  }
  if (!VRFS.has(vrf)) return io.print(`% Invalid vrf name ${vrf}\n`);
  const name = basename(args.dest || path);
  if ((await sw.flash.size(name)) !== null) {
    const answer = (await io.ask(`Warning: There is already a file existing with this name. Do you want to overwrite (y/n)?[n] `)).trim().toLowerCase();
    if (io.signal.aborted) return;
    if (answer !== 'y' && answer !== 'yes') return;
  }
  let user = decodeURIComponent(parsed.username);
  if (!user) {
    user = (await io.ask('Enter username: ')).trim();
    if (io.signal.aborted) return;
  }
  let password = decodeURIComponent(parsed.password);
  if (!password) {
    password = await io.ask('Password: ', { echo: false });
    if (io.signal.aborted) return;
  }
  const url = `ftp://${encodeURIComponent(user)}:${encodeURIComponent(password)}@${parsed.host}${parsed.pathname}`;
  const result = await sw.copy(url, name, io.signal);
  if (io.signal.aborted) return;
  if (!result.ok) {
    if (result.stage === 'write') return io.print(`copy: cannot write to bootflash:${name}: No space left on device\n`);
    if (result.stage === 'read' || result.replyCode === null) return io.print(`Transfer of file aborted, server not connected\n`);
    return io.print(`Transfer of file aborted, file not found or Login failed\n`);
  }
  io.write(`***** Transfer of file Completed Successfully *****\nCopy complete, now saving to disk (please wait)...\n`);
  // Writing bootflash takes a moment after the last byte (§3, "Slow flash writes").
  await sleep(Math.min(2000, 100 + result.bytes / (64 * 1024 * 1024) * 1000), undefined, { signal: io.signal }).catch(() => {});
  if (io.signal.aborted) return;
  return io.print(`Copy complete.\n`);
}

export const nxosPersonality: Personality = {
  name: 'cisco-nxos',
  catalogPlatform: 'cisco-nxos',
  defaultVersion: '9.3(12)',
  exec: 'many',
  pager: { marker: '\x1b[7m--More--\x1b[m', erase: '\r\x1b[K' },
  initialMode: () => 'exec',
  greeting: () => `Cisco Nexus Operating System (NX-OS) Software
TAC support: http://www.cisco.com/tac
Copyright (C) 2002-2026, Cisco and/or its affiliates.
All rights reserved.
`,
  prompt,
  async run(line, io, sw, session) {
    if (line === '') return;
    if (line === 'exit' || line === 'quit') return 'exit';
    const words = line.split(/\s+/);
    if (words[0] === 'terminal') {
      if ((words[1] === 'length' || words[1] === 'width') && /^\d+$/.test(words[2] ?? '') && words.length === 3) {
        if (words[1] === 'length') session.terminalLength = Number(words[2]);
        return;
      }
      return io.print(invalid(sw, session, line, 1));
    }
    if (words[0] === 'show' || words[0] === 'sh') {
      if (words.length === 2 && /^ver(s|si|sio|sion)?$/.test(words[1]!)) return io.print(await showVersion(sw));
      if (words[1] === 'file' && words.length === 4) {
        const name = bootflashName(words[2]!);
        if (name === null) return io.print(invalid(sw, session, line, 2));
        const algorithms: Record<string, 'md5' | 'sha256' | 'sha512'> = { md5sum: 'md5', sha256sum: 'sha256', sha512sum: 'sha512' };
        const algorithm = algorithms[words[3]!];
        if (!algorithm || (algorithm === 'sha512' && sw.faults.noSha512)) return io.print(invalid(sw, session, line, 3));
        return showFile(io, sw, name, algorithm);
      }
      return io.print(invalid(sw, session, line, 1));
    }
    if (words[0] === 'dir') {
      const name = words.length === 1 ? '' : bootflashName(words[1]!);
      if (name === null || words.length > 2) return io.print(invalid(sw, session, line, 1));
      return dir(io, sw, name);
    }
    if (words[0] === 'copy') {
      const m = line.match(/^copy (ftp:\/\/\S+) (\S+)(?: vrf (\S+))?$/);
      if (!m) return io.print(invalid(sw, session, line, words.length > 1 && !words[1]!.startsWith('ftp://') ? 1 : 2));
      const dest = bootflashName(m[2]!);
      if (dest === null) return io.print(`Copy to ${m[2]} is not permitted\n`);
      return copy(io, sw, { url: m[1]!, dest, vrf: m[3] ?? null });
    }
    return io.print(invalid(sw, session, line, 0));
  },
};
