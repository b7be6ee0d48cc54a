/**
 * The rollout journal: append-only JSON lines, each durable (fdatasync) before the action it
 * announces goes further. A crash (kill -9, power loss) can only lose records not yet durable,
 * always a suffix; a torn last line (no newline, or not JSON) is cut off on open. Appends never
 * rewrite history, so there is no window in which an old state is half overwritten, as a
 * rewritten state file has.
 *
 * Appends are group-committed: records appended while a write + fdatasync is in flight go out
 * together in the next one, on the thread pool. A synchronous fdatasync per record blocked the
 * runner's event loop, which also runs the embedded FTP server: 1,400 records for 200 switches
 * held every transfer up for 2.4 s in all.
 */
import { closeSync, fdatasync, fsyncSync, ftruncateSync, openSync, readFileSync, write } from 'node:fs';
import { dirname } from 'node:path';
import { promisify } from 'node:util';

const writeAsync = promisify(write);
const fdatasyncAsync = promisify(fdatasync);

import type { JournalBody, JournalRecord } from './records.js';

export type { JournalBody, JournalRecord } from './records.js';

export function readJournal(path: string): { records: JournalRecord[]; validBytes: number; tornBytes: number } {
  let buffer: Buffer;
  try {
    buffer = readFileSync(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { records: [], validBytes: 0, tornBytes: 0 };
    throw err;
  }
  const records: JournalRecord[] = [];
  let offset = 0;
  for (;;) {
    const end = buffer.indexOf(0x0a, offset);
    if (end < 0) break;
    const line = buffer.subarray(offset, end).toString('utf8');
    let record: JournalRecord;
    try {
      record = JSON.parse(line) as JournalRecord;
    } catch {
      break; // a torn record: everything from here on is discarded
    }
    records.push(record);
    offset = end + 1;
  }
  return { records, validBytes: offset, tornBytes: buffer.length - offset };
}

interface PendingRecord {
  line: string;
  durable: () => void;
  failed: (err: Error) => void;
}

export class Journal {
  private seq: number;
  private pending: PendingRecord[] = [];
  private committing: Promise<void> | null = null;
  /** The first write or fdatasync error: the journal takes no more records after it. */
  private failure: Error | null = null;
  private closed = false;
  private closing: Promise<void> | null = null;

  private constructor(
    private readonly fd: number,
    readonly records: JournalRecord[],
    private readonly now: () => number,
  ) {
    this.seq = records.at(-1)?.seq ?? 0;
  }

  /** Opens (creating) the journal, replays it, and cuts a torn last record. */
  static open(path: string, now: () => number = Date.now): Journal {
    const { records, validBytes, tornBytes } = readJournal(path);
    const fd = openSync(path, 'a+', 0o600);
    if (tornBytes > 0) {
      ftruncateSync(fd, validBytes);
      fsyncSync(fd);
    }
    if (records.length === 0) {
      // The file's directory entry must be durable too.
      const dir = openSync(dirname(path), 'r');
      try {
        fsyncSync(dir);
      } catch {
        /* filesystems that cannot fsync a directory offer nothing stronger */
      } finally {
        closeSync(dir);
      }
    }
    return new Journal(fd, records, now);
  }

  /**
   * Appends one record; resolves once it is durable. It is in `records` at once (the file gets
   * records in that order), so a fold sees it before it is durable: act on a record only after
   * its append resolved.
   */
  append(body: JournalBody): Promise<JournalRecord> {
    if (this.failure) return Promise.reject(this.failure);
    if (this.closed) return Promise.reject(new Error('the journal is closed'));
    const record: JournalRecord = { seq: this.seq + 1, at: new Date(this.now()).toISOString(), ...body };
    // Serialized first: a record that cannot be written never reaches `records` or takes a seq.
    const line = `${JSON.stringify(record)}\n`;
    this.seq++;
    this.records.push(record);
    return new Promise((resolve, reject) => {
      this.pending.push({ line, durable: () => resolve(record), failed: reject });
      this.committing ??= this.commit();
    });
  }

  /** Writes and fdatasyncs everything pending, batch after batch, until nothing is left. */
  private async commit(): Promise<void> {
    try {
      while (this.pending.length > 0) {
        const batch = this.pending.splice(0);
        try {
          const data = Buffer.from(batch.map((p) => p.line).join(''));
          // O_APPEND: each write lands at the end; a short write is continued.
          for (let done = 0; done < data.length; ) done += (await writeAsync(this.fd, data, done, data.length - done)).bytesWritten;
          await fdatasyncAsync(this.fd);
        } catch (err) {
          this.failure = new Error(`cannot write the rollout journal: ${(err as Error).message}`);
          for (const p of [...batch, ...this.pending.splice(0)]) p.failed(this.failure);
          return;
        }
        for (const p of batch) p.durable();
      }
    } finally {
      this.committing = null;
    }
  }

  /** Waits until every record appended so far is durable (or failed), then closes the file. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      this.closed = true;
      while (this.committing) await this.committing;
      closeSync(this.fd);
    })();
    return this.closing;
  }
}
