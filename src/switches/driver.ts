/**
 * The contract between the rollout and a switch: a driver logs into a switch (SSH), opens one
 * interactive CLI session and makes the switch itself pull an image over FTP, with the vendor's own
 * commands. Drivers never log secrets; every command or URL they log goes through `redactSecrets`.
 */
import type { HostKeyCheck } from './hostKey.js';

export interface SwitchTarget {
  host: string;
  port: number;
  username: string;
  password: string;
  /** The enable secret, for platforms that log in unprivileged (`sw1>`); default: the login password. */
  enablePassword?: string;
  /** How the switch's SSH host key is checked (before the password is sent). */
  hostKey: HostKeyCheck;
  /** Limit for connecting, logging in and each short command (inventory, setup): silence, in ms. */
  timeoutMs: number;
  /** Names from ssh.ts WEAK_ALGORITHMS the switch may also use (very old images). */
  weakAlgorithms?: readonly string[];
  /** The VRF (NX-OS `vrf`, Comware `vpn-instance`, EOS `cli vrf`, AOS-CX `vrf`) the image download goes out of; default per platform. */
  vrf?: string | null;
  /** Platforms driven over a REST API (AOS-CX): its HTTPS port and how its certificate is checked (as `hostKey` is for SSH). */
  rest?: { port: number; certificate: HostKeyCheck };
}

export interface SwitchInventory {
  model: string;
  version: string;
  /** Free bytes where the image goes; null where the platform cannot tell (or manages its own slots). */
  freeBytes: number | null;
}

export type SwitchHashAlgorithm = 'md5' | 'sha256' | 'sha512';

/** Hex digest lengths: a digest of another length is a parse fault, never a verdict. */
export const DIGEST_HEX_LENGTH: Readonly<Record<SwitchHashAlgorithm, number>> = { md5: 32, sha256: 64, sha512: 128 };

export interface SwitchDigest {
  algorithm: SwitchHashAlgorithm;
  /** Lower-case hex, of exactly DIGEST_HEX_LENGTH[algorithm] digits. */
  digest: string;
}

export interface PullOutcome {
  ok: boolean;
  /** One line from the switch's own output (redacted). */
  message: string;
  /** Bytes the switch says it copied, when its output says so. */
  bytes: number | null;
  /** Questions the switch asked and how they were answered ("declined to erase flash"). */
  notes?: string[];
}

/** How a switch can fetch an image from swfw: FTP (its CLI's copy) or HTTP(S) (a REST API's download). */
export type PullScheme = 'ftp' | 'http' | 'https';

export interface PullRequest {
  /**
   * The one-time grant's URL: `ftp://user:pass@host:port/path`, or for HTTP(S)
   * `https://host:port/grant/<token>/path` (the token is the secret; see `redactGrantToken`).
   */
  url: string;
  /** The name the image gets on the switch. */
  fileName: string;
  /** Limit for the whole pull, in ms. */
  timeoutMs: number;
  onProgress?: (bytes: number) => void;
}

export interface HashRequest {
  /** Size of the file to hash: the time limit follows it (on-box hashing reads flash at a few MB/s). */
  expectedBytes: number;
  /** Overrides the platform's assumed on-box hashing rate, bytes per second. */
  bytesPerSecond?: number;
}

/** How the SSH session was set up: for the journal and the report. */
export interface SessionFacts {
  /** Key exchange, host key, cipher and MAC the switch agreed to. */
  algorithms: { kex: string; serverHostKey: string; cipher: string; mac: string };
  authMethod: 'password' | 'keyboard-interactive';
  /** The switch's prompt as learned (`sw1#`). */
  prompt: string;
}

export interface SwitchSession {
  readonly facts: SessionFacts;
  inventory(): Promise<SwitchInventory>;
  /** Tells the switch to pull the URL onto its flash under `fileName`, and waits for the outcome. */
  pull(request: PullRequest): Promise<PullOutcome>;
  /**
   * The switch's own digest of a file on its flash, with the best algorithm it has (falling back
   * when it refuses one, e.g. `verify /sha512` on classic IOS); null when the file is missing or
   * the platform cannot hash. Throws SwitchOutputError when the output cannot be read (a cut
   * digest): that is a parse fault, never evidence about the bytes.
   */
  fileHash(fileName: string, request: HashRequest): Promise<SwitchDigest | null>;
  close(): Promise<void>;
}

export interface SwitchDriver {
  readonly name: string;
  /** The digest algorithms this platform can compute on its flash, best first. */
  readonly hashAlgorithms: readonly SwitchHashAlgorithm[];
  /** Protocols the platform's CLI can pull images with. */
  readonly protocols: readonly string[];
  /** The schemes of the URLs this driver hands the switch, best first (`['ftp']` for CLI drivers). */
  readonly pullSchemes: readonly PullScheme[];
  /** Why swfw cannot roll out to this platform (it fails its pre-check with this), or null. */
  readonly unsupported: string | null;
  /** Free bytes the pull of an image of `size` needs (a Comware .ipe bundle unpacks beside itself). */
  spaceNeeded(size: number, fileName: string): number;
  connect(target: SwitchTarget): Promise<SwitchSession>;
}

/** A switch whose output could not be understood: the message names the command and what was missing. */
export class SwitchOutputError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SwitchOutputError';
  }
}

/** A command that printed nothing for its time limit (or never ended). */
export class SwitchTimeoutError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SwitchTimeoutError';
  }
}

/** A switch that could not be reached or logged into. */
export class SwitchConnectError extends Error {
  constructor(
    message: string,
    /**
     * `host-key`: the switch showed another host key than the pinned one (never retried: it may be
     * an impostor). `algorithms`: no key exchange, host key, cipher or MAC in common.
     */
    readonly kind: 'timeout' | 'auth' | 'refused' | 'host-key' | 'algorithms' | 'privilege' | 'other',
  ) {
    super(message);
    this.name = 'SwitchConnectError';
  }
}

/**
 * Removes secrets from text bound for logs, reports or errors: the password of any
 * `scheme://user:password@` URL, and every literal secret given.
 */
export function redactSecrets(text: string, secrets: readonly string[] = []): string {
  let out = text.replace(/(\b[a-z][a-z0-9+.-]*:\/\/[^:/@\s]*:)[^@\s]*@/gi, '$1***@');
  for (const secret of secrets) if (secret.length > 0) out = out.split(secret).join('***');
  return out;
}

/** The token of an HTTP(S) grant URL (`/grant/<token>/…`), kept out of logs and messages; null for other URLs. */
export function grantToken(url: string): string | null {
  return /\/grant\/([^/?#]+)\//.exec(url)?.[1] ?? null;
}

/** `redactSecrets`, plus the token of any HTTP(S) grant URL in the text (`/grant/***\/…`). */
export function redactGrantToken(text: string, secrets: readonly string[] = []): string {
  return redactSecrets(text, secrets).replace(/\/grant\/[^/\s?#]+\//g, '/grant/***/');
}

export interface FtpUrlParts {
  host: string;
  port: number;
  user: string;
  password: string;
  /** Decoded, starting with `/`. */
  path: string;
}

/** Splits an ftp:// URL into the parts vendor commands want. */
export function ftpUrlParts(ftpUrl: string): FtpUrlParts {
  const url = new URL(ftpUrl);
  if (url.protocol !== 'ftp:') throw new Error('not an ftp:// URL');
  return {
    host: url.hostname.replace(/^\[(.*)\]$/, '$1'),
    port: url.port ? Number(url.port) : 21,
    user: decodeURIComponent(url.username),
    password: decodeURIComponent(url.password),
    path: decodeURIComponent(url.pathname),
  };
}

/** `host` or `[v6]`, with `:port` unless it is 21. */
export function ftpAuthority(parts: FtpUrlParts): string {
  const host = parts.host.includes(':') ? `[${parts.host}]` : parts.host;
  return parts.port === 21 ? host : `${host}:${parts.port}`;
}

/** `user:password@host[:port]`, as most switches take it in a copy URL. */
export function ftpCredentialsAuthority(parts: FtpUrlParts): string {
  return `${encodeURIComponent(parts.user)}:${encodeURIComponent(parts.password)}@${ftpAuthority(parts)}`;
}
