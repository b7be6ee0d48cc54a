import type { EventEmitter } from 'node:events';
import type { SecureContext } from 'node:tls';
import type { ServerConfig } from '../config/schema.js';
import type { Logger } from '../core/logger.js';
import type { Authenticator } from './accounts.js';
import type { RepositoryJail } from './jail.js';
import type { ImageGuard } from './imageGuard.js';
import type { PassivePorts } from './passivePorts.js';
import type { FirmwareServerEvents } from './server.js';
import type { BufferPool, SentBytesHashing } from './sentBytesHash.js';

/**
 * One audit record per RETR, or per HTTP(S) GET that sent a body: what was sent, to whom, and
 * the SHA-256 of the bytes sent.
 */
export interface TransferRecord {
  /** How the bytes went out: an FTP(S) RETR, or a GET over plain HTTP or HTTPS. */
  protocol: 'ftp' | 'http' | 'https';
  /** FTP: the control session's id; HTTP(S): the request's id. */
  session: string;
  client: string;
  user: string;
  path: string;
  /** Bytes the file had to send from `offset` when the transfer started (HTTP: the range's length). */
  expectedBytes: number;
  bytes: number;
  durationMs: number;
  /** FTP: the REST offset; HTTP: the first byte of the Range (0 without one). */
  offset: number;
  /** The server's port of the data connection (inside the passive range, or null without one; HTTP: null). */
  dataPort: number | null;
  /**
   * FTP: the final reply (226 complete, 426 aborted, 425 no data connection, 451 a disk read
   * error). HTTP: the status sent (200, or 206 for a range); `result` says whether the body ended.
   */
  code: number;
  result: 'complete' | 'aborted';
  reason?: string;
  /**
   * SHA-256 of exactly the bytes written to the data connection; null if hashing is off, or if the
   * file changed on disk during the transfer (`reason: 'file-changed'`).
   */
  sha256: string | null;
  /**
   * `stream`: hashed from this transfer's bytes as they were sent; `version`: this whole transfer
   * sent a file version (fstat identity unchanged from open to the last byte) that an earlier whole
   * transfer hashed on the stream (`hashSentBytes: per-version`); null with no digest.
   */
  sha256Basis?: 'stream' | 'version' | null;
  /**
   * FTP: the session's commands since its previous transfer, up to this RETR (the first: `USER sw-…`, `PASS ***`, `TYPE I`, `PASV`, …; at most AUDIT_COMMANDS).
   * HTTP: the request line with a grant's password replaced by `***`, then the Range, If-Range
   * and User-Agent headers it had (never Authorization).
   */
  commands: string[];
}

/** Progress of a running transfer, for rollout progress displays. */
export interface TransferProgress {
  session: string;
  client: string;
  /** The account logged in (a one-time account names one switch). */
  user: string;
  path: string;
  bytes: number;
  expectedBytes: number;
}

/** Everything a session needs from its server; built once at start. */
export interface ServerContext {
  readonly config: ServerConfig;
  readonly jail: RepositoryJail;
  /** The catalog's verdict per image: drifted images are refused. */
  readonly guard: ImageGuard;
  readonly ports: PassivePorts;
  readonly auth: Authenticator;
  readonly secureContext: SecureContext | null;
  readonly pool: BufferPool;
  /** Hashers for the audit's SHA-256 of sent bytes (none when hashSentBytes is off). */
  readonly hashing: SentBytesHashing;
  readonly logger: Logger;
  /** The server's events (FirmwareServerEvents): transfers, failed logins, catalog refusals. */
  readonly events: EventEmitter<FirmwareServerEvents>;
  /** True once shutdown started: new PASV and logins are refused with 421. */
  isShuttingDown(): boolean;
}
