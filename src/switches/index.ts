/** Switch drivers (SSH, vendor CLIs) and the switch emulator. */
import type { Logger } from '../core/logger.js';
import { CliDriver, UnsupportedDriver } from './cliDriver.js';
import type { Dialect } from './dialect.js';
import { ciscoIos, ciscoIosXe } from './dialects/cisco.js';
import { ciscoNxos } from './dialects/nxos.js';
import { aristaEos } from './dialects/eos.js';
import { juniperJunos } from './dialects/junos.js';
import { comware } from './dialects/comware.js';
import { dellOs10 } from './dialects/dellOs10.js';
import type { SwitchDriver } from './driver.js';

export * from './driver.js';
export { fingerprintProblem, fingerprintsEqual, hostKeyFingerprint, type HostKeyCheck } from './hostKey.js';
export { WEAK_ALGORITHMS } from './ssh.js';
export type { Dialect, PolledStatus } from './dialect.js';

/** Every platform whose switches pull images over FTP with their own CLI, by driver name. */
export const DIALECTS: Readonly<Record<string, Dialect>> = {
  'cisco-ios': ciscoIos,
  'cisco-ios-xe': ciscoIosXe,
  'cisco-nxos': ciscoNxos,
  'arista-eos': aristaEos,
  'juniper-junos': juniperJunos,
  comware,
  'dell-os10': dellOs10,
};

/**
 * Platforms swfw knows and cannot roll out to (SWITCH-CLI-REFERENCE.md §0, §2.1, §2.2, §1.4).
 * Their switches fail the pre-check with the reason, before any login; they never attempt a transfer.
 */
export const UNSUPPORTED_PLATFORMS: Readonly<Record<string, { protocols: readonly string[]; reason: string }>> = {
  'aruba-aoscx': {
    protocols: ['tftp', 'sftp', 'http(s) through the REST API (10.04 and later)'],
    reason: 'Aruba AOS-CX cannot pull over FTP: its CLI copies over TFTP or SFTP, its REST API (10.04 and later) over HTTP(S); swfw serves FTP only',
  },
  'aruba-aos-switch': {
    protocols: ['tftp', 'sftp', 'usb', 'xmodem'],
    reason: 'ArubaOS-Switch (ProVision) cannot pull over FTP: it copies over TFTP, SFTP, USB or Xmodem only; swfw serves FTP only',
  },
  'brocade-fos': {
    protocols: ['ftp (a release directory)', 'scp', 'sftp', 'usb'],
    reason:
      'Brocade FOS is not supported: firmwaredownload fetches a release directory (a .plist and its RPM packages), not one file, and HA-reboots the switch during the command; swfw grants one file per switch',
  },
};

export const DRIVER_NAMES = [...Object.keys(DIALECTS), ...Object.keys(UNSUPPORTED_PLATFORMS)];

export function driverFor(name: string, logger?: Logger): SwitchDriver {
  const dialect = DIALECTS[name];
  if (dialect) return new CliDriver(dialect, logger);
  const unsupported = UNSUPPORTED_PLATFORMS[name];
  if (unsupported) return new UnsupportedDriver(name, unsupported.protocols, `${unsupported.reason} (supported protocols: ${unsupported.protocols.join(', ')})`);
  throw new Error(`unknown driver "${name}" (known: ${DRIVER_NAMES.join(', ')})`);
}
