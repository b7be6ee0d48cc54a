import { createHash, type Hash } from 'node:crypto';
import type { FileHandle } from 'node:fs/promises';
import type { Socket } from 'node:net';

/** Reusable read buffers, so a 1 GiB RETR does not map and fault 1024 fresh 1 MiB buffers. */
export class BufferPool {
  private readonly free: Buffer[] = [];
  constructor(
    readonly bufferBytes: number,
    private readonly maxPooled: number,
  ) {}
  take(): Buffer {
    return this.free.pop() ?? Buffer.allocUnsafeSlow(this.bufferBytes);
  }
  give(buffer: Buffer): void {
    if (this.free.length < this.maxPooled) this.free.push(buffer);
  }
}

/** Buffers one transfer may have between disk and socket: enough to keep both busy, bounded memory. */
const MAX_BUFFERS_IN_FLIGHT = 4;

export type SendOutcome =
  | { ok: true; bytes: number; sha256: string | null }
  | { ok: false; bytes: number; sha256: string | null; reason: 'stalled' | 'closed' | 'aborted' | 'read-error' };

export interface SendFileOptions {
  handle: FileHandle;
  /** REST offset: the first byte to send. */
  offset: number;
  /** Bytes to send from `offset` (file size at open - offset). */
  length: number;
  socket: Socket;
  /** No progress on the socket for this long aborts the transfer ("stalled reader"). */
  dataTimeoutMs: number;
  /** Compute the SHA-256 of exactly the bytes written to the socket. */
  hashSentBytes: boolean;
  pool: BufferPool;
  /** Aborts the transfer (ABOR, shutdown). */
  signal?: AbortSignal;
  onProgress?: (bytesSent: number) => void;
}

/**
 * The RETR data path. Replaces ftp-srv's chunk-by-chunk pause/resume on 64 KiB reads (defect 2),
 * which served 1 GiB 3.65x slower than vsftpd. Reads are 1 MiB into pooled buffers, up to
 * MAX_BUFFERS_IN_FLIGHT are queued to the socket so the next read overlaps the current write, and
 * the hash is updated on each buffer once, as it is handed to the socket: the digest describes
 * the bytes sent, not a re-read of the file.
 */
export function sendFile(options: SendFileOptions): Promise<SendOutcome> {
  const { handle, socket, pool } = options;
  const hash: Hash | null = options.hashSentBytes ? createHash('sha256') : null;
  let position = options.offset;
  let remaining = options.length;
  let sentBytes = 0;
  let inFlight = 0;
  let finished = false;
  let reading = false;
  let ending = false;

  return new Promise<SendOutcome>((resolve) => {
    // Callers build the outcome (and so the digest) only after checking `finished`.
    const finish = (outcome: SendOutcome) => {
      finished = true;
      socket.setTimeout(0);
      socket.removeListener('timeout', onStall);
      socket.removeListener('close', onClose);
      options.signal?.removeEventListener('abort', onAbort);
      if (!outcome.ok) socket.destroy();
      resolve(outcome);
    };
    const digest = () => (hash ? hash.digest('hex') : null);
    const fail = (reason: 'stalled' | 'closed' | 'aborted' | 'read-error') => {
      if (!finished) finish({ ok: false, bytes: sentBytes, sha256: digest(), reason });
    };
    const onStall = () => fail('stalled');
    const onClose = () => fail('closed');
    const onAbort = () => fail('aborted');

    socket.setTimeout(options.dataTimeoutMs);
    socket.once('timeout', onStall);
    socket.once('close', onClose);
    options.signal?.addEventListener('abort', onAbort, { once: true });
    if (options.signal?.aborted) return onAbort();

    const endWhenDrained = () => {
      if (remaining > 0 || inFlight > 0 || finished || ending) return;
      ending = true;
      socket.end(() => {
        if (!finished) finish({ ok: true, bytes: sentBytes, sha256: digest() });
      });
    };

    const pump = async () => {
      if (reading || finished) return;
      reading = true;
      try {
        while (!finished && remaining > 0 && inFlight < MAX_BUFFERS_IN_FLIGHT) {
          const buffer = pool.take();
          const want = Math.min(remaining, buffer.length);
          const { bytesRead } = await handle.read(buffer, 0, want, position);
          if (finished) {
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
          const chunk = bytesRead === buffer.length ? buffer : buffer.subarray(0, bytesRead);
          hash?.update(chunk);
          inFlight++;
          socket.write(chunk, (err) => {
            inFlight--;
            pool.give(buffer);
            if (err || finished) return;
            sentBytes += bytesRead;
            options.onProgress?.(sentBytes);
            void pump();
            endWhenDrained();
          });
        }
      } catch {
        fail('read-error');
        return;
      } finally {
        reading = false;
      }
      endWhenDrained();
    };
    void pump();
  });
}

