import { createHash, type Hash } from 'node:crypto';
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { HASH_SECONDS_PER_GIB, type Digests, type HashAlgorithm } from './algorithms.js';

/**
 * One-pass hashing of a byte stream delivered in batches, with any set of algorithms.
 *
 * Callers fill a batch (from `allocate`) and hand it to `update`. The batch then belongs to the
 * hasher: the caller must not touch it until the promise resolves with the buffer to reuse (for
 * the worker hasher a new Buffer over the same memory, moved back from the worker). Batches are
 * hashed strictly in submission order. `digest()` covers everything since creation or the last
 * `reset()`/`digest()`, then starts a fresh state. Nothing is ever read twice: a pull hashes bytes
 * as they arrive, a file is hashed as it is read.
 */
export interface BatchHasher {
  readonly algorithms: readonly HashAlgorithm[];
  /** `worker`: hashing runs on worker threads and overlaps the caller; `inline`: on the caller's thread. */
  readonly mode: 'worker' | 'inline';
  /** A buffer suitable for `update`: it owns its whole ArrayBuffer, so it can move to a worker without a copy. */
  allocate(bytes: number): Buffer;
  /** Hashes the first `length` bytes of `batch`. Resolves with the buffer to reuse in its place. */
  update(batch: Buffer, length: number): Promise<Buffer>;
  /** Digests of everything hashed since the last reset; the hasher then starts over. */
  digest(): Promise<Digests>;
  /** Forgets everything hashed so far (a pull that starts again from byte 0). */
  reset(): void;
  /** Stops worker threads. The hasher cannot be used afterwards. Safe to call twice. */
  close(): Promise<void>;
}

/** Hashing on the caller's thread: for small inputs, where starting a worker costs more than it saves. */
export class InlineHasher implements BatchHasher {
  readonly mode = 'inline' as const;
  private hashes: Map<HashAlgorithm, Hash>;

  constructor(readonly algorithms: readonly HashAlgorithm[]) {
    this.hashes = InlineHasher.fresh(algorithms);
  }

  private static fresh(algorithms: readonly HashAlgorithm[]): Map<HashAlgorithm, Hash> {
    return new Map(algorithms.map((a) => [a, createHash(a)]));
  }

  allocate(bytes: number): Buffer {
    return Buffer.allocUnsafeSlow(bytes);
  }

  /** Synchronous form of `update`, for streams that hash chunk by chunk. */
  updateSync(chunk: Uint8Array): void {
    for (const hash of this.hashes.values()) hash.update(chunk);
  }

  update(batch: Buffer, length: number): Promise<Buffer> {
    this.updateSync(length === batch.length ? batch : batch.subarray(0, length));
    return Promise.resolve(batch);
  }

  digestSync(): Digests {
    const digests: Digests = {};
    for (const [algorithm, hash] of this.hashes) digests[algorithm] = hash.digest('hex');
    this.hashes = InlineHasher.fresh(this.algorithms);
    return digests;
  }

  digest(): Promise<Digests> {
    return Promise.resolve(this.digestSync());
  }

  reset(): void {
    this.hashes = InlineHasher.fresh(this.algorithms);
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}

/** Messages to a hash worker (see hashWorker.ts). `buffer` is transferred, not copied. */
export type HashWorkerRequest = { op: 'update'; buffer: ArrayBuffer; length: number } | { op: 'digest' } | { op: 'reset' };

/** Messages from a hash worker; `ack` transfers the buffer back. */
export type HashWorkerReply = { op: 'ack'; buffer: ArrayBuffer } | { op: 'digest'; digests: Digests };

interface WorkerSlot {
  worker: Worker;
  algorithms: HashAlgorithm[];
  /** Waiters in submission order: each reply settles the oldest one (worker messages are ordered). */
  waiting: Array<{ resolve: (reply: HashWorkerReply) => void; reject: (err: Error) => void }>;
}

/**
 * Splits algorithms over at most `threads` workers, most expensive first onto the least loaded
 * worker (longest-processing-time rule), so md5 + sha512 run side by side rather than in series.
 */
export function planHashThreads(algorithms: readonly HashAlgorithm[], threads: number): HashAlgorithm[][] {
  const count = Math.max(1, Math.min(threads, algorithms.length));
  const groups: { load: number; algorithms: HashAlgorithm[] }[] = Array.from({ length: count }, () => ({ load: 0, algorithms: [] }));
  const byCost = [...algorithms].sort((a, b) => HASH_SECONDS_PER_GIB[b] - HASH_SECONDS_PER_GIB[a]);
  for (const algorithm of byCost) {
    const target = groups.reduce((min, g) => (g.load < min.load ? g : min));
    target.algorithms.push(algorithm);
    target.load += HASH_SECONDS_PER_GIB[algorithm];
  }
  return groups.filter((g) => g.algorithms.length > 0).map((g) => g.algorithms);
}

/**
 * Hashing on worker threads. Each batch's ArrayBuffer is transferred (moved, not copied) to the
 * first worker, back, on to the next worker, and finally back to the caller, so SHA-256
 * (0.7 s/GiB here) runs beside the network receive and the disk write instead of after them.
 * With several workers (one per algorithm group, at most one per core) the batches form a
 * pipeline: batch n is in the MD5 worker while batch n+1 is in the SHA-256 worker.
 *
 * Why not SharedArrayBuffer: V8 copies into shared memory with a race-safe relaxed memmove, which
 * profiled at 26% of a 1 GiB pull's CPU; copying into a plain buffer is an ordinary memcpy.
 */
export class WorkerHasher implements BatchHasher {
  readonly mode = 'worker' as const;
  private readonly slots: WorkerSlot[];
  private failure: Error | null = null;
  private closed: Promise<void> | null = null;

  constructor(
    readonly algorithms: readonly HashAlgorithm[],
    threads: number = availableParallelism(),
  ) {
    const url = new URL('./hashWorker.js', import.meta.url);
    this.slots = planHashThreads(algorithms, threads).map((group) => {
      const slot: WorkerSlot = { worker: new Worker(url, { workerData: { algorithms: group } }), algorithms: group, waiting: [] };
      slot.worker.on('message', (reply: HashWorkerReply) => slot.waiting.shift()?.resolve(reply));
      slot.worker.on('error', (err) => this.fail(err));
      slot.worker.on('exit', (code) => {
        if (!this.closed) this.fail(new Error(`hash worker exited unexpectedly (code ${code})`));
      });
      return slot;
    });
  }

  private fail(err: Error): void {
    this.failure ??= err;
    for (const slot of this.slots) for (const waiter of slot.waiting.splice(0)) waiter.reject(this.failure);
  }

  private request(slot: WorkerSlot, message: HashWorkerRequest, transfer: ArrayBuffer[] = []): Promise<HashWorkerReply> {
    if (this.failure) return Promise.reject(this.failure);
    if (this.closed) return Promise.reject(new Error('hasher is closed'));
    return new Promise((resolve, reject) => {
      slot.waiting.push({ resolve, reject });
      slot.worker.postMessage(message, transfer);
    });
  }

  allocate(bytes: number): Buffer {
    // allocUnsafeSlow: not from Node's shared pool, so the Buffer owns its ArrayBuffer and can be transferred.
    return Buffer.allocUnsafeSlow(bytes);
  }

  async update(batch: Buffer, length: number): Promise<Buffer> {
    const owned = batch.buffer;
    if (!(owned instanceof ArrayBuffer) || batch.byteOffset !== 0 || owned.byteLength !== batch.length) {
      throw new TypeError('WorkerHasher.update needs a batch from allocate() (a Buffer that owns its whole ArrayBuffer)');
    }
    let buffer: ArrayBuffer = owned;
    for (const slot of this.slots) {
      const reply = await this.request(slot, { op: 'update', buffer, length }, [buffer]);
      if (reply.op !== 'ack') throw new Error('hash worker answered out of order');
      buffer = reply.buffer;
    }
    return Buffer.from(buffer);
  }

  async digest(): Promise<Digests> {
    const replies = await Promise.all(this.slots.map((slot) => this.request(slot, { op: 'digest' })));
    const digests: Digests = {};
    for (const reply of replies) if (reply.op === 'digest') Object.assign(digests, reply.digests);
    return digests;
  }

  reset(): void {
    if (this.failure || this.closed) return;
    // No reply: ordering alone guarantees later updates land in the fresh state.
    for (const slot of this.slots) slot.worker.postMessage({ op: 'reset' } satisfies HashWorkerRequest);
  }

  close(): Promise<void> {
    this.closed ??= Promise.all(this.slots.map((slot) => slot.worker.terminate())).then(() => {
      for (const slot of this.slots) for (const waiter of slot.waiting.splice(0)) waiter.reject(new Error('hasher is closed'));
    });
    return this.closed;
  }
}

/** Below this many bytes a worker's start-up (~30 ms) costs more than hashing inline. */
export const INLINE_HASH_MAX_BYTES = 8 * 1024 * 1024;

/** The hasher for an input of `expectedBytes` (unknown: null): inline when small, workers otherwise. */
export function createHasher(algorithms: readonly HashAlgorithm[], expectedBytes: number | null): BatchHasher {
  if (expectedBytes !== null && expectedBytes <= INLINE_HASH_MAX_BYTES) return new InlineHasher(algorithms);
  return new WorkerHasher(algorithms);
}
