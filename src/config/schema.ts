import { isIP } from 'node:net';
import { Limits } from '../core/limits.js';
import { parsePortRange, isPortInRange, type PortRange } from '../core/portRange.js';
import { parseCidr, type Cidr } from '../core/address.js';
import type { ConfigProblem } from '../core/errors.js';

/** How one scalar config key is typed, where env and flags can set it, and its bounds. */
export interface ScalarField {
  kind: 'string' | 'optionalString' | 'endpoint' | 'integer' | 'seconds' | 'boolean' | 'logLevel' | 'hashSentBytes';
  /** Environment variable that overrides the file (file, then env, then flags). */
  env: string;
  min?: number;
  max?: number;
}

/**
 * Every scalar key of the server config. `accounts` is the one structured key.
 * Defaults live in config/default.json only, so there is one source of truth.
 */
export const SCALAR_FIELDS = {
  host: { kind: 'string', env: 'SWFW_HOST' },
  port: { kind: 'integer', env: 'SWFW_PORT', min: 0, max: Limits.MAX_PORT },
  pasvRange: { kind: 'string', env: 'SWFW_PASV_RANGE' },
  pasvAddress: { kind: 'optionalString', env: 'SWFW_PASV_ADDRESS' },
  images: { kind: 'string', env: 'SWFW_IMAGES' },
  anonymous: { kind: 'boolean', env: 'SWFW_ANONYMOUS' },
  activeMode: { kind: 'boolean', env: 'SWFW_ACTIVE_MODE' },
  pasvWait: { kind: 'seconds', env: 'SWFW_PASV_WAIT', min: 0, max: 3600 },
  idleTimeout: { kind: 'seconds', env: 'SWFW_IDLE_TIMEOUT', min: 1, max: 86400 },
  dataTimeout: { kind: 'seconds', env: 'SWFW_DATA_TIMEOUT', min: 1, max: 86400 },
  maxPerIp: { kind: 'integer', env: 'SWFW_MAX_PER_IP', min: 1, max: 100000 },
  maxConnections: { kind: 'integer', env: 'SWFW_MAX_CONNECTIONS', min: 1, max: 100000 },
  tlsCert: { kind: 'optionalString', env: 'SWFW_TLS_CERT' },
  tlsKey: { kind: 'optionalString', env: 'SWFW_TLS_KEY' },
  requireTls: { kind: 'boolean', env: 'SWFW_REQUIRE_TLS' },
  hashSentBytes: { kind: 'hashSentBytes', env: 'SWFW_HASH_SENT_BYTES' },
  logFile: { kind: 'optionalString', env: 'SWFW_LOG_FILE' },
  logLevel: { kind: 'logLevel', env: 'SWFW_LOG_LEVEL' },
  openFirewall: { kind: 'boolean', env: 'SWFW_OPEN_FIREWALL' },
  runAs: { kind: 'string', env: 'SWFW_RUN_AS' },
  http: { kind: 'endpoint', env: 'SWFW_HTTP' },
  https: { kind: 'endpoint', env: 'SWFW_HTTPS' },
  httpListing: { kind: 'boolean', env: 'SWFW_HTTP_LISTING' },
  metrics: { kind: 'optionalString', env: 'SWFW_METRICS' },
  xferlog: { kind: 'optionalString', env: 'SWFW_XFERLOG' },
  syslog: { kind: 'boolean', env: 'SWFW_SYSLOG' },
  syslogFacility: { kind: 'string', env: 'SWFW_SYSLOG_FACILITY' },
  syslogSocket: { kind: 'string', env: 'SWFW_SYSLOG_SOCKET' },
} as const satisfies Record<string, ScalarField>;

export type ScalarKey = keyof typeof SCALAR_FIELDS;
export const ACCOUNT_KEYS = ['user', 'passwordEnv', 'passwordHash', 'allowFrom'] as const;
export const LOG_LEVELS = ['error', 'warn', 'info', 'debug'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];
/** Syslog facilities by name, with their codes (RFC 5424 §6.2.1). */
export const SYSLOG_FACILITIES = {
  kern: 0, user: 1, mail: 2, daemon: 3, auth: 4, syslog: 5, lpr: 6, news: 7, uucp: 8, cron: 9, authpriv: 10, ftp: 11,
  local0: 16, local1: 17, local2: 18, local3: 19, local4: 20, local5: 21, local6: 22, local7: 23,
} as const;
export type SyslogFacility = keyof typeof SYSLOG_FACILITIES;

/** Where the Prometheus endpoint listens. */
export interface ListenAddress {
  readonly host: string;
  readonly port: number;
}

/** `HOST:PORT` (`[::1]:9100` for IPv6): the address, or a problem message. */
export function parseListenAddress(text: string): ListenAddress | string {
  const match = /^(?:\[([^\]]+)\]|([^:]+)):(\d{1,5})$/.exec(text);
  if (!match) return `"${text}" must be HOST:PORT, e.g. 127.0.0.1:9100 or [::1]:9100`;
  const host = match[1] ?? match[2]!;
  const port = Number(match[3]);
  if (isIP(host) === 0) return `"${host}" is not an IP address`;
  if (port > Limits.MAX_PORT) return `port ${port} is above ${Limits.MAX_PORT}`;
  return Object.freeze({ host, port });
}

/** One login account as written in config. Exactly one of passwordEnv / passwordHash. */
export interface AccountConfig {
  user: string;
  passwordEnv?: string;
  passwordHash?: string;
  allowFrom?: string[];
}

/** A validated account: CIDRs parsed. */
export interface Account {
  readonly user: string;
  readonly passwordEnv: string | null;
  readonly passwordHash: string | null;
  readonly allowFrom: readonly Cidr[];
}

/** Where an HTTP(S) listener binds: `host` defaults to the config's `host` when only a port was given. */
export interface ListenEndpoint {
  readonly host: string;
  /** 0 picks a free port (tests). */
  readonly port: number;
}

/** The validated, frozen server configuration. Durations are in milliseconds here. */
export interface ServerConfig {
  readonly host: string;
  readonly port: number;
  readonly pasvRange: PortRange;
  readonly pasvAddress: string | null;
  readonly images: string;
  readonly accounts: readonly Account[];
  readonly anonymous: boolean;
  readonly activeMode: boolean;
  readonly pasvWaitMs: number;
  readonly idleTimeoutMs: number;
  readonly dataTimeoutMs: number;
  readonly maxPerIp: number;
  readonly maxConnections: number;
  readonly tlsCert: string | null;
  readonly tlsKey: string | null;
  readonly requireTls: boolean;
  /** How the audit's SHA-256 of the sent bytes is had (see HASH_SENT_BYTES_MODES). */
  readonly hashSentBytes: HashSentBytesMode;
  readonly logFile: string | null;
  readonly logLevel: LogLevel;
  /** serve: insert iptables/nft rules for the ports at start, remove them at stop (Linux, root). */
  readonly openFirewall: boolean;
  /** Started as root: the user serve becomes after binding (`root`: stay root). */
  readonly runAs: string;
  /** Plain HTTP listener for the same read-only repository (`[ADDR:]PORT`), or null (off, the default). */
  readonly http: ListenEndpoint | null;
  /** HTTPS listener (`[ADDR:]PORT`, needs tlsCert and tlsKey), or null (off, the default). */
  readonly https: ListenEndpoint | null;
  /** HTTP(S): answer a directory with an HTML listing; off (the default), a directory is 404. */
  readonly httpListing: boolean;
  /** Prometheus text format at http://HOST:PORT/metrics; null: off. */
  readonly metrics: ListenAddress | null;
  /** One line per transfer in the wu-ftpd/vsftpd xferlog format; null: off. */
  readonly xferlog: string | null;
  /** The log also goes to the local syslog. */
  readonly syslog: boolean;
  readonly syslogFacility: SyslogFacility;
  /** The local syslog's Unix datagram socket (/dev/log). */
  readonly syslogSocket: string;
}

/**
 * `hashSentBytes`: how the audit's SHA-256 of the sent bytes is had.
 * - `per-version` (the default): hashed on the stream the first time a file version is sent whole;
 *   a later whole transfer of the same version (fstat on the open descriptor: device, inode, size,
 *   mtime and ctime in ns, checked at open and after the last byte) carries that digest unhashed.
 * - `per-transfer`: every transfer is hashed on the stream.
 * - `off`: no digest.
 */
export const HASH_SENT_BYTES_MODES = ['per-version', 'per-transfer', 'off'] as const;
export type HashSentBytesMode = (typeof HASH_SENT_BYTES_MODES)[number];

const USER_NAME = /^[A-Za-z0-9._-]{1,64}$/;
const ENV_NAME = /^[A-Z_][A-Z0-9_]*$/;
/** Format written by `swfw hash-password`: scrypt$N$r$p$saltBase64$keyBase64. */
export const PASSWORD_HASH_FORMAT = /^scrypt\$(\d+)\$(\d+)\$(\d+)\$([A-Za-z0-9+/=]+)\$([A-Za-z0-9+/=]+)$/;

/**
 * Coerces a raw value (from JSON, env or a flag) to the field's type.
 * Returns the value or a problem message.
 */
export function coerceScalar(field: ScalarField, raw: unknown): { value: unknown } | { problem: string } {
  const fromText = typeof raw === 'string';
  switch (field.kind) {
    case 'string':
      if (typeof raw !== 'string' || raw.length === 0) return { problem: 'must be a non-empty string' };
      return { value: raw };
    case 'optionalString':
      if (raw === null || raw === '') return { value: null };
      if (typeof raw !== 'string') return { problem: 'must be a string or null' };
      return { value: raw };
    case 'endpoint':
      // JSON may hold a bare port number; text is checked by parseEndpoint at validation.
      if (raw === null || raw === '' || raw === false) return { value: null };
      if (typeof raw === 'number') return { value: String(raw) };
      if (typeof raw !== 'string') return { problem: 'must be [ADDR:]PORT (e.g. 63001 or 10.0.0.5:63001), or null for off' };
      return { value: raw.trim() };
    case 'boolean':
      if (typeof raw === 'boolean') return { value: raw };
      if (fromText && /^(true|1|yes|on)$/i.test(raw)) return { value: true };
      if (fromText && /^(false|0|no|off)$/i.test(raw)) return { value: false };
      return { problem: 'must be true or false' };
    case 'hashSentBytes':
      // true/false from configs written before the modes existed: on meant hashed, now per version.
      if (raw === true || (fromText && /^(true|yes|on)$/i.test(raw))) return { value: 'per-version' };
      if (raw === false || (fromText && /^(false|no)$/i.test(raw))) return { value: 'off' };
      if (typeof raw === 'string' && (HASH_SENT_BYTES_MODES as readonly string[]).includes(raw)) return { value: raw };
      return { problem: `must be one of ${HASH_SENT_BYTES_MODES.join(', ')}` };
    case 'logLevel':
      if (typeof raw === 'string' && (LOG_LEVELS as readonly string[]).includes(raw)) return { value: raw };
      return { problem: `must be one of ${LOG_LEVELS.join(', ')}` };
    case 'integer':
    case 'seconds': {
      const number = fromText && /^\s*-?\d+(\.\d+)?\s*$/.test(raw) ? Number(raw) : raw;
      if (typeof number !== 'number' || !Number.isFinite(number)) return { problem: 'must be a number' };
      if (field.kind === 'integer' && !Number.isInteger(number)) return { problem: 'must be a whole number' };
      if (field.min !== undefined && number < field.min) return { problem: `must be at least ${field.min}` };
      if (field.max !== undefined && number > field.max) return { problem: `must be at most ${field.max}` };
      return { value: number };
    }
  }
}

/**
 * Parses `PORT`, `ADDR:PORT` or `[IPv6]:PORT` into a listen endpoint (`defaultHost` when no
 * address is given). Returns a problem message on failure.
 */
export function parseEndpoint(text: string, defaultHost: string): ListenEndpoint | string {
  const match = /^(?:\[([^\]]+)\]:|([^:\[\]]+):)?(\d{1,5})$/.exec(text);
  const usage = `"${text}" is not [ADDR:]PORT (e.g. 63001, 10.0.0.5:63001 or [fd00::5]:63001)`;
  if (!match) return usage;
  const host = match[1] ?? match[2] ?? defaultHost;
  const port = Number(match[3]);
  if (port > Limits.MAX_PORT) return `port ${port} is above ${Limits.MAX_PORT}`;
  if (isIP(host) === 0) return `"${host}" is not an IP address`;
  if (match[1] !== undefined && isIP(host) !== 6) return `"[${host}]" must hold an IPv6 address`;
  return Object.freeze({ host, port });
}

function validateAccounts(raw: unknown, problems: ConfigProblem[]): Account[] {
  if (!Array.isArray(raw)) {
    problems.push({ path: 'accounts', message: 'must be a list of accounts' });
    return [];
  }
  const seen = new Set<string>();
  return raw.flatMap((entry: unknown, index): Account[] => {
    const path = `accounts[${index}]`;
    if (typeof entry !== 'object' || entry === null || Array.isArray(entry)) {
      problems.push({ path, message: 'must be an object with user and passwordEnv or passwordHash' });
      return [];
    }
    const account = entry as Record<string, unknown>;
    const before = problems.length;
    for (const key of Object.keys(account)) {
      if (!(ACCOUNT_KEYS as readonly string[]).includes(key)) {
        problems.push({ path: `${path}.${key}`, message: `unknown key (known: ${ACCOUNT_KEYS.join(', ')})` });
      }
    }
    const { user, passwordEnv, passwordHash, allowFrom } = account;
    if (typeof user !== 'string' || !USER_NAME.test(user)) {
      problems.push({ path: `${path}.user`, message: 'must be 1-64 characters of A-Z a-z 0-9 . _ -' });
    } else if (seen.has(user)) {
      problems.push({ path: `${path}.user`, message: `duplicate account "${user}"` });
    } else seen.add(user);
    if ((passwordEnv === undefined) === (passwordHash === undefined)) {
      problems.push({ path, message: 'needs exactly one of passwordEnv (an env var name) or passwordHash (from swfw hash-password)' });
    }
    if (passwordEnv !== undefined && (typeof passwordEnv !== 'string' || !ENV_NAME.test(passwordEnv))) {
      problems.push({ path: `${path}.passwordEnv`, message: 'must be an environment variable name such as SWFW_PASSWORD' });
    }
    if (passwordHash !== undefined && (typeof passwordHash !== 'string' || !PASSWORD_HASH_FORMAT.test(passwordHash))) {
      problems.push({ path: `${path}.passwordHash`, message: 'must be a hash printed by `swfw hash-password` (scrypt$N$r$p$salt$key); plaintext passwords are not accepted' });
    }
    const cidrs: Cidr[] = [];
    if (allowFrom !== undefined) {
      if (!Array.isArray(allowFrom)) problems.push({ path: `${path}.allowFrom`, message: 'must be a list of CIDR blocks' });
      else
        allowFrom.forEach((text: unknown, i) => {
          const parsed = typeof text === 'string' ? parseCidr(text) : 'must be a CIDR string';
          if (typeof parsed === 'string') problems.push({ path: `${path}.allowFrom[${i}]`, message: parsed });
          else cidrs.push(parsed);
        });
    }
    if (problems.length !== before) return [];
    return [
      Object.freeze({
        user: user as string,
        passwordEnv: (passwordEnv as string | undefined) ?? null,
        passwordHash: (passwordHash as string | undefined) ?? null,
        allowFrom: Object.freeze(cidrs),
      }),
    ];
  });
}

/**
 * Validates a merged raw config (every key already coerced) and returns the frozen config.
 * Problems are appended to `problems`; the result is only meaningful when none were added.
 */
export function buildServerConfig(
  values: Record<string, unknown>,
  problems: ConfigProblem[],
  locate: (path: string) => string = (path) => path,
): ServerConfig {
  const value = <T>(key: string) => values[key] as T;
  const found: ConfigProblem[] = [];
  try {
    return validate(values, value, found);
  } finally {
    problems.push(...found.map((p) => ({ path: locate(p.path), message: p.message })));
  }
}

function validate(values: Record<string, unknown>, value: <T>(key: string) => T, problems: ConfigProblem[]): ServerConfig {
  for (const key of [...Object.keys(SCALAR_FIELDS), 'accounts']) {
    if (!(key in values)) problems.push({ path: key, message: 'is missing (config/default.json must define every key)' });
  }
  const port = value<number>('port');
  const host = value<string>('host');
  if (typeof host === 'string' && isIP(host) === 0) {
    problems.push({ path: 'host', message: `"${host}" is not an IP address (use 0.0.0.0 for every IPv4 interface)` });
  }
  const rangeText = value<string>('pasvRange');
  const parsedRange = typeof rangeText === 'string' ? parsePortRange(rangeText) : 'is missing';
  let pasvRange: PortRange = { min: 0, max: -1 };
  if (typeof parsedRange === 'string') problems.push({ path: 'pasvRange', message: parsedRange });
  else {
    pasvRange = parsedRange;
    if (isPortInRange(port, pasvRange)) {
      problems.push({ path: 'pasvRange', message: `overlaps the control port ${port}` });
    }
  }
  const pasvAddress = value<string | null>('pasvAddress');
  if (pasvAddress !== null && pasvAddress !== undefined && isIP(pasvAddress) !== 4) {
    problems.push({ path: 'pasvAddress', message: `"${pasvAddress}" must be an IPv4 address: a PASV reply can only carry IPv4 (RFC 959); EPSV needs none` });
  }
  const accounts = validateAccounts(values['accounts'], problems);
  const anonymous = value<boolean>('anonymous');
  if (anonymous === false && Array.isArray(values['accounts']) && values['accounts'].length === 0) {
    problems.push({ path: 'accounts', message: 'is empty and anonymous is off, so nobody could log in' });
  }
  const tlsCert = value<string | null>('tlsCert');
  const tlsKey = value<string | null>('tlsKey');
  if ((tlsCert === null) !== (tlsKey === null)) {
    // Point at the one that was given: that is the line the admin wrote.
    problems.push(tlsCert === null ? { path: 'tlsKey', message: 'needs tlsCert too' } : { path: 'tlsCert', message: 'needs tlsKey too' });
  }
  if (value<boolean>('requireTls') === true && tlsCert === null) {
    problems.push({ path: 'requireTls', message: 'needs tlsCert and tlsKey' });
  }
  const endpoint = (key: 'http' | 'https'): ListenEndpoint | null => {
    const text = value<string | null>(key);
    if (text === null || text === undefined) return null;
    const parsed = parseEndpoint(text, typeof host === 'string' ? host : '0.0.0.0');
    if (typeof parsed === 'string') {
      problems.push({ path: key, message: parsed });
      return null;
    }
    return parsed;
  };
  const http = endpoint('http');
  const https = endpoint('https');
  if (https && tlsCert === null) problems.push({ path: 'https', message: 'needs tlsCert and tlsKey' });
  const sameBind = (a: ListenEndpoint, b: { host: string; port: number }) => a.port !== 0 && a.port === b.port && (a.host === b.host || a.host === '0.0.0.0' || b.host === '0.0.0.0' || a.host === '::' || b.host === '::');
  for (const [key, listen] of [['http', http], ['https', https]] as const) {
    if (!listen) continue;
    if (sameBind(listen, { host, port })) problems.push({ path: key, message: `uses the FTP control port ${port}` });
    if (listen.port !== 0 && isPortInRange(listen.port, pasvRange)) problems.push({ path: key, message: `port ${listen.port} is inside the passive range ${pasvRange.min}-${pasvRange.max}` });
  }
  if (http && https && sameBind(https, http)) problems.push({ path: 'https', message: `uses the same port as http (${http.port})` });
  const metricsText = value<string | null>('metrics');
  let metrics: ListenAddress | null = null;
  if (typeof metricsText === 'string') {
    const parsed = parseListenAddress(metricsText);
    if (typeof parsed === 'string') problems.push({ path: 'metrics', message: parsed });
    else if (parsed.port !== 0 && parsed.port === port && (parsed.host === host || host === '0.0.0.0' || host === '::')) {
      problems.push({ path: 'metrics', message: `port ${parsed.port} is the control port` });
    } else if (parsed.port !== 0 && isPortInRange(parsed.port, pasvRange)) {
      problems.push({ path: 'metrics', message: `port ${parsed.port} is inside the passive range` });
    } else metrics = parsed;
  }
  const syslogFacility = value<string>('syslogFacility');
  if (typeof syslogFacility === 'string' && !(syslogFacility in SYSLOG_FACILITIES)) {
    problems.push({ path: 'syslogFacility', message: `must be one of ${Object.keys(SYSLOG_FACILITIES).join(', ')}` });
  }
  const maxPerIp = value<number>('maxPerIp');
  const maxConnections = value<number>('maxConnections');
  if (maxPerIp > maxConnections) {
    problems.push({ path: 'maxPerIp', message: `(${maxPerIp}) is larger than maxConnections (${maxConnections})` });
  }
  return Object.freeze({
    host,
    port,
    pasvRange: Object.freeze(pasvRange),
    pasvAddress: pasvAddress ?? null,
    images: value<string>('images'),
    accounts: Object.freeze(accounts),
    anonymous,
    activeMode: value<boolean>('activeMode'),
    pasvWaitMs: Math.round(value<number>('pasvWait') * 1000),
    idleTimeoutMs: Math.round(value<number>('idleTimeout') * 1000),
    dataTimeoutMs: Math.round(value<number>('dataTimeout') * 1000),
    maxPerIp,
    maxConnections,
    tlsCert,
    tlsKey,
    requireTls: value<boolean>('requireTls'),
    hashSentBytes: value<HashSentBytesMode>('hashSentBytes'),
    logFile: value<string | null>('logFile'),
    logLevel: value<LogLevel>('logLevel'),
    openFirewall: value<boolean>('openFirewall'),
    runAs: value<string>('runAs'),
    http,
    https,
    httpListing: value<boolean>('httpListing'),
    metrics,
    xferlog: value<string | null>('xferlog'),
    syslog: value<boolean>('syslog'),
    syslogFacility: syslogFacility as SyslogFacility,
    syslogSocket: value<string>('syslogSocket'),
  });
}
