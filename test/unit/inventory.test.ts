import { expect } from 'chai';
import { join } from 'node:path';
import { PROJECT_ROOT } from '../../src/config/loader.js';
import { fingerprintProblem, fingerprintsEqual, ftpUrlParts, hostKeyFingerprint, redactSecrets } from '../../src/switches/index.js';
import { resolveInventoryAddresses, validateInventory } from '../../src/rollout/inventory.js';
import { siteWindow, validatePlan } from '../../src/rollout/plan.js';
import { readDocument } from '../../src/rollout/document.js';

const sw = (extra: Record<string, unknown> = {}) => ({ name: 'a', address: '10.0.0.1', driver: 'cisco-ios', credentials: { username: 'u', passwordEnv: 'P' }, ...extra });
const paths = (raw: unknown) => validateInventory(raw, '/').problems.list.map((p) => `${p.path}: ${p.message}`);

describe('inventory and plan validation', function () {
  it('redacts passwords in URLs and literal secrets', function () {
    expect(redactSecrets('copy ftp://sw-1:pa%40ss@10.0.0.5:2121/x.bin flash:')).to.equal('copy ftp://sw-1:***@10.0.0.5:2121/x.bin flash:');
    expect(redactSecrets('a hunter2 b', ['hunter2'])).to.equal('a *** b');
    expect(ftpUrlParts('ftp://sw-1:pa%40ss@10.0.0.5:2121/cisco/x.bin')).to.deep.equal({ host: '10.0.0.5', port: 2121, user: 'sw-1', password: 'pa@ss', path: '/cisco/x.bin' });
    expect(ftpUrlParts('ftp://u:p@[fd00::5]/x.bin').host).to.equal('fd00::5');
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
      const ok = validateInventory({ switches: [sw({ hostKey: FP })] }, '/');
      expect(ok.problems.list).to.deep.equal([]);
      expect(ok.switches[0]!.hostKey).to.equal(FP);
      expect(validateInventory({ switches: [sw()] }, '/').switches[0]!.hostKey).to.equal(null);
      const bad = validateInventory({ switches: [sw({ hostKey: FP }), sw({ name: 'b', hostKey: 'aa:bb:cc' })] }, '/');
      expect(bad.problems.list.map((p) => p.path)).to.deep.equal(['switches[1].hostKey']);
      expect(bad.problems.list[0]!.message).to.match(/SHA256/);
    });

    it("the plan's hostKeys policy defaults to pinned and refuses unknown values", function () {
      const base = { targets: { x: 'y' }, server: { address: '127.0.0.1', images: '/tmp' } };
      expect(validatePlan(base, '/').plan!.hostKeys).to.equal('pinned');
      expect(validatePlan({ ...base, hostKeys: 'trust-on-first-use' }, '/').plan!.hostKeys).to.equal('trust-on-first-use');
      expect(validatePlan({ ...base, hostKeys: 'any' }, '/').problems.list.map((p) => p.path)).to.deep.equal(['hostKeys']);
    });
  });

  it('ftpSource, vrf, sshWeakAlgorithms and enable secrets: accepted when right, one line per problem with its path', function () {
    const { switches, problems } = validateInventory(
      {
        switches: [
          sw({ ftpSource: '10.9.0.0/24', vrf: 'management', sshWeakAlgorithms: ['diffie-hellman-group1-sha1'], credentials: { username: 'u', passwordEnv: 'P', enablePasswordFile: 'enable.pw' } }),
          sw({ name: 'b', ftpSource: '::FFFF:10.9.0.7' }),
        ],
      },
      '/etc/swfw',
    );
    expect(problems.list).to.deep.equal([]);
    expect(switches[0]).to.deep.include({ ftpSource: '10.9.0.0/24', vrf: 'management', sshWeakAlgorithms: ['diffie-hellman-group1-sha1'] });
    expect(switches[0]!.credentials).to.deep.include({ enablePasswordFile: '/etc/swfw/enable.pw' });
    expect(switches[1]!.ftpSource).to.equal('10.9.0.7');
    expect(paths({ switches: [sw({ ftpSource: 'switch-source.example' })] })).to.deep.equal([
      'switches[0].ftpSource: "switch-source.example" is not an IPv4 or IPv6 address or CIDR block (the address or CIDR block the switch\'s FTP connections come from)',
    ]);
    expect(paths({ switches: [sw({ ftpSource: '10.0.0.0/40' })] })[0]).to.match(/^switches\[0\]\.ftpSource: "10\.0\.0\.0\/40" has an invalid prefix length/);
    expect(paths({ switches: [sw({ vrf: 'bad vrf' })] })).to.deep.equal(['switches[0].vrf: must be a VRF name (letters, digits, _ . : -)']);
    expect(paths({ switches: [sw({ sshWeakAlgorithms: ['arcfour', 'ssh-dss'] })] })[0]).to.match(/^switches\[0\]\.sshWeakAlgorithms: unknown "arcfour" \(allowed: diffie-hellman-group1-sha1, ssh-dss/);
    expect(paths({ switches: [sw({ credentials: { username: 'u', passwordEnv: 'P', enablePasswordEnv: 'E', enablePasswordFile: 'f' } })] })).to.deep.equal([
      'switches[0].credentials: needs at most one of enablePasswordEnv or enablePasswordFile',
    ]);
    expect(paths({ switches: [sw({ address: 'not a host!' })] })).to.deep.equal(['switches[0].address: must be an IPv4 or IPv6 address or a DNS name']);
    expect(paths({ switches: [sw({ driver: 'brocade-fos' }), sw({ name: 'b', driver: 'aruba-aoscx' })] })).to.deep.equal([]);
  });

  it('addresses: IPs are kept as they are, names resolved once (a failure is kept for the pre-check)', async function () {
    const { switches } = validateInventory({ switches: [sw(), sw({ name: 'b', address: 'leaf-1.example.net' }), sw({ name: 'c', address: 'gone.example.net' })] }, '/');
    expect(switches.map((s) => s.resolvedAddress)).to.deep.equal(['10.0.0.1', null, null]);
    const asked: string[] = [];
    await resolveInventoryAddresses(switches, async (name) => {
      asked.push(name);
      if (name === 'leaf-1.example.net') return '::ffff:10.0.0.2';
      throw Object.assign(new Error('no'), { code: 'ENOTFOUND' });
    });
    expect(asked.sort()).to.deep.equal(['gone.example.net', 'leaf-1.example.net']);
    expect(switches.map((s) => [s.resolvedAddress, s.resolveError])).to.deep.equal([
      ['10.0.0.1', null],
      ['10.0.0.2', null],
      [null, 'the name gone.example.net does not resolve (ENOTFOUND)'],
    ]);
  });

  it('the plan: sshWeakAlgorithms and timeouts.hashBytesPerSecond', function () {
    const base = { targets: { x: 'y' }, server: { address: '127.0.0.1', images: '/tmp' } };
    const plain = validatePlan(base, '/').plan!;
    expect([plain.sshWeakAlgorithms, plain.hashBytesPerSecond]).to.deep.equal([[], null]);
    const set = validatePlan({ ...base, sshWeakAlgorithms: ['ssh-dss'], timeouts: { hashBytesPerSecond: 3_000_000 } }, '/').plan!;
    expect([set.sshWeakAlgorithms, set.hashBytesPerSecond]).to.deep.equal([['ssh-dss'], 3_000_000]);
    const bad = validatePlan({ ...base, sshWeakAlgorithms: 'ssh-dss', timeouts: { hashBytesPerSecond: 5 } }, '/').problems.list.map((p) => p.path);
    expect(bad).to.deep.equal(['timeouts.hashBytesPerSecond', 'sshWeakAlgorithms']);
  });

  it("the plan's sites: each site's concurrency, window or time zone, and threshold; one line per problem with its path; the window a site works in", function () {
    const base = { targets: { x: 'y' }, window: { start: '22:00', end: '04:00', timeZone: 'UTC' }, server: { address: '127.0.0.1', images: '/tmp' } };
    const { plan } = validatePlan(
      { ...base, sites: { paris: { concurrency: 3, timeZone: 'Europe/Paris' }, austin: { window: { notBefore: '2026-12-01T01:00:00-06:00' }, failureThreshold: { maxFailed: 2 } } } },
      '/',
    );
    expect(plan!.sites['paris']).to.deep.equal({ concurrency: 3, window: null, timeZone: 'Europe/Paris', maxFailed: null, maxFailedPercent: null });
    expect(siteWindow(plan!, 'paris')).to.deep.equal({ kind: 'daily', start: '22:00', end: '04:00', timeZone: 'Europe/Paris' });
    expect(siteWindow(plan!, 'austin')).to.deep.equal({ kind: 'absolute', notBefore: Date.parse('2026-12-01T07:00:00Z'), notAfter: null });
    expect(siteWindow(plan!, 'berlin')).to.deep.equal({ kind: 'daily', start: '22:00', end: '04:00', timeZone: 'UTC' });
    expect(plan!.sites['austin']!.maxFailed).to.equal(2);
    const bad = validatePlan({ ...base, sites: { 'a:b': {}, ok: { concurrency: 0, timeZone: 'Mars/Olympus', window: { start: '25:00', end: '01:00', timeZone: 'UTC' }, failureThreshold: { maxFailedPercent: 101 }, colour: 'red' } } }, '/');
    expect(bad.problems.list.map((p) => `${p.path}: ${p.message}`)).to.deep.equal([
      'sites.a:b: a site name is letters, digits, _ and - (as swfw agent --site takes it)',
      'sites.ok.colour: unknown key (known: concurrency, timeZone, window, failureThreshold)',
      'sites.ok.timeZone: unknown IANA time zone (e.g. Europe/Berlin, UTC)',
      'sites.ok.failureThreshold.maxFailedPercent: must be a whole number in 0-100',
      'sites.ok.concurrency: must be a whole number in 1-1000',
      'sites.ok.window.start: must be HH:MM (24 h)',
    ]);
  });

  it('the example plan and inventory in config/ are valid', async function () {
    const plan = validatePlan(await readDocument(join(PROJECT_ROOT, 'config', 'rollout.example.yaml')), join(PROJECT_ROOT, 'config'));
    expect(plan.problems.list).to.deep.equal([]);
    const inventory = validateInventory(await readDocument(join(PROJECT_ROOT, 'config', 'inventory.example.yaml')), join(PROJECT_ROOT, 'config'));
    expect(inventory.problems.list).to.deep.equal([]);
    expect(inventory.switches.map((s) => s.driver)).to.deep.equal(['cisco-ios-xe', 'cisco-nxos', 'cisco-ios']);
  });
});
