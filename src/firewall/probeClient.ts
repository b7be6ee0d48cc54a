/**
 * A minimal FTP client on raw node:net sockets for `swfw check-ports`. basic-ftp hides what a
 * prober needs to see: its own timeouts, and whether a connect failed by timeout (dropped), reset
 * (rejected) or ICMP. Here every step has its own limit and every failure keeps its errno.
 */
import { connect as netConnect, type Socket } from 'node:net';
import { connect as tlsConnect, type ConnectionOptions, type TLSSocket } from 'node:tls';
import { ReplyParser, type FtpReply } from '../core/ftpWire.js';
import { connectOutcomeOf, type ConnectOutcome } from './classify.js';

export type { FtpReply };


export interface ConnectResult {
  outcome: ConnectOutcome;
  socket: Socket | null;
  ms: number;
  /** The errno code or message when it failed. */
  error: string;
}

/** Connects a TCP socket with a hard limit, keeping the reason it failed. */
export function connectTcp(host: string, port: number, timeoutMs: number): Promise<ConnectResult> {
  const started = performance.now();
  return new Promise((resolve) => {
    const socket = netConnect({ host, port });
    const done = (outcome: ConnectOutcome, error: string) => {
      clearTimeout(timer);
      socket.removeListener('error', onError);
      socket.removeListener('connect', onConnect);
      if (outcome !== 'connected') socket.destroy();
      else socket.on('error', () => {}); // later errors are seen through reads; never unhandled
      resolve({ outcome, socket: outcome === 'connected' ? socket : null, ms: performance.now() - started, error });
    };
    const onError = (err: NodeJS.ErrnoException) => done(connectOutcomeOf(err.code), err.code ?? err.message);
    const onConnect = () => {
      socket.setNoDelay(true);
      done('connected', '');
    };
    const timer = setTimeout(() => done('timeout', 'ETIMEDOUT'), timeoutMs);
    socket.once('error', onError);
    socket.once('connect', onConnect);
  });
}

/** The control connection closed or a reply did not come in time. */
export class ControlError extends Error {
  constructor(
    message: string,
    readonly kind: 'timeout' | 'closed' | 'protocol',
  ) {
    super(message);
    this.name = 'ControlError';
  }
}

/**
 * The control connection: replies parsed as they arrive (ReplyParser, RFC 959 §4.2), one command
 * at a time, each with its own reply limit.
 */
export class ControlChannel {
  private parser = new ReplyParser();
  private replies: FtpReply[] = [];
  private waiter: ((reply: FtpReply | null) => void) | null = null;
  private closed = false;
  private socket: Socket;

  constructor(socket: Socket) {
    this.socket = socket;
    this.attach(socket);
  }

  get remoteAddress(): string {
    return this.socket.remoteAddress ?? '';
  }

  get localAddress(): string {
    return this.socket.localAddress ?? '';
  }

  private readonly onData = (chunk: Buffer) => {
    this.replies.push(...this.parser.push(chunk));
    this.flush();
  };

  private readonly onClose = () => {
    this.closed = true;
    this.flush();
  };

  private attach(socket: Socket): void {
    socket.on('data', this.onData);
    socket.on('close', this.onClose);
    socket.on('error', () => {}); // the close that follows settles any waiter
  }

  private detach(socket: Socket): void {
    socket.removeListener('data', this.onData);
    socket.removeListener('close', this.onClose);
  }

  private flush(): void {
    if (!this.waiter) return;
    const reply = this.replies.shift();
    if (reply) {
      const waiter = this.waiter;
      this.waiter = null;
      waiter(reply);
    } else if (this.closed) {
      const waiter = this.waiter;
      this.waiter = null;
      waiter(null);
    }
  }

  /** The next reply, within `timeoutMs`. Rejects with ControlError on timeout or close. */
  read(timeoutMs: number): Promise<FtpReply> {
    if (this.waiter) return Promise.reject(new ControlError('a reply is already awaited', 'protocol'));
    return new Promise<FtpReply>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiter = null;
        reject(new ControlError(`no reply within ${timeoutMs} ms`, 'timeout'));
      }, timeoutMs);
      this.waiter = (reply) => {
        clearTimeout(timer);
        if (reply) resolve(reply);
        else reject(new ControlError('the server closed the control connection', 'closed'));
      };
      this.flush();
    });
  }

  /** Sends one command and reads its reply. */
  async send(command: string, timeoutMs: number): Promise<FtpReply> {
    if (this.closed) throw new ControlError('the control connection is closed', 'closed');
    this.socket.write(`${command}\r\n`);
    return this.read(timeoutMs);
  }

  /** Upgrades the control connection to TLS after `AUTH TLS` got 234 (RFC 4217 §4). */
  async upgradeToTls(options: ConnectionOptions, timeoutMs: number): Promise<void> {
    const raw = this.socket;
    this.detach(raw);
    // Plaintext that came behind the 234 is a man in the middle's (the CVE-2011-0411 class, the
    // client's side): it is dropped, never read as a reply over TLS.
    this.parser = new ReplyParser();
    this.replies = [];
    const secure = await secureSocket(raw, options, timeoutMs);
    this.socket = secure;
    this.attach(secure);
  }

  /** Sends QUIT (best effort, not awaited beyond `timeoutMs`) and closes. */
  async quit(timeoutMs: number): Promise<void> {
    if (!this.closed) await this.send('QUIT', timeoutMs).catch(() => {});
    this.close();
  }

  close(): void {
    this.closed = true;
    this.socket.destroy();
  }
}

/** Wraps a connected socket in TLS as a client, within `timeoutMs`. */
export function secureSocket(socket: Socket, options: ConnectionOptions, timeoutMs: number): Promise<TLSSocket> {
  return new Promise((resolve, reject) => {
    const secure = tlsConnect({ ...options, socket });
    const fail = (err: Error) => {
      clearTimeout(timer);
      secure.destroy();
      socket.destroy();
      reject(err);
    };
    const timer = setTimeout(() => fail(new Error(`TLS handshake took longer than ${timeoutMs} ms`)), timeoutMs);
    secure.once('error', fail);
    secure.once('secureConnect', () => {
      clearTimeout(timer);
      secure.removeListener('error', fail);
      secure.on('error', () => {});
      resolve(secure);
    });
  });
}

/** Reads a data connection to its end within `timeoutMs`; resolves with the bytes, rejects on error or timeout. */
export function readToEnd(socket: Socket, timeoutMs: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    const finish = (err: Error | null) => {
      clearTimeout(timer);
      socket.removeListener('data', onData);
      socket.removeListener('end', onEnd);
      socket.removeListener('close', onClose);
      socket.removeListener('error', onError);
      socket.destroy();
      if (err) reject(err);
      else resolve(Buffer.concat(chunks));
    };
    const onData = (chunk: Buffer) => chunks.push(chunk);
    const onEnd = () => finish(null);
    const onClose = () => finish(null);
    const onError = (err: Error) => finish(err);
    const timer = setTimeout(() => finish(new Error(`the data did not end within ${timeoutMs} ms`)), timeoutMs);
    socket.on('data', onData);
    socket.once('end', onEnd);
    socket.once('close', onClose);
    socket.once('error', onError);
    socket.resume();
  });
}

