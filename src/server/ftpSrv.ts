/**
 * The one module that imports ftp-srv (4.6.3, pinned; upstream inactive since 2023).
 *
 * ftp-srv still owns the control listener, the per-connection object and the 220 greeting. Its
 * defects (numbered as in docs/design.md) are fixed here, through its extension points, and nowhere else:
 * - defect 5 (no line buffering): Connection.prototype._handleData is replaced; bytes go to our
 *   Session, which buffers lines and runs our command table (ftp-srv's own commands, passive
 *   connector and file system are never reached);
 * - defect 6 (no connection limits): the listener's 'connection' handler is wrapped;
 * - defect 7 (process.exit on signals): the SIGTERM/SIGINT/SIGQUIT handlers it installs per
 *   instance are removed right after construction; the CLI owns signals;
 * - its disconnect path arms a 1 s timer per closed client that is never cleared; replaced;
 * - it logs every client's socket error at error level (a reset is routine); its listener is removed;
 * - defect 8 (typings): its typings are not used; the shapes we touch are declared below.
 */
import { createRequire } from 'node:module';
import type { Server, Socket } from 'node:net';
import type { BunyanShapedLogger } from '../log/bunyanAdapter.js';

const require = createRequire(import.meta.url);

/** The parts of ftp-srv's Connection that we use. */
export interface FtpSrvConnection {
  readonly id: string;
  readonly commandSocket: Socket;
  /** Set by us: the session that receives this connection's bytes. */
  swfwOnData?: (chunk: Buffer) => void;
}

interface FtpSrvInstance {
  server: Server;
  connections: Record<string, FtpSrvConnection>;
  listen(): Promise<unknown>;
  on(event: 'connect', listener: (event: { connection: FtpSrvConnection }) => void): void;
  disconnectClient(id: string): Promise<unknown>;
  removeAllListeners(): void;
}

type FtpSrvConstructor = new (options: Record<string, unknown>) => FtpSrvInstance;

const FtpSrv = require('ftp-srv') as FtpSrvConstructor;
const ConnectionClass = require('ftp-srv/src/connection') as { prototype: Record<string, unknown> };

// Replace the unbuffered command parser once for every instance: bytes go to our session.
ConnectionClass.prototype['_handleData'] = function (this: FtpSrvConnection, chunk: Buffer): void {
  this.swfwOnData?.(chunk);
};

const SIGNALS = ['SIGTERM', 'SIGINT', 'SIGQUIT'] as const;
/** How long a refused client gets to read its 421 before the socket is destroyed. */
const REFUSAL_LINGER_MS = 1000;

export interface ControlListenerOptions {
  host: string;
  port: number;
  logger: BunyanShapedLogger;
  /**
   * Decides whether a new connection may proceed. Returning a string refuses it: the string is
   * sent as a 421 reply and the socket is closed, before any greeting.
   */
  admit(socket: Socket): string | null;
  /** Called for every admitted connection, before its greeting is sent. */
  onConnection(connection: FtpSrvConnection): void;
}

/** The control-connection listener: ftp-srv with its defects patched. */
export class ControlListener {
  private readonly ftpSrv: FtpSrvInstance;

  constructor(options: ControlListenerOptions) {
    const before = new Map(SIGNALS.map((signal) => [signal, new Set(process.listeners(signal))]));
    const host = options.host.includes(':') ? `[${options.host}]` : options.host;
    this.ftpSrv = new FtpSrv({
      url: `ftp://${host}:${options.port}`,
      log: options.logger,
      // Never used: PASV/EPSV are our commands. Set so ftp-srv does not warn at listen.
      pasv_url: '127.0.0.1',
      anonymous: false,
      greeting: null,
      // Our Session runs the idle timer; ftp-srv's socket timeout fired during long RETRs.
      timeout: 0,
    });
    for (const signal of SIGNALS) {
      for (const listener of process.listeners(signal)) {
        if (!before.get(signal)!.has(listener)) process.removeListener(signal, listener);
      }
    }
    // ftp-srv's version arms a never-cleared timeout per disconnect; ours only forgets the client.
    this.ftpSrv.disconnectClient = (id: string) => {
      delete this.ftpSrv.connections[id];
      return Promise.resolve();
    };
    this.ftpSrv.on('connect', ({ connection }) => {
      // ftp-srv logs every control socket error at error level ("Client error … ECONNRESET"):
      // a switch resetting its connection is routine. Our session logs it at debug.
      connection.commandSocket.removeAllListeners('error');
      options.onConnection(connection);
    });
    const netServer = this.ftpSrv.server;
    // ftp-srv logs every listener error, including EACCES/EADDRINUSE at listen, which the CLI
    // already turns into one clear line; only errors after listening are worth a log record.
    netServer.removeAllListeners('error');
    netServer.on('error', (err) => {
      if (netServer.listening) options.logger.error({ err: err.message }, 'control listener error');
    });
    const [greet] = netServer.listeners('connection') as Array<(socket: Socket) => void>;
    netServer.removeAllListeners('connection');
    netServer.on('connection', (socket: Socket) => {
      const refusal = options.admit(socket);
      if (refusal === null) return greet!(socket);
      socket.on('error', () => {});
      socket.end(`421 ${refusal}\r\n`);
      socket.resume();
      const linger = setTimeout(() => socket.destroy(), REFUSAL_LINGER_MS);
      socket.once('close', () => clearTimeout(linger));
    });
  }

  /** Starts listening. Rejects with the Node error (EADDRINUSE, EACCES) on failure. */
  async listen(): Promise<void> {
    await this.ftpSrv.listen();
  }

  address(): { address: string; port: number } {
    const address = this.ftpSrv.server.address();
    if (address === null || typeof address === 'string') throw new Error('control listener is not listening');
    return { address: address.address, port: address.port };
  }

  /**
   * Stops accepting at once. The promise settles when every accepted connection has closed,
   * so callers close their sessions and then await it.
   */
  stopAccepting(): Promise<void> {
    return new Promise((resolve) => {
      if (!this.ftpSrv.server.listening) return resolve();
      this.ftpSrv.server.close(() => resolve());
    });
  }

  dispose(): void {
    this.ftpSrv.removeAllListeners();
  }
}
