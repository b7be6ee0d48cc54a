/**
 * The one module that imports basic-ftp. If the library misbehaves, this is the room where it gets
 * fixed; the rest of the client sees FtpSession and the errors of retry.ts only.
 *
 * basic-ftp facts this relies on (6.2.6):
 * - a download resolves only when the data connection has ended AND the 226 has arrived;
 * - `downloadTo(stream, path, startAt)` sends `REST startAt` and then RETR on 350 (RFC 3659 §5);
 * - it ends the destination stream when a download settles, so each attempt gets its own stream;
 * - its PASV check treats any two loopback addresses as the same host, and its default strategy
 *   falls back from EPSV to PASV silently. We replace the strategy with a strict one.
 */
import type { Socket, SocketConnectOpts } from 'node:net';
import type { Writable } from 'node:stream';
import type { ConnectionOptions } from 'node:tls';
import { Client, FTPError, enterPassiveModeIPv6, type FTPContext, type FTPResponse } from 'basic-ftp';
import { connectForPassiveTransfer, parsePasvResponse } from 'basic-ftp/dist/transfer.js';
import { canonicalAddress, sameAddress } from '../core/address.js';
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
 * PASV as a switch does it, but strict: the data connection goes only to the control connection's
 * peer. basic-ftp's own check lets 127.0.0.1 and 127.0.0.2 pass as "both loopback"; a reply naming
 * any other host is refused before anything connects (RFC 2577 §3, bounce and theft).
 */
async function strictPasv(ftp: FTPContext): Promise<FTPResponse> {
  const response = await ftp.request('PASV');
  const target = parsePasvResponse(response.message);
  const controlHost = canonicalAddress(ftp.socket.remoteAddress);
  if (!sameAddress(target.host, controlHost)) throw new PassiveHostRefused(target.host, controlHost || 'unknown');
  await connectForPassiveTransfer(target.host, target.port, ftp);
  return response;
}

/**
 * basic-ftp's `access` cannot bind a local address. Every socket it makes (the control connection
 * in `connect`, each passive data connection in `connectForPassiveTransfer`) comes from
 * `FTPContext._newSocket` and is connected with an options object, so the sockets it hands out
 * connect with `localAddress` added.
 */
function bindLocalAddress(ftp: FTPContext, localAddress: string): void {
  const newSocket = ftp._newSocket.bind(ftp);
  ftp._newSocket = () => {
    const socket = newSocket();
    const connect = socket.connect.bind(socket) as (options: SocketConnectOpts, listener?: () => void) => Socket;
    socket.connect = ((options: SocketConnectOpts, listener?: () => void) => connect({ ...options, localAddress }, listener)) as Socket['connect'];
    return socket;
  };
}

/** One logged-in control connection. */
export class FtpSession {
  private constructor(private readonly client: Client) {}

  /** Connects, upgrades to TLS when asked, logs in, sets binary mode, and fixes the passive mode. */
  static async open(options: FtpSessionOptions): Promise<FtpSession> {
    const client = new Client(options.timeoutMs);
    if (options.localAddress) bindLocalAddress(client.ftp, options.localAddress);
    try {
      const secureOptions: ConnectionOptions = { minVersion: 'TLSv1.2', ...(options.tls?.ca ? { ca: options.tls.ca } : {}) };
      await client.access({
        host: options.host,
        port: options.port,
        user: options.user,
        password: options.password,
        secure: options.tls !== null,
        secureOptions,
      });
      // EPSV (RFC 2428) carries only a port: the data connection goes to the control host by design.
      client.prepareTransfer = options.passive === 'epsv' ? enterPassiveModeIPv6 : strictPasv;
      return new FtpSession(client);
    } catch (err) {
      client.close();
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
   * RETR into `destination`, from `offset` with REST when it is above 0. Resolves once the data
   * connection has ended and 226 has arrived. A REST the server does not implement rejects with
   * `RestUnsupported`.
   */
  async download(destination: Writable, path: string, offset: number): Promise<void> {
    try {
      await this.client.downloadTo(destination, path, offset);
    } catch (err) {
      if (offset > 0 && err instanceof FTPError && NOT_IMPLEMENTED.has(err.code)) throw new RestUnsupported(err.code, err.message.trim());
      throw translate(err);
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
