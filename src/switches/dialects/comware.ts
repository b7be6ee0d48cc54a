import { SwitchOutputError, ftpCredentialsAuthority, redactSecrets, type PullOutcome, type SwitchHashAlgorithm } from '../driver.js';
import { HASH_UNSUPPORTED, capture, joinedDigest, lastLine, type Dialect } from '../dialect.js';
import { COMWARE_PROMPT } from '../cliSession.js';

/**
 * HPE/H3C Comware 5 and 7 (SWITCH-CLI-REFERENCE.md §1.2): `display version`, `dir`,
 * `copy ftp://user:pass@host/path flash:/NAME [vpn-instance VRF]` (answers its `[Y/N]`
 * questions with Y), and `sha256sum` / `md5sum`, which print `SHA256 digest:` and the hex on the
 * next line. Comware has no SHA-512 command.
 */
export function parseComwareVersion(output: string): { model: string; version: string } {
  const release = capture(output, /Comware Software, Version\s+[^,\r\n]+,\s+Release\s+(\S+)/);
  const version = release ?? capture(output, /Comware Software, Version\s+([^,\s]+)/);
  const line = capture(output, /^\s*(?:H3C|HPE|HP)\s+(.+?)\s+uptime is/m);
  if (!version) throw new SwitchOutputError('display version: no "Comware Software, Version" line');
  if (!line) throw new SwitchOutputError('display version: no "<model> uptime is" line');
  // Comware 5: "HP A5800-24G-SFP Switch with 1 Interface Slot uptime is …": kept as printed.
  return { model: line.replace(/\s+/g, ' '), version };
}

/**
 * `… KB total (… KB free)`. H3C's own Ansible collection counts a KB as 1000 bytes; so does swfw:
 * of the two readings it is the smaller, so the check never promises space that is not there.
 */
export function parseComwareDirFree(output: string): number {
  const free = capture(output, /[\d,]+\s+KB total\s+\(([\d,]+)\s+KB free/);
  if (free === null) throw new SwitchOutputError('dir: no "KB total (… KB free)" line');
  return Number(free.replace(/,/g, '')) * 1000;
}

/**
 * `Copying file … Done.` (Comware 5: `%Copy file … Done.`); `… Failed.` or an error line fails it.
 * Info-center log lines on the terminal (`%Mar  1 10:00:00:123 2023 sw1 SHELL/5/…`) are no verdict:
 * the CLI session removes them.
 */
export function parseComwareCopy(output: string): PullOutcome {
  const failed = output.match(/^.*\b(?:Failed|Error|failed)\b.*$/m) ?? output.match(/^\s*%\s*(?:Unrecognized|Wrong|Incomplete|Too many).*$/m);
  if (/\bDone\.?\s*$/m.test(output) && !failed) return { ok: true, message: redactSecrets(lastLine(output, /Done/)), bytes: null };
  return { ok: false, message: redactSecrets(failed?.[0].trim() ?? (lastLine(output) || 'copy did not report Done')), bytes: null };
}

export function parseComwareHash(output: string, algorithm: SwitchHashAlgorithm, _fileName: string): string | null | typeof HASH_UNSUPPORTED {
  if (/%\s*(Unrecognized command|Wrong parameter|Incomplete command|Too many parameters)/i.test(output)) return HASH_UNSUPPORTED;
  if (/does(?:n't| not) exist|No such file|not found/i.test(output)) return null;
  const label = algorithm === 'md5' ? 'MD5' : algorithm.toUpperCase();
  const digest = joinedDigest(output, new RegExp(`${label}\\s+digest:\\s*`, 'i'), algorithm, `${algorithm}sum`);
  if (digest === null) throw new SwitchOutputError(`${algorithm}sum: no "${label} digest:" line`);
  return digest;
}

export const comware: Dialect = {
  name: 'comware',
  protocols: ['ftp', 'tftp'],
  prompt: COMWARE_PROMPT,
  setupCommands: ['screen-length disable'],
  inventoryCommands: ['display version', 'dir'],
  parseInventory: (outputs) => ({ ...parseComwareVersion(outputs[0] ?? ''), freeBytes: parseComwareDirFree(outputs[1] ?? '') }),
  defaultVrf: null,
  pullCommand(url, fileName, vrf) {
    const authority = ftpCredentialsAuthority(url);
    return {
      command: `copy ftp://${authority}${url.path} flash:/${fileName}${vrf ? ` vpn-instance ${vrf}` : ''}`,
      questions: [
        { match: /overwrite[^\r\n]*\[Y\/N\]:?\s*$/i, answer: 'Y', note: 'replaced the file of the same name' },
        { match: /^Copy [^\r\n]* to [^\r\n]*\?\s*\[Y\/N\]:?\s*$/i, answer: 'Y' },
      ],
    };
  },
  parsePullOutput: parseComwareCopy,
  hashAlgorithms: ['sha256', 'md5'],
  hashCommand: (fileName, algorithm) => `${algorithm}sum flash:/${fileName}`,
  parseHash: parseComwareHash,
  hashBytesPerSecond: 2_000_000,
  // 5130-class .ipe bundles are unpacked into .bin files beside themselves at install (§1.2).
  spaceNeeded: (size, fileName) => (/\.ipe$/i.test(fileName) ? size * 2 : size),
};
