import { SwitchOutputError, ftpCredentialsAuthority, redactSecrets, type PullOutcome, type SwitchHashAlgorithm } from '../driver.js';
import { HASH_UNSUPPORTED, capture, lastLine, namedDigest, type Dialect, type PolledStatus } from '../dialect.js';
import { CISCO_STYLE_PROMPT } from '../cliSession.js';

/** Where `image download` puts files: the CLI's `image:` (Dell KB 000181434), not /image. */
export const OS10_IMAGE_DIR = '/var/os10-image';

/**
 * Dell EMC OS10 (SWITCH-CLI-REFERENCE.md §1.3): `show version`, `image download ftp://…` (runs in
 * the background; the file lands in /var/os10-image under the URL's last segment), polled with
 * `show image status`, whose outcome is in `State Detail` (`In progress`, `Completed: No error`,
 * `Failed: …`) while `File Transfer State` only says `download` or `idle`. Free space and digests
 * through the `system` shell (`df`, `sha256sum`), as netmiko's OS10 transfer does; this needs the
 * sysadmin role.
 */
export function parseOs10Version(output: string): { model: string; version: string } {
  const version = capture(output, /OS Version:\s*(\S+)/);
  const model = capture(output, /System Type:\s*(\S+)/);
  if (!version) throw new SwitchOutputError('show version: no "OS Version:" line');
  if (!model) throw new SwitchOutputError('show version: no "System Type:" line');
  return { model, version };
}

/** Available bytes from `df -k` (the data row may be wrapped under a long device name); null if `system` was refused. */
export function parseOs10DfFree(output: string): number | null {
  if (/%\s*Error/i.test(output)) return null;
  const available = capture(output, /\d+\s+\d+\s+(\d+)\s+\d+%\s+\S+\s*$/m);
  if (available === null) throw new SwitchOutputError(`df -k ${OS10_IMAGE_DIR}: no data row`);
  return Number(available) * 1024;
}

/** `show image status`: the outcome is in State Detail (§1.3). */
export function parseOs10ImageStatus(output: string): PolledStatus {
  const transfer = capture(output, /File Transfer State:\s*(.+)/)?.trim() ?? '';
  const detail = capture(output, /State Detail:\s*(.+)/)?.trim() ?? '';
  const bytesText = capture(output, /Transfer Bytes:\s*(\d+)/);
  const bytes = bytesText === null ? null : Number(bytesText);
  const taskEnd = capture(output, /Task End:\s*(\S+)/);
  const marker = taskEnd && !/^0000-00-00/.test(taskEnd) ? taskEnd : null;
  const message = redactSecrets(detail || transfer || 'no status');
  if (/^In progress/i.test(detail)) return { state: 'running', message, bytes, marker };
  if (/^Failed/i.test(detail)) return { state: 'failed', message, bytes, marker };
  if (/^Completed/i.test(detail)) return { state: /\bNo error\b/i.test(detail) || !/error|fail/i.test(detail) ? 'done' : 'failed', message, bytes, marker };
  if (/No download information/i.test(detail)) return { state: 'none', message, bytes, marker };
  if (/^download/i.test(transfer)) return { state: 'running', message, bytes, marker };
  if (transfer === '' && detail === '') throw new SwitchOutputError('show image status: no "File Transfer State" or "State Detail" line');
  return { state: 'none', message, bytes, marker };
}

export function parseOs10Download(output: string): PullOutcome {
  if (/%\s*Error|^\s*Error:/im.test(output)) return { ok: false, message: redactSecrets(lastLine(output, /Error/i)), bytes: null };
  return { ok: true, message: redactSecrets(lastLine(output) || 'download started'), bytes: null };
}

/** `<hex>  /var/os10-image/NAME`, as coreutils prints it. */
export function parseOs10Hash(output: string, algorithm: SwitchHashAlgorithm, fileName: string): string | null | typeof HASH_UNSUPPORTED {
  const digest = namedDigest(output, /^\s*(?<hex>[0-9a-fA-F]{16,})\s+\*?(?<name>\S+)\s*$/m, fileName, algorithm, `${algorithm}sum`, /error|No such file/i);
  if (digest !== null) return digest;
  if (/No such file/i.test(output)) return null;
  if (/%\s*Error/i.test(output) || /command not found|not allowed|Permission denied/i.test(output)) return HASH_UNSUPPORTED;
  throw new SwitchOutputError(`${algorithm}sum: no digest line`);
}

export const dellOs10: Dialect = {
  name: 'dell-os10',
  protocols: ['ftp', 'tftp', 'scp', 'sftp', 'http', 'usb'],
  prompt: CISCO_STYLE_PROMPT,
  setupCommands: ['terminal length 0'],
  inventoryCommands: ['show version', `system "df -k ${OS10_IMAGE_DIR}"`],
  parseInventory: (outputs) => ({ ...parseOs10Version(outputs[0] ?? ''), freeBytes: parseOs10DfFree(outputs[1] ?? '') }),
  defaultVrf: null,
  pullCommand(url) {
    const authority = ftpCredentialsAuthority(url);
    // OS10 names the file after the URL's last segment: the rollout's file name is that segment.
    return { command: `image download ftp://${authority}${url.path}`, questions: [] };
  },
  parsePullOutput: parseOs10Download,
  background: { statusCommand: 'show image status', parseStatus: parseOs10ImageStatus },
  hashAlgorithms: ['sha256', 'md5'],
  hashCommand: (fileName, algorithm) => `system "${algorithm}sum ${OS10_IMAGE_DIR}/${fileName}"`,
  parseHash: parseOs10Hash,
  hashBytesPerSecond: 10_000_000,
};
