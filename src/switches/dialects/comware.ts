import { SwitchOutputError, redactSecrets, type PullOutcome, type SwitchHashAlgorithm } from '../driver.js';
import { capture, lastLine, type Dialect } from '../dialect.js';

/**
 * HPE/H3C Comware 7: `display version`, `dir` (KB), `copy ftp://… flash:/NAME` (answers the
 * `[Y/N]` prompts with Y), and `md5sum` / `sha256sum` (Comware has no SHA-512 command).
 */
export function parseComwareVersion(output: string): { model: string; version: string } {
  const release = capture(output, /Comware Software, Version\s+[^,]+,\s+Release\s+(\S+)/);
  const version = release ?? capture(output, /Comware Software, Version\s+([^,\s]+)/);
  const model = capture(output, /^(?:H3C|HPE|HP)\s+(.+?)\s+uptime is/m);
  if (!version) throw new SwitchOutputError('display version: no "Comware Software, Version" line');
  if (!model) throw new SwitchOutputError('display version: no "<model> uptime is" line');
  return { model: model.replace(/\s+/g, '-'), version };
}

export function parseComwareDirFree(output: string): number {
  const free = capture(output, /\d+\s+KB total\s+\((\d+)\s+KB free\)/);
  if (free === null) throw new SwitchOutputError('dir: no "KB total (… KB free)" line');
  return Number(free) * 1024;
}

export function parseComwareCopy(output: string): PullOutcome {
  if (/\bDone\.?\s*$/m.test(output) && !/Failed/i.test(output)) return { ok: true, message: redactSecrets(lastLine(output, /Done/)), bytes: null };
  return { ok: false, message: redactSecrets(lastLine(output, /Fail|Error|%/) || 'copy did not report Done'), bytes: null };
}

export function parseComwareHash(output: string, algorithm: SwitchHashAlgorithm): string | null {
  if (/does not exist|No such file/i.test(output)) return null;
  const label = algorithm === 'md5' ? 'MD5' : algorithm.toUpperCase();
  const digest = capture(output, new RegExp(`${label} digest:\\s*([0-9a-fA-F]+)`));
  if (digest === null) throw new SwitchOutputError(`${algorithm}sum: no "${label} digest:" line`);
  return digest.toLowerCase();
}

export const comware: Dialect = {
  name: 'comware',
  hashAlgorithms: ['sha256', 'md5'],
  inventoryCommands: ['display version', 'dir'],
  parseInventory: (outputs) => ({ ...parseComwareVersion(outputs[0] ?? ''), freeBytes: parseComwareDirFree(outputs[1] ?? '') }),
  pullCommand: (ftpUrl, fileName) => ({
    command: `copy ${ftpUrl} flash:/${fileName}`,
    prompts: [{ match: /\[Y\/N\]:?\s*$/, answer: 'Y' }],
  }),
  parsePullOutput: parseComwareCopy,
  hashCommand: (fileName, algorithm) => (algorithm === 'sha512' ? null : `${algorithm}sum flash:/${fileName}`),
  parseHash: parseComwareHash,
};
