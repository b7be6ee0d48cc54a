import { SwitchOutputError, redactSecrets, type PullOutcome, type SwitchHashAlgorithm, type SwitchInventory } from '../driver.js';
import { capture, lastLine, type Dialect } from '../dialect.js';

/**
 * Cisco IOS and IOS XE: `show version`, `dir flash:`, `copy ftp://… flash:NAME` (answers
 * "Destination filename [NAME]?" and "Do you want to over write? [confirm]" with Enter) and
 * `verify /md5` / `verify /sha512`.
 */
export function parseCiscoShowVersion(output: string): { model: string; version: string } {
  const version =
    capture(output, /Cisco IOS XE Software, Version\s+(\S+)/) ?? capture(output, /Cisco IOS Software.*?, Version\s+([^,\s]+)/);
  const model = capture(output, /Model [Nn]umber\s*:\s*(\S+)/) ?? capture(output, /^cisco\s+(\S+)\s+\(.*\)\s+processor/im);
  if (!version) throw new SwitchOutputError('show version: no "Version" line');
  if (!model) throw new SwitchOutputError('show version: no model ("Model Number" or "cisco … processor")');
  return { model, version };
}

export function parseCiscoDirFree(output: string): number {
  const free = capture(output, /\d+\s+bytes total\s+\((\d+)\s+bytes free\)/);
  if (free === null) throw new SwitchOutputError('dir flash: no "bytes total (… bytes free)" line');
  return Number(free);
}

export function parseCiscoCopy(output: string): PullOutcome {
  const error = output.match(/^%Error.*$/m);
  if (error) return { ok: false, message: redactSecrets(error[0].trim()), bytes: null };
  const copied = capture(output, /(\d+) bytes copied in/) ?? capture(output, /\[OK - (\d+)(?:\/\d+)? bytes\]/);
  if (copied !== null) return { ok: true, message: redactSecrets(lastLine(output, /bytes copied|\[OK/)), bytes: Number(copied) };
  return { ok: false, message: redactSecrets(lastLine(output) || 'copy ended without "[OK"'), bytes: null };
}

/** Cisco prints one `!` per buffer read; the byte count only at the end. */
export function parseCiscoVerify(output: string, algorithm: SwitchHashAlgorithm): string | null {
  if (/%Error.*(No such file|not found)/i.test(output)) return null;
  const digest = capture(output, new RegExp(`verify /${algorithm}\\s*\\([^)]*\\)\\s*=\\s*([0-9a-fA-F]+)`));
  if (digest === null) throw new SwitchOutputError(`verify /${algorithm}: no "= <digest>" line`);
  return digest.toLowerCase();
}

function ciscoDialect(name: string, hashAlgorithms: readonly SwitchHashAlgorithm[]): Dialect {
  return {
    name,
    hashAlgorithms,
    inventoryCommands: ['show version', 'dir flash:'],
    parseInventory(outputs): SwitchInventory {
      return { ...parseCiscoShowVersion(outputs[0] ?? ''), freeBytes: parseCiscoDirFree(outputs[1] ?? '') };
    },
    pullCommand(ftpUrl, fileName) {
      return {
        command: `copy ${ftpUrl} flash:${fileName}`,
        prompts: [
          { match: /Destination filename \[[^\]]*\]\?\s*$/, answer: '' },
          { match: /over\s*write\?\s*\[confirm\]\s*$/i, answer: '' },
        ],
      };
    },
    parsePullOutput: parseCiscoCopy,
    hashCommand(fileName, algorithm) {
      return hashAlgorithms.includes(algorithm) ? `verify /${algorithm} flash:${fileName}` : null;
    },
    parseHash: parseCiscoVerify,
  };
}

export const ciscoIos = ciscoDialect('cisco-ios', ['sha512', 'md5']);
export const ciscoIosXe = ciscoDialect('cisco-ios-xe', ['sha512', 'md5']);
/** The emulator speaks the Cisco dialect and can also compute SHA-256 (`verify /sha256`). */
export const emulated = ciscoDialect('emulated', ['sha256', 'sha512', 'md5']);
