/**
 * The AOS-CX driver's readers against the transcripts in fixtures/transcripts/aruba-aoscx/ (written
 * from the HPE `show version` / `show images` formats, not from the driver), the grant token's
 * redaction, and the inventory and plan keys REST switches need.
 */
import { expect } from 'chai';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { PROJECT_ROOT } from '../../src/config/loader.js';
import {
  SwitchOutputError,
  aosCxReleaseVersion,
  canPullFromUrl,
  driverFor,
  grantToken,
  parseAosCxShowImages,
  parseAosCxShowVersion,
  redactGrantToken,
} from '../../src/switches/index.js';
import { releaseInImageName } from '../../src/switches/emulator/personalities/aoscx.js';
import { validateInventory } from '../../src/rollout/inventory.js';
import { validatePlan } from '../../src/rollout/plan.js';

const transcript = (name: string) => readFileSync(join(PROJECT_ROOT, 'fixtures', 'transcripts', 'aruba-aoscx', name), 'utf8');
const CATALOG_SHA256 = '6ae3a94d266f6cc715181e83e399294c2ca89592e48e56184f900627326cf3bb';

describe('aruba-aoscx driver: readers, redaction, inventory', function () {
  it('show version: the release with its platform prefix and the active slot', function () {
    expect(parseAosCxShowVersion(transcript('show-version.txt'))).to.deep.equal({ version: 'FL.10.12.1010', activeImage: 'secondary' });
    expect(() => parseAosCxShowVersion(transcript('invalid-command.txt'))).to.throw(SwitchOutputError, /Version/);
  });

  it('show images: each slot with its version and SHA-256, the default and the active slot', function () {
    const images = parseAosCxShowImages(transcript('show-images.txt'));
    expect(images.primary).to.deep.equal({ version: 'FL.10.13.1000', sha256: CATALOG_SHA256 });
    expect(images.secondary!.version).to.equal('FL.10.12.1010');
    expect(images.defaultImage).to.equal('secondary');
    expect(images.activeImage).to.equal('secondary');
  });

  it('show images: a digest cut short is unreadable output, never a verdict; an empty slot is null', function () {
    expect(() => parseAosCxShowImages(transcript('show-images-cut.txt'))).to.throw(SwitchOutputError, /sha256 digest has 58 hex digits/);
    expect(() => parseAosCxShowImages(transcript('invalid-command.txt'))).to.throw(SwitchOutputError, /no "ArubaOS-CX Primary Image"/);
    const empty = transcript('show-images.txt').replace(/(Secondary Image\n-+\n)[\s\S]*?\n\n/, '$1No image found\n\n');
    expect(parseAosCxShowImages(empty).secondary).to.equal(null);
    const noHash = transcript('show-images.txt').replace(/SHA-256 : 0c5a\w+\n/, '');
    expect(() => parseAosCxShowImages(noHash)).to.throw(SwitchOutputError, /secondary image has no SHA-256/);
  });

  it('releases: the catalog form, 10.04 as the first that downloads from a URL, the release in an image name', function () {
    expect(aosCxReleaseVersion('FL.10.13.1000')).to.equal('10.13.1000');
    expect(canPullFromUrl('FL.10.04.0001')).to.equal(true);
    expect(canPullFromUrl('GL.10.13.1000')).to.equal(true);
    expect(canPullFromUrl('TL.10.03.0040')).to.equal(false);
    expect(releaseInImageName('ArubaOS-CX_6300_10_13_1000.swi')).to.equal('10.13.1000');
    expect(releaseInImageName('c9300-universalk9.17.09.04a.SPA.bin')).to.equal(null);
  });

  it('the grant token of an HTTP(S) URL is found and redacted, as passwords in FTP URLs are', function () {
    const url = 'https://192.0.2.10:63002/grant/sw-0a1b2c3d4e5f.Q7m2kxVb3nQz8_xKp2LwRd/aruba/ArubaOS-CX_6300_10_13_1000.swi';
    expect(grantToken(url)).to.equal('sw-0a1b2c3d4e5f.Q7m2kxVb3nQz8_xKp2LwRd');
    expect(redactGrantToken(`Failed to download ${url}`)).to.equal('Failed to download https://192.0.2.10:63002/grant/***/aruba/ArubaOS-CX_6300_10_13_1000.swi');
    // Percent-encoded in a REST query, the token is still removed as a literal secret.
    expect(redactGrantToken(`from=${encodeURIComponent(url)}`, [grantToken(url)!])).to.not.include('Q7m2kx');
    expect(grantToken('ftp://u:p@h/x.bin')).to.equal(null);
  });

  it('the driver downloads over HTTPS, then HTTP, never FTP; CLI drivers over FTP', function () {
    const aoscx = driverFor('aruba-aoscx');
    expect(aoscx.unsupported).to.equal(null);
    expect(aoscx.pullSchemes).to.deep.equal(['https', 'http']);
    expect(aoscx.hashAlgorithms).to.deep.equal(['sha256']);
    expect(driverFor('cisco-ios').pullSchemes).to.deep.equal(['ftp']);
    expect(driverFor('brocade-fos').pullSchemes).to.deep.equal([]);
  });

  it('inventory: restPort defaults to 443, restCertificate is a SHA256 fingerprint, one line per problem', function () {
    const sw = (extra: Record<string, unknown>) => ({ name: 'cx', address: '10.0.0.9', driver: 'aruba-aoscx', credentials: { username: 'admin', passwordEnv: 'P' }, ...extra });
    const ok = validateInventory({ switches: [sw({ restCertificate: 'SHA256:RNTSzYdiEhVngbBW4szPoTrgdw8aNaHIznyVUK3xeWQ' })] }, '/');
    expect(ok.problems.list).to.deep.equal([]);
    expect(ok.switches[0]).to.include({ restPort: 443, restCertificate: 'SHA256:RNTSzYdiEhVngbBW4szPoTrgdw8aNaHIznyVUK3xeWQ' });
    const bad = validateInventory({ switches: [sw({ restPort: 70000, restCertificate: 'AB:CD' })] }, '/');
    expect(bad.problems.list.map((p) => p.path)).to.deep.equal(['switches[0].restPort', 'switches[0].restCertificate']);
    expect(bad.problems.list[1]!.message).to.match(/DER certificate/);
  });

  it('plan: server.https needs tlsCert and tlsKey, paths are relative to the plan', function () {
    const base = { targets: { x: 'y' }, server: { address: '127.0.0.1', images: '/tmp' } };
    expect(validatePlan(base, '/').plan!.server).to.include({ http: null, https: null, tlsCert: null, tlsKey: null });
    const https = validatePlan({ ...base, server: { ...base.server, https: 63002, tlsCert: 'tls/s.crt', tlsKey: 'tls/s.key' } }, '/etc/swfw');
    expect(https.plan!.server).to.include({ https: 63002, tlsCert: '/etc/swfw/tls/s.crt', tlsKey: '/etc/swfw/tls/s.key' });
    expect(validatePlan({ ...base, server: { ...base.server, https: 63002 } }, '/').problems.list.map((p) => `${p.path}: ${p.message}`)).to.deep.equal(['server.https: needs server.tlsCert and server.tlsKey']);
    expect(validatePlan({ ...base, server: { ...base.server, tlsCert: 'c' } }, '/').problems.list.map((p) => `${p.path}: ${p.message}`)).to.deep.equal(['server.tlsCert: needs server.tlsKey too']);
  });
});
