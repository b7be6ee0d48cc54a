/**
 * The HTTP(S) front end of `swfw serve`: the same read-only repository as FTP, for clients that
 * can only pull over HTTP(S) (Aruba AOS-CX `PUT /firmware?from=URL`, HP Smart Update Manager's
 * 63001/63002 layout). It shares the FTP server's context: the repository jail, the catalog
 * guard, the accounts and one-time grants, the read buffers, the sent-bytes hasher and the
 * audit events. Node's own http/https modules; GET and HEAD only (RFC 9110 §9.3.1, §9.3.2).
 */
import { randomUUID } from 'node:crypto';
import { closeSync, type Stats } from 'node:fs';
import { createServer as createHttpServer, type IncomingMessage, type Server as HttpServer, type ServerResponse, STATUS_CODES } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import { posix } from 'node:path';
import { Limits } from '../core/limits.js';
import { HttpStatus, ReplyCode } from '../core/replyCodes.js';
import { canonicalAddress } from '../core/address.js';
import { FtpReplyError, describeError } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import type { ListenEndpoint } from '../config/schema.js';
import type { Login } from './accounts.js';
import type { ServerContext, TransferRecord } from './context.js';
import { ANONYMOUS_USERS } from './preLogin.js';
import { ifRangeMatches, parseRange } from './httpRange.js';
import { transferImage } from './sendFile.js';

export type HttpProtocol = 'http' | 'https';

/** The path prefix of one-time grant URLs: `/grant/<user>.<password>/<image path>`. */
export const GRANT_PREFIX = '/grant/';
const ALLOW = 'GET, HEAD';
const REALM = 'Basic realm="swfw", charset="UTF-8"';
const GRANT_TOKEN = /^(sw-[0-9a-f]+)\.([A-Za-z0-9_-]+)$/;

/**
 * The grant URL path of a one-time grant: `/grant/<user>.<password>` then the image's virtual
 * path, each segment percent-encoded (RFC 3986 §3.3).
 */
export function grantUrlPath(user: string, password: string, virtualPath: string): string {
  return `${GRANT_PREFIX}${user}.${password}${encodePath(virtualPath)}`;
}

function encodePath(virtualPath: string): string {
  return virtualPath.split('/').map(encodeURIComponent).join('/');
}

/** Percent-decodes what is valid and leaves the rest as it came (a log line, not a parse). */
function decodeLeniently(text: string): string {
  return text.replace(/(?:%[0-9a-f]{2})+/gi, (run) => {
    try {
      return decodeURIComponent(run);
    } catch {
      return run;
    }
  });
}

/**
 * A request target as something safe to log: every grant password becomes `***`, the query is
 * dropped, and the text is cut short. A client may spell a grant path many ways that are answered
 * (`/%67rant/…`, a bad escape in the query) or refused (`//grant/…`, `/x/../grant/…`, `/Grant/…`,
 * `%2567`, backslashes, absolute-form): the target is decoded up to three times, leniently, and
 * then both a grant user's token (`sw-<12 hex>.<password>`) anywhere and whatever follows a
 * `grant` segment are hidden.
 */
export function redactTarget(target: string): string {
  let shown = target.replace(/\?.*$/s, '?…');
  for (let round = 0; round < 3; round++) {
    const next = decodeLeniently(shown);
    if (next === shown) break;
    shown = next;
  }
  shown = shown
    .replace(/(sw-[0-9a-f]{12})\.[^/\\?\s]*/gi, '$1.***')
    // `grant` as a whole segment (after a slash or a backslash), not inside a name such as `vagrant`.
    .replace(/((?:^|[/\\])grant[/\\]+)(?!sw-[0-9a-f]{12}\.\*\*\*(?:[/\\?]|$))[^/\\?]*/gi, '$1***');
  // eslint-disable-next-line no-control-regex
  return shown.replace(/[\u0000-\u001f\u007f]/g, '?').slice(0, Limits.AUDIT_ARGUMENT_CHARS);
}

/** What a request target names: a repository path, or a grant token and the path it claims. */
type Target = { kind: 'path'; path: string; directory: boolean } | { kind: 'grant'; user: string; password: string; path: string };

/**
 * Parses an origin-form request target (RFC 9112 §3.2.1) strictly: anything that is not one
 * canonical path is null (404), never normalized into one. Refused: absolute-form and any
 * target not starting with `/`; encoded slashes, backslashes and NUL (`%2f`, `%5c`, `%00`, `\`);
 * bad percent-encoding; control characters; `.`, `..` and empty segments after decoding. The
 * query is ignored. One trailing slash marks a directory.
 */
export function parseTarget(url: string): Target | null {
  if (!url.startsWith('/')) return null;
  const raw = url.replace(/\?.*$/s, '');
  if (/%(2f|5c|00)/i.test(raw) || raw.includes('\\')) return null;
  let decoded: string;
  try {
    decoded = decodeURIComponent(raw);
  } catch {
    return null;
  }
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f\\]/.test(decoded)) return null;
  const segments = decoded.split('/').slice(1);
  const directory = segments.length > 0 && segments[segments.length - 1] === '';
  if (directory) segments.pop();
  if (segments.some((s) => s === '' || s === '.' || s === '..')) return null;
  const path = `/${segments.join('/')}`;
  if (segments[0] === 'grant') {
    // Reserved: a grant URL never falls through to a repository directory named "grant".
    const token = GRANT_TOKEN.exec(segments[1] ?? '');
    if (!token || segments.length < 3 || directory) return null;
    return { kind: 'grant', user: token[1]!, password: token[2]!, path: `/${segments.slice(2).join('/')}` };
  }
  return { kind: 'path', path, directory };
}

/** Decodes `Authorization: Basic …` (RFC 7617 §2); null when absent, another scheme or malformed. */
export function parseBasic(header: string | undefined): { user: string; password: string } | null {
  const match = header ? /^Basic[ \t]+([A-Za-z0-9+/]+={0,2})[ \t]*$/i.exec(header) : null;
  if (!match) return null;
  const text = Buffer.from(match[1]!, 'base64').toString('utf8');
  const colon = text.indexOf(':');
  if (colon < 0) return null;
  return { user: text.slice(0, colon), password: text.slice(colon + 1) };
}

/**
 * Failed Basic logins per source address: MAX_FAILED_LOGINS within HTTP_FAILED_LOGIN_WINDOW_MS
 * lock the address out for HTTP_LOGIN_LOCKOUT_MS. At most HTTP_FAILED_LOGIN_ADDRESSES are
 * remembered; beyond that the oldest entries go first (memory stays bounded under a spray).
 */
export class LoginLockout {
  private readonly byAddress = new Map<string, { failures: number; since: number; lockedUntil: number }>();
  /** Per address, the tail of its login checks: one at a time, so each sees the failures before it. */
  private readonly checking = new Map<string, Promise<unknown>>();

  /**
   * Runs `check` after the address's earlier checks have finished. Without this, parallel
   * connections from one address would all pass `lockedFor` before the first failure counted
   * (an address got maxPerIp guesses, not MAX_FAILED_LOGINS). Other addresses are not held up.
   */
  async oneAtATime<T>(address: string, check: () => Promise<T>): Promise<T> {
    const before = this.checking.get(address) ?? Promise.resolve();
    const mine = before.then(check, check);
    const tail = mine.catch(() => {});
    this.checking.set(address, tail);
    try {
      return await mine;
    } finally {
      if (this.checking.get(address) === tail) this.checking.delete(address);
    }
  }

  /** Milliseconds the address stays locked out, 0 when it is not. */
  lockedFor(address: string, now = Date.now()): number {
    const entry = this.byAddress.get(address);
    return entry && entry.lockedUntil > now ? entry.lockedUntil - now : 0;
  }

  fail(address: string, now = Date.now()): void {
    let entry = this.byAddress.get(address);
    if (!entry || (now - entry.since > Limits.HTTP_FAILED_LOGIN_WINDOW_MS && entry.lockedUntil <= now)) {
      this.byAddress.delete(address);
      entry = { failures: 0, since: now, lockedUntil: 0 };
      this.byAddress.set(address, entry);
      this.prune(now);
    }
    entry.failures++;
    if (entry.failures >= Limits.MAX_FAILED_LOGINS) entry.lockedUntil = now + Limits.HTTP_LOGIN_LOCKOUT_MS;
  }

  private prune(now: number): void {
    if (this.byAddress.size <= Limits.HTTP_FAILED_LOGIN_ADDRESSES) return;
    for (const [address, entry] of this.byAddress) {
      if (now - entry.since > Limits.HTTP_FAILED_LOGIN_WINDOW_MS && entry.lockedUntil <= now) this.byAddress.delete(address);
    }
    for (const address of this.byAddress.keys()) {
      if (this.byAddress.size <= Limits.HTTP_FAILED_LOGIN_ADDRESSES) break;
      this.byAddress.delete(address);
    }
  }
}

/** A reply was already sent (or the connection is gone): the request is over. */
const ANSWERED = Symbol('answered');

export interface HttpFrontEndOptions {
  http: ListenEndpoint | null;
  https: ListenEndpoint | null;
  /** Certificate and key (PEM) for HTTPS; required when `https` is set. */
  tls: { cert: Buffer; key: Buffer } | null;
  /** Connections at once over HTTP and HTTPS together, and per client address (maxConnections, maxPerIp). */
  maxConnections: number;
  maxPerIp: number;
  logger: Logger;
}

/** A listener that failed to bind, with which one it was (for the one-line StartError). */
export class HttpListenError extends Error {
  constructor(
    readonly protocol: HttpProtocol,
    readonly endpoint: ListenEndpoint,
    readonly reason: NodeJS.ErrnoException,
  ) {
    super(`${protocol} ${endpoint.host}:${endpoint.port}: ${reason.message}`);
    this.name = 'HttpListenError';
  }
}

/**
 * The HTTP and HTTPS listeners. `listen()` binds both (before serve drops root); requests that
 * arrive before `attach(context)` get 503. `stopAccepting()` closes the listeners and idle
 * connections, `closeAll()` every connection left (running downloads included).
 */
export class HttpFrontEnd {
  private readonly servers = new Map<HttpProtocol, HttpServer>();
  private readonly perAddress = new Map<string, number>();
  private readonly lockout = new LoginLockout();
  /** Failed-login delays waiting to answer: cancelled when their connection closes. */
  private connections = 0;
  private transfers = 0;
  private context: ServerContext | null = null;
  private readonly logger: Logger;
  /** Requests being handled (a download until its audit record is written): closeAll waits for them. */
  private readonly inFlight = new Set<Promise<void>>();
  /** Per connection, the pipelined requests waiting for their turn: told when it closes. */
  private readonly queuedOn = new WeakMap<Socket, Set<() => void>>();

  constructor(private readonly options: HttpFrontEndOptions) {
    this.logger = options.logger.child({ component: 'http' });
  }

  /** Binds every configured listener; on failure closes the ones bound and throws HttpListenError. */
  async listen(): Promise<void> {
    const { http, https, tls } = this.options;
    try {
      if (http) await this.bind('http', http);
      if (https) {
        if (!tls) throw new Error('https needs tlsCert and tlsKey');
        await this.bind('https', https);
      }
    } catch (err) {
      await this.close();
      throw err;
    }
  }

  /** From now on requests are served with this context (before: 503). */
  attach(context: ServerContext): void {
    this.context = context;
  }

  /** The bound address of each listener (the real port when 0 was asked), null when off. */
  endpoints(): { http: { address: string; port: number } | null; https: { address: string; port: number } | null } {
    const of = (protocol: HttpProtocol) => {
      const address = this.servers.get(protocol)?.address() as AddressInfo | null | undefined;
      return address ? { address: address.address, port: address.port } : null;
    };
    return { http: of('http'), https: of('https') };
  }

  /** True while a GET is sending a body. */
  busy(): boolean {
    return this.transfers > 0;
  }

  /**
   * Stops accepting: listeners close, idle keep-alive connections close at once, a request on a
   * busy one gets 503 with `Connection: close`. Resolves when every connection has ended.
   */
  stopAccepting(): Promise<void> {
    return this.close();
  }

  /** Ends every connection still open (running downloads are cut: their audit says aborted). */
  async closeAll(): Promise<void> {
    for (const server of this.servers.values()) server.closeAllConnections();
    // Each cut download still writes its audit record (aborted): the stop waits for them, so
    // that none is written after the logger has closed. Bounded, so that a request stuck on
    // something other than its socket cannot hold the stop forever.
    if (this.inFlight.size === 0) return;
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<'late'>((resolve) => (timer = setTimeout(() => resolve('late'), Limits.SHUTDOWN_GRACE_MS)));
    const settled = await Promise.race([Promise.all([...this.inFlight]).then(() => 'settled' as const), late]);
    clearTimeout(timer);
    if (settled === 'late') this.logger.warn('HTTP requests still running at stop; their audit records may be missing', { requests: this.inFlight.size });
  }

  private close(): Promise<void> {
    const closing = [...this.servers.values()].map(
      (server) =>
        new Promise<void>((resolve) => {
          if (!server.listening) {
            server.closeAllConnections();
            return resolve();
          }
          server.close(() => resolve());
          server.closeIdleConnections();
        }),
    );
    return Promise.all(closing).then(() => undefined);
  }

  private async bind(protocol: HttpProtocol, endpoint: ListenEndpoint): Promise<void> {
    const common = {
      maxHeaderSize: Limits.HTTP_MAX_HEADER_BYTES,
      headersTimeout: Limits.HTTP_HEADERS_TIMEOUT_MS,
      requestTimeout: Limits.HTTP_REQUEST_TIMEOUT_MS,
      keepAliveTimeout: Limits.HTTP_KEEP_ALIVE_TIMEOUT_MS,
      connectionsCheckingInterval: Limits.HTTP_TIMEOUT_CHECK_MS,
      requireHostHeader: true,
      noDelay: true,
    };
    const tls = this.options.tls;
    const server =
      protocol === 'https' && tls
        ? createHttpsServer({ ...common, cert: tls.cert, key: tls.key, minVersion: 'TLSv1.2', handshakeTimeout: Limits.HTTP_HEADERS_TIMEOUT_MS })
        : createHttpServer(common);
    server.maxHeadersCount = Limits.HTTP_MAX_HEADERS;
    server.maxRequestsPerSocket = Limits.HTTP_MAX_REQUESTS_PER_CONNECTION;
    // No socket inactivity timeout: a download's progress is judged by sendFile's stall check.
    server.timeout = 0;
    server.on('connection', (socket: Socket) => this.admit(socket));
    server.on('request', (req: IncomingMessage, res: ServerResponse) => {
      const handled = this.whenOwnsSocket(req, res)
        .then((owns) => (owns ? this.handle(protocol, req, res) : undefined))
        .catch((err: unknown) => {
          this.logger.error('HTTP request failed', { protocol, error: describeError(err) });
          if (!res.headersSent) this.reply(res, HttpStatus.INTERNAL_SERVER_ERROR, 'Internal error');
          else res.destroy();
        })
        .finally(() => this.inFlight.delete(handled));
      this.inFlight.add(handled);
    });
    server.on('connect', (_req: IncomingMessage, socket: Socket) => {
      // CONNECT (RFC 9110 §9.3.6) asks for a tunnel: this is no proxy.
      const body = 'Method not allowed\n';
      socket.end(
        `HTTP/1.1 ${HttpStatus.METHOD_NOT_ALLOWED} ${STATUS_CODES[HttpStatus.METHOD_NOT_ALLOWED]}\r\nAllow: ${ALLOW}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n${body}`,
      );
    });
    server.on('clientError', (err: NodeJS.ErrnoException, socket: Socket) => {
      // Unparseable requests, oversized headers, slow headers: a short reply where one can go.
      this.logger.debug('HTTP client error', { protocol, client: canonicalAddress(socket.remoteAddress), error: err.code ?? err.message });
      if (err.code === 'ECONNRESET' || !socket.writable || (socket as Socket & { _httpMessage?: unknown })._httpMessage) {
        socket.destroy();
        return;
      }
      const status =
        err.code === 'HPE_HEADER_OVERFLOW'
          ? HttpStatus.REQUEST_HEADER_FIELDS_TOO_LARGE
          : err.code === 'ERR_HTTP_REQUEST_TIMEOUT'
            ? HttpStatus.REQUEST_TIMEOUT
            : HttpStatus.BAD_REQUEST;
      const body = `${STATUS_CODES[status]}\n`;
      socket.end(`HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n${body}`);
    });
    server.on('tlsClientError', (err: Error, socket: Socket) => {
      this.logger.debug('TLS handshake failed', { client: canonicalAddress(socket.remoteAddress), error: err.message });
      socket.destroy();
    });
    await new Promise<void>((resolve, reject) => {
      const onError = (err: NodeJS.ErrnoException) => reject(new HttpListenError(protocol, endpoint, err));
      server.once('error', onError);
      server.listen(endpoint.port, endpoint.host, () => {
        server.removeListener('error', onError);
        resolve();
      });
    });
    server.on('error', (err: Error) => this.logger.error('HTTP listener error', { protocol, error: err.message }));
    this.servers.set(protocol, server);
  }

  /** maxConnections over both listeners and maxPerIp per address; over either, closed at once. */
  private admit(socket: Socket): void {
    const address = canonicalAddress(socket.remoteAddress);
    const { maxConnections, maxPerIp } = this.options;
    const mine = this.perAddress.get(address) ?? 0;
    if (this.connections >= maxConnections || mine >= maxPerIp) {
      this.logger.debug('HTTP connection refused: limit reached', { client: address, connections: this.connections, fromAddress: mine });
      socket.destroy();
      return;
    }
    this.connections++;
    this.perAddress.set(address, mine + 1);
    socket.once('close', () => {
      this.connections--;
      const left = (this.perAddress.get(address) ?? 1) - 1;
      if (left > 0) this.perAddress.set(address, left);
      else this.perAddress.delete(address);
    });
  }

  /** A short text reply (never a server path) and, on a refusal, a debug line. */
  private reply(res: ServerResponse, status: number, text: string, headers: Record<string, string | number> = {}, head = false): typeof ANSWERED {
    if (res.headersSent || res.destroyed) return ANSWERED;
    const body = `${text}\n`;
    res.writeHead(status, {
      'Content-Type': 'text/plain; charset=utf-8',
      'Content-Length': Buffer.byteLength(body),
      'X-Content-Type-Options': 'nosniff',
      ...headers,
    });
    res.end(head ? undefined : body);
    return ANSWERED;
  }

  /**
   * Pipelined requests (RFC 9112 §9.3) are handled one at a time: a request waits until the
   * responses before it on its connection have finished and its own response holds the socket.
   * Handled at once, a queued response would read the file into the server's shared buffers and
   * leave them in a write queue that never drains if the client goes away (every other download
   * then waits for buffers), and a burst of pipelined wrong passwords would all be checked before
   * the first failure counted towards the lockout. Resolves false when the connection closed
   * first: nothing to do.
   */
  private whenOwnsSocket(req: IncomingMessage, res: ServerResponse): Promise<boolean> {
    if (res.socket) return Promise.resolve(true);
    const connection = req.socket;
    // One 'close' listener per connection, however many requests it queued.
    let waiting = this.queuedOn.get(connection);
    if (!waiting) {
      const set = new Set<() => void>();
      waiting = set;
      this.queuedOn.set(connection, set);
      connection.once('close', () => {
        this.queuedOn.delete(connection);
        for (const giveUp of set) giveUp();
      });
    }
    const queue = waiting;
    return new Promise((resolve) => {
      const giveUp = () => {
        res.removeListener('socket', owned);
        resolve(false);
      };
      const owned = () => {
        queue.delete(giveUp);
        resolve(true);
      };
      queue.add(giveUp);
      res.once('socket', owned);
    });
  }

  private async handle(protocol: HttpProtocol, req: IncomingMessage, res: ServerResponse): Promise<void> {
    const context = this.context;
    const client = canonicalAddress(req.socket.remoteAddress);
    const target = req.url ?? '';
    const head = req.method === 'HEAD';
    const note = (status: number) => this.logger.debug('HTTP request', { protocol, client, method: req.method, target: redactTarget(target), status });
    if (!context || context.isShuttingDown()) {
      note(HttpStatus.SERVICE_UNAVAILABLE);
      this.reply(res, HttpStatus.SERVICE_UNAVAILABLE, context ? 'Server shutting down' : 'Server starting; try again shortly', { Connection: 'close', 'Retry-After': Limits.HTTP_RETRY_AFTER_S }, head);
      return;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      note(HttpStatus.METHOD_NOT_ALLOWED);
      this.reply(res, HttpStatus.METHOD_NOT_ALLOWED, 'Method not allowed: the repository is read-only', { Allow: ALLOW });
      return;
    }
    const parsed = parseTarget(target);
    if (!parsed) {
      note(HttpStatus.NOT_FOUND);
      this.reply(res, HttpStatus.NOT_FOUND, 'Not found', {}, head);
      return;
    }
    let login: Login | typeof ANSWERED;
    if (parsed.kind === 'grant') {
      // A grant URL carries its own credential: anything wrong about it is 404, never 401, so a
      // stolen or guessed URL learns nothing. No delay: the token has 128 bits.
      const grant = context.auth.checkGrant(parsed.user, parsed.password, client);
      if (!grant || grant.onlyPath !== parsed.path) {
        note(HttpStatus.NOT_FOUND);
        this.reply(res, HttpStatus.NOT_FOUND, 'Not found', {}, head);
        return;
      }
      login = grant;
    } else login = await this.basicLogin(context, req, res, client, head);
    if (login === ANSWERED) return note(res.statusCode);
    const path = parsed.path;
    if (login.onlyPath !== null && login.onlyPath !== path) {
      note(HttpStatus.NOT_FOUND);
      this.reply(res, HttpStatus.NOT_FOUND, 'Not found', {}, head);
      return;
    }
    let opened: { fd: number; stats: Stats };
    try {
      const file = context.jail.openFile(path);
      opened = { fd: file.fd, stats: file.entry.stats };
    } catch (err) {
      if (!(err instanceof FtpReplyError)) throw err;
      if (context.config.httpListing && login.onlyPath === null && (await this.listing(context, path, res, head))) return note(res.statusCode);
      note(HttpStatus.NOT_FOUND);
      this.reply(res, HttpStatus.NOT_FOUND, 'Not found', {}, head);
      return;
    }
    let sending = false;
    try {
      if (parsed.kind === 'path' && parsed.directory) {
        note(HttpStatus.NOT_FOUND);
        this.reply(res, HttpStatus.NOT_FOUND, 'Not found', {}, head);
        return;
      }
      try {
        context.guard.check(path, opened.stats);
      } catch (err) {
        if (!(err instanceof FtpReplyError)) throw err;
        const transient = err.replyCode === ReplyCode.FILE_UNAVAILABLE_TRANSIENT;
        const status = transient ? HttpStatus.SERVICE_UNAVAILABLE : HttpStatus.FORBIDDEN;
        note(status);
        // The guard's messages name no path ("Image refused: it no longer matches its catalog entry").
        this.reply(res, status, err.message, transient ? { 'Retry-After': Limits.HTTP_RETRY_AFTER_S } : {}, head);
        return;
      }
      sending = true;
      await this.sendImage({ protocol, context, req, res, client, user: login.user, path }, opened, head);
    } finally {
      if (!sending) closeSync(opened.fd);
    }
  }

  /**
   * HTTP Basic (RFC 7617) against the same accounts as FTP. No credentials: anonymous when it is
   * on, else 401 at once (clients such as wget send credentials only after that challenge).
   * Wrong credentials: 401 after FAILED_LOGIN_DELAY_MS, counted per address; a locked-out
   * address gets 429 with Retry-After whatever it sends.
   */
  private async basicLogin(context: ServerContext, req: IncomingMessage, res: ServerResponse, client: string, head: boolean): Promise<Login | typeof ANSWERED> {
    const credentials = parseBasic(req.headers.authorization);
    const challenge = { 'WWW-Authenticate': REALM };
    if (!credentials) {
      if (context.config.anonymous) return { user: 'anonymous', onlyPath: null };
      return this.reply(res, HttpStatus.UNAUTHORIZED, 'Authentication required', challenge, head);
    }
    if (context.config.anonymous && ANONYMOUS_USERS.has(credentials.user.toLowerCase())) return { user: 'anonymous', onlyPath: null };
    const checked = await this.lockout.oneAtATime(client, async () => {
      const locked = this.lockout.lockedFor(client);
      if (locked > 0) return { locked };
      const login = await context.auth.check(credentials.user, credentials.password, client);
      if (!login) this.lockout.fail(client);
      return { locked: 0, login };
    });
    if (checked.locked > 0) {
      return this.reply(res, HttpStatus.TOO_MANY_REQUESTS, 'Too many failed logins from your address; try again later', { 'Retry-After': Math.ceil(checked.locked / 1000) }, head);
    }
    if (checked.login) return checked.login;
    this.logger.info('HTTP login failed', { client, user: credentials.user.slice(0, Limits.AUDIT_ARGUMENT_CHARS) });
    await new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(timer);
        res.removeListener('close', done);
        resolve();
      };
      const timer = setTimeout(done, Limits.FAILED_LOGIN_DELAY_MS);
      res.once('close', done);
    });
    return this.reply(res, HttpStatus.UNAUTHORIZED, 'Authentication required', challenge, head);
  }

  /** `httpListing`: a directory as a minimal HTML index; false when `path` is not a directory. */
  private async listing(context: ServerContext, path: string, res: ServerResponse, head: boolean): Promise<boolean> {
    let rows: Array<{ name: string; stats: Stats }>;
    try {
      const entry = await context.jail.resolve(path);
      if (!entry.stats.isDirectory()) return false;
      rows = await context.jail.list(path);
    } catch (err) {
      if (err instanceof FtpReplyError) return false;
      throw err;
    }
    const escape = (text: string) => text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
    const dir = path === '/' ? '/' : `${path}/`;
    const items = rows.map(({ name, stats }) => {
      const suffix = stats.isDirectory() ? '/' : '';
      return `<li><a href="${escape(encodePath(posix.join(dir, name)) + suffix)}">${escape(name + suffix)}</a></li>`;
    });
    const body = `<!DOCTYPE html>\n<html><head><meta charset="utf-8"><title>Index of ${escape(dir)}</title></head>\n<body><h1>Index of ${escape(dir)}</h1>\n<ul>\n${items.join('\n')}\n</ul></body></html>\n`;
    res.writeHead(HttpStatus.OK, { 'Content-Type': 'text/html; charset=utf-8', 'Content-Length': Buffer.byteLength(body), 'X-Content-Type-Options': 'nosniff' });
    res.end(head ? undefined : body);
    return true;
  }

  /**
   * The file, whole or one Range (RFC 9110 §14), with validators from the file's identity. A GET
   * sends the body through sendFile (pooled buffers, hash of the bytes the response accepted,
   * stall cut after dataTimeoutMs) and emits the audit events as RETR does; the record is
   * emitted before the response is ended. Closes `opened.fd`.
   */
  private async sendImage(exchange: ImageExchange, opened: { fd: number; stats: Stats }, head: boolean): Promise<void> {
    const { protocol, req, res, client, user, path } = exchange;
    const { fd, stats } = opened;
    try {
      const size = stats.size;
      // Strong validator: a new inode, size or mtime (ns-ish) is a new representation.
      const etag = `"${stats.ino.toString(16)}-${size.toString(16)}-${Math.round(stats.mtimeMs * 1000).toString(16)}"`;
      const lastModified = new Date(stats.mtimeMs).toUTCString();
      let range = parseRange(req.headers.range, size);
      const ifRange = req.headers['if-range'];
      if (range.kind !== 'whole' && ifRange !== undefined && !ifRangeMatches(String(ifRange), etag)) range = { kind: 'whole' };
      const validators = { 'Accept-Ranges': 'bytes', ETag: etag, 'Last-Modified': lastModified };
      if (range.kind === 'unsatisfiable') {
        this.logger.debug('HTTP request', { protocol, client, method: req.method, target: redactTarget(req.url ?? ''), status: HttpStatus.RANGE_NOT_SATISFIABLE });
        this.reply(res, HttpStatus.RANGE_NOT_SATISFIABLE, 'Range not satisfiable', { ...validators, 'Content-Range': `bytes */${size}` }, head);
        return;
      }
      const start = range.kind === 'range' ? range.start : 0;
      const length = range.kind === 'range' ? range.end - range.start + 1 : size;
      const status = range.kind === 'range' ? HttpStatus.PARTIAL_CONTENT : HttpStatus.OK;
      res.writeHead(status, {
        'Content-Type': 'application/octet-stream',
        'Content-Length': length,
        ...validators,
        ...(range.kind === 'range' ? { 'Content-Range': `bytes ${range.start}-${range.end}/${size}` } : {}),
        'X-Content-Type-Options': 'nosniff',
      });
      if (head) {
        res.end();
        this.logger.debug('HTTP HEAD', { protocol, client, user, path, status });
        return;
      }
      await this.transfer(exchange, fd, size, start, length, status);
    } finally {
      closeSync(fd);
    }
  }

  private async transfer(
    exchange: ImageExchange,
    fd: number,
    /** The file's size at open: a whole transfer of it may carry its version's digest. */
    size: number,
    offset: number,
    expectedBytes: number,
    status: number,
  ): Promise<void> {
    const { protocol, context, req, res, client, user, path } = exchange;
    const { events, logger } = context;
    const id = randomUUID();
    const commands = [`${req.method} ${redactTarget(req.url ?? '')} HTTP/${req.httpVersion}`];
    for (const name of ['range', 'if-range', 'user-agent'] as const) {
      const value = req.headers[name];
      if (typeof value === 'string') commands.push(`${headerName(name)}: ${value.slice(0, Limits.AUDIT_ARGUMENT_CHARS)}`);
    }
    const progress = { session: id, client, user, path, bytes: 0, expectedBytes };
    const record: TransferRecord = {
      protocol,
      session: id,
      client,
      user,
      path,
      offset,
      expectedBytes,
      bytes: 0,
      durationMs: 0,
      dataPort: null,
      code: status,
      result: 'aborted',
      sha256: null,
      commands,
    };
    const started = Date.now();
    this.transfers++;
    try {
      events.emit('transfer-start', progress);
      const { outcome, versionChanged } = await transferImage(
        context,
        {
          fd,
          offset,
          length: expectedBytes,
          size,
          sink: res,
          peerSocket: req.socket,
          endSink: false,
          onProgress: (bytes) => events.emit('transfer-progress', { ...progress, bytes }),
        },
        record,
      );
      // A changed file: headers are sent, so the only way left to say "failed" is a response cut short.
      if (outcome.ok && !versionChanged) record.result = 'complete';
      record.durationMs = Date.now() - started;
      // As RETR logs before its 226: the evidence exists before the response ends.
      logger.info('transfer', { ...record });
      events.emit('transfer', record);
      if (outcome.ok && !versionChanged) res.end();
      else if (versionChanged) res.destroy();
    } finally {
      this.transfers--;
    }
  }
}

/** One GET or HEAD of an image by a logged-in client: who asked, for what, and where to answer. */
interface ImageExchange {
  protocol: HttpProtocol;
  context: ServerContext;
  req: IncomingMessage;
  res: ServerResponse;
  /** The client's address, canonical (IPv4-mapped IPv6 as IPv4). */
  client: string;
  user: string;
  /** The image's virtual path in the repository. */
  path: string;
}

function headerName(lower: string): string {
  return lower.replace(/(^|-)([a-z])/g, (_, dash: string, c: string) => dash + c.toUpperCase());
}
