import { expect } from 'chai';
import { chmodSync, copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Puller, parseFtpUrl, type PullOptions } from '../../src/client/index.js';
import { entryDigests, findImage, loadCatalog } from '../../src/catalog/index.js';
import { FIXTURE_IMAGES } from '../helpers/testServer.js';
import { createLocalUser, startVsftpd, type Vsftpd } from '../helpers/vsftpd.js';
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

describe('pull from vsftpd as field reports met it', function () {
  this.timeout(30_000);
  const isRoot = process.getuid?.() === 0;
  let dir: string;
  beforeEach(() => (dir = mkdtempSync(join(tmpdir(), 'swfw-pull-vsftpd2-'))));
  afterEach(async () => {
    rmSync(dir, { recursive: true, force: true });
    await expectNoWorkersLeft();
  });

  const reference = async (image: string) => {
    const entry = findImage(await loadCatalog(FIXTURE_IMAGES), image)!;
    return { digests: entryDigests(entry), size: entry.size };
  };

  it('behind NAT (pasv_address=192.168.77.10): the 227 names an unroutable address, its port is used with the control host, verified', async function () {
    const vsftpd = await startVsftpd([join(FIXTURE_IMAGES, CISCO)], PASV, ['pasv_address=192.168.77.10']);
    try {
      const target = parseFtpUrl(`ftp://anonymous@${vsftpd.host}:${vsftpd.port}/${CISCO.split('/').pop()}`);
      if ('problem' in target) throw new Error(target.problem);
      const result = await new Puller({ target, password: 'anonymous@', out: join(dir, 'img.bin'), reference: await reference(CISCO), retries: 0 }).run();
      expect(result.outcome, result.reason).to.equal('verified');
      expect(result).to.include({ attempts: 1, passiveAddressReplaced: true });
    } finally {
      await vsftpd.stop();
    }
  });

  it('a local user whose login directory is not / (chroot_local_user=NO): ftp://user@host/cisco/img.bin is found under the home directory, as curl finds it', async function () {
    if (!isRoot) this.skip(); // creating a system account needs root (CI and the dev machines are root)
    const home = join(dir, 'home');
    mkdirSync(join(home, 'cisco'), { recursive: true });
    copyFileSync(join(FIXTURE_IMAGES, CISCO), join(home, CISCO));
    for (const d of [dir, home, join(home, 'cisco')]) chmodSync(d, 0o755);
    chmodSync(join(home, CISCO), 0o644);
    const user = createLocalUser(home);
    let vsftpd: Vsftpd | null = null;
    try {
      vsftpd = await startVsftpd([], PASV, ['anonymous_enable=NO', 'local_enable=YES', 'chroot_local_user=NO', 'pam_service_name=vsftpd']);
      const pull = async (path: string) => {
        const target = parseFtpUrl(`ftp://${user.name}@${vsftpd!.host}:${vsftpd!.port}${path}`);
        if ('problem' in target) throw new Error(target.problem);
        return new Puller({ target, password: user.password, out: join(dir, 'img.bin'), reference: await reference(CISCO), retries: 0 }).run();
      };
      const relative = await pull(`/${CISCO}`);
      expect(relative.outcome, relative.reason).to.equal('verified');
      // The absolute form names the same file from the server's real root.
      rmSync(join(dir, 'img.bin'));
      const absolute = await pull(`/%2F${home.replace(/^\//, '')}/${CISCO}`);
      expect(absolute.outcome, absolute.reason).to.equal('verified');
    } finally {
      await vsftpd?.stop();
      user.remove();
    }
  });
});
