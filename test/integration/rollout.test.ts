import { expect } from 'chai';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FIXTURE_IMAGES, startTestServer, type TestServer } from '../helpers/testServer.js';
import { FtpControl } from '../helpers/ftpControl.js';
import { EmulatedFleet, parseFaults } from '../../src/switches/emulator.js';
import { validateInventory } from '../../src/rollout/inventory.js';
import { validatePlan, type RolloutPlanConfig } from '../../src/rollout/plan.js';
import { RolloutRunner, foldJournal, readJournal, writeControl, writeReports, JOURNAL_FILE } from '../../src/rollout/index.js';
import type { OneTimeAccess } from '../../src/server/server.js';

const IMAGE = 'cisco/c9300-universalk9.17.09.04a.SPA.bin';
const catalog = JSON.parse(readFileSync(join(FIXTURE_IMAGES, 'catalog.json'), 'utf8')) as { images: { file: string; size: number; sha256: string }[] };
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
  const startFleet = async (count: number, faults = '') => {
    fleet = await EmulatedFleet.start({ count, sshPort: SSH_PORT, firstOctet: 10, password: ENV.SWFW_SWITCH_PASSWORD, faults: parseFaults(faults, count), ftpTimeoutMs: 5000 });
    const { switches, problems } = validateInventory(fleet.inventory({ username: 'admin', passwordEnv: 'SWFW_SWITCH_PASSWORD' }), dir);
    expect(problems.list).to.deep.equal([]);
    return switches;
  };
  const runner = (p: RolloutPlanConfig, inventory: Awaited<ReturnType<typeof startFleet>>, extra: Partial<ConstructorParameters<typeof RolloutRunner>[0]> = {}) =>
    new RolloutRunner({
      stateDir: dir,
      plan: p,
      planPath: join(dir, 'plan.yaml'),
      planDigest: 'test',
      inventory,
      inventoryPath: join(dir, 'inventory.json'),
      findImage: (file) => (catalog.images.find((i) => i.file === file) as never) ?? undefined,
      server: server.server,
      env: ENV,
      ...extra,
    });
  const journal = () => readJournal(join(dir, JOURNAL_FILE)).records;

  it('verifies a good fleet wave by wave, with per-switch credentials refused afterwards', async function () {
    const before = server.transfers.length;
    const inventory = await startFleet(6);
    const summary = await runner(plan(), inventory).run();
    expect(summary.outcome).to.equal('completed');
    expect(summary.state.waves.map((w) => w.length)).to.deep.equal([1, 3, 2]);
    for (const s of summary.state.switches.values()) {
      expect(s.outcome, s.name).to.equal('verified');
      expect(s.hashes).to.deep.include({ catalogSha256: entry.sha256, serverSha256: entry.sha256, switchAlgorithm: 'sha256' });
      expect(s.hashes!.switchDigests['sha256']).to.equal(entry.sha256);
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
    expect(readFileSync(paths.csv, 'utf8').split('\r\n')[1]).to.match(/^emu-001,127\.0\.1\.10,0,/);
    expect(readFileSync(paths.html, 'utf8')).to.include('emu-006').and.not.include(ENV.SWFW_SWITCH_PASSWORD);
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
    expect(by('emu-003').reason).to.match(/unreachable.*login refused/);
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
    await j.append('host-key', { name: 'emu-002', address: inventory[1]!.address, fingerprint: inventory[0]!.hostKey });
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
});
