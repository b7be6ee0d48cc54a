import type { ConfigProblem } from '../core/errors.js';
import { DIGEST_HEX_LENGTH, HASH_ALGORITHMS, isHashAlgorithm, type HashAlgorithm } from '../verify/algorithms.js';

/** The catalog's file name inside the images directory. */
export const CATALOG_FILE = 'catalog.json';
export const CATALOG_FORMAT = 'swfw-catalog';
export const CATALOG_VERSION = 1;

/** One image in the catalog. Digests are lowercase hex of the whole file, computed in one pass. */
export interface CatalogEntry {
  /** Path relative to the images directory, `/`-separated (e.g. `cisco/c9300-universalk9.17.09.04a.SPA.bin`). */
  readonly file: string;
  readonly platform: string;
  readonly version: string;
  readonly size: number;
  /** The file's mtime when it was hashed (ISO 8601, millisecond precision). */
  readonly mtime: string;
  readonly sha256: string;
  readonly md5: string;
  readonly sha512: string;
  /** Only when the vendor published one (Juniper): it was computed and cross-checked. */
  readonly sha1?: string;
  /** The algorithms whose vendor-published digest was given to `catalog add` and matched. */
  readonly vendorChecked: readonly HashAlgorithm[];
}

export interface Catalog {
  readonly format: typeof CATALOG_FORMAT;
  readonly version: typeof CATALOG_VERSION;
  readonly images: readonly CatalogEntry[];
}

const TOP_KEYS = ['format', 'version', 'images'] as const;
const ENTRY_KEYS = ['file', 'platform', 'version', 'size', 'mtime', 'sha256', 'md5', 'sha512', 'sha1', 'vendorChecked'] as const;
const LABEL = /^[A-Za-z0-9][A-Za-z0-9._+-]{0,63}$/;

/**
 * Why a catalog path is not acceptable, or null. Paths are relative, `/`-separated, with no `.`
 * or `..` segment, no backslash and no control character: a catalog entry can never name a file
 * outside the images directory.
 */
export function catalogPathProblem(file: string): string | null {
  if (file.length === 0) return 'must not be empty';
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f\\]/.test(file)) return 'must not contain control characters or backslashes';
  if (file.startsWith('/')) return 'must be relative to the images directory';
  if (file.split('/').some((s) => s === '' || s === '.' || s === '..')) return 'must not contain empty, "." or ".." segments';
  if (file === CATALOG_FILE) return `must not be the catalog itself (${CATALOG_FILE})`;
  return null;
}

/** Versions also take parentheses, as Cisco writes them: IOS `15.2(7)E8`, NX-OS `10.3(4a)`. */
const VERSION_LABEL = /^[A-Za-z0-9][A-Za-z0-9._+()-]{0,63}$/;

/** Why a platform or version label is not acceptable, or null. */
export function labelProblem(value: string, kind: 'platform' | 'version' = 'platform'): string | null {
  if (kind === 'version') return VERSION_LABEL.test(value) ? null : 'must be 1-64 characters of A-Z a-z 0-9 . _ + - ( ) (starting with a letter or digit)';
  return LABEL.test(value) ? null : 'must be 1-64 characters of A-Z a-z 0-9 . _ + - (starting with a letter or digit)';
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * Validates a parsed catalog. Every problem is reported, each with its path (`images[2].sha256`),
 * and unknown keys are problems too (vsftpd's rule: a typo must not be silently ignored).
 * Returns the catalog only when there is no problem.
 */
export function validateCatalog(raw: unknown): { catalog: Catalog | null; problems: ConfigProblem[] } {
  const problems: ConfigProblem[] = [];
  const problem = (path: string, message: string) => problems.push({ path, message });
  if (!isObject(raw)) {
    problem('(root)', 'must be a JSON object with format, version and images');
    return { catalog: null, problems };
  }
  for (const key of Object.keys(raw)) {
    if (!(TOP_KEYS as readonly string[]).includes(key)) problem(key, `unknown key (known: ${TOP_KEYS.join(', ')})`);
  }
  if (raw['format'] !== CATALOG_FORMAT) problem('format', `must be "${CATALOG_FORMAT}"`);
  if (raw['version'] !== CATALOG_VERSION) problem('version', `must be ${CATALOG_VERSION} (this swfw reads catalog version ${CATALOG_VERSION})`);
  const images: CatalogEntry[] = [];
  if (!Array.isArray(raw['images'])) problem('images', 'must be a list of images');
  else {
    const seen = new Map<string, number>();
    raw['images'].forEach((item: unknown, index) => {
      const path = `images[${index}]`;
      if (!isObject(item)) return problem(path, 'must be an object');
      const before = problems.length;
      for (const key of Object.keys(item)) {
        if (!(ENTRY_KEYS as readonly string[]).includes(key)) problem(`${path}.${key}`, `unknown key (known: ${ENTRY_KEYS.join(', ')})`);
      }
      const { file, platform, version, size, mtime, vendorChecked } = item;
      if (typeof file !== 'string') problem(`${path}.file`, 'must be a path relative to the images directory');
      else {
        const why = catalogPathProblem(file);
        if (why) problem(`${path}.file`, why);
        else if (seen.has(file)) problem(`${path}.file`, `duplicate of images[${seen.get(file)}] ("${file}")`);
        else seen.set(file, index);
      }
      for (const [key, value] of [
        ['platform', platform],
        ['version', version],
      ] as const) {
        if (typeof value !== 'string') problem(`${path}.${key}`, 'must be a string');
        else {
          const why = labelProblem(value, key);
          if (why) problem(`${path}.${key}`, why);
        }
      }
      if (typeof size !== 'number' || !Number.isSafeInteger(size) || size < 0) problem(`${path}.size`, 'must be a whole number of bytes');
      if (typeof mtime !== 'string' || !/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,3})?Z$/.test(mtime) || Number.isNaN(Date.parse(mtime))) {
        problem(`${path}.mtime`, 'must be an ISO 8601 UTC time such as 2025-01-31T12:00:00.000Z');
      }
      for (const algorithm of HASH_ALGORITHMS) {
        const value = item[algorithm];
        if (value === undefined && algorithm === 'sha1') continue;
        const length = DIGEST_HEX_LENGTH[algorithm];
        if (typeof value !== 'string' || value.length !== length || !/^[0-9a-f]+$/.test(value)) {
          problem(`${path}.${algorithm}`, `must be ${length} lowercase hex digits`);
        }
      }
      if (!Array.isArray(vendorChecked) || !vendorChecked.every((a) => typeof a === 'string' && isHashAlgorithm(a))) {
        problem(`${path}.vendorChecked`, `must be a list of algorithms (${HASH_ALGORITHMS.join(', ')})`);
      } else if (vendorChecked.includes('sha1') && item['sha1'] === undefined) {
        problem(`${path}.vendorChecked`, 'lists sha1 but the entry has no sha1');
      }
      if (problems.length === before) images.push(Object.freeze({ ...(item as unknown as CatalogEntry) }));
    });
  }
  if (problems.length > 0) return { catalog: null, problems };
  return { catalog: Object.freeze({ format: CATALOG_FORMAT, version: CATALOG_VERSION, images: Object.freeze(images) }), problems };
}

/** The catalog as written to disk: images sorted by path, keys in a fixed order, one trailing newline. */
export function serializeCatalog(catalog: Catalog): string {
  const images = [...catalog.images]
    .sort((a, b) => (a.file < b.file ? -1 : a.file > b.file ? 1 : 0))
    .map((e) => {
      const ordered: Record<string, unknown> = {};
      for (const key of ENTRY_KEYS) if (e[key] !== undefined) ordered[key] = e[key];
      return ordered;
    });
  return `${JSON.stringify({ format: CATALOG_FORMAT, version: CATALOG_VERSION, images }, null, 2)}\n`;
}
