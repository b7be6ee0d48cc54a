/**
 * What a hostile-client review found in HTTP serving, as regression tests: pipelined requests
 * are handled one at a time (a queued response must not take the server's read buffers, and
 * pipelined wrong passwords must each count towards the lockout before the next is checked);
 * clients that stop reading cannot leave no buffers for the others; a grant's password is kept
 * out of the log however its path is encoded; an If-Range date never splices two versions.
 */
import { expect } from 'chai';
import { writeFileSync } from 'node:fs';
import { get as httpGet, type IncomingMessage } from 'node:http';
import { connect, type Socket } from 'node:net';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { Limits } from '../../src/core/limits.js';
import { redactTarget } from '../../src/server/http.js';
import { startTestServer, TEST_PASSWORD, TEST_USER, type TestServer } from '../helpers/testServer.js';

const BIG = 'big.bin';
const BIG_BYTES = 24 * 1024 * 1024;
const BASIC = `Basic ${Buffer.from(`${TEST_USER}:${TEST_PASSWORD}`).toString('base64')}`;
const get = (target: string, headers: Record<string, string> = {}) =>
  `GET ${target} HTTP/1.1\r\nHost: 127.0.0.1\r\n${Object.entries(headers)
    .map(([k, v]) => `${k}: ${v}\r\n`)
    .join('')}\r\n`;

/** A server over a copy of the fixture images plus BIG, with HTTP on a free port. */
async function startWithBigFile(pasv: string, dataTimeoutSeconds: number): Promise<{ server: TestServer; port: number }> {
  const server = await startTestServer(pasv, {
    copyImages: true,
    beforeStart: async (images) => writeFileSync(join(images, BIG), Buffer.alloc(BIG_BYTES, 9)),
    flags: { http: '127.0.0.1:0', dataTimeout: String(dataTimeoutSeconds) },
  });
  return { server, port: server.server.httpEndpoints().http!.port };
}

/** A whole download with Basic auth; rejects when it does not complete within `timeoutMs`. */
function download(port: number, path: string, timeoutMs: number, headers: Record<string, string> = {}): Promise<{ status: number; bytes: number }> {
  return new Promise((resolve, reject) => {
    const req = httpGet({ host: '127.0.0.1', port, path, agent: false, headers: { authorization: BASIC, ...headers } }, (res: IncomingMessage) => {
      let bytes = 0;
      res.on('data', (chunk: Buffer) => (bytes += chunk.length));
      res.on('end', () => {
        clearTimeout(timer);
        resolve({ status: res.statusCode ?? 0, bytes });
      });
      res.on('error', reject);
    });
    const timer = setTimeout(() => req.destroy(new Error(`no complete download of ${path} within ${timeoutMs} ms`)), timeoutMs);
    req.on('error', reject);
  });
}

describe('protocol: HTTP pipelining, stalled readers, encoded grant paths, If-Range dates', function () {
  this.timeout(90_000);
  let server: TestServer;
  let port: number;
  const sockets = new Set<Socket>();
  const open = (localAddress = '127.0.0.1') => {
    const socket = connect({ host: '127.0.0.1', port, localAddress });
    socket.on('error', () => {});
    sockets.add(socket);
    return socket;
  };

  before(async () => {
    // A long data timeout: a download that waited for buffers would hang well past this test's limits.
    ({ server, port } = await startWithBigFile('44825-44829', 120));
  });
  afterEach(() => {
    for (const s of sockets) s.destroy();
    sockets.clear();
  });
  after(() => server.stop());

  it('pipelined GETs of a large file, never read, then closed: no buffer is lost, the next download completes at once', async function () {
    for (let round = 0; round < 3; round++) {
      const socket = open();
      await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
      socket.write(Array.from({ length: 8 }, () => get(`/${BIG}`, { Authorization: BASIC })).join(''));
      await delay(500);
      socket.destroy();
    }
    const after = await download(port, `/${BIG}`, 15_000);
    expect(after).to.deep.equal({ status: 200, bytes: BIG_BYTES });
  });

  it('six clients that stop reading large downloads leave the others served', async function () {
    for (let i = 0; i < 6; i++) {
      const socket = open(`127.0.0.${20 + i}`);
      socket.once('connect', () => socket.write(get(`/${BIG}`, { Authorization: BASIC })));
      socket.pause();
    }
    await delay(1000);
    expect(await download(port, `/${BIG}`, 15_000)).to.deep.equal({ status: 200, bytes: BIG_BYTES });
  });

  it('pipelined wrong passwords: each failure counts before the next is checked, so the lockout holds', async function () {
    const wrong = `Basic ${Buffer.from(`${TEST_USER}:not-the-password`).toString('base64')}`;
    const socket = open('127.0.0.40');
    const replies: number[] = [];
    let text = '';
    socket.on('data', (chunk: Buffer) => {
      text += chunk.toString('latin1');
      for (const m of text.matchAll(/HTTP\/1\.1 (\d{3})/g)) replies.push(Number(m[1]));
      text = text.slice(text.lastIndexOf('HTTP/1.1 ') + 1);
    });
    await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
    const requests = [...Array.from({ length: 8 }, () => get('/cisco/c9300-universalk9.17.09.04a.SPA.bin', { Authorization: wrong })), get('/cisco/c9300-universalk9.17.09.04a.SPA.bin', { Authorization: BASIC, Connection: 'close' })];
    socket.write(requests.join(''));
    await new Promise<void>((resolve) => socket.once('close', () => resolve()));
    expect(replies.filter((s) => s === 401)).to.have.length.at.most(Limits.MAX_FAILED_LOGINS);
    expect(replies).to.not.include(200);
    expect(replies.at(-1)).to.equal(429);
  });

  it('wrong passwords on parallel connections from one address: the lockout holds (checks run one at a time per address)', async function () {
    const wrong = `Basic ${Buffer.from(`${TEST_USER}:not-the-password`).toString('base64')}`;
    const status = (headers: Record<string, string>) =>
      new Promise<number>((resolve, reject) => {
        const req = httpGet({ host: '127.0.0.1', port, localAddress: '127.0.0.9', path: '/cisco/c9300-universalk9.17.09.04a.SPA.bin', agent: false, method: 'HEAD', headers }, (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        });
        req.on('error', reject);
      });
    const guesses = Array.from({ length: 7 }, () => status({ authorization: wrong }));
    await delay(20);
    // The right password, sent while the wrong ones are still being checked: the address is locked out by then.
    const right = status({ authorization: BASIC });
    const replies = await Promise.all([...guesses, right]);
    expect(replies.filter((s) => s === 401)).to.have.length(Limits.MAX_FAILED_LOGINS);
    expect(replies.filter((s) => s === 429)).to.have.length(8 - Limits.MAX_FAILED_LOGINS);
    expect(replies.at(-1)).to.equal(429);
  });

  it('a grant path percent-encoded (/%67rant/…) is logged without its password', async function () {
    const access = await server.server.grantOneTimeAccess({ sourceAddress: '127.0.0.1', imagePath: 'cisco/c9300-universalk9.17.09.04a.SPA.bin', validForMs: 60_000 });
    try {
      // A bad escape in the query must not keep the path from being decoded for the log.
      const encoded = `${access.httpPath.replace('/grant/', '/%67rant/')}?x=%zz`;
      // No Authorization: the token in the path is the credential.
      const socket = open();
      let reply = '';
      socket.on('data', (chunk: Buffer) => (reply += chunk.toString('latin1', 0, Math.min(chunk.length, 64))));
      socket.once('connect', () => socket.write(get(encoded, { Connection: 'close' })));
      await new Promise<void>((resolve) => socket.once('close', () => resolve()));
      expect(reply).to.match(/^HTTP\/1\.1 200 /);
      const record = server.transfers.at(-1)!;
      expect(record.user).to.equal(access.user);
      expect(JSON.stringify(record)).to.not.include(access.password);
    } finally {
      access.revoke();
    }
  });

  it('a grant password is hidden in every spelling of a grant path, answered or refused', function () {
    const user = 'sw-0123456789ab';
    const password = 'hkicN7Y2fWY0-Xt6eXFAFg';
    const spellings = [
      `/grant/${user}.${password}/small.bin`,
      `/%67rant/${user}.${password}/small.bin?x=%zz`,
      `/%2567rant/${user}.${password}/small.bin`,
      `//grant/${user}.${password}/small.bin`,
      `/./grant/${user}.${password}/small.bin`,
      `/x/../grant/${user}.${password}/small.bin`,
      `http://127.0.0.1:8080/grant/${user}.${password}/small.bin`,
      `/Grant/${user}.${password}/small.bin`,
      `/grant\\${user}.${password}\\small.bin`,
      `/grant/${user}%2E${password}/small.bin`,
      `/grant/someone.${password}/small.bin`,
      `/GRANT/%73w-0123456789ab.${password}`,
    ];
    for (const target of spellings) {
      const shown = redactTarget(target);
      expect(shown, target).to.not.include(password);
      expect(shown, target).to.include('***');
    }
    expect(redactTarget(`/grant/${user}.${password}/a.bin`)).to.equal(`/grant/${user}.***/a.bin`);
    expect(redactTarget('/cisco/c9300.bin?user=x')).to.equal('/cisco/c9300.bin?…');
    // A repository path that merely contains the word keeps its name.
    expect(redactTarget('/lab/vagrant/box.bin')).to.equal('/lab/vagrant/box.bin');
  });

  it('If-Range with a date gets the whole file (a date cannot tell two versions written in the same second apart)', async function () {
    const head = await download(port, '/cisco/c9300-universalk9.17.09.04a.SPA.bin', 10_000);
    const lastModified = new Date().toUTCString();
    const ranged = await download(port, '/cisco/c9300-universalk9.17.09.04a.SPA.bin', 10_000, { range: 'bytes=0-9', 'if-range': lastModified });
    expect(ranged).to.deep.equal({ status: 200, bytes: head.bytes });
  });
});

describe('protocol: the stall clock (dataTimeout 3 s) for readers that stop, and for the downloads waiting behind them', function () {
  this.timeout(60_000);
  const DATA_TIMEOUT_MS = 3000;
  let server: TestServer;
  let port: number;
  const sockets = new Set<Socket>();
  const stallFrom = (localAddress: string) => {
    const socket = connect({ host: '127.0.0.1', port, localAddress });
    socket.on('error', () => {});
    socket.once('connect', () => socket.write(get(`/${BIG}`, { Authorization: BASIC })));
    // Never read: once the socket buffers are full, the server's two buffers for it stay pinned.
    socket.pause();
    sockets.add(socket);
    return socket;
  };

  before(async () => {
    ({ server, port } = await startWithBigFile('44830-44831', DATA_TIMEOUT_MS / 1000));
  });
  afterEach(() => {
    for (const s of sockets) s.destroy();
    sockets.clear();
  });
  after(() => server.stop());

  it('a reader that stops is cut after dataTimeout, not half as long again (acknowledgements of bytes sent before do not count)', async function () {
    const before = server.transfers.length;
    stallFrom('127.0.0.70');
    while (!server.transfers.slice(before).some((r) => r.client === '127.0.0.70')) await delay(100);
    const record = server.transfers.slice(before).find((r) => r.client === '127.0.0.70')!;
    expect(record).to.include({ result: 'aborted', reason: 'stalled' });
    // The clock is looked at every quarter of the timeout: cut within that of it (1.5x before the fix).
    expect(record.durationMs).to.be.within(DATA_TIMEOUT_MS, DATA_TIMEOUT_MS * 1.45);
  });

  it("fourteen readers that stop hold every server buffer: a download behind them waits for a buffer, is not cut as stalled, and completes once they are cut", async function () {
    const before = server.transfers.length;
    for (let i = 0; i < 14; i++) stallFrom(`127.0.0.${80 + i}`);
    await delay(500);
    const started = Date.now();
    expect(await download(port, '/cisco/c9300-universalk9.17.09.04a.SPA.bin', 20_000)).to.include({ status: 200 });
    // The client has every byte (Content-Length) a moment before the server's record is written.
    while (!server.transfers.slice(before).some((r) => r.client === '127.0.0.1')) await delay(20);
    const records = server.transfers.slice(before);
    const mine = records.find((r) => r.client === '127.0.0.1')!;
    expect(mine).to.include({ result: 'complete' });
    // It waited for the stalled ones to be cut (their buffers back in the pool), no longer.
    expect(Date.now() - started).to.be.below(DATA_TIMEOUT_MS * 2);
    expect(records.filter((r) => r.reason === 'stalled').map((r) => r.client)).to.not.include('127.0.0.1');
  });
});
