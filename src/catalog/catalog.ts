import { readFile, readdir, realpath, stat } from 'node:fs/promises';
import { isAbsolute, join, relative, resolve, sep } from 'node:path';
import { ConfigError } from '../core/errors.js';
import { writeFileAtomic } from '../core/durableFile.js';
import { HASH_ALGORITHMS, mismatchedAlgorithms, type Digests, type HashAlgorithm } from '../verify/algorithms.js';
import { hashFile } from '../verify/hashFile.js';
import {
  CATALOG_FILE,
  CATALOG_FORMAT,
  CATALOG_VERSION,
  catalogPathProblem,
  labelProblem,
  serializeCatalog,
  validateCatalog,
  type Catalog,
  type CatalogEntry,
} from './schema.js';

/** A request the catalog cannot carry out as asked (bad path, unknown image): a usage error. */
export class CatalogError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CatalogError';
  }
}

export const EMPTY_CATALOG: Catalog = Object.freeze({ format: CATALOG_FORMAT, version: CATALOG_VERSION, images: Object.freeze([]) });

export function catalogFilePath(imagesDir: string): string {
  return join(imagesDir, CATALOG_FILE);
}

/** The file's mtime as the catalog stores it (ISO 8601, whole milliseconds). */
export function catalogMtime(mtimeMs: number): string {
  return new Date(Math.floor(mtimeMs)).toISOString();
}

/**
 * Loads and validates `<imagesDir>/catalog.json`. A missing file is an empty catalog when
 * `missingOk`; an invalid one throws ConfigError with one problem per line, each with its path.
 */
export async function loadCatalog(imagesDir: string, options: { missingOk?: boolean } = {}): Promise<Catalog> {
  const file = catalogFilePath(imagesDir);
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' && options.missingOk) return EMPTY_CATALOG;
    throw new ConfigError([{ path: file, message: code === 'ENOENT' ? 'catalog not found (create it with `swfw catalog add`)' : `cannot read (${code ?? 'error'})` }]);
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new ConfigError([{ path: file, message: `is not valid JSON: ${(err as Error).message}` }]);
  }
  const { catalog, problems } = validateCatalog(raw);
  if (!catalog) throw new ConfigError(problems.map((p) => ({ path: `${file}: ${p.path}`, message: p.message })));
  return catalog;
}

/** Writes the catalog atomically and durably (temp file, fsync, rename, directory fsync). */
export async function saveCatalog(imagesDir: string, catalog: Catalog): Promise<void> {
  await writeFileAtomic(catalogFilePath(imagesDir), serializeCatalog(catalog));
}

/**
 * Resolves FILE (as given on the command line: relative to the cwd, or to the images directory)
 * to its catalog path. The real path must lie inside the images directory: a symlink that leads
 * out of it is refused, since the server would refuse to serve it too.
 */
export async function resolveImagePath(imagesDir: string, file: string, cwd = process.cwd()): Promise<{ catalogPath: string; realPath: string }> {
  const root = await realpath(imagesDir).catch(() => {
    throw new CatalogError(`images directory ${imagesDir} does not exist`);
  });
  const candidates = isAbsolute(file) ? [file] : [resolve(cwd, file), resolve(imagesDir, file)];
  for (const candidate of candidates) {
    const real = await realpath(candidate).catch(() => null);
    if (!real) continue;
    if (!real.startsWith(root + sep)) continue;
    const catalogPath = relative(root, real).split(sep).join('/');
    const problem = catalogPathProblem(catalogPath);
    if (problem) throw new CatalogError(`${file}: ${problem}`);
    return { catalogPath, realPath: real };
  }
  const exists = await Promise.all(candidates.map((c) => stat(c).then(() => true, () => false)));
  if (exists.some(Boolean)) throw new CatalogError(`${file} is outside the images directory ${imagesDir}: copy it in first`);
  throw new CatalogError(`${file} not found (looked relative to the current directory and to ${imagesDir})`);
}

/** Finds an image by its catalog path, or by a file name that matches exactly one entry. */
export function findImage(catalog: Catalog, name: string): CatalogEntry | null {
  const normalized = name.replace(/^\/+/, '');
  const exact = catalog.images.find((e) => e.file === normalized);
  if (exact) return exact;
  const base = normalized.split('/').pop()!;
  const byName = catalog.images.filter((e) => e.file.split('/').pop() === base);
  return byName.length === 1 ? byName[0]! : null;
}

/** The digests of a catalog entry, for comparisons. */
export function entryDigests(entry: CatalogEntry): Digests {
  const digests: Digests = { sha256: entry.sha256, md5: entry.md5, sha512: entry.sha512 };
  if (entry.sha1) digests.sha1 = entry.sha1;
  return digests;
}

export interface AddImageOptions {
  platform: string;
  version: string;
  /** Digests the vendor published; each is cross-checked against the file. */
  vendor: Digests;
  cwd?: string;
}

export type AddImageResult =
  | { added: true; entry: CatalogEntry; replaced: boolean }
  | { added: false; entry: CatalogEntry; mismatched: HashAlgorithm[] };

/**
 * `catalog add`: hashes the file once with SHA-256, MD5, SHA-512 (and SHA-1 when the vendor gave
 * one), cross-checks every vendor-published digest, and only if all match writes the entry.
 */
export async function addImage(imagesDir: string, file: string, options: AddImageOptions): Promise<AddImageResult> {
  for (const [name, value] of [
    ['platform', options.platform],
    ['version', options.version],
  ] as const) {
    const problem = labelProblem(value, name);
    if (problem) throw new CatalogError(`--${name} ${problem}`);
  }
  const catalog = await loadCatalog(imagesDir, { missingOk: true });
  const { catalogPath, realPath } = await resolveImagePath(imagesDir, file, options.cwd);
  const algorithms: HashAlgorithm[] = ['sha256', 'md5', 'sha512'];
  if (options.vendor.sha1) algorithms.push('sha1');
  const { size, mtimeMs, digests } = await hashFile(realPath, algorithms);
  const vendorChecked = HASH_ALGORITHMS.filter((a) => options.vendor[a] !== undefined);
  const entry: CatalogEntry = {
    file: catalogPath,
    platform: options.platform,
    version: options.version,
    size,
    mtime: catalogMtime(mtimeMs),
    sha256: digests.sha256!,
    md5: digests.md5!,
    sha512: digests.sha512!,
    ...(digests.sha1 ? { sha1: digests.sha1 } : {}),
    vendorChecked,
  };
  const mismatched = mismatchedAlgorithms(options.vendor, digests);
  if (mismatched.length > 0) return { added: false, entry, mismatched };
  const replaced = catalog.images.some((e) => e.file === catalogPath);
  await saveCatalog(imagesDir, { ...catalog, images: [...catalog.images.filter((e) => e.file !== catalogPath), entry] });
  return { added: true, entry, replaced };
}

export type CheckState = 'ok' | 'drift' | 'missing';

export interface CheckResult {
  file: string;
  state: CheckState;
  /** What drifted: `size 100 -> 99`, `sha256`, ... (empty when ok). */
  changes: string[];
  /** Set when the content is unchanged but the mtime differs (a copy or a checkout): not drift. */
  mtimeChanged: boolean;
}

export interface CheckReport {
  results: CheckResult[];
  /** Files in the images directory that no catalog entry names. */
  uncatalogued: string[];
  /** True when every image is present and unchanged. */
  ok: boolean;
}

async function listFiles(root: string, prefix = ''): Promise<string[]> {
  const entries = await readdir(join(root, prefix), { withFileTypes: true });
  const files: string[] = [];
  for (const entry of entries) {
    const path = prefix ? `${prefix}/${entry.name}` : entry.name;
    if (entry.isDirectory()) files.push(...(await listFiles(root, path)));
    else if (entry.isFile() && path !== CATALOG_FILE && !entry.name.startsWith('.')) files.push(path);
  }
  return files.sort();
}

/** `catalog check`: re-hashes every image with all of its algorithms (one pass each) and reports drift. */
export async function checkCatalog(imagesDir: string): Promise<CheckReport> {
  const catalog = await loadCatalog(imagesDir);
  const root = await realpath(imagesDir);
  const results: CheckResult[] = [];
  for (const entry of catalog.images) {
    const path = join(root, ...entry.file.split('/'));
    const real = await realpath(path).catch(() => null);
    if (!real || !real.startsWith(root + sep)) {
      results.push({ file: entry.file, state: 'missing', changes: [real ? 'resolves outside the images directory' : 'file not found'], mtimeChanged: false });
      continue;
    }
    const expected = entryDigests(entry);
    const algorithms = HASH_ALGORITHMS.filter((a) => expected[a] !== undefined);
    const actual = await hashFile(real, algorithms);
    const changes: string[] = [];
    if (actual.size !== entry.size) changes.push(`size ${entry.size} -> ${actual.size}`);
    changes.push(...mismatchedAlgorithms(expected, actual.digests));
    results.push({ file: entry.file, state: changes.length ? 'drift' : 'ok', changes, mtimeChanged: catalogMtime(actual.mtimeMs) !== entry.mtime });
  }
  const known = new Set(catalog.images.map((e) => e.file));
  const uncatalogued = (await listFiles(root)).filter((f) => !known.has(f));
  return { results, uncatalogued, ok: results.every((r) => r.state === 'ok') };
}
