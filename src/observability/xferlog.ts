/**
 * `swfw serve --xferlog FILE`: one line per transfer (RETR, or an HTTP(S) GET with its service name `http`/`https`) in the xferlog format of wu-ftpd, as vsftpd
 * writes it (xferlog_std_format), so the tools that read FTP transfer logs (webalizer, awstats,
 * fail2ban filters, admins' awk) read ours:
 *
 *   current-time transfer-time remote-host file-size filename transfer-type special-action-flag
 *   direction access-mode username service-name authentication-method authenticated-user-id
 *   completion-status
 *
 * As vsftpd: the time in UTC ("%a %b %e %H:%M:%S %Y", its default use_localtime=NO), the transfer
 * time in whole seconds and at least 1, the bytes actually sent, spaces in the file name written
 * as `_`, `b` (swfw sends binary only), `_`, `o` (download), `r` and the user name (`a` and
 * `anonymous` for an anonymous login: vsftpd writes the anonymous password there, swfw never
 * writes a password), `ftp 0 *`, and `c` complete or `i` incomplete.
 */
import { closeSync, openSync, writeSync } from 'node:fs';
import type { Logger } from '../core/logger.js';
import type { TransferRecord } from '../server/context.js';
import type { FirmwareServer } from '../server/server.js';

const DAYS = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'];
const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
const two = (n: number) => String(n).padStart(2, '0');

/** ctime's form in UTC, e.g. `Tue Mar  5 09:04:01 2024` (the day of the month space-padded). */
export function xferlogTime(at: Date): string {
  const day = String(at.getUTCDate()).padStart(2, ' ');
  const clock = `${two(at.getUTCHours())}:${two(at.getUTCMinutes())}:${two(at.getUTCSeconds())}`;
  return `${DAYS[at.getUTCDay()]} ${MONTHS[at.getUTCMonth()]} ${day} ${clock} ${at.getUTCFullYear()}`;
}

/** A field without spaces or control characters: the line splits on spaces, one line per transfer. */
function field(text: string): string {
  return text.replace(/ /g, '_').replace(/[\x00-\x1f\x7f]/g, '?');
}

/** The xferlog line of one transfer (without its newline). */
export function xferlogLine(record: TransferRecord, finishedAt: Date): string {
  const seconds = Math.max(1, Math.round(record.durationMs / 1000));
  const anonymous = record.user === 'anonymous';
  return [
    xferlogTime(finishedAt),
    seconds,
    record.client,
    record.bytes,
    field(record.path),
    'b',
    '_',
    'o',
    anonymous ? 'a' : 'r',
    field(record.user || 'unknown'),
    // The service: `ftp`, or `http`/`https` for the same repository served over HTTP(S).
    record.protocol,
    '0',
    '*',
    record.result === 'complete' ? 'c' : 'i',
  ].join(' ');
}

/**
 * Appends a line per finished transfer to `file`, opened O_APPEND (every write lands at the end,
 * whoever else appends). `reopen()` (on SIGHUP, after logrotate renamed the file) opens the path
 * again; if that fails the old descriptor is kept, so no line is lost.
 */
export class Xferlog {
  private fd: number;
  private readonly onTransfer = (record: TransferRecord) => this.write(record);

  private constructor(
    private readonly file: string,
    private readonly server: FirmwareServer,
    private readonly logger: Logger,
  ) {
    this.fd = Xferlog.open(file);
    server.on('transfer', this.onTransfer);
  }

  /** Opens (creates, mode 0640) the file at once, so a bad path fails at start; throws its error. */
  static start(file: string, server: FirmwareServer, logger: Logger): Xferlog {
    return new Xferlog(file, server, logger);
  }

  private static open(file: string): number {
    return openSync(file, 'a', 0o640);
  }

  private write(record: TransferRecord): void {
    try {
      writeSync(this.fd, `${xferlogLine(record, new Date())}\n`);
    } catch (err) {
      this.logger.error('could not write the xferlog', { file: this.file, error: (err as Error).message });
    }
  }

  reopen(): void {
    let fd: number;
    try {
      fd = Xferlog.open(this.file);
    } catch (err) {
      this.logger.error('could not reopen the xferlog; still writing to the file it had open', { file: this.file, error: (err as Error).message });
      return;
    }
    closeSync(this.fd);
    this.fd = fd;
    this.logger.info('xferlog reopened', { file: this.file });
  }

  close(): void {
    this.server.removeListener('transfer', this.onTransfer);
    closeSync(this.fd);
  }
}
