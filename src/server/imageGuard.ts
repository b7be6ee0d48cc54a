import type { Stats } from 'node:fs';
import { join } from 'node:path';
import { ReplyCode } from '../core/replyCodes.js';
import { FtpReplyError, describeError } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import { loadCatalogForServing, servingKey, type ServingStatus } from '../catalog/index.js';
import { catalogMtime } from '../catalog/catalog.js';
import { hashFile } from '../verify/hashFile.js';

/** What an image looked like the last time its content was proven to match the catalog. */
interface KnownGood {
  size: number;
  mtime: string;
}

/**
 * The catalog's say over what is served. At start every catalog image is checked (re-hashed if
 * its size or mtime changed since it was hashed); a drifted one is refused with 550 and logged at
 * error level. While serving, an image whose size or mtime no longer matches what was proven is
 * refused with 450 (transient: the client may retry) while it is re-hashed in the background,
 * then served again or refused for good. Images that are not in the catalog are served as they
 * are: the catalog is optional, and `swfw catalog add` is how an image earns the check.
 */
export class ImageGuard {
  private readonly knownGood = new Map<string, KnownGood>();
  private readonly refused = new Map<string, string>();
  private readonly rechecking = new Map<string, Promise<void>>();
  /** The catalog's SHA-256 per image: what a re-check must find. */
  private readonly expectedSha = new Map<string, string>();

  private constructor(
    private readonly root: string,
    private readonly logger: Logger,
    statuses: Map<string, ServingStatus>,
  ) {
    for (const [file, status] of statuses) {
      this.expectedSha.set(file, status.entry.sha256);
      this.record(file, status);
    }
  }

  static async load(root: string, logger: Logger): Promise<ImageGuard> {
    return new ImageGuard(root, logger.child({ component: 'catalog' }), await loadCatalogForServing(root, logger));
  }

  /** Throws the reply for an image that must not be served now; returns quietly otherwise. */
  check(virtualPath: string, stats: Stats): void {
    const file = servingKey(virtualPath);
    const refusal = this.refused.get(file);
    if (refusal !== undefined) throw new FtpReplyError(ReplyCode.FILE_UNAVAILABLE, `Image refused: ${refusal}`);
    const good = this.knownGood.get(file);
    if (!good || (stats.size === good.size && catalogMtime(stats.mtimeMs) === good.mtime)) return;
    if (!this.rechecking.has(file)) this.rechecking.set(file, this.recheck(file));
    throw new FtpReplyError(ReplyCode.FILE_UNAVAILABLE_TRANSIENT, 'Image changed on disk and is being verified again; retry shortly');
  }

  /** Resolves when every background re-check has finished (tests, shutdown). */
  async settled(): Promise<void> {
    await Promise.all(this.rechecking.values());
  }

  private record(file: string, status: ServingStatus): void {
    if (!status.serve) {
      this.refused.set(file, status.state === 'drifted' ? 'it no longer matches its catalog entry' : 'it is missing or unreadable');
      this.knownGood.delete(file);
      return;
    }
    this.refused.delete(file);
    this.knownGood.set(file, status.current ? { size: status.current.size, mtime: status.current.mtime } : { size: status.entry.size, mtime: status.entry.mtime });
  }

  private async recheck(file: string): Promise<void> {
    const expected = this.knownGood.get(file);
    try {
      const result = await hashFile(join(this.root, ...file.split('/')), ['sha256']);
      const entrySha = this.expectedSha.get(file);
      if (result.digests.sha256 === entrySha) {
        this.knownGood.set(file, { size: result.size, mtime: catalogMtime(result.mtimeMs) });
        this.logger.info('image changed on disk but its content still matches the catalog; serving it again', { file });
      } else {
        this.refused.set(file, 'it no longer matches its catalog entry');
        this.knownGood.delete(file);
        this.logger.error('IMAGE DRIFTED while serving: not serving it any more', {
          file,
          expectedSha256: entrySha,
          actualSha256: result.digests.sha256,
          expectedSize: expected?.size,
          actualSize: result.size,
        });
      }
    } catch (err) {
      this.refused.set(file, 'it is missing or unreadable');
      this.knownGood.delete(file);
      this.logger.error('catalog image unreadable while serving: not serving it', { file, error: describeError(err) });
    } finally {
      this.rechecking.delete(file);
    }
  }
}
