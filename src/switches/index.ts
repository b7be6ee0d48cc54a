/** Switch drivers (SSH, vendor CLIs) and the switch emulator. */
import type { Logger } from '../core/logger.js';
import { CliDriver } from './cliDriver.js';
import type { Dialect } from './dialect.js';
import { brocadeFos } from './dialects/brocadeFos.js';
import { ciscoIos, ciscoIosXe, emulated } from './dialects/cisco.js';
import { comware } from './dialects/comware.js';
import { dellOs10 } from './dialects/dellOs10.js';
import type { SwitchDriver } from './driver.js';

export * from './driver.js';
export { fingerprintProblem, fingerprintsEqual, hostKeyFingerprint, type HostKeyCheck } from './hostKey.js';
export type { Dialect, PolledStatus } from './dialect.js';

export const DIALECTS: Readonly<Record<string, Dialect>> = {
  'cisco-ios': ciscoIos,
  'cisco-ios-xe': ciscoIosXe,
  comware,
  'dell-os10': dellOs10,
  'brocade-fos': brocadeFos,
  emulated,
};

export const DRIVER_NAMES = Object.keys(DIALECTS);

export function driverFor(name: string, logger?: Logger): SwitchDriver {
  const dialect = DIALECTS[name];
  if (!dialect) throw new Error(`unknown driver "${name}" (known: ${DRIVER_NAMES.join(', ')})`);
  return new CliDriver(dialect, logger);
}
