import { readFile } from 'node:fs/promises';
import { dirname, isAbsolute, resolve } from 'node:path';
import { ConfigError } from '../core/errors.js';
import { DRIVER_NAMES, fingerprintProblem } from '../switches/index.js';
import { readDocument } from './document.js';
import { Problems } from './validate.js';

/** Where a switch's SSH password comes from: never the inventory itself. */
export interface CredentialsRef {
  username: string;
  passwordEnv?: string;
  passwordFile?: string;
}

export interface InventorySwitch {
  name: string;
  address: string;
  port: number;
  driver: string;
  /** Catalog platform: picks the plan's target image. */
  platform: string;
  credentials: CredentialsRef;
  /** The pinned OpenSSH SHA256 fingerprint of the switch's SSH host key, or null (see the plan's `hostKeys`). */
  hostKey: string | null;
  site: string | null;
  tags: string[];
}

const SWITCH_KEYS = ['name', 'address', 'port', 'driver', 'platform', 'hostKey', 'credentials', 'site', 'tags'] as const;
const CREDENTIAL_KEYS = ['username', 'passwordEnv', 'passwordFile'] as const;
const SSH_PORT = 22;

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
    const port = p.int(item['port'], `${at}.port`, 1, 65535, true) ?? SSH_PORT;
    const driver = p.string(item['driver'], `${at}.driver`);
    if (driver && !DRIVER_NAMES.includes(driver)) p.add(`${at}.driver`, `unknown driver (known: ${DRIVER_NAMES.join(', ')})`);
    const platform = p.string(item['platform'], `${at}.platform`, true) ?? driver;
    const hostKey = p.string(item['hostKey'], `${at}.hostKey`, true) ?? null;
    const hostKeyProblem = hostKey === null ? null : fingerprintProblem(hostKey);
    if (hostKeyProblem) p.add(`${at}.hostKey`, hostKeyProblem);
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
      if (username) {
        credentials = { username };
        if (passwordEnv) credentials.passwordEnv = passwordEnv;
        if (passwordFile) credentials.passwordFile = isAbsolute(passwordFile) ? passwordFile : resolve(baseDir, passwordFile);
      }
    }
    if (name && address && driver && platform && credentials && !hostKeyProblem) {
      switches.push({ name, address, port, driver, platform, credentials, hostKey, site, tags: Array.isArray(tags) ? (tags as string[]) : [] });
    }
  });
  return { switches, problems: p };
}

export async function loadInventory(path: string): Promise<InventorySwitch[]> {
  const { switches, problems } = validateInventory(await readDocument(path), dirname(resolve(path)));
  if (problems.list.length) throw new ConfigError(problems.list.map((x) => ({ path: `${path}: ${x.path}`, message: x.message })));
  return switches;
}

/** Reads the password a credentials reference points to (never logged). */
export async function resolvePassword(ref: CredentialsRef, env: NodeJS.ProcessEnv = process.env): Promise<string> {
  if (ref.passwordEnv) {
    const value = env[ref.passwordEnv];
    if (!value) throw new Error(`credentials: environment variable ${ref.passwordEnv} is not set`);
    return value;
  }
  const text = await readFile(ref.passwordFile!, 'utf8').catch((err: NodeJS.ErrnoException) => {
    throw new Error(`credentials: cannot read ${ref.passwordFile} (${err.code ?? 'error'})`);
  });
  return text.replace(/\r?\n$/, '');
}
