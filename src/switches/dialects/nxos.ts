import { SwitchOutputError, ftpAuthority, redactSecrets, type PullOutcome, type SwitchHashAlgorithm } from '../driver.js';
import { HASH_UNSUPPORTED, capture, checkedDigest, firstLine, lastLine, type Dialect } from '../dialect.js';
import { CISCO_STYLE_PROMPT } from '../cliSession.js';

/**
 * Cisco NX-OS (Nexus 3k/5k/9k; SWITCH-CLI-REFERENCE.md §2.3): `show version`, `dir bootflash:`,
 * `copy ftp://user@host/path bootflash:NAME vrf management` (the password is typed at its
 * `Password:` prompt, as pyntc and Cisco's own transfer.py do: whether NX-OS takes `user:pass@`
 * in an FTP URL is unconfirmed), and `show file bootflash:NAME sha256sum` (or md5sum), which
 * prints the digest alone.
 */
export function parseNxosShowVersion(output: string): { model: string; version: string } {
  const version = capture(output, /NXOS:\s*version\s+(\S+)/i) ?? capture(output, /system:\s*version\s+(\S+)/i) ?? capture(output, /kickstart:\s*version\s+(\S+)/i);
  const model = capture(output, /^\s*cisco\s+(.+?)\s+[Cc]hassis/m);
  if (!version) throw new SwitchOutputError('show version: no "NXOS: version" or "system: version" line');
  if (!model) throw new SwitchOutputError('show version: no "cisco … Chassis" line');
  return { model: model.replace(/\s+/g, ' '), version };
}

export function parseNxosDirFree(output: string): number {
  const free = capture(output, /(\d+)\s+bytes\s+free/);
  if (free === null) throw new SwitchOutputError('dir bootflash: no "N bytes free" line');
  return Number(free);
}

/** Failure texts from Cisco's on-box transfer.py and pyntc (§2.3 Failure). */
const NXOS_COPY_FAILURE = /aborted|cannot access|not permitted|No route to host|not known|Permission denied|login incorrect|server not connected|Error|No space|Invalid/i;

/**
 * Done only at the final `Copy complete.`: `Copy complete, now saving to disk (please wait)...`
 * comes before the image is written to bootflash, which can still fail (`… failed: device full`).
 */
export function parseNxosCopy(output: string): PullOutcome {
  const complete = /^\s*Copy complete\.\s*$/m.exec(output);
  const failure = firstLine(complete ? output.slice(complete.index + complete[0].length) : output, NXOS_COPY_FAILURE) ?? (complete ? null : firstLine(output, NXOS_COPY_FAILURE));
  if (failure) return { ok: false, message: redactSecrets(failure), bytes: null };
  if (complete) return { ok: true, message: 'Copy complete.', bytes: null };
  return { ok: false, message: redactSecrets(lastLine(output) || 'copy ended without "Copy complete."'), bytes: null };
}

/** `show file … sha256sum` prints the digest alone (and nothing else but blank lines). */
export function parseNxosFileHash(output: string, algorithm: SwitchHashAlgorithm, _fileName: string): string | null | typeof HASH_UNSUPPORTED {
  if (/%\s*Invalid (command|input)|Syntax error|%\s*Incomplete command|Invalid command/i.test(output)) return HASH_UNSUPPORTED;
  if (/No such file|not found|Invalid path|cannot access|does not exist/i.test(output)) return null;
  const hex = capture(output, /^\s*([0-9a-fA-F]{16,})\s*$/m);
  if (hex === null) throw new SwitchOutputError(`show file … ${algorithm}sum: no digest line`);
  return checkedDigest(hex, algorithm, `show file … ${algorithm}sum`);
}

export const ciscoNxos: Dialect = {
  name: 'cisco-nxos',
  protocols: ['ftp', 'tftp', 'scp', 'sftp', 'http', 'https'],
  prompt: CISCO_STYLE_PROMPT,
  setupCommands: ['terminal length 0', 'terminal width 511'],
  inventoryCommands: ['show version', 'dir bootflash:'],
  parseInventory: (outputs) => ({ ...parseNxosShowVersion(outputs[0] ?? ''), freeBytes: parseNxosDirFree(outputs[1] ?? '') }),
  defaultVrf: 'management',
  pullCommand(url, fileName, vrf) {
    const command = `copy ftp://${encodeURIComponent(url.user)}@${ftpAuthority(url)}${url.path} bootflash:${fileName}${vrf ? ` vrf ${vrf}` : ''}`;
    return {
      command,
      questions: [
        { match: /Enter vrf[^:\r\n]*:\s*$/i, answer: vrf ?? 'default' },
        { match: /Enter username:\s*$/i, answer: url.user },
        { match: /password:\s*$/i, answer: url.password, secret: true },
        { match: /overwrite[^\r\n]*\?\s*(\[[yn]\])?\s*$/i, answer: 'y', note: 'replaced the file of the same name' },
        { match: /continue connecting \(yes\/no\)\?\s*$/i, answer: 'no' },
      ],
    };
  },
  parsePullOutput: parseNxosCopy,
  hashAlgorithms: ['sha256', 'md5'],
  hashCommand: (fileName, algorithm) => `show file bootflash:${fileName} ${algorithm}sum`,
  parseHash: parseNxosFileHash,
  hashBytesPerSecond: 4_000_000,
};
