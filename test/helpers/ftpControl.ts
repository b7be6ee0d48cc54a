import { connect, type Socket } from 'node:net';
import { once } from 'node:events';
import { connect as tlsConnect } from 'node:tls';
import { parseEpsvReply, parsePasvReply, ReplyParser, type FtpReply } from '../../src/core/ftpWire.js';

export type { FtpReply };

/**
 * A minimal scripted FTP control client over a real TCP socket, for hostile and edge-case tests
 * that real clients refuse to produce (split commands, oversized lines, theft, pipelining).
 * It parses replies per RFC 959 §4.2, including multi-line ones.
 */
export class FtpControl {
  private readonly parser = new ReplyParser();
  private readonly replies: FtpReply[] = [];
  private waiters: Array<(reply: FtpReply | null) => void> = [];
  private ended = false;

  private constructor(readonly socket: Socket) {
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => this.onData(chunk));
    socket.on('error', () => {});
    socket.on('close', () => {
      this.ended = true;
      for (const waiter of this.waiters.splice(0)) waiter(null);
    });
  }

  static async connect(port: number, host = '127.0.0.1', localAddress?: string): Promise<FtpControl> {
    const socket = connect({ port, host, ...(localAddress ? { localAddress } : {}) });
    await once(socket, 'connect');
    return new FtpControl(socket);
  }

  /**
   * Sends AUTH TLS, expects 234, and returns a new FtpControl speaking over TLS on the same
   * connection (RFC 4217 §4). Certificates are not verified: the tests use a self-signed one.
   */
  async startTls(): Promise<FtpControl> {
    const reply = await this.send('AUTH TLS');
    if (reply.code !== 234) throw new Error(`AUTH TLS refused: ${reply.text}`);
    this.socket.removeAllListeners('data');
    const secure = tlsConnect({ socket: this.socket, rejectUnauthorized: false });
    await once(secure, 'secureConnect');
    return new FtpControl(secure);
  }

  get closed(): boolean {
    return this.ended;
  }

  private onData(chunk: string): void {
    for (const reply of this.parser.push(chunk)) {
      const waiter = this.waiters.shift();
      if (waiter) waiter(reply);
      else this.replies.push(reply);
    }
  }

  /** The next reply, or null if the server closed the connection first. Fails after `timeoutMs`. */
  read(timeoutMs = 10_000): Promise<FtpReply | null> {
    const queued = this.replies.shift();
    if (queued) return Promise.resolve(queued);
    if (this.ended) return Promise.resolve(null);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w !== waiter);
        reject(new Error(`no FTP reply within ${timeoutMs} ms`));
      }, timeoutMs);
      const waiter = (reply: FtpReply | null) => {
        clearTimeout(timer);
        resolve(reply);
      };
      this.waiters.push(waiter);
    });
  }

  /** Writes raw bytes (no CRLF added). */
  write(data: string | Buffer): void {
    this.socket.write(data);
  }

  /** Sends one command line and returns its reply. */
  async send(line: string, timeoutMs?: number): Promise<FtpReply> {
    this.socket.write(`${line}\r\n`);
    const reply = await this.read(timeoutMs);
    if (!reply) throw new Error(`connection closed before a reply to ${line.split(' ')[0]}`);
    return reply;
  }

  /** Reads the 220 greeting, then USER/PASS. Returns the PASS reply. */
  async login(user: string, password: string): Promise<FtpReply> {
    const greeting = await this.read();
    if (greeting?.code !== 220) throw new Error(`expected 220 greeting, got ${greeting?.text}`);
    const userReply = await this.send(`USER ${user}`);
    if (userReply.code !== 331) return userReply;
    return this.send(`PASS ${password}`);
  }

  /** Resolves when the server has closed the connection. */
  async waitClosed(timeoutMs = 10_000): Promise<void> {
    if (this.ended) return;
    await Promise.race([
      once(this.socket, 'close'),
      new Promise((_, reject) => setTimeout(() => reject(new Error('server did not close the connection')), timeoutMs).unref()),
    ]);
  }

  close(): void {
    this.socket.destroy();
  }
}

/** Parses a 227 reply into host and port; throws if it is none. */
export function parsePasv(reply: FtpReply): { host: string; port: number } {
  const target = parsePasvReply(reply.text);
  if (!target) throw new Error(`not a 227 reply: ${reply.text}`);
  return { host: target.address, port: target.port };
}

/** Parses a 229 reply into the port; throws if it is none. */
export function parseEpsv(reply: FtpReply): number {
  const port = parseEpsvReply(reply.text);
  if (port === null) throw new Error(`not a 229 reply: ${reply.text}`);
  return port;
}

/** Opens a data connection and collects everything until the server closes it. */
export async function readDataConnection(port: number, host = '127.0.0.1', localAddress?: string, tls = false): Promise<Buffer> {
  const plain = connect({ port, host, ...(localAddress ? { localAddress } : {}) });
  const socket = tls ? tlsConnect({ socket: plain, rejectUnauthorized: false }) : plain;
  socket.on('error', () => {});
  const chunks: Buffer[] = [];
  socket.on('data', (chunk: Buffer) => chunks.push(chunk));
  await once(socket, 'close');
  return Buffer.concat(chunks);
}

/** The control connections one test opens, closed together by `closeAll()` in an afterEach hook. */
export class ControlSessions {
  private readonly open: FtpControl[] = [];

  track(control: FtpControl): FtpControl {
    this.open.push(control);
    return control;
  }

  /** Connects (optionally from `localAddress`) without reading anything. */
  async connect(port: number, localAddress?: string): Promise<FtpControl> {
    return this.track(await FtpControl.connect(port, '127.0.0.1', localAddress));
  }

  /** Connects and reads the 220 greeting. */
  async greeted(port: number, localAddress?: string): Promise<FtpControl> {
    const control = await this.connect(port, localAddress);
    const greeting = await control.read();
    if (greeting?.code !== 220) throw new Error(`expected a 220 greeting, got ${greeting?.text ?? 'a closed connection'}`);
    return control;
  }

  closeAll(): void {
    for (const control of this.open.splice(0)) control.close();
  }
}
