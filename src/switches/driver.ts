/**
 * The contract between the rollout and a switch: a driver logs into a switch (SSH) and makes the
 * switch itself pull an image over FTP, with the vendor's own commands. Drivers never log secrets;
 * every command or URL they log goes through `redactSecrets` first.
 */
import type { HostKeyCheck } from './hostKey.js';

export interface SwitchTarget {
  host: string;
  port: number;
  username: string;
  password: string;
  /** How the switch's SSH host key is checked (before the password is sent). */
  hostKey: HostKeyCheck;
  /** Limit for connecting and for each short command (inventory, hash). */
  timeoutMs: number;
  /** Limit for the pull command itself (default DEFAULT_PULL_TIMEOUT_MS). */
  pullTimeoutMs?: number;
}

export interface SwitchInventory {
  model: string;
  version: string;
  /** Free bytes on the flash the image goes to; null where the platform manages its own partitions (Brocade FOS). */
  freeBytes: number | null;
}

export type SwitchHashAlgorithm = 'md5' | 'sha256' | 'sha512';

export interface PullOutcome {
  ok: boolean;
  /** One line from the switch's own output (redacted). */
  message: string;
  /** Bytes the switch says it copied, when its output says so. */
  bytes: number | null;
}

export interface SwitchSession {
  inventory(): Promise<SwitchInventory>;
  /** Tells the switch to pull ftpUrl (ftp://user:pass@host:port/path) into its flash as fileName. */
  pull(ftpUrl: string, fileName: string, onProgress?: (bytes: number) => void): Promise<PullOutcome>;
  /** The switch's own digest of a file on its flash; null when the file is missing or the platform cannot hash it. */
  fileHash(fileName: string, algorithm: SwitchHashAlgorithm): Promise<string | null>;
  close(): Promise<void>;
}

export interface SwitchDriver {
  readonly name: string;
  /** The digest algorithms this platform can compute on its flash, best first. */
  readonly hashAlgorithms: readonly SwitchHashAlgorithm[];
  connect(target: SwitchTarget): Promise<SwitchSession>;
}

/** A switch whose output could not be understood: the message names the command and what was missing. */
export class SwitchOutputError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SwitchOutputError';
  }
}

/** A switch that could not be reached or logged into. */
export class SwitchConnectError extends Error {
  constructor(
    message: string,
    /** `host-key`: the switch showed another host key than the pinned one (never retried: it may be an impostor). */
    readonly kind: 'timeout' | 'auth' | 'refused' | 'host-key' | 'other',
  ) {
    super(message);
    this.name = 'SwitchConnectError';
  }
}

export const DEFAULT_PULL_TIMEOUT_MS = 30 * 60 * 1000;

/**
 * Removes secrets from text bound for logs, reports or errors: the password of any
 * `scheme://user:password@` URL, and every literal secret given.
 */
export function redactSecrets(text: string, secrets: readonly string[] = []): string {
  let out = text.replace(/(\b[a-z][a-z0-9+.-]*:\/\/[^:/@\s]*:)[^@\s]*@/gi, '$1***@');
  for (const secret of secrets) if (secret.length > 0) out = out.split(secret).join('***');
  return out;
}

/** Splits an ftp:// URL into the parts vendor commands want (Brocade takes them comma-separated). */
export function ftpUrlParts(ftpUrl: string): { host: string; port: number; user: string; password: string; path: string } {
  const url = new URL(ftpUrl);
  if (url.protocol !== 'ftp:') throw new Error('not an ftp:// URL');
  return {
    host: url.hostname,
    port: url.port ? Number(url.port) : 21,
    user: decodeURIComponent(url.username),
    password: decodeURIComponent(url.password),
    path: decodeURIComponent(url.pathname),
  };
}
