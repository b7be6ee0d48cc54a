import { createHash } from 'node:crypto';
import { fstatSync } from 'node:fs';
import type { HashSentBytesMode } from '../config/schema.js';
import { Worker } from 'node:worker_threads';
import type { FromHashWorker, ToHashWorker } from './hashWorker.js';

/** The SHA-256 of one transfer's sent bytes, fed in send order. */
export interface SentBytesHash {
  /** Hashes `length` bytes of `buffer`; calls `release` once the buffer may be reused. */
  update(buffer: PooledBuffer, length: number, release: () => void): void;
  /** The hex digest; null if the hasher was stopped first (server shutdown). */
  digest(): Promise<string | null>;
}

/** A read buffer with an id, backed by shared memory so the hash worker can read it in place. */
export interface PooledBuffer {
  readonly id: number;
  readonly bytes: Buffer;
}

/**
 * The server's read buffers: SharedArrayBuffer-backed (so the hash worker reads them in place),
 * at most `maxBuffers` of them ever allocated, reused forever. Freeing and reallocating 1 MiB
 * buffers made the RSS climb (glibc keeps freed blocks once its mmap threshold has grown), so
 * instead a transfer that finds every buffer in use waits for one: memory is bounded by
 * `maxBuffers` whatever the number of transfers, and the waiters are served in arrival order.
 */
export class BufferPool {
  private readonly free: PooledBuffer[] = [];
  private readonly waiting: Array<(buffer: PooledBuffer) => void> = [];
  private allocated = 0;
  constructor(
    readonly bufferBytes: number,
    private readonly maxBuffers: number,
  ) {}
  /** A free buffer now, or null when all `maxBuffers` are in use (then use `wait`). */
  tryTake(): PooledBuffer | null {
    const reused = this.free.pop();
    if (reused) return reused;
    if (this.allocated >= this.maxBuffers) return null;
    this.allocated++;
    return { id: this.allocated, bytes: Buffer.from(new SharedArrayBuffer(this.bufferBytes)) };
  }
  /** Resolves with the next buffer given back. */
  wait(): Promise<PooledBuffer> {
    return new Promise((resolve) => this.waiting.push(resolve));
  }
  /** Cancels a `wait` that is no longer wanted (the transfer ended first). */
  cancel(waiter: Promise<PooledBuffer>): void {
    void waiter.then((buffer) => this.give(buffer));
  }
  give(buffer: PooledBuffer): void {
    const next = this.waiting.shift();
    if (next) next(buffer);
    else this.free.push(buffer);
  }
}

/** Hashing on the event loop: for small transfers, where a worker round trip costs more. */
export function inlineHash(): SentBytesHash {
  const hash = createHash('sha256');
  return {
    update(buffer, length, release) {
      hash.update(buffer.bytes.subarray(0, length));
      release();
    },
    digest: () => Promise.resolve(hash.digest('hex')),
  };
}

/**
 * One worker thread hashing every large transfer's sent bytes. SHA-256 costs ~0.7 s per GiB on
 * these machines; on the event loop it doubled the time to serve 1 GiB. In the worker it runs on
 * the other core while the event loop moves the next buffers.
 */
export class HashWorker {
  private readonly worker: Worker;
  private readonly known = new Set<number>();
  private readonly releases = new Map<number, () => void>();
  private readonly digests = new Map<number, (hex: string | null) => void>();
  private nextTransfer = 1;
  private stopped = false;

  constructor() {
    this.worker = new Worker(new URL('./hashWorker.js', import.meta.url));
    this.worker.on('message', (message: FromHashWorker) => {
      if (message.type === 'released') {
        const release = this.releases.get(message.id);
        this.releases.delete(message.id);
        release?.();
      } else {
        const resolve = this.digests.get(message.transfer);
        this.digests.delete(message.transfer);
        resolve?.(message.hex);
      }
    });
    // Idle between transfers: it must not keep the process alive on its own.
    this.worker.unref();
  }

  open(): SentBytesHash {
    const transfer = this.nextTransfer++;
    const post = (message: ToHashWorker) => this.worker.postMessage(message);
    return {
      update: (buffer, length, release) => {
        if (this.stopped) return release();
        if (!this.known.has(buffer.id)) {
          this.known.add(buffer.id);
          post({ type: 'buffer', id: buffer.id, memory: buffer.bytes.buffer as SharedArrayBuffer });
        }
        this.releases.set(buffer.id, release);
        post({ type: 'update', transfer, id: buffer.id, length });
      },
      digest: () =>
        new Promise<string | null>((resolve) => {
          if (this.stopped) return resolve(null);
          this.digests.set(transfer, resolve);
          post({ type: 'digest', transfer });
        }),
    };
  }

  /** Terminates the worker; anything still waiting on it is released, digests resolve null. */
  async stop(): Promise<void> {
    this.stopped = true;
    await this.worker.terminate();
    for (const release of this.releases.values()) release();
    for (const resolve of this.digests.values()) resolve(null);
    this.releases.clear();
    this.digests.clear();
  }
}

/** How long the hash worker may sit idle before its thread is stopped. */
const HASH_WORKER_IDLE_MS = 60_000;

/** Transfers up to this size hash on the event loop: 1 MiB costs under a millisecond. */
export const INLINE_HASH_MAX_BYTES = 1024 * 1024;

/** Where a record's digest comes from: this transfer's own bytes, or an earlier whole transfer of the same file version. */
export type DigestBasis = 'stream' | 'version';

/** File versions whose digests are kept: a repository holds a few hundred images at most. */
const VERSION_DIGESTS_MAX = 4096;

/**
 * A file version as `fstat` on the open descriptor sees it: device, inode, size, and mtime and
 * ctime in nanoseconds. A write in place moves mtime; one that puts mtime back (`touch -d`) still
 * moves ctime, which no user can set; a file replaced by rename is another inode.
 */
export function fileVersion(fd: number): string {
  const s = fstatSync(fd, { bigint: true });
  return `${s.dev}:${s.ino}:${s.size}:${s.mtimeNs}:${s.ctimeNs}`;
}

/** The digest fields of one transfer's audit record. */
export interface SentBytesDigest {
  sha256: string | null;
  basis: DigestBasis | null;
  /** The file's version on the descriptor changed between open and the last byte: no digest, and no success reply. */
  versionChanged: boolean;
}

/** One transfer's hashing: the hasher sendFile feeds (null when none is needed), then the record's digest. */
export interface TransferHashing {
  readonly hash: SentBytesHash | null;
  /** Whether the file's version on the descriptor is still the one it had at open (for sendFile's `unchangedAfterLastRead`). */
  unchanged(): boolean;
  /** Called after the last byte, before the final reply, with the descriptor still open. */
  settle(outcome: { ok: boolean; bytes: number; sha256: string | null; reason?: string }): SentBytesDigest;
}

/**
 * Chooses the hasher per transfer (none, inline for small ones, the worker for the rest) and keeps
 * the digests of file versions this server read whole itself. Never from catalog.json: the
 * server's evidence stays its own, so the three-way verify (catalog, server, switch) keeps three
 * independent witnesses.
 */
export class SentBytesHashing {
  /** Started at the first large transfer to hash, retired after HASH_WORKER_IDLE_MS without one. */
  private worker: HashWorker | null = null;
  /** Large transfers whose digest is still to come. */
  private hashingNow = 0;
  private idleTimer: NodeJS.Timeout | null = null;
  private retiring: Promise<void> = Promise.resolve();
  private readonly versionDigests = new Map<string, string>();

  constructor(readonly mode: HashSentBytesMode) {}

  /** A hasher on the stream for `expectedBytes`, or null when hashing is off. */
  open(expectedBytes: number): SentBytesHash | null {
    if (this.mode === 'off') return null;
    if (expectedBytes <= INLINE_HASH_MAX_BYTES) return inlineHash();
    if (this.idleTimer) clearTimeout(this.idleTimer);
    this.idleTimer = null;
    this.worker ??= new HashWorker();
    this.hashingNow++;
    const hash = this.worker.open();
    let done = false;
    return {
      update: hash.update,
      digest: async () => {
        try {
          return await hash.digest();
        } finally {
          if (!done) {
            done = true;
            if (--this.hashingNow === 0) this.retireWhenIdle();
          }
        }
      },
    };
  }

  /**
   * Under `per-version` a rollout hashes each image once, then the worker has nothing to do for
   * hours: its thread and heap (about 9 MiB) go back after a quiet minute, and come back with the
   * next new version.
   */
  private retireWhenIdle(): void {
    this.idleTimer = setTimeout(() => {
      this.idleTimer = null;
      const worker = this.worker;
      this.worker = null;
      if (worker) this.retiring = worker.stop();
    }, HASH_WORKER_IDLE_MS);
    this.idleTimer.unref();
  }

  /**
   * Starts one transfer of `length` bytes from `offset` of the file open on `fd` (`size` bytes at
   * open). Its version is read from the descriptor now and again in `settle`.
   */
  begin(fd: number, offset: number, length: number, size: number): TransferHashing {
    if (this.mode === 'off') return { hash: null, unchanged: () => true, settle: () => ({ sha256: null, basis: null, versionChanged: false }) };
    const version = fileVersion(fd);
    const unchanged = () => {
      try {
        return fileVersion(fd) === version;
      } catch {
        return false;
      }
    };
    const whole = offset === 0 && length === size;
    const known = this.mode === 'per-version' && whole ? this.versionDigests.get(version) : undefined;
    const hash = known === undefined ? this.open(length) : null;
    return {
      hash,
      unchanged,
      settle: (outcome) => {
        if (outcome.reason === 'file-changed' || !unchanged()) return { sha256: null, basis: null, versionChanged: true };
        if (known !== undefined) {
          // Only a whole transfer sent the bytes that digest describes.
          return outcome.ok && outcome.bytes === length ? { sha256: known, basis: 'version', versionChanged: false } : { sha256: null, basis: null, versionChanged: false };
        }
        if (this.mode === 'per-version' && whole && outcome.ok && outcome.bytes === size && outcome.sha256 !== null) this.remember(version, outcome.sha256);
        return { sha256: outcome.sha256, basis: outcome.sha256 === null ? null : 'stream', versionChanged: false };
      },
    };
  }

  private remember(version: string, sha256: string): void {
    if (this.versionDigests.size >= VERSION_DIGESTS_MAX) this.versionDigests.delete(this.versionDigests.keys().next().value!);
    this.versionDigests.set(version, sha256);
  }

  async stop(): Promise<void> {
    if (this.idleTimer) clearTimeout(this.idleTimer);
    this.idleTimer = null;
    const worker = this.worker;
    this.worker = null;
    await Promise.all([this.retiring, worker?.stop()]);
  }
}
