/**
 * The FTP control connection's wire formats, in one place for every part of swfw that speaks
 * them: the server writes PASV and EPSV replies, the check-ports prober reads replies and parses
 * PASV and EPSV, and the tests' raw clients and fake servers do both.
 */

/** One FTP reply (RFC 959 §4.2): its code, each line as received (no CRLF), and the lines joined by `\n`. */
export interface FtpReply {
  /** The three-digit code; 0 for a line that is no reply at all (a broken or hostile server). */
  code: number;
  lines: string[];
  text: string;
}

/**
 * Splits text into lines as they complete: each ends at LF, a CR before it is dropped (RFC 959
 * lines end CRLF, and many clients and servers send a bare LF). The unfinished tail is kept for
 * the next push.
 */
export class LineSplitter {
  private buffer = '';

  push(chunk: string): string[] {
    this.buffer += chunk;
    const lines: string[] = [];
    let newline: number;
    while ((newline = this.buffer.indexOf('\n')) !== -1) {
      lines.push(this.buffer.slice(0, newline).replace(/\r$/, ''));
      this.buffer = this.buffer.slice(newline + 1);
    }
    return lines;
  }
}

/**
 * A command line's verb, upper-cased (verbs are case-insensitive, RFC 959 §5.3), and its argument:
 * everything after the first space, kept as sent (a path may hold spaces of its own).
 */
export function splitCommand(line: string): { verb: string; argument: string } {
  const space = line.indexOf(' ');
  return {
    verb: (space === -1 ? line : line.slice(0, space)).trim().toUpperCase(),
    argument: space === -1 ? '' : line.slice(space + 1),
  };
}

/** A reply line opens with three digits, then `-` (more lines follow) or a space (the last line). */
const REPLY_LINE = /^(\d{3})([ -])/;

/**
 * Splits a control connection's bytes into replies. A multi-line reply (RFC 959 §4.2) opens with
 * `ddd-` and ends at the first line starting `ddd ` with the same code; lines between may say
 * anything. A line that opens no reply becomes a reply of its own with code 0, so a caller sees
 * the protocol break instead of waiting for ever. Bytes are read as latin1: a reply's text is
 * shown, never decoded.
 */
export class ReplyParser {
  private readonly lines = new LineSplitter();
  private pending: string[] = [];

  /** Adds received bytes; returns the replies they complete, in order (often none). */
  push(chunk: Buffer | string): FtpReply[] {
    const complete: FtpReply[] = [];
    for (const line of this.lines.push(typeof chunk === 'string' ? chunk : chunk.toString('latin1'))) {
      this.pending.push(line);
      const opening = REPLY_LINE.exec(this.pending[0]!);
      const ends = !opening || opening[2] === ' ' || (this.pending.length > 1 && line.startsWith(`${opening[1]} `));
      if (!ends) continue;
      const lines = this.pending;
      this.pending = [];
      complete.push({ code: opening ? Number(opening[1]) : 0, lines, text: lines.join('\n') });
    }
    return complete;
  }
}

/** Text of a 227 reply for an IPv4 address and port: `Entering Passive Mode (h1,h2,h3,h4,p1,p2).` (RFC 959 §4.1.2). */
export function pasvReplyText(address: string, port: number): string {
  return `Entering Passive Mode (${address.split('.').join(',')},${port >> 8},${port & 0xff}).`;
}

/**
 * The address and port a 227 reply names, or null if it names none. RFC 959 fixes no wording
 * around the six numbers (some servers drop the parentheses), so the first six comma-separated
 * numbers count; any number over 255 makes the reply unreadable.
 */
export function parsePasvReply(text: string): { address: string; port: number } | null {
  const match = /(\d{1,3}),(\d{1,3}),(\d{1,3}),(\d{1,3}),(\d{1,3}),(\d{1,3})/.exec(text);
  if (!match) return null;
  const n = match.slice(1).map(Number);
  if (n.some((v) => v > 255)) return null;
  return { address: n.slice(0, 4).join('.'), port: n[4]! * 256 + n[5]! };
}

/** Text of a 229 reply: `Entering Extended Passive Mode (|||port|)` (RFC 2428 §3); the address is the control peer's. */
export function epsvReplyText(port: number): string {
  return `Entering Extended Passive Mode (|||${port}|)`;
}

/**
 * The port a 229 reply names, or null. RFC 2428 §3 lets the server pick the delimiter (any
 * printable character but a digit, `|` usually), used four times around the port.
 */
export function parseEpsvReply(text: string): number | null {
  const match = /\(([!-/:-~])\1\1(\d{1,5})\1\)/.exec(text);
  if (!match) return null;
  const port = Number(match[2]);
  return port >= 1 && port <= 65535 ? port : null;
}
