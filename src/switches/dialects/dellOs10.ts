import { SwitchOutputError, redactSecrets, type PullOutcome, type SwitchHashAlgorithm } from '../driver.js';
import { capture, lastLine, type Dialect, type PolledStatus } from '../dialect.js';

/**
 * Dell OS10: `show version`, `image download ftp://…` (runs in the background; the file lands in
 * the image directory under its own name), polled with `show image status`; free space and digests
 * through the `system` shell (`df`, `sha256sum` …) as the sysadmin role allows.
 */
export function parseOs10Version(output: string): { model: string; version: string } {
  const version = capture(output, /OS Version:\s*(\S+)/);
  const model = capture(output, /System Type:\s*(\S+)/);
  if (!version) throw new SwitchOutputError('show version: no "OS Version:" line');
  if (!model) throw new SwitchOutputError('show version: no "System Type:" line');
  return { model, version };
}

export function parseOs10DfFree(output: string): number {
  const line = output.split(/\r?\n/).find((l) => /\s\/image\s*$/.test(l) || /\s\/image$/.test(l.trim()));
  const available = line ? capture(line, /^\S+\s+\d+\s+\d+\s+(\d+)\s+\d+%/) : null;
  if (available === null) throw new SwitchOutputError('df -k /image: no line for /image');
  return Number(available) * 1024;
}

export function parseOs10ImageStatus(output: string): PolledStatus {
  const state = capture(output, /File Transfer State:\s*(.+)/)?.trim() ?? '';
  const detail = capture(output, /State Detail:\s*(.+)/)?.trim() ?? state;
  const bytesText = capture(output, /Transfer Bytes:\s*(\d+)/);
  const bytes = bytesText === null ? null : Number(bytesText);
  if (/^Completed/i.test(state)) return { state: 'done', message: redactSecrets(detail), bytes };
  if (/^Failed/i.test(state)) return { state: 'failed', message: redactSecrets(detail), bytes };
  if (/^(In progress|Pending|Idle)/i.test(state) || state === '') return { state: 'running', message: redactSecrets(detail), bytes };
  throw new SwitchOutputError(`show image status: unknown state "${state}"`);
}

export function parseOs10Download(output: string): PullOutcome {
  if (/%\s*Error/i.test(output)) return { ok: false, message: redactSecrets(lastLine(output, /Error/)), bytes: null };
  return { ok: true, message: redactSecrets(lastLine(output) || 'download started'), bytes: null };
}

export function parseOs10Hash(output: string, algorithm: SwitchHashAlgorithm): string | null {
  if (/No such file/i.test(output)) return null;
  const digest = capture(output, new RegExp(`^([0-9a-fA-F]{${algorithm === 'md5' ? 32 : algorithm === 'sha256' ? 64 : 128}})\\s`, 'm'));
  if (digest === null) throw new SwitchOutputError(`${algorithm}sum: no digest line`);
  return digest.toLowerCase();
}

export const dellOs10: Dialect = {
  name: 'dell-os10',
  hashAlgorithms: ['sha256', 'sha512', 'md5'],
  inventoryCommands: ['show version', 'system "df -k /image"'],
  parseInventory: (outputs) => ({ ...parseOs10Version(outputs[0] ?? ''), freeBytes: parseOs10DfFree(outputs[1] ?? '') }),
  // OS10 names the file after the URL's last segment; the caller's fileName must be that name.
  pullCommand: (ftpUrl) => ({ command: `image download ${ftpUrl}`, prompts: [] }),
  parsePullOutput: parseOs10Download,
  statusCommand: 'show image status',
  parseStatus: parseOs10ImageStatus,
  hashCommand: (fileName, algorithm) => `system "${algorithm}sum /image/${fileName}"`,
  parseHash: parseOs10Hash,
};
