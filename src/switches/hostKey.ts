/**
 * SSH host key fingerprints in OpenSSH's format (`SHA256:` + unpadded base64 of the SHA-256 of the
 * key blob, as `ssh-keygen -lf` prints), and the check a connection makes against them.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { Limits } from '../core/limits.js';

const FINGERPRINT_PREFIX = 'SHA256:';
const BASE64_UNPADDED = /^[A-Za-z0-9+/]+$/;

/** How a connection checks the switch's host key: against a pinned fingerprint, or trusting (and reporting) the first one seen. */
/** `trustOnFirstUse` records the key (durably) before it resolves; the login waits for it. */
export type HostKeyCheck = { pinned: string } | { trustOnFirstUse: (fingerprint: string) => void | Promise<void> };

/** The OpenSSH SHA256 fingerprint of a raw (wire-format) public key. */
export function hostKeyFingerprint(rawKey: Buffer): string {
  return FINGERPRINT_PREFIX + createHash('sha256').update(rawKey).digest('base64').replace(/=+$/, '');
}

/** Why `text` is not a `SHA256:<base64>` fingerprint, or null when it is one. */
export function fingerprintProblem(text: string): string | null {
  const hint = 'must be an OpenSSH SHA256 fingerprint, "SHA256:" and 43 base64 characters (ssh-keygen -lf)';
  if (!text.startsWith(FINGERPRINT_PREFIX)) return hint;
  const b64 = text.slice(FINGERPRINT_PREFIX.length);
  if (!BASE64_UNPADDED.test(b64)) return hint;
  if (Buffer.from(b64, 'base64').length !== Limits.HOST_KEY_FINGERPRINT_BYTES || b64.length !== Math.ceil((Limits.HOST_KEY_FINGERPRINT_BYTES * 4) / 3)) return hint;
  return null;
}

/** Compares two fingerprints in constant time (for equal lengths; a length difference is no secret). */
export function fingerprintsEqual(a: string, b: string): boolean {
  const x = Buffer.from(a, 'utf8');
  const y = Buffer.from(b, 'utf8');
  return x.length === y.length && timingSafeEqual(x, y);
}
