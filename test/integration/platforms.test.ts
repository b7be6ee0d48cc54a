/**
 * Every FTP-capable platform end to end: a rollout over emulated switches of that platform (each
 * personality written from SWITCH-CLI-REFERENCE.md, not from the drivers), verified, plus one
 * failure case each; each platform's pager handled with paging still on; and a mixed fleet of every
 * platform at once on the default settings.
 */
import { expect } from 'chai';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FIXTURE_IMAGES, startTestServer, type TestServer } from '../helpers/testServer.js';
import { testRunner } from '../helpers/rollout.js';
import { EmulatedFleet, MIXED_PLATFORMS, parseFaults } from '../../src/switches/emulator/index.js';
import { DIALECTS } from '../../src/switches/index.js';
import { CliSession } from '../../src/switches/cliSession.js';
import { SshConnection } from '../../src/switches/ssh.js';
import { validateInventory, type InventorySwitch } from '../../src/rollout/inventory.js';
import { validatePlan } from '../../src/rollout/plan.js';
import { writeReports, type RunSummary } from '../../src/rollout/index.js';

const PASV = '44020-44024';
const SSH_PORT = 47120;
const PASSWORD = 'platform-test-pass';
const ENV = { SWFW_SWITCH_PASSWORD: PASSWORD };
type Image = { file: string; platform: string; version: string; size: number; sha256: string; md5: string; sha512: string };
const catalog = JSON.parse(readFileSync(join(FIXTURE_IMAGES, 'catalog.json'), 'utf8')) as { images: Image[] };
const imageOf = (platform: string) => catalog.images.find((i) => i.platform === platform)!;
const TARGETS = Object.fromEntries(Object.keys(DIALECTS).map((p) => [p, imageOf(p).file]));

/** Per platform: the algorithm its switch verifies with, and a fault on switch 2 with the failure it must cause. */
const CASES: Record<string, { algorithm: string; fault: string; failure: RegExp; verdict?: string }> = {
  'cisco-ios': { algorithm: 'md5', fault: '2:corrupt=4096', failure: /differ|mismatch|corrupt/i, verdict: 'corrupted-in-transit' },
  'cisco-ios-xe': { algorithm: 'sha512', fault: '2:cut=100000', failure: /^the switch's copy failed: .*%Error reading/ },
  'cisco-nxos': { algorithm: 'sha256', fault: '2:flash=300000', failure: /^not enough flash: \d+ bytes free, 655363 needed$/ },
  'arista-eos': { algorithm: 'sha512', fault: '2:cut=100000', failure: /^the switch's copy failed: / },
  'juniper-junos': { algorithm: 'sha256', fault: '2:corrupt=1', failure: /differ|mismatch|corrupt/i, verdict: 'corrupted-in-transit' },
  // An .ipe bundle unpacks beside itself: 1.5 × the image is not enough.
  comware: { algorithm: 'sha256', fault: `2:flash=${Math.floor(imageOf('comware').size * 1.5)}`, failure: /^not enough flash: \d+ bytes free, 655386 needed$/ },
  'dell-os10': { algorithm: 'sha256', fault: '2:dlfail', failure: /^the switch's copy failed: Failed/ },
};

describe('every FTP-capable platform over the emulator', function () {
  this.timeout(120_000);
  let server: TestServer;
  let fleet: EmulatedFleet | null = null;
  let dir: string;

  before(async () => {
    server = await startTestServer(PASV);
  });
  beforeEach(() => (dir = mkdtempSync(join(tmpdir(), 'swfw-platforms-'))));
  afterEach(async () => {
    await fleet?.stop();
    fleet = null;
    rmSync(dir, { recursive: true, force: true });
  });
  after(() => server.stop());

  const inventoryOf = (f: EmulatedFleet): InventorySwitch[] => {
    const { switches, problems } = validateInventory(f.inventory({ username: 'admin', passwordEnv: 'SWFW_SWITCH_PASSWORD' }), dir);
    expect(problems.list).to.deep.equal([]);
    return switches;
  };
  const rollout = async (switches: InventorySwitch[], extra: Record<string, unknown> = {}): Promise<RunSummary> => {
    const { plan, problems } = validatePlan({ targets: TARGETS, waves: { canary: 0 }, concurrency: 8, server: { address: '127.0.0.1', images: FIXTURE_IMAGES, pasvRange: PASV }, ...extra }, dir);
    expect(problems.list).to.deep.equal([]);
    return testRunner(join(dir, 'state'), server, { plan: plan!, inventory: switches, env: ENV }).run();
  };

  for (const [platform, c] of Object.entries(CASES)) {
    it(`${platform}: verified with ${c.algorithm}; ${c.fault.slice(2)} fails as it should`, async function () {
      fleet = await EmulatedFleet.start({ count: 2, platform, sshPort: SSH_PORT, firstOctet: 60, password: PASSWORD, faults: parseFaults(c.fault, 2), ftpTimeoutMs: 5000 });
      const image = imageOf(platform);
      const summary = await rollout(inventoryOf(fleet));
      const good = summary.state.switches.get('emu-001')!;
      expect(good.outcome, good.reason ?? '').to.equal('verified');
      expect(good.hashes).to.deep.include({ catalogSha256: image.sha256, serverSha256: image.sha256, switchAlgorithm: c.algorithm });
      expect(good.hashes!.switchDigests[c.algorithm]).to.equal((image as unknown as Record<string, string>)[c.algorithm]);
      expect(good.precheck).to.deep.include({ reachable: true, onFlash: 'absent' });
      const bad = summary.state.switches.get('emu-002')!;
      expect(bad.outcome).to.equal('failed');
      expect(bad.reason).to.match(c.failure);
      if (c.verdict) expect(bad.verdict).to.equal(c.verdict);
      // The report shows how this platform's FTP client behaved.
      const reports = await writeReports(join(dir, 'reports'), summary.state);
      const report = JSON.parse(readFileSync(reports.json, 'utf8')) as { ftpSequences: { driver: string; commands: string[] }[] };
      expect(report.ftpSequences.map((q) => q.driver)).to.deep.equal([platform]);
      expect(report.ftpSequences[0]!.commands.some((x) => /^RETR /.test(x))).to.equal(true);
      // A second run of the same plan finds the image on flash and transfers nothing.
      rmSync(join(dir, 'state'), { recursive: true, force: true });
      const before = server.transfers.length;
      const again = await rollout(inventoryOf(fleet).slice(0, 1));
      expect(again.state.switches.get('emu-001')).to.include({ outcome: 'verified', transfers: 0 });
      expect(again.state.switches.get('emu-001')!.precheck).to.deep.include({ onFlash: 'match' });
      expect(server.transfers.length).to.equal(before);
    });
  }

  it("each platform's pager is answered: with paging still on, long output reads the same as with it off", async function () {
    fleet = await EmulatedFleet.start({ count: MIXED_PLATFORMS.length, platform: 'mixed', sshPort: SSH_PORT, firstOctet: 70, password: PASSWORD });
    for (const sw of fleet.switches) {
      const dialect = DIALECTS[sw.driver]!;
      const connection = await SshConnection.connect({ host: sw.address, port: SSH_PORT, username: 'admin', password: PASSWORD, timeoutMs: 5000, hostKey: { pinned: sw.hostKey } });
      try {
        // A short terminal: every page break the platform has shows up.
        const cli = await CliSession.start(await connection.openShell({ cols: 200, rows: 6 }, 5000), { grammar: dialect.prompt, timeoutMs: 5000 });
        if (dialect.privilege && cli.promptEnd === dialect.privilege.unprivilegedEnd) await cli.run(dialect.privilege.command, { silenceMs: 5000 });
        const command = dialect.inventoryCommands[0]!;
        const paged = (await cli.run(command, { silenceMs: 5000 })).output;
        for (const setup of dialect.setupCommands) await cli.run(setup, { silenceMs: 5000 });
        const whole = (await cli.run(command, { silenceMs: 5000 })).output;
        const squash = (t: string) => t.split('\n').map((l) => l.trim()).filter(Boolean);
        expect(whole.split('\n').length, `${sw.driver}: ${command} is longer than a page`).to.be.greaterThan(6);
        expect(squash(paged), `${sw.driver}: ${command}`).to.deep.equal(squash(whole));
        cli.close();
      } finally {
        await connection.close();
      }
    }
  });

  it('a mixed fleet of every FTP-capable platform is verified on the default settings', async function () {
    const count = MIXED_PLATFORMS.length * 2;
    fleet = await EmulatedFleet.start({ count, platform: 'mixed', sshPort: SSH_PORT, firstOctet: 80, password: PASSWORD });
    const switches = inventoryOf(fleet);
    expect(new Set(switches.map((s) => s.driver))).to.deep.equal(new Set(Object.keys(DIALECTS)));
    const summary = await rollout(switches, { concurrency: undefined });
    const failed = [...summary.state.switches.values()].filter((s) => s.outcome !== 'verified').map((s) => `${s.name} (${s.driver}): ${s.reason}`);
    expect(failed).to.deep.equal([]);
    const reports = await writeReports(join(dir, 'reports'), summary.state);
    const report = JSON.parse(readFileSync(reports.json, 'utf8')) as { ftpSequences: { driver: string }[]; switches: { ssh: string | null }[] };
    expect(report.ftpSequences.map((q) => q.driver).sort()).to.deep.equal(Object.keys(DIALECTS).sort());
    expect(report.switches.every((s) => s.ssh !== null)).to.equal(true);
  });

  it('aruba-aos-switch and brocade-fos fail their pre-check naming the protocols they support; nothing is logged into or transferred', async function () {
    fleet = await EmulatedFleet.start({ count: 1, sshPort: SSH_PORT, firstOctet: 90, password: PASSWORD });
    const [sw] = inventoryOf(fleet);
    const unsupported = ['aruba-aos-switch', 'brocade-fos'].map((driver) => ({ ...sw!, name: driver, driver, platform: 'aruba-aoscx' }));
    const before = server.transfers.length;
    const summary = await rollout(unsupported, { targets: { 'aruba-aoscx': imageOf('aruba-aoscx').file } });
    const reasons = Object.fromEntries([...summary.state.switches.values()].map((s) => [s.name, [s.outcome, s.verdict, s.reason]]));
    for (const driver of ['aruba-aos-switch', 'brocade-fos']) expect(reasons[driver]!.slice(0, 2)).to.deep.equal(['failed', 'unsupported-platform']);
    expect(reasons['aruba-aos-switch']![2]).to.match(/^ArubaOS-Switch \(ProVision\) cannot pull over FTP.*\(supported protocols: tftp, sftp, usb, xmodem\)$/);
    expect(reasons['brocade-fos']![2]).to.match(/^Brocade FOS is not supported: firmwaredownload fetches a release directory/);
    expect(fleet.authAttempts('emu-001')).to.equal(0);
    expect(server.transfers.length).to.equal(before);
  });
});
