/**
 * The digest algorithms vendors publish for firmware images: Cisco MD5 + SHA-512, Dell SHA-256,
 * Juniper MD5 / SHA-1 / SHA-256. SHA-256 is the one every record of ours carries (the server's
 * audit of sent bytes is SHA-256), so it is always computed.
 */
export const HASH_ALGORITHMS = ['sha256', 'md5', 'sha512', 'sha1'] as const;
export type HashAlgorithm = (typeof HASH_ALGORITHMS)[number];

/** Hex digits in each algorithm's digest. */
export const DIGEST_HEX_LENGTH: Readonly<Record<HashAlgorithm, number>> = {
  md5: 32,
  sha1: 40,
  sha256: 64,
  sha512: 128,
};

/**
 * Measured cost in seconds per GiB on one core here (Node crypto, SHA-NI): it balances algorithms
 * across hash workers and tells which extras are expensive to compute by default.
 */
export const HASH_SECONDS_PER_GIB: Readonly<Record<HashAlgorithm, number>> = {
  sha256: 0.72,
  sha1: 0.71,
  md5: 1.7,
  sha512: 2.03,
};

/** Hex digests by algorithm; an algorithm that was not computed is absent. */
export type Digests = Partial<Record<HashAlgorithm, string>>;

export function isHashAlgorithm(name: string): name is HashAlgorithm {
  return (HASH_ALGORITHMS as readonly string[]).includes(name);
}

/**
 * Normalizes a published digest (case, surrounding space, an optional `algo:` prefix as some vendor
 * pages print). Returns the lowercase hex, or an error message that says what is wrong.
 */
export function parseHexDigest(algorithm: HashAlgorithm, text: string): string | { problem: string } {
  const trimmed = text.trim().toLowerCase().replace(new RegExp(`^${algorithm}[:=]`), '');
  const length = DIGEST_HEX_LENGTH[algorithm];
  if (!/^[0-9a-f]+$/.test(trimmed)) return { problem: `${algorithm} must be hex digits (0-9, a-f)` };
  if (trimmed.length !== length) return { problem: `${algorithm} must be ${length} hex digits, got ${trimmed.length}` };
  return trimmed;
}

/** The algorithms in a canonical order without duplicates, SHA-256 first (always present). */
export function withSha256(algorithms: Iterable<HashAlgorithm>): HashAlgorithm[] {
  const wanted = new Set<HashAlgorithm>(['sha256', ...algorithms]);
  return HASH_ALGORITHMS.filter((a) => wanted.has(a));
}

/** Algorithms present in both digest sets whose values differ. */
export function mismatchedAlgorithms(expected: Digests, actual: Digests): HashAlgorithm[] {
  return HASH_ALGORITHMS.filter((a) => expected[a] !== undefined && actual[a] !== undefined && expected[a] !== actual[a]);
}

/** Algorithms present in both digest sets: the ones a comparison can use. */
export function comparableAlgorithms(expected: Digests, actual: Digests): HashAlgorithm[] {
  return HASH_ALGORITHMS.filter((a) => expected[a] !== undefined && actual[a] !== undefined);
}
