/**
 * The rollout journal: append-only JSON lines, one fsync (fdatasync) per record, before the action
 * it announces goes further. A crash (kill -9, power loss) can only lose the record being written;
 * a torn last line (no newline, or not JSON) is cut off on open. Appends never rewrite history, so
 * there is no window in which an old state is half overwritten, as a rewritten state file has.
 */
import { closeSync, fdatasyncSync, fsyncSync, ftruncateSync, openSync, readFileSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';

export type JournalRecord = { seq: number; at: string; t: string } & Record<string, unknown>;

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

export class Journal {
  private seq: number;

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

  /** Appends one record and makes it durable before returning. */
  append(t: string, fields: Record<string, unknown> = {}): JournalRecord {
    const record = { seq: ++this.seq, at: new Date(this.now()).toISOString(), t, ...fields } as JournalRecord;
    writeSync(this.fd, `${JSON.stringify(record)}\n`);
    fdatasyncSync(this.fd);
    this.records.push(record);
    return record;
  }

  close(): void {
    closeSync(this.fd);
  }
}
