import type { BufferPool, PooledBuffer, SentBytesHash } from './sentBytesHash.js';
import type { ServerContext, TransferRecord } from './context.js';
import { read, readSync } from 'node:fs';
import * as Net from 'node:net';
import type { Socket } from 'node:net';
import { ackedBytesProbe } from './peerProgress.js';

/** Transfers up to this size read synchronously (see readChunk). */
const SYNC_READ_MAX_BYTES = 256 * 1024;

/**
 * Buffers one transfer may hold between disk and socket: one being written, one read ahead, so
 * the next read overlaps the current write. Two, not more: a reader that stops reading pins
 * every buffer it was handed until the stall check cuts it, and the server's pool is shared.
 */
const MAX_BUFFERS_IN_FLIGHT = 2;
/** How often a transfer checks for a stall (a quarter of the data timeout, at most this). */
const STALL_CHECK_MAX_MS = 1000;

export type SendOutcome =
  | { ok: true; bytes: number; sha256: string | null }
  | { ok: false; bytes: number; sha256: string | null; reason: SendFailure; error?: string };

/** Why a transfer ended early: `file-changed` when `unchangedAfterLastRead` said the file changed. */
export type SendFailure = 'stalled' | 'closed' | 'aborted' | 'read-error' | 'file-changed';

/**
 * Where sendFile writes: a data connection (net.Socket, tls.TLSSocket) or an HTTP response
 * (http.ServerResponse). Only what both offer is used: a write whose callback fires once the
 * sink accepted the chunk, end, destroy and 'close'.
 */
export interface SendSink {
  write(chunk: Uint8Array, callback: (err?: Error | null) => void): unknown;
  end(callback: () => void): unknown;
  destroy(): unknown;
  once(event: 'close', listener: () => void): unknown;
  removeListener(event: 'close', listener: () => void): unknown;
}

export interface SendFileOptions {
  /** Open descriptor of the file; the caller closes it. */
  fd: number;
  /** REST offset: the first byte to send. */
  offset: number;
  /** Bytes to send from `offset` (file size at open - offset). */
  length: number;
  /** Where the bytes go; destroyed when the transfer fails. */
  sink: SendSink;
  /**
   * The TCP socket under `sink`, for the acknowledged-bytes probe (peerProgress.ts). Default: the
   * sink itself when it is a net.Socket; null: write callbacks alone measure progress.
   */
  peerSocket?: Socket | null;
  /**
   * true (the default, FTP): end the sink once every byte was accepted, and resolve after that.
   * false (HTTP): resolve once every byte was accepted and leave the sink open, so the caller
   * can log the audit record before it ends the response.
   */
  endSink?: boolean;
  /**
   * No byte acknowledged by the peer for this long aborts the transfer ("stalled reader"),
   * whatever the write size: a slow but steady reader is never cut (see peerProgress.ts).
   */
  dataTimeoutMs: number;
  /** Hashes exactly the bytes the sink accepted, in order; null: no hash. */
  hash: SentBytesHash | null;
  pool: BufferPool;
  /**
   * Called once, after the last read and before its bytes are written: false (the file changed
   * since it was opened) fails the transfer with `file-changed` and withholds those bytes.
   */
  unchangedAfterLastRead?: () => boolean;
  /** Aborts the transfer (ABOR, shutdown). */
  signal?: AbortSignal;
  onProgress?: (bytesSent: number) => void;
}

/**
 * The RETR data path. Replaces ftp-srv's chunk-by-chunk pause/resume on 64 KiB reads (docs/design.md, ftp-srv defect 2),
 * which served 1 GiB 3.65x slower than vsftpd. Reads are 1 MiB into pooled buffers, up to
 * MAX_BUFFERS_IN_FLIGHT are queued to the socket so the next read overlaps the current write, and
 * the hash is updated on each buffer once, as it is handed to the socket: the digest describes
 * the bytes sent, not a re-read of the file.
 */
export function sendFile(options: SendFileOptions): Promise<SendOutcome> {
  const { fd, sink: socket, pool } = options;
  const endSink = options.endSink ?? true;
  // A small file is read on the event loop: one page-cache copy is cheaper than a thread-pool hop.
  const readChunk =
    options.length <= SYNC_READ_MAX_BYTES
      ? (into: Buffer, length: number, at: number) => Promise.resolve(readSync(fd, into, 0, length, at))
      : (into: Buffer, length: number, at: number) =>
          new Promise<number>((resolve, reject) => read(fd, into, 0, length, at, (err, n) => (err ? reject(err) : resolve(n))));
  const hash = options.hash;
  let position = options.offset;
  let remaining = options.length;
  let sentBytes = 0;
  let inFlight = 0;
  /** Writes handed to the sink whose callback has not fired yet. */
  let writesPending = 0;
  let finished = false;
  let reading = false;
  let readSettled: (() => void) | null = null;
  let endWaiting: () => void = () => {};
  /** Resolves null when the transfer fails, so a wait for a pool buffer stops. */
  const ended = new Promise<null>((resolve) => (endWaiting = () => resolve(null)));
  let ending = false;
  let finishing = false;
  let hashing = 0;
  let hashDrained: (() => void) | null = null;

  return new Promise<SendOutcome>((resolve) => {
    // Callers build the outcome (and so the digest) only after checking `finished`.
    const finish = (outcome: SendOutcome) => {
      if (finished) return;
      finished = true;
      clearInterval(stallCheck);
      socket.removeListener('close', onClose);
      options.signal?.removeEventListener('abort', onAbort);
      resolve(outcome);
    };
    // Resolves once every buffer handed to the hasher was hashed: the digest covers them all.
    const digest = async () => {
      while (hashing > 0) await new Promise<void>((resolve) => (hashDrained = resolve));
      return hash ? hash.digest() : null;
    };
    const fail = (reason: SendFailure, error?: string) => {
      if (finished || finishing) return;
      finishing = true;
      endWaiting();
      socket.destroy();
      // Resolve only after a read in flight has returned: the caller closes the descriptor next.
      const readIdle = reading ? new Promise<void>((resolve) => (readSettled = resolve)) : Promise.resolve();
      void readIdle.then(digest).then((sha256) => finish({ ok: false, bytes: sentBytes, sha256, reason, ...(error ? { error } : {}) }));
    };
    const onClose = () => {
      // An HTTP client that has every byte (Content-Length) may close before the hasher has
      // caught up: the sink accepted the whole body, so this is a complete transfer.
      if (!endSink && remaining === 0 && writesPending === 0 && !reading && !finished && !finishing) {
        finishing = true;
        void digest().then((sha256) => finish({ ok: true, bytes: sentBytes, sha256 }));
        return;
      }
      fail('closed');
    };
    const onAbort = () => fail('aborted');

    // Progress is a write the kernel took whole, or, once writes have been quiet for a quarter of
    // the timeout, a byte the peer acknowledged since then. The first look of a quiet spell only
    // notes the count: acknowledgements of bytes written before it (a peer that stopped reading
    // still acknowledges what fits its window) would otherwise restart the clock and cut a stalled
    // reader at 1.5 × the timeout. Looks come every quarter of the timeout, so a slow but steady
    // reader has three chances to show an acknowledgement before it would be cut. A healthy
    // transfer's writes complete far more often than that: it never reads the kernel's counts.
    // Time spent waiting for one of the server's buffers is the server's wait, not the client's
    // stall: the clock does not run then.
    let progressAt = Date.now();
    let ackedSeen = 0;
    /** The progressAt whose quiet spell has its acknowledged count noted. */
    let ackedNotedFor = -1;
    let waitingForBuffer = false;
    let probe: (() => number | null) | null | undefined;
    const stallCheck = setInterval(() => {
      if (waitingForBuffer) progressAt = Date.now();
      const quiet = Date.now() - progressAt;
      if (quiet < options.dataTimeoutMs / 4) return;
      if (probe === undefined) {
        const peer = options.peerSocket !== undefined ? options.peerSocket : socket instanceof Net.Socket ? socket : null;
        probe = peer ? ackedBytesProbe(peer) : null;
      }
      const acked = probe?.() ?? null;
      if (acked !== null && ackedNotedFor !== progressAt) {
        ackedSeen = acked;
        ackedNotedFor = progressAt;
      } else if (acked !== null && acked > ackedSeen) {
        ackedSeen = acked;
        progressAt = Date.now();
        ackedNotedFor = progressAt;
      }
      if (Date.now() - progressAt >= options.dataTimeoutMs) fail('stalled');
    }, Math.max(50, Math.min(STALL_CHECK_MAX_MS, options.dataTimeoutMs / 4)));
    socket.once('close', onClose);
    options.signal?.addEventListener('abort', onAbort, { once: true });
    if (options.signal?.aborted) return onAbort();

    const succeed = () => {
      if (finished || finishing) return;
      finishing = true;
      void digest().then((sha256) => finish({ ok: true, bytes: sentBytes, sha256 }));
    };
    /**
     * Once every byte is read: a sink we end gets its end queued behind the writes at once (its
     * 'finish' comes after every write's callback); a sink left open (HTTP: the caller ends the
     * response after the audit record) succeeds once every write is done.
     */
    const endWhenDrained = () => {
      if (remaining > 0 || finished || finishing || ending) return;
      if (endSink) {
        ending = true;
        socket.end(succeed);
      } else if (inFlight === 0) {
        ending = true;
        succeed();
      }
    };

    /** A buffer goes back to the pool once the socket and the hasher are both done with it. */
    const settle = (buffer: PooledBuffer, users: number) => {
      let left = users;
      return () => {
        if (--left > 0) return;
        inFlight--;
        pool.give(buffer);
        void pump();
        endWhenDrained();
      };
    };

    const pump = async () => {
      if (reading || finished || finishing) return;
      reading = true;
      try {
        while (!finished && !finishing && remaining > 0 && inFlight < MAX_BUFFERS_IN_FLIGHT) {
          let buffer = pool.tryTake();
          if (!buffer) {
            // Every server buffer is busy. With none of our own in flight we must wait for one;
            // otherwise our own writes completing will call pump again.
            if (inFlight > 0) break;
            const waiter = pool.wait();
            waitingForBuffer = true;
            buffer = await Promise.race([waiter, ended]).finally(() => {
              waitingForBuffer = false;
              progressAt = Date.now();
            });
            if (!buffer) {
              pool.cancel(waiter);
              return;
            }
          }
          const want = Math.min(remaining, buffer.bytes.length);
          const bytesRead = await readChunk(buffer.bytes, want, position);
          if (finished || finishing) {
            pool.give(buffer);
            return;
          }
          if (bytesRead === 0) {
            // The file shrank under us: send what there was, the audit shows the short count.
            pool.give(buffer);
            remaining = 0;
            break;
          }
          position += bytesRead;
          remaining -= bytesRead;
          // Every byte is read: if the file changed since it was opened, the bytes may mix two
          // versions, and the last buffer is withheld so that no client takes them for whole.
          if (remaining === 0 && options.unchangedAfterLastRead && !options.unchangedAfterLastRead()) {
            pool.give(buffer);
            fail('file-changed');
            return;
          }
          inFlight++;
          const done = settle(buffer, 2);
          writesPending++;
          socket.write(buffer.bytes.subarray(0, bytesRead), (err) => {
            writesPending--;
            const accepted = !err && !finished && !finishing;
            if (accepted) {
              progressAt = Date.now();
              sentBytes += bytesRead;
              options.onProgress?.(sentBytes);
            }
            if (accepted && hash) {
              // Hashed after the socket accepted it: the digest covers exactly the bytes sent.
              hashing++;
              hash.update(buffer, bytesRead, () => {
                hashing--;
                if (hashing === 0) hashDrained?.();
                done();
              });
            } else done();
            done(); // the socket is done with the buffer
          });
          // The FIN is queued behind the last write, in the same turn: a small file's data and
          // its end leave together, not one event-loop turn apart.
          if (remaining === 0) endWhenDrained();
        }
      } catch (err) {
        const e = err as NodeJS.ErrnoException;
        fail('read-error', e.code ? `${e.code}: ${e.message}` : String(e.message ?? err));
        return;
      } finally {
        reading = false;
        readSettled?.();
      }
      endWhenDrained();
    };
    void pump();
  });
}

/**
 * One image transfer with its evidence, for RETR and HTTP GET alike: sendFile with the server's
 * buffers and hasher (`hashSentBytes`), the file's version checked after the last read, and the
 * audit record's bytes, SHA-256 and its basis filled in. `size` is the file's size at open (a
 * whole transfer of a known version carries that version's digest). The caller writes its own
 * final reply; `versionChanged` means that reply must say failed.
 */
export async function transferImage(
  context: Pick<ServerContext, 'config' | 'pool' | 'hashing' | 'logger'>,
  options: Omit<SendFileOptions, 'hash' | 'unchangedAfterLastRead' | 'pool' | 'dataTimeoutMs'> & { size: number },
  record: TransferRecord,
): Promise<{ outcome: SendOutcome; versionChanged: boolean }> {
  const digest = context.hashing.begin(options.fd, options.offset, options.length, options.size);
  const outcome = await sendFile({ ...options, dataTimeoutMs: context.config.dataTimeoutMs, hash: digest.hash, unchangedAfterLastRead: digest.unchanged, pool: context.pool });
  const evidence = digest.settle(outcome);
  record.bytes = outcome.bytes;
  record.sha256 = evidence.sha256;
  record.sha256Basis = evidence.basis;
  if (evidence.versionChanged) {
    record.reason = 'file-changed';
    context.logger.error('image changed on disk while it was being sent: transfer failed', { path: record.path, client: record.client, protocol: record.protocol });
  } else if (!outcome.ok) {
    record.reason = outcome.reason;
    // Our disk failed, not the network: the client gets no path, the log gets the error.
    if (outcome.reason === 'read-error') {
      context.logger.error('disk read error while serving: transfer aborted', { path: record.path, offset: options.offset + outcome.bytes, error: outcome.error ?? 'unknown' });
    }
  }
  return { outcome, versionChanged: evidence.versionChanged };
}
