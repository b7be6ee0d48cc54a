import { open } from 'node:fs/promises';
import { Limits } from '../core/limits.js';
import type { Digests, HashAlgorithm } from './algorithms.js';
import { createHasher, type BatchHasher } from './hasher.js';

/** What one read of a file proved: its size, its mtime when read, and its digests. */
export interface FileHashResult {
  /** Bytes read and hashed. */
  size: number;
  mtimeMs: number;
  digests: Digests;
}

/** Read-ahead: one batch is read while the previous ones are hashed. */
const BATCHES_IN_FLIGHT = 3;

/** The file changed while it was being hashed; its digests describe no real state of the file. */
export class FileChangedError extends Error {
  constructor(readonly path: string) {
    super(`${path} changed while it was being hashed`);
    this.name = 'FileChangedError';
  }
}

/**
 * Hashes a file with every algorithm asked for in one read pass: each batch read from disk is
 * handed to all algorithms at once (on worker threads for large files, one per core), and the next
 * read overlaps the hashing of the previous batch.
 */
export async function hashFile(path: string, algorithms: readonly HashAlgorithm[], options: { hasher?: BatchHasher } = {}): Promise<FileHashResult> {
  const handle = await open(path, 'r');
  let hasher: BatchHasher | null = null;
  try {
    const before = await handle.stat();
    if (!before.isFile()) throw Object.assign(new Error(`${path} is not a regular file`), { code: 'EISDIR' });
    hasher = options.hasher ?? createHasher(algorithms, before.size);
    const batchBytes = Math.max(1, Math.min(Limits.HASH_READ_BYTES, before.size || 1));
    const free: Buffer[] = Array.from({ length: BATCHES_IN_FLIGHT }, () => hasher!.allocate(batchBytes));
    const inFlight = new Set<Promise<void>>();
    let size = 0;
    for (;;) {
      while (free.length === 0) await Promise.race(inFlight);
      const batch = free.pop()!;
      const { bytesRead } = await handle.read(batch, 0, batch.length, size);
      if (bytesRead === 0) {
        free.push(batch);
        break;
      }
      size += bytesRead;
      const pending: Promise<void> = hasher.update(batch, bytesRead).then((reusable) => {
        inFlight.delete(pending);
        free.push(reusable);
      });
      // A rejection is seen by the race/all above; this branch only keeps an early exit from
      // leaving it unhandled.
      pending.catch(() => {});
      inFlight.add(pending);
    }
    await Promise.all(inFlight);
    const digests = await hasher.digest();
    const after = await handle.stat();
    if (after.size !== size || after.mtimeMs !== before.mtimeMs) throw new FileChangedError(path);
    return { size, mtimeMs: before.mtimeMs, digests };
  } finally {
    if (hasher && hasher !== options.hasher) await hasher.close();
    await handle.close();
  }
}
