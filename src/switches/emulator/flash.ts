/**
 * An emulated switch's flash: a directory of fixed capacity, hashed and filled the way a switch's
 * own commands do it. A copy pulls through swfw's client module (src/client) out of the switch's
 * own address, with no digest, no retry and no resume, as a switch's copy does; a hash re-reads
 * the file at the platform's rate, with progress.
 */
import { createHash } from 'node:crypto';
import { mkdir, open, readdir, rm, stat } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Puller, parseFtpUrl } from '../../client/index.js';
import { redactSecrets } from '../driver.js';
import type { SwitchFaults } from './faults.js';

/** Read size of a hash: large enough that the hash, not the reads, is the cost. */
const HASH_READ_BYTES = 1024 * 1024;
/** With a hash rate set, progress (a dot) is reported for every this many bytes. */
const HASH_PROGRESS_BYTES = 64 * 1024;
/** The `stall` fault stops reading after this much of the image: mid-transfer, with data already flowing. */
const STALL_AFTER_BYTES = 64 * 1024;

export interface FlashFile {
  name: string;
  size: number;
  mtime: Date;
}

/** Why a copy failed: `open` before any byte (login, file, data connection), `read` a break after, `write` the flash. */
export interface CopyFailure {
  stage: 'open' | 'read' | 'write';
  /** The FTP reply code, when the server refused. */
  replyCode: number | null;
  message: string;
}

export type CopyResult = { ok: true; bytes: number; seconds: number } | ({ ok: false; bytes: number } & CopyFailure);

export class Flash {
  constructor(
    readonly dir: string,
    readonly capacity: number,
  ) {}

  async init(): Promise<void> {
    await mkdir(this.dir, { recursive: true });
  }

  async files(): Promise<FlashFile[]> {
    const names = (await readdir(this.dir)).filter((n) => !n.startsWith('.'));
    const files = await Promise.all(names.map(async (name) => ({ name, ...(await stat(join(this.dir, name)).then((s) => ({ size: s.size, mtime: s.mtime }))) })));
    return files.sort((a, b) => a.name.localeCompare(b.name));
  }

  async used(except?: string): Promise<number> {
    return (await this.files()).filter((f) => f.name !== except).reduce((sum, f) => sum + f.size, 0);
  }

  async free(): Promise<number> {
    return Math.max(0, this.capacity - (await this.used()));
  }

  /** The file's size, or null when it does not exist. */
  async size(name: string): Promise<number | null> {
    return (await stat(this.path(name)).catch(() => null))?.size ?? null;
  }

  path(name: string): string {
    return join(this.dir, basename(name));
  }

  async remove(name: string): Promise<void> {
    await rm(this.path(name), { force: true });
  }

  /** Erases every file (what Enter at Cisco's `Erase flash: before copying? [confirm]` does). */
  async erase(): Promise<void> {
    for (const f of await this.files()) await this.remove(f.name);
  }

  /**
   * The hex digest of a file, or null when it is missing. With `bytesPerSecond`, the read is paced
   * to that rate and `onProgress` is called every 64 KiB, as a switch's verify prints its dots.
   */
  async hash(name: string, algorithm: string, options: { bytesPerSecond?: number; onProgress?: () => void; signal?: AbortSignal } = {}): Promise<string | null> {
    const handle = await open(this.path(name), 'r').catch(() => null);
    if (!handle) return null;
    const hash = createHash(algorithm);
    const buffer = Buffer.allocUnsafe(options.bytesPerSecond ? HASH_PROGRESS_BYTES : HASH_READ_BYTES);
    const started = Date.now();
    let total = 0;
    try {
      for (;;) {
        options.signal?.throwIfAborted();
        const { bytesRead } = await handle.read(buffer, 0, buffer.length, null);
        if (bytesRead === 0) break;
        hash.update(buffer.subarray(0, bytesRead));
        total += bytesRead;
        if (options.bytesPerSecond) {
          options.onProgress?.();
          const due = (total * 1000) / options.bytesPerSecond - (Date.now() - started);
          if (due > 0) await sleep(due, undefined, options.signal ? { signal: options.signal } : {});
        }
      }
    } finally {
      await handle.close().catch(() => {});
    }
    return hash.digest('hex');
  }

  /**
   * Pulls `url` into the file `name`, from `localAddress`, with the switch's faults. Nothing is left
   * on flash unless the copy completed (the client writes a temp file and renames it).
   */
  async copy(url: string, name: string, options: { localAddress: string; faults: SwitchFaults; timeoutMs: number; signal: AbortSignal; onBytes?: (bytes: number, totalBytes: number | null) => void }): Promise<CopyResult> {
    const target = parseFtpUrl(url);
    if ('problem' in target) return { ok: false, bytes: 0, stage: 'open', replyCode: null, message: `Bad URL (${target.problem})` };
    const faults = options.faults;
    const free = this.capacity - (await this.used(name));
    const controller = new AbortController();
    let stopped: CopyFailure | null = null;
    const stop = (failure: CopyFailure) => {
      stopped ??= failure;
      controller.abort();
    };
    const onAbort = () => stop({ stage: 'read', replyCode: null, message: 'Aborted' });
    options.signal.addEventListener('abort', onAbort, { once: true });
    if (options.signal.aborted) onAbort();
    const started = Date.now();
    const puller = new Puller({
      target,
      password: target.urlPassword ?? '',
      out: this.path(name),
      reference: null,
      retries: 0,
      localAddress: options.localAddress,
      timeoutMs: options.timeoutMs,
      hashing: 'none',
      progressIntervalMs: 0,
      signal: controller.signal,
      ...(faults.slowBytesPerSecond ? { maxBytesPerSecond: faults.slowBytesPerSecond } : {}),
      ...(faults.stallSeconds ? { stall: { afterBytes: STALL_AFTER_BYTES, ms: faults.stallSeconds * 1000 } } : {}),
    });
    let expected: number | null = null;
    puller.on('progress', ({ bytes, totalBytes }) => {
      expected = totalBytes;
      if (stopped) return;
      options.onBytes?.(bytes, totalBytes);
      if (faults.cutAfterBytes !== undefined && bytes >= faults.cutAfterBytes) stop({ stage: 'read', replyCode: null, message: 'I/O error (link cut)' });
      else if (bytes > free) stop({ stage: 'write', replyCode: null, message: 'No space left on device' });
    });
    void expected;
    try {
      const result = await puller.run();
      if (result.outcome === 'unverified' && !stopped) {
        if (faults.corruptAt !== undefined && faults.corruptAt < result.bytes) await this.flipByte(name, faults.corruptAt);
        return { ok: true, bytes: result.bytes, seconds: Math.max(0.001, (Date.now() - started) / 1000) };
      }
      const failure: CopyFailure =
        stopped ??
        (result.outcome === 'local-error'
          ? { stage: 'write', replyCode: null, message: `I/O error (${result.reason})` }
          : {
              stage: result.bytes > 0 ? 'read' : 'open',
              replyCode: result.replyCode,
              message: result.reason.replace(/ \(gave up after \d+ attempts?\)$/, ''),
            });
      return { ok: false, bytes: result.bytes, ...failure, message: redactSecrets(failure.message, [target.urlPassword ?? '']) };
    } catch (err) {
      return { ok: false, bytes: 0, stage: 'write', replyCode: null, message: `I/O error (${(err as Error).message})` };
    } finally {
      options.signal.removeEventListener('abort', onAbort);
    }
  }

  private async flipByte(name: string, offset: number): Promise<void> {
    const handle = await open(this.path(name), 'r+');
    try {
      const one = Buffer.alloc(1);
      await handle.read(one, 0, 1, offset);
      one[0] = one[0]! ^ 0xff;
      await handle.write(one, 0, 1, offset);
    } finally {
      await handle.close();
    }
  }
}
