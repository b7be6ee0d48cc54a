/**
 * The one module that imports basic-ftp. If the library misbehaves, this is the room where it gets
 * fixed; the rest of the client sees FtpSession and the errors of retry.ts only.
 *
 * basic-ftp facts this relies on (6.2.6):
 * - a download resolves only when the data connection has ended AND the 226 has arrived;
 * - `downloadTo(stream, path, startAt)` sends `REST startAt` and then RETR on 350 (RFC 3659 §5);
 * - it ends the destination stream when a download settles, so each attempt gets its own stream;
 * - `downloadTo` makes exactly one socket, the data connection (prepareTransfer), before RETR;
 * - its PASV check treats any two loopback addresses as the same host, and its default strategy
 *   falls back from EPSV to PASV silently. We replace the strategy with a strict one.
 */
import { Socket, type SocketConnectOpts, type SocketConstructorOpts, type TcpSocketConnectOpts } from 'node:net';
import type { Writable } from 'node:stream';
import type { ConnectionOptions } from 'node:tls';
import { Client, FTPError, enterPassiveModeIPv6, type FTPContext, type FTPResponse } from 'basic-ftp';
import { connectForPassiveTransfer, parsePasvResponse } from 'basic-ftp/dist/transfer.js';
import { canonicalAddress, sameAddress } from '../core/address.js';
import { Limits } from '../core/limits.js';
import { ReplyCode } from '../core/replyCodes.js';
import { FtpReplyFailure, PassiveHostRefused } from './retry.js';

export type PassiveMode = 'pasv' | 'epsv';

export interface FtpSessionOptions {
  host: string;
  port: number;
  user: string;
  password: string;
  /** Explicit FTPS (RFC 4217: AUTH TLS, PBSZ 0, PROT P); `ca` adds trusted certificates. */
  tls: { ca?: string | Buffer } | null;
  passive: PassiveMode;
  /** No progress on the control or data connection for this long fails the attempt. */
  timeoutMs: number;
  /** Source address for the control and every data connection (a switch pulls from its own address). */
  localAddress?: string;
  /** Told when a 227 reply named another address than the control host's (its port is used with the control host). */
  onPassiveAddressReplaced?: (named: string, used: string) => void;
}

/** Replies meaning "command not implemented" (RFC 959 §4.2): SIZE or REST is optional. */
const NOT_IMPLEMENTED: ReadonlySet<number> = new Set([
  ReplyCode.SYNTAX_ERROR,
  ReplyCode.NOT_IMPLEMENTED,
  ReplyCode.NOT_IMPLEMENTED_FOR_PARAMETER,
]);

function translate(err: unknown): unknown {
  if (err instanceof FTPError) return new FtpReplyFailure(err.code, err.message.trim());
  return err;
}

/**
 * PASV as a switch does it, with the data connection always to the control connection's peer.
 * A server behind NAT often names its private address in the 227 reply: its port is used with the
 * control host's address, as curl (since 7.74), lftp and FileZilla do, and the replacement is
 * reported. No third host is ever contacted, so this is as safe as refusing (RFC 2577 §3: bounce
 * and theft) and works where refusing would fail. basic-ftp's own check would let 127.0.0.1 and
 * 127.0.0.2 pass as "both loopback".
 */
function strictPasv(onReplaced: (named: string, used: string) => void) {
  return async (ftp: FTPContext): Promise<FTPResponse> => {
    const response = await ftp.request('PASV');
    const target = parsePasvResponse(response.message);
    const controlHost = canonicalAddress(ftp.socket.remoteAddress);
    if (!controlHost) throw new PassiveHostRefused(target.host, 'unknown');
    if (!sameAddress(target.host, controlHost)) onReplaced(target.host, controlHost);
    await connectForPassiveTransfer(controlHost, target.port, ftp);
    return response;
  };
}

/** Holds and releases a data connection's reading, or ends it with an error. */
export interface DataFlow {
  pause(): void;
  resume(): void;
  destroy(err: Error): void;
}

/**
 * Takes a download's bytes straight from the data socket, without a stream in between: the socket
 * reads into one reused buffer (Node's `onread`) and hands each read to `onData`. A stream pipe
 * allocates a 64 KiB buffer per read instead, which for a 1 GiB image is 16,000 buffers for the
 * garbage collector; in a 200-switch emulator those collections were a sixth of all CPU.
 */
export interface DirectReceiver {
  /** The data connection exists; reading starts after this returns. */
  attach(flow: DataFlow): void;
  /** One read. `chunk` is overwritten by the next read: copy what is kept, or pause first. Must not throw. */
  onData(chunk: Buffer): void;
}

/** Where a download goes: a stream, or, when the session can, a direct receiver (the stream then gets nothing). */
export interface DownloadTarget {
  stream: Writable;
  receiver?: DirectReceiver;
}

/**
 * Every socket basic-ftp makes (the control connection in `connect`, each passive data connection
 * in `connectForPassiveTransfer`) comes from `FTPContext._newSocket` and is connected with an
 * options object. This factory replaces it so that sockets connect from `localAddress` (a switch
 * pulls from its own address; `access` cannot bind one), and so that the next data socket, once
 * armed, reads into a receiver instead of a stream (`onread` is a constructor option only).
 */
class SocketFactory {
  private armed: DirectReceiver | null = null;

  constructor(ftp: FTPContext, private readonly localAddress: string | undefined) {
    const original = ftp._newSocket.bind(ftp);
    ftp._newSocket = () => {
      const receiver = this.armed;
      this.armed = null;
      const socket = receiver ? directSocket(receiver) : original();
      if (this.localAddress) {
        const localAddress = this.localAddress;
        const connect = socket.connect.bind(socket) as (options: SocketConnectOpts, listener?: () => void) => Socket;
        socket.connect = ((options: SocketConnectOpts, listener?: () => void) => connect({ ...options, localAddress }, listener)) as Socket['connect'];
      }
      return socket;
    };
  }

  /** The next socket made is a data connection that feeds `receiver`. */
  arm(receiver: DirectReceiver): void {
    this.armed = receiver;
  }

  disarm(): void {
    this.armed = null;
  }
}

function directSocket(receiver: DirectReceiver): Socket {
  // Node reads `onread` in the Socket constructor (net.js); @types/node lists it under connect() only.
  const options: SocketConstructorOpts & Pick<TcpSocketConnectOpts, 'onread'> = {
    onread: {
      buffer: Buffer.allocUnsafeSlow(Limits.PULL_READ_BYTES),
      callback: (bytes: number, buffer: Uint8Array) => {
        receiver.onData(Buffer.from(buffer.buffer, buffer.byteOffset, bytes));
        return true;
      },
    },
  };
  const socket = new Socket(options);
  receiver.attach({
    pause: () => socket.pause(),
    resume: () => socket.resume(),
    destroy: (err) => socket.destroy(err),
  });
  return socket;
}

/** One logged-in control connection. */
export class FtpSession {
  private constructor(
    private readonly client: Client,
    private readonly sockets: SocketFactory,
    private readonly tls: boolean,
  ) {}

  /**
   * Connects, upgrades to TLS when asked, logs in, sets binary mode, and fixes the passive mode.
   *
   * Not basic-ftp's `access()`: after login it also sends FEAT, OPTS MLST, STRU F and OPTS UTF8
   * again, four round trips a RETR does not need (switches do not send them either). Under a
   * 200-switch rollout each round trip cost ~13 ms of queueing, and every pull paid them.
   */
  static async open(options: FtpSessionOptions): Promise<FtpSession> {
    const client = new Client(options.timeoutMs);
    const sockets = new SocketFactory(client.ftp, options.localAddress);
    try {
      await client.connect(options.host, options.port);
      if (options.tls !== null) {
        // The host is kept for the data connections' certificate check (basic-ftp issue 166).
        await client.useTLS({ minVersion: 'TLSv1.2', host: options.host, ...(options.tls.ca ? { ca: options.tls.ca } : {}) } satisfies ConnectionOptions);
      }
      // Before USER, so a non-ASCII user name or password is read as UTF-8 (RFC 2640); optional.
      await client.sendIgnoringError('OPTS UTF8 ON');
      await client.login(options.user, options.password);
      await client.send('TYPE I');
      if (options.tls !== null) {
        // RFC 4217: PBSZ 0 then PROT P, so the data connections are encrypted too.
        await client.send('PBSZ 0');
        await client.send('PROT P');
      }
      // EPSV (RFC 2428) carries only a port: the data connection goes to the control host by
      // design. PASV's 227 reply can only name an IPv4 address (RFC 2428 §1): over IPv6, EPSV it
      // is, whatever was asked, as curl does.
      const ipv6 = client.ftp.socket.remoteFamily === 'IPv6' && !canonicalAddress(client.ftp.socket.remoteAddress).includes('.');
      client.prepareTransfer = options.passive === 'epsv' || ipv6 ? enterPassiveModeIPv6 : strictPasv(options.onPassiveAddressReplaced ?? (() => {}));
      return new FtpSession(client, sockets, options.tls !== null);
    } catch (err) {
      client.close();
      throw translate(err);
    }
  }

  /**
   * Walks to the file's directory as RFC 1738 §3.2.2 says: `CWD /` first for an absolute path,
   * then one CWD per segment, relative to the login directory (as curl's default `multicwd`). A
   * server whose login directory is not `/` (vsftpd local users, NAS and vendor servers) finds the
   * file where the URL says.
   */
  async walk(absolute: boolean, directories: readonly string[]): Promise<void> {
    try {
      if (absolute) await this.client.send('CWD /');
      for (const dir of directories) await this.client.send(`CWD ${dir}`);
    } catch (err) {
      throw translate(err);
    }
  }

  /** SIZE (RFC 3659 §4). Null when the server does not implement it; 550 (missing) throws. */
  async size(path: string): Promise<number | null> {
    try {
      return await this.client.size(path);
    } catch (err) {
      if (err instanceof FTPError && NOT_IMPLEMENTED.has(err.code)) return null;
      throw translate(err);
    }
  }

  /**
   * RETR into `target`, from `offset` with REST when it is above 0. Resolves once the data
   * connection has ended and 226 has arrived. A REST the server does not implement rejects with
   * `RestUnsupported`. The bytes go to `target.receiver` when there is one and the data connection
   * is plain TCP (TLS reads through its own stream); otherwise to `target.stream`.
   */
  async download(target: DownloadTarget, path: string, offset: number): Promise<void> {
    if (target.receiver && !this.tls) this.sockets.arm(target.receiver);
    try {
      await this.client.downloadTo(target.stream, path, offset);
    } catch (err) {
      if (offset > 0 && err instanceof FTPError && NOT_IMPLEMENTED.has(err.code)) throw new RestUnsupported(err.code, err.message.trim());
      throw translate(err);
    } finally {
      this.sockets.disarm();
    }
  }

  /** Closes the control and any data connection (sends QUIT, does not wait for a reply). */
  close(): void {
    this.client.close();
  }
}

/** The server refused REST: a resume is impossible, the pull must start again from byte 0. */
export class RestUnsupported extends FtpReplyFailure {
  constructor(replyCode: number, message: string) {
    super(replyCode, message);
    this.name = 'RestUnsupported';
  }
}
