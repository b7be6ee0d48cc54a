import { EventEmitter } from 'node:events';
import { open, rename, stat, unlink, type FileHandle } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Limits } from '../core/limits.js';
import { silentLogger, type Logger } from '../core/logger.js';
import { describeError } from '../core/errors.js';
import { fsyncDirectory, tempPathFor } from '../core/durableFile.js';
import { HASH_ALGORITHMS, withSha256, type Digests, type HashAlgorithm } from '../verify/algorithms.js';
import { InlineHasher, WorkerHasher, type BatchHasher } from '../verify/hasher.js';
import { judgeEvidence, type ReferenceEvidence, type Verdict, type VerdictReport } from '../verify/evidence.js';
import { FtpSession, RestUnsupported, type PassiveMode } from './ftp.js';
import { ImageWriter, type ReadStall } from './imageWriter.js';
import { LocalFailure, ShortTransferError, backoffDelay, classifyFailure, type BackoffPolicy } from './retry.js';
import type { FtpTarget } from './url.js';

export type PullHashing = 'worker' | 'inline' | 'none';

export interface PullOptions {
  target: FtpTarget;
  /** The password to log in with (the CLI takes it from SWFW_PASSWORD, or the URL with a warning). */
  password: string;
  /** Where the verified image goes. Nothing is ever left here unless it verified (or no reference was given).
   * `/dev/null` pulls and verifies without keeping the image. */
  out: string;
  /** The digests (and size, when known) the image must have; null pulls without verifying. */
  reference: ReferenceEvidence | null;
  /** Algorithms to compute besides SHA-256 (always) and the reference's. Each costs CPU (see HASH_SECONDS_PER_GIB). */
  extraAlgorithms?: readonly HashAlgorithm[];
  /** Explicit FTPS (AUTH TLS); default off. */
  tls?: { ca?: string | Buffer } | null;
  /** Default `pasv`, as switches do. */
  passive?: PassiveMode;
  /** Retries after a transient failure, and full re-pulls after a checksum mismatch. Default Limits.PULL_DEFAULT_RETRIES. */
  retries?: number;
  /** Default Limits.PULL_TIMEOUT_MS. */
  timeoutMs?: number;
  /** Source address of the control and data connections (default: the system picks). */
  localAddress?: string;
  /** Caps the receive rate (bytes per second) by reading no faster: the server sees a slow link. Default: no cap. */
  maxBytesPerSecond?: number;
  /** Stops reading once, for `ms`, after `afterBytes`: what a switch writing flash does (the emulator's `stall` fault). */
  stall?: ReadStall;
  /** Default Limits.PULL_BACKOFF_BASE_MS / PULL_BACKOFF_MAX_MS. */
  backoff?: BackoffPolicy;
  /**
   * Hash on worker threads (default: overlaps the network) or on the calling thread; `none` computes
   * no digest at all, as a switch's own `copy` does (only without a reference: nothing to verify).
   */
  hashing?: PullHashing;
  /** Minimum time between progress events. Default 200 ms. */
  progressIntervalMs?: number;
  /** Aborts the pull; the temp file is removed. */
  signal?: AbortSignal;
  logger?: Logger;
  /** Injected for tests: the jitter source and the clock. */
  random?: () => number;
  now?: () => number;
}

/**
 * - `verified`: the image matched the reference and is at `out`.
 * - `unverified`: no reference was given; the image is at `out`, sizes checked only.
 * - `mismatch`: the checksum stayed wrong after every re-pull; nothing at `out`.
 * - `transfer-failed`: a permanent error, or transient ones beyond the retries; nothing at `out`.
 * - `local-error`: our disk or hash worker failed; nothing at `out`.
 * - `interrupted`: the signal aborted the pull; nothing at `out`.
 */
export type PullOutcome = 'verified' | 'unverified' | 'mismatch' | 'transfer-failed' | 'local-error' | 'interrupted';

export interface PullResult {
  outcome: PullOutcome;
  /** The evidence verdict of the last complete transfer (null if none completed). */
  verdict: Verdict | null;
  report: VerdictReport | null;
  /** One line for an operator. */
  reason: string;
  /** The URL without its password. */
  url: string;
  /** The verified image, or null when nothing was written. */
  out: string | null;
  /** True for `--out /dev/null`: verified in transit, not kept. */
  discarded: boolean;
  bytes: number;
  /** What SIZE announced (null if the server does not implement SIZE). */
  remoteSize: number | null;
  durationMs: number;
  /** Digests of the last complete transfer. */
  digests: Digests;
  reference: ReferenceEvidence | null;
  algorithms: HashAlgorithm[];
  hashing: PullHashing;
  /** Connections made. */
  attempts: number;
  /** REST offsets sent, in order (a resume keeps the bytes on disk and the hash state). */
  restOffsets: number[];
  /** Full re-pulls from byte 0 after a mismatch (or a server without REST). */
  restarts: number;
  /** The reply code of the failure that ended the pull, if one did. */
  replyCode: number | null;
  /** A 227 reply named another address than the control host's (NAT): its port was used with the control host. */
  passiveAddressReplaced: boolean;
}

export interface PullProgress {
  bytes: number;
  totalBytes: number | null;
  bytesPerSecond: number;
  etaMs: number | null;
  attempt: number;
}

export interface PullEvents {
  progress: [PullProgress];
  attempt: [{ attempt: number; offset: number }];
  retry: [{ attempt: number; delayMs: number; reason: string; replyCode: number | null; keptBytes: number }];
  restart: [{ restarts: number; reason: string }];
}

/** A pull that cannot start as asked (bad --out); the CLI reports it as a usage error. */
export class PullUsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PullUsageError';
  }
}

interface TempFile {
  /** Null in discard mode. */
  path: string | null;
  handle: FileHandle | null;
  writer: ImageWriter;
}

/** `--out /dev/null`: pull and verify without keeping the image (no temp file, no fsync, no rename). */
export const DISCARD_OUT = '/dev/null';

/**
 * Pulls one image the way a switch does, and proves it.
 *
 * - One pass: bytes are hashed as they arrive (worker thread) and written in 4 MiB batches to a
 *   temp file next to `out`; nothing is read back.
 * - A data connection that breaks (426, reset, timeout, short transfer) is resumed on a new
 *   connection with REST from the bytes on disk; the hash state carries on over the kept prefix.
 * - A complete transfer whose digest does not match is discarded and pulled again from byte 0.
 * - Only a verified image is fsynced and renamed into place (and the directory fsynced).
 *
 * Emits `progress`, `attempt`, `retry` and `restart` events (see PullEvents) for displays and the
 * rollout runner.
 */
export class Puller extends EventEmitter<PullEvents> {
  private readonly options: PullOptions;
  private readonly logger: Logger;
  private readonly now: () => number;
  private readonly algorithms: HashAlgorithm[];
  private hasher: BatchHasher | null = null;
  private temp: TempFile | null = null;
  private session: FtpSession | null = null;
  private attempts = 0;
  /** A PASV reply named another address than the control host (reported once). */
  private passiveReplaced = false;
  private attemptNumber = 0;
  private lastProgress = { at: 0, bytes: 0, rate: 0 };
  private remoteSize: number | null = null;
  private readonly restOffsets: number[] = [];
  /** Bytes kept when the current attempt's RETR started: more after a failure means it made progress. */
  private attemptStartBytes = 0;

  constructor(options: PullOptions) {
    super();
    this.options = options;
    this.logger = (options.logger ?? silentLogger).child({ component: 'pull', url: options.target.display });
    this.now = options.now ?? (() => performance.now());
    const wanted = new Set<HashAlgorithm>(options.extraAlgorithms ?? []);
    for (const algorithm of HASH_ALGORITHMS) if (options.reference?.digests[algorithm]) wanted.add(algorithm);
    if (options.hashing === 'none' && options.reference) throw new PullUsageError('a pull with a reference must hash: hashing "none" needs reference null');
    this.algorithms = options.hashing === 'none' ? [] : withSha256(wanted);
  }

  async run(): Promise<PullResult> {
    const o = this.options;
    const started = this.now();
    const out = resolve(o.out);
    await this.checkOut(out);
    const retries = o.retries ?? Limits.PULL_DEFAULT_RETRIES;
    const backoff = o.backoff ?? { baseMs: Limits.PULL_BACKOFF_BASE_MS, maxMs: Limits.PULL_BACKOFF_MAX_MS };
    const hashing = o.hashing ?? 'worker';
    const restOffsets = this.restOffsets;
    let restarts = 0;
    let mismatches = 0;
    let failuresInRow = 0;
    let resumesAfterProgress = 0;
    let restSupported = true;
    let digests: Digests = {};
    let report: VerdictReport | null = null;
    let committed = false;

    const result = (outcome: PullOutcome, reason: string, replyCode: number | null = null): PullResult => ({
      outcome,
      verdict: report?.verdict ?? null,
      report,
      reason,
      url: o.target.display,
      out: committed && out !== DISCARD_OUT ? out : null,
      discarded: out === DISCARD_OUT,
      bytes: this.temp?.writer.bytes ?? 0,
      remoteSize: this.remoteSize,
      durationMs: Math.round(this.now() - started),
      digests,
      reference: o.reference,
      algorithms: this.algorithms,
      hashing,
      attempts: this.attempts,
      restOffsets,
      restarts,
      replyCode,
      passiveAddressReplaced: this.passiveReplaced,
    });

    const onAbort = () => this.session?.close();
    o.signal?.addEventListener('abort', onAbort);
    this.hasher = hashing === 'worker' ? new WorkerHasher(this.algorithms) : new InlineHasher(this.algorithms);
    try {
      await this.openTemp(out);
      for (;;) {
        if (o.signal?.aborted) return result('interrupted', 'interrupted');
        this.attempts++;
        this.attemptStartBytes = this.temp!.writer.bytes;
        try {
          await this.transferOnce(restSupported);
        } catch (err) {
          this.session?.close();
          this.session = null;
          const temp = this.temp!;
          await temp.writer.flush(); // a LocalFailure here ends the pull below
          if (o.signal?.aborted) return result('interrupted', 'interrupted');
          if (err instanceof RestUnsupported) {
            // Not the network's fault, but the kept bytes are useless: start from 0 without REST.
            restSupported = false;
            restarts++;
            this.emit('restart', { restarts, reason: 'REST not supported' });
            this.logger.warn('server refused REST: pulling again from byte 0', { code: err.replyCode });
            await this.restart(out);
            if (restarts > retries) return result('transfer-failed', `server refused REST (${err.replyCode}) and the transfer keeps breaking`, err.replyCode);
            continue;
          }
          const failure = classifyFailure(err);
          if (failure.kind === 'local') return result('local-error', failure.reason);
          if (failure.kind === 'permanent') {
            this.logger.warn('permanent failure: not retrying', { reason: failure.reason, code: failure.replyCode });
            return result('transfer-failed', failure.reason, failure.replyCode);
          }
          const progressed = temp.writer.bytes > this.attemptStartBytes;
          if (progressed) {
            failuresInRow = 1;
            resumesAfterProgress++;
          } else failuresInRow++;
          if (failuresInRow > retries || resumesAfterProgress > Limits.PULL_MAX_RESUMES) {
            return result('transfer-failed', `${failure.reason} (gave up after ${this.attempts} attempts)`, failure.replyCode);
          }
          const delayMs = backoffDelay(failuresInRow, backoff, o.random);
          // The event first: a progress display clears its line before the warning is printed.
          this.emit('retry', { attempt: this.attempts, delayMs, reason: failure.reason, replyCode: failure.replyCode, keptBytes: temp.writer.bytes });
          this.logger.warn('transfer failed; retrying', {
            reason: failure.reason,
            code: failure.replyCode,
            attempt: this.attempts,
            keptBytes: temp.writer.bytes,
            delayMs,
          });
          try {
            await sleep(delayMs, undefined, o.signal ? { signal: o.signal } : {});
          } catch {
            return result('interrupted', 'interrupted');
          }
          continue;
        }

        // A complete transfer: SIZE and the byte count agree (or SIZE is unknown).
        const temp = this.temp!;
        digests = await temp.writer.finish();
        const bytesAtEnd = temp.writer.bytes;
        report = judgeEvidence({ reference: o.reference, client: { digests, bytes: bytesAtEnd } });
        this.emitProgress(true);
        const oversize = this.remoteSize !== null && bytesAtEnd > this.remoteSize;
        if ((report.ok || report.verdict === 'unverified') && !oversize) {
          await this.commit(out);
          committed = true;
          if (report.verdict === 'unverified') {
            this.logger.info('no reference digest given: the image was pulled but NOT verified', { sha256: digests.sha256 });
            return result('unverified', report.reason);
          }
          this.logger.info('image verified', { bytes: bytesAtEnd, sha256: digests.sha256 });
          return result('verified', report.reason);
        }
        const why = oversize ? `${bytesAtEnd} bytes arrived but SIZE announced ${this.remoteSize}` : report.reason;
        mismatches++;
        this.logger.warn('checksum mismatch: discarding the temp file', { verdict: report.verdict, reason: why, mismatches, retries });
        if (mismatches > retries) {
          await this.discardTemp();
          return result('mismatch', `${why} (in each of ${mismatches} complete transfers)`);
        }
        restarts++;
        this.emit('restart', { restarts, reason: why });
        await this.restart(out);
        failuresInRow = 0;
      }
    } catch (err) {
      if (err instanceof LocalFailure) return result('local-error', err.message);
      throw err;
    } finally {
      o.signal?.removeEventListener('abort', onAbort);
      this.session?.close();
      this.session = null;
      await this.hasher.close();
      if (!committed) await this.discardTemp();
      else this.temp?.writer.dispose(); // finish() flushed it
    }
  }

  /** One connection: login, SIZE, RETR (with REST when bytes are kept). Resolves when all bytes arrived. */
  private async transferOnce(restSupported: boolean): Promise<void> {
    const o = this.options;
    this.attemptNumber = this.attempts;
    this.session = await FtpSession.open({
      host: o.target.host,
      port: o.target.port,
      user: o.target.user,
      password: o.password,
      tls: o.tls ?? null,
      passive: o.passive ?? 'pasv',
      timeoutMs: o.timeoutMs ?? Limits.PULL_TIMEOUT_MS,
      ...(o.localAddress ? { localAddress: o.localAddress } : {}),
      onPassiveAddressReplaced: (named, used) => {
        if (!this.passiveReplaced) this.logger.warn('the PASV reply named another address (NAT?): its port is used with the control host', { named, used });
        this.passiveReplaced = true;
      },
    });
    await this.session.walk(o.target.absolute, o.target.directories);
    const size = await this.session.size(o.target.file);
    if (size !== null && this.remoteSize !== null && size !== this.remoteSize && this.temp!.writer.bytes > 0) {
      // The file on the server changed between attempts: the kept prefix belongs to another file.
      this.logger.warn('remote size changed between attempts: pulling again from byte 0', { was: this.remoteSize, now: size });
      await this.restart(resolve(o.out));
    }
    if (size !== null) this.remoteSize = size;
    if (o.reference?.size != null && size !== null && size !== o.reference.size) {
      this.logger.warn('the server announces a size other than the reference', { remote: size, reference: o.reference.size });
    }
    let offset = this.temp!.writer.bytes;
    if (offset > 0 && (!restSupported || (this.remoteSize !== null && offset > this.remoteSize))) {
      await this.restart(resolve(o.out));
      offset = 0;
    }
    this.attemptStartBytes = offset;
    this.emit('attempt', { attempt: this.attempts, offset });
    if (this.remoteSize === null || offset < this.remoteSize || (offset === 0 && this.remoteSize === 0)) {
      if (offset > 0) {
        this.restOffsets.push(offset);
        this.logger.info('resuming with REST', { offset, remoteSize: this.remoteSize });
      }
      const sink = this.temp!.writer.attempt(o.maxBytesPerSecond ?? null, o.stall ?? null);
      try {
        await this.session.download(sink, o.target.file, offset);
      } finally {
        sink.close();
      }
    }
    await this.temp!.writer.flush();
    const bytes = this.temp!.writer.bytes;
    if (this.remoteSize !== null && bytes < this.remoteSize) throw new ShortTransferError(bytes, this.remoteSize);
    this.session.close();
    this.session = null;
  }

  private async checkOut(out: string): Promise<void> {
    if (out === DISCARD_OUT) return;
    const dir = dirname(out);
    const dirStats = await stat(dir).catch(() => null);
    if (!dirStats?.isDirectory()) throw new PullUsageError(`--out: directory ${dir} does not exist`);
    const outStats = await stat(out).catch(() => null);
    if (outStats && !outStats.isFile()) throw new PullUsageError(`--out: ${out} exists and is not a regular file`);
  }

  private async openTemp(out: string): Promise<void> {
    let path: string | null = null;
    let handle: FileHandle | null = null;
    if (out !== DISCARD_OUT) {
      path = tempPathFor(out, 'part');
      try {
        handle = await open(path, 'wx', 0o644);
      } catch (err) {
        throw new LocalFailure(`cannot create the temp file next to ${out}: ${describeError(err)}`, err);
      }
    }
    const writer = new ImageWriter(handle, this.hasher!, {
      batchBytes: Limits.PULL_BATCH_BYTES,
      batches: Limits.PULL_BATCHES_IN_FLIGHT,
      syncEveryBytes: Limits.PULL_SYNC_EVERY_BYTES,
      onBytes: () => this.emitProgress(false),
    });
    this.temp = { path, handle, writer };
  }

  private async discardTemp(): Promise<void> {
    const temp = this.temp;
    if (!temp) return;
    await temp.writer.flush().catch(() => {});
    temp.writer.dispose();
    await temp.handle?.close().catch(() => {});
    if (temp.path) await unlink(temp.path).catch(() => {});
  }

  /** Discards the temp file and the hash state: the next transfer starts from byte 0. */
  private async restart(out: string): Promise<void> {
    await this.discardTemp();
    this.hasher!.reset();
    this.lastProgress = { at: 0, bytes: 0, rate: 0 };
    await this.openTemp(out);
  }

  /** fsync the data, rename into place, fsync the directory: the image is durable before we say so. */
  private async commit(out: string): Promise<void> {
    const temp = this.temp!;
    if (!temp.handle || !temp.path) return; // discard mode: nothing to keep
    try {
      await temp.handle.sync();
      await temp.handle.close();
      await rename(temp.path, out);
      await fsyncDirectory(dirname(out));
    } catch (err) {
      throw new LocalFailure(`cannot move the verified image into place: ${describeError(err)}`, err);
    }
  }

  private emitProgress(final: boolean): void {
    const now = this.now();
    const bytes = this.temp?.writer.bytes ?? 0;
    const interval = this.options.progressIntervalMs ?? 200;
    const last = this.lastProgress;
    if (!final && now - last.at < interval) return;
    if (last.at > 0 && now > last.at && bytes >= last.bytes) {
      const instant = ((bytes - last.bytes) * 1000) / (now - last.at);
      last.rate = last.rate === 0 ? instant : 0.7 * last.rate + 0.3 * instant;
    }
    last.at = now;
    last.bytes = bytes;
    const total = this.remoteSize ?? this.options.reference?.size ?? null;
    const etaMs = total !== null && last.rate > 0 ? Math.max(0, ((total - bytes) * 1000) / last.rate) : null;
    this.emit('progress', { bytes, totalBytes: total, bytesPerSecond: last.rate, etaMs, attempt: this.attemptNumber });
  }
}

/** Runs one pull; see Puller for the events. */
export function pull(options: PullOptions): Promise<PullResult> {
  return new Puller(options).run();
}
