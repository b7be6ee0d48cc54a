import { expect } from 'chai';
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { PROJECT_ROOT } from '../../src/config/loader.js';
import { Puller, parseFtpUrl, type PullOptions } from '../../src/client/index.js';
import { entryDigests, findImage, loadCatalog } from '../../src/catalog/index.js';
import { judgeEvidence, type ReferenceEvidence } from '../../src/verify/evidence.js';
import { InlineHasher } from '../../src/verify/hasher.js';
import type { TransferRecord } from '../../src/server/context.js';
import { FIXTURE_IMAGES, TEST_PASSWORD, TEST_USER, startTestServer, type TestServer } from '../helpers/testServer.js';
import { expectNoWorkersLeft, expectOnlyFiles } from '../helpers/pullCheck.js';

/** This suite's passive ports (the pull suites own 43000-43099). */
const PASV_RANGE = '43000-43004';
const TLS_PASV_RANGE = '43005-43007';
const CISCO = '/cisco/c9300-universalk9.17.09.04a.SPA.bin';
const DELL = '/dell/OS10_10.5.6.0.bin';
const TLS_DIR = join(PROJECT_ROOT, 'fixtures', 'tls');

async function catalogReference(path: string): Promise<ReferenceEvidence> {
  const entry = findImage(await loadCatalog(FIXTURE_IMAGES), path);
  if (!entry) throw new Error(`no fixture catalog entry for ${path}`);
  return { digests: entryDigests(entry), size: entry.size };
}

/** The server emits its audit record just after 226, which the client may see first. */
async function lastTransfer(server: TestServer, count: number): Promise<TransferRecord> {
  for (let i = 0; i < 100 && server.transfers.length < count; i++) await delay(20);
  expect(server.transfers).to.have.length(count);
  return server.transfers[count - 1]!;
}

describe('pull from our own server (real sockets, loopback)', function () {
  this.timeout(20_000);
  let server: TestServer;
  let dir: string;

  beforeEach(() => (dir = mkdtempSync(join(tmpdir(), 'swfw-pull-server-'))));
  afterEach(async () => {
    await server?.stop();
    rmSync(dir, { recursive: true, force: true });
    await expectNoWorkersLeft();
  });

  function puller(path: string, options: Partial<PullOptions> = {}): Puller {
    const target = parseFtpUrl(`ftp://${TEST_USER}@${server.host}:${server.port}${path}`);
    if ('problem' in target) throw new Error(target.problem);
    return new Puller({
      target,
      password: TEST_PASSWORD,
      out: join(dir, 'image.bin'),
      reference: null,
      retries: 1,
      backoff: { baseMs: 5, maxMs: 20 },
      ...options,
    });
  }

  it('PASV: the catalog hash, the server record and the client hash agree → verified', async function () {
    server = await startTestServer(PASV_RANGE);
    const reference = await catalogReference(CISCO);
    const result = await puller(CISCO, { reference }).run();
    expect(result.outcome, result.reason).to.equal('verified');
    expect(readFileSync(result.out!).equals(readFileSync(join(FIXTURE_IMAGES, CISCO)))).to.equal(true);
    expect(result.remoteSize).to.equal(reference.size);
    const record = await lastTransfer(server, 1);
    expect(record).to.include({ result: 'complete', offset: 0, path: CISCO });
    const report = judgeEvidence({ reference, server: record, client: { digests: result.digests, bytes: result.bytes } });
    expect(report).to.include({ verdict: 'verified', serverEvidenceUsed: true });
    expectOnlyFiles(dir, ['image.bin']);
  });

  it('EPSV: verified', async function () {
    server = await startTestServer(PASV_RANGE);
    const result = await puller(DELL, { reference: await catalogReference(DELL), passive: 'epsv' }).run();
    expect(result.outcome, result.reason).to.equal('verified');
    expect((await lastTransfer(server, 1)).result).to.equal('complete');
  });

  it('Cisco-style reference (MD5 + SHA-512): computes exactly those plus SHA-256, in one pass', async function () {
    server = await startTestServer(PASV_RANGE);
    const { digests, size } = await catalogReference(CISCO);
    const result = await puller(CISCO, { reference: { digests: { md5: digests.md5!, sha512: digests.sha512! }, size } }).run();
    expect(result.outcome, result.reason).to.equal('verified');
    expect(result.algorithms).to.deep.equal(['sha256', 'md5', 'sha512']);
    expect(result.digests).to.deep.equal({ sha256: digests.sha256, md5: digests.md5, sha512: digests.sha512 });
  });

  it('explicit FTPS (AUTH TLS, PROT P) with the server certificate trusted: verified', async function () {
    server = await startTestServer(TLS_PASV_RANGE, {
      flags: { tlsCert: join(TLS_DIR, 'server.crt'), tlsKey: join(TLS_DIR, 'server.key'), requireTls: true },
    });
    const result = await puller(DELL, { reference: await catalogReference(DELL), tls: { ca: readFileSync(join(TLS_DIR, 'server.crt')) } }).run();
    expect(result.outcome, result.reason).to.equal('verified');
    const record = await lastTransfer(server, 1);
    expect(record.sha256).to.equal(result.digests.sha256);
  });

  it('FTPS with an untrusted certificate fails at once (no retry can fix trust)', async function () {
    server = await startTestServer(TLS_PASV_RANGE, { flags: { tlsCert: join(TLS_DIR, 'server.crt'), tlsKey: join(TLS_DIR, 'server.key') } });
    const result = await puller(DELL, { reference: await catalogReference(DELL), tls: {}, retries: 3 }).run();
    expect(result).to.include({ outcome: 'transfer-failed', attempts: 1 });
    expectOnlyFiles(dir, []);
  });

  it('FTPS with a certificate from an unknown CA (UNABLE_TO_VERIFY_LEAF_SIGNATURE) fails at once', async function () {
    // A CA and a leaf it signed, made now: the client trusts neither.
    const pki = join(dir, 'pki');
    mkdirSync(pki);
    const openssl = (...args: string[]) => execFileSync('openssl', args, { cwd: pki, stdio: 'ignore' });
    openssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'ca.key', '-out', 'ca.crt', '-days', '2', '-subj', '/CN=swfw test CA');
    openssl('req', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'leaf.key', '-out', 'leaf.csr', '-subj', '/CN=127.0.0.1');
    writeFileSync(join(pki, 'san.ext'), 'subjectAltName=IP:127.0.0.1\n');
    openssl('x509', '-req', '-in', 'leaf.csr', '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'leaf.crt', '-days', '2', '-extfile', 'san.ext');
    server = await startTestServer(TLS_PASV_RANGE, { flags: { tlsCert: join(pki, 'leaf.crt'), tlsKey: join(pki, 'leaf.key') } });
    const result = await puller(DELL, { reference: await catalogReference(DELL), tls: {}, retries: 3, out: join(dir, 'out.bin') }).run();
    expect(result).to.include({ outcome: 'transfer-failed', attempts: 1 });
    expect(result.reason).to.match(/unable to verify the first certificate|UNABLE_TO_VERIFY_LEAF_SIGNATURE/i);
    // With the CA trusted, the same server verifies.
    const trusted = await puller(DELL, { reference: await catalogReference(DELL), tls: { ca: readFileSync(join(pki, 'ca.crt')) }, out: join(dir, 'out.bin') }).run();
    expect(trusted.outcome, trusted.reason).to.equal('verified');
  });

  it('over IPv6 the pull uses EPSV (PASV can only name IPv4, RFC 2428), whatever was asked: verified in one attempt', async function () {
    server = await startTestServer(PASV_RANGE, { flags: { host: '::1' } });
    const target = parseFtpUrl(`ftp://${TEST_USER}@[::1]:${server.port}${DELL}`);
    if ('problem' in target) throw new Error(target.problem);
    const result = await new Puller({ target, password: TEST_PASSWORD, out: join(dir, 'image.bin'), reference: await catalogReference(DELL), passive: 'pasv', retries: 3 }).run();
    expect(result.outcome, result.reason).to.equal('verified');
    expect(result.attempts).to.equal(1);
    const record = await lastTransfer(server, 1);
    expect(record.client).to.equal('::1');
    expect(record.commands).to.include('EPSV').and.not.include('PASV');
  });

  it('a URL path is walked from the login directory, one CWD per segment (RFC 1738 §3.2.2), and the audit shows it', async function () {
    server = await startTestServer(PASV_RANGE);
    const result = await puller(DELL, { reference: await catalogReference(DELL) }).run();
    expect(result.outcome, result.reason).to.equal('verified');
    const record = await lastTransfer(server, 1);
    expect(record.commands.filter((c) => /^(CWD|SIZE|RETR)/.test(c))).to.deep.equal(['CWD dell', 'SIZE OS10_10.5.6.0.bin', 'RETR OS10_10.5.6.0.bin']);
    expect(record.path).to.equal(DELL);
  });

  it('a wrong reference: every re-pull mismatches; the server record then shows the server did not send that image', async function () {
    server = await startTestServer(PASV_RANGE);
    const reference: ReferenceEvidence = { digests: { sha256: '0'.repeat(64) }, size: null };
    const result = await puller(DELL, { reference, retries: 1 }).run();
    expect(result.outcome).to.equal('mismatch');
    expect(result.out).to.equal(null);
    const record = await lastTransfer(server, 2);
    // The second whole transfer of this version carries the first one's digest (hashSentBytes per-version).
    expect(record.sha256Basis).to.equal('version');
    expect(judgeEvidence({ reference, server: record, client: { digests: result.digests, bytes: result.bytes } }).verdict).to.equal('wrong-image-served');
    expectOnlyFiles(dir, []);
  });

  it('a missing file (550) and a wrong password (530) fail at once', async function () {
    server = await startTestServer(PASV_RANGE);
    const missing = await puller('/cisco/nope.bin', { retries: 3 }).run();
    expect(missing).to.include({ outcome: 'transfer-failed', replyCode: 550, attempts: 1 });
    const badLogin = await puller(DELL, { retries: 3, password: 'not-the-password' }).run();
    expect(badLogin).to.include({ outcome: 'transfer-failed', replyCode: 530, attempts: 1 });
    expect(server.transfers).to.deep.equal([]);
    expectOnlyFiles(dir, []);
  });

  it('our server aborts a stalled reader with 426; the pull resumes with REST and the audit shows both parts', async function () {
    // A 128 MiB image in a private copy of the repository, and a 1 s data timeout on the server.
    // The size beats every buffer between the server's file and our stalled hash: 16 MiB of
    // batches in flight, up to 32 MiB of receive buffer (tcp_rmem's maximum here) and 4 MiB of
    // send buffer. At 40 MiB, 1 run in 10 under load took the whole image in before stalling.
    server = await startTestServer(PASV_RANGE, { copyImages: true, flags: { dataTimeout: '1' } });
    const big = randomBytes(128 * 1024 * 1024);
    writeFileSync(join(server.images, 'big.bin'), big);
    const sha256 = createHash('sha256').update(big).digest('hex');
    // Stall our own hashing once, until the server has given up: the batches fill up, the socket
    // stops being read, the server sees no byte acknowledged for its data timeout and aborts the
    // transfer with 426. (How long that takes depends on the receive buffer: Linux collapses a
    // full receive queue and lets a little more in, which is progress, so a fixed stall is flaky.)
    // Batches stay in order: a hasher must hash in submission order, so the stall is chained.
    const update = InlineHasher.prototype.update;
    let stalled = false;
    let chain: Promise<unknown> = Promise.resolve();
    InlineHasher.prototype.update = function (this: InlineHasher, batch: Buffer, length: number) {
      const next = chain.then(async () => {
        if (!stalled) {
          stalled = true;
          const aborted = () => server.transfers.some((t) => t.result === 'aborted');
          for (let waited = 0; !aborted() && waited < 20_000; waited += 100) await delay(100);
        }
        return update.call(this, batch, length);
      });
      chain = next;
      return next;
    };
    let result;
    try {
      result = await puller('/big.bin', { reference: { digests: { sha256 }, size: big.length }, hashing: 'inline', retries: 2 }).run();
    } finally {
      InlineHasher.prototype.update = update;
    }
    expect(result.outcome, result.reason).to.equal('verified');
    expect(result.restOffsets).to.have.length(1);
    const [offset] = result.restOffsets;
    expect(offset).to.be.within(1, big.length - 1);
    const second = await lastTransfer(server, 2);
    const first = server.transfers[0]!;
    expect(first).to.include({ offset: 0, result: 'aborted', code: 426 });
    expect(second).to.include({ offset, result: 'complete', bytes: big.length - offset! });
    // A resumed transfer has no whole-image server record: the verdict rests on the client's hash.
    expect(judgeEvidence({ reference: { digests: { sha256 }, size: big.length }, server: second, client: { digests: result.digests, bytes: result.bytes } })).to.include({
      verdict: 'verified',
      serverEvidenceUsed: false,
    });
  });

  it('without a reference the image is pulled but reported unverified', async function () {
    server = await startTestServer(PASV_RANGE);
    const result = await puller(DELL).run();
    expect(result).to.include({ outcome: 'unverified', verdict: 'unverified' });
    expect(result.out).to.equal(join(dir, 'image.bin'));
  });
});
