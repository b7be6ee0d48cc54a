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
import { AosCxDriver } from './aoscx/driver.js';

export * from './driver.js';
export { fingerprintProblem, fingerprintsEqual, hostKeyFingerprint, type HostKeyCheck } from './hostKey.js';
export { WEAK_ALGORITHMS } from './ssh.js';
export type { Dialect, PolledStatus } from './dialect.js';
export { AOSCX_DEFAULT_VRF } from './aoscx/driver.js';
export { parseAosCxShowImages, parseAosCxShowVersion, aosCxReleaseVersion, canPullFromUrl, type ShowImages, type AosCxSlot } from './aoscx/cli.js';

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
  'aruba-aos-switch': {
    protocols: ['tftp', 'sftp', 'usb', 'xmodem'],
    reason: 'ArubaOS-Switch (ProVision) cannot pull over FTP: it copies over TFTP, SFTP, USB or Xmodem only, and swfw serves FTP and HTTP(S)',
  },
  'brocade-fos': {
    protocols: ['ftp (a release directory)', 'scp', 'sftp', 'usb'],
    reason:
      'Brocade FOS is not supported: firmwaredownload fetches a release directory (a .plist and its RPM packages), not one file, and HA-reboots the switch during the command; swfw grants one file per switch',
  },
};

/**
 * Platforms that cannot pull over FTP but download from swfw's HTTP(S) server through a REST API
 * (SWITCH-CLI-REFERENCE.md §2.1): the plan's server must serve `https` or `http`.
 */
export const REST_DRIVERS: Readonly<Record<string, (logger?: Logger) => SwitchDriver>> = {
  'aruba-aoscx': (logger) => new AosCxDriver(logger),
};

export const DRIVER_NAMES = [...Object.keys(DIALECTS), ...Object.keys(REST_DRIVERS), ...Object.keys(UNSUPPORTED_PLATFORMS)];

export function driverFor(name: string, logger?: Logger): SwitchDriver {
  const dialect = DIALECTS[name];
  if (dialect) return new CliDriver(dialect, logger);
  const rest = REST_DRIVERS[name];
  if (rest) return rest(logger);
  const unsupported = UNSUPPORTED_PLATFORMS[name];
  if (unsupported) return new UnsupportedDriver(name, unsupported.protocols, `${unsupported.reason} (supported protocols: ${unsupported.protocols.join(', ')})`);
  throw new Error(`unknown driver "${name}" (known: ${DRIVER_NAMES.join(', ')})`);
}
