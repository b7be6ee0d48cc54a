import { isTransientReply } from '../core/replyCodes.js';

/**
 * How a failed attempt is handled:
 * - `transient`: retry after a backoff, resuming from the bytes kept (4yz replies per RFC 959
 *   §4.2 — 421, 425, 426, 450 —, socket errors, timeouts, a short transfer);
 * - `permanent`: fail at once (5yz replies such as 530 bad login and 550 missing file, a refused
 *   PASV host): retrying cannot help and would only hammer the server;
 * - `local`: our own disk or hash worker failed: fail at once, this is not the network's fault.
 */
export type FailureKind = 'transient' | 'permanent' | 'local';

export interface Failure {
  kind: FailureKind;
  /** The FTP reply code, when a reply caused the failure. */
  replyCode: number | null;
  reason: string;
}

/** An FTP reply that failed a command (wraps the library's error so callers never import it). */
export class FtpReplyFailure extends Error {
  constructor(
    readonly replyCode: number,
    message: string,
  ) {
    super(message);
    this.name = 'FtpReplyFailure';
  }
}

/** The PASV reply pointed at a host other than the control connection's peer (RFC 2577 §3: bounce/theft). */
export class PassiveHostRefused extends Error {
  constructor(
    readonly passiveHost: string,
    readonly controlHost: string,
  ) {
    super(`PASV reply points at ${passiveHost}, not the control host ${controlHost}: refused (use --epsv if the server is behind NAT)`);
    this.name = 'PassiveHostRefused';
  }
}

/** The transfer ended (226 or a closed data connection) with fewer bytes than SIZE announced. */
export class ShortTransferError extends Error {
  constructor(
    readonly bytes: number,
    readonly expected: number,
  ) {
    super(`transfer ended after ${bytes} of ${expected} bytes`);
    this.name = 'ShortTransferError';
  }
}

/** Our own side failed: writing the temp file, or a hash worker. */
export class LocalFailure extends Error {
  constructor(
    message: string,
    cause: unknown,
  ) {
    super(message, { cause });
    this.name = 'LocalFailure';
  }
}

/** Socket-level errno values that a new connection may not hit again. */
const TRANSIENT_ERRNO: ReadonlySet<string> = new Set([
  'ECONNRESET',
  'ECONNREFUSED',
  'ECONNABORTED',
  'EPIPE',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENETDOWN',
  'EAI_AGAIN',
]);

/** Certificate verification errors (OpenSSL's X509_V_ERR names as Node reports them) and TLS refusals. */
const TLS_VERIFY_CODE = /^(ERR_TLS_|ERR_SSL_)|CERT|UNABLE_TO_|SELF_SIGNED|DEPTH_ZERO|INVALID_PURPOSE|HOSTNAME_MISMATCH|PATH_LENGTH_EXCEEDED|INVALID_CA|INVALID_NON_CA/;

export function classifyFailure(err: unknown): Failure {
  const reason = err instanceof Error ? err.message : String(err);
  if (err instanceof LocalFailure) return { kind: 'local', replyCode: null, reason };
  if (err instanceof PassiveHostRefused) return { kind: 'permanent', replyCode: null, reason };
  if (err instanceof ShortTransferError) return { kind: 'transient', replyCode: null, reason };
  if (err instanceof FtpReplyFailure) {
    return { kind: isTransientReply(err.replyCode) ? 'transient' : 'permanent', replyCode: err.replyCode, reason };
  }
  const code = (err as NodeJS.ErrnoException | null)?.code;
  if (typeof code === 'string' && TRANSIENT_ERRNO.has(code)) return { kind: 'transient', replyCode: null, reason };
  if (code === 'ENOTFOUND') return { kind: 'permanent', replyCode: null, reason };
  // A certificate the client does not trust will not become trusted on retry: every OpenSSL
  // verification failure (UNABLE_TO_VERIFY_LEAF_SIGNATURE, CERT_HAS_EXPIRED, …) and Node's own
  // TLS refusals (ERR_TLS_CERT_ALTNAME_INVALID, ERR_SSL_…).
  if (typeof code === 'string' && TLS_VERIFY_CODE.test(code)) return { kind: 'permanent', replyCode: null, reason };
  // Everything else comes from the FTP layer's sockets: timeouts, "server closed connection",
  // a data connection reset. A new connection may well succeed.
  return { kind: 'transient', replyCode: null, reason };
}

export interface BackoffPolicy {
  baseMs: number;
  maxMs: number;
}

/**
 * Delay before retry number `failure` (1 = first retry): exponential, capped, with "equal jitter"
 * (half fixed, half random), so many switches that failed together do not retry in lockstep yet
 * each still waits at least half the nominal delay. `random` returns [0, 1).
 */
export function backoffDelay(failure: number, policy: BackoffPolicy, random: () => number = Math.random): number {
  const exponent = Math.max(0, Math.min(failure - 1, 30));
  const nominal = Math.min(policy.maxMs, policy.baseMs * 2 ** exponent);
  return Math.round(nominal / 2 + random() * (nominal / 2));
}
