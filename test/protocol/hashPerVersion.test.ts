/**
 * `hashSentBytes: per-version` (issue 14): a file version is hashed on the stream once, and later
 * whole transfers of the same version carry that digest; a version is fstat's identity on the open
 * descriptor (device, inode, size, mtime and ctime in ns). A file changed between transfers, even
 * to the same size and mtime, is hashed again; one changed during a transfer gets no digest and no
 * success reply, over FTP and HTTP.
 */
import { expect } from 'chai';
import { createHash } from 'node:crypto';
import { closeSync, openSync, readFileSync, statSync, utimesSync, writeFileSync, writeSync } from 'node:fs';
import { get as httpGet } from 'node:http';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { Client } from 'basic-ftp';
import { startTestServer, TEST_PASSWORD, TEST_USER, type TestServer } from '../helpers/testServer.js';
import { judgeEvidence } from '../../src/verify/evidence.js';

const PASV = '44040-44044';
/** Not in the catalog: the catalog guard (which would answer 450 to a changed image) stays out of the way. */
const LOOSE = 'loose/firmware.bin';
const SIZE = 24 * 1024 * 1024;
const sha256 = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');

function pattern(seed: number): Buffer {
  const bytes = Buffer.alloc(SIZE);
  for (let i = 0; i < SIZE; i += 4096) bytes.writeUInt32BE((i * 2654435761 + seed) >>> 0, i);
  return bytes;
}

/** A sink that holds its first chunk for `holdMs`: the transfer is mid-way while it waits. */
function slowSink(holdMs: number, onHold: () => void): Writable {
  let held = false;
  return new Writable({
    write(_chunk, _encoding, callback) {
      if (held) return callback();
      held = true;
      onHold();
      setTimeout(callback, holdMs);
    },
  });
}

const discard = () => new Writable({ write: (_c, _e, callback) => callback() });

describe('hashSentBytes per-version: one hash per file version, never a reused digest for changed bytes', function () {
  this.timeout(60_000);
  let server: TestServer | null = null;
  let file: string;

  const start = async (flags: Record<string, string> = {}) => {
    server = await startTestServer(PASV, {
      copyImages: true,
      flags: { http: '127.0.0.1:0', ...flags },
      beforeStart: async (images) => {
        const { mkdirSync } = await import('node:fs');
        mkdirSync(join(images, 'loose'));
        file = join(images, LOOSE);
        writeFileSync(file, pattern(1));
        // A round mtime: it can be put back exactly after a change in place.
        utimesSync(file, new Date('2026-01-01T00:00:00Z'), new Date('2026-01-01T00:00:00Z'));
      },
    });
    return server;
  };
  afterEach(async () => {
    await server?.stop();
    server = null;
  });

  const ftpGet = async (sink: Writable = discard(), startAt = 0) => {
    const client = new Client(10_000);
    try {
      await client.access({ host: '127.0.0.1', port: server!.port, user: TEST_USER, password: TEST_PASSWORD });
      return await client.downloadTo(sink, LOOSE, startAt);
    } finally {
      client.close();
    }
  };
  const httpFetch = (onResponse: (res: import('node:http').IncomingMessage) => void = (res) => res.resume()) =>
    new Promise<{ status: number; error: Error | null }>((resolve) => {
      const port = server!.server.httpEndpoints().http!.port;
      const auth = Buffer.from(`${TEST_USER}:${TEST_PASSWORD}`).toString('base64');
      const req = httpGet({ host: '127.0.0.1', port, path: `/${LOOSE}`, headers: { authorization: `Basic ${auth}` } }, (res) => {
        onResponse(res);
        res.on('end', () => resolve({ status: res.statusCode ?? 0, error: null }));
        res.on('error', (error) => resolve({ status: res.statusCode ?? 0, error }));
        res.on('aborted', () => resolve({ status: res.statusCode ?? 0, error: new Error('aborted') }));
      });
      req.on('error', (error) => resolve({ status: 0, error }));
    });
  const lastRecord = () => server!.transfers.at(-1)!;

  it('FTP and HTTP: the first whole transfer is hashed on the stream, later ones carry the version digest; a REST part is hashed on its own', async function () {
    await start();
    const digest = sha256(pattern(1));
    await ftpGet();
    expect(lastRecord()).to.include({ protocol: 'ftp', result: 'complete', sha256: digest, sha256Basis: 'stream' });
    await ftpGet();
    expect(lastRecord()).to.include({ protocol: 'ftp', result: 'complete', sha256: digest, sha256Basis: 'version' });
    expect((await httpFetch()).status).to.equal(200);
    expect(lastRecord()).to.include({ protocol: 'http', result: 'complete', sha256: digest, sha256Basis: 'version' });
    await ftpGet(discard(), 1000);
    expect(lastRecord()).to.include({ offset: 1000, sha256: sha256(pattern(1).subarray(1000)), sha256Basis: 'stream' });
  });

  it('a change between transfers that keeps the size and the mtime (only ctime moves) is hashed again, never given the old digest', async function () {
    await start();
    await ftpGet();
    await ftpGet();
    expect(lastRecord().sha256Basis).to.equal('version');
    const before = statSync(file, { bigint: true });
    const changed = pattern(2);
    writeFileSync(file, changed);
    utimesSync(file, new Date('2026-01-01T00:00:00Z'), new Date('2026-01-01T00:00:00Z'));
    const after = statSync(file, { bigint: true });
    expect([after.size, after.mtimeNs, after.ino]).to.deep.equal([before.size, before.mtimeNs, before.ino]);
    expect(after.ctimeNs).to.not.equal(before.ctimeNs);
    await ftpGet();
    expect(lastRecord()).to.include({ sha256: sha256(changed), sha256Basis: 'stream' });
    expect(lastRecord().sha256).to.not.equal(sha256(pattern(1)));
    expect((await httpFetch()).status).to.equal(200);
    expect(lastRecord()).to.include({ sha256: sha256(changed), sha256Basis: 'version' });
  });

  it('a change during an FTP transfer: no digest, 451 instead of 226; the next transfer is hashed again', async function () {
    await start();
    await ftpGet();
    await ftpGet();
    const failed = await ftpGet(slowSink(500, () => writeAt(file, 0, Buffer.from('changed while sending'))))
      .then(() => null)
      .catch((err: Error & { code?: number }) => err);
    expect(failed?.code).to.equal(451);
    expect(failed?.message).to.match(/changed while it was being sent/);
    expect(lastRecord()).to.include({ protocol: 'ftp', code: 451, result: 'aborted', reason: 'file-changed', sha256: null, sha256Basis: null });
    await ftpGet();
    expect(lastRecord()).to.include({ result: 'complete', sha256: sha256(readFileSync(file)), sha256Basis: 'stream' });
  });

  it('a change during an HTTP transfer: no digest, and the response is cut before its end', async function () {
    await start();
    await ftpGet();
    const outcome = await httpFetch((res) => res.pipe(slowSink(500, () => writeAt(file, 0, Buffer.from('changed while sending')))));
    expect(outcome.error).to.not.equal(null);
    expect(lastRecord()).to.include({ protocol: 'http', result: 'aborted', reason: 'file-changed', sha256: null, sha256Basis: null });
  });

  it('the evidence verdicts still place the fault with a version-basis record: corrupted-in-transit, wrong-image-served', async function () {
    await start();
    await ftpGet();
    await ftpGet();
    const record = lastRecord();
    expect(record.sha256Basis).to.equal('version');
    const server = { sha256: record.sha256, bytes: record.bytes, offset: record.offset, result: record.result };
    const right = { digests: { sha256: sha256(pattern(1)) }, size: SIZE };
    // The switch holds other bytes than the server sent (and the catalog has): broken in transit.
    expect(judgeEvidence({ reference: right, server, client: { digests: { sha256: '1'.repeat(64) }, bytes: SIZE } }).verdict).to.equal('corrupted-in-transit');
    // The switch holds what the server sent, and that is not the catalog's image: the wrong image was served.
    const wrong = { digests: { sha256: '0'.repeat(64) }, size: SIZE };
    expect(judgeEvidence({ reference: wrong, server, client: { digests: { sha256: sha256(pattern(1)) }, bytes: SIZE } }).verdict).to.equal('wrong-image-served');
    expect(judgeEvidence({ reference: right, server, client: { digests: { sha256: sha256(pattern(1)) }, bytes: SIZE } }).verdict).to.equal('verified');
  });

  it('per-transfer hashes every transfer on the stream; off records no digest', async function () {
    await start({ hashSentBytes: 'per-transfer' });
    await ftpGet();
    await ftpGet();
    expect(server!.transfers.map((r) => r.sha256Basis)).to.deep.equal(['stream', 'stream']);
    await server!.stop();
    await start({ hashSentBytes: 'off' });
    await ftpGet();
    expect(lastRecord()).to.include({ result: 'complete', sha256: null, sha256Basis: null });
  });
});

function writeAt(path: string, offset: number, bytes: Buffer): void {
  const fd = openSync(path, 'r+');
  try {
    writeSync(fd, bytes, 0, bytes.length, offset);
  } finally {
    closeSync(fd);
  }
}
