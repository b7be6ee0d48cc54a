/**
 * Cisco IOS and IOS XE, as SWITCH-CLI-REFERENCE.md §1.1 describes them: `show version`,
 * `dir flash:`, `copy ftp://… flash:` with its questions (`Address or name of remote host`,
 * `Source filename`, `Destination filename`, the class-B flash erase and the overwrite, each
 * `[confirm]` read as one keystroke where Enter means yes), `!` per buffer read, `verify /md5`
 * everywhere and `/sha512` on IOS XE only (classic IOS answers `% Invalid input`), dots while the
 * flash is read, user EXEC (`>`) and `enable`, ` --More-- ` paging until `terminal length 0`, and
 * one exec request per SSH connection.
 */
import { basename } from 'node:path';
import type { CliIo } from '../terminal.js';
import { dirDate, maskedUrl, wrapped, type EmulatedSwitchState, type Personality } from '../personality.js';

/** One `!` per this many bytes read (IOS prints one per buffer). */
const BANG_BYTES = 64 * 1024;
/** Bangs due are written at most this often, several at a time (a 200-switch fleet's CPU). */
const BANG_WRITE_MS = 100;

const INVALID = (line: string) => `${' '.repeat(Math.min(line.length, 20))}^\n% Invalid input detected at '^' marker.\n\n`;

interface CiscoFlavor {
  name: 'cisco-ios' | 'cisco-ios-xe';
  defaultVersion: string;
  model: string;
  hasSha512: boolean;
  showVersion(sw: EmulatedSwitchState): string;
}

const xe: CiscoFlavor = {
  name: 'cisco-ios-xe',
  defaultVersion: '17.06.05',
  model: 'C9300-48P',
  hasSha512: true,
  showVersion: (sw) => `Cisco IOS XE Software, Version ${sw.version}
Cisco IOS Software [Bengaluru], Catalyst L3 Switch Software (CAT9K_IOSXE), Version ${sw.version.replace(/^0?(\d+)\.0?(\d+)\.0?/, '$1.$2.')}, RELEASE SOFTWARE (fc2)
Technical Support: http://www.cisco.com/techsupport
Copyright (c) 1986-2026 by Cisco Systems, Inc.
Compiled Thu 19-Nov-26 02:15 by mcpre


Cisco IOS-XE software, Copyright (c) 2005-2026 by cisco Systems, Inc.
All rights reserved.  Certain components of Cisco IOS-XE software are
licensed under the GNU General Public License ("GPL") Version 2.0.


ROM: IOS-XE ROMMON
BOOTLDR: System Bootstrap, Version 17.6.1r[FC2], RELEASE SOFTWARE (P)

${sw.name} uptime is 3 weeks, 2 days, 4 hours, 11 minutes
Uptime for this control processor is 3 weeks, 2 days, 4 hours, 13 minutes
System returned to ROM by Reload Command
System image file is "flash:packages.conf"
Last reload reason: Reload Command

This product contains cryptographic features and is subject to United
States and local country laws governing import, export, transfer and
use.

cisco C9300-48P (X86) processor with 1419044K/6147K bytes of memory.
Processor board ID FOC2418X1AB
2048K bytes of non-volatile configuration memory.
8388608K bytes of physical memory.
1638400K bytes of Crash Files at crashinfo:.
11264000K bytes of Flash at flash:.

Base Ethernet MAC Address          : 00:1b:0c:aa:01:00
Motherboard Assembly Number        : 73-17956-06
Model Revision Number              : A0
Model Number                       : C9300-48P
System Serial Number               : FOC2418X1AB

Switch Ports Model              SW Version        SW Image              Mode
------ ----- -----              ----------        ----------            ----
*    1 62    C9300-48P          ${sw.version.padEnd(17)} CAT9K_IOSXE           INSTALL


Configuration register is 0x102
`,
};

const classic: CiscoFlavor = {
  name: 'cisco-ios',
  defaultVersion: '15.2(7)E7',
  model: 'WS-C2960X-48FPD-L',
  hasSha512: false,
  showVersion: (sw) => `Cisco IOS Software, C2960X Software (C2960X-UNIVERSALK9-M), Version ${sw.version}, RELEASE SOFTWARE (fc1)
Technical Support: http://www.cisco.com/techsupport
Copyright (c) 1986-2026 by Cisco Systems, Inc.
Compiled Wed 14-Oct-26 08:25 by prod_rel_team

ROM: Bootstrap program is C2960X boot loader
BOOTLDR: C2960X Boot Loader (C2960X-HBOOT-M) Version 15.2(7r)E, RELEASE SOFTWARE (fc1)

${sw.name} uptime is 41 weeks, 6 days, 22 hours, 9 minutes
System returned to ROM by power-on
System image file is "flash:c2960x-universalk9-mz.152-7.E7.bin"
Last reload reason: power-on

cisco WS-C2960X-48FPD-L (APM86XXX) processor (revision B0) with 524288K bytes of memory.
Processor board ID FOC1932S0ZZ
Last reset from power-on
1 Virtual Ethernet interface
52 Gigabit Ethernet interfaces
The password-recovery mechanism is enabled.

512K bytes of flash-simulated non-volatile configuration memory.
Base ethernet MAC Address       : 70:10:5C:AB:CD:00
Motherboard assembly number     : 73-15513-04
Model revision number           : B0
Model number                    : WS-C2960X-48FPD-L
System serial number            : FOC1932S0ZZ

Switch Ports Model                     SW Version            SW Image
------ ----- -----                     ----------            ----------
*    1 52    WS-C2960X-48FPD-L         ${sw.version.padEnd(21)} C2960X-UNIVERSALK9-M


Configuration register is 0xF
`,
};

function ciscoPersonality(flavor: CiscoFlavor): Personality {
  return {
    name: flavor.name,
    catalogPlatform: flavor.name,
    defaultVersion: flavor.defaultVersion,
    exec: 'one-per-connection',
    pager: { marker: ' --More-- ', erase: '\b'.repeat(10) + ' '.repeat(10) + '\b'.repeat(10) },
    initialMode: (sw) => (sw.faults.userExec ? 'user' : 'exec'),
    greeting: () => '\n',
    prompt: (sw, session) => `${sw.name}${session.mode === 'user' ? '>' : '#'}`,
    async run(line, io, sw, session) {
      if (line === '') return;
      if (line === 'exit' || line === 'logout' || line === 'quit') return 'exit';
      const words = line.split(/\s+/);
      if (line === 'enable' || line === 'en') {
        if (session.mode !== 'user') return;
        const given = await io.ask('Password: ', { echo: false });
        if (given === sw.password) session.mode = 'exec';
        else await io.print('% Access denied\n\n');
        return;
      }
      if (words[0] === 'terminal' && (words[1] === 'length' || words[1] === 'width') && /^\d+$/.test(words[2] ?? '')) {
        if (words[1] === 'length') session.terminalLength = Number(words[2]);
        return;
      }
      if (/^sh(ow)? ver(sion)?$/.test(line)) return io.print(flavor.showVersion(sw));
      // Below: privileged EXEC only (IOS hides these commands in user EXEC).
      if (session.mode === 'user' && /^(dir|copy|verify|delete)\b/.test(line)) return io.print(INVALID(line));
      if (/^dir( flash:\/?)?$/.test(line)) return dir(io, sw);
      let m = line.match(/^verify \/(md5|sha512|sha256) (?:flash:\/?)?(\S+)$/);
      if (m) return verify(io, sw, flavor, m[1]!, m[2]!);
      m = line.match(/^copy (ftp:\/\/\S*) flash:\/?(\S*)$/);
      if (m) return copy(io, sw, m[1]!, m[2]!);
      return io.print(INVALID(line));
    },
  };
}

async function dir(io: CliIo, sw: EmulatedSwitchState): Promise<void> {
  const files = await sw.flash.files();
  let out = 'Directory of flash:/\n\n';
  files.forEach((f, i) => {
    out += `${String(40961 + i).padStart(6)}  -rw-  ${String(f.size).padStart(12)}  ${dirDate(f.mtime)} +00:00  ${f.name}\n`;
  });
  out += `\n${sw.flash.capacity} bytes total (${await sw.flash.free()} bytes free)\n`;
  return io.print(out);
}

async function verify(io: CliIo, sw: EmulatedSwitchState, flavor: CiscoFlavor, algorithm: string, name: string): Promise<void> {
  if (algorithm === 'sha256' || (algorithm === 'sha512' && (!flavor.hasSha512 || sw.faults.noSha512))) {
    return io.print(`verify /${algorithm} flash:${name}\n${INVALID(`verify /${algorithm}`)}`);
  }
  if ((await sw.flash.size(name)) === null) return io.print(`%Error opening flash:${name} (No such file or directory)\n`);
  io.write(`${algorithm === 'md5' ? '.MD5' : '.SHA512'} of flash:${name} `);
  const rate = sw.faults.hashBytesPerSecond;
  const digest = await sw.flash.hash(name, algorithm, { signal: io.signal, ...(rate ? { bytesPerSecond: rate, onProgress: () => io.write('.') } : {}) });
  if (digest === null) return io.print(`%Error opening flash:${name} (No such file or directory)\n`);
  io.write(`${rate ? '' : '........'}Done!\n`);
  return io.print(`verify /${algorithm} (flash:${name}) = ${wrapped(digest, sw.faults.wrapDigests)}\n\n`);
}

async function copy(io: CliIo, sw: EmulatedSwitchState, url: string, given: string): Promise<void> {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return io.print('%Error parsing filename (Bad URL)\n');
  }
  // A URL without host or path: IOS asks for them (§1.1, the csmpe ASR903 capture).
  let host = parsed.host;
  if (!host) host = (await io.ask('Address or name of remote host []? ')).trim();
  let path = parsed.pathname.replace(/^\//, '');
  if (!path) path = (await io.ask('Source filename []? ')).trim();
  const full = `ftp://${parsed.username ? `${parsed.username}:${parsed.password}@` : ''}${host}/${path}`;
  const defaultName = given || basename(path);
  const answer = (await io.ask(`Destination filename [${defaultName}]? `)).trim();
  if (io.signal.aborted) return;
  const name = basename(answer || defaultName);
  if (sw.faults.eraseQuestion) {
    // Class-B flash (C2900/C3640 captures): one keystroke each; Enter means yes.
    const erase = await io.askKey('Erase flash: before copying? [confirm]');
    if (io.signal.aborted) return;
    if (erase === '\n' || erase.toLowerCase() === 'y') {
      const sure = await io.askKey('\nErasing the flash filesystem will remove all files! Continue? [confirm]');
      if (sure === '\n' || sure.toLowerCase() === 'y') {
        await sw.flash.erase();
        io.write('\nErasing device... eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee ...erased\nErase of flash: complete');
      } else {
        return io.print('\n%Erase aborted\n');
      }
    }
    io.write('\n');
  }
  if ((await sw.flash.size(name)) !== null) {
    io.write('%Warning:There is a file already existing with this name\n');
    const key = await io.askKey('Do you want to over write? [confirm]');
    if (io.signal.aborted) return;
    if (!(key === '\n' || key.toLowerCase() === 'y')) return io.print('\n%Copy aborted\n');
    io.write('\n');
  }
  const shown = maskedUrl(full);
  io.write(`Accessing ${shown}...\nLoading ${path} `);
  let bangs = 0;
  let lastWrite = 0;
  const bangsFor = (bytes: number, now: boolean) => {
    const due = Math.floor(bytes / BANG_BYTES);
    if (due <= bangs || (!now && Date.now() - lastWrite < BANG_WRITE_MS)) return;
    io.write('!'.repeat(due - bangs));
    bangs = due;
    lastWrite = Date.now();
  };
  const result = await sw.copy(full, name, io.signal, (bytes) => bangsFor(bytes, false));
  if (!result.ok) {
    const verb = result.stage === 'write' ? 'copying' : result.stage === 'read' ? 'reading' : 'opening';
    const reason = result.replyCode !== null && !result.message.startsWith(String(result.replyCode)) ? `${result.replyCode} ${result.message}` : result.message;
    return io.print(`\n%Error ${verb} ${shown} (${reason})\n`);
  }
  bangsFor(result.bytes, true);
  return io.print(`\n[OK - ${result.bytes}/4096 bytes]\n\n${result.bytes} bytes copied in ${result.seconds.toFixed(3)} secs (${Math.round(result.bytes / result.seconds)} bytes/sec)\n`);
}

export const ciscoIosXePersonality = ciscoPersonality(xe);
export const ciscoIosPersonality = ciscoPersonality(classic);
