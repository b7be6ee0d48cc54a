import { readFileSync, symlinkSync, truncateSync, writeFileSync } from 'node:fs';
import type { TransferRecord } from '../../src/server/context.js';
import { createHash } from 'node:crypto';
import { connect, type Socket } from 'node:net';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { expect } from 'chai';
import { Limits } from '../../src/core/limits.js';
import { startTestServer, TEST_PASSWORD, TEST_USER, type TestServer } from '../helpers/testServer.js';

const IMAGE = '/cisco/c9300-universalk9.17.09.04a.SPA.bin';
const BASIC = `Basic ${Buffer.from(`${TEST_USER}:${TEST_PASSWORD}`).toString('base64')}`;

interface RawReply {
  status: number;
  headers: Record<string, string>;
  body: Buffer;
  /** True when the server closed without any reply. */
  empty: boolean;
}

/**
 * Sends raw bytes on a fresh connection (from `localAddress`) and reads until the server closes
 * or `timeoutMs` passes (then the socket is destroyed). The reply is parsed loosely.
 */
function rawExchange(port: number, request: string | Buffer, options: { localAddress?: string; timeoutMs?: number } = {}): Promise<RawReply> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port, localAddress: options.localAddress ?? '127.0.0.1' });
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => socket.destroy(), options.timeoutMs ?? 10_000);
    socket.on('connect', () => socket.write(request));
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    socket.on('error', () => {});
    socket.on('close', () => {
      clearTimeout(timer);
      const all = Buffer.concat(chunks);
      const end = all.indexOf('\r\n\r\n');
      if (all.length === 0 || end < 0) return resolve({ status: 0, headers: {}, body: all, empty: all.length === 0 });
      const [statusLine, ...lines] = all.subarray(0, end).toString('latin1').split('\r\n');
      const headers: Record<string, string> = {};
      for (const line of lines) {
        const colon = line.indexOf(':');
        headers[line.slice(0, colon).toLowerCase()] = line.slice(colon + 1).trim();
      }
      const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(statusLine!)?.[1] ?? NaN);
      if (Number.isNaN(status)) return reject(new Error(`not an HTTP reply: ${statusLine}`));
      resolve({ status, headers, body: all.subarray(end + 4), empty: false });
    });
  });
}

/** A GET (or another method) with Connection: close. */
function request(method: string, target: string, headers: Record<string, string> = {}): string {
  const lines = [`${method} ${target} HTTP/1.1`, 'Host: 127.0.0.1', 'Connection: close', ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`)];
  return `${lines.join('\r\n')}\r\n\r\n`;
}

describe('protocol: hostile HTTP clients', function () {
  this.timeout(60_000);
  let server: TestServer;
  let port: number;
  /** Every reply body seen, to check that none names a server path. */
  const bodies: string[] = [];

  const exchange = async (req: string | Buffer, options: { localAddress?: string; timeoutMs?: number } = {}) => {
    const reply = await rawExchange(port, req, options);
    bodies.push(reply.body.toString('latin1'));
    return reply;
  };

  before(async () => {
    server = await startTestServer('44810-44814', {
      copyImages: true,
      beforeStart: async (images) => {
        symlinkSync('/etc', join(images, 'etc-link'));
        symlinkSync('/etc/passwd', join(images, 'cisco', 'passwd.bin'));
        writeFileSync(join(images, 'grant-shadow.bin'), 'x');
      },
      flags: { http: '127.0.0.1:0', maxPerIp: '2', maxConnections: '3' },
    });
    port = server.server.httpEndpoints().http!.port;
  });

  after(async () => {
    await server?.stop();
    for (const body of bodies) {
      expect(body).to.not.include(server.images);
      expect(body).to.not.match(/root:x:0:0/);
    }
  });

  it('path traversal in every spelling is 404, never a file outside the repository', async () => {
    const targets = [
      '/../../../../etc/passwd',
      '/%2e%2e/%2e%2e/etc/passwd',
      '/%2E%2E/%2E%2E/etc/passwd',
      '/cisco/..%2f..%2f..%2fetc/passwd',
      '/cisco%2fc9300-universalk9.17.09.04a.SPA.bin',
      '/cisco%5cc9300-universalk9.17.09.04a.SPA.bin',
      '/cisco/c9300-universalk9.17.09.04a.SPA.bin%00.txt',
      '/cisco/./c9300-universalk9.17.09.04a.SPA.bin',
      '/cisco//c9300-universalk9.17.09.04a.SPA.bin',
      '/cisco/c9300-universalk9.17.09.04a.SPA.bin/',
      '/%c0%ae%c0%ae/etc/passwd',
      '/%ZZ',
      '/etc-link/passwd',
      '/cisco/passwd.bin',
      '/grant-shadow.bin/../etc/passwd',
    ];
    for (const target of targets) {
      const reply = await exchange(request('GET', target, { Authorization: BASIC }));
      expect(reply.status, target).to.equal(404);
      expect(reply.body.toString(), target).to.equal('Not found\n');
    }
    // Backslashes: Node's parser may refuse them (400) before us; either way nothing is served.
    for (const target of ['/..\\..\\etc\\passwd', '/cisco\\c9300-universalk9.17.09.04a.SPA.bin']) {
      const reply = await exchange(request('GET', target, { Authorization: BASIC }));
      expect([400, 404], target).to.include(reply.status);
    }
    // The control: the same credentials do fetch a real image.
    const ok = await exchange(request('GET', IMAGE, { Authorization: BASIC }));
    expect(ok.status).to.equal(200);
  });

  it('only GET and HEAD: every other method is 405 with Allow; CONNECT and absolute-form are refused', async () => {
    for (const method of ['PUT', 'DELETE', 'POST', 'OPTIONS', 'TRACE', 'PATCH', 'PROPFIND']) {
      const reply = await exchange(request(method, IMAGE, { Authorization: BASIC, 'Content-Length': '0' }));
      expect(reply.status, method).to.equal(405);
      expect(reply.headers['allow'], method).to.equal('GET, HEAD');
    }
    const tunnel = await exchange('CONNECT 127.0.0.1:22 HTTP/1.1\r\nHost: 127.0.0.1:22\r\n\r\n');
    expect(tunnel.status).to.equal(405);
    expect(tunnel.headers['allow']).to.equal('GET, HEAD');
    const absolute = await exchange(request('GET', `http://127.0.0.1:${port}${IMAGE}`, { Authorization: BASIC }));
    expect([400, 404]).to.include(absolute.status);
    const asterisk = await exchange(request('GET', '*', { Authorization: BASIC }));
    expect([400, 404]).to.include(asterisk.status);
  });

  it('a grant token is 404 from another address, for another path, after revoke, and when made up; never 401', async () => {
    const access = await server.server.grantOneTimeAccess({ sourceAddress: '127.0.0.2', imagePath: IMAGE, validForMs: 60_000 });
    try {
      const good = await exchange(request('HEAD', access.httpPath), { localAddress: '127.0.0.2' });
      expect(good.status).to.equal(200);
      const refusals = [
        { target: access.httpPath, from: '127.0.0.3' },
        { target: `/grant/${access.user}.${access.password}/aruba/ArubaOS-CX_6300_10_13_1000.swi`, from: '127.0.0.2' },
        { target: `/grant/${access.user}.${access.password}/cisco/`, from: '127.0.0.2' },
        { target: `/grant/${access.user}.${access.password}`, from: '127.0.0.2' },
        { target: `/grant/${access.user}.${access.password}x${IMAGE}`, from: '127.0.0.2' },
        { target: `/grant/${access.user}.${access.password}${IMAGE}/..`, from: '127.0.0.2' },
        { target: `/grant/sw-000000000000.${access.password}${IMAGE}`, from: '127.0.0.2' },
        { target: `/grant/${access.user}${IMAGE}`, from: '127.0.0.2' },
        { target: '/grant/', from: '127.0.0.2' },
      ];
      for (const { target, from } of refusals) {
        for (const method of ['GET', 'HEAD']) {
          const reply = await exchange(request(method, target), { localAddress: from });
          expect(reply.status, `${method} ${target} from ${from}`).to.equal(404);
          expect(reply.headers['www-authenticate']).to.equal(undefined);
        }
      }
      // Basic credentials do not open a grant URL either.
      const withBasic = await exchange(request('GET', access.httpPath, { Authorization: BASIC }), { localAddress: '127.0.0.3' });
      expect(withBasic.status).to.equal(404);
      // The one-time account over Basic is still held to its one image.
      const grantBasic = `Basic ${Buffer.from(`${access.user}:${access.password}`).toString('base64')}`;
      const other = await exchange(request('GET', '/aruba/ArubaOS-CX_6300_10_13_1000.swi', { Authorization: grantBasic }), { localAddress: '127.0.0.2' });
      expect(other.status).to.equal(404);
    } finally {
      access.revoke();
    }
    const afterRevoke = await exchange(request('GET', access.httpPath), { localAddress: '127.0.0.2' });
    expect(afterRevoke.status).to.equal(404);
  });

  it('wrong Basic credentials: 401 after the failure delay; then the address is locked out (429), others are not', async () => {
    const wrong = `Basic ${Buffer.from(`${TEST_USER}:guess`).toString('base64')}`;
    for (let i = 0; i < Limits.MAX_FAILED_LOGINS; i++) {
      const started = Date.now();
      const reply = await exchange(request('GET', IMAGE, { Authorization: wrong }), { localAddress: '127.0.0.4' });
      expect(reply.status).to.equal(401);
      expect(reply.headers['www-authenticate']).to.equal('Basic realm="swfw", charset="UTF-8"');
      expect(Date.now() - started).to.be.at.least(Limits.FAILED_LOGIN_DELAY_MS - 20);
    }
    const locked = await exchange(request('GET', IMAGE, { Authorization: BASIC }), { localAddress: '127.0.0.4' });
    expect(locked.status).to.equal(429);
    expect(Number(locked.headers['retry-after'])).to.be.within(1, Limits.HTTP_LOGIN_LOCKOUT_MS / 1000);
    const elsewhere = await exchange(request('HEAD', IMAGE, { Authorization: BASIC }), { localAddress: '127.0.0.5' });
    expect(elsewhere.status).to.equal(200);
    // No credentials at all is no failed login: 401 at once.
    const started = Date.now();
    const bare = await exchange(request('GET', IMAGE), { localAddress: '127.0.0.5' });
    expect(bare.status).to.equal(401);
    expect(Date.now() - started).to.be.below(Limits.FAILED_LOGIN_DELAY_MS);
  });

  it('oversized headers get 431, and the server keeps serving', async () => {
    const big = await exchange(request('GET', IMAGE, { Authorization: BASIC, 'X-Flood': 'a'.repeat(Limits.HTTP_MAX_HEADER_BYTES + 100) }));
    expect(big.status).to.equal(431);
    const many: Record<string, string> = { Authorization: BASIC };
    for (let i = 0; i < 400; i++) many[`X-H${i}`] = 'yyyyyyyyyyyyyyyyyyyy';
    const flood = await exchange(request('GET', IMAGE, many));
    expect(flood.status).to.equal(431);
    const ok = await exchange(request('HEAD', IMAGE, { Authorization: BASIC }));
    expect(ok.status).to.equal(200);
  });

  it('a client that never finishes its headers is cut after the headers timeout (408)', async function () {
    this.timeout(Limits.HTTP_HEADERS_TIMEOUT_MS + 15_000);
    const started = Date.now();
    const reply = await exchange(`GET ${IMAGE} HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: `, { timeoutMs: Limits.HTTP_HEADERS_TIMEOUT_MS + 10_000 });
    const took = Date.now() - started;
    expect(took).to.be.within(Limits.HTTP_HEADERS_TIMEOUT_MS - 100, Limits.HTTP_HEADERS_TIMEOUT_MS + 3 * Limits.HTTP_TIMEOUT_CHECK_MS);
    expect(reply.empty || reply.status === 408, `reply ${reply.status}`).to.equal(true);
  });

  it('maxPerIp and maxConnections: connections over either limit are closed at once; the others are served', async () => {
    const open = (localAddress: string) =>
      new Promise<Socket>((resolve, reject) => {
        const socket = connect({ host: '127.0.0.1', port, localAddress }, () => resolve(socket));
        socket.once('error', reject);
      });
    const closedSoon = (socket: Socket) =>
      new Promise<boolean>((resolve) => {
        if (socket.destroyed) return resolve(true);
        const timer = setTimeout(() => resolve(false), 1_000);
        socket.once('close', () => {
          clearTimeout(timer);
          resolve(true);
        });
        socket.on('error', () => {});
        socket.resume();
      });
    const held: Socket[] = [];
    try {
      held.push(await open('127.0.0.6'), await open('127.0.0.6'));
      const thirdSameAddress = await open('127.0.0.6');
      expect(await closedSoon(thirdSameAddress), 'over maxPerIp (2)').to.equal(true);
      held.push(await open('127.0.0.7'));
      const overTotal = await open('127.0.0.8');
      expect(await closedSoon(overTotal), 'over maxConnections (3)').to.equal(true);
      for (const socket of held) expect(socket.destroyed).to.equal(false);
    } finally {
      for (const socket of held) socket.destroy();
    }
    await delay(100);
    const ok = await exchange(request('HEAD', IMAGE, { Authorization: BASIC }), { localAddress: '127.0.0.8' });
    expect(ok.status).to.equal(200);
  });
});

describe('protocol: a slow HTTP reader', function () {
  this.timeout(60_000);
  let server: TestServer;
  const BIG = '/big.bin';
  const BIG_BYTES = 256 * 1024 * 1024;

  before(async () => {
    server = await startTestServer('44815-44819', {
      copyImages: true,
      beforeStart: async (images) => {
        writeFileSync(join(images, 'big.bin'), '');
        truncateSync(join(images, 'big.bin'), BIG_BYTES); // sparse: cheap to read
      },
      flags: { http: '127.0.0.1:0', dataTimeout: '2' },
    });
  });

  after(async () => {
    await server?.stop();
  });

  it('is cut after dataTimeout without progress while another client downloads in full, unaffected', async () => {
    const port = server.server.httpEndpoints().http!.port;
    const since = server.transfers.length;
    // The slow reader: asks for 256 MiB and never reads (the kernel buffers fill, then nothing moves).
    const slow = connect({ host: '127.0.0.1', port, localAddress: '127.0.0.9' });
    try {
      slow.on('error', () => {});
      slow.write(request('GET', BIG, { Authorization: BASIC }));
      slow.pause();
      const started = Date.now();
      await delay(300);
      // Meanwhile a normal client gets the whole image.
      const reply = await rawExchange(port, request('GET', IMAGE, { Authorization: BASIC }), { localAddress: '127.0.0.10' });
      expect(reply.status).to.equal(200);
      const onDisk = createHash('sha256').update(readFileSync(join(server.images, ...IMAGE.split('/').filter(Boolean)))).digest('hex');
      expect(createHash('sha256').update(reply.body).digest('hex')).to.equal(onDisk);
      expect(Date.now() - started, 'the good client was not held up').to.be.below(2_000);
      let cut: TransferRecord | undefined;
      while (!cut && Date.now() - started < 10_000) {
        await delay(50);
        cut = server.transfers.slice(since).find((r) => r.path === BIG);
      }
      const cutAfter = Date.now() - started;
      expect(cut, 'audit record of the cut transfer').to.not.equal(undefined);
      expect(cutAfter).to.be.within(2_000, 2_000 + 3_000);
      expect(cut).to.include({ result: 'aborted', reason: 'stalled', code: 200, offset: 0, expectedBytes: BIG_BYTES, protocol: 'http' });
      expect(cut!.bytes).to.be.below(BIG_BYTES);
      // The server really closed it: reading now drains what the kernels held, then the end.
      let received = 0;
      const closed = new Promise<boolean>((resolve) => {
        const timer = setTimeout(() => resolve(false), 10_000);
        slow.once('close', () => {
          clearTimeout(timer);
          resolve(true);
        });
      });
      slow.on('data', (chunk: Buffer) => (received += chunk.length));
      slow.resume();
      expect(await closed, 'the slow connection was closed by the server').to.equal(true);
      expect(received).to.be.below(BIG_BYTES);
    } finally {
      slow.destroy();
    }
    const records = server.transfers.slice(since);
    const full = records.find((r) => r.path === IMAGE)!;
    expect(full).to.include({ result: 'complete', client: '127.0.0.10' });
  });
});
