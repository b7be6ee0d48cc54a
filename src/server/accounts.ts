import { randomBytes, scrypt, timingSafeEqual, type ScryptOptions } from 'node:crypto';
import { Limits } from '../core/limits.js';
import { cidrContains } from '../core/address.js';
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
 * Decides logins. Unknown user, wrong password and a disallowed source address all return the
 * same `false` after the same scrypt work, so neither the reply nor its timing tells them apart.
 */
export class Authenticator {
  private readonly byUser: Map<string, ResolvedAccount>;

  private constructor(
    accounts: ResolvedAccount[],
    private readonly decoyHash: string,
  ) {
    this.byUser = new Map(accounts.map((a) => [a.account.user, a]));
  }

  static async create(accounts: ResolvedAccount[]): Promise<Authenticator> {
    return new Authenticator(accounts, await hashPassword(randomBytes(16).toString('hex')));
  }

  async check(user: string, password: string, peerAddress: string): Promise<boolean> {
    const entry = this.byUser.get(user);
    const matches = await verifyPassword(password, entry?.passwordHash ?? this.decoyHash);
    if (!entry || !matches) return false;
    const cidrs = entry.account.allowFrom;
    return cidrs.length === 0 || cidrs.some((cidr) => cidrContains(cidr, peerAddress));
  }
}
