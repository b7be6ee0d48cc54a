import { connect, type Socket } from 'node:net';
import { TLSSocket, type SecureContext } from 'node:tls';
import { ReplyCode } from '../core/replyCodes.js';
import { FtpReplyError } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import type { PassivePorts, Reservation } from './passivePorts.js';

/** A data connection source: a PASV/EPSV reservation or an active-mode target. */
export interface DataChannel {
  /** False once the channel can no longer produce a connection (expired or closed). */
  readonly usable: boolean;
  /** Resolves with the ready (TLS-negotiated when protected) data socket. */
  waitForConnection(): Promise<Socket>;
  /** Destroys the data socket and frees the passive port. Idempotent. */
  close(): void;
}

export interface ChannelOptions {
  /** When set, the data connection is wrapped in TLS (PROT P, RFC 4217 §9). */
  secureContext: SecureContext | null;
  /** Limit for the TLS handshake and for an accepted connection left unused. */
  dataTimeoutMs: number;
  logger: Logger;
}

const noConnection = () =>
  new FtpReplyError(ReplyCode.CANT_OPEN_DATA_CONNECTION, "Can't open data connection");

function secure(socket: Socket, options: ChannelOptions, isServer: boolean): Promise<Socket> {
  if (!options.secureContext) {
    socket.resume();
    return Promise.resolve(socket);
  }
  return new Promise((resolve, reject) => {
    const tlsSocket = new TLSSocket(socket, { isServer, secureContext: options.secureContext! });
    const fail = (err: Error) => {
      clearTimeout(timer);
      tlsSocket.destroy();
      options.logger.warn('TLS handshake on the data connection failed', { error: err.message });
      reject(new FtpReplyError(ReplyCode.CANT_OPEN_DATA_CONNECTION, 'TLS negotiation on the data connection failed'));
    };
    const timer = setTimeout(() => fail(new Error('handshake timed out')), options.dataTimeoutMs);
    tlsSocket.once('secure', () => {
      clearTimeout(timer);
      tlsSocket.removeListener('error', fail);
      resolve(tlsSocket);
    });
    tlsSocket.once('error', fail);
    socket.resume();
  });
}

/**
 * The passive side of one PASV/EPSV: it holds a port reservation, takes the data connection the
 * pool hands over, and lets the transfer command wait for it without polling (ftp-srv checked
 * every 50 ms, which made 200 small RETRs 22x slower than vsftpd).
 */
export class PassiveDataChannel implements DataChannel {
  private reservation: Reservation | null = null;
  private socket: Socket | null = null;
  private ready: Promise<Socket>;
  private settle!: { resolve(socket: Socket): void; reject(err: Error): void };
  private closed = false;
  private failed = false;
  private unusedTimer: NodeJS.Timeout | null = null;
  private taken = false;

  private constructor(private readonly options: ChannelOptions) {
    this.ready = new Promise<Socket>((resolve, reject) => {
      this.settle = { resolve, reject };
    });
    // A PASV that is never followed by a transfer must not leave an unhandled rejection.
    this.ready.catch(() => {});
  }

  /** Reserves a passive port for the session (waiting for one if needed) and returns the channel. */
  static async open(
    ports: PassivePorts,
    session: { peerAddress: string; sessionId: string },
    waitMs: number,
    signal: AbortSignal,
    options: ChannelOptions,
    pinnedPort: number | null = null,
  ): Promise<{ channel: PassiveDataChannel; port: number }> {
    const channel = new PassiveDataChannel(options);
    const reservation = await ports.reserve(
      {
        ...session,
        onConnection: (socket) => channel.accepted(socket),
        onExpire: () => channel.fail(noConnection()),
      },
      waitMs,
      signal,
      pinnedPort,
    );
    channel.reservation = reservation;
    return { channel, port: reservation.port };
  }

  waitForConnection(): Promise<Socket> {
    this.taken = true;
    if (this.unusedTimer) clearTimeout(this.unusedTimer);
    this.unusedTimer = null;
    return this.ready;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.reservation?.release();
    this.reservation = null;
    if (this.unusedTimer) clearTimeout(this.unusedTimer);
    this.socket?.destroy();
    this.fail(new FtpReplyError(ReplyCode.CANT_OPEN_DATA_CONNECTION, 'Data connection closed'));
  }

  get usable(): boolean {
    return !this.closed && !this.failed;
  }

  private fail(err: Error): void {
    if (!this.socket) this.failed = true;
    this.settle.reject(err);
  }

  private accepted(socket: Socket): void {
    this.reservation = null;
    if (this.closed) {
      socket.destroy();
      return;
    }
    this.socket = socket;
    socket.on('error', () => {});
    // An accepted connection that no RETR/LIST ever uses is closed after the data timeout.
    if (!this.taken) this.unusedTimer = setTimeout(() => this.close(), this.options.dataTimeoutMs);
    secure(socket, this.options, true).then(
      (ready) => {
        this.socket = ready;
        ready.on('error', () => {});
        this.settle.resolve(ready);
      },
      (err: Error) => this.fail(err),
    );
  }
}

/**
 * Active mode (PORT/EPRT). Off by default; when enabled, the target was already checked to be the
 * control peer on an unprivileged port, so the server cannot be used to bounce (RFC 2577 §3).
 * The connection is made when the transfer command needs it.
 */
export class ActiveDataChannel implements DataChannel {
  private socket: Socket | null = null;
  private closed = false;

  get usable(): boolean {
    return !this.closed;
  }

  constructor(
    private readonly host: string,
    private readonly port: number,
    private readonly options: ChannelOptions,
  ) {}

  waitForConnection(): Promise<Socket> {
    if (this.closed) return Promise.reject(noConnection());
    return new Promise<Socket>((resolve, reject) => {
      const socket = connect({ host: this.host, port: this.port });
      this.socket = socket;
      const timer = setTimeout(() => socket.destroy(new Error('connect timed out')), this.options.dataTimeoutMs);
      socket.once('connect', () => {
        clearTimeout(timer);
        socket.setNoDelay(true);
        socket.removeListener('error', onError);
        socket.on('error', () => {});
        socket.pause();
        secure(socket, this.options, true).then((ready) => {
          this.socket = ready;
          resolve(ready);
        }, reject);
      });
      const onError = () => {
        clearTimeout(timer);
        reject(noConnection());
      };
      socket.once('error', onError);
    });
  }

  close(): void {
    this.closed = true;
    this.socket?.destroy();
  }
}
