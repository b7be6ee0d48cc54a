import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import { readFile } from 'node:fs/promises';
import { dirname, isAbsolute, resolve } from 'node:path';
import { ConfigError, describeError } from '../core/errors.js';
import { canonicalAddress, parseCidr } from '../core/address.js';
import { DRIVER_NAMES, WEAK_ALGORITHMS, fingerprintProblem } from '../switches/index.js';
import { readDocument } from './document.js';
import { Problems } from './validate.js';

/** Where a switch's SSH passwords come from: never the inventory itself. */
export interface CredentialsRef {
  username: string;
  passwordEnv?: string;
  passwordFile?: string;
  /** The enable secret (Cisco, Arista), for accounts that log in unprivileged; default: the login password. */
  enablePasswordEnv?: string;
  enablePasswordFile?: string;
}

export interface InventorySwitch {
  name: string;
  /** The management address as written: an IP address or a DNS name. */
  address: string;
  /**
   * What `address` resolved to when the inventory was loaded (itself, for an IP address); null
   * when the name did not resolve. SSH goes there, and the one-time FTP grant is bound to it
   * unless `ftpSource` says otherwise.
   */
  resolvedAddress: string | null;
  /** Why the name did not resolve (the switch fails its pre-check with it). */
  resolveError: string | null;
  port: number;
  driver: string;
  /** Catalog platform: picks the plan's target image. */
  platform: string;
  credentials: CredentialsRef;
  /** The pinned OpenSSH SHA256 fingerprint of the switch's SSH host key, or null (see the plan's `hostKeys`). */
  hostKey: string | null;
  /** HTTPS port of the switch's REST API (REST drivers such as aruba-aoscx; default 443). */
  restPort: number;
  /**
   * The pinned `SHA256:` fingerprint of the REST API's HTTPS certificate (of the DER certificate,
   * e.g. `openssl x509 -outform der | openssl dgst -sha256 -binary | base64`), or null: the plan's
   * `hostKeys` policy applies to it as to SSH host keys.
   */
  restCertificate: string | null;
  /**
   * The address or CIDR block the switch's FTP connections come from, when it is not the
   * management address (Cisco `ip ftp source-interface`, a management VRF's interface).
   */
  ftpSource: string | null;
  /** The VRF the switch's copy uses (NX-OS `vrf`, Comware `vpn-instance`, EOS `cli vrf`, Junos `routing-instance`); null: the platform's default. */
  vrf: string | null;
  /** Weak SSH algorithms this switch may use (ssh.ts WEAK_ALGORITHMS), e.g. diffie-hellman-group1-sha1. */
  sshWeakAlgorithms: string[];
  site: string | null;
  tags: string[];
}

const SWITCH_KEYS = ['name', 'address', 'port', 'driver', 'platform', 'hostKey', 'restPort', 'restCertificate', 'credentials', 'ftpSource', 'vrf', 'sshWeakAlgorithms', 'site', 'tags'] as const;
const CREDENTIAL_KEYS = ['username', 'passwordEnv', 'passwordFile', 'enablePasswordEnv', 'enablePasswordFile'] as const;
const SSH_PORT = 22;
const HTTPS_PORT = 443;
/** A DNS name (RFC 1123 labels) or an address: what `address` may hold. */
const HOST_NAME = /^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?$/;
const VRF_NAME = /^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$/;

/** A list of names from WEAK_ALGORITHMS (inventory or plan `sshWeakAlgorithms`); problems go to `p`. */
export function weakAlgorithmList(value: unknown, path: string, p: Problems): string[] {
  if (value === undefined) return [];
  if (!Array.isArray(value) || value.some((v) => typeof v !== 'string')) {
    p.add(path, 'must be a list of algorithm names');
    return [];
  }
  const unknown = (value as string[]).filter((v) => !(v in WEAK_ALGORITHMS));
  if (unknown.length) p.add(path, `unknown ${unknown.map((u) => `"${u}"`).join(', ')} (allowed: ${Object.keys(WEAK_ALGORITHMS).join(', ')})`);
  return (value as string[]).filter((v) => v in WEAK_ALGORITHMS);
}

/** Validates an inventory document; every problem with its path (`switches[3].credentials`). */
export function validateInventory(raw: unknown, baseDir: string): { switches: InventorySwitch[]; problems: Problems } {
  const p = new Problems();
  const switches: InventorySwitch[] = [];
  if (!p.isObject(raw, '(root)')) return { switches, problems: p };
  p.keys(raw, '', ['switches']);
  const list = raw['switches'];
  if (!Array.isArray(list) || list.length === 0) {
    p.add('switches', 'must be a non-empty list');
    return { switches, problems: p };
  }
  const names = new Set<string>();
  list.forEach((item: unknown, i) => {
    const at = `switches[${i}]`;
    if (!p.isObject(item, at)) return;
    p.keys(item, at, SWITCH_KEYS);
    const name = p.string(item['name'], `${at}.name`);
    if (name && names.has(name)) p.add(`${at}.name`, `duplicate name "${name}"`);
    if (name) names.add(name);
    const address = p.string(item['address'], `${at}.address`);
    if (address && !isIP(address) && !HOST_NAME.test(address)) p.add(`${at}.address`, 'must be an IPv4 or IPv6 address or a DNS name');
    const port = p.int(item['port'], `${at}.port`, 1, 65535, true) ?? SSH_PORT;
    const driver = p.string(item['driver'], `${at}.driver`);
    if (driver && !DRIVER_NAMES.includes(driver)) p.add(`${at}.driver`, `unknown driver (known: ${DRIVER_NAMES.join(', ')})`);
    const platform = p.string(item['platform'], `${at}.platform`, true) ?? driver;
    const hostKey = p.string(item['hostKey'], `${at}.hostKey`, true) ?? null;
    const hostKeyProblem = hostKey === null ? null : fingerprintProblem(hostKey);
    if (hostKeyProblem) p.add(`${at}.hostKey`, hostKeyProblem);
    const restPort = p.int(item['restPort'], `${at}.restPort`, 1, 65535, true) ?? HTTPS_PORT;
    const restCertificate = p.string(item['restCertificate'], `${at}.restCertificate`, true) ?? null;
    const restCertificateProblem = restCertificate === null ? null : fingerprintProblem(restCertificate);
    if (restCertificateProblem) p.add(`${at}.restCertificate`, restCertificateProblem.replace('OpenSSH SHA256 fingerprint', 'SHA256 fingerprint of the DER certificate').replace(' (ssh-keygen -lf)', ''));
    const ftpSource = p.string(item['ftpSource'], `${at}.ftpSource`, true) ?? null;
    const ftpSourceCidr = ftpSource === null ? null : parseCidr(canonicalAddress(ftpSource));
    if (typeof ftpSourceCidr === 'string') p.add(`${at}.ftpSource`, `${ftpSourceCidr} (the address or CIDR block the switch's FTP connections come from)`);
    const vrf = p.string(item['vrf'], `${at}.vrf`, true) ?? null;
    if (vrf !== null && !VRF_NAME.test(vrf)) p.add(`${at}.vrf`, 'must be a VRF name (letters, digits, _ . : -)');
    const sshWeakAlgorithms = weakAlgorithmList(item['sshWeakAlgorithms'], `${at}.sshWeakAlgorithms`, p);
    const site = p.string(item['site'], `${at}.site`, true) ?? null;
    const tags = item['tags'] ?? [];
    if (!Array.isArray(tags) || tags.some((t) => typeof t !== 'string')) p.add(`${at}.tags`, 'must be a list of strings');
    const c = item['credentials'];
    let credentials: CredentialsRef | undefined;
    if (p.isObject(c, `${at}.credentials`)) {
      if ('password' in c) p.add(`${at}.credentials.password`, 'inline secrets are not allowed: use passwordEnv or passwordFile');
      // `password` is reported once, above, with the reason; not again as an unknown key.
      p.keys(Object.fromEntries(Object.entries(c).filter(([k]) => k !== 'password')), `${at}.credentials`, CREDENTIAL_KEYS);
      const username = p.string(c['username'], `${at}.credentials.username`);
      const passwordEnv = p.string(c['passwordEnv'], `${at}.credentials.passwordEnv`, true);
      const passwordFile = p.string(c['passwordFile'], `${at}.credentials.passwordFile`, true);
      if ((passwordEnv === undefined) === (passwordFile === undefined)) p.add(`${at}.credentials`, 'needs exactly one of passwordEnv or passwordFile');
      const enableEnv = p.string(c['enablePasswordEnv'], `${at}.credentials.enablePasswordEnv`, true);
      const enableFile = p.string(c['enablePasswordFile'], `${at}.credentials.enablePasswordFile`, true);
      if (enableEnv !== undefined && enableFile !== undefined) p.add(`${at}.credentials`, 'needs at most one of enablePasswordEnv or enablePasswordFile');
      if (username) {
        credentials = { username };
        if (passwordEnv) credentials.passwordEnv = passwordEnv;
        if (passwordFile) credentials.passwordFile = isAbsolute(passwordFile) ? passwordFile : resolve(baseDir, passwordFile);
        if (enableEnv) credentials.enablePasswordEnv = enableEnv;
        if (enableFile) credentials.enablePasswordFile = isAbsolute(enableFile) ? enableFile : resolve(baseDir, enableFile);
      }
    }
    if (name && address && driver && platform && credentials && !hostKeyProblem && !restCertificateProblem) {
      const ip = isIP(address) ? canonicalAddress(address) : null;
      switches.push({
        name,
        address,
        resolvedAddress: ip,
        resolveError: ip ? null : 'not resolved yet',
        port,
        driver,
        platform,
        credentials,
        hostKey,
        restPort,
        restCertificate,
        ftpSource: typeof ftpSourceCidr === 'object' && ftpSourceCidr !== null ? canonicalAddress(ftpSource!) : null,
        vrf,
        sshWeakAlgorithms,
        site,
        tags: Array.isArray(tags) ? (tags as string[]) : [],
      });
    }
  });
  return { switches, problems: p };
}

/**
 * Resolves every DNS name in `address`, once, all at the same time (a rollout then uses the same
 * address for SSH and for the FTP grant throughout). A name that does not resolve is not an
 * inventory error: that switch fails its pre-check, and the others go on.
 */
export async function resolveInventoryAddresses(switches: InventorySwitch[], resolver: (name: string) => Promise<string> = async (n) => (await lookup(n)).address): Promise<void> {
  await Promise.all(
    switches
      .filter((s) => s.resolvedAddress === null)
      .map(async (s) => {
        try {
          s.resolvedAddress = canonicalAddress(await resolver(s.address));
          s.resolveError = null;
        } catch (err) {
          s.resolveError = `the name ${s.address} does not resolve (${(err as NodeJS.ErrnoException).code ?? describeError(err)})`;
        }
      }),
  );
}

export async function loadInventory(path: string): Promise<InventorySwitch[]> {
  const { switches, problems } = validateInventory(await readDocument(path), dirname(resolve(path)));
  if (problems.list.length) throw new ConfigError(problems.list.map((x) => ({ path: `${path}: ${x.path}`, message: x.message })));
  await resolveInventoryAddresses(switches);
  return switches;
}

async function readSecret(envName: string | undefined, file: string | undefined, env: NodeJS.ProcessEnv): Promise<string> {
  if (envName) {
    const value = env[envName];
    if (!value) throw new Error(`credentials: environment variable ${envName} is not set`);
    return value;
  }
  const text = await readFile(file!, 'utf8').catch((err: NodeJS.ErrnoException) => {
    throw new Error(`credentials: cannot read ${file} (${err.code ?? 'error'})`);
  });
  return text.replace(/\r?\n$/, '');
}

/** Reads the password a credentials reference points to (never logged). */
export function resolvePassword(ref: CredentialsRef, env: NodeJS.ProcessEnv = process.env): Promise<string> {
  return readSecret(ref.passwordEnv, ref.passwordFile, env);
}

/** Reads the enable secret, or null when the reference names none (the login password is used then). */
export async function resolveEnablePassword(ref: CredentialsRef, env: NodeJS.ProcessEnv = process.env): Promise<string | null> {
  if (!ref.enablePasswordEnv && !ref.enablePasswordFile) return null;
  return readSecret(ref.enablePasswordEnv, ref.enablePasswordFile, env);
}
