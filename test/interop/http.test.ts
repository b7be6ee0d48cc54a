import { copyFileSync, openSync, closeSync, ftruncateSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { expect } from 'chai';
import { PROJECT_ROOT } from '../../src/config/loader.js';
import { startTestServer, TEST_PASSWORD, TEST_USER, type TestServer } from '../helpers/testServer.js';
import { IMAGES, clientEnv, expectSuccess, imageOnDisk, killStrayClients, makeTempDir, removeTempDir, run, sha256File, waitForTransfer, type RunResult } from './support.js';

const TLS_FLAGS = {
  tlsCert: join(PROJECT_ROOT, 'fixtures', 'tls', 'server.crt'),
  tlsKey: join(PROJECT_ROOT, 'fixtures', 'tls', 'server.key'),
};
/** This suite's passive range (HTTP suites use 44800-44899). */
const PASV_RANGE = '44800-44804';

/** `swfw serve --http --https` with real curl and wget: downloads, resume, Basic, HEAD, grants. */
describe('interop: HTTP(S) with curl and wget', function () {
  this.timeout(40_000);
  let server: TestServer;
  let work: string;
  let httpBase: string;
  let httpsBase: string;

  before(async () => {
    work = makeTempDir('http');
    server = await startTestServer(PASV_RANGE, { flags: { ...TLS_FLAGS, http: '127.0.0.1:0', https: '127.0.0.1:0' } });
    const { http, https } = server.server.httpEndpoints();
    httpBase = `http://127.0.0.1:${http!.port}`;
    httpsBase = `https://127.0.0.1:${https!.port}`;
  });

  after(async () => {
    killStrayClients();
    await server?.stop();
    removeTempDir(work);
  });

  /** curl with a clean config (-q first), verbose log on stderr, hard limits; -k: self-signed test cert. */
  function curl(args: string[]): Promise<RunResult> {
    return run('curl', ['-q', '-sS', '-v', '-k', '--connect-timeout', '5', '--max-time', '15', ...args], { env: clientEnv(work) });
  }

  function wget(args: string[]): Promise<RunResult> {
    return run('wget', ['--no-config', '--tries=1', '--timeout=10', '--no-check-certificate', ...args], { env: clientEnv(work), cwd: work });
  }

  const status = (log: string) => [...log.matchAll(/^< HTTP\/[\d.]+ (\d{3})/gm)].map((m) => Number(m[1]));

  it('reports the real bound ports of both listeners', () => {
    const { http, https } = server.server.httpEndpoints();
    expect(http!.address).to.equal('127.0.0.1');
    expect(http!.port).to.be.greaterThan(0);
    expect(https!.port).to.be.greaterThan(0).and.not.equal(http!.port);
  });

  for (const scheme of ['http', 'https'] as const) {
    it(`curl over ${scheme}: full download with Basic auth, byte for byte, audited with the same SHA-256`, async () => {
      const out = join(work, `curl-${scheme}.bin`);
      const since = server.transfers.length;
      const base = scheme === 'http' ? httpBase : httpsBase;
      const result = await curl(['-u', `${TEST_USER}:${TEST_PASSWORD}`, '-o', out, `${base}${IMAGES.cisco}`]);
      expectSuccess(result, `curl ${scheme}`);
      expect(status(result.stderr)).to.deep.equal([200]);
      expect(result.stderr).to.match(/^< Accept-Ranges: bytes/im);
      expect(result.stderr).to.match(/^< Content-Type: application\/octet-stream/im);
      const disk = imageOnDisk(server, IMAGES.cisco);
      expect(await sha256File(out)).to.equal(await sha256File(disk));
      const record = await waitForTransfer(server, IMAGES.cisco, since);
      expect(record).to.include({ protocol: scheme, user: TEST_USER, offset: 0, code: 200, result: 'complete', dataPort: null });
      expect(record.bytes).to.equal(statSync(disk).size);
      expect(record.expectedBytes).to.equal(statSync(disk).size);
      expect(record.sha256).to.equal(await sha256File(disk));
      expect(record.commands[0]).to.equal(`GET ${IMAGES.cisco} HTTP/1.1`);
      expect(JSON.stringify(record)).to.not.include(TEST_PASSWORD);
    });

    it(`wget over ${scheme}: answers the 401 challenge with Basic, full download`, async () => {
      const out = join(work, `wget-${scheme}.bin`);
      const base = scheme === 'http' ? httpBase : httpsBase;
      const since = server.transfers.length;
      const result = await wget(['-S', `--user=${TEST_USER}`, `--password=${TEST_PASSWORD}`, '-O', out, `${base}${IMAGES.aruba}`]);
      expectSuccess(result, `wget ${scheme}`);
      // wget waits for the challenge before sending credentials: 401 first (no delay), then 200.
      expect(result.stderr).to.match(/HTTP\/1\.1 401/);
      expect(result.stderr).to.match(/HTTP\/1\.1 200/);
      expect(await sha256File(out)).to.equal(await sha256File(imageOnDisk(server, IMAGES.aruba)));
      const record = await waitForTransfer(server, IMAGES.aruba, since);
      expect(record).to.include({ protocol: scheme, result: 'complete', offset: 0 });
      expect(record.sha256).to.equal(await sha256File(imageOnDisk(server, IMAGES.aruba)));
    });
  }

  it('curl -C - resumes a truncated file with a Range; the audit shows the offset and the hash of the tail', async () => {
    const disk = imageOnDisk(server, IMAGES.cisco);
    const size = statSync(disk).size;
    const out = join(work, 'resume-curl.bin');
    copyFileSync(disk, out);
    const partial = 300_001;
    const fd = openSync(out, 'r+');
    ftruncateSync(fd, partial);
    closeSync(fd);
    const since = server.transfers.length;
    const result = await curl(['-u', `${TEST_USER}:${TEST_PASSWORD}`, '-C', '-', '-o', out, `${httpsBase}${IMAGES.cisco}`]);
    expectSuccess(result, 'curl -C -');
    expect(result.stderr).to.match(new RegExp(`^> Range: bytes=${partial}-`, 'm'));
    expect(status(result.stderr)).to.deep.equal([206]);
    expect(result.stderr).to.match(new RegExp(`^< Content-Range: bytes ${partial}-${size - 1}/${size}`, 'mi'));
    expect(await sha256File(out)).to.equal(await sha256File(disk));
    const record = await waitForTransfer(server, IMAGES.cisco, since);
    expect(record).to.include({ protocol: 'https', offset: partial, expectedBytes: size - partial, bytes: size - partial, code: 206, result: 'complete' });
    expect(record.sha256).to.equal(await sha256File(disk, partial));
    expect(record.commands).to.include(`Range: bytes=${partial}-`);
  });

  it('wget -c resumes a truncated file', async () => {
    const disk = imageOnDisk(server, IMAGES.dell);
    const size = statSync(disk).size;
    const out = join(work, 'resume-wget.bin');
    copyFileSync(disk, out);
    const partial = Math.floor(size / 3);
    const fd = openSync(out, 'r+');
    ftruncateSync(fd, partial);
    closeSync(fd);
    const since = server.transfers.length;
    const result = await wget(['-S', '-c', '--auth-no-challenge', `--user=${TEST_USER}`, `--password=${TEST_PASSWORD}`, '-O', out, `${httpBase}${IMAGES.dell}`]);
    expectSuccess(result, 'wget -c');
    expect(result.stderr).to.match(/HTTP\/1\.1 206/);
    expect(await sha256File(out)).to.equal(await sha256File(disk));
    const record = await waitForTransfer(server, IMAGES.dell, since);
    expect(record).to.include({ protocol: 'http', offset: partial, bytes: size - partial, code: 206, result: 'complete' });
    expect(record.sha256).to.equal(await sha256File(disk, partial));
  });

  it('a ranged GET: 206 with exactly those bytes; If-Range with a stale ETag sends the whole file', async () => {
    const disk = imageOnDisk(server, IMAGES.cisco);
    const out = join(work, 'range.bin');
    const since = server.transfers.length;
    const result = await curl(['-u', `${TEST_USER}:${TEST_PASSWORD}`, '-r', '1000-1999', '-o', out, `${httpBase}${IMAGES.cisco}`]);
    expectSuccess(result, 'curl -r');
    expect(status(result.stderr)).to.deep.equal([206]);
    expect(readFileSync(out).equals(readFileSync(disk).subarray(1000, 2000))).to.equal(true);
    const record = await waitForTransfer(server, IMAGES.cisco, since);
    expect(record).to.include({ offset: 1000, expectedBytes: 1000, bytes: 1000, code: 206 });
    const stale = await curl(['-u', `${TEST_USER}:${TEST_PASSWORD}`, '-r', '0-9', '-H', 'If-Range: "not-the-etag"', '-o', out, `${httpBase}${IMAGES.cisco}`]);
    expectSuccess(stale, 'curl If-Range');
    expect(status(stale.stderr)).to.deep.equal([200]);
    expect(statSync(out).size).to.equal(statSync(disk).size);
    const etag = /^< ETag: (".*")/im.exec(result.stderr)![1]!;
    const fresh = await curl(['-u', `${TEST_USER}:${TEST_PASSWORD}`, '-r', '0-9', '-H', `If-Range: ${etag}`, '-o', out, `${httpBase}${IMAGES.cisco}`]);
    expect(status(fresh.stderr)).to.deep.equal([206]);
    expect(statSync(out).size).to.equal(10);
  });

  it('HEAD gives the size and validators, no body and no transfer record', async () => {
    const since = server.transfers.length;
    const result = await curl(['-I', '-u', `${TEST_USER}:${TEST_PASSWORD}`, `${httpsBase}${IMAGES.aruba}`]);
    expectSuccess(result, 'curl -I');
    expect(result.stdout).to.match(new RegExp(`^Content-Length: ${statSync(imageOnDisk(server, IMAGES.aruba)).size}\\r?$`, 'mi'));
    expect(result.stdout).to.match(/^ETag: "/im);
    expect(result.stdout).to.match(/^Last-Modified: /im);
    await delay(200);
    expect(server.transfers.slice(since)).to.deep.equal([]);
  });

  it('unauthenticated and wrong credentials get 401 with the Basic challenge (wrong ones after the delay)', async () => {
    const none = await curl(['-o', '/dev/null', `${httpBase}${IMAGES.cisco}`]);
    expect(status(none.stderr)).to.deep.equal([401]);
    expect(none.stderr).to.match(/^< WWW-Authenticate: Basic realm="swfw"/im);
    const started = Date.now();
    const wrong = await curl(['-u', `${TEST_USER}:not-the-password`, '-o', '/dev/null', `${httpBase}${IMAGES.cisco}`]);
    expect(status(wrong.stderr)).to.deep.equal([401]);
    expect(Date.now() - started).to.be.at.least(1000);
  });

  describe('one-time grant URLs', () => {
    it('the grant URL downloads without Basic from its source (127.0.0.2) and is 404 from another (127.0.0.3)', async () => {
      const access = await server.server.grantOneTimeAccess({ sourceAddress: '127.0.0.2', imagePath: IMAGES.cisco.slice(1), validForMs: 60_000 });
      try {
        expect(access.httpPath).to.equal(`/grant/${access.user}.${access.password}${IMAGES.cisco}`);
        const out = join(work, 'grant.bin');
        const since = server.transfers.length;
        const ok = await curl(['--interface', '127.0.0.2', '-o', out, `${httpsBase}${access.httpPath}`]);
        expectSuccess(ok, 'curl grant from 127.0.0.2');
        expect(status(ok.stderr)).to.deep.equal([200]);
        expect(await sha256File(out)).to.equal(await sha256File(imageOnDisk(server, IMAGES.cisco)));
        const record = await waitForTransfer(server, IMAGES.cisco, since);
        expect(record).to.include({ user: access.user, client: '127.0.0.2', protocol: 'https', result: 'complete' });
        expect(record.commands[0]).to.equal(`GET /grant/${access.user}.***${IMAGES.cisco} HTTP/1.1`);
        expect(JSON.stringify(record)).to.not.include(access.password);

        const wgetOut = join(work, 'grant-wget.bin');
        const viaWget = await wget(['--bind-address=127.0.0.2', '-O', wgetOut, `${httpBase}${access.httpPath}`]);
        expectSuccess(viaWget, 'wget grant from 127.0.0.2');
        expect(await sha256File(wgetOut)).to.equal(await sha256File(imageOnDisk(server, IMAGES.cisco)));

        const stolen = await curl(['--interface', '127.0.0.3', '-o', '/dev/null', `${httpsBase}${access.httpPath}`]);
        expect(status(stolen.stderr)).to.deep.equal([404]);
        expect(stolen.stderr).to.not.match(/WWW-Authenticate/i);
      } finally {
        access.revoke();
      }
    });

    it('is 404 after revoke and after expiry', async () => {
      const revoked = await server.server.grantOneTimeAccess({ sourceAddress: '127.0.0.2', imagePath: IMAGES.aruba, validForMs: 60_000 });
      const before = await curl(['--interface', '127.0.0.2', '-I', `${httpBase}${revoked.httpPath}`]);
      expect(before.stdout).to.match(/^HTTP\/1\.1 200/);
      revoked.revoke();
      const after = await curl(['--interface', '127.0.0.2', '-o', '/dev/null', `${httpBase}${revoked.httpPath}`]);
      expect(status(after.stderr)).to.deep.equal([404]);

      const expiring = await server.server.grantOneTimeAccess({ sourceAddress: '127.0.0.0/8', imagePath: IMAGES.aruba, validForMs: 1_000 });
      const live = await curl(['-I', `${httpBase}${expiring.httpPath}`]);
      expect(live.stdout).to.match(/^HTTP\/1\.1 200/);
      await delay(1_200);
      const expired = await curl(['-o', '/dev/null', `${httpBase}${expiring.httpPath}`]);
      expect(status(expired.stderr)).to.deep.equal([404]);
    });
  });
});

/** Off by default, and the listing switch. */
describe('interop: HTTP off by default, httpListing', function () {
  this.timeout(30_000);
  let work: string;
  before(() => (work = makeTempDir('http-listing')));
  after(() => {
    killStrayClients();
    removeTempDir(work);
  });

  it('without --http and --https nothing listens for HTTP', async () => {
    const server = await startTestServer('44805-44809');
    try {
      expect(server.server.httpEndpoints()).to.deep.equal({ http: null, https: null });
    } finally {
      await server.stop();
    }
  });

  it('a directory is 404 unless httpListing is on; then an HTML index of names, never server paths', async () => {
    for (const httpListing of [false, true]) {
      const server = await startTestServer('44805-44809', { flags: { http: '127.0.0.1:0', ...(httpListing ? { httpListing: true } : {}) } });
      try {
        const base = `http://127.0.0.1:${server.server.httpEndpoints().http!.port}`;
        const result = await run('curl', ['-q', '-sS', '-w', '\\n%{http_code}', '-u', `${TEST_USER}:${TEST_PASSWORD}`, `${base}/cisco/`], { env: clientEnv(work) });
        expectSuccess(result, 'curl directory');
        const code = result.stdout.trim().split('\n').pop();
        if (!httpListing) expect(code).to.equal('404');
        else {
          expect(code).to.equal('200');
          expect(result.stdout).to.include('<a href="/cisco/c9300-universalk9.17.09.04a.SPA.bin">c9300-universalk9.17.09.04a.SPA.bin</a>');
          expect(result.stdout).to.not.include(server.images);
        }
      } finally {
        await server.stop();
      }
    }
  });
});
