import { expect } from 'chai';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { PROJECT_ROOT } from '../../src/config/loader.js';
import { DIALECTS, fingerprintProblem, fingerprintsEqual, ftpUrlParts, hostKeyFingerprint, redactSecrets } from '../../src/switches/index.js';
import { validateInventory } from '../../src/rollout/inventory.js';
import { validatePlan } from '../../src/rollout/plan.js';
import { parseCiscoCopy, parseCiscoDirFree, parseCiscoShowVersion, parseCiscoVerify } from '../../src/switches/dialects/cisco.js';
import { parseComwareCopy, parseComwareDirFree, parseComwareHash, parseComwareVersion } from '../../src/switches/dialects/comware.js';
import { parseOs10DfFree, parseOs10Download, parseOs10Hash, parseOs10ImageStatus, parseOs10Version } from '../../src/switches/dialects/dellOs10.js';
import { parseFosFirmwareDownload, parseFosVersion } from '../../src/switches/dialects/brocadeFos.js';

const transcript = (driver: string, name: string) => readFileSync(join(PROJECT_ROOT, 'fixtures', 'transcripts', driver, `${name}.txt`), 'utf8');
const catalog = JSON.parse(readFileSync(join(PROJECT_ROOT, 'fixtures', 'images', 'catalog.json'), 'utf8')) as { images: { file: string; sha256: string; md5: string; sha512: string }[] };
const image = (prefix: string) => catalog.images.find((i) => i.file.startsWith(prefix))!;

describe('switch dialects against recorded transcripts', function () {
  describe('cisco', function () {
    it('reads model and version from IOS XE and classic IOS', function () {
      expect(parseCiscoShowVersion(transcript('cisco-ios-xe', 'show-version'))).to.deep.equal({ model: 'C9300-48P', version: '17.06.05' });
      expect(parseCiscoShowVersion(transcript('cisco-ios', 'show-version'))).to.deep.equal({ model: 'WS-C2960X-48FPD-L', version: '15.2(7)E8' });
      expect(() => parseCiscoShowVersion('% Invalid input detected')).to.throw(/Version/);
    });
    it('reads free flash', function () {
      expect(parseCiscoDirFree(transcript('cisco-ios-xe', 'dir-flash'))).to.equal(8023285760);
      expect(parseCiscoDirFree(transcript('cisco-ios', 'dir-flash'))).to.equal(95186944);
      expect(DIALECTS['cisco-ios-xe']!.parseInventory([transcript('cisco-ios-xe', 'show-version'), transcript('cisco-ios-xe', 'dir-flash')])).to.deep.equal({
        model: 'C9300-48P',
        version: '17.06.05',
        freeBytes: 8023285760,
      });
    });
    it('judges copy output: OK, overwrite, login error, no space', function () {
      expect(parseCiscoCopy(transcript('cisco-ios-xe', 'copy-ok'))).to.include({ ok: true, bytes: 1048699 });
      expect(parseCiscoCopy(transcript('cisco-ios-xe', 'copy-overwrite'))).to.include({ ok: true, bytes: 1048699 });
      expect(parseCiscoCopy(transcript('cisco-ios-xe', 'copy-error-login')).message).to.match(/Not logged in/);
      const space = parseCiscoCopy(transcript('cisco-ios-xe', 'copy-error-space'));
      expect(space).to.include({ ok: false });
      expect(space.message).to.match(/No space left/);
    });
    it('reads verify /md5 and /sha512, and a missing file as null', function () {
      const c = image('cisco/');
      expect(parseCiscoVerify(transcript('cisco-ios-xe', 'verify-md5'), 'md5')).to.equal(c.md5);
      expect(parseCiscoVerify(transcript('cisco-ios-xe', 'verify-sha512'), 'sha512')).to.equal(c.sha512);
      expect(parseCiscoVerify(transcript('cisco-ios-xe', 'verify-missing'), 'md5')).to.equal(null);
      expect(() => parseCiscoVerify('garbage', 'md5')).to.throw(/verify \/md5/);
    });
    it('builds the copy command and answers its prompts', function () {
      const { command, prompts } = DIALECTS['cisco-ios-xe']!.pullCommand('ftp://u:p@10.0.0.5:2121/cisco/x.bin', 'x.bin');
      expect(command).to.equal('copy ftp://u:p@10.0.0.5:2121/cisco/x.bin flash:x.bin');
      expect(prompts.some((p) => p.match.test('Destination filename [x.bin]? '))).to.equal(true);
      expect(prompts.some((p) => p.match.test('Do you want to over write? [confirm]'))).to.equal(true);
      expect(DIALECTS['cisco-ios-xe']!.hashCommand('x.bin', 'sha256')).to.equal(null);
      expect(DIALECTS['emulated']!.hashCommand('x.bin', 'sha256')).to.equal('verify /sha256 flash:x.bin');
    });
  });

  describe('comware', function () {
    it('reads version, model, free space, copy results and digests', function () {
      expect(parseComwareVersion(transcript('comware', 'display-version'))).to.deep.equal({ model: 'S5130S-28S-EI', version: '6635P07' });
      expect(parseComwareDirFree(transcript('comware', 'dir'))).to.equal(356120 * 1024);
      expect(parseComwareCopy(transcript('comware', 'copy-ok')).ok).to.equal(true);
      const failed = parseComwareCopy(transcript('comware', 'copy-failed'));
      expect(failed.ok).to.equal(false);
      const a = image('aruba/');
      expect(parseComwareHash(transcript('comware', 'sha256sum'), 'sha256')).to.equal(a.sha256);
      expect(parseComwareHash(transcript('comware', 'md5sum'), 'md5')).to.equal(a.md5);
      expect(DIALECTS['comware']!.hashCommand('f.bin', 'sha512')).to.equal(null);
      expect(DIALECTS['comware']!.pullCommand('ftp://u:p@h/a/f.bin', 'f.bin').prompts[0]!.match.test('Copy … to flash:/f.bin? [Y/N]:')).to.equal(true);
    });
  });

  describe('dell-os10', function () {
    it('reads version, model, free space, background status and digests', function () {
      expect(parseOs10Version(transcript('dell-os10', 'show-version'))).to.deep.equal({ model: 'S5248F-ON', version: '10.5.4.7' });
      expect(parseOs10DfFree(transcript('dell-os10', 'df-image'))).to.equal(10284380 * 1024);
      expect(parseOs10Download(transcript('dell-os10', 'image-download')).ok).to.equal(true);
      expect(parseOs10ImageStatus(transcript('dell-os10', 'image-status-running'))).to.deep.include({ state: 'running', bytes: 471854 });
      expect(parseOs10ImageStatus(transcript('dell-os10', 'image-status-done'))).to.deep.include({ state: 'done', bytes: 1048576 });
      const failed = parseOs10ImageStatus(transcript('dell-os10', 'image-status-failed'));
      expect(failed.state).to.equal('failed');
      expect(failed.message).to.match(/Login incorrect/);
      expect(parseOs10Hash(transcript('dell-os10', 'sha256sum'), 'sha256')).to.equal(image('dell/').sha256);
    });
  });

  describe('brocade-fos', function () {
    it('reads version and model; judges firmwaredownload; has no digest command', function () {
      expect(parseFosVersion(transcript('brocade-fos', 'version'), transcript('brocade-fos', 'switchshow'))).to.deep.equal({ model: 'G620', version: '9.1.1b' });
      expect(parseFosFirmwareDownload(transcript('brocade-fos', 'firmwaredownload-ok')).ok).to.equal(true);
      expect(parseFosFirmwareDownload(transcript('brocade-fos', 'firmwaredownload-failed'))).to.deep.include({ ok: false });
      const { command } = DIALECTS['brocade-fos']!.pullCommand('ftp://sw-1:s3cret@10.0.0.5/brocade/v9.2.0', 'v9.2.0');
      expect(command).to.equal('firmwaredownload -p ftp 10.0.0.5,sw-1,/brocade/v9.2.0,s3cret');
      expect(redactSecrets(command, ['s3cret'])).to.not.include('s3cret');
      expect(DIALECTS['brocade-fos']!.hashCommand('x', 'sha512')).to.equal(null);
    });
  });

  it('redacts passwords in URLs and literal secrets', function () {
    expect(redactSecrets('copy ftp://sw-1:pa%40ss@10.0.0.5:2121/x.bin flash:')).to.equal('copy ftp://sw-1:***@10.0.0.5:2121/x.bin flash:');
    expect(redactSecrets('a hunter2 b', ['hunter2'])).to.equal('a *** b');
    expect(ftpUrlParts('ftp://sw-1:pa%40ss@10.0.0.5:2121/cisco/x.bin')).to.deep.equal({ host: '10.0.0.5', port: 2121, user: 'sw-1', password: 'pa@ss', path: '/cisco/x.bin' });
  });

  describe('host key fingerprints', function () {
    // `ssh-keygen -lf` on this public key prints SHA256:RNTSzYdiEhVngbBW4szPoTrgdw8aNaHIznyVUK3xeWQ.
    const BLOB = Buffer.from('AAAAC3NzaC1lZDI1NTE5AAAAINllBUQDdnpL6laSz2cQNN3/Al9uxelRrjl0hTlKdV0n', 'base64');
    const FP = 'SHA256:RNTSzYdiEhVngbBW4szPoTrgdw8aNaHIznyVUK3xeWQ';

    it('computes the OpenSSH SHA256 fingerprint of a raw key and compares in constant time', function () {
      expect(hostKeyFingerprint(BLOB)).to.equal(FP);
      expect(fingerprintsEqual(FP, FP)).to.equal(true);
      expect(fingerprintsEqual(FP, FP.replace('WQ', 'WR'))).to.equal(false);
      expect(fingerprintsEqual(FP, FP.slice(0, -1))).to.equal(false);
    });

    it('validates the SHA256:<base64> format, in the inventory with its path', function () {
      expect(fingerprintProblem(FP)).to.equal(null);
      for (const bad of [FP.slice(7), `MD5:${FP.slice(7)}`, `${FP}=`, FP.slice(0, -2), `${FP}AAAA`, 'SHA256:' + '!'.repeat(43)]) expect(fingerprintProblem(bad), bad).to.be.a('string');
      const sw = (hostKey: unknown) => ({ name: 'a', address: '10.0.0.1', driver: 'cisco-ios', credentials: { username: 'u', passwordEnv: 'P' }, hostKey });
      const ok = validateInventory({ switches: [sw(FP)] }, '/');
      expect(ok.problems.list).to.deep.equal([]);
      expect(ok.switches[0]!.hostKey).to.equal(FP);
      expect(validateInventory({ switches: [{ ...sw(FP), hostKey: undefined }] }, '/').switches[0]!.hostKey).to.equal(null);
      const bad = validateInventory({ switches: [sw(FP), { ...sw('aa:bb:cc'), name: 'b' }] }, '/');
      expect(bad.problems.list.map((p) => p.path)).to.deep.equal(['switches[1].hostKey']);
      expect(bad.problems.list[0]!.message).to.match(/SHA256/);
    });

    it('the plan\'s hostKeys policy defaults to pinned and refuses unknown values', function () {
      const base = { targets: { x: 'y' }, server: { address: '127.0.0.1', images: '/tmp' } };
      expect(validatePlan(base, '/').plan!.hostKeys).to.equal('pinned');
      expect(validatePlan({ ...base, hostKeys: 'trust-on-first-use' }, '/').plan!.hostKeys).to.equal('trust-on-first-use');
      expect(validatePlan({ ...base, hostKeys: 'any' }, '/').problems.list.map((p) => p.path)).to.deep.equal(['hostKeys']);
    });
  });
});
