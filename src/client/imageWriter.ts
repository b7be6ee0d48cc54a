import type { FileHandle } from 'node:fs/promises';
import { Writable } from 'node:stream';
import type { Digests } from '../verify/algorithms.js';
import type { BatchHasher } from '../verify/hasher.js';
import type { DataFlow, DirectReceiver } from './ftp.js';
import { Limits } from '../core/limits.js';
import { LocalFailure } from './retry.js';

export interface ImageWriterOptions {
  /** Bytes per batch: one write(2) and one hash message each. */
  batchBytes: number;
  /** Batches in flight; memory is bounded by batchBytes x batches whatever the network does. */
  batches: number;
  /** Start a background fdatasync after this many bytes, so the final fsync finds little to flush. 0: never. */
  syncEveryBytes: number;
  /** Called with the running byte count after each chunk. */
  onBytes?: (bytes: number) => void;
}

/** Stop reading the data connection once, for `ms`, after `afterBytes` (a switch busy writing flash). */
export interface ReadStall {
  afterBytes: number;
  ms: number;
}

/**
 * One attempt's view of the writer: the data connection feeds `receiver` (plain FTP) or is piped
 * into `stream` (FTPS); either way the bytes land in the same batches.
 */
export interface AttemptSink {
  stream: Writable;
  receiver: DirectReceiver;
  /** After the attempt settled: chunks that still arrive are dropped (and not counted). */
  close(): void;
}

/**
 * Batches left by finished pulls for the next one in the same process. A fleet emulator runs
 * hundreds of pulls: fresh 4 MiB buffers for each cost the kernel a page fault per 4 KiB and V8 a
 * garbage collection per few pulls, more than the copy into them. At most
 * Limits.PULL_SPARE_BATCHES are kept.
 */
const spareBatches: Buffer[] = [];

/**
 * The one pass of a pull: bytes from the data connection are copied into large batches; each full
 * batch is written to the temp file (positional write, libuv thread pool), then hashed (worker
 * thread), then reused. With several batches in flight, receiving, writing and hashing overlap.
 * Nothing is read back.
 *
 * The invariant a resume relies on: after `flush()`, the file holds exactly `bytes` bytes and the
 * hasher has consumed exactly those bytes, in order. A REST from `bytes` then continues both.
 */
export class ImageWriter {
  private readonly free: Buffer[] = [];
  /** Batches taken so far (at most options.batches): a small image never needs all of them. */
  private allocated = 0;
  private disposed = false;
  private readonly waiters: Array<() => void> = [];
  private readonly inFlight = new Set<Promise<void>>();
  private current: Buffer | null = null;
  private currentLength = 0;
  /** Bytes accepted from the network. */
  private accepted = 0;
  /** Bytes handed to disk and hasher (the file position of the next batch). */
  private submitted = 0;
  private sinceSync = 0;
  private syncing = false;
  /**
   * Bytes that arrived while no batch was free, in arrival order; each is a copy, since the direct
   * receiver's read buffer is reused. `draining` copies them into batches as batches come back.
   */
  private readonly queued: Buffer[] = [];
  private draining: Promise<void> | null = null;
  private failure: LocalFailure | null = null;
  /** Writes go out one at a time: ext4 serializes writers on the inode lock anyway, and concurrent ones only spin on it. */
  private lastWrite: Promise<void> = Promise.resolve();

  /** `handle` null: discard mode (`--out /dev/null`), bytes are hashed and counted but not stored. */
  constructor(
    private readonly handle: FileHandle | null,
    private readonly hasher: BatchHasher,
    private readonly options: ImageWriterOptions,
  ) {}

  /** Bytes received so far (after `flush()`: bytes on disk and hashed). */
  get bytes(): number {
    return this.accepted;
  }

  /**
   * `bytesPerSecond`: this attempt reads no faster (each write's callback is held until the rate
   * allows it, so the data connection is paused and TCP pushes back on the sender).
   */
  attempt(bytesPerSecond: number | null = null, stall: ReadStall | null = null): AttemptSink {
    let open = true;
    let started = performance.now();
    let received = 0;
    let stalled = false;
    let pacing: { timer: NodeJS.Timeout; callback: () => void } | null = null;
    const paced = (callback: (err?: Error | null) => void) => {
      if (!open) return callback();
      let dueMs = bytesPerSecond ? (received * 1000) / bytesPerSecond - (performance.now() - started) : 0;
      if (stall && !stalled && received >= stall.afterBytes) {
        // One stop, then the rate cap starts over: the pause is not made up for by a burst.
        stalled = true;
        dueMs = stall.ms;
        started += stall.ms;
      }
      if (dueMs <= 5) return callback();
      // One hold at a time: an earlier one still waiting is released now (the stream path never
      // has two; the direct path has one only if something resumed the socket behind our back).
      if (pacing) {
        clearTimeout(pacing.timer);
        pacing.callback();
      }
      const release = () => {
        pacing = null;
        callback();
      };
      pacing = { timer: setTimeout(release, dueMs), callback: release };
    };
    /** Takes a chunk; `ready` runs (at once, or later) when the next one may come, or with the error that ends the attempt. */
    const take = (chunk: Buffer, ready: (err?: Error | null) => void) => {
      received += chunk.length;
      try {
        const waiting = this.append(chunk);
        if (waiting) waiting.then(() => paced(ready), ready);
        else paced(ready);
      } catch (err) {
        ready(err as Error);
      }
    };
    const stream = new Writable({
      highWaterMark: bytesPerSecond ? 64 * 1024 : 1024 * 1024,
      write: (chunk: Buffer, _encoding, callback) => {
        if (!open) return callback();
        take(chunk, callback);
      },
    });
    let flow: DataFlow | null = null;
    let holds = 0;
    const receiver: DirectReceiver = {
      attach: (f) => {
        flow = f;
      },
      onData: (chunk) => {
        const f = flow;
        if (!open || !f) return;
        // The socket reuses `chunk` for its next read; append() copies it (into batches, or a
        // queue when none is free). The socket is paused while batches are short or the rate cap
        // holds. Only the latest hold may resume it: basic-ftp's pipe can resume a paused socket
        // once, and the hold of the chunk read then replaces the one before.
        const hold = ++holds;
        let later = false;
        let readyAtOnce = false;
        take(chunk, (err) => {
          if (err) f.destroy(err);
          else if (!later) readyAtOnce = true;
          else if (hold === holds) f.resume();
        });
        later = true;
        if (!readyAtOnce) f.pause();
      },
    };
    const close = () => {
      open = false;
      if (pacing) {
        clearTimeout(pacing.timer);
        pacing.callback();
      }
    };
    return { stream, receiver, close };
  }

  /**
   * Copies a chunk into batches. Returns a promise only when part of it had to wait for a free
   * batch (then queued as a copy, so the caller may reuse `chunk` at once); it resolves when the
   * queue is in batches. Chunks that arrive meanwhile queue behind it, in order.
   */
  private append(chunk: Buffer): Promise<void> | undefined {
    if (this.failure) throw this.failure;
    if (this.draining) {
      this.queued.push(Buffer.from(chunk));
      return this.draining;
    }
    const copied = this.fill(chunk);
    this.options.onBytes?.(this.accepted);
    if (copied === chunk.length) return undefined;
    this.queued.push(Buffer.from(chunk.subarray(copied)));
    this.draining = this.drain();
    return this.draining;
  }

  /** Copies as much of `chunk` as the current and free batches take; returns the bytes copied. */
  private fill(chunk: Buffer): number {
    let offset = 0;
    while (offset < chunk.length) {
      if (!this.current) {
        const batch = this.free.pop() ?? this.newBatch();
        if (!batch) break;
        this.current = batch;
        this.currentLength = 0;
      }
      const copied = chunk.copy(this.current, this.currentLength, offset);
      this.currentLength += copied;
      offset += copied;
      this.accepted += copied;
      if (this.currentLength === this.current.length) this.submit();
    }
    return offset;
  }

  /** Moves the queue into batches, waiting for each batch to come back from the disk and hasher. */
  private async drain(): Promise<void> {
    try {
      while (this.queued.length > 0) {
        const chunk = this.queued[0]!;
        const copied = this.fill(chunk);
        if (copied > 0) this.options.onBytes?.(this.accepted);
        if (copied === chunk.length) {
          this.queued.shift();
          continue;
        }
        this.queued[0] = chunk.subarray(copied);
        await new Promise<void>((resolve) => this.waiters.push(resolve));
        if (this.failure) throw this.failure;
      }
    } finally {
      this.draining = null;
    }
  }

  /** A batch from the spares or the hasher, while fewer than options.batches are out; else null. */
  private newBatch(): Buffer | null {
    if (this.allocated >= this.options.batches) return null;
    this.allocated++;
    const spare = spareBatches.pop();
    // Spares come from some hasher's allocate(): each owns its whole ArrayBuffer, as every hasher needs.
    return spare && spare.length === this.options.batchBytes ? spare : this.hasher.allocate(this.options.batchBytes);
  }

  /**
   * Gives the idle batches to the next pull in this process. Call once, after flush() (or finish())
   * settled, when this writer is done; it must not be used afterwards.
   */
  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    while (this.free.length > 0 && spareBatches.length < Limits.PULL_SPARE_BATCHES) spareBatches.push(this.free.pop()!);
    this.free.length = 0;
  }

  private submit(): void {
    const batch = this.current!;
    const length = this.currentLength;
    const position = this.submitted;
    this.current = null;
    this.currentLength = 0;
    this.submitted += length;
    // Write, then hash: the worker hasher takes ownership of the batch's memory, so the two cannot
    // share it. Batches still overlap: batch n is hashed while batch n+1 is written. Writes are
    // chained, so batches reach the hasher in order.
    const written = this.lastWrite.then(() => this.writeFully(batch, length, position));
    this.lastWrite = written.catch(() => {});
    const done = written
      .then(
        () => this.hasher.update(batch, length),
        (err: unknown) => {
          this.fail(err);
          return batch; // the write failed, the batch is still ours
        },
      )
      .then(
        (reusable) => this.release(reusable),
        (err: unknown) => this.fail(err), // the batch went down with the worker
      );
    this.track(done);
    this.sinceSync += length;
    if (this.handle && this.options.syncEveryBytes > 0 && this.sinceSync >= this.options.syncEveryBytes && !this.syncing) {
      const handle = this.handle;
      // Writeback overlaps the transfer instead of piling up for the final fsync.
      this.sinceSync = 0;
      this.syncing = true;
      this.track(
        written
          .then(() => handle.datasync())
          .catch(() => {}) // a failed early sync is repeated by the final fsync, which does fail the pull
          .finally(() => (this.syncing = false)),
      );
    }
  }

  private async writeFully(batch: Buffer, length: number, position: number): Promise<void> {
    if (!this.handle) return;
    try {
      // A positional write may be short; loop until the batch is out.
      let done = 0;
      while (done < length) {
        const { bytesWritten } = await this.handle.write(batch, done, length - done, position + done);
        done += bytesWritten;
      }
    } catch (err) {
      throw new LocalFailure(`cannot write the temp file: ${(err as Error).message}`, err);
    }
  }

  private track(promise: Promise<void>): void {
    this.inFlight.add(promise);
    void promise.finally(() => this.inFlight.delete(promise));
  }

  /** Records the first failure and wakes every waiting append, which then throws it. */
  private fail(err: unknown): void {
    this.failure ??= err instanceof LocalFailure ? err : new LocalFailure(`hashing failed: ${(err as Error).message}`, err);
    for (const wake of this.waiters.splice(0)) wake();
  }

  private release(batch: Buffer): void {
    this.free.push(batch);
    this.waiters.shift()?.();
  }

  /** Writes and hashes everything accepted so far and waits until it is done. Throws a LocalFailure if any write or hash failed. */
  async flush(): Promise<void> {
    for (;;) {
      if (this.draining) await this.draining.catch(() => {});
      else if (this.current && this.currentLength > 0) this.submit();
      else if (this.inFlight.size > 0) await Promise.all(this.inFlight);
      else break;
    }
    if (this.failure) throw this.failure;
  }

  /** Flushes, then returns the digests of every byte accepted (the hasher starts over afterwards). */
  async finish(): Promise<Digests> {
    await this.flush();
    try {
      return await this.hasher.digest();
    } catch (err) {
      throw new LocalFailure(`hashing failed: ${(err as Error).message}`, err);
    }
  }
}
