/**
 * HPE/H3C Comware (an HPE 5130 EI), as SWITCH-CLI-REFERENCE.md §1.2 describes it: the user view
 * `<sw>`, `display version` in the Comware 7 form (`HPE Comware Software, Version 7.1.070,
 * Release 3506P10`, `HPE 5130 24G 4SFP+ EI Switch uptime is …`) or, when the version starts with
 * `5.`, the Comware 5 form (`Comware Software, Version 5.20.99, Release …`,
 * `HP A5120-24G EI Switch with 2 Interface Slots uptime is …`), `dir` ending with
 * `… KB total (… KB free)`, `copy ftp://user:pass@host[:port]/path flash:/NAME [vpn-instance V]`
 * with its `[Y/N]:` question (the password echoed in clear) and `Copying file … Done.`,
 * `md5sum` / `sha256sum` printing `MD5 digest:` / `SHA256 digest:` and the hex on the next line
 * (no sha512), `  ---- More ----` paging erased with an ANSI cursor-left, until
 * `screen-length disable`, and any number of exec requests per connection.
 *
 * The version: `sw.version` is the release (`3506P10`, as the catalog names it), or a full
 * `7.1.070, Release 3506P10` / `5.20.99, Release 2221P22`; a bare `5.20.99` gets a made-up release.
 *
 * Unconfirmed details, chosen here: the overwrite question (`The file flash:/NAME exists.
 * Overwrite it? [Y/N]:`) comes after the copy question; the failure lines after `Failed.`; the
 * missing-file text; nothing is printed while a digest is computed; only the vpn-instance `mgmt`
 * is configured; `quit` and `exit` both end the session.
 */
import { basename } from 'node:path';
import type { CliIo } from '../terminal.js';
import { wrapped, type EmulatedSwitchState, type Personality } from '../personality.js';

const VPN_INSTANCES = new Set(['mgmt']);

function prompt(sw: EmulatedSwitchState): string {
  return `<${sw.name}>`;
}

/** Where the `word`-th word (0-based) of the line starts; the last word's start past the end. */
function wordColumn(line: string, word: number): number {
  const starts = [...line.matchAll(/\S+/g)].map((m) => m.index!);
  return starts[Math.min(word, starts.length - 1)] ?? 0;
}

function unrecognized(sw: EmulatedSwitchState, line: string, word: number): string {
  return `${' '.repeat(prompt(sw).length + wordColumn(line, word))}^\n % Unrecognized command found at '^' position.\n`;
}

function incomplete(): string {
  return ' % Incomplete command found at \'^\' position.\n';
}

/** Comware version and release from `sw.version`. */
function versionOf(sw: EmulatedSwitchState): { comware: string; release: string; five: boolean } {
  const v = sw.version.trim();
  const m = v.match(/^(\d+\.\d+\.\d+)(?:\s*,?\s*(?:Release\s+)?(\S+))?$/i);
  if (m) {
    const five = m[1]!.startsWith('5.');
    return { comware: m[1]!, release: m[2] ?? (five ? '2221P22' : '3506P10'), five };
  }
  return { comware: '7.1.070', release: v, five: false };
}

function displayVersion(sw: EmulatedSwitchState): string {
  const { comware, release, five } = versionOf(sw);
  if (five) {
    return `Comware Software, Version ${comware}, Release ${release}
Copyright (c) 2004-2026 Hewlett-Packard Development Company, L.P.
HP A5120-24G EI Switch with 2 Interface Slots uptime is 0 week, 4 days, 7 hours, 22 minutes

HP A5120-24G EI Switch with 2 Interface Slots with 1 Processor
256M    bytes SDRAM
${Math.floor(sw.flash.capacity / 1024)}K    bytes Flash Memory

Hardware Version is Ver.B
CPLD Version is 002
Bootrom Version is 612
[SubSlot 0] 24GE+4SFP Hardware Version is Ver.B
[SubSlot 1] No Module
[SubSlot 2] No Module
`;
  }
  const lower = release.toLowerCase();
  const up = '2 weeks, 3 days, 6 hours, 48 minutes';
  return `HPE Comware Software, Version ${comware}, Release ${release}
Copyright (c) 2010-2026 Hewlett Packard Enterprise Development LP
HPE 5130 24G 4SFP+ EI Switch uptime is ${up}
Last reboot reason : User reboot

Boot image: flash:/5130ei-cmw710-boot-r${lower}.bin
Boot image version: ${comware}, Release ${release}
  Compiled Oct 07 2026 11:00:00
System image: flash:/5130ei-cmw710-system-r${lower}.bin
System image version: ${comware}, Release ${release}
  Compiled Oct 07 2026 11:00:00


Slot 1:
Uptime is ${up.replace(/, /g, ',')}
5130 24G 4SFP+ EI JG932A with 1 Processor
BOARD TYPE:         5130 24G 4SFP+ EI JG932A
DRAM:               1024M bytes
FLASH:              ${Math.floor(sw.flash.capacity / (1024 * 1024))}M bytes
PCB 1 Version:      VER.B
Bootrom Version:    149
CPLD 1 Version:     002
Release Version:    HPE 5130EI-${release}
Patch Version  :    None
Reboot Cause  :     UserReboot
[SubSlot 0] 24GE+4SFP Plus
`;
}

/** `Oct 07 2026 11:00:00`. */
function cwDate(d: Date): string {
  const month = d.toLocaleString('en-US', { month: 'short', timeZone: 'UTC' });
  const pad = (n: number) => String(n).padStart(2, '0');
  return `${month} ${pad(d.getUTCDate())} ${d.getUTCFullYear()} ${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())}`;
}

/** `flash:/NAME`, `flash:NAME`, `NAME` → NAME; `flash:/`, `flash:` → ''; another drive → null. */
function flashName(arg: string): string | null {
  const m = arg.match(/^(?:flash:\/?)?([^:/]*)$/);
  return m ? m[1]! : null;
}

async function dir(io: CliIo, sw: EmulatedSwitchState): Promise<void> {
  const files = await sw.flash.files();
  let out = 'Directory of flash:\n';
  const fixed = [
    { name: 'diagfile', dir: true, size: 0, mtime: new Date('2026-09-12T10:04:31Z') },
    { name: 'license', dir: true, size: 0, mtime: new Date('2026-09-12T10:04:31Z') },
    { name: 'logfile', dir: true, size: 0, mtime: new Date('2026-09-12T10:04:33Z') },
    { name: 'startup.cfg', dir: false, size: 7813, mtime: new Date('2026-11-20T15:27:02Z') },
    { name: 'startup.mdb', dir: false, size: 136194, mtime: new Date('2026-11-20T15:27:02Z') },
  ];
  const entries = [...fixed, ...files.map((f) => ({ ...f, dir: false }))].sort((a, b) => a.name.localeCompare(b.name));
  entries.forEach((e, i) => {
    out += `${String(i).padStart(4)} ${e.dir ? 'drw-' : '-rw-'} ${(e.dir ? '-' : String(e.size)).padStart(9)} ${cwDate(e.mtime)}   ${e.name}\n`;
  });
  out += `\n${Math.floor(sw.flash.capacity / 1024)} KB total (${Math.floor((await sw.flash.free()) / 1024)} KB free)\n`;
  return io.print(out);
}

async function digest(io: CliIo, sw: EmulatedSwitchState, algorithm: 'md5' | 'sha256', name: string): Promise<void> {
  const missing = () => io.print(`The file or directory doesn't exist.\n`);
  if (!name || (await sw.flash.size(name)) === null) return missing();
  const rate = sw.faults.hashBytesPerSecond;
  const hex = await sw.flash.hash(name, algorithm, { signal: io.signal, ...(rate ? { bytesPerSecond: rate } : {}) });
  if (hex === null) return missing();
  return io.print(`${algorithm === 'md5' ? 'MD5' : 'SHA256'} digest:\n${wrapped(hex, sw.faults.wrapDigests)}\n`);
}

function failure(result: { stage: 'open' | 'read' | 'write'; replyCode: number | null; message: string }): string {
  const reply = result.replyCode !== null && !result.message.startsWith(String(result.replyCode)) ? `${result.replyCode} ${result.message}` : result.message;
  if (result.stage === 'write') return 'The storage space is insufficient.';
  if (result.stage === 'read') return 'The connection to the FTP server was interrupted.';
  if (result.replyCode === 530) return `Failed to log in to the FTP server: ${reply}`;
  if (result.replyCode !== null) return `Failed to get the file from the FTP server: ${reply}`;
  return 'Failed to connect to the FTP server.';
}

async function copy(io: CliIo, sw: EmulatedSwitchState, url: string, destArg: string, vpn: string | null): Promise<void> {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return io.print(`Invalid URL.\n`);
  }
  if (vpn !== null && !VPN_INSTANCES.has(vpn)) return io.print(`The specified VPN instance doesn't exist.\n`);
  const path = decodeURIComponent(parsed.pathname);
  if (!parsed.hostname || !path || path.endsWith('/')) return io.print(`Invalid URL.\n`);
  const given = flashName(destArg);
  if (given === null) return io.print(`The file or directory doesn't exist.\n`);
  const name = basename(given || path);
  const dest = `flash:/${name}`;
  // Comware echoes the URL as typed, password in clear (§1.2).
  const yes = (await io.ask(`Copy ${url} to ${dest}? [Y/N]:`)).trim().toLowerCase();
  if (io.signal.aborted || (yes !== 'y' && yes !== 'yes')) return;
  if ((await sw.flash.size(name)) !== null) {
    const over = (await io.ask(`The file ${dest} exists. Overwrite it? [Y/N]:`)).trim().toLowerCase();
    if (io.signal.aborted || (over !== 'y' && over !== 'yes')) return;
  }
  io.write(`Copying file ${url} to ${dest}...`);
  const result = await sw.copy(url, name, io.signal);
  if (io.signal.aborted) return;
  if (!result.ok) return io.print(` Failed.\n${failure(result)}\n`);
  return io.print(' Done.\n');
}

export const comwarePersonality: Personality = {
  name: 'comware',
  catalogPlatform: 'comware',
  defaultVersion: '3506P06',
  exec: 'many',
  pager: { marker: '  ---- More ----', erase: `\x1b[16D${' '.repeat(16)}\x1b[16D` },
  initialMode: () => 'user',
  greeting: () => `
******************************************************************************
* Copyright (c) 2010-2026 Hewlett Packard Enterprise Development LP          *
* Without the owner's prior written consent,                                 *
* no decompiling or reverse-engineering shall be allowed.                    *
******************************************************************************

`,
  prompt: (sw) => prompt(sw),
  async run(line, io, sw, session) {
    if (line === '') return;
    if (line === 'quit' || line === 'exit') return 'exit';
    const words = line.split(/\s+/);
    if (words[0] === 'screen-length') {
      if (words[1] === 'disable' && words.length === 2) {
        session.terminalLength = 0;
        return;
      }
      if (words.length === 1) return io.print(incomplete());
      return io.print(unrecognized(sw, line, 1));
    }
    if (/^dis(p|pl|pla|play)?$/.test(words[0]!)) {
      if (words.length === 1) return io.print(incomplete());
      if (/^ver(s|si|sio|sion)?$/.test(words[1]!) && words.length === 2) return io.print(displayVersion(sw));
      return io.print(unrecognized(sw, line, 1));
    }
    if (words[0] === 'dir') {
      if (words.length === 1 || (words.length === 2 && /^flash:\/?$/.test(words[1]!))) return dir(io, sw);
      return io.print(unrecognized(sw, line, 1));
    }
    if (words[0] === 'md5sum' || words[0] === 'sha256sum') {
      if (words.length !== 2) return io.print(words.length === 1 ? incomplete() : unrecognized(sw, line, 2));
      const name = flashName(words[1]!);
      if (name === null) return io.print(`The file or directory doesn't exist.\n`);
      return digest(io, sw, words[0] === 'md5sum' ? 'md5' : 'sha256', name);
    }
    if (words[0] === 'copy') {
      const m = line.match(/^copy (\S+) (\S+)(?: vpn-instance (\S+))?$/);
      if (!m) return io.print(words.length < 3 ? incomplete() : unrecognized(sw, line, 3));
      if (!/^ftp:\/\//i.test(m[1]!)) return io.print(`The file or directory doesn't exist.\n`);
      return copy(io, sw, m[1]!, m[2]!, m[3] ?? null);
    }
    return io.print(unrecognized(sw, line, 0));
  },
};
