/**
 * A multi-site rollout in one process, on real parts: a real redis-server, three site agents each
 * with its own FirmwareServer and passive range, each site's own emulated switches over SSH, and
 * the coordinator (RolloutRunner with the EngineExecutor). The CLI and network-namespace version
 * of the same, with kill -9 and partitions, is test/netns/multisite.test.ts.
 */
import { expect } from 'chai';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { connectEngine, resultsQueue, siteQueue, type JobEngine } from '../../src/engine/index.js';
import { silentLogger } from '../../src/core/logger.js';
import { EmulatedFleet, parseFaults } from '../../src/switches/emulator/index.js';
import { validateInventory, type InventorySwitch } from '../../src/rollout/inventory.js';
import { validatePlan, type RolloutPlanConfig } from '../../src/rollout/plan.js';
import { EngineExecutor, SiteAgent, RolloutRunner, readJournal, foldJournal, buildReport, JOURNAL_FILE, writeControl, type TransferJobData } from '../../src/rollout/index.js';
import type { TransferRecord } from '../../src/server/context.js';
import { FIXTURE_IMAGES, startTestServer, type TestServer } from '../helpers/testServer.js';
import { catalogLookup } from '../helpers/rollout.js';
import { parseCidr, type Cidr } from '../../src/core/address.js';
import { readdirSync } from 'node:fs';
import { SITE_JOB_VERSION, transferJobId } from '../../src/rollout/siteJobs.js';
import { RecordingLogger } from '../helpers/recordingLogger.js';
import { startRedis, type TestRedis } from '../helpers/redis.js';

const IMAGE = 'cisco/c9300-universalk9.17.09.04a.SPA.bin';
const ENV = { SWFW_SWITCH_PASSWORD: 'multisite-test-pass' };
const REDIS_PORT = 45010;
const SITES = ['a', 'b', 'c'] as const;
/** Per site: its passive range, its switches' addresses (127.0.<n>.x) and SSH port. */
const LAYOUT = { a: { pasv: '45100-45104', net: 31, ssh: 47300 }, b: { pasv: '45110-45114', net: 32, ssh: 47301 }, c: { pasv: '45120-45124', net: 33, ssh: 47302 } };

interface Site {
  name: string;
  server: TestServer;
  fleet: EmulatedFleet;
  engine: JobEngine;
  agent: SiteAgent;
  stateDir: string;
  /** Transfers in flight at this site, and the most at once. */
  inFlight: number;
  most: number;
  transfers: TransferRecord[];
}

describe('multi-site rollout on the job engine (three in-process agents, real Redis, emulated switches)', function () {
  this.timeout(120_000);
  let redis: TestRedis;
  let dir: string;
  let sites: Site[] = [];
  /** Stops for what a test started, newest first, run even when a test fails half-way through a site's start. */
  let cleanups: (() => Promise<void>)[] = [];
  let coordinatorEngine: JobEngine | null = null;

  before(async () => {
    redis = await startRedis({ port: REDIS_PORT });
  });
  after(async () => redis.stop());
  beforeEach(() => (dir = mkdtempSync(join(tmpdir(), 'swfw-multisite-'))));
  afterEach(async () => {
    for (const stop of cleanups.reverse()) await stop();
    cleanups = [];
    sites = [];
    await coordinatorEngine?.close();
    coordinatorEngine = null;
    rmSync(dir, { recursive: true, force: true });
  });

  async function startSite(name: keyof typeof LAYOUT, count: number, options: { faults?: string; concurrency?: number; now?: () => number; switchNetworks?: string[] } = {}): Promise<{ site: Site; inventory: InventorySwitch[] }> {
    const layout = LAYOUT[name];
    const server = await startTestServer(layout.pasv);
    cleanups.push(() => server.stop(0));
    const addresses = Array.from({ length: count }, (_, i) => `127.0.${layout.net}.${i + 1}`);
    const fleet = await EmulatedFleet.start({ count, sshPort: layout.ssh, password: ENV.SWFW_SWITCH_PASSWORD, faults: parseFaults(options.faults ?? '', count), ftpTimeoutMs: 5000, addresses });
    cleanups.push(() => fleet.stop());
    const doc = fleet.inventory({ username: 'admin', passwordEnv: 'SWFW_SWITCH_PASSWORD' });
    for (const s of doc.switches) {
      s['name'] = `${name}-${String(s['name'])}`;
      s['site'] = name;
    }
    const { switches, problems } = validateInventory(doc, dir);
    expect(problems.list).to.deep.equal([]);
    const engine = await connectEngine({ url: redis.url, logger: silentLogger });
    cleanups.push(() => engine.close());
    const stateDir = join(dir, `agent-${name}`);
    const agent = new SiteAgent({
      site: name,
      engine,
      server: server.server,
      serverAddress: '127.0.0.1',
      passivePorts: 5,
      findImage: catalogLookup(FIXTURE_IMAGES),
      stateDir,
      concurrency: options.concurrency ?? 10,
      lockDurationMs: 10_000,
      logger: silentLogger,
      env: ENV,
      ...(options.now ? { now: options.now } : {}),
      ...(options.switchNetworks ? { switchNetworks: options.switchNetworks.map((c) => parseCidr(c) as Cidr) } : {}),
    });
    cleanups.push(() => agent.stop());
    const site: Site = { name, server, fleet, engine, agent, stateDir, inFlight: 0, most: 0, transfers: server.transfers };
    server.server.on('transfer-start', () => (site.most = Math.max(site.most, ++site.inFlight)));
    server.server.on('transfer', () => site.inFlight--);
    sites.push(site);
    return { site, inventory: switches };
  }

  const plan = (extra: Record<string, unknown> = {}): RolloutPlanConfig => {
    const { plan: p, problems } = validatePlan(
      { targets: { 'cisco-ios-xe': IMAGE }, waves: { canary: 1, percent: [50] }, concurrency: 2, server: { address: '127.0.0.1', images: FIXTURE_IMAGES }, timeouts: { sshSeconds: 5, pullSeconds: 30 }, ...extra },
      dir,
    );
    expect(problems.list).to.deep.equal([]);
    return p!;
  };

  async function coordinator(p: RolloutPlanConfig, inventory: InventorySwitch[], now?: () => number, reconcile?: { ms: number; logger: RecordingLogger }) {
    coordinatorEngine ??= await connectEngine({ url: redis.url, logger: silentLogger });
    const stateDir = join(dir, 'coordinator');
    const findImage = catalogLookup(FIXTURE_IMAGES);
    return {
      stateDir,
      runner: new RolloutRunner({
        stateDir,
        plan: p,
        planPath: join(dir, 'plan.yaml'),
        planDigest: 'test',
        inventory,
        inventoryPath: join(dir, 'inventory.yaml'),
        findImage,
        executor: new EngineExecutor({ engine: coordinatorEngine, plan: p, findImage, logger: reconcile?.logger ?? silentLogger, ...(now ? { now } : {}), ...(reconcile ? { reconcileMs: reconcile.ms } : {}) }),
        ...(now ? { now } : {}),
      }),
    };
  }

  it('every switch of three sites verified exactly once, each site within its concurrency, the canary first, a site column in the report', async () => {
    const inventory: InventorySwitch[] = [];
    for (const name of SITES) {
      const started = await startSite(name, 4);
      inventory.push(...started.inventory);
      await started.site.agent.start();
    }
    const { runner, stateDir } = await coordinator(plan({ sites: { a: { concurrency: 1 }, b: { concurrency: 2 } } }), inventory);
    const summary = await runner.run();
    expect(summary.outcome, summary.reason).to.equal('completed');
    const state = foldJournal(readJournal(join(stateDir, JOURNAL_FILE)).records);
    expect([...state.switches.values()].map((s) => s.outcome)).to.deep.equal(Array(12).fill('verified'));
    for (const site of sites) {
      const complete = site.transfers.filter((t) => t.result === 'complete');
      // One complete RETR per switch at its own site's server, the catalog's bytes, from its own address.
      expect(complete.map((t) => t.client).sort(), site.name).to.deep.equal(Array.from({ length: 4 }, (_, i) => `127.0.${LAYOUT[site.name as 'a'].net}.${i + 1}`));
      for (const t of complete) expect(t.dataPort).to.be.within(site.server.pasvMin, site.server.pasvMax);
    }
    // The queues' global concurrency: a 1, b 2, c the plan's 2.
    expect(sites.map((s) => s.most)).to.satisfy((m: number[]) => m[0] === 1 && m[1]! <= 2 && m[2]! <= 2);
    // The canary (a-emu-001) had its verdict before any other switch was handed to a site.
    const records = readJournal(join(stateDir, JOURNAL_FILE)).records;
    const canaryDone = records.findIndex((r) => r.t === 'site-result' && r.name === 'a-emu-001');
    const firstOtherJob = records.findIndex((r) => r.t === 'job' && r.name !== 'a-emu-001');
    expect(canaryDone).to.be.greaterThan(0);
    expect(canaryDone).to.be.lessThan(firstOtherJob);
    const report = buildReport(state);
    expect(report.switches.map((r) => r.site)).to.have.members([...Array(4).fill('a'), ...Array(4).fill('b'), ...Array(4).fill('c')]);
    expect(report.sites.map((s) => [s.site, s.verified])).to.deep.equal([['a', 4], ['b', 4], ['c', 4]]);
    // The hashes three ways: the catalog's, what the site's server sent, what the switch holds.
    for (const s of state.switches.values()) expect(s.hashes!.serverSha256).to.equal(s.hashes!.catalogSha256);
  });

  it('a result posted twice (a redelivered job) gives one verdict, and a second add of the same switch does nothing', async () => {
    const { site, inventory } = await startSite('a', 2);
    await site.agent.start();
    const { runner, stateDir } = await coordinator(plan({ waves: { canary: 0 } }), inventory);
    const summary = await runner.run();
    expect(summary.outcome).to.equal('completed');
    const records = readJournal(join(stateDir, JOURNAL_FILE)).records;
    const runId = foldJournal(records).runId!;
    const job = records.find((r) => r.t === 'job')!;
    // Re-post the first result by hand, as a redelivered job's agent would (a new result job ID).
    const first = records.find((r) => r.t === 'site-result')!;
    if (first.t !== 'site-result' || job.t !== 'job') throw new Error('unreachable');
    await coordinatorEngine!.add(resultsQueue(runId, 'a'), 'result', { v: 1, rolloutId: runId, site: 'a', name: first.name, jobId: first.jobId, agent: 'test', records: first.records }, { jobId: `${first.jobId}.again` });
    // And the same switch's job again: a no-op for the engine (the ID exists), so no second transfer.
    await coordinatorEngine!.add(siteQueue('a'), 'transfer', {} as TransferJobData, { jobId: job.jobId });
    await delay(500);
    expect(site.transfers.filter((t) => t.result === 'complete')).to.have.length(2);
    // A resumed coordinator consumes the repeated result: folded once, the verdict unchanged.
    const again = await coordinator(plan({ waves: { canary: 0 } }), inventory);
    await writeControl(stateDir, 'run');
    const resumed = await again.runner.run();
    expect(resumed.reason).to.match(/already ended/);
    const state = foldJournal(readJournal(join(stateDir, JOURNAL_FILE)).records);
    expect(state.switches.get(first.name)).to.include({ outcome: 'verified', attempts: 1, transfers: 1 });
  });

  it('a job that vanished from its queue (a Redis that lost data) is added again by the coordinator, and the switch is verified once', async () => {
    const { site, inventory } = await startSite('a', 1);
    const logger = new RecordingLogger();
    const { runner, stateDir } = await coordinator(plan({ waves: { canary: 0 } }), inventory, undefined, { ms: 300, logger });
    const running = runner.run();
    const deadline = Date.now() + 10_000;
    while ((await coordinatorEngine!.counts(siteQueue('a'))).waiting === 0 && Date.now() < deadline) await delay(50);
    const records = readJournal(join(stateDir, JOURNAL_FILE)).records;
    const job = records.find((r) => r.t === 'job');
    if (job?.t !== 'job') throw new Error('no job journaled');
    const { Queue } = await import('bullmq');
    const q = new Queue(siteQueue('a'), { connection: { host: redis.host, port: redis.port } });
    try {
      await q.remove(job.jobId);
    } finally {
      await q.close();
    }
    // The agent comes up only now: it finds the job the coordinator added again.
    await site.agent.start();
    const summary = await running;
    expect(summary.outcome, summary.reason).to.equal('completed');
    expect(site.transfers.filter((t) => t.result === 'complete')).to.have.length(1);
    expect(logger.records.filter((r) => /a job vanished from its site queue/.test(r.message)).map((r) => r.fields['switch'])).to.deep.equal(['a-emu-001']);
  });

  it('jobs not from a coordinator of ours: malformed, for another site, posting elsewhere, a switch outside --switch-networks, a forged file name: nothing touched but what the catalog names', async () => {
    const { site, inventory } = await startSite('a', 1, { switchNetworks: ['127.0.31.0/24'] });
    await site.agent.start();
    coordinatorEngine ??= await connectEngine({ url: redis.url, logger: silentLogger });
    const findImage = catalogLookup(FIXTURE_IMAGES);
    const entry = findImage(IMAGE)!;
    const rolloutId = '0b5e7e7e-0000-4000-8000-000000000001';
    const good = (name: string, sw: InventorySwitch, extra: Partial<TransferJobData> = {}): TransferJobData => ({
      v: SITE_JOB_VERSION,
      rolloutId,
      site: 'a',
      name,
      planned: { name, wave: 0, image: IMAGE, fileName: 'c9300.bin', targetVersion: entry.version },
      image: { file: entry.file, sha256: entry.sha256, size: entry.size, version: entry.version },
      switch: sw,
      settings: { sshTimeoutMs: 5000, pullTimeoutMs: 30_000, hashBytesPerSecond: null, sshWeakAlgorithms: [], credentialMinutes: 5, hostKeys: 'pinned' },
      window: null,
      resultQueue: resultsQueue(rolloutId, 'a'),
      ...extra,
    });
    const forged: [string, unknown][] = [
      ['junk', { v: 1 }],
      ['traversal', { ...good('x', inventory[0]!), rolloutId: '../../etc' }],
      ['elsewhere', { ...good('y', inventory[0]!), resultQueue: 'swfw.results.someone-else' }],
      ['other-site', { ...good('z', inventory[0]!), site: 'b' }],
    ];
    // Earlier tests of this file used queue a too: count from here.
    const before = (await coordinatorEngine.counts(siteQueue('a'))).completed;
    for (const [id, data] of forged) await coordinatorEngine.add(siteQueue('a'), 'transfer', data, { jobId: `${id}-${rolloutId}` });
    // A switch outside the site's networks: refused before any SSH, with its own verdict.
    await coordinatorEngine.add(siteQueue('a'), 'transfer', good('outsider', { ...inventory[0]!, address: '127.0.99.1', resolvedAddress: '127.0.99.1' }), { jobId: transferJobId(rolloutId, 'outsider') });
    // A real switch, with a file name the catalog does not give: the switch gets the catalog's.
    await coordinatorEngine.add(siteQueue('a'), 'transfer', good('a-emu-001', inventory[0]!, { planned: { name: 'a-emu-001', wave: 0, image: IMAGE, fileName: 'nvram:startup-config', targetVersion: entry.version } }), { jobId: transferJobId(rolloutId, 'a-emu-001') });
    const deadline = Date.now() + 20_000;
    while ((await coordinatorEngine.counts(siteQueue('a'))).completed < before + 6 && Date.now() < deadline) await delay(100);
    expect((await coordinatorEngine.counts(siteQueue('a'))).completed).to.equal(before + 6);
    // Only the rollout's own journal was written, in the agent's state directory.
    expect(readdirSync(join(site.stateDir, 'rollouts'))).to.deep.equal([`${rolloutId}.jsonl`]);
    const state = foldJournal(readJournal(join(site.stateDir, 'rollouts', `${rolloutId}.jsonl`)).records);
    expect([...state.switches.keys()].sort()).to.deep.equal(['a-emu-001', 'outsider']);
    expect(state.switches.get('outsider')).to.include({ outcome: 'failed', verdict: 'outside-site-networks', transfers: 0 });
    expect(state.switches.get('a-emu-001')).to.include({ outcome: 'verified' });
    // The switch wrote the catalog's file name, and only that.
    expect(readdirSync(site.fleet.switches[0]!.flashDir)).to.include('c9300-universalk9.17.09.04a.SPA.bin').and.not.include('nvram:startup-config');
    expect(site.transfers).to.have.length(1);
    // Three results posted, all to the rollout's own queue for site a, none elsewhere: outsider's
    // and a-emu-001's verdicts, and "cannot work on this job" for y (its job named another
    // results queue; the coordinator refuses a result for a switch it does not have).
    expect((await coordinatorEngine.counts(resultsQueue(rolloutId, 'a'))).waiting).to.equal(3);
    expect((await coordinatorEngine.counts('swfw.results.someone-else')).waiting).to.equal(0);
  });

  it("forged results are never journaled: another switch's records, records that are not a list, a result from another site's queue; a job the agent refuses fails its switch, not the rollout", async () => {
    const a = await startSite('a', 2);
    const b = await startSite('b', 1);
    await b.site.agent.start();
    // Site a's agent is not started: its switches wait, and forged results arrive for them.
    const logger = new RecordingLogger();
    const { runner, stateDir } = await coordinator(plan({ waves: { canary: 0 } }), [...a.inventory, ...b.inventory], undefined, { ms: 300, logger });
    const running = runner.run();
    const journal = join(stateDir, JOURNAL_FILE);
    const deadline = Date.now() + 10_000;
    while (Date.now() < deadline && readJournal(journal).records.filter((r) => r.t === 'job').length < 3) await delay(50);
    const runId = foldJournal(readJournal(journal).records).runId!;
    const jobA1 = transferJobId(runId, 'a-emu-001');
    const verdict = (name: string) => [
      { seq: 1, at: new Date().toISOString(), t: 'switch', name, phase: 'precheck' },
      { seq: 2, at: new Date().toISOString(), t: 'switch', name, phase: 'done', outcome: 'verified', reason: 'forged', verdict: 'verified', hashes: null },
    ];
    const forge = (queueSite: string, data: Record<string, unknown>, id: string) => coordinatorEngine!.add(resultsQueue(runId, queueSite), 'result', data, { jobId: id });
    const base = { v: 1, rolloutId: runId, site: 'a', name: 'a-emu-001', jobId: jobA1, agent: 'forger' };
    await forge('a', { ...base, records: [...verdict('a-emu-001').slice(0, 1), ...verdict('a-emu-002')] }, 'f1');
    await forge('a', { ...base, records: 5 }, 'f2');
    await forge('b', { ...base, site: 'b', records: verdict('a-emu-001') }, 'f3');
    await forge('b', { ...base, name: 'a-emu-002', site: 'b', jobId: transferJobId(runId, 'a-emu-002'), records: verdict('a-emu-002') }, 'f4');
    // A job for a-emu-002 that site a's agent will refuse (another version) takes the real one's place.
    const { Queue } = await import('bullmq');
    const q = new Queue(siteQueue('a'), { connection: { host: redis.host, port: redis.port } });
    try {
      const real = await q.getJob(transferJobId(runId, 'a-emu-002'));
      await real!.updateData({ ...(real!.data as TransferJobData), v: 2 as never });
    } finally {
      await q.close();
    }
    await delay(500);
    let state = foldJournal(readJournal(journal).records);
    expect(state.switches.get('a-emu-001')!.outcome).to.equal(null);
    expect(state.switches.get('a-emu-002')!.outcome).to.equal(null);
    expect(readJournal(journal).records.filter((r) => r.t === 'site-result').map((r) => (r.t === 'site-result' ? r.name : ''))).to.deep.equal(['b-emu-001']);
    expect(logger.records.filter((r) => r.message === 'a result refused').map((r) => r.fields['problem'])).to.have.length(4);
    // Now site a's agent comes up: a-emu-001 is verified for real, a-emu-002's job is refused and says so.
    await a.site.agent.start();
    const summary = await running;
    state = foldJournal(readJournal(journal).records);
    expect(state.switches.get('a-emu-001')).to.include({ outcome: 'verified', transfers: 1 });
    expect(state.switches.get('a-emu-002')).to.include({ outcome: 'failed', verdict: 'job-refused-by-agent', transfers: 0 });
    expect(state.switches.get('a-emu-002')!.reason).to.match(/cannot work on this job: version 2 \(this agent reads 1\)$/);
    expect(summary.outcome).to.equal('completed');
  });

  it("a site over its own failure threshold is paused and drained; the other site's switches all verified", async () => {
    const a = await startSite('a', 3);
    // Every switch of b corrupts the image it receives.
    const b = await startSite('b', 3, { faults: '1:corrupt=1000,2:corrupt=1000,3:corrupt=1000' });
    await a.site.agent.start();
    await b.site.agent.start();
    const { runner, stateDir } = await coordinator(plan({ waves: { canary: 0 }, sites: { b: { concurrency: 1, failureThreshold: { maxFailed: 0 } } } }), [...a.inventory, ...b.inventory]);
    const summary = await runner.run();
    const state = foldJournal(readJournal(join(stateDir, JOURNAL_FILE)).records);
    // The halt follows the first failed result; the switch b's agent had started meanwhile finishes (as a halt lets running ones do).
    expect(summary.reason).to.match(/site b: [12] switches failed \(more than 0\)/);
    expect(['a-emu-001', 'a-emu-002', 'a-emu-003'].map((n) => state.switches.get(n)!.outcome)).to.deep.equal(['verified', 'verified', 'verified']);
    const bOutcomes = ['b-emu-001', 'b-emu-002', 'b-emu-003'].map((n) => state.switches.get(n)!.outcome);
    expect(bOutcomes.filter((o) => o === 'failed').length).to.be.within(1, 2);
    expect(bOutcomes.filter((o) => o === null).length).to.be.within(1, 2);
    expect(await coordinatorEngine!.isPaused(siteQueue('b'))).to.equal(true);
    expect(await coordinatorEngine!.isPaused(siteQueue('a'))).to.equal(false);
    expect(b.site.transfers.length).to.equal(bOutcomes.filter((o) => o === 'failed').length);
  });

  it("site A's window is open while B's is closed: B's switches wait in its queue (delayed) and start when it opens", async () => {
    const a = await startSite('a', 2);
    const b = await startSite('b', 2);
    await a.site.agent.start();
    await b.site.agent.start();
    const opensAt = Date.now() + 3000;
    const p = plan({ waves: { canary: 0 }, sites: { b: { window: { notBefore: new Date(opensAt).toISOString() } } } });
    const { runner, stateDir } = await coordinator(p, [...a.inventory, ...b.inventory]);
    const running = runner.run();
    // A's switches are done while B's jobs are still delayed.
    const deadline = Date.now() + 20_000;
    while (a.site.transfers.length < 2 && Date.now() < deadline) await delay(50);
    expect(a.site.transfers).to.have.length(2);
    expect(Date.now()).to.be.lessThan(opensAt);
    expect((await coordinatorEngine!.counts(siteQueue('b'))).delayed).to.equal(2);
    const summary = await running;
    expect(summary.outcome).to.equal('completed');
    const state = foldJournal(readJournal(join(stateDir, JOURNAL_FILE)).records);
    for (const n of ['b-emu-001', 'b-emu-002']) expect(Date.parse(state.switches.get(n)!.transferredAt!)).to.be.at.least(opensAt);
  });

  it('a window that closes while a job waits in the queue: the agent puts it back until the next opening (moveToDelayed)', async () => {
    // The agent's clock says the window (a daily one) is closed when it picks the job up; then
    // that clock moves into the next opening, and the job runs then.
    let shift = 0;
    const agentNow = () => Date.now() + shift;
    const a = await startSite('a', 1, { now: agentNow });
    await a.site.agent.start();
    const window = { start: '01:00', end: '02:00', timeZone: 'UTC' };
    // The coordinator's clock is inside the window: it adds the job with no delay.
    const today = new Date();
    const inside = Date.UTC(today.getUTCFullYear(), today.getUTCMonth(), today.getUTCDate(), 1, 30);
    const outside = Date.UTC(today.getUTCFullYear(), today.getUTCMonth(), today.getUTCDate(), 2, 30);
    shift = outside - Date.now();
    const p = plan({ waves: { canary: 0 }, window });
    const coordinatorNow = () => inside + (Date.now() % 1000);
    const { runner } = await coordinator(p, a.inventory, coordinatorNow);
    const running = runner.run();
    const deadline = Date.now() + 10_000;
    while ((await coordinatorEngine!.counts(siteQueue('a'))).delayed === 0 && Date.now() < deadline) await delay(50);
    expect((await coordinatorEngine!.counts(siteQueue('a'))).delayed).to.equal(1);
    expect(a.site.transfers).to.have.length(0);
    // Its next opening is tomorrow 01:00: bring it forward by moving the job, as time passing would.
    shift = inside + 24 * 3600_000 - Date.now();
    const jobs = await coordinatorEngine!.counts(siteQueue('a'));
    expect(jobs.delayed).to.equal(1);
    await promoteDelayed(redis, siteQueue('a'));
    const summary = await running;
    expect(summary.outcome).to.equal('completed');
    expect(a.site.transfers.filter((t) => t.result === 'complete')).to.have.length(1);
  });
});

/** Moves a queue's delayed jobs to waiting now (what their delay running out does). */
async function promoteDelayed(redis: TestRedis, queue: string): Promise<void> {
  const { execFileSync } = await import('node:child_process');
  const ids = execFileSync('redis-cli', ['-p', String(redis.port), 'ZRANGE', `bull:${queue}:delayed`, '0', '-1'], { encoding: 'utf8' }).trim().split('\n').filter(Boolean);
  const { Queue } = await import('bullmq');
  const q = new Queue(queue, { connection: { host: redis.host, port: redis.port } });
  try {
    for (const id of ids) await (await q.getJob(id))?.promote();
  } finally {
    await q.close();
  }
}
