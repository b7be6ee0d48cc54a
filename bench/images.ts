import { createHash, randomFillSync } from 'node:crypto';
import { chmodSync, closeSync, existsSync, mkdirSync, openSync, readFileSync, renameSync, statSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import type { Sizes } from './options.js';

/** One image as served by both servers, with what a correct download must look like. */
export interface ImageFile {
  name: string;
  path: string;
  size: number;
  sha256: string;
}

export interface ImageSet {
  /** The directory both servers serve (vsftpd anon_root, swfw --images). */
  dir: string;
  large: ImageFile;
  medium: ImageFile;
  small: ImageFile[];
}

/**
 * vsftpd refuses an anon_root the ftp user can write ("500 OOPS: vsftpd: refusing to run with
 * writable root inside chroot()"), and with anon_world_readable_only=YES (its default) it serves
 * only world-readable files. So: directories 0755 and files 0644, owned by us (root).
 */
const DIR_MODE = 0o755;
const FILE_MODE = 0o644;
const WRITE_CHUNK_BYTES = 1024 * 1024;

interface Manifest {
  [name: string]: { size: number; mtimeMs: number; sha256: string };
}

/** Writes `size` random bytes to `path` (via a temp name) and returns their SHA-256. */
function writeRandomFile(path: string, size: number): string {
  const hash = createHash('sha256');
  const buffer = Buffer.allocUnsafe(Math.min(WRITE_CHUNK_BYTES, Math.max(size, 1)));
  const temp = `${path}.part`;
  const fd = openSync(temp, 'w', FILE_MODE);
  try {
    for (let left = size; left > 0; ) {
      const chunk = buffer.subarray(0, Math.min(left, buffer.length));
      randomFillSync(chunk);
      hash.update(chunk);
      writeSync(fd, chunk);
      left -= chunk.length;
    }
  } finally {
    closeSync(fd);
  }
  chmodSync(temp, FILE_MODE);
  renameSync(temp, path);
  return hash.digest('hex');
}

/**
 * Creates (or reuses) the random images for one mode in `workDir/images-<mode>`. Generating 1 GiB
 * takes seconds, so a manifest of size, mtime and SHA-256 lets the next run reuse unchanged files.
 */
export function prepareImages(workDir: string, mode: 'full' | 'smoke', sizes: Sizes, log: (line: string) => void): ImageSet {
  const dir = join(workDir, `images-${mode}`);
  mkdirSync(dir, { recursive: true, mode: DIR_MODE });
  chmodSync(workDir, DIR_MODE);
  chmodSync(dir, DIR_MODE);
  const manifestFile = join(workDir, `images-${mode}.manifest.json`);
  let manifest: Manifest = {};
  if (existsSync(manifestFile)) {
    try {
      manifest = JSON.parse(readFileSync(manifestFile, 'utf8')) as Manifest;
    } catch {
      manifest = {};
    }
  }
  const ensure = (name: string, size: number): ImageFile => {
    const path = join(dir, name);
    const known = manifest[name];
    const stats = existsSync(path) ? statSync(path) : null;
    if (known && stats && stats.size === size && known.size === size && stats.mtimeMs === known.mtimeMs) {
      chmodSync(path, FILE_MODE);
      return { name, path, size, sha256: known.sha256 };
    }
    if (size >= WRITE_CHUNK_BYTES) log(`creating ${name} (${size} random bytes)`);
    const sha256 = writeRandomFile(path, size);
    manifest[name] = { size, mtimeMs: statSync(path).mtimeMs, sha256 };
    return { name, path, size, sha256 };
  };
  const large = ensure('large.bin', sizes.largeBytes);
  const medium = ensure('medium.bin', sizes.mediumBytes);
  const small: ImageFile[] = [];
  for (let i = 0; i < sizes.smallCount; i++) small.push(ensure(`small-${String(i).padStart(3, '0')}.bin`, sizes.smallBytes));
  writeFileSync(manifestFile, `${JSON.stringify(manifest, null, 1)}\n`);
  return { dir, large, medium, small };
}
