import { randomBytes } from 'node:crypto';
import { readFile, stat, writeFile } from 'node:fs/promises';
import { writeFileAtomic } from '../../core/durableFile.js';
import { resolve } from 'node:path';
import { InvalidArgumentError, type Command } from '../program.js';
import { describeError } from '../../core/errors.js';
import { ExitCode, ExitError } from '../exitCodes.js';
import { SITE_NAME } from '../../engine/index.js';
import { EmulatedFleet, FAULT_KINDS, PERSONALITIES, parseFaults } from '../../switches/emulator/index.js';
import { untilStopSignal } from '../stopSignal.js';

/** The env var holding the emulated switches' SSH password (inventories reference it, never inline). */
export const SWITCH_PASSWORD_ENV = 'SWFW_SWITCH_PASSWORD';
/**
 * Default SSH port of emulated switches: each switch has its own address, so they all share it.
 * The common alternative SSH port, below the ephemeral range and outside the tests' port slices.
 */
const DEFAULT_EMULATOR_SSH_PORT = 2222;

interface EmulateFlags {
  switches: number;
  platform: string;
  inventoryOut?: string;
  faults?: string;
  sshPort: number;
  firstOctet: number;
  flashBytes: number;
  flashUnder?: string;
  swVersion?: string;
  catalogPlatform?: string;
  site?: string;
  restPort: number;
  trustCa?: string;
}

const PLATFORMS = [...Object.keys(PERSONALITIES), 'mixed'];

const whole = (min: number, max: number) => (value: string) => {
  const n = Number(value);
  if (!/^\d+$/.test(value) || n < min || n > max) throw new InvalidArgumentError(`must be a whole number in ${min}-${max}`);
  return n;
};

/** `swfw emulate`: N emulated switches until SIGINT/SIGTERM. */
export async function emulateCommand(flags: EmulateFlags): Promise<void> {
  if (!PLATFORMS.includes(flags.platform)) {
    throw new ExitError(ExitCode.USAGE, `--platform: the emulator speaks ${PLATFORMS.join(', ')} (got ${flags.platform})`);
  }
  if (flags.site !== undefined && !SITE_NAME.test(flags.site)) throw new ExitError(ExitCode.USAGE, `--site: "${flags.site}" is not a site name (letters, digits, _ and -)`);
  let faults;
  try {
    faults = parseFaults(flags.faults, flags.switches);
  } catch (err) {
    throw new ExitError(ExitCode.USAGE, `--faults: ${describeError(err)}`);
  }
  if (flags.flashUnder !== undefined && !(await stat(flags.flashUnder).catch(() => null))?.isDirectory()) {
    throw new ExitError(ExitCode.USAGE, `--flash-under: ${flags.flashUnder} is not a directory`);
  }
  const trustCa = flags.trustCa === undefined ? undefined : await readFile(flags.trustCa, 'utf8').catch((err: NodeJS.ErrnoException) => {
    throw new ExitError(ExitCode.USAGE, `--trust-ca: cannot read ${flags.trustCa} (${err.code ?? err.message})`);
  });
  if (trustCa !== undefined && !trustCa.includes('-----BEGIN CERTIFICATE-----')) throw new ExitError(ExitCode.USAGE, `--trust-ca: ${flags.trustCa} holds no PEM certificate`);
  let password = process.env[SWITCH_PASSWORD_ENV];
  let credentials: { username: string; passwordEnv?: string; passwordFile?: string } = { username: 'admin', passwordEnv: SWITCH_PASSWORD_ENV };
  if (!password) {
    password = randomBytes(12).toString('base64url');
    if (!flags.inventoryOut) throw new ExitError(ExitCode.USAGE, `set ${SWITCH_PASSWORD_ENV} or give --inventory-out (the password then goes to a 0600 file beside it)`);
    const file = `${resolve(flags.inventoryOut)}.password`;
    await writeFile(file, `${password}\n`, { mode: 0o600 });
    credentials = { username: 'admin', passwordFile: file };
  }
  let fleet: EmulatedFleet;
  try {
    fleet = await EmulatedFleet.start({
      count: flags.switches,
      platform: flags.platform,
      ...(flags.catalogPlatform ? { catalogPlatform: flags.catalogPlatform } : {}),
      firstOctet: flags.firstOctet,
      sshPort: flags.sshPort,
      password,
      flashBytes: flags.flashBytes,
      ...(flags.flashUnder ? { flashUnder: resolve(flags.flashUnder) } : {}),
      ...(flags.swVersion ? { version: flags.swVersion } : {}),
      restPort: flags.restPort,
      ...(trustCa !== undefined ? { trustCa } : {}),
      faults,
    });
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EADDRINUSE' || code === 'EADDRNOTAVAIL') throw new ExitError(ExitCode.USAGE, `cannot listen: ${describeError(err)}`);
    throw err;
  }
  // Whole or not at all: a rollout started beside us reads the old inventory or the new, never half.
  const inventory = fleet.inventory(credentials);
  if (flags.site) {
    // One fleet per site of a multi-site rollout: names unique across sites, and the site set.
    for (const s of inventory.switches) Object.assign(s, { name: `${flags.site}-${String(s['name'])}`, site: flags.site });
  }
  if (flags.inventoryOut) await writeFileAtomic(flags.inventoryOut, `${JSON.stringify(inventory, null, 2)}\n`);
  const first = fleet.switches[0]!.address;
  const last = fleet.switches.at(-1)!.address;
  const platforms = [...new Set(fleet.switches.map((s) => s.driver))].join(', ');
  process.stdout.write(`emulating ${fleet.switches.length} switch${fleet.switches.length === 1 ? '' : 'es'} (${platforms}) on ${first}-${last} port ${flags.sshPort}${flags.inventoryOut ? `, inventory ${flags.inventoryOut}` : ''}\n`);
  await untilStopSignal(() => fleet.stop());
}

export function registerEmulate(program: Command): void {
  program
    .command('emulate')
    .description("run emulated switches (SSH + each platform's CLI + flash) on 127.0.1.x for rollout tests")
    .option('--switches <n>', 'how many switches', whole(1, 254), 4)
    .option('--platform <driver>', `the platform every switch emulates, or mixed (one of each in turn): ${PLATFORMS.join(', ')}`, 'cisco-ios-xe')
    .option('--catalog-platform <name>', "catalog platform written to the inventory (default: each switch's platform)")
    .option('--inventory-out <file>', 'write the inventory a rollout reads (JSON)')
    .option('--faults <spec>', `per switch, comma-separated N:kind[=value]; kinds: ${FAULT_KINDS.join(', ')} (see the README)`)
    .option('--ssh-port <port>', 'SSH port on every switch address', whole(1, 65535), DEFAULT_EMULATOR_SSH_PORT)
    .option('--first-octet <n>', 'first switch is 127.0.1.N', whole(1, 254), 1)
    .option('--flash-bytes <n>', 'flash capacity per switch', whole(1, Number.MAX_SAFE_INTEGER), 64 * 1024 * 1024)
    .option('--flash-under <dir>', 'make the flash temp dir (removed at exit) under this directory, e.g. /dev/shm for RAM (default: the system temp dir)')
    .option('--site <name>', 'multi-site: the inventory puts every switch at this site and prefixes its name with it (paris-emu-001)')
    .option('--sw-version <v>', "software version every switch reports (default: each platform's own)")
    .option('--rest-port <port>', 'HTTPS port of the REST API on switches that have one (aruba-aoscx)', whole(1, 65535), 443)
    .option('--trust-ca <pem>', "the certificate (or CA) aruba-aoscx switches trust for HTTPS downloads: swfw's --tls-cert (without it they download over HTTP only)")
    .action(emulateCommand);
}
