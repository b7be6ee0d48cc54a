import { randomUUID } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { readFileSync } from 'node:fs';
import { createSecureContext, type SecureContext } from 'node:tls';
import { Limits } from '../core/limits.js';
import { ReplyCode } from '../core/replyCodes.js';
import { canonicalAddress } from '../core/address.js';
import { ConfigError } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import type { ServerConfig } from '../config/schema.js';
import { toBunyanShape } from '../log/bunyanAdapter.js';
import { Authenticator, type ResolvedAccount } from './accounts.js';
import type { ServerContext, TransferProgress, TransferRecord } from './context.js';
import { ControlListener } from './ftpSrv.js';
import { RepositoryJail, toVirtualPath } from './jail.js';
import { ImageGuard } from './imageGuard.js';
import { PassivePorts } from './passivePorts.js';
import { BufferPool, SentBytesHashing } from './sentBytesHash.js';
import { Session } from './session.js';
import { HttpFrontEnd, HttpListenError, grantUrlPath } from './http.js';

/**
 * Read buffers the server may ever allocate (each Limits.RETR_READ_BYTES): the bound on transfer
 * memory, 24 MiB, allocated as transfers need them and kept for reuse. Each transfer holds at
 * most two (sendFile), so twelve move at full speed; more wait their turn for a buffer. A client
 * that stops reading pins its two until the stall check cuts it. Not sized by maxConnections:
 * the passive slot is freed once a data connection is up, so a range of 5 ports can carry 50
 * transfers, and 2 MiB each of them would put the server past its memory target (bench fig 6).
 */
const MAX_READ_BUFFERS = 24;

/** What a rollout hands one switch: its own credentials for its own image. */
export interface OneTimeAccess {
  user: string;
  password: string;
  /** The image's virtual path, e.g. /cisco/c9300.bin: the only file this account can read. */
  path: string;
  /**
   * The same grant as an HTTP(S) URL path: `/grant/<user>.<password><path>` (path segments
   * percent-encoded). Prefix it with `http(s)://<server address>:<port>` from `httpEndpoints()`.
   * Same source, expiry and revoke as the FTP account; a secret: never log it.
   */
  httpPath: string;
  expiresAt: number;
  revoke(): void;
}

/** A bound HTTP(S) listener: the address and the real port (also when the config asked for 0). */
export interface HttpEndpoint {
  address: string;
  port: number;
}

/** Why the server could not start, in a form the CLI can print as one line. */
export class StartError extends Error {
  constructor(
    message: string,
    readonly code: 'privileged-port' | 'port-in-use' | 'address-unavailable' | 'images' | 'tls' | 'other',
  ) {
    super(message);
    this.name = 'StartError';
  }
}

export interface FirmwareServerOptions {
  config: ServerConfig;
  /** Accounts with their password hashes already resolved. */
  accounts: ResolvedAccount[];
  logger: Logger;
}

export interface FirmwareServerEvents {
  'transfer-start': [TransferProgress];
  'transfer-progress': [TransferProgress];
  transfer: [TransferRecord];
  /** A PASS that did not log in (wrong password, unknown user, outside allowFrom). No password. */
  'login-failure': [{ client: string; user: string }];
  /** A PASV/EPSV found every passive port reserved and waits for one (pasvWait). */
  'pasv-wait': [{ client: string }];
  /** A waiting PASV/EPSV got no port within pasvWait: the client got 425. */
  'pasv-timeout': [{ client: string }];
  /** A RETR the catalog refused: 550 (the image drifted or is missing) or 450 (being re-hashed). */
  'catalog-refusal': [{ client: string; path: string; code: number }];
  /** grantOneTimeAccess made a one-time account. */
  'access-granted': [{ user: string; client: string; path: string }];
  /** A one-time account's revoke() (once per account, however often it is called). */
  'access-revoked': [{ user: string }];
}

/**
 * `swfw serve`: the read-only firmware FTP server. `start()` binds the control port and every
 * passive port; `stop()` stops accepting, lets running transfers finish for a grace period and
 * then closes every session, leaving no socket or timer behind.
 */
export class FirmwareServer extends EventEmitter<FirmwareServerEvents> {
  private readonly sessions = new Map<string, Session>();
  private readonly perAddress = new Map<string, number>();
  private listener: ControlListener | null = null;
  private http: HttpFrontEnd | null = null;
  private ports: PassivePorts | null = null;
  private hashing: SentBytesHashing | null = null;
  private context: ServerContext | null = null;
  private shuttingDown = false;
  private stopping: Promise<void> | null = null;
  /** The grace of the stop in progress, ms. */
  private graceMs = 0;
  /** Ends the wait for running transfers at once (a second stop with a shorter grace). */
  private hurry: (() => void) | null = null;

  constructor(private readonly options: FirmwareServerOptions) {
    super();
  }

  /** The bound control address (the real port when the config asked for port 0). */
  address(): { address: string; port: number } {
    if (!this.listener) throw new Error('server not started');
    return this.listener.address();
  }

  /** Passive ports bound by this server (ports held by other processes are missing). */
  passivePorts(): number[] {
    return this.ports?.boundPorts() ?? [];
  }

  /**
   * A one-time FTP account for one switch's pull: read-only, only `imagePath` (relative to the
   * repository), only from `sourceAddress` (an address, or a CIDR block such as a switch's
   * `ftpSource` 10.1.2.0/24), only for `validForMs`. The password is returned once and never
   * logged. `revoke()` ends it early (at the end of a rollout).
   */
  async grantOneTimeAccess(options: { sourceAddress: string; imagePath: string; validForMs: number }): Promise<OneTimeAccess> {
    const context = this.context ?? (() => {
      throw new Error('server not started');
    })();
    const virtualPath = toVirtualPath('/', options.imagePath);
    const entry = await context.jail.resolve(virtualPath);
    if (!entry.stats.isFile()) throw new Error(`not an image file: ${options.imagePath}`);
    const expiresAt = Date.now() + options.validForMs;
    const { user, password } = context.auth.grant({ source: options.sourceAddress, imagePath: virtualPath, expiresAt });
    this.options.logger.info('one-time access granted', { user, client: options.sourceAddress, path: virtualPath, expiresAt: new Date(expiresAt).toISOString() });
    this.emit('access-granted', { user, client: options.sourceAddress, path: virtualPath });
    let revoked = false;
    const revoke = () => {
      if (revoked) return;
      revoked = true;
      context.auth.revoke(user);
      this.emit('access-revoked', { user });
    };
    return { user, password, path: virtualPath, httpPath: grantUrlPath(user, password, virtualPath), expiresAt, revoke };
  }

  /**
   * The bound HTTP and HTTPS listeners (`http`, `https` config keys), each null when off or
   * before start. A grant's URL is `http(s)://<server address>:<port><access.httpPath>`.
   */
  httpEndpoints(): { http: HttpEndpoint | null; https: HttpEndpoint | null } {
    return this.http?.endpoints() ?? { http: null, https: null };
  }

  /** Resolves when background re-verification of changed images has finished. */
  async imageChecksSettled(): Promise<void> {
    await this.context?.guard.settled();
  }

  sessionCount(): number {
    return this.sessions.size;
  }

  /** The configured limit of control connections at once (`maxConnections`). */
  maxConnections(): number {
    return this.options.config.maxConnections;
  }

  /**
   * Cheap checks first, then the control port, so an unusable port (privilege, in use) fails
   * fast with its one line before anything slow (the catalog check) or chatty runs. Connections
   * that arrive before the server is ready get 421.
   */
  async start(): Promise<void> {
    const { config, logger } = this.options;
    const jail = await RepositoryJail.open(config.images).catch((err: NodeJS.ErrnoException) => {
      throw new StartError(`images directory ${config.images} is not usable (${err.code ?? err.message})`, 'images');
    });
    const tls = this.loadTls();
    const secureContext = tls?.secureContext ?? null;
    let context: ServerContext | null = null;
    const listener = new ControlListener({
      host: config.host,
      port: config.port,
      logger: toBunyanShape(logger.child({ component: 'ftp-srv' })),
      admit: (socket) => (context ? this.admit(canonicalAddress(socket.remoteAddress)) : 'Server starting; try again shortly'),
      onConnection: (connection) => {
        const session = new Session(connection.id || randomUUID(), connection.commandSocket, context!);
        connection.swfwOnData = (chunk) => session.onPlainData(chunk);
        this.track(session);
      },
    });
    try {
      await listener.listen();
    } catch (err) {
      listener.dispose();
      throw this.describeListenError(err as NodeJS.ErrnoException);
    }
    this.listener = listener;
    if (config.http || config.https) {
      // Bound here, with the control port, so serve binds every port before it drops root.
      const http = new HttpFrontEnd({
        http: config.http,
        https: config.https,
        tls: tls && { cert: tls.cert, key: tls.key },
        maxConnections: config.maxConnections,
        maxPerIp: config.maxPerIp,
        logger,
      });
      try {
        await http.listen();
      } catch (err) {
        listener.dispose();
        this.listener = null;
        throw err instanceof HttpListenError ? this.describeHttpListenError(err) : err;
      }
      this.http = http;
    }
    try {
      // An invalid catalog is a config problem (one line per problem); an unreadable one cannot start.
      const guard = await ImageGuard.load(jail.rootRealPath, logger).catch((err: Error) => {
        if (err instanceof ConfigError) throw err;
        throw new StartError(`the image catalog cannot be used: ${err.message}`, 'images');
      });
      const pool = new BufferPool(Limits.RETR_READ_BYTES, MAX_READ_BUFFERS);
      const hashing = new SentBytesHashing(config.hashSentBytes);
      this.hashing = hashing;
      const ports = new PassivePorts({
        range: config.pasvRange,
        host: config.host,
        logger: logger.child({ component: 'pasv' }),
        acceptTimeoutMs: config.dataTimeoutMs,
        onWait: (client) => this.emit('pasv-wait', { client }),
        onWaitTimeout: (client) => this.emit('pasv-timeout', { client }),
      });
      this.ports = ports;
      await ports.start();
      if (ports.boundPorts().length === 0) {
        // Every PASV would wait and get 425: a second server on the same range, most likely.
        const { min, max } = config.pasvRange;
        throw new StartError(
          `none of the passive ports ${min}-${max} on ${config.host} could be bound: another process holds them (another swfw serve, npm start or FTP server?); stop it or choose another passive range`,
          'port-in-use',
        );
      }
      context = {
        config,
        jail,
        guard,
        ports,
        auth: await Authenticator.create(this.options.accounts),
        secureContext,
        pool,
        hashing,
        logger,
        events: this,
        isShuttingDown: () => this.shuttingDown,
      };
      this.context = context;
      this.http?.attach(context);
    } catch (err) {
      await this.stop(0);
      throw err;
    }
    const { address, port } = listener.address();
    logger.info('serving firmware images read-only', {
      address,
      port,
      pasvRange: `${config.pasvRange.min}-${config.pasvRange.max}`,
      passivePortsBound: this.ports.boundPorts().length,
      images: config.images,
      tls: secureContext ? (config.requireTls ? 'required' : 'optional') : 'off',
      anonymous: config.anonymous,
      activeMode: config.activeMode,
      http: this.describeEndpoint('http'),
      https: this.describeEndpoint('https'),
    });
  }

  private describeEndpoint(protocol: 'http' | 'https'): string {
    const bound = this.httpEndpoints()[protocol];
    return bound ? `${bound.address}:${bound.port}` : 'off';
  }

  /**
   * Graceful stop: refuse new connections and logins at once, wait up to `graceMs` for running
   * transfers, then close every session with 421 and release every port.
   */
  /**
   * Stops accepting, lets running transfers finish for up to `graceMs`, then closes every session
   * with 421. A second call while stopping with a shorter grace cuts the wait short (a second
   * SIGINT/SIGTERM: stop now); it returns the same promise.
   */
  stop(graceMs: number = Limits.SHUTDOWN_GRACE_MS): Promise<void> {
    if (this.stopping) {
      if (graceMs < this.graceMs) {
        this.graceMs = graceMs;
        this.hurry?.();
      }
      return this.stopping;
    }
    this.graceMs = graceMs;
    this.stopping = this.shutdown(graceMs);
    return this.stopping;
  }

  private async shutdown(graceMs: number): Promise<void> {
    this.shuttingDown = true;
    const listener = this.listener;
    const allClosed = listener?.stopAccepting() ?? Promise.resolve();
    const httpClosed = this.http?.stopAccepting() ?? Promise.resolve();
    await this.waitForTransfers(graceMs);
    for (const session of this.sessions.values()) {
      session.closeWith(ReplyCode.SERVICE_NOT_AVAILABLE, 'Server shutting down');
    }
    await this.http?.closeAll();
    await httpClosed;
    await this.ports?.stop();
    await allClosed;
    await this.hashing?.stop();
    await this.context?.guard.settled();
    listener?.dispose();
    this.options.logger.info('server stopped');
  }

  private waitForTransfers(graceMs: number): Promise<void> {
    const busy = () => [...this.sessions.values()].some((s) => s.transfer !== null) || (this.http?.busy() ?? false);
    if (!busy() || graceMs <= 0) return Promise.resolve();
    this.options.logger.info('waiting for running transfers before stopping', { graceMs });
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.hurry = null;
        this.removeListener('transfer', check);
        resolve();
      };
      this.hurry = done;
      const check = () => setImmediate(() => busy() || done());
      const timer = setTimeout(done, graceMs);
      this.on('transfer', check);
    });
  }

  private admit(address: string): string | null {
    const { maxConnections, maxPerIp } = this.options.config;
    if (this.shuttingDown) return 'Server shutting down';
    if (this.sessions.size >= maxConnections) return `Too many connections (server limit ${maxConnections})`;
    if ((this.perAddress.get(address) ?? 0) >= maxPerIp) return `Too many connections from your address (limit ${maxPerIp})`;
    return null;
  }

  private track(session: Session): void {
    this.sessions.set(session.id, session);
    this.perAddress.set(session.peerAddress, (this.perAddress.get(session.peerAddress) ?? 0) + 1);
    session.lifetime.signal.addEventListener('abort', () => {
      this.sessions.delete(session.id);
      const left = (this.perAddress.get(session.peerAddress) ?? 1) - 1;
      if (left > 0) this.perAddress.set(session.peerAddress, left);
      else this.perAddress.delete(session.peerAddress);
    });
  }

  /** Reads the certificate and key once (before serve drops root): FTPS's context and HTTPS's PEM. */
  private loadTls(): { secureContext: SecureContext; cert: Buffer; key: Buffer } | null {
    const { tlsCert, tlsKey } = this.options.config;
    if (!tlsCert || !tlsKey) return null;
    try {
      const cert = readFileSync(tlsCert);
      const key = readFileSync(tlsKey);
      return { secureContext: createSecureContext({ cert, key, minVersion: 'TLSv1.2' }), cert, key };
    } catch (err) {
      throw new StartError(`TLS certificate or key cannot be used: ${(err as Error).message}`, 'tls');
    }
  }

  private describeHttpListenError(err: HttpListenError): StartError {
    const { protocol, endpoint, reason: cause } = err;
    const name = protocol.toUpperCase();
    if (cause.code === 'EACCES') {
      return new StartError(
        `${name} port ${endpoint.port} needs privilege: run as root, grant it with \`setcap cap_net_bind_service=+ep $(command -v node)\`, or use --${protocol} ${protocol === 'http' ? 63001 : 63002}`,
        'privileged-port',
      );
    }
    if (cause.code === 'EADDRINUSE') return new StartError(`${name} port ${endpoint.port} on ${endpoint.host} is already in use by another process`, 'port-in-use');
    if (cause.code === 'EADDRNOTAVAIL') return new StartError(`${name} address ${endpoint.host} is not an address of this host`, 'address-unavailable');
    return new StartError(`cannot listen for ${name} on ${endpoint.host}:${endpoint.port}: ${cause.message}`, 'other');
  }

  private describeListenError(err: NodeJS.ErrnoException): StartError {
    const { host, port } = this.options.config;
    if (err.code === 'EACCES') {
      return new StartError(
        `port ${port} needs privilege: run as root, grant it with \`setcap cap_net_bind_service=+ep $(command -v node)\`, or use --port 2121`,
        'privileged-port',
      );
    }
    if (err.code === 'EADDRINUSE') return new StartError(`port ${port} on ${host} is already in use by another process`, 'port-in-use');
    if (err.code === 'EADDRNOTAVAIL') return new StartError(`address ${host} is not an address of this host`, 'address-unavailable');
    return new StartError(`cannot listen on ${host}:${port}: ${err.message}`, 'other');
  }
}
