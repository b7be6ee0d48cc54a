import { realpath, stat } from 'node:fs/promises';
import { join, sep } from 'node:path';
import { describeError } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import { hashFile } from '../verify/hashFile.js';
import { catalogMtime, loadCatalog } from './catalog.js';
import type { CatalogEntry } from './schema.js';

/**
 * Why an image may or may not be served:
 * - `verified`: size and mtime are what they were when hashed; trusted without re-reading.
 * - `rehashed`: size or mtime changed, the file was re-hashed and its SHA-256 still matches.
 * - `drifted`: the file's content no longer matches its catalog entry. Not served.
 * - `missing`: the file is gone, unreadable, or resolves outside the images directory. Not served.
 */
export type ServingState = 'verified' | 'rehashed' | 'drifted' | 'missing';

export interface ServingStatus {
  /** The catalog path, relative to the images directory (the server's virtual path without its leading `/`). */
  readonly file: string;
  readonly serve: boolean;
  readonly state: ServingState;
  readonly entry: CatalogEntry;
  /** For drifted and rehashed images: what the file is now. */
  readonly current?: { size: number; mtime: string; sha256: string };
  readonly reason: string;
}

/** The map key for a server virtual path such as `/cisco/image.bin`. */
export function servingKey(virtualPath: string): string {
  return virtualPath.replace(/^\/+/, '');
}

/**
 * Called by the server at start: decides, per catalog image, whether it may be served.
 *
 * An image whose size and mtime are unchanged since it was hashed is trusted (a start-up does not
 * re-read a repository of many GiB). One whose size or mtime changed is re-hashed (SHA-256, one
 * pass); if the digest no longer matches it is `drifted`: not served, and logged at error level
 * with both digests. Paths absent from the map are not in the catalog; what to do with them is the
 * server's policy. A missing catalog gives an empty map (and a warning); an invalid one throws
 * ConfigError with one problem per line, so the server refuses to start on a broken catalog.
 */
export async function loadCatalogForServing(imagesDir: string, logger: Logger): Promise<Map<string, ServingStatus>> {
  const log = logger.child({ component: 'catalog' });
  const catalog = await loadCatalog(imagesDir, { missingOk: true });
  const statuses = new Map<string, ServingStatus>();
  if (catalog.images.length === 0) {
    log.warn('no catalog images: nothing is verified before it is served', { images: imagesDir });
    return statuses;
  }
  const root = await realpath(imagesDir);
  for (const entry of catalog.images) {
    const status = await judgeImage(root, entry);
    statuses.set(entry.file, status);
    const fields = { file: entry.file, state: status.state, reason: status.reason };
    if (status.state === 'drifted') {
      log.error('IMAGE DRIFTED: not serving it: its content no longer matches the catalog', {
        ...fields,
        expectedSha256: entry.sha256,
        actualSha256: status.current?.sha256,
        expectedSize: entry.size,
        actualSize: status.current?.size,
      });
    } else if (status.state === 'missing') log.error('catalog image missing: not serving it', fields);
    // A clone or a copy gives every image a new mtime: one summary line below, not one per image.
    else if (status.state === 'rehashed') log.debug('image changed on disk but its content still matches the catalog', fields);
    else log.debug('image verified by size and mtime', fields);
  }
  const all = [...statuses.values()];
  const counts = { images: statuses.size, rehashed: all.filter((s) => s.state === 'rehashed').length, refused: all.filter((s) => !s.serve).length };
  log.info(counts.rehashed ? 'catalog loaded for serving; images whose size or mtime changed were re-hashed and still match' : 'catalog loaded for serving', counts);
  return statuses;
}

async function judgeImage(root: string, entry: CatalogEntry): Promise<ServingStatus> {
  const base = { file: entry.file, entry };
  let real: string;
  try {
    real = await realpath(join(root, ...entry.file.split('/')));
  } catch (err) {
    return { ...base, serve: false, state: 'missing', reason: `cannot open: ${(err as NodeJS.ErrnoException).code ?? describeError(err)}` };
  }
  if (!real.startsWith(root + sep)) return { ...base, serve: false, state: 'missing', reason: 'resolves outside the images directory' };
  const stats = await stat(real);
  if (!stats.isFile()) return { ...base, serve: false, state: 'missing', reason: 'not a regular file' };
  const mtime = catalogMtime(stats.mtimeMs);
  if (stats.size === entry.size && mtime === entry.mtime) {
    return { ...base, serve: true, state: 'verified', reason: 'size and mtime unchanged since hashed' };
  }
  let hashed;
  try {
    hashed = await hashFile(real, ['sha256']);
  } catch (err) {
    return { ...base, serve: false, state: 'missing', reason: `cannot hash: ${describeError(err)}` };
  }
  const current = { size: hashed.size, mtime: catalogMtime(hashed.mtimeMs), sha256: hashed.digests.sha256! };
  if (hashed.size === entry.size && current.sha256 === entry.sha256) {
    return { ...base, serve: true, state: 'rehashed', current, reason: mtime === entry.mtime ? 'size changed' : 'mtime changed; content unchanged' };
  }
  const what = hashed.size !== entry.size ? `size ${entry.size} -> ${hashed.size}` : 'sha256 differs';
  return { ...base, serve: false, state: 'drifted', current, reason: what };
}
