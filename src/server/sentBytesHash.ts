import { createHash } from 'node:crypto';
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

/** Transfers up to this size hash on the event loop: 1 MiB costs under a millisecond. */
export const INLINE_HASH_MAX_BYTES = 1024 * 1024;

/** Chooses the hasher per transfer: none, inline for small ones, the worker for the rest. */
export class SentBytesHashing {
  private readonly worker: HashWorker | null;
  constructor(enabled: boolean) {
    this.worker = enabled ? new HashWorker() : null;
  }
  open(expectedBytes: number): SentBytesHash | null {
    if (!this.worker) return null;
    return expectedBytes <= INLINE_HASH_MAX_BYTES ? inlineHash() : this.worker.open();
  }
  async stop(): Promise<void> {
    await this.worker?.stop();
  }
}
