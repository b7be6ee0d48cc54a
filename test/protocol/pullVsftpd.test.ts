import { expect } from 'chai';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Puller, parseFtpUrl, type PullOptions } from '../../src/client/index.js';
import { entryDigests, findImage, loadCatalog } from '../../src/catalog/index.js';
import { FIXTURE_IMAGES } from '../helpers/testServer.js';
import { startVsftpd, type Vsftpd } from '../helpers/vsftpd.js';
import { expectNoWorkersLeft, expectOnlyFiles } from '../helpers/pullCheck.js';

/** This suite's passive ports (inside the pull suites' 43000-43099). */
const PASV = { min: 43050, max: 43054 };
const SLOW_PASV = { min: 43055, max: 43059 };
const CISCO = 'cisco/c9300-universalk9.17.09.04a.SPA.bin';
const ARUBA = 'aruba/ArubaOS-CX_6300_10_13_1000.swi';

describe('pull from a real vsftpd (anonymous, read-only)', function () {
  this.timeout(20_000);
  let vsftpd: Vsftpd;
  let dir: string;

  before(async () => {
    vsftpd = await startVsftpd([join(FIXTURE_IMAGES, CISCO), join(FIXTURE_IMAGES, ARUBA)], PASV);
  });
  after(async () => {
    await vsftpd?.stop();
  });
  beforeEach(() => (dir = mkdtempSync(join(tmpdir(), 'swfw-pull-vsftpd-'))));
  afterEach(async () => {
    rmSync(dir, { recursive: true, force: true });
    await expectNoWorkersLeft();
  });

  async function pullImage(image: string, options: Partial<PullOptions> = {}) {
    const catalog = await loadCatalog(FIXTURE_IMAGES);
    const entry = findImage(catalog, image)!;
    const name = image.split('/').pop()!;
    const target = parseFtpUrl(`ftp://anonymous@${vsftpd.host}:${vsftpd.port}/${name}`);
    if ('problem' in target) throw new Error(target.problem);
    const result = await new Puller({
      target,
      password: 'anonymous@',
      out: join(dir, name),
      reference: { digests: entryDigests(entry), size: entry.size },
      retries: 1,
      backoff: { baseMs: 5, maxMs: 20 },
      ...options,
    }).run();
    return { result, entry, name };
  }

  it('PASV (as a switch does): verified against the catalog, SIZE and byte count agree', async function () {
    const { result, entry, name } = await pullImage(CISCO);
    expect(result.outcome, result.reason).to.equal('verified');
    expect(result).to.include({ bytes: entry.size, remoteSize: entry.size, attempts: 1 });
    expect(readFileSync(join(dir, name)).equals(readFileSync(join(FIXTURE_IMAGES, CISCO)))).to.equal(true);
    expectOnlyFiles(dir, [name]);
  });

  it('EPSV: verified', async function () {
    const { result } = await pullImage(ARUBA, { passive: 'epsv' });
    expect(result.outcome, result.reason).to.equal('verified');
  });

  it('a vsftpd session killed mid-transfer: reconnects and resumes with REST (a real server honouring REST)', async function () {
    // A second vsftpd, rate-limited so the transfer is still running when its session is killed.
    const slow = await startVsftpd([join(FIXTURE_IMAGES, CISCO)], SLOW_PASV, ['anon_max_rate=400000']);
    try {
      const catalog = await loadCatalog(FIXTURE_IMAGES);
      const entry = findImage(catalog, CISCO)!;
      const name = CISCO.split('/').pop()!;
      const target = parseFtpUrl(`ftp://anonymous@${slow.host}:${slow.port}/${name}`);
      if ('problem' in target) throw new Error(target.problem);
      const puller = new Puller({
        target,
        password: 'anonymous@',
        out: join(dir, name),
        reference: { digests: entryDigests(entry), size: entry.size },
        retries: 2,
        backoff: { baseMs: 5, maxMs: 20 },
        progressIntervalMs: 0,
      });
      let killed: number[] = [];
      puller.on('progress', (p) => {
        if (killed.length === 0 && p.bytes >= 200_000) {
          killed = slow.sessionPids();
          for (const pid of killed) process.kill(pid, 'SIGKILL');
        }
      });
      const result = await puller.run();
      expect(killed.length, 'session processes killed').to.be.above(0);
      expect(result.outcome, result.reason).to.equal('verified');
      expect(result.restOffsets).to.have.length(1);
      expect(result.restOffsets[0]).to.be.within(200_000, entry.size - 1);
      expect(result.attempts).to.equal(2);
      expectOnlyFiles(dir, [name]);
    } finally {
      await slow.stop();
    }
  });

  it("vsftpd's 550 for a missing file fails at once", async function () {
    const target = parseFtpUrl(`ftp://anonymous@${vsftpd.host}:${vsftpd.port}/missing.bin`);
    if ('problem' in target) throw new Error(target.problem);
    const result = await new Puller({ target, password: 'x', out: join(dir, 'm.bin'), reference: null, retries: 3 }).run();
    expect(result).to.include({ outcome: 'transfer-failed', replyCode: 550, attempts: 1 });
    expectOnlyFiles(dir, []);
  });
});
