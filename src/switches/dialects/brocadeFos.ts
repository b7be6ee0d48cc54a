import { SwitchOutputError, ftpUrlParts, redactSecrets, type PullOutcome } from '../driver.js';
import { capture, lastLine, type Dialect } from '../dialect.js';

/**
 * Brocade Fabric OS: `version`, `switchshow` (switchType → model), `firmwaredownload -p ftp
 * host,user,path,password` (answers "Do you want to continue (Y/N)"). FOS manages its own
 * partitions (no free-space figure) and checks the package signature itself; it offers no digest
 * of the downloaded file, so the rollout relies on the server audit for these switches.
 */
const SWITCH_TYPES: Readonly<Record<string, string>> = { '162': 'G620', '170': 'G610', '173': 'G630', '178': 'G720', '181': 'G730', '183': 'G710' };

export function parseFosVersion(versionOutput: string, switchshowOutput: string): { model: string; version: string } {
  const version = capture(versionOutput, /Fabric OS:\s*v?(\S+)/);
  const type = capture(switchshowOutput, /switchType:\s*(\d+)(?:\.\d+)?/);
  if (!version) throw new SwitchOutputError('version: no "Fabric OS:" line');
  if (!type) throw new SwitchOutputError('switchshow: no "switchType:" line');
  return { version, model: SWITCH_TYPES[type] ?? `switchType-${type}` };
}

export function parseFosFirmwareDownload(output: string): PullOutcome {
  if (/completed successfully|Firmware has been downloaded/i.test(output)) return { ok: true, message: redactSecrets(lastLine(output, /success|downloaded/i)), bytes: null };
  return { ok: false, message: redactSecrets(lastLine(output, /fail|error|cannot|denied/i) || 'firmwaredownload did not complete'), bytes: null };
}

export const brocadeFos: Dialect = {
  name: 'brocade-fos',
  hashAlgorithms: [],
  inventoryCommands: ['version', 'switchshow'],
  parseInventory: (outputs) => ({ ...parseFosVersion(outputs[0] ?? '', outputs[1] ?? ''), freeBytes: null }),
  pullCommand: (ftpUrl) => {
    const { host, user, password, path } = ftpUrlParts(ftpUrl);
    // FOS takes the firmware directory (the release's unpacked tree), not a single file.
    return { command: `firmwaredownload -p ftp ${host},${user},${path},${password}`, prompts: [{ match: /continue \(Y\/N\).*:\s*$/i, answer: 'y' }] };
  },
  parsePullOutput: parseFosFirmwareDownload,
  hashCommand: () => null,
  parseHash: () => null,
};
