import { createHash, createHmac, randomBytes, scrypt, timingSafeEqual, type ScryptOptions } from 'node:crypto';
import { Limits } from '../core/limits.js';
import { canonicalAddress, cidrContains, parseCidr, type Cidr } from '../core/address.js';
import { PASSWORD_HASH_FORMAT, type Account } from '../config/schema.js';

function scryptAsync(password: string, salt: Buffer, keyLength: number, options: ScryptOptions): Promise<Buffer> {
  return new Promise((resolve, reject) =>
    scrypt(password, salt, keyLength, options, (err, key) => (err ? reject(err) : resolve(key))),
  );
}

/** scrypt needs 128·N·r bytes; the default maxmem (32 MiB) is exactly too small for N=2^15, r=8. */
const scryptMaxMem = (n: number, r: number) => 128 * n * r * 2;

/** Hashes a password into the config format `scrypt$N$r$p$salt$key` (what `swfw hash-password` prints). */
export async function hashPassword(password: string): Promise<string> {
  const salt = randomBytes(Limits.SCRYPT_SALT_BYTES);
  const { SCRYPT_N: N, SCRYPT_R: r, SCRYPT_P: p } = Limits;
  const key = await scryptAsync(password, salt, Limits.SCRYPT_KEY_BYTES, { N, r, p, maxmem: scryptMaxMem(N, r) });
  return `scrypt$${N}$${r}$${p}$${salt.toString('base64')}$${key.toString('base64')}`;
}

/** Checks a password against a stored hash in constant time. A malformed hash never matches. */
export async function verifyPassword(password: string, stored: string): Promise<boolean> {
  const match = PASSWORD_HASH_FORMAT.exec(stored);
  if (!match) return false;
  const [N, r, p] = [Number(match[1]), Number(match[2]), Number(match[3])];
  const salt = Buffer.from(match[4]!, 'base64');
  const expected = Buffer.from(match[5]!, 'base64');
  const key = await scryptAsync(password, salt, expected.length, { N, r, p, maxmem: scryptMaxMem(N, r) });
  return timingSafeEqual(key, expected);
}

/** Accounts with their password hashes resolved (env passwords hashed at start, never kept). */
export interface ResolvedAccount {
  readonly account: Account;
  readonly passwordHash: string;
}

/**
 * A one-time account for one switch in a rollout: read-only, valid only for one image, only from
 * the switch's own address, only until it expires or is revoked. No standing password ever ends
 * up in a switch's command history or config.
 */
export interface OneTimeGrant {
  readonly user: string;
  /** SHA-256 of the random token: the token has 128 bits of entropy, so no slow hash is needed. */
  readonly tokenDigest: Buffer;
  /** Where the switch's FTP connections may come from: its address, or a block (`ftpSource`). */
  readonly source: Cidr;
  /** The virtual path (e.g. /cisco/c9300.bin) that is the only file this account may read. */
  readonly imagePath: string;
  readonly expiresAt: number;
}

/** Who logged in, and the one path they are limited to (one-time grants), if any. */
export interface Login {
  readonly user: string;
  readonly onlyPath: string | null;
}

const digestToken = (token: string) => createHash('sha256').update(token).digest();

/**
 * A stored-hash string no password matches, with the real cost parameters: an unknown user costs
 * the same scrypt work as a known one. Its key is random bytes, so nothing needs computing here.
 */
function decoyHash(): string {
  const { SCRYPT_N: N, SCRYPT_R: r, SCRYPT_P: p } = Limits;
  const salt = randomBytes(Limits.SCRYPT_SALT_BYTES).toString('base64');
  return `scrypt$${N}$${r}$${p}$${salt}$${randomBytes(Limits.SCRYPT_KEY_BYTES).toString('base64')}`;
}

/**
 * Runs scrypt verifications one at a time. Each needs 32 MiB; unbounded, a burst of logins (or an
 * attacker's failed ones) would cost 32 MiB each at once. Queued, memory stays flat and failed
 * logins are already delayed a second each.
 */
class ScryptQueue {
  private tail: Promise<unknown> = Promise.resolve();
  run<T>(task: () => Promise<T>): Promise<T> {
    const result = this.tail.then(task, task);
    this.tail = result.catch(() => {});
    return result;
  }
}

/**
 * Decides logins. Unknown user, wrong password and a disallowed source address all return null
 * after the same scrypt work, so neither the reply nor its timing tells them apart.
 */
export class Authenticator {
  private readonly byUser: Map<string, ResolvedAccount>;
  private readonly grants = new Map<string, OneTimeGrant>();
  private readonly scryptQueue = new ScryptQueue();
  /**
   * Credentials that passed scrypt recently, as an HMAC under a per-process random key. A fleet
   * logs in with the same account password again and again; each repeat then costs an HMAC
   * instead of 150 ms of CPU and 32 MiB. Failed logins never use or fill the cache.
   */
  private readonly verified = new Map<string, { mac: Buffer; at: number }>();
  private readonly cacheKey = randomBytes(32);

  private constructor(
    accounts: ResolvedAccount[],
    private readonly decoyHash: string,
  ) {
    this.byUser = new Map(accounts.map((a) => [a.account.user, a]));
  }

  static async create(accounts: ResolvedAccount[]): Promise<Authenticator> {
    return new Authenticator(accounts, decoyHash());
  }

  /**
   * Creates a one-time account; returns its user name and password (shown once, never logged).
   * `source` is an address or a CIDR block; throws on anything else.
   */
  grant(options: { source: string; imagePath: string; expiresAt: number }): { user: string; password: string } {
    const source = parseCidr(canonicalAddress(options.source));
    if (typeof source === 'string') throw new Error(`one-time access: ${source}`);
    let user: string;
    do user = `sw-${randomBytes(6).toString('hex')}`;
    while (this.byUser.has(user) || this.grants.has(user));
    const password = randomBytes(16).toString('base64url');
    this.grants.set(user, {
      user,
      tokenDigest: digestToken(password),
      source,
      imagePath: options.imagePath,
      expiresAt: options.expiresAt,
    });
    return { user, password };
  }

  revoke(user: string): void {
    this.grants.delete(user);
  }

  /**
   * Checks one-time grants only (HTTP grant URLs): a live grant named `user`, whose token is
   * `password`, used from inside its source. Costs one SHA-256, never scrypt, so a flood of
   * made-up tokens costs nothing; any other user name is null at once. Returns the grant's login
   * (limited to its image path) or null.
   */
  checkGrant(user: string, password: string, peerAddress: string, now = Date.now()): Login | null {
    const grant = this.grants.get(user);
    if (!grant) return null;
    if (grant.expiresAt <= now) {
      this.grants.delete(user);
      return null;
    }
    const valid = timingSafeEqual(digestToken(password), grant.tokenDigest) && cidrContains(grant.source, canonicalAddress(peerAddress));
    return valid ? { user, onlyPath: grant.imagePath } : null;
  }

  async check(user: string, password: string, peerAddress: string, now = Date.now()): Promise<Login | null> {
    const grant = this.grants.get(user);
    if (grant) {
      if (grant.expiresAt <= now) this.grants.delete(user);
      const valid =
        timingSafeEqual(digestToken(password), grant.tokenDigest) && grant.expiresAt > now && cidrContains(grant.source, canonicalAddress(peerAddress));
      return valid ? { user, onlyPath: grant.imagePath } : null;
    }
    const entry = this.byUser.get(user);
    const mac = createHmac('sha256', this.cacheKey).update(`${entry?.passwordHash ?? ''}\0${password}`).digest();
    const cached = this.verified.get(user);
    let matches = cached !== undefined && now - cached.at < Limits.VERIFIED_CREDENTIAL_CACHE_MS && timingSafeEqual(cached.mac, mac);
    if (!matches) {
      matches = await this.scryptQueue.run(() => verifyPassword(password, entry?.passwordHash ?? this.decoyHash));
      if (entry && matches) this.verified.set(user, { mac, at: now });
    }
    if (!entry || !matches) return null;
    const cidrs = entry.account.allowFrom;
    const allowed = cidrs.length === 0 || cidrs.some((cidr) => cidrContains(cidr, peerAddress));
    return allowed ? { user, onlyPath: null } : null;
  }
}
