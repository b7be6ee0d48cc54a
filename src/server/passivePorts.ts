import { createServer, type Server, type Socket } from 'node:net';
import { Limits } from '../core/limits.js';
import { ReplyCode } from '../core/replyCodes.js';
import { FtpReplyError } from '../core/errors.js';
import { canonicalAddress, sameAddress } from '../core/address.js';
import type { PortRange } from '../core/portRange.js';
import type { Logger } from '../core/logger.js';

/** Who a passive port is reserved for, and where its data connection goes. */
export interface ReservationOwner {
  /** The control connection's peer: only a data connection from this address is accepted. */
  readonly peerAddress: string;
  readonly sessionId: string;
  /** Called once with the accepted data socket; the reservation is released before the call. */
  onConnection(socket: Socket): void;
  /** Called when nobody connected within the accept timeout and the port was freed. */
  onExpire(): void;
}

/** A passive port held for one session until its data connection arrives or it is cancelled. */
export interface Reservation {
  readonly port: number;
  /** Frees the port for the next waiting PASV. Safe to call more than once. */
  release(): void;
}

export interface PassivePortsOptions {
  range: PortRange;
  /** Address the listeners bind to: the server's bind address. */
  host: string;
  logger: Logger;
  /** How long a reservation waits for its data connection before the port is freed. */
  acceptTimeoutMs: number;
  /** Every port is reserved: a PASV from `client` starts waiting for one. */
  onWait?: (client: string) => void;
  /** That wait ended without a port: the PASV gets 425. */
  onWaitTimeout?: (client: string) => void;
}

interface PortState {
  readonly port: number;
  listener: Server | null;
  /** Held by another process: skipped until `foreignUntil`. */
  foreignUntil: number;
  reservation: ActiveReservation | null;
}

interface ActiveReservation extends Reservation {
  readonly owner: ReservationOwner;
  acceptTimer: NodeJS.Timeout;
}

interface Waiter {
  owner: ReservationOwner;
  /** A specific port (check-ports' pinned probe), or null for any. */
  port: number | null;
  resolve(reservation: Reservation): void;
  reject(err: Error): void;
  timer: NodeJS.Timeout;
  abort: () => void;
  signal: AbortSignal | undefined;
}

/**
 * The passive range as a contract. Every port of the range gets one persistent listener at start,
 * and a PASV *reserves* a port for one session instead of opening a fresh listener. Compared with
 * ftp-srv's listen-per-PASV (docs/design.md, ftp-srv defect 1) this means:
 * - no port outside the range, ever, and no listen/close race that leaves a client without a reply;
 * - when every port is reserved, PASV waits first come, first served, then gets 425;
 * - a session holds at most one port (a new PASV releases the old one);
 * - the port is released the moment the data connection is accepted, so five ports carry any
 *   number of concurrent transfers (each data connection is its own TCP 4-tuple);
 * - a connection from a foreign address is dropped and the reservation stays for the real client.
 */
export class PassivePorts {
  private readonly ports: PortState[] = [];
  private readonly waiters: Waiter[] = [];
  private nextIndex = 0;
  private recheckTimer: NodeJS.Timeout | null = null;
  private stopped = false;

  constructor(private readonly options: PassivePortsOptions) {
    for (let port = options.range.min; port <= options.range.max; port++) {
      this.ports.push({ port, listener: null, foreignUntil: 0, reservation: null });
    }
  }

  /** Binds every port of the range. Ports held by another process are skipped with a warning. */
  async start(): Promise<void> {
    await Promise.all(this.ports.map((state) => this.bind(state)));
    // None bound at all is the server's to refuse (FirmwareServer.start); some bound is served.
    this.scheduleRecheck();
  }

  /** Ports with a listener now (for status and tests). */
  boundPorts(): number[] {
    return this.ports.filter((p) => p.listener).map((p) => p.port);
  }

  /** How many PASV commands are waiting for a port. */
  waitingCount(): number {
    return this.waiters.length;
  }

  /**
   * Reserves a port for `owner`, waiting up to `waitMs` (first come, first served) when every port
   * is reserved. Rejects with a 425 FtpReplyError when none frees up in time.
   */
  reserve(owner: ReservationOwner, waitMs: number, signal?: AbortSignal, port: number | null = null): Promise<Reservation> {
    if (this.stopped) return Promise.reject(new FtpReplyError(ReplyCode.SERVICE_NOT_AVAILABLE, 'Server shutting down'));
    if (port !== null) {
      const state = this.ports.find((p) => p.port === port);
      if (!state) return Promise.reject(new FtpReplyError(ReplyCode.SYNTAX_ERROR_IN_ARGUMENTS, `Port ${port} is not in the passive range`));
      if (!state.listener) return Promise.reject(new FtpReplyError(ReplyCode.CANT_OPEN_DATA_CONNECTION, `Port ${port} is held by another process on the server`));
    }
    // Pinned requests only compete for their own port, so they may go ahead of waiters for any port.
    if (this.waiters.length === 0 || port !== null) {
      const reservation = this.tryReserve(owner, port);
      if (reservation) return Promise.resolve(reservation);
    }
    return new Promise<Reservation>((resolve, reject) => {
      const waiter: Waiter = {
        owner,
        port,
        resolve,
        reject,
        signal,
        timer: setTimeout(() => {
          this.removeWaiter(waiter);
          this.options.onWaitTimeout?.(owner.peerAddress);
          reject(new FtpReplyError(ReplyCode.CANT_OPEN_DATA_CONNECTION, 'No passive port came free in time; try again later'));
        }, waitMs),
        abort: () => {
          this.removeWaiter(waiter);
          reject(new FtpReplyError(ReplyCode.SERVICE_NOT_AVAILABLE, 'Session closed'));
        },
      };
      signal?.addEventListener('abort', waiter.abort, { once: true });
      this.waiters.push(waiter);
      this.options.onWait?.(owner.peerAddress);
    });
  }

  /** Closes every listener, fails every waiter and clears every timer. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.recheckTimer) clearTimeout(this.recheckTimer);
    this.recheckTimer = null;
    for (const waiter of this.waiters.splice(0)) {
      clearTimeout(waiter.timer);
      waiter.signal?.removeEventListener('abort', waiter.abort);
      waiter.reject(new FtpReplyError(ReplyCode.SERVICE_NOT_AVAILABLE, 'Server shutting down'));
    }
    await Promise.all(
      this.ports.map(async (state) => {
        state.reservation?.release();
        const listener = state.listener;
        state.listener = null;
        if (listener) await new Promise<void>((resolve) => listener.close(() => resolve()));
      }),
    );
  }

  private removeWaiter(waiter: Waiter): void {
    const index = this.waiters.indexOf(waiter);
    if (index >= 0) this.waiters.splice(index, 1);
    clearTimeout(waiter.timer);
    waiter.signal?.removeEventListener('abort', waiter.abort);
  }

  private bind(state: PortState): Promise<void> {
    return new Promise((resolve) => {
      const listener = createServer({ pauseOnConnect: true }, (socket) => this.accept(state, socket));
      const onError = (err: NodeJS.ErrnoException) => {
        listener.close();
        state.foreignUntil = Date.now() + Limits.FOREIGN_PORT_RECHECK_MS;
        this.options.logger.warn('passive port is held by another process; skipping it', {
          port: state.port,
          error: err.code ?? err.message,
        });
        resolve();
      };
      listener.once('error', onError);
      listener.listen({ port: state.port, host: this.options.host, exclusive: true }, () => {
        listener.removeListener('error', onError);
        listener.on('error', (err) => this.options.logger.error('passive listener error', { port: state.port, error: err.message }));
        if (this.stopped) {
          listener.close();
        } else {
          state.listener = listener;
          state.foreignUntil = 0;
        }
        resolve();
      });
    });
  }

  /** Ports lost to other processes are tried again while any is missing. */
  private scheduleRecheck(): void {
    if (this.stopped || this.recheckTimer || this.ports.every((p) => p.listener)) return;
    this.recheckTimer = setTimeout(async () => {
      this.recheckTimer = null;
      const missing = this.ports.filter((p) => !p.listener && p.foreignUntil <= Date.now());
      await Promise.all(missing.map((state) => this.bind(state)));
      for (const state of missing) {
        if (state.listener) this.options.logger.info('passive port is free again; using it', { port: state.port });
      }
      this.serveWaiters();
      this.scheduleRecheck();
    }, Limits.FOREIGN_PORT_RECHECK_MS);
    this.recheckTimer.unref();
  }

  private tryReserve(owner: ReservationOwner, port: number | null = null): Reservation | null {
    if (port !== null) {
      const state = this.ports.find((p) => p.port === port);
      return state?.listener && !state.reservation ? this.hold(state, owner) : null;
    }
    // Round robin, so consecutive PASVs land on different ports and a port that a firewall
    // blocks shows up quickly in the logs instead of being hidden behind one busy port.
    for (let i = 0; i < this.ports.length; i++) {
      const state = this.ports[(this.nextIndex + i) % this.ports.length]!;
      if (!state.listener || state.reservation) continue;
      this.nextIndex = (this.ports.indexOf(state) + 1) % this.ports.length;
      return this.hold(state, owner);
    }
    return null;
  }

  private hold(state: PortState, owner: ReservationOwner): Reservation {
    const reservation: ActiveReservation = {
      port: state.port,
      owner,
      acceptTimer: setTimeout(() => {
        this.options.logger.debug('passive port reservation expired: no data connection arrived', { port: state.port, session: owner.sessionId });
        reservation.release();
        owner.onExpire();
      }, this.options.acceptTimeoutMs),
      release: () => {
        if (state.reservation !== reservation) return;
        clearTimeout(reservation.acceptTimer);
        state.reservation = null;
        this.serveWaiters();
      },
    };
    state.reservation = reservation;
    return reservation;
  }

  /** First come, first served: each waiter in arrival order gets a port if one it accepts is free. */
  private serveWaiters(): void {
    for (const waiter of [...this.waiters]) {
      const reservation = this.tryReserve(waiter.owner, waiter.port);
      if (!reservation) {
        if (waiter.port === null) return; // nothing free for later any-port waiters either
        continue;
      }
      this.removeWaiter(waiter);
      waiter.resolve(reservation);
    }
  }

  private accept(state: PortState, socket: Socket): void {
    const reservation = state.reservation;
    const from = canonicalAddress(socket.remoteAddress);
    if (!reservation) {
      this.options.logger.warn('data connection to an unreserved passive port dropped', { port: state.port, from });
      socket.destroy();
      return;
    }
    if (!sameAddress(from, reservation.owner.peerAddress)) {
      // Data-connection theft (RFC 2577 §5 "port stealing"): drop the thief, keep the reservation,
      // so the legitimate client can still connect. ftp-srv closed the legitimate session here.
      this.options.logger.warn('data connection from a foreign address refused', {
        port: state.port,
        from,
        expected: canonicalAddress(reservation.owner.peerAddress),
        session: reservation.owner.sessionId,
      });
      socket.destroy();
      return;
    }
    reservation.release();
    // The last short segment of a file must not wait for a delayed ACK (Nagle).
    socket.setNoDelay(true);
    reservation.owner.onConnection(socket);
  }
}
