import { expect } from 'chai';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { lookup } from 'node:dns/promises';
import { FIXTURE_IMAGES, startTestServer, type TestServer } from '../helpers/testServer.js';
import { testRunner } from '../helpers/rollout.js';
import { addImage } from '../../src/catalog/index.js';
import { FtpControl } from '../helpers/ftpControl.js';
import { EmulatedFleet, parseFaults } from '../../src/switches/emulator/index.js';
import { resolveInventoryAddresses, validateInventory } from '../../src/rollout/inventory.js';
import { validatePlan, type RolloutPlanConfig } from '../../src/rollout/plan.js';
import { RolloutRunner, foldJournal, readJournal, writeControl, writeReports, JOURNAL_FILE } from '../../src/rollout/index.js';
import type { OneTimeAccess } from '../../src/server/server.js';

const IMAGE = 'cisco/c9300-universalk9.17.09.04a.SPA.bin';
const catalog = JSON.parse(readFileSync(join(FIXTURE_IMAGES, 'catalog.json'), 'utf8')) as { images: { file: string; size: number; sha256: string; sha512: string }[] };
const entry = catalog.images.find((i) => i.file === IMAGE)!;
const SSH_PORT = 47110;
const ENV = { SWFW_SWITCH_PASSWORD: 'rollout-test-pass' };

describe('rollouts over the switch emulator', function () {
  this.timeout(90_000);
  let server: TestServer;
  let fleet: EmulatedFleet | null = null;
  let dir: string;
  const grants: OneTimeAccess[] = [];

  before(async () => {
    server = await startTestServer('44010-44014');
    const grant = server.server.grantOneTimeAccess.bind(server.server);
    server.server.grantOneTimeAccess = async (o) => {
      const access = await grant(o);
      grants.push(access);
      return access;
    };
  });
  beforeEach(() => (dir = mkdtempSync(join(tmpdir(), 'swfw-rollout-'))));
  afterEach(async () => {
    await fleet?.stop();
    fleet = null;
    rmSync(dir, { recursive: true, force: true });
  });
  after(() => server.stop());

  const plan = (extra: Record<string, unknown> = {}): RolloutPlanConfig => {
    const { plan: p, problems } = validatePlan(
      { targets: { 'cisco-ios-xe': IMAGE }, waves: { canary: 1, percent: [50] }, concurrency: 4, server: { address: '127.0.0.1', images: FIXTURE_IMAGES, pasvRange: '44010-44014' }, timeouts: { sshSeconds: 2, pullSeconds: 30 }, ...extra },
      dir,
    );
    expect(problems.list).to.deep.equal([]);
    return p!;
  };
  const startFleet = async (count: number, faults = '', addresses?: string[]) => {
    fleet = await EmulatedFleet.start({
      count,
      sshPort: SSH_PORT,
      firstOctet: 10,
      password: ENV.SWFW_SWITCH_PASSWORD,
      faults: parseFaults(faults, count),
      ftpTimeoutMs: 5000,
      ...(addresses ? { addresses } : {}),
    });
    const { switches, problems } = validateInventory(fleet.inventory({ username: 'admin', passwordEnv: 'SWFW_SWITCH_PASSWORD' }), dir);
    expect(problems.list).to.deep.equal([]);
    return switches;
  };
  const runner = (p: RolloutPlanConfig, inventory: Awaited<ReturnType<typeof startFleet>>, extra: Partial<ConstructorParameters<typeof RolloutRunner>[0]> = {}) =>
    testRunner(dir, server, { plan: p, inventory, env: ENV, ...extra });
  const journal = () => readJournal(join(dir, JOURNAL_FILE)).records;

  it('verifies a good fleet wave by wave, with per-switch credentials refused afterwards', async function () {
    const before = server.transfers.length;
    const inventory = await startFleet(6);
    const summary = await runner(plan(), inventory).run();
    expect(summary.outcome).to.equal('completed');
    expect(summary.state.waves.map((w) => w.length)).to.deep.equal([1, 3, 2]);
    for (const s of summary.state.switches.values()) {
      expect(s.outcome, s.name).to.equal('verified');
      expect(s.hashes).to.deep.include({ catalogSha256: entry.sha256, serverSha256: entry.sha256, switchAlgorithm: 'sha512' });
      expect(s.hashes!.switchDigests['sha512']).to.equal(entry.sha512);
    }
    const audit = server.transfers.slice(before);
    expect(audit.map((t) => t.client).sort()).to.deep.equal(inventory.map((s) => s.address).sort());
    expect(audit.every((t) => t.sha256 === entry.sha256 && t.result === 'complete')).to.equal(true);
    // Waves in order: every canary record comes before the first wave-1 transfer.
    const records = journal();
    const firstWave1 = records.findIndex((r) => r.t === 'wave-start' && r['wave'] === 1);
    expect(records.findIndex((r) => r.t === 'switch' && r['name'] === 'emu-001' && r['phase'] === 'done')).to.be.lessThan(firstWave1);
    // The one-time credentials are dead after the run.
    const access = grants.at(-1)!;
    const control = await FtpControl.connect(server.port, '127.0.0.1', inventory.find((s) => access.user && s.address)!.address);
    await control.read();
    await control.send(`USER ${access.user}`);
    expect((await control.send(`PASS ${access.password}`)).code).to.equal(530);
    control.close();
    const paths = await writeReports(join(dir, 'reports'), summary.state);
    expect(readFileSync(paths.csv, 'utf8').split('\r\n')[1]).to.match(/^emu-001,127\.0\.1\.10,127\.0\.1\.10,cisco-ios-xe,,0,/);
    const html = readFileSync(paths.html, 'utf8');
    expect(html).to.include('emu-006').and.not.include(ENV.SWFW_SWITCH_PASSWORD);
    // The canary's FTP commands, as the platform's first switch sent them, for the admin to read.
    const report = JSON.parse(readFileSync(paths.json, 'utf8')) as { ftpSequences: { driver: string; switch: string; commands: string[] }[] };
    expect(report.ftpSequences).to.have.length(1);
    expect(report.ftpSequences[0]).to.include({ driver: 'cisco-ios-xe', switch: 'emu-001' });
    expect(report.ftpSequences[0]!.commands).to.include.members(['PASS ***', 'TYPE I', 'CWD cisco', 'PASV', `RETR ${IMAGE.split('/')[1]}`]);
    expect(html).to.include('Transfer commands per platform').and.include(`RETR ${IMAGE.split('/')[1]}`);
    expect(readFileSync(join(dir, JOURNAL_FILE), 'utf8')).to.not.include(ENV.SWFW_SWITCH_PASSWORD).and.not.include(access.password);
  });

  it('halts when the canary fails: nothing else is touched', async function () {
    const before = server.transfers.length;
    const inventory = await startFleet(4, '1:corrupt=100');
    const summary = await runner(plan(), inventory).run();
    expect(summary.outcome).to.equal('halted');
    expect(summary.reason).to.match(/canary/);
    const s1 = summary.state.switches.get('emu-001')!;
    expect(s1).to.include({ outcome: 'failed', verdict: 'corrupted-in-transit' });
    expect([...summary.state.switches.values()].filter((s) => s.outcome === null)).to.have.length(3);
    expect(server.transfers.slice(before).map((t) => t.client)).to.deep.equal(['127.0.1.10']);
  });

  it('halts at the failure threshold; failures name their cause', async function () {
    const inventory = await startFleet(8, '2:cut=200000,3:badpass,4:flash=1000');
    const summary = await runner(plan({ concurrency: 1, waves: { canary: 1 }, failureThreshold: { maxFailed: 2 } }), inventory).run();
    expect(summary.outcome).to.equal('halted');
    expect(summary.reason).to.match(/threshold/);
    const by = (n: string) => summary.state.switches.get(n)!;
    expect(by('emu-002').reason).to.match(/copy failed.*%Error reading/);
    expect(by('emu-003')).to.include({ verdict: 'login-refused' });
    expect(by('emu-003').reason).to.match(/: login refused: check the inventory's credentials for this switch$/);
    expect(by('emu-004').reason).to.match(/not enough flash/);
    expect(by('emu-005').outcome).to.equal(null);
  });

  it('pauses and resumes; a closed window stops new switches and a later run finishes without re-transfers', async function () {
    const inventory = await startFleet(4);
    await writeControl(dir, 'pause');
    const running = runner(plan({ waves: { canary: 0 } }), inventory).run();
    await new Promise((resolve) => setTimeout(resolve, 600));
    expect(journal().filter((r) => r.t === 'switch')).to.have.length(0);
    expect(journal().some((r) => r.t === 'control' && r['command'] === 'pause')).to.equal(true);
    await writeControl(dir, 'run');
    expect((await running).outcome).to.equal('completed');

    // Window: a fresh state dir whose deadline has passed starts nothing.
    rmSync(dir, { recursive: true, force: true });
    const closed = await runner(plan({ waves: { canary: 0 } }), inventory, { deadline: Date.now() - 1 }).run();
    expect(closed.outcome).to.equal('window-closed');
    expect([...closed.state.switches.values()].every((s) => s.outcome === null)).to.equal(true);
    // The next window: the images are already on flash from the first run, so nothing is transferred.
    const before = server.transfers.length;
    const next = await runner(plan({ waves: { canary: 0 } }), inventory).run();
    expect(next.outcome).to.equal('completed');
    expect([...next.state.switches.values()].every((s) => s.outcome === 'verified' && s.transfers === 0)).to.equal(true);
    expect(server.transfers.length).to.equal(before);
  });

  it('resumes after a crash (journal cut mid-transfer, torn last line): no lost or duplicated work', async function () {
    const inventory = await startFleet(3);
    const p = plan({ waves: { canary: 0 }, concurrency: 1 });
    await runner(p, inventory).run();
    // What kill -9 during emu-002's transfer leaves: the journal up to its 'transfer' record, and a torn write.
    const path = join(dir, JOURNAL_FILE);
    const lines = readFileSync(path, 'utf8').split('\n');
    const cut = lines.findIndex((l) => l.includes('"name":"emu-002"') && l.includes('"phase":"transfer"'));
    writeFileSync(path, `${lines.slice(0, cut + 1).join('\n')}\n{"seq":99,"t":"swi`);
    const before = server.transfers.length;
    const resumed = await runner(p, inventory).run();
    expect(resumed.outcome).to.equal('completed');
    const records = journal();
    expect(records.every((r) => typeof r.seq === 'number')).to.equal(true); // the torn line was cut
    const state = foldJournal(records);
    expect([...state.switches.values()].map((s) => s.outcome)).to.deep.equal(['verified', 'verified', 'verified']);
    // emu-001 was done: untouched. emu-002 (mid-transfer) and emu-003 (its records lost) were re-checked and
    // found the right bytes on flash: no second transfer for anyone.
    expect(state.switches.get('emu-001')!.attempts).to.equal(1);
    expect(state.switches.get('emu-002')!.attempts).to.equal(2);
    expect(state.switches.get('emu-002')!.reason).to.match(/already on flash/);
    expect(state.switches.get('emu-003')!.reason).to.match(/already on flash/);
    expect(server.transfers.slice(before)).to.deep.equal([]);
    const doneRecords = records.filter((r) => r.t === 'switch' && r['phase'] === 'done');
    expect(doneRecords.map((r) => r['name']).sort()).to.deep.equal(['emu-001', 'emu-002', 'emu-003']);
  });

  it('a wrong pinned host key fails that switch before any login, never transferred; the others go on', async function () {
    const before = server.transfers.length;
    const inventory = await startFleet(3);
    const impostor = inventory[1]!;
    const wrong = inventory[2]!.hostKey!;
    const real = impostor.hostKey!;
    const attempts = fleet!.authAttempts(impostor.name);
    const summary = await runner(plan({ waves: { canary: 0 } }), inventory.map((s) => (s === impostor ? { ...s, hostKey: wrong } : s))).run();
    const s2 = summary.state.switches.get(impostor.name)!;
    expect(s2).to.include({ outcome: 'failed', verdict: 'host-key-mismatch', transfers: 0, attempts: 1 });
    expect(s2.reason).to.equal(`host key mismatch: expected ${wrong}, got ${real} (${impostor.address}:${SSH_PORT})`);
    expect(fleet!.authAttempts(impostor.name)).to.equal(attempts);
    expect(server.transfers.slice(before).map((t) => t.client).sort()).to.deep.equal([inventory[0]!.address, inventory[2]!.address]);
    const paths = await writeReports(join(dir, 'reports'), summary.state);
    expect(readFileSync(paths.json, 'utf8')).to.include('host key mismatch: expected');
  });

  it('pinned (the default): a switch without hostKey fails its pre-check, no password sent', async function () {
    const inventory = await startFleet(2);
    const bare = { ...inventory[1]!, hostKey: null };
    const summary = await runner(plan({ waves: { canary: 0 } }), [inventory[0]!, bare]).run();
    expect(summary.state.switches.get(bare.name)).to.include({ outcome: 'failed', reason: 'no pinned host key', transfers: 0 });
    expect(summary.state.switches.get(bare.name)!.precheck).to.deep.equal({ reachable: false, error: 'no pinned host key' });
    expect(summary.state.switches.get(inventory[0]!.name)!.outcome).to.equal('verified');
    expect(fleet!.authAttempts(bare.name)).to.equal(0);
  });

  it('trust-on-first-use journals the first key seen; a later run of the same rollout holds the switch to it', async function () {
    const inventory = await startFleet(2);
    const bare = inventory.map((s) => ({ ...s, hostKey: null }));
    const first = await runner(plan({ hostKeys: 'trust-on-first-use', waves: { canary: 0 } }), bare, { deadline: 0 }).run();
    expect(first.outcome).to.equal('window-closed');
    const journaled = () => journal().filter((r) => r.t === 'host-key').map((r) => [r['name'], r['fingerprint']]);
    expect(journaled()).to.deep.equal([]);
    // Forge an earlier first use of emu-002 with another key: the resumed run must refuse the switch.
    const { Journal } = await import('../../src/rollout/journal.js');
    const j = Journal.open(join(dir, JOURNAL_FILE));
    await j.append({ t: 'host-key', name: 'emu-002', address: inventory[1]!.address, fingerprint: inventory[0]!.hostKey! });
    await j.close();
    const summary = await runner(plan({ hostKeys: 'trust-on-first-use', waves: { canary: 0 } }), bare).run();
    expect(journaled()).to.deep.equal([
      ['emu-002', inventory[0]!.hostKey],
      ['emu-001', inventory[0]!.hostKey],
    ]);
    expect(summary.state.switches.get('emu-001')!.outcome).to.equal('verified');
    const s2 = summary.state.switches.get('emu-002')!;
    expect(s2).to.include({ outcome: 'failed', verdict: 'host-key-mismatch', transfers: 0 });
    expect(s2.reason).to.match(new RegExp(`^host key mismatch: expected ${inventory[0]!.hostKey!.replace(/[+/]/g, '\\$&')}, got `));
  });

  it('ftpSource: a switch whose FTP comes from another address is refused (the reason says why), and verified once the inventory names it', async function () {
    const inventory = await startFleet(2, '1:ftpsource=127.0.2.10,2:ftpsource=127.0.2.11');
    expect(inventory[0]!.ftpSource).to.equal('127.0.2.10');
    const bare = inventory.map((s) => ({ ...s, ftpSource: null }));
    const refused = await runner(plan({ waves: { canary: 0 } }), [bare[0]!]).run();
    const s1 = refused.state.switches.get('emu-001')!;
    expect(s1.outcome).to.equal('failed');
    expect(s1.reason).to.match(/530/).and.match(/the server saw no transfer from 127\.0\.1\.10; if the switch sources FTP from another address, set ftpSource/);
    rmSync(dir, { recursive: true, force: true });
    // One switch by its address, the other by a block: both grants bound where the FTP comes from.
    const named = [inventory[0]!, { ...inventory[1]!, ftpSource: '127.0.2.0/24' }];
    const before = server.transfers.length;
    const summary = await runner(plan({ waves: { canary: 0 } }), named).run();
    expect([...summary.state.switches.values()].map((s) => s.outcome)).to.deep.equal(['verified', 'verified']);
    expect(server.transfers.slice(before).map((t) => t.client).sort()).to.deep.equal(['127.0.2.10', '127.0.2.11']);
    expect(journal().filter((r) => r.t === 'switch' && r['phase'] === 'transfer').map((r) => r['source'])).to.have.members(['127.0.2.10', '127.0.2.0/24']);
  });

  it('twelve switches behind one NAT address, all at once: the embedded server is sized to the plan (serve allows 8 per address), every switch verified', async function () {
    const faults = Array.from({ length: 12 }, (_, i) => `${i + 1}:ftpsource=127.0.2.50,${i + 1}:slow=1000000`).join(',');
    const inventory = await startFleet(12, faults);
    // The runner's own embedded server (no `server` option), as `swfw rollout run` starts it.
    const summary = await runner(plan({ waves: { canary: 0 }, concurrency: 12, server: { address: '127.0.0.1', listen: '127.0.0.1', port: 0, images: FIXTURE_IMAGES, pasvRange: '44030-44034' } }), inventory, { server: undefined }).run();
    const failed = [...summary.state.switches.values()].filter((s) => s.outcome !== 'verified').map((s) => `${s.name}: ${s.reason}`);
    expect(failed).to.deep.equal([]);
  });

  it('a DNS name as address is resolved once at load: SSH and the grant use what it resolved to, and the journal records it; a name that does not resolve fails only its own pre-check', async function () {
    // localhost from the hosts file (IPv4: the test server listens on 127.0.0.1).
    const loopback = (await lookup('localhost', { family: 4 })).address;
    const inventory = await startFleet(2, '', [loopback]);
    const named = [{ ...inventory[0]!, address: 'localhost', resolvedAddress: null, resolveError: 'not resolved yet' }, { ...inventory[1]!, address: 'switch-2.invalid', resolvedAddress: null, resolveError: 'not resolved yet' }];
    await resolveInventoryAddresses(named, async (name) => {
      if (name === 'localhost') return (await lookup(name, { family: 4 })).address;
      throw Object.assign(new Error(`getaddrinfo ENOTFOUND ${name}`), { code: 'ENOTFOUND' });
    });
    expect(named.map((s) => s.resolvedAddress)).to.deep.equal([loopback, null]);
    const before = server.transfers.length;
    const summary = await runner(plan({ waves: { canary: 0 } }), named).run();
    expect(summary.state.switches.get('emu-001')).to.include({ outcome: 'verified', address: 'localhost', resolvedAddress: loopback });
    expect(server.transfers.slice(before).map((t) => t.client)).to.deep.equal([loopback]);
    const s2 = summary.state.switches.get('emu-002')!;
    expect(s2).to.include({ outcome: 'failed', transfers: 0, reason: 'the name switch-2.invalid does not resolve (ENOTFOUND)' });
    expect(fleet!.authAttempts('emu-002')).to.equal(0);
    const start = journal().find((r) => r.t === 'run-start')!;
    expect((start['switches'] as { name: string; resolvedAddress: string | null }[]).map((s) => [s.name, s.resolvedAddress])).to.deep.equal([
      ['emu-001', loopback],
      ['emu-002', null],
    ]);
  });
});

describe('a rollout to a switch with slow flash', function () {
  this.timeout(90_000);
  const BIG = 'cisco/cat9k_iosxe.17.12.01.SPA.bin';
  let server: TestServer;
  let fleet: EmulatedFleet | null = null;
  let dir: string;

  before(async () => {
    // 24 MiB: more than the loopback socket buffers hold, so a switch that stops reading really
    // stops the server's sender (with the 1 MiB fixture, the kernel would swallow it whole).
    server = await startTestServer('44015-44019', {
      copyImages: true,
      beforeStart: async (images) => {
        writeFileSync(join(images, BIG), randomBytes(24 * 1024 * 1024));
        await addImage(images, BIG, { platform: 'cisco-ios-xe', version: '17.12.01', vendor: {} });
      },
    });
    dir = mkdtempSync(join(tmpdir(), 'swfw-slowflash-'));
  });
  afterEach(async () => {
    await fleet?.stop();
    fleet = null;
  });
  after(async () => {
    await server?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('a switch that stops reading its data connection for 12 s mid-transfer is verified with the default timeouts', async function () {
    fleet = await EmulatedFleet.start({ count: 1, sshPort: SSH_PORT + 1, firstOctet: 30, password: ENV.SWFW_SWITCH_PASSWORD, faults: parseFaults('1:stall=12', 1) });
    const { switches } = validateInventory(fleet.inventory({ username: 'admin', passwordEnv: 'SWFW_SWITCH_PASSWORD' }), dir);
    const { plan: defaults } = validatePlan({ targets: { 'cisco-ios-xe': BIG }, waves: { canary: 0 }, server: { address: '127.0.0.1', images: server.images, pasvRange: '44015-44019' } }, dir);
    expect([defaults!.sshTimeoutMs, defaults!.pullTimeoutMs]).to.deep.equal([10_000, 1_800_000]);
    const summary = await testRunner(dir, server, { plan: defaults!, inventory: switches, env: ENV }).run();
    const sw = summary.state.switches.get('emu-001')!;
    expect(sw.outcome, sw.reason ?? '').to.equal('verified');
    expect(server.transfers).to.have.length(1);
    expect(server.transfers[0]).to.include({ result: 'complete', bytes: 24 * 1024 * 1024 });
    // The server's sender waited through the stall without giving up on the switch.
    expect(server.transfers[0]!.durationMs).to.be.greaterThan(11_500);
  });
});
