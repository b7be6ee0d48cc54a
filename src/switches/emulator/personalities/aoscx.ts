/**
 * HPE Aruba AOS-CX (a 6300, `FL.` images), as SWITCH-CLI-REFERENCE.md §2.1 describes it, never as
 * the driver wants it:
 *
 * - SSH CLI: `sw1#` prompts; `-- MORE --, next page: Space, next line: Enter, quit: Control-C`
 *   paging until `no page`; `show version` (`Version : FL.10.13.1000`, `Build ID`, `Active Image`);
 *   `show images` (per slot `Version`, `Size`, `Date`, `SHA-256`; `Default Image`; per module
 *   `Active Image`). No FTP anywhere: `copy ftp://…` is `Invalid input`.
 * - REST over HTTPS (its own certificate): `POST /rest/v10.xx/login` (form fields, `id` cookie,
 *   `X-Csrf-Token` when asked with `x-use-csrf-token: true`), `POST …/logout`,
 *   `GET …/system?attributes=platform_name`, `GET …/firmware`, `GET …/firmware/status`
 *   (`{status, reason, date}`), and `PUT …/firmware?image=primary|secondary&from=URL&vrf=VRF`,
 *   which starts a download the switch really makes: an HTTP(S) GET of the URL from the switch's
 *   own address, trusting only the CA it was given (a real switch's `crypto pki ta-profile`),
 *   hashed as it is written into the slot. The status outlives the REST session.
 *
 * Unconfirmed details, chosen here: a PUT while a download runs answers 400 "Firmware upgrade in
 * progress" (the text pyaoscx tolerates); `status` is `none` before any download and `date` is in
 * seconds; an image whose name does not carry an AOS-CX release (`…_10_13_1000.swi`) fails
 * validation ("Image verification failed"), standing in for the switch's signature check; REST
 * API versions v10.04 up to the switch's own release are served, and releases before 10.04 have
 * no `from=` download (400); a PUT into the booted slot is allowed.
 */
import { createHash, randomBytes } from 'node:crypto';
import { request as httpGet, type IncomingMessage } from 'node:http';
import { request as httpsGet } from 'node:https';
import { createServer, type Server } from 'node:https';
import type { Socket } from 'node:net';
import { basename } from 'node:path';
import { once } from 'node:events';
import type { CliIo } from '../terminal.js';
import { type EmulatedSwitchState, type Personality } from '../personality.js';
import { BackgroundJob } from '../backgroundJob.js';

const MEMORY_KEY = 'aoscx-images';
const INVALID = (word: string) => `Invalid input: ${word}\n`;
/** The emulated switches are 6300s: their images are `FL.` releases. */
const PLATFORM = '6300';
const FAMILY = 'FL';
const MAX_REQUEST_BODY = 64 * 1024;

type Slot = 'primary' | 'secondary';

interface SlotImage {
  version: string;
  size: number;
  sha256: string;
  date: Date;
}

interface FirmwareStatus {
  status: 'none' | 'in_progress' | 'success' | 'failure';
  reason: string;
  date: number;
}

/** The release in an image name (`ArubaOS-CX_6300_10_13_1000.swi` → `10.13.1000`), or null. */
export function releaseInImageName(name: string): string | null {
  const m = /_(\d{2})_(\d{2})_(\d{4})\.swi$/i.exec(name);
  return m ? `${Number(m[1])}.${m[2]}.${m[3]}` : null;
}

/** `FL.10.13.1000` → [10, 13]. */
function release(version: string): [number, number] {
  const m = /^[A-Z]{2}\.(\d+)\.(\d+)\./.exec(version);
  return m ? [Number(m[1]), Number(m[2])] : [0, 0];
}

/** The switch's two image slots, its download and its status: kept across sessions, as on a real switch. */
export class AosCxImages {
  readonly slots: Record<Slot, SlotImage | null>;
  readonly booted: Slot = 'primary';
  status: FirmwareStatus = { status: 'none', reason: '', date: 0 };
  /** Reads of firmware/status still to fail (fault `statusfail`). */
  statusFailuresLeft = 0;
  private readonly job = new BackgroundJob();

  constructor(running: string) {
    const [major, minor] = release(running);
    const older = `${FAMILY}.${major}.${String(Math.max(1, minor - 1)).padStart(2, '0')}.1010`;
    const fake = (v: string) => ({ version: v, size: 444 * 1024 * 1024, sha256: createHash('sha256').update(`image ${v}`).digest('hex'), date: new Date(Date.UTC(2026, 5, 1, 10, 0, 0)) });
    this.slots = { primary: fake(running), secondary: fake(older) };
  }

  get running(): boolean {
    return this.job.running;
  }

  /** Starts a download into `slot`; the switch fetches it from `ftpSource`. */
  start(sw: EmulatedSwitchState, slot: Slot, url: URL, trustCa: string | null): void {
    // Each status change is dated at least a second after the last (chosen: two downloads never look alike).
    const nextDate = () => Math.max(Math.floor(Date.now() / 1000), this.status.date + 1);
    this.status = { status: 'in_progress', reason: '', date: nextDate() };
    const end = (status: 'success' | 'failure', reason: string) => {
      this.status = { status, reason, date: nextDate() };
    };
    this.job.start(async (controller) => {
      const imageRelease = releaseInImageName(decodeURIComponent(basename(url.pathname)));
      const got = await download(sw, url, trustCa, controller.signal);
      if (!got.ok) return end('failure', got.reason);
      if (imageRelease === null) return end('failure', 'Image verification failed');
      this.slots[slot] = { version: `${FAMILY}.${imageRelease}`, size: got.bytes, sha256: got.sha256, date: new Date() };
      end('success', '');
    }, (err) => end('failure', err.message));
  }

  /** Stops a running download (the fleet stops; the switch goes away). */
  stop(): Promise<void> {
    return this.job.stop();
  }
}

function images(sw: EmulatedSwitchState): AosCxImages {
  let d = sw.memory.get(MEMORY_KEY) as AosCxImages | undefined;
  if (!d) {
    d = new AosCxImages(sw.version);
    sw.memory.set(MEMORY_KEY, d);
  }
  return d;
}

type DownloadResult = { ok: true; bytes: number; sha256: string } | { ok: false; reason: string };

/**
 * The switch's HTTP(S) GET of the image, from its own address, with the switch's faults: `slow`
 * reads at most that many bytes per second, `stall` pauses after 64 KiB, `cut` drops the link,
 * `dlfail` breaks it half-way, `corrupt` flips a byte as it is written to the slot.
 */
function download(sw: EmulatedSwitchState, url: URL, trustCa: string | null, signal: AbortSignal): Promise<DownloadResult> {
  return new Promise<DownloadResult>((resolve) => {
    const faults = sw.faults;
    const hash = createHash('sha256');
    let bytes = 0;
    let total: number | null = null;
    let settled = false;
    let stalled = false;
    /** The one pending resume of a paused read (`slow`, `stall`): cleared when the download ends. */
    let resumeTimer: NodeJS.Timeout | null = null;
    const finish = (result: DownloadResult) => {
      if (settled) return;
      settled = true;
      if (resumeTimer) clearTimeout(resumeTimer);
      signal.removeEventListener('abort', onAbort);
      resolve(result);
    };
    const get = url.protocol === 'https:' ? httpsGet : url.protocol === 'http:' ? httpGet : null;
    if (!get) return finish({ ok: false, reason: `Unsupported protocol ${url.protocol.replace(':', '')}` });
    // One connection per download, closed at its end, as the switch's own client does (no keep-alive pool).
    const req = get(url, { agent: false, localAddress: sw.ftpSource, ...(url.protocol === 'https:' ? (trustCa ? { ca: trustCa } : {}) : {}), timeout: sw.ftpTimeoutMs });
    const onAbort = () => {
      req.destroy();
      finish({ ok: false, reason: 'Download aborted' });
    };
    signal.addEventListener('abort', onAbort, { once: true });
    req.on('timeout', () => req.destroy(new Error('Timeout was reached')));
    req.on('error', (err: NodeJS.ErrnoException) => {
      const why = err.code === 'ECONNREFUSED' ? "Couldn't connect to server" : /certificate|self.signed|SSL|TLS/i.test(`${err.code} ${err.message}`) ? `SSL certificate problem: ${err.message}` : err.message;
      finish({ ok: false, reason: `Failed to download the image: ${why}` });
    });
    req.on('response', (res: IncomingMessage) => {
      if (res.statusCode !== 200) {
        res.resume();
        return finish({ ok: false, reason: `Failed to download the image: HTTP ${res.statusCode}` });
      }
      total = Number(res.headers['content-length'] ?? NaN) || null;
      const started = Date.now();
      res.on('data', (chunk: Buffer) => {
        let data = chunk;
        if (faults.corruptAt !== undefined && faults.corruptAt >= bytes && faults.corruptAt < bytes + chunk.length) {
          data = Buffer.from(chunk);
          data[faults.corruptAt - bytes] = data[faults.corruptAt - bytes]! ^ 0xff;
        }
        hash.update(data);
        bytes += chunk.length;
        if (faults.cutAfterBytes !== undefined && bytes >= faults.cutAfterBytes) return req.destroy(new Error('Connection reset by peer'));
        if (faults.downloadFails && total !== null && bytes >= total / 2) return req.destroy(new Error('Connection reset by peer'));
        const pauseFor = (ms: number) => {
          res.pause();
          resumeTimer = setTimeout(() => {
            resumeTimer = null;
            res.resume();
          }, ms);
        };
        if (faults.stallSeconds && !stalled && bytes >= 64 * 1024) {
          stalled = true;
          pauseFor(faults.stallSeconds * 1000);
        } else if (faults.slowBytesPerSecond) {
          const due = (bytes * 1000) / faults.slowBytesPerSecond - (Date.now() - started);
          if (due > 0) pauseFor(due);
        }
      });
      res.on('end', () => {
        if (total !== null && bytes !== total) return finish({ ok: false, reason: `Failed to download the image: ${bytes} of ${total} bytes` });
        finish({ ok: true, bytes, sha256: hash.digest('hex') });
      });
      res.on('error', () => {});
      res.on('aborted', () => finish({ ok: false, reason: 'Failed to download the image: Connection reset by peer' }));
      res.on('close', () => {
        if (!res.complete) finish({ ok: false, reason: 'Failed to download the image: Connection reset by peer' });
      });
    });
    req.end();
  });
}

// --- the SSH CLI ---------------------------------------------------------------------------------

function showVersion(sw: EmulatedSwitchState): string {
  const d = images(sw);
  return `-----------------------------------------------------------------------------
ArubaOS-CX
(c) Copyright 2017-2026 Hewlett Packard Enterprise Development LP
-----------------------------------------------------------------------------
Version      : ${sw.version}
Build Date   : 2026-06-01 10:00:00 UTC
Build ID     : ArubaOS-CX:${sw.version}:0a1b2c3d4e5f:202606011000
Build SHA    : 0a1b2c3d4e5f60718293a4b5c6d7e8f901234567
Hot Patches  :
Active Image : ${d.booted}

Service OS Version : ${FAMILY}.01.14.0002
BIOS Version       : ${FAMILY}.01.0002
`;
}

function showImages(sw: EmulatedSwitchState): string {
  const d = images(sw);
  const rule = '---------------------------------------------------------------------------';
  const block = (title: string, image: SlotImage | null) => {
    let out = `${rule}\nArubaOS-CX ${title} Image\n${rule}\n`;
    if (!image) return `${out}No image found\n\n`;
    const date = image.date.toISOString().replace('T', ' ').replace(/\.\d{3}Z$/, ' UTC');
    out += `Version : ${image.version}\nSize    : ${Math.round(image.size / (1024 * 1024))} MB\nDate    : ${date}\nSHA-256 : ${image.sha256}\n\n`;
    return out;
  };
  return `${block('Primary', d.slots.primary)}${block('Secondary', d.slots.secondary)}Default Image : ${d.booted}
Boot Profile Timeout : 5 seconds

------------------------------------------------------
Management Module 1/1 (Active)
------------------------------------------------------
Active Image       : ${d.booted}
Service OS Version : ${FAMILY}.01.14.0002
BIOS Version       : ${FAMILY}.01.0002
`;
}

async function run(line: string, io: CliIo, sw: EmulatedSwitchState, session: { terminalLength: number }): Promise<void | 'exit'> {
  const words = line.split(/\s+/).filter(Boolean);
  const [first = '', second = ''] = words.map((w) => w.toLowerCase());
  if (first === '') return;
  if (first === 'exit' || first === 'logout') return 'exit';
  if (first === 'no' && second === 'page') {
    session.terminalLength = 0;
    return;
  }
  if (first === 'page') {
    session.terminalLength = 24;
    return;
  }
  if (first === 'show' && 'version'.startsWith(second) && second.length >= 3) return io.print(showVersion(sw));
  if (first === 'show' && 'images'.startsWith(second) && second.length >= 3) return io.print(showImages(sw));
  return io.print(INVALID(words[first === 'show' ? 1 : 0] ?? first));
}

export const aosCxPersonality: Personality = {
  name: 'aruba-aoscx',
  catalogPlatform: 'aruba-aoscx',
  defaultVersion: `${FAMILY}.10.12.1010`,
  exec: 'many',
  restApi: true,
  pager: { marker: '-- MORE --, next page: Space, next line: Enter, quit: Control-C', erase: '\r                                                                   \r' },
  initialMode: () => 'manager',
  greeting: (sw) => `\nLast login: 2026-11-30 12:00:00 from 10.0.0.5\nUser "${sw.username}" has logged in 3 times in the past 30 days\n\n`,
  prompt: (sw) => `${sw.name}# `,
  run,
};

// --- the REST API --------------------------------------------------------------------------------

export interface AosCxRestOptions {
  sw: EmulatedSwitchState;
  address: string;
  port: number;
  /** The switch's own certificate and key (PEM). */
  cert: string;
  key: string;
  /** PEM of the CA the switch trusts for HTTPS downloads (its TA profile), or null: only plain HTTP works. */
  trustCa: string | null;
  /** The REST login must match these (the same account as SSH). */
  checkLogin(user: string, password: string): boolean;
}

/** The switch's REST server. */
export class AosCxRestServer {
  private server: Server | null = null;
  private readonly sockets = new Set<Socket>();
  private readonly sessions = new Map<string, { csrf: string | null }>();
  /** Logins and logouts seen, for tests (a driver must log out). */
  readonly counts = { logins: 0, logouts: 0 };

  constructor(private readonly options: AosCxRestOptions) {}

  /** Sessions still open (not logged out). */
  openSessions(): number {
    return this.sessions.size;
  }

  async listen(): Promise<void> {
    const server = createServer({ cert: this.options.cert, key: this.options.key, minVersion: 'TLSv1.2' }, (req, res) => {
      this.handle(req, res).catch(() => {
        if (!res.headersSent) res.writeHead(500);
        res.end();
      });
    });
    server.on('connection', (socket: Socket) => {
      this.sockets.add(socket);
      socket.on('close', () => this.sockets.delete(socket));
    });
    server.on('tlsClientError', () => {});
    server.listen(this.options.port, this.options.address);
    await once(server, 'listening');
    this.server = server;
  }

  async stop(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    if (this.server) await new Promise<void>((resolve) => this.server!.close(() => resolve()));
    this.server = null;
  }

  private async handle(req: IncomingMessage, res: import('node:http').ServerResponse): Promise<void> {
    const sw = this.options.sw;
    const send = (status: number, body: unknown, headers: Record<string, string | string[]> = {}) => {
      const text = typeof body === 'string' ? body : JSON.stringify(body);
      res.writeHead(status, { 'content-type': typeof body === 'string' ? 'text/plain' : 'application/json', 'content-length': Buffer.byteLength(text), ...headers });
      res.end(text);
    };
    const url = new URL(req.url ?? '/', 'https://switch');
    const m = /^\/rest\/v(\d+)\.(\d+)(\/.*)$/.exec(url.pathname);
    const [major, minor] = release(sw.version);
    const api = m ? [Number(m[1]), Number(m[2])] : null;
    if (!m || !api || api[0] !== 10 || api[1]! < 4 || api[0] > major || (api[0] === major && api[1]! > minor)) return send(404, 'Not Found');
    const path = m[3]!;
    const body = await readBody(req);
    if (req.method === 'POST' && path === '/login') {
      const form = new URLSearchParams(body);
      if (!this.options.checkLogin(form.get('username') ?? '', form.get('password') ?? '')) return send(401, 'Login failed: incorrect username or password');
      const id = randomBytes(16).toString('base64url');
      const csrf = req.headers['x-use-csrf-token'] === 'true' ? randomBytes(12).toString('hex') : null;
      this.sessions.set(id, { csrf });
      this.counts.logins++;
      return send(200, '', { 'set-cookie': [`id=${id}; Path=/; HttpOnly; Secure`], ...(csrf ? { 'x-csrf-token': csrf } : {}) });
    }
    const cookie = /(?:^|;\s*)id=([^;]+)/.exec(req.headers.cookie ?? '')?.[1];
    const session = cookie ? this.sessions.get(cookie) : undefined;
    if (!session) return send(401, 'Unauthorized');
    if (session.csrf && req.method !== 'GET' && req.headers['x-csrf-token'] !== session.csrf) return send(401, 'Unauthorized: CSRF token');
    const d = images(sw);
    if (req.method === 'POST' && path === '/logout') {
      this.sessions.delete(cookie!);
      this.counts.logouts++;
      return send(200, '');
    }
    if (req.method === 'GET' && path === '/system') {
      const all: Record<string, unknown> = { platform_name: PLATFORM, hostname: sw.name, firmware_version: sw.version };
      const wanted = url.searchParams.get('attributes')?.split(',');
      return send(200, wanted ? Object.fromEntries(wanted.filter((k) => k in all).map((k) => [k, all[k]])) : all);
    }
    if (req.method === 'GET' && path === '/firmware') {
      return send(200, { current_version: sw.version, primary_version: d.slots.primary?.version ?? '', secondary_version: d.slots.secondary?.version ?? '', default_image: d.booted, booted_image: d.booted });
    }
    if (req.method === 'GET' && path === '/firmware/status') {
      if (d.statusFailuresLeft > 0) {
        d.statusFailuresLeft--;
        return send(500, 'Internal Server Error');
      }
      return send(200, d.status);
    }
    if (req.method === 'PUT' && path === '/firmware') {
      const slot = url.searchParams.get('image');
      const from = url.searchParams.get('from');
      const vrf = url.searchParams.get('vrf');
      if (slot !== 'primary' && slot !== 'secondary') return send(400, 'Invalid image: must be primary or secondary');
      if (!from) return send(400, 'Local upload expects a file; remote download needs "from"');
      if (vrf !== 'mgmt' && vrf !== 'default') return send(400, `VRF ${vrf ?? '(none)'} not found`);
      if (d.running) return send(400, 'Firmware upgrade in progress');
      let target: URL;
      try {
        target = new URL(from);
      } catch {
        return send(400, 'Invalid URL');
      }
      d.start(sw, slot, target, this.options.trustCa);
      d.statusFailuresLeft = sw.faults.statusFailures ?? 0;
      return sw.faults.put400 ? send(400, 'Firmware upgrade in progress') : send(200, '');
    }
    return send(404, 'Not Found');
  }
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > MAX_REQUEST_BODY) return req.destroy(new Error('request body too large'));
      chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}
