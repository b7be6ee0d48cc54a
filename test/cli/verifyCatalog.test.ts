import { expect } from 'chai';
import { createHash } from 'node:crypto';
import { cpSync, mkdtempSync, readFileSync, readdirSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli } from '../helpers/cli.js';
import { FIXTURE_IMAGES } from '../helpers/testServer.js';

const CISCO = 'cisco/c9300-universalk9.17.09.04a.SPA.bin';
const bytes = readFileSync(join(FIXTURE_IMAGES, CISCO));
const hex = (algorithm: string, data: Buffer = bytes) => createHash(algorithm).update(data).digest('hex');

describe('swfw verify and swfw catalog (the built CLI)', function () {
  this.timeout(30_000);
  let dir: string;
  let images: string;

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'swfw-cli-catalog-'));
    images = join(dir, 'images');
    cpSync(FIXTURE_IMAGES, images, { recursive: true });
    rmSync(join(images, 'catalog.json'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  describe('verify', function () {
    const file = join(FIXTURE_IMAGES, CISCO);

    it('exit 0 when every digest asked for matches (Cisco: MD5 + SHA-512), one line per algorithm', async function () {
      const result = await runCli(['verify', file, '--md5', hex('md5'), '--sha512', hex('sha512')]);
      expect(result.code, result.stderr).to.equal(0);
      expect(result.stdout).to.equal(`md5 OK ${hex('md5')}\nsha512 OK ${hex('sha512')}\n`);
    });

    it('exit 3 when one digest differs', async function () {
      const result = await runCli(['verify', file, '--sha256', hex('sha256'), '--md5', '0'.repeat(32)]);
      expect(result.code).to.equal(3);
      expect(result.stdout).to.include(`sha256 OK ${hex('sha256')}`);
      expect(result.stdout).to.include(`md5 MISMATCH expected ${'0'.repeat(32)} got ${hex('md5')}`);
    });

    it('--catalog checks size and all catalog digests; --json gives the verdict', async function () {
      let result = await runCli(['verify', file, '--catalog', FIXTURE_IMAGES, '--json']);
      expect(result.code, result.stderr).to.equal(0);
      const json = JSON.parse(result.stdout) as Record<string, unknown>;
      expect(json).to.include({ verdict: 'verified', ok: true, image: CISCO, bytes: bytes.length });
      expect(json['digests']).to.deep.equal({ sha256: hex('sha256'), md5: hex('md5'), sha512: hex('sha512') });
      const truncated = join(dir, 'short.bin');
      writeFileSync(truncated, bytes.subarray(0, 1000));
      result = await runCli(['verify', truncated, '--catalog', FIXTURE_IMAGES, '--image', CISCO, '--json']);
      expect(result.code).to.equal(3);
      expect(JSON.parse(result.stdout)).to.include({ verdict: 'truncated', ok: false });
    });

    it('exit 2 without a reference, with both kinds, for a missing file or an unknown image', async function () {
      for (const args of [
        ['verify', file],
        ['verify', file, '--sha256', hex('sha256'), '--catalog', FIXTURE_IMAGES],
        ['verify', join(dir, 'nope.bin'), '--sha256', hex('sha256')],
        ['verify', file, '--catalog', FIXTURE_IMAGES, '--image', 'unknown.bin'],
        ['verify', file, '--sha256', 'xyz'],
      ]) {
        const result = await runCli(args);
        expect(result.code, `${args.join(' ')}: ${result.stderr}`).to.equal(2);
      }
    });
  });

  describe('catalog', function () {
    it('add (cross-checked), list, list --json, check; the catalog file is written atomically', async function () {
      let result = await runCli(['catalog', 'add', join(images, CISCO), '--platform', 'cisco-ios-xe', '--version', '17.09.04a', '--md5', hex('md5'), '--sha512', hex('sha512'), '--images', images]);
      expect(result.code, result.stderr).to.equal(0);
      expect(result.stdout).to.match(/^added cisco\/c9300.* \(vendor md5\+sha512 matched\)/);
      result = await runCli(['catalog', 'add', 'dell/OS10_10.5.6.0.bin', '--platform', 'dell-os10', '--version', '10.5.6.0', '--images', images]);
      expect(result.code, result.stderr).to.equal(0);
      expect(readdirSync(images).sort()).to.deep.equal(['arista', 'aruba', 'catalog.json', 'cisco', 'dell', 'hpe', 'juniper']);
      result = await runCli(['catalog', 'list', '--images', images]);
      expect(result.stdout.split('\n')[0]).to.match(/^PLATFORM\s+VERSION\s+SIZE\s+SHA256\s+FILE$/);
      expect(result.stdout).to.match(/cisco-ios-xe\s+17\.09\.04a\s+1\.0 MiB\s+[0-9a-f]{16}\s+cisco\/c9300/);
      result = await runCli(['catalog', 'list', '--json', '--images', images]);
      const listed = JSON.parse(result.stdout) as { entries: Array<Record<string, unknown>> };
      expect(listed.entries.map((e) => e['file'])).to.deep.equal(['cisco/c9300-universalk9.17.09.04a.SPA.bin', 'dell/OS10_10.5.6.0.bin']);
      expect(listed.entries[0]).to.include({ sha256: hex('sha256'), md5: hex('md5'), sha512: hex('sha512'), size: bytes.length });
      result = await runCli(['catalog', 'check', '--images', images]);
      expect(result.code, result.stdout + result.stderr).to.equal(0);
      expect(result.stdout).to.include('note   aruba/ArubaOS-CX_6300_10_13_1000.swi is not in the catalog');
    });

    it("add refuses a file that does not match the vendor's digest: exit 3, catalog untouched", async function () {
      const result = await runCli(['catalog', 'add', CISCO, '--platform', 'cisco-ios-xe', '--version', '17.09.04a', '--sha256', 'a'.repeat(64), '--images', images]);
      expect(result.code).to.equal(3);
      expect(result.stderr).to.include(`sha256 MISMATCH: vendor published ${'a'.repeat(64)}, file has ${hex('sha256')}`);
      expect(readdirSync(images)).not.to.include('catalog.json');
    });

    it('check reports drift (exit 3) after an image changes on disk', async function () {
      await runCli(['catalog', 'add', CISCO, '--platform', 'cisco-ios-xe', '--version', '17.09.04a', '--images', images]);
      const changed = Buffer.from(bytes);
      changed[0]! ^= 1;
      writeFileSync(join(images, CISCO), changed);
      utimesSync(join(images, CISCO), new Date(), new Date(Date.now() + 60_000));
      const result = await runCli(['catalog', 'check', '--images', images, '--json']);
      expect(result.code).to.equal(3);
      const report = JSON.parse(result.stdout) as { ok: boolean; results: Array<Record<string, unknown>> };
      expect(report.ok).to.equal(false);
      expect(report.results[0]).to.deep.include({ file: CISCO, state: 'drift', changes: ['sha256', 'md5', 'sha512'] });
    });

    it('an invalid catalog: exit 2 with one line per problem and its path', async function () {
      writeFileSync(join(images, 'catalog.json'), JSON.stringify({ format: 'swfw-catalog', version: 1, images: [{ file: '/abs', size: 'big' }] }));
      const result = await runCli(['catalog', 'check', '--images', images]);
      expect(result.code).to.equal(2);
      const lines = result.stderr.trim().split('\n');
      expect(lines.length).to.be.above(3);
      for (const line of lines) expect(line).to.match(new RegExp(`^swfw: config: ${join(images, 'catalog.json')}: images\\[0\\]\\.\\w+: `));
    });

    it('exit 2 for a file outside the images directory or missing --platform', async function () {
      const outside = join(dir, 'x.bin');
      writeFileSync(outside, 'x');
      let result = await runCli(['catalog', 'add', outside, '--platform', 'p', '--version', 'v', '--images', images]);
      expect(result.code).to.equal(2);
      expect(result.stderr).to.match(/outside the images directory/);
      result = await runCli(['catalog', 'add', CISCO, '--version', 'v', '--images', images]);
      expect(result.code).to.equal(2);
    });
  });
});
