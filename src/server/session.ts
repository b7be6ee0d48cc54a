import type { Socket } from 'node:net';
import { TLSSocket } from 'node:tls';
import { setTimeout as delay } from 'node:timers/promises';
import { Limits } from '../core/limits.js';
import { ReplyCode } from '../core/replyCodes.js';
import { FtpReplyError, describeError } from '../core/errors.js';
import { canonicalAddress } from '../core/address.js';
import { splitCommand } from '../core/ftpWire.js';
import type { Logger } from '../core/logger.js';
import type { ServerContext } from './context.js';
import type { DataChannel } from './dataChannel.js';
import { COMMANDS, gate } from './commandTable.js';
import type { CommandSpec } from './commandSpec.js';

/** Pipelined commands queued before the session stops reading its socket (back-pressure). */
const MAX_QUEUED_COMMANDS = 32;
/** After a closing reply, how long the peer gets to close before the socket is destroyed. */
const CLOSE_LINGER_MS = 2000;
const TELNET_IAC = 0xff;
const LF = 0x0a;
const CR = 0x0d;
/**
 * A CR that ends the data received, with no LF after it this long, ends the line. Python's
 * ftplib.abort() sends `ABOR\r\n` as urgent data (MSG_OOB); without SO_OOBINLINE (Node cannot set
 * it) Linux drops the urgent byte, the LF, and a server waiting for it would never answer.
 * Clients send CRLF in one write, so a real line is never split here.
 */
const LONE_CR_WAIT_MS = 200;

/**
 * One control connection. It owns the line buffer, the command queue, the idle timer and every
 * resource the session holds; closing the control connection frees all of them.
 *
 * ftp-srv handed each TCP segment to its parser as-is (docs/design.md, ftp-srv defect 5): a command split across segments
 * ran as two commands and lines had no length limit. Here bytes are buffered to LF, a line longer
 * than Limits.MAX_COMMAND_LINE_BYTES gets 500 and the session is cut, and commands run one at a
 * time in order (RFC 959 §5.4: the server answers commands in sequence).
 */
export class Session {
  readonly peerAddress: string;
  readonly logger: Logger;
  /** Aborted when the session ends: cancels PASV waits, login delays and transfers. */
  readonly lifetime = new AbortController();

  socket: Socket;
  tlsActive = false;
  pendingUser: string | null = null;
  user: string | null = null;
  /** Set for one-time rollout accounts: the only file this session may read. */
  onlyPath: string | null = null;
  failedLogins = 0;
  cwd = '/';
  restOffset = 0;
  protectData = false;
  pbszReceived = false;
  /** RFC 2428 §4: after EPSV ALL only EPSV may set up data connections. */
  epsvAll = false;
  channel: DataChannel | null = null;
  /** `SITE PIN`: the port the next PASV/EPSV must use (check-ports tests each port once). */
  pinnedPort: number | null = null;
  /** The running transfer, if any; ABOR aborts it. */
  transfer: AbortController | null = null;
  /**
   * The commands this session sent, in order, secrets redacted (`PASS ***`), at most
   * Limits.AUDIT_COMMANDS of them: the audit shows how each switch platform's FTP client behaves.
   */
  readonly commandLog: string[] = [];

  private partialLine: Buffer | null = null;
  private loneCrTimer: NodeJS.Timeout | null = null;
  private readonly queue: string[] = [];
  private running = false;
  private closing = false;
  private idleTimer: NodeJS.Timeout | null = null;
  private lingerTimer: NodeJS.Timeout | null = null;
  private disposed = false;

  constructor(
    readonly id: string,
    socket: Socket,
    readonly context: ServerContext,
  ) {
    this.socket = socket;
    // Replies are small writes in quick succession (150 then 226): with Nagle on, the second
    // waits for the delayed ACK of the first, 40 ms per RETR on Linux.
    socket.setNoDelay(true);
    this.peerAddress = canonicalAddress(socket.remoteAddress);
    this.logger = context.logger.child({ session: id.slice(0, 8), client: this.peerAddress });
    socket.on('error', (err) => this.logger.debug('control connection error', { error: err.message }));
    socket.once('close', () => this.dispose());
    this.armIdleTimer();
  }

  get authenticated(): boolean {
    return this.user !== null;
  }

  get isClosing(): boolean {
    return this.closing;
  }

  /** Raw bytes from the plaintext control socket (before AUTH TLS). */
  onPlainData(chunk: Buffer): void {
    if (!this.tlsActive) this.onData(chunk);
  }

  /**
   * Splits the stream into command lines. A line ends at LF (CRLF, RFC 959 §4.1.3), and also at a
   * CR followed by anything but LF: Telnet allows CR only before LF or NUL (RFC 854), so such a CR
   * is a line end whose LF was lost (an urgent ABOR's, see LONE_CR_WAIT_MS).
   */
  private onData(chunk: Buffer): void {
    if (this.closing) return;
    if (this.loneCrTimer) clearTimeout(this.loneCrTimer);
    this.loneCrTimer = null;
    const data = this.partialLine ? Buffer.concat([this.partialLine, chunk]) : chunk;
    let start = 0;
    for (let i = start; i < data.length; i++) {
      const byte = data[i]!;
      if (byte !== LF && !(byte === CR && i + 1 < data.length && data[i + 1] !== LF)) continue;
      if (i - start > Limits.MAX_COMMAND_LINE_BYTES) return this.lineTooLong();
      this.enqueue(decodeLine(data.subarray(start, byte === CR ? i + 1 : i)));
      start = i + 1;
      if (this.closing) return;
    }
    if (data.length - start > Limits.MAX_COMMAND_LINE_BYTES) return this.lineTooLong();
    // Copy the tail so one long-lived partial line does not pin a large socket chunk.
    this.partialLine = start < data.length ? Buffer.from(data.subarray(start)) : null;
    if (this.partialLine && this.partialLine[this.partialLine.length - 1] === CR) {
      this.loneCrTimer = setTimeout(() => {
        this.loneCrTimer = null;
        const line = this.partialLine!;
        this.partialLine = null;
        this.enqueue(decodeLine(line));
        if (this.queue.length > 0) void this.runQueue();
      }, LONE_CR_WAIT_MS);
    }
    // Only complete commands count as activity: a trickle of bytes (slowloris) must not
    // keep re-arming the idle timer.
    if (this.queue.length > 0) void this.runQueue();
  }

  private lineTooLong(): void {
    this.logger.warn('command line too long; closing session', { limit: Limits.MAX_COMMAND_LINE_BYTES });
    this.partialLine = null;
    this.queue.length = 0;
    this.closeWith(ReplyCode.SYNTAX_ERROR, `Command line too long (limit ${Limits.MAX_COMMAND_LINE_BYTES} bytes)`);
  }

  private enqueue(line: string): void {
    // ABOR must reach a running transfer, so it jumps the queue (RFC 959 §4.1.3).
    if (this.transfer && /^abor\s*$/i.test(line)) {
      this.transfer.abort();
      return;
    }
    this.queue.push(line);
    if (this.queue.length > MAX_QUEUED_COMMANDS) this.socket.pause();
  }

  private async runQueue(): Promise<void> {
    if (this.running) return;
    this.running = true;
    try {
      while (this.queue.length > 0 && !this.closing) {
        const line = this.queue.shift()!;
        if (this.queue.length <= MAX_QUEUED_COMMANDS / 2 && this.socket.isPaused()) this.socket.resume();
        this.clearIdleTimer();
        await this.execute(line);
      }
    } finally {
      this.running = false;
      this.armIdleTimer();
    }
  }

  /** The gatekeeper: every command passes login, TLS and argument checks here before its handler. */
  private async execute(line: string): Promise<void> {
    const { verb, argument } = splitCommand(line);
    if (verb === '') return;
    const spec: CommandSpec | undefined = COMMANDS.get(verb);
    if (this.commandLog.length < Limits.AUDIT_COMMANDS) {
      const shown = spec?.secretArgument ? '***' : argument.slice(0, Limits.AUDIT_ARGUMENT_CHARS);
      this.commandLog.push(shown === '' ? verb : `${verb} ${shown}`);
    }
    if (!spec) {
      this.reply(ReplyCode.SYNTAX_ERROR, 'Unknown command');
      return;
    }
    this.logger.debug('command', { verb, argument: spec.secretArgument ? '[redacted]' : argument.slice(0, 256) });
    try {
      gate(this, spec, verb, argument);
      await spec.handler(this, argument, verb);
    } catch (err) {
      if (err instanceof FtpReplyError) {
        this.reply(err.replyCode, err.message);
        if (err.replyCode === ReplyCode.SERVICE_NOT_AVAILABLE) this.closeWith(null);
      } else if (!this.closing) {
        this.logger.error('command failed', { verb, error: describeError(err) });
        this.reply(ReplyCode.LOCAL_ERROR, 'Local error; action aborted');
      }
    }
  }

  /** Writes a reply; an array of lines becomes a multi-line reply (RFC 959 §4.2). */
  reply(code: number, text: string | string[]): void {
    if (this.socket.destroyed || !this.socket.writable) return;
    const lines = Array.isArray(text) ? text : [text];
    const last = lines.length - 1;
    const wire = lines.map((l, i) => (i === last ? `${code} ${l}` : i === 0 ? `${code}-${l}` : ` ${l}`)).join('\r\n');
    this.socket.write(`${wire}\r\n`);
  }

  /** Sends a final reply (if any), then closes the control connection gracefully. */
  closeWith(code: number | null, text = ''): void {
    if (this.closing) return;
    if (code !== null) this.reply(code, text);
    this.closing = true;
    this.clearIdleTimer();
    this.queue.length = 0;
    const socket = this.socket;
    // Half-close and keep reading: destroying with unread input would send RST, and the client
    // could lose the reply we just wrote.
    socket.end();
    socket.resume();
    this.lingerTimer = setTimeout(() => socket.destroy(), CLOSE_LINGER_MS);
  }

  /** Waits for a failed-login delay; rejects if the session ends first (no stray timer). */
  async pause(ms: number): Promise<void> {
    await delay(ms, undefined, { signal: this.lifetime.signal });
  }

  /** Upgrades the control connection to TLS after the 234 reply (RFC 4217 §4). */
  startTls(): void {
    // Anything pipelined after AUTH TLS arrived in plaintext and must not be executed
    // (the STARTTLS command-injection class, CVE-2011-0411).
    this.queue.length = 0;
    this.partialLine = null;
    const secureSocket = new TLSSocket(this.socket, { isServer: true, secureContext: this.context.secureContext! });
    this.tlsActive = true;
    this.socket = secureSocket;
    secureSocket.on('data', (chunk: Buffer) => this.onData(chunk));
    secureSocket.once('close', () => this.dispose());
    secureSocket.on('error', (err) => {
      this.logger.warn('TLS error on control connection', { error: err.message });
      secureSocket.destroy();
    });
  }

  /** The idle timer never runs during a transfer: a long RETR is not idleness (docs/design.md, ftp-srv defect 6). */
  setTransfer(transfer: AbortController | null): void {
    this.transfer = transfer;
    if (transfer) this.clearIdleTimer();
  }

  private armIdleTimer(): void {
    this.clearIdleTimer();
    if (this.closing || this.transfer || this.running) return;
    this.idleTimer = setTimeout(() => {
      this.logger.info('idle timeout; closing session');
      this.closeWith(ReplyCode.SERVICE_NOT_AVAILABLE, 'Timeout: closing control connection');
    }, this.context.config.idleTimeoutMs);
  }

  private clearIdleTimer(): void {
    if (this.idleTimer) clearTimeout(this.idleTimer);
    this.idleTimer = null;
  }

  /** Frees everything the session holds. Runs once, when the control socket closes. */
  private dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.closing = true;
    this.clearIdleTimer();
    if (this.lingerTimer) clearTimeout(this.lingerTimer);
    if (this.loneCrTimer) clearTimeout(this.loneCrTimer);
    this.lifetime.abort();
    this.transfer?.abort();
    this.channel?.close();
    this.channel = null;
    if (!this.socket.destroyed) this.socket.destroy();
  }
}

/** Telnet command bytes (SE … IAC, 0xF0-0xFF): never part of an FTP command's text. */
const TELNET_COMMAND_MIN = 0xf0;

/**
 * Bytes of one line to text: drops the CR and Telnet sequences (RFC 959 §4.1.3, RFC 854). A client
 * aborting a transfer sends IAC IP, then IAC DM as urgent data (the Synch), then ABOR: inetutils
 * ftp sends `IAC IP IAC` urgently and `DM ABOR`. Linux drops the urgent byte from the stream (no
 * SO_OOBINLINE), leaving `IAC IP DM ABOR`: the DM, or any Telnet command byte that lost its IAC,
 * at the start of the line is dropped too.
 */
function decodeLine(bytes: Buffer): string {
  let end = bytes.length;
  if (end > 0 && bytes[end - 1] === CR) end--;
  let view = bytes.subarray(0, end);
  if (view.includes(TELNET_IAC)) {
    const kept: number[] = [];
    for (let i = 0; i < view.length; i++) {
      if (view[i] === TELNET_IAC) {
        i++; // skip the command byte (IP, DM, ...) that follows IAC
        continue;
      }
      kept.push(view[i]!);
    }
    view = Buffer.from(kept);
  }
  let first = 0;
  while (first < view.length && view[first]! >= TELNET_COMMAND_MIN) first++;
  return view.subarray(first).toString('utf8');
}
