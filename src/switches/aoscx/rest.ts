/**
 * The HPE Aruba AOS-CX REST API, as much of it as a firmware pull needs (SWITCH-CLI-REFERENCE.md
 * §2.1; aruba/pyaoscx `session.py` and `device.py`, aruba/aoscx-ansible-collection
 * `aoscx_upload_firmware.py`):
 *
 * - `POST /rest/<api>/login` with the form fields `username` and `password`; the session is the
 *   `id` cookie. With `x-use-csrf-token: true` newer releases also answer an `X-Csrf-Token` header,
 *   sent back on every later request. `POST /rest/<api>/logout` ends it: AOS-CX keeps a small
 *   number of REST sessions per user, so a session that is not logged out costs the next login.
 * - `GET /rest/<api>/system?attributes=platform_name` names the platform (`6300`).
 * - `PUT /rest/<api>/firmware?image=primary|secondary&from=<URL>&vrf=<VRF>` makes the switch pull
 *   the image from an HTTP(S) URL (10.04 and later). pyaoscx accepts a 400 answer here ("Firmware
 *   upgrade in progress"), so a 400 proves nothing either way: the status decides.
 * - `GET /rest/<api>/firmware/status` → `{status: none|in_progress|success|failure, reason, date}`.
 *
 * The switch's HTTPS certificate is checked the way SSH host keys are (a pinned `SHA256:`
 * fingerprint of its DER certificate, or trust on first use), on a connection of our own, before
 * the request (and so the password or session cookie) is written to it.
 */
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import { isIP } from 'node:net';
import { fingerprintsEqual, hostKeyFingerprint, type HostKeyCheck } from '../hostKey.js';
import { SwitchConnectError, SwitchOutputError } from '../driver.js';

/** The REST API version swfw speaks by default: the first with `PUT firmware?from=` (pyaoscx refuses older releases). */
export const AOSCX_DEFAULT_API = 'v10.04';
/** A REST answer larger than this is not one of the small JSON documents asked for. */
const MAX_BODY_BYTES = 1024 * 1024;

export interface AosCxRestTarget {
  host: string;
  /** HTTPS port of the switch's REST API (443 on a real switch). */
  port: number;
  username: string;
  password: string;
  /** How the switch's HTTPS certificate is checked. */
  certificate: HostKeyCheck;
  /** Limit per request (connect, TLS, answer), ms. */
  timeoutMs: number;
  /** `v10.04` (the default) or a later REST API version the switch offers. */
  api?: string;
}

export interface RestAnswer {
  status: number;
  body: string;
}

/** `firmware/status` as the switch reports it. */
export interface FirmwareStatus {
  status: 'none' | 'in_progress' | 'success' | 'failure' | string;
  reason: string;
  /** Seconds since the epoch of the last change, as the switch reports it (0: never). */
  date: number;
}

/** One logged-in REST session on one switch. */
export class AosCxRest {
  private cookie: string | null = null;
  private csrfToken: string | null = null;
  /** The fingerprint accepted for this session: after trust on first use, every later connection must show the same. */
  private acceptedFingerprint: string | null;
  private closed = false;

  private constructor(
    private readonly target: AosCxRestTarget,
    private readonly prefix: string,
  ) {
    this.acceptedFingerprint = 'pinned' in target.certificate ? target.certificate.pinned : null;
  }

  /**
   * Logs in. Throws SwitchConnectError: `host-key` for a certificate other than the pinned one,
   * `auth` for refused credentials (401/403), `refused`/`timeout`/`other` for the network.
   */
  static async login(target: AosCxRestTarget): Promise<AosCxRest> {
    const rest = new AosCxRest(target, `/rest/${target.api ?? AOSCX_DEFAULT_API}`);
    const form = new URLSearchParams({ username: target.username, password: target.password }).toString();
    const answer = await rest.send('POST', '/login', { 'content-type': 'application/x-www-form-urlencoded', 'x-use-csrf-token': 'true' }, form);
    if (answer.status === 401 || answer.status === 403) throw new SwitchConnectError(`${rest.where()}: REST login refused (HTTP ${answer.status})`, 'auth');
    if (answer.status === 404) throw new SwitchConnectError(`${rest.where()}: the switch offers no REST API ${target.api ?? AOSCX_DEFAULT_API} (is the REST API enabled: \`https-server vrf mgmt\`?)`, 'other');
    if (answer.status !== 200) throw new SwitchConnectError(`${rest.where()}: REST login failed: HTTP ${answer.status} ${shortBody(answer.body)}`, 'other');
    if (!rest.cookie) throw new SwitchConnectError(`${rest.where()}: REST login answered 200 without a session cookie`, 'other');
    return rest;
  }

  /** GET of a JSON document; throws SwitchOutputError for anything but 200 with JSON. */
  async getJson<T>(path: string): Promise<T> {
    const answer = await this.send('GET', path);
    if (answer.status !== 200) throw new SwitchOutputError(`GET ${path}: HTTP ${answer.status} ${shortBody(answer.body)}`);
    try {
      return JSON.parse(answer.body) as T;
    } catch {
      throw new SwitchOutputError(`GET ${path}: the answer is not JSON`);
    }
  }

  async put(path: string): Promise<RestAnswer> {
    return this.send('PUT', path);
  }

  /** `firmware/status`, checked for shape: a status the switch did not send is never assumed. */
  async firmwareStatus(): Promise<FirmwareStatus> {
    const raw = await this.getJson<Record<string, unknown>>('/firmware/status');
    if (typeof raw['status'] !== 'string') throw new SwitchOutputError('GET /firmware/status: no "status"');
    return { status: raw['status'], reason: typeof raw['reason'] === 'string' ? raw['reason'] : '', date: typeof raw['date'] === 'number' ? raw['date'] : 0 };
  }

  /** Logs out (best effort, once): the switch's REST sessions per user are few. */
  async logout(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (!this.cookie) return;
    await this.send('POST', '/logout').catch(() => {});
    this.cookie = null;
  }

  private where(): string {
    return `${this.target.host}:${this.target.port}`;
  }

  /** A TLS connection whose certificate passed the check; nothing has been written to it yet. */
  private async verifiedSocket(): Promise<TLSSocket> {
    const { host, port, timeoutMs } = this.target;
    const socket = tlsConnect({ host, port, rejectUnauthorized: false, ...(isIP(host) ? {} : { servername: host }), ALPNProtocols: ['http/1.1'] });
    try {
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new SwitchConnectError(`${this.where()}: no HTTPS answer within ${timeoutMs} ms`, 'timeout')), timeoutMs);
        socket.once('secureConnect', () => {
          clearTimeout(timer);
          resolve();
        });
        socket.once('error', (err: NodeJS.ErrnoException) => {
          clearTimeout(timer);
          reject(new SwitchConnectError(`${this.where()}: ${err.code === 'ECONNREFUSED' ? 'HTTPS connection refused' : err.message}`, err.code === 'ECONNREFUSED' ? 'refused' : 'other'));
        });
      });
      const seen = hostKeyFingerprint(socket.getPeerCertificate().raw);
      if (this.acceptedFingerprint !== null) {
        if (!fingerprintsEqual(seen, this.acceptedFingerprint)) {
          throw new SwitchConnectError(`HTTPS certificate mismatch: expected ${this.acceptedFingerprint}, got ${seen} (${this.where()})`, 'host-key');
        }
      } else if ('trustOnFirstUse' in this.target.certificate) {
        try {
          await this.target.certificate.trustOnFirstUse(seen);
        } catch (err) {
          throw new SwitchConnectError(`HTTPS certificate not recorded: ${(err as Error).message}`, 'host-key');
        }
        this.acceptedFingerprint = seen;
      }
      return socket;
    } catch (err) {
      socket.destroy();
      throw err;
    }
  }

  /** One request on a fresh verified connection (no keep-alive: a handful per switch, each checked). */
  private async send(method: string, path: string, headers: Record<string, string> = {}, body?: string): Promise<RestAnswer> {
    const socket = await this.verifiedSocket();
    const { timeoutMs } = this.target;
    return new Promise<RestAnswer>((resolve, reject) => {
      const all: Record<string, string> = { accept: '*/*', host: this.target.host.includes(':') ? `[${this.target.host}]` : this.target.host, ...headers };
      if (this.cookie) all['cookie'] = this.cookie;
      if (this.csrfToken) all['x-csrf-token'] = this.csrfToken;
      if (body !== undefined) all['content-length'] = String(Buffer.byteLength(body));
      // No agent: Node then uses createConnection, our verified socket (`agent: false` would open its own).
      const req = httpRequest({ method, host: this.target.host, port: this.target.port, path: this.prefix + path, headers: all, createConnection: () => socket });
      const timer = setTimeout(() => req.destroy(new SwitchConnectError(`${this.where()}: ${method} ${path} had no answer within ${timeoutMs} ms`, 'timeout')), timeoutMs);
      req.once('error', (err) => {
        clearTimeout(timer);
        socket.destroy();
        reject(err instanceof SwitchConnectError ? err : new SwitchConnectError(`${this.where()}: ${method} ${path}: ${err.message}`, 'other'));
      });
      req.once('response', (res: IncomingMessage) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (chunk: Buffer) => {
          size += chunk.length;
          if (size > MAX_BODY_BYTES) return req.destroy(new SwitchConnectError(`${this.where()}: ${method} ${path}: answer over ${MAX_BODY_BYTES} bytes`, 'other'));
          chunks.push(chunk);
        });
        res.once('end', () => {
          clearTimeout(timer);
          this.remember(res);
          socket.destroy();
          resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') });
        });
      });
      req.end(body);
    });
  }

  /** Keeps the session cookie (`id=…`) and the CSRF token the switch hands out. */
  private remember(res: IncomingMessage): void {
    for (const line of res.headers['set-cookie'] ?? []) {
      const pair = line.split(';')[0]!.trim();
      if (/^id=/.test(pair)) this.cookie = pair;
    }
    const token = res.headers['x-csrf-token'];
    if (typeof token === 'string' && token.length > 0) this.csrfToken = token;
  }
}

/** A switch's error body, short and on one line, for a message. */
function shortBody(body: string): string {
  const text = body.replace(/\s+/g, ' ').trim().slice(0, 160);
  return text ? `(${text})` : '';
}
