import { expect } from 'chai';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { once } from 'node:events';
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { TLSSocket } from 'node:tls';
import { PROJECT_ROOT } from '../../src/config/loader.js';
import { Puller, parseFtpUrl, type PullOptions, type PullResult } from '../../src/client/index.js';
import { InlineHasher } from '../../src/verify/hasher.js';
import { FakeFtpServer, type FakeScript } from '../helpers/fakeFtpServer.js';
import { expectNoWorkersLeft, expectOnlyFiles } from '../helpers/pullCheck.js';
import { RecordingLogger } from '../helpers/recordingLogger.js';

/** This suite's passive ports (the pull suites own 43000-43099). */
const PASV = { min: 43010, max: 43029 };
const IMAGE_PATH = '/cisco/image.bin';
const IMAGE = randomBytes(2 * 1024 * 1024 + 777);
const HALF = IMAGE.length >> 1;
const SHA256 = createHash('sha256').update(IMAGE).digest('hex');

describe('pull: fault injection against a scripted FTP server', function () {
  this.timeout(20_000);
  let fake: FakeFtpServer | null = null;
  let dir: string;
  let out: string;

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'swfw-pull-faults-'));
    out = join(dir, 'image.bin');
  });
  afterEach(async () => {
    await fake?.stop();
    fake = null;
    rmSync(dir, { recursive: true, force: true });
    await expectNoWorkersLeft();
  });

  async function startFake(script: Partial<FakeScript> = {}, extra: { dataBindHost?: string } = {}): Promise<FakeFtpServer> {
    fake = await FakeFtpServer.start({ files: { [IMAGE_PATH]: IMAGE }, pasvRange: PASV, user: 'switch', password: 'pw', script, ...extra });
    return fake;
  }

  function pullFrom(server: FakeFtpServer, options: Partial<PullOptions> = {}): Puller {
    const target = parseFtpUrl(server.url(options.target?.path ?? IMAGE_PATH));
    if ('problem' in target) throw new Error(target.problem);
    return new Puller({
      target,
      password: 'pw',
      out,
      reference: { digests: { sha256: SHA256 }, size: null },
      retries: 3,
      timeoutMs: 5_000,
      backoff: { baseMs: 5, maxMs: 20 },
      ...options,
    });
  }

  function expectVerified(result: PullResult): void {
    expect(result.outcome, result.reason).to.equal('verified');
    expect(result.out).to.equal(out);
    expect(result.digests.sha256).to.equal(SHA256);
    expect(readFileSync(out).equals(IMAGE)).to.equal(true);
    expectOnlyFiles(dir, ['image.bin']);
  }

  it('data connection cut halfway (FIN, 426): resumes with REST from the bytes on disk, not from zero', async function () {
    const server = await startFake({ cutRetrs: 1, cutAtBytes: HALF, cutMode: 'fin-426' });
    // Count the bytes hashed: a resume that re-read the kept prefix, or restarted, would hash more than the image.
    let hashed = 0;
    const update = InlineHasher.prototype.update;
    InlineHasher.prototype.update = function (this: InlineHasher, batch: Buffer, length: number) {
      hashed += length;
      return update.call(this, batch, length);
    };
    let result: PullResult;
    try {
      result = await pullFrom(server, { hashing: 'inline' }).run();
    } finally {
      InlineHasher.prototype.update = update;
    }
    expectVerified(result);
    expect(server.log.rests).to.deep.equal([HALF]);
    expect(server.log.retrs.map((r) => [r.offset, r.bytesSent, r.outcome])).to.deep.equal([
      [0, HALF, 'cut'],
      [HALF, IMAGE.length - HALF, 'complete'],
    ]);
    expect(result).to.include({ attempts: 2, restarts: 0 });
    expect(result.restOffsets).to.deep.equal([HALF]);
    expect(hashed, 'every byte hashed exactly once').to.equal(IMAGE.length);
  });

  it('data connection reset (RST): resumes with REST from what arrived (hash on a worker)', async function () {
    const server = await startFake({ cutRetrs: 1, cutAtBytes: HALF, cutMode: 'reset' });
    const result = await pullFrom(server).run();
    expectVerified(result);
    expect(result.hashing).to.equal('worker');
    expect(server.log.rests).to.have.length(1);
    expect(server.log.rests[0]).to.be.within(1, HALF);
    expect(server.log.retrs[1]!.offset).to.equal(server.log.rests[0]);
  });

  it('data connection stalls: the timeout fires and the pull resumes with REST', async function () {
    const server = await startFake({ cutRetrs: 1, cutAtBytes: HALF, cutMode: 'stall' });
    const result = await pullFrom(server, { timeoutMs: 600 }).run();
    expectVerified(result);
    expect(server.log.rests).to.deep.equal([HALF]);
  });

  it('a short transfer confirmed with 226 is caught by the SIZE check and resumed', async function () {
    const server = await startFake({ cutRetrs: 1, cutAtBytes: HALF, cutMode: 'fin-226' });
    const result = await pullFrom(server).run();
    expectVerified(result);
    expect(server.log.rests).to.deep.equal([HALF]);
  });

  it('a flipped byte: the temp file is discarded and the image pulled again from zero, then verifies', async function () {
    const server = await startFake({ corruptRetrs: 1 });
    const puller = pullFrom(server);
    const restarts: string[] = [];
    puller.on('restart', (e) => restarts.push(e.reason));
    const result = await puller.run();
    expectVerified(result);
    expect(server.log.retrs.map((r) => [r.offset, r.corrupted])).to.deep.equal([
      [0, true],
      [0, false],
    ]);
    expect(server.log.rests).to.deep.equal([]);
    expect(result.restarts).to.equal(1);
    expect(restarts).to.have.length(1);
  });

  it('persistent corruption: exits as a mismatch after 1 + retries transfers, nothing at --out, no temp file', async function () {
    const server = await startFake({ corruptRetrs: Infinity });
    const result = await pullFrom(server, { retries: 2 }).run();
    expect(result.outcome).to.equal('mismatch');
    expect(result.verdict).to.equal('checksum-mismatch');
    expect(result.out).to.equal(null);
    expect(server.log.retrs).to.have.length(3);
    expect(result.restarts).to.equal(2);
    expectOnlyFiles(dir, []);
  });

  it('two 421s at connect: retried with backoff, then verified', async function () {
    const server = await startFake({ greeting421: 2 });
    const puller = pullFrom(server);
    const retries: Array<number | null> = [];
    puller.on('retry', (e) => retries.push(e.replyCode));
    expectVerified(await puller.run());
    expect(retries).to.deep.equal([421, 421]);
    expect(server.log.controlConnections).to.equal(3);
  });

  it('two 425s at PASV: retried, then verified', async function () {
    const server = await startFake({ pasv425: 2 });
    const puller = pullFrom(server);
    const retries: Array<number | null> = [];
    puller.on('retry', (e) => retries.push(e.replyCode));
    expectVerified(await puller.run());
    expect(retries).to.deep.equal([425, 425]);
  });

  it('two 421s and two 425s in a row need four retries; with three the pull gives up (the bound holds)', async function () {
    let server = await startFake({ greeting421: 2, pasv425: 2 });
    expectVerified(await pullFrom(server, { retries: 4 }).run());
    await server.stop();
    rmSync(out);
    server = await startFake({ greeting421: 2, pasv425: 2 });
    const result = await pullFrom(server, { retries: 3 }).run();
    expect(result).to.include({ outcome: 'transfer-failed', replyCode: 425, attempts: 4 });
    expectOnlyFiles(dir, []);
  });

  it('a missing file (550) fails at once: one connection, no retry, no RETR, nothing written', async function () {
    const server = await startFake();
    const puller = pullFrom(server, { target: { ...parseFtpUrl(server.url('/nope.bin')) } as never });
    let retried = false;
    puller.on('retry', () => (retried = true));
    const started = Date.now();
    const result = await puller.run();
    expect(result).to.include({ outcome: 'transfer-failed', replyCode: 550, attempts: 1 });
    expect(retried).to.equal(false);
    expect(server.log.controlConnections).to.equal(1);
    expect(server.log.retrs).to.deep.equal([]);
    expect(Date.now() - started).to.be.below(2_000);
    expectOnlyFiles(dir, []);
  });

  it('a bad password (530) fails at once', async function () {
    const server = await startFake();
    const result = await pullFrom(server, { password: 'wrong' }).run();
    expect(result).to.include({ outcome: 'transfer-failed', replyCode: 530, attempts: 1 });
    expect(server.log.controlConnections).to.equal(1);
  });

  it('a PASV reply naming an unroutable address (NAT): its port is used with the control host, verified, and the replacement said', async function () {
    const server = await startFake({ pasvHost: '192.168.77.10' });
    const logger = new RecordingLogger();
    const result = await pullFrom(server, { logger }).run();
    expectVerified(result);
    expect(result.passiveAddressReplaced).to.equal(true);
    expect(server.log.dataConnections).to.equal(1);
    expect(logger.records.some((r) => r.level === 'warn' && /PASV reply named another address/.test(r.message) && r.fields['named'] === '192.168.77.10' && r.fields['used'] === '127.0.0.1')).to.equal(true);
  });

  it('a PASV reply naming a third host that really listens: nothing ever connects there', async function () {
    // The fake listens on 127.0.0.2 only, so a client that followed the reply would be seen there.
    const server = await startFake({ pasvHost: '127.0.0.2' }, { dataBindHost: '127.0.0.2' });
    const result = await pullFrom(server, { retries: 1 }).run();
    expect(result.outcome).to.equal('transfer-failed');
    expect(server.log.dataConnections).to.equal(0);
    expect(server.log.retrs).to.deep.equal([]);
    expectOnlyFiles(dir, []);
  });

  it('with --epsv the same server works: EPSV carries only a port, the control host is used', async function () {
    const server = await startFake({ pasvHost: '127.0.0.2' });
    expectVerified(await pullFrom(server, { passive: 'epsv' }).run());
    expect(server.log.commands.filter((c) => c === 'EPSV' || c === 'PASV')).to.deep.equal(['EPSV']);
  });

  it('a server without REST: the kept prefix is discarded and the pull starts again from byte 0', async function () {
    const server = await startFake({ cutRetrs: 1, cutAtBytes: HALF, restUnsupported: true });
    const result = await pullFrom(server).run();
    expectVerified(result);
    expect(server.log.retrs.map((r) => r.offset)).to.deep.equal([0, 0]);
    expect(server.log.commands.filter((c) => c.startsWith('REST'))).to.deep.equal([`REST ${HALF}`]);
    expect(result.restarts).to.equal(1);
  });

  it('a server without SIZE: pulled and verified by digest, remote size unknown', async function () {
    const server = await startFake({ sizeUnsupported: true });
    const result = await pullFrom(server).run();
    expectVerified(result);
    expect(result.remoteSize).to.equal(null);
  });

  it('transient failures beyond --retries: transfer-failed with the last reply code', async function () {
    const server = await startFake({ pasv425: 100 });
    const result = await pullFrom(server, { retries: 2 }).run();
    expect(result).to.include({ outcome: 'transfer-failed', replyCode: 425, attempts: 3 });
  });

  it('progress events count up to the image size with a rate and an ETA', async function () {
    const server = await startFake();
    const puller = pullFrom(server, { progressIntervalMs: 0 });
    const seen: number[] = [];
    let withEta = 0;
    puller.on('progress', (p) => {
      seen.push(p.bytes);
      if (p.totalBytes === IMAGE.length && p.etaMs !== null) withEta++;
    });
    expectVerified(await puller.run());
    expect(seen.at(-1)).to.equal(IMAGE.length);
    expect(seen.every((b, i) => i === 0 || b >= seen[i - 1]!)).to.equal(true);
    expect(withEta).to.be.above(0);
  });

  it('an abort during a stalled transfer ends the pull at once and leaves nothing', async function () {
    const server = await startFake({ cutRetrs: 1, cutAtBytes: HALF, cutMode: 'stall' });
    const controller = new AbortController();
    const puller = pullFrom(server, { signal: controller.signal, timeoutMs: 10_000, progressIntervalMs: 0 });
    puller.on('progress', (p) => {
      if (p.bytes >= HALF) controller.abort();
    });
    const started = Date.now();
    const result = await puller.run();
    expect(result.outcome).to.equal('interrupted');
    expect(Date.now() - started).to.be.below(5_000);
    expectOnlyFiles(dir, []);
  });
});

/**
 * An FTPS server that upgrades on AUTH TLS and logs in, but refuses PROT P (534). basic-ftp's own
 * login ignores a refused PROT and goes on to PASV and a TLS data connection the server does not
 * expect; a pull with `tls` must stop at the refusal, with its reply code, instead.
 */
describe('pull: FTPS whose server refuses PROT P', function () {
  this.timeout(20_000);
  const TLS_DIR = join(PROJECT_ROOT, 'fixtures', 'tls');
  let control: Server | null = null;
  const sockets = new Set<Socket>();
  let dir: string;
  afterEach(async () => {
    for (const socket of sockets) socket.destroy();
    sockets.clear();
    if (control) await new Promise<void>((resolve) => control!.close(() => resolve()));
    control = null;
    rmSync(dir, { recursive: true, force: true });
    await expectNoWorkersLeft();
  });

  it('fails the pull with 534 before any PASV or RETR, and leaves nothing', async function () {
    dir = mkdtempSync(join(tmpdir(), 'swfw-pull-prot-'));
    const commands: string[] = [];
    const serve = (socket: Socket | TLSSocket, onAuth: () => void) => {
      let buffer = '';
      const reply = (text: string) => socket.write(`${text}\r\n`);
      const onData = (chunk: Buffer) => {
        buffer += chunk.toString('latin1');
        for (let end; (end = buffer.indexOf('\r\n')) !== -1; ) {
          const line = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          const verb = line.split(' ')[0]!.toUpperCase();
          commands.push(verb);
          if (verb === 'AUTH') {
            socket.off('data', onData);
            reply('234 Proceed with negotiation');
            return onAuth();
          }
          if (verb === 'USER') reply('331 Password required');
          else if (verb === 'PASS') reply('230 Login successful');
          else if (verb === 'OPTS' || verb === 'TYPE' || verb === 'PBSZ') reply(`200 ${verb} ok`);
          else if (verb === 'PROT') reply('534 Request denied for policy reasons');
          else reply('502 Command not implemented');
        }
      };
      socket.on('data', onData);
    };
    control = createServer((raw) => {
      sockets.add(raw);
      raw.on('error', () => {});
      raw.write('220 fake FTPS ready\r\n');
      serve(raw, () => {
        const secure = new TLSSocket(raw, { isServer: true, key: readFileSync(join(TLS_DIR, 'server.key')), cert: readFileSync(join(TLS_DIR, 'server.crt')) });
        secure.on('error', () => {});
        serve(secure, () => secure.destroy());
      });
    });
    control.listen(0, '127.0.0.1');
    await once(control, 'listening');
    const port = (control.address() as AddressInfo).port;
    const target = parseFtpUrl(`ftp://switch@127.0.0.1:${port}${IMAGE_PATH}`);
    if ('problem' in target) throw new Error(target.problem);
    const result = await new Puller({
      target,
      password: 'secret',
      out: join(dir, 'image.bin'),
      reference: { digests: { sha256: SHA256 }, size: IMAGE.length },
      tls: { ca: readFileSync(join(TLS_DIR, 'server.crt')) },
      retries: 3,
      backoff: { baseMs: 5, maxMs: 20 },
    }).run();
    expect(result).to.include({ outcome: 'transfer-failed', replyCode: 534, attempts: 1 });
    expect(commands).to.include.members(['AUTH', 'USER', 'PASS', 'PBSZ', 'PROT']);
    expect(commands.filter((c) => c === 'PASV' || c === 'EPSV' || c === 'RETR')).to.deep.equal([]);
    expectOnlyFiles(dir, []);
  });
});
