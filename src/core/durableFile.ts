import { randomBytes } from 'node:crypto';
import { open, rename, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';

/**
 * A temporary file name next to `target` (same directory, so rename(2) is atomic: one filesystem).
 * The name starts with a dot and carries the pid and random bytes, so concurrent writers never collide.
 */
export function tempPathFor(target: string, tag = 'tmp'): string {
  return join(dirname(target), `.${basename(target)}.${tag}-${process.pid}-${randomBytes(4).toString('hex')}`);
}

/**
 * fsyncs a directory, so a rename inside it survives a crash (rename is durable only once the
 * directory entry is on disk). Filesystems that refuse fsync on a directory (EINVAL, EISDIR on
 * some platforms) are tolerated: they offer nothing stronger.
 */
export async function fsyncDirectory(dir: string): Promise<void> {
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== 'EINVAL' && code !== 'EISDIR' && code !== 'EPERM') throw err;
  } finally {
    await handle.close();
  }
}

/**
 * Writes `data` to `target` atomically and durably: a temp file in the same directory, fsync,
 * rename over the target, fsync of the directory. A reader sees the old content or the new one,
 * never a torn file; a crash leaves at most a stray temp file, never a truncated target.
 */
export async function writeFileAtomic(target: string, data: string | Uint8Array, mode = 0o644): Promise<void> {
  const temp = tempPathFor(target);
  const handle = await open(temp, 'wx', mode);
  try {
    try {
      await handle.writeFile(data);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(temp, target);
  } catch (err) {
    await unlink(temp).catch(() => {});
    throw err;
  }
  await fsyncDirectory(dirname(target));
}
