import { expect } from 'chai';
import { createHash, randomBytes } from 'node:crypto';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError } from '../../src/core/errors.js';
import { addImage, checkCatalog, findImage, loadCatalog, loadCatalogForServing, CatalogError } from '../../src/catalog/index.js';
import { hashFile, FileChangedError } from '../../src/verify/hashFile.js';
import { InlineHasher } from '../../src/verify/hasher.js';
import { RecordingLogger } from '../helpers/recordingLogger.js';
import { FIXTURE_IMAGES } from '../helpers/testServer.js';

const digest = (algorithm: string, data: Buffer) => createHash(algorithm).update(data).digest('hex');

describe('image catalog (files in a temp images directory)', function () {
  let dir: string;
  let images: string;
  const cisco = randomBytes(300_000);
  const dell = randomBytes(9 * 1024 * 1024 + 5); // above the inline limit: hashed on workers

  beforeEach(function () {
    dir = mkdtempSync(join(tmpdir(), 'swfw-catalog-'));
    images = join(dir, 'images');
    mkdirSync(join(images, 'cisco'), { recursive: true });
    mkdirSync(join(images, 'dell'), { recursive: true });
    writeFileSync(join(images, 'cisco', 'c9300.bin'), cisco);
    writeFileSync(join(images, 'dell', 'os10.bin'), dell);
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('hashFile: one pass, every algorithm, small (inline) and large (workers) files', async function () {
    for (const [file, data] of [
      ['cisco/c9300.bin', cisco],
      ['dell/os10.bin', dell],
    ] as const) {
      const result = await hashFile(join(images, file), ['sha256', 'md5', 'sha512', 'sha1']);
      expect(result.size).to.equal(data.length);
      expect(result.digests).to.deep.equal({ sha256: digest('sha256', data), md5: digest('md5', data), sha512: digest('sha512', data), sha1: digest('sha1', data) });
    }
    const empty = join(images, 'empty.bin');
    writeFileSync(empty, '');
    expect((await hashFile(empty, ['sha256'])).digests.sha256).to.equal(digest('sha256', Buffer.alloc(0)));
  });

  it('hashFile notices a file that changes while it is read', async function () {
    const file = join(images, 'dell', 'os10.bin');
    // A hasher whose first update rewrites the file: the digests describe no state of it.
    const hasher = new InlineHasher(['sha256']);
    const update = hasher.update.bind(hasher);
    let touched = false;
    hasher.update = async (batch, length) => {
      if (!touched) {
        touched = true;
        writeFileSync(file, randomBytes(100));
      }
      return update(batch, length);
    };
    let error: unknown = null;
    await hashFile(file, ['sha256'], { hasher }).catch((err: unknown) => (error = err));
    expect(error).to.be.instanceOf(FileChangedError);
  });

  it('add: records size, mtime and all three digests; accepts matching vendor digests (Cisco MD5+SHA-512, Juniper SHA-1)', async function () {
    const added = await addImage(images, 'cisco/c9300.bin', {
      platform: 'cisco-ios-xe',
      version: '17.09.04a',
      vendor: { md5: digest('md5', cisco), sha512: digest('sha512', cisco), sha1: digest('sha1', cisco) },
    });
    expect(added.added).to.equal(true);
    const catalog = await loadCatalog(images);
    expect(catalog.images).to.have.length(1);
    const entry = catalog.images[0]!;
    expect(entry).to.deep.include({ file: 'cisco/c9300.bin', size: cisco.length, sha256: digest('sha256', cisco), md5: digest('md5', cisco), sha1: digest('sha1', cisco) });
    expect(entry.vendorChecked).to.deep.equal(['md5', 'sha512', 'sha1']);
    expect(findImage(catalog, '/cisco/c9300.bin')).to.equal(entry);
    expect(findImage(catalog, 'c9300.bin')).to.equal(entry);
    expect(findImage(catalog, 'nope.bin')).to.equal(null);
    // No temp file is left next to the catalog (written by temp + fsync + rename).
    expect(readdirSync(images).sort()).to.deep.equal(['catalog.json', 'cisco', 'dell']);
  });

  it('add: refuses a vendor digest that does not match, and writes nothing', async function () {
    const result = await addImage(images, join(images, 'dell', 'os10.bin'), { platform: 'dell-os10', version: '10.5.6.0', vendor: { sha256: 'f'.repeat(64) } });
    expect(result).to.deep.include({ added: false, mismatched: ['sha256'] });
    expect(readdirSync(images)).not.to.include('catalog.json');
  });

  it('add: refuses files outside the images directory, also through a symlink, and bad labels', async function () {
    const outside = join(dir, 'outside.bin');
    writeFileSync(outside, 'x');
    symlinkSync(outside, join(images, 'link.bin'));
    for (const file of [outside, 'link.bin', 'missing.bin']) {
      let error: unknown = null;
      await addImage(images, file, { platform: 'p', version: 'v', vendor: {}, cwd: dir }).catch((err: unknown) => (error = err));
      expect(error, file).to.be.instanceOf(CatalogError);
    }
    let error: unknown = null;
    await addImage(images, 'cisco/c9300.bin', { platform: 'bad platform', version: 'v', vendor: {} }).catch((err: unknown) => (error = err));
    expect(String(error)).to.include('--platform');
  });

  it('check: ok, then drift (content), missing (deleted); an mtime-only change is not drift', async function () {
    await addImage(images, 'cisco/c9300.bin', { platform: 'cisco-ios-xe', version: '17.09.04a', vendor: {} });
    await addImage(images, 'dell/os10.bin', { platform: 'dell-os10', version: '10.5.6.0', vendor: {} });
    writeFileSync(join(images, 'uncatalogued.bin'), 'x');
    let report = await checkCatalog(images);
    expect(report.ok).to.equal(true);
    expect(report.uncatalogued).to.deep.equal(['uncatalogued.bin']);
    utimesSync(join(images, 'cisco', 'c9300.bin'), new Date(), new Date(Date.now() + 60_000));
    report = await checkCatalog(images);
    expect(report.ok).to.equal(true);
    expect(report.results.find((r) => r.file === 'cisco/c9300.bin')).to.include({ state: 'ok', mtimeChanged: true });
    const flipped = Buffer.from(cisco);
    flipped[10]! ^= 1;
    writeFileSync(join(images, 'cisco', 'c9300.bin'), flipped);
    rmSync(join(images, 'dell', 'os10.bin'));
    report = await checkCatalog(images);
    expect(report.ok).to.equal(false);
    expect(report.results).to.deep.equal([
      { file: 'cisco/c9300.bin', state: 'drift', changes: ['sha256', 'md5', 'sha512'], mtimeChanged: true },
      { file: 'dell/os10.bin', state: 'missing', changes: ['file not found'], mtimeChanged: false },
    ]);
  });

  it('an invalid catalog is refused with one problem per line, each with its path', async function () {
    writeFileSync(join(images, 'catalog.json'), JSON.stringify({ format: 'swfw-catalog', version: 1, images: [{ file: '../x' }] }));
    let error: unknown = null;
    await loadCatalog(images).catch((err: unknown) => (error = err));
    expect(error).to.be.instanceOf(ConfigError);
    const paths = (error as ConfigError).problems.map((p) => p.path);
    expect(paths[0]).to.equal(`${join(images, 'catalog.json')}: images[0].file`);
    expect(paths).to.include(`${join(images, 'catalog.json')}: images[0].sha256`);
    writeFileSync(join(images, 'catalog.json'), '{ not json');
    error = null;
    await loadCatalog(images).catch((err: unknown) => (error = err));
    expect((error as ConfigError).problems[0]!.message).to.match(/not valid JSON/);
  });

  describe('loadCatalogForServing', function () {
    it('serves unchanged images without re-reading them, re-hashes changed ones, refuses drifted and missing ones loudly', async function () {
      for (const [file, platform] of [
        ['cisco/c9300.bin', 'cisco-ios-xe'],
        ['dell/os10.bin', 'dell-os10'],
      ] as const) {
        await addImage(images, file, { platform, version: '1.0', vendor: {} });
      }
      writeFileSync(join(images, 'gone.bin'), 'soon gone');
      await addImage(images, 'gone.bin', { platform: 'x', version: '1', vendor: {} });
      rmSync(join(images, 'gone.bin'));
      // dell: touched (mtime only) → re-hashed and still served.
      utimesSync(join(images, 'dell', 'os10.bin'), new Date(), new Date(Date.now() + 60_000));
      const logger = new RecordingLogger();
      let statuses = await loadCatalogForServing(images, logger);
      expect(Object.fromEntries([...statuses].map(([k, v]) => [k, [v.serve, v.state]]))).to.deep.equal({
        'cisco/c9300.bin': [true, 'verified'],
        'dell/os10.bin': [true, 'rehashed'],
        'gone.bin': [false, 'missing'],
      });
      expect(logger.records.filter((r) => r.level === 'error').map((r) => r.fields['file'])).to.deep.equal(['gone.bin']);

      // cisco: same size, one byte changed, mtime changed → drifted, not served, logged at error with both digests.
      const flipped = Buffer.from(cisco);
      flipped[cisco.length - 1]! ^= 0x80;
      writeFileSync(join(images, 'cisco', 'c9300.bin'), flipped);
      // Kernel timestamps are coarse (a few ms): make the mtime change certain, as any real edit has.
      utimesSync(join(images, 'cisco', 'c9300.bin'), new Date(), new Date(Date.now() + 120_000));
      const second = new RecordingLogger();
      statuses = await loadCatalogForServing(images, second);
      const drifted = statuses.get('cisco/c9300.bin')!;
      expect(drifted).to.deep.include({ serve: false, state: 'drifted', reason: 'sha256 differs' });
      expect(drifted.current!.sha256).to.equal(digest('sha256', flipped));
      const loud = second.records.find((r) => r.level === 'error' && r.fields['file'] === 'cisco/c9300.bin')!;
      expect(loud.message).to.match(/DRIFTED/);
      expect(loud.fields).to.include({ expectedSha256: digest('sha256', cisco), actualSha256: digest('sha256', flipped) });
    });

    it('a truncated image is drifted by size', async function () {
      await addImage(images, 'cisco/c9300.bin', { platform: 'cisco-ios-xe', version: '1', vendor: {} });
      writeFileSync(join(images, 'cisco', 'c9300.bin'), cisco.subarray(0, 1000));
      const statuses = await loadCatalogForServing(images, new RecordingLogger());
      expect(statuses.get('cisco/c9300.bin')).to.deep.include({ serve: false, state: 'drifted', reason: `size ${cisco.length} -> 1000` });
    });

    it('a symlink swapped in that leads out of the repository is not served', async function () {
      await addImage(images, 'cisco/c9300.bin', { platform: 'cisco-ios-xe', version: '1', vendor: {} });
      const outside = join(dir, 'evil.bin');
      writeFileSync(outside, cisco);
      rmSync(join(images, 'cisco', 'c9300.bin'));
      symlinkSync(outside, join(images, 'cisco', 'c9300.bin'));
      const statuses = await loadCatalogForServing(images, new RecordingLogger());
      expect(statuses.get('cisco/c9300.bin')).to.deep.include({ serve: false, state: 'missing', reason: 'resolves outside the images directory' });
    });

    it('no catalog: an empty map and a warning; a broken catalog throws ConfigError', async function () {
      const logger = new RecordingLogger();
      expect((await loadCatalogForServing(images, logger)).size).to.equal(0);
      expect(logger.records.some((r) => r.level === 'warn')).to.equal(true);
      writeFileSync(join(images, 'catalog.json'), '[]');
      let error: unknown = null;
      await loadCatalogForServing(images, logger).catch((err: unknown) => (error = err));
      expect(error).to.be.instanceOf(ConfigError);
    });

    it('the fixtures catalog is valid and every fixture image verifies (re-hashed when a checkout changed mtimes)', async function () {
      const copy = join(dir, 'fixtures');
      cpSync(FIXTURE_IMAGES, copy, { recursive: true });
      const catalog = await loadCatalog(copy);
      expect(catalog.images.map((e) => [e.file, e.platform, e.version])).to.deep.equal([
        ['arista/EOS-4.31.2F.swi', 'arista-eos', '4.31.2F'],
        ['aruba/ArubaOS-CX_6300_10_13_1000.swi', 'aruba-aoscx', '10.13.1000'],
        ['cisco/c2960x-universalk9-mz.152-7.E8.bin', 'cisco-ios', '15.2(7)E8'],
        ['cisco/c9300-universalk9.17.09.04a.SPA.bin', 'cisco-ios-xe', '17.09.04a'],
        ['cisco/nxos64-cs.10.3.4a.M.bin', 'cisco-nxos', '10.3(4a)'],
        ['dell/OS10_10.5.6.0.bin', 'dell-os10', '10.5.6.0'],
        ['hpe/S5130EI-CMW710-R3506P10.ipe', 'comware', '3506P10'],
        ['juniper/junos-arm-32-23.4R2-S2.1.tgz', 'juniper-junos', '23.4R2-S2.1'],
      ]);
      for (const entry of catalog.images) {
        const data = readFileSync(join(FIXTURE_IMAGES, entry.file));
        expect(entry).to.include({ size: data.length, sha256: digest('sha256', data), md5: digest('md5', data), sha512: digest('sha512', data) });
      }
      const statuses = await loadCatalogForServing(copy, new RecordingLogger());
      expect([...statuses.values()].every((s) => s.serve)).to.equal(true);
      expect((await checkCatalog(FIXTURE_IMAGES)).ok).to.equal(true);
    });
  });
});
