/**
 * Aruba AOS-CX end to end: the aruba-aoscx driver (REST download + SSH `show images`) against the
 * emulator's AOS-CX personality, whose REST server really downloads the grant URL from swfw's
 * HTTPS server out of the switch's own address and hashes what it wrote into the slot. Then a
 * mixed fleet: FTP switches and AOS-CX switches in one rollout.
 */
import { expect } from 'chai';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PROJECT_ROOT } from '../../src/config/loader.js';
import { FIXTURE_IMAGES, startTestServer, type TestServer } from '../helpers/testServer.js';
import { testRunner } from '../helpers/rollout.js';
import { EmulatedFleet, parseFaults } from '../../src/switches/emulator/index.js';
import { validateInventory, type InventorySwitch } from '../../src/rollout/inventory.js';
import { validatePlan } from '../../src/rollout/plan.js';
import type { RunSummary } from '../../src/rollout/index.js';
import { AosCxRest } from '../../src/switches/aoscx/rest.js';

const PASV = '44045-44049';
const SSH_PORT = 47150;
const REST_PORT = 47151;
const PASSWORD = 'aoscx-test-pass';
const ENV = { SWFW_SWITCH_PASSWORD: PASSWORD };
const TLS_CERT = join(PROJECT_ROOT, 'fixtures', 'tls', 'server.crt');
const TLS_KEY = join(PROJECT_ROOT, 'fixtures', 'tls', 'server.key');
/** The CA the emulated switches trust (their TA profile): swfw's self-signed test certificate. */
const TRUST_CA = readFileSync(TLS_CERT, 'utf8');
type Image = { file: string; platform: string; version: string; size: number; sha256: string };
const catalog = JSON.parse(readFileSync(join(FIXTURE_IMAGES, 'catalog.json'), 'utf8')) as { images: Image[] };
const imageOf = (platform: string) => catalog.images.find((i) => i.platform === platform)!;
const AOSCX = imageOf('aruba-aoscx');
const TARGETS = { 'aruba-aoscx': AOSCX.file, 'cisco-ios-xe': imageOf('cisco-ios-xe').file, 'arista-eos': imageOf('arista-eos').file };

describe('aruba-aoscx over its REST API, against the emulator', function () {
  this.timeout(120_000);
  let server: TestServer;
  const fleets: EmulatedFleet[] = [];
  let dir: string;

  before(async () => {
    server = await startTestServer(PASV, { flags: { https: '127.0.0.1:0', http: '127.0.0.1:0', tlsCert: TLS_CERT, tlsKey: TLS_KEY } });
  });
  beforeEach(() => (dir = mkdtempSync(join(tmpdir(), 'swfw-aoscx-'))));
  afterEach(async () => {
    await Promise.all(fleets.splice(0).map((f) => f.stop()));
    rmSync(dir, { recursive: true, force: true });
  });
  after(() => server.stop());

  const start = async (options: { count: number; firstOctet: number; faults?: string; platform?: string; trustCa?: string | null }) => {
    const fleet = await EmulatedFleet.start({
      count: options.count,
      platform: options.platform ?? 'aruba-aoscx',
      sshPort: SSH_PORT,
      restPort: REST_PORT,
      firstOctet: options.firstOctet,
      password: PASSWORD,
      faults: parseFaults(options.faults, options.count),
      ftpTimeoutMs: 5000,
      ...(options.trustCa === null ? {} : { trustCa: options.trustCa ?? TRUST_CA }),
    });
    fleets.push(fleet);
    return fleet;
  };
  const inventoryOf = (fleet: EmulatedFleet, edit: (s: Record<string, unknown>) => Record<string, unknown> = (s) => s): InventorySwitch[] => {
    const raw = fleet.inventory({ username: 'admin', passwordEnv: 'SWFW_SWITCH_PASSWORD' });
    const { switches, problems } = validateInventory({ switches: raw.switches.map(edit) }, dir);
    expect(problems.list).to.deep.equal([]);
    return switches;
  };
  const rollout = async (switches: InventorySwitch[], extra: Record<string, unknown> = {}, state = 'state', onServer: TestServer = server): Promise<RunSummary> => {
    const { plan, problems } = validatePlan({ targets: TARGETS, waves: { canary: 0 }, concurrency: 8, server: { address: '127.0.0.1', images: FIXTURE_IMAGES, pasvRange: PASV }, ...extra }, dir);
    expect(problems.list).to.deep.equal([]);
    return testRunner(join(dir, state), onServer, { plan: plan!, inventory: switches, env: ENV }).run();
  };

  it('downloads into the non-booted slot over HTTPS and verifies its SHA-256; a broken download and a corrupted slot fail as they should; REST sessions are logged out', async function () {
    const fleet = await start({ count: 6, firstOctet: 110, faults: '2:dlfail,3:corrupt=4096,4:put400,5:statusfail=2,6:statusfail=3' });
    const before = server.transfers.length;
    const summary = await rollout(inventoryOf(fleet));
    const good = summary.state.switches.get('emu-001')!;
    expect(good.outcome, good.reason ?? '').to.equal('verified');
    expect(good.precheck).to.deep.include({ reachable: true, model: 'AOS-CX 6300', version: '10.12.1010', onFlash: 'differs', freeBytes: null });
    expect(good.hashes).to.deep.include({ catalogSha256: AOSCX.sha256, serverSha256: AOSCX.sha256, switchAlgorithm: 'sha256' });
    expect(good.hashes!.switchDigests['sha256']).to.equal(AOSCX.sha256);
    // The server's own evidence: one complete HTTPS transfer to the switch's address, from a grant URL.
    const records = server.transfers.slice(before).filter((r) => r.client === '127.0.1.110');
    expect(records.map((r) => [r.protocol, r.result, r.offset, r.bytes, r.sha256])).to.deep.equal([['https', 'complete', 0, AOSCX.size, AOSCX.sha256]]);
    expect(records[0]!.user).to.match(/^sw-[0-9a-f]{12}$/);
    expect(records[0]!.dataPort).to.equal(null);

    const broken = summary.state.switches.get('emu-002')!;
    expect(broken.outcome).to.equal('failed');
    expect(broken.reason).to.match(/^the switch's copy failed: the switch's download failed: Failed to download the image: /);
    expect(broken.reason).to.not.match(/\/grant\/sw-[0-9a-f]+\.[\w-]{10,}/);

    const corrupted = summary.state.switches.get('emu-003')!;
    expect(corrupted.outcome).to.equal('failed');
    expect(corrupted.verdict).to.equal('corrupted-in-transit');
    expect(corrupted.hashes!.serverSha256).to.equal(AOSCX.sha256);
    expect(corrupted.hashes!.switchDigests['sha256']).to.not.equal(AOSCX.sha256);

    // A PUT answered 400 "Firmware upgrade in progress" that downloads anyway: the status decides.
    expect(summary.state.switches.get('emu-004')!.outcome).to.equal('verified');
    // Two failed reads of firmware/status are waited out; a third in a row ends the wait.
    const busy = summary.state.switches.get('emu-005')!;
    expect(busy.outcome, busy.reason ?? '').to.equal('verified');
    const unreadable = summary.state.switches.get('emu-006')!;
    expect(unreadable.outcome).to.equal('failed');
    expect(unreadable.reason).to.match(/firmware\/status.*500/);

    for (const sw of fleet.switches) {
      const rest = fleet.restSessions(sw.name)!;
      expect(rest.logins, sw.name).to.be.greaterThan(0);
      expect(rest, sw.name).to.deep.include({ open: 0, logouts: rest.logins });
    }

    // A second run finds the image already in the other slot: verified with no transfer.
    const again = await rollout(inventoryOf(fleet).slice(0, 1), {}, 'state-again');
    expect(again.state.switches.get('emu-001')).to.include({ outcome: 'verified', transfers: 0 });
    expect(again.state.switches.get('emu-001')!.precheck).to.deep.include({ onFlash: 'match' });
  });

  it("a download already running on the switch (an earlier run's) is waited for, through failed status reads, then the rollout's own is made and verified", async function () {
    // statusfail=2: the first two firmware/status reads after the earlier PUT (the rollout's baseline) answer 500.
    const fleet = await start({ count: 1, firstOctet: 118, faults: '1:slow=400000,1:statusfail=2' });
    const sw = fleet.switches[0]!;
    // The earlier download: someone else's grant, started through the switch's REST API.
    const earlier = await server.server.grantOneTimeAccess({ sourceAddress: sw.address, imagePath: AOSCX.file, validForMs: 60_000 });
    const rest = await AosCxRest.login({ host: sw.address, port: REST_PORT, username: 'admin', password: PASSWORD, certificate: { pinned: sw.rest!.certificateFingerprint }, timeoutMs: 5000 });
    try {
      const url = `https://127.0.0.1:${server.server.httpEndpoints().https!.port}${earlier.httpPath}`;
      expect((await rest.put(`/firmware?image=secondary&from=${encodeURIComponent(url)}&vrf=mgmt`)).status).to.equal(200);
      const summary = await rollout(inventoryOf(fleet));
      const result = summary.state.switches.get('emu-001')!;
      expect(result.outcome, result.reason ?? '').to.equal('verified');
      // Both downloads reached the server, one after the other; the verdict rests on the rollout's own.
      const mine = server.transfers.filter((r) => r.client === sw.address && r.result === 'complete').map((r) => r.user);
      expect(mine).to.have.length(2);
      expect(mine[0]).to.equal(earlier.user);
      expect(result.hashes!.serverSha256).to.equal(AOSCX.sha256);
    } finally {
      earlier.revoke();
      await rest.logout();
    }
  });

  it('a release before 10.04 is told it cannot download from a URL, with no REST login and nothing served', async function () {
    const fleet = await start({ count: 1, firstOctet: 115, faults: '1:version=FL.10.03.0040' });
    const before = server.transfers.length;
    const summary = await rollout(inventoryOf(fleet));
    const sw = summary.state.switches.get('emu-001')!;
    expect(sw.outcome).to.equal('failed');
    expect(sw.reason).to.match(/AOS-CX FL\.10\.03\.0040 cannot download an image from a URL: the REST API needs 10\.04 or later/);
    expect(fleet.restSessions('emu-001')!.logins).to.equal(0);
    expect(server.transfers.length).to.equal(before);
  });

  it("the REST certificate is pinned like a host key: a wrong pin fails before the login is sent; trust on first use records it", async function () {
    const fleet = await start({ count: 2, firstOctet: 120 });
    const wrongPin = 'SHA256:RNTSzYdiEhVngbBW4szPoTrgdw8aNaHIznyVUK3xeWQ';
    const pinned = await rollout(inventoryOf(fleet, (s) => (s['name'] === 'emu-001' ? { ...s, restCertificate: wrongPin } : s)));
    const impostor = pinned.state.switches.get('emu-001')!;
    expect(impostor.outcome).to.equal('failed');
    expect(impostor.verdict).to.equal('host-key-mismatch');
    expect(impostor.reason).to.match(/^HTTPS certificate mismatch: expected SHA256:RNTS/);
    expect(fleet.restSessions('emu-001')!.logins).to.equal(0);
    expect(pinned.state.switches.get('emu-002')!.outcome).to.equal('verified');

    // No pins at all under trust-on-first-use: both keys are journaled before the passwords go out.
    const unpinned = inventoryOf(fleet, (s) => {
      const { hostKey: _h, restCertificate: _c, ...rest } = s;
      return rest;
    });
    const strict = await rollout(unpinned.slice(1), {}, 'state-strict');
    expect(strict.state.switches.get('emu-002')!.reason).to.equal('no pinned host key');
    const tofu = await rollout(unpinned.slice(1), { hostKeys: 'trust-on-first-use' }, 'state-tofu');
    expect(tofu.state.switches.get('emu-002')!.outcome).to.equal('verified');
    const journal = readFileSync(join(dir, 'state-tofu', 'journal.jsonl'), 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>);
    const keys = journal.filter((r) => r['t'] === 'host-key').map((r) => [r['service'] ?? 'ssh', r['fingerprint']]);
    expect(keys).to.deep.equal([
      ['ssh', fleet.switches[1]!.hostKey],
      ['https', fleet.switches[1]!.rest!.certificateFingerprint],
    ]);
  });

  it("a switch that does not trust swfw's certificate fails its download and says why", async function () {
    const fleet = await start({ count: 1, firstOctet: 125, trustCa: null });
    const summary = await rollout(inventoryOf(fleet));
    const sw = summary.state.switches.get('emu-001')!;
    expect(sw.outcome).to.equal('failed');
    expect(sw.reason).to.match(/SSL certificate problem.*the switch does not trust the server's certificate: add it .* crypto pki ta-profile/);
    expect(sw.reason).to.not.match(/ftpSource/);
  });

  it('a switch that downloads from another address gets 404 for its grant URL and is told to set ftpSource; with it set, verified', async function () {
    const fleet = await start({ count: 1, firstOctet: 127, faults: '1:ftpsource=127.0.2.127' });
    // The emulator's inventory names the source; an inventory written by hand may not.
    const withoutSource = inventoryOf(fleet, ({ ftpSource: _source, ...s }) => s);
    const refused = (await rollout(withoutSource)).state.switches.get('emu-001')!;
    expect(refused.outcome).to.equal('failed');
    expect(refused.reason).to.match(/HTTP 404.*if the switch sources HTTP\(S\) from another address, set ftpSource/);
    expect(inventoryOf(fleet)[0]!.ftpSource).to.equal('127.0.2.127');
    const named = await rollout(inventoryOf(fleet), {}, 'state-named');
    const verified = named.state.switches.get('emu-001')!;
    expect(verified.outcome, verified.reason ?? '').to.equal('verified');
  });

  it('a server with no HTTP(S) fails AOS-CX switches before any login; with HTTP only, they download over HTTP', async function () {
    const fleet = await start({ count: 1, firstOctet: 130 });
    const ftpOnly = await startTestServer('44050-44054');
    try {
      const summary = await rollout(inventoryOf(fleet), {}, 'state-ftp-only', ftpOnly);
      const sw = summary.state.switches.get('emu-001')!;
      expect(sw.outcome).to.equal('failed');
      expect(sw.reason).to.match(/downloads over https or http only and the server serves neither: set server\.https/);
      expect(fleet.authAttempts('emu-001')).to.equal(0);
    } finally {
      await ftpOnly.stop();
    }
    const httpOnly = await startTestServer('44050-44054', { flags: { http: '127.0.0.1:0' } });
    try {
      const summary = await rollout(inventoryOf(fleet), {}, 'state-http-only', httpOnly);
      expect(summary.state.switches.get('emu-001')!.outcome, summary.state.switches.get('emu-001')!.reason ?? '').to.equal('verified');
      expect(httpOnly.transfers.map((r) => [r.protocol, r.result])).to.deep.equal([['http', 'complete']]);
    } finally {
      await httpOnly.stop();
    }
  });

  it('a mixed fleet: FTP switches and AOS-CX switches in one rollout, each over its own protocol, all verified', async function () {
    const ftpSwitches = await start({ count: 4, firstOctet: 140, platform: 'mixed' });
    const cx = await start({ count: 3, firstOctet: 150 });
    // Two fleets both name their switches emu-NNN: the AOS-CX ones are renamed cx-emu-NNN.
    const switches = [...inventoryOf(ftpSwitches), ...inventoryOf(cx, (s) => ({ ...s, name: `cx-${String(s['name'])}` }))].filter((s) => s.driver in TARGETS || s.driver === 'aruba-aoscx');
    const mixedTargets = Object.fromEntries(switches.map((s) => [s.platform, catalog.images.find((i) => i.platform === s.platform)!.file]));
    const before = server.transfers.length;
    const summary = await rollout(switches, { targets: mixedTargets, concurrency: 4 });
    const failed = [...summary.state.switches.values()].filter((s) => s.outcome !== 'verified').map((s) => `${s.name} (${s.driver}): ${s.reason}`);
    expect(failed).to.deep.equal([]);
    const records = server.transfers.slice(before);
    const byProtocol = (p: string) => records.filter((r) => r.protocol === p && r.result === 'complete').length;
    expect(byProtocol('ftp')).to.equal(switches.filter((s) => s.driver !== 'aruba-aoscx').length);
    expect(byProtocol('https')).to.equal(3);
    // Only FTP data connections use the passive range; HTTPS has none.
    for (const r of records) {
      if (r.protocol === 'ftp') expect(r.dataPort).to.be.within(server.pasvMin, server.pasvMax);
      else expect(r.dataPort).to.equal(null);
    }
  });
});
