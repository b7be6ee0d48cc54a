/**
 * Multi-site rollouts through the built CLI, in network namespaces: three sites, each with its own
 * `swfw agent` on port 21 and 63006-63010 and its own `swfw emulate` switches, the coordinator
 * (`swfw rollout run --engine`) and a real redis-server in the root namespace. Then the faults:
 * kill -9 an agent mid-transfer, kill -9 the coordinator mid-wave, kill -9 Redis, and a site cut
 * off for longer than its lease. Each time: nothing lost, nothing done twice.
 */
import { expect } from 'chai';
import { chmodSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { readJournal, foldJournal, JOURNAL_FILE } from '../../src/rollout/index.js';
import type { AuditEntry, JournalRecord } from '../../src/rollout/records.js';
import { FIXTURE_IMAGES } from '../helpers/testServer.js';
import { startCli, type CliProcess, type CliResult } from '../helpers/cli.js';
import { skipUnlessNetns } from '../helpers/netns.js';
import { SITE_ENGINE_URL, SitesLab } from '../helpers/sitesLab.js';
import { startRedis, type TestRedis } from '../helpers/redis.js';

const IMAGE = 'cisco/c9300-universalk9.17.09.04a.SPA.bin';
const PASSWORD = 'multisite-lab-pass';
const REDIS_PORT = 45020;
const LOCK_SECONDS = 3;

describe('multi-site rollouts in network namespaces (swfw agent per site, the coordinator, a real redis-server)', function () {
  this.timeout(180_000);
  let redis: TestRedis | null = null;
  let lab: SitesLab | null = null;
  let dir: string;
  const agents = new Map<string, CliProcess>();

  before(function () {
    skipUnlessNetns(this);
  });
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'swfw-multisite-lab-'));
    // The agents drop root after binding (as serve does): their state directories must be reachable.
    chmodSync(dir, 0o755);
  });
  afterEach(async () => {
    await lab?.destroy();
    lab = null;
    agents.clear();
    await redis?.stop();
    redis = null;
    if (process.env['SWFW_KEEP_LAB']) console.log(`kept ${dir}`);
    else rmSync(dir, { recursive: true, force: true });
  });

  /** Redis, the namespaces, and per site: its relay, its emulated switches, and its agent. */
  async function setUp(sites: Record<string, { switches: number; faults?: string }>): Promise<string> {
    redis = await startRedis({ port: REDIS_PORT, unixSocket: true });
    lab = new SitesLab(Object.keys(sites)).create();
    const inventory: Record<string, unknown>[] = [];
    for (const [site, spec] of Object.entries(sites)) {
      await lab.startRelay(site, redis.socketPath!);
      const invFile = join(dir, `emulated-${site}.json`);
      // Its flash under the test's own directory: the lab stops emulators with SIGKILL, which leaves a flash dir behind.
      const emulator = lab.start(site, ['emulate', '--switches', String(spec.switches), '--site', site, '--inventory-out', invFile, '--flash-under', dir, ...(spec.faults ? ['--faults', spec.faults] : [])], { SWFW_SWITCH_PASSWORD: PASSWORD });
      await emulator.waitFor(/^emulating /m);
      const doc = JSON.parse(readFileSync(invFile, 'utf8')) as { switches: Record<string, unknown>[] };
      expect(doc.switches.map((s) => [s['name'], s['site']])[0]).to.deep.equal([`${site}-emu-001`, site]);
      inventory.push(...doc.switches);
      startAgent(site);
      await agents.get(site)!.waitFor(/^swfw agent for site /m);
    }
    const inventoryPath = join(dir, 'inventory.json');
    writeFileSync(inventoryPath, JSON.stringify({ switches: inventory }, null, 2));
    return inventoryPath;
  }

  function startAgent(site: string): CliProcess {
    const agent = lab!.start(
      site,
      ['agent', '--site', site, '--engine', SITE_ENGINE_URL, '--state', join(dir, `agent-${site}`), '--images', FIXTURE_IMAGES, '--host', '127.0.0.1', '--switch-networks', '127.0.1.0/24', '--lock-seconds', String(LOCK_SECONDS), '--log-level', 'info'],
      { SWFW_SWITCH_PASSWORD: PASSWORD },
    );
    agents.set(site, agent);
    return agent;
  }

  function writePlan(extra: Record<string, unknown> = {}): string {
    const path = join(dir, 'plan.json');
    const plan = { targets: { 'cisco-ios-xe': IMAGE }, waves: { canary: 1, percent: [50] }, concurrency: 2, server: { address: '127.0.0.1', images: FIXTURE_IMAGES }, timeouts: { sshSeconds: 5, pullSeconds: 120 }, ...extra };
    writeFileSync(path, JSON.stringify(plan));
    return path;
  }

  const coordinatorState = () => join(dir, 'coordinator');
  const engineUrl = () => `redis://127.0.0.1:${REDIS_PORT}`;

  function coordinator(mode: 'run' | 'resume', plan: string | null, inventory: string | null): CliProcess {
    const args = mode === 'run' ? ['rollout', 'run', plan!, '--inventory', inventory!] : ['rollout', 'resume'];
    return startCli([...args, '--engine', engineUrl(), '--state', coordinatorState(), '--json']);
  }

  async function finished(cli: CliProcess, timeoutMs = 150_000): Promise<CliResult> {
    const timer = setTimeout(() => cli.child.kill('SIGKILL'), timeoutMs);
    try {
      return await cli.exited;
    } finally {
      clearTimeout(timer);
    }
  }

  /** The records of every agent journal of `site` (one file per rollout). */
  function agentRecords(site: string): JournalRecord[] {
    const rolloutsDir = join(dir, `agent-${site}`, 'rollouts');
    if (!existsSync(rolloutsDir)) return [];
    return readdirSync(rolloutsDir).flatMap((f) => readJournal(join(rolloutsDir, f)).records);
  }

  /** Complete RETRs per switch in a site's own audit, with their data ports and times. */
  function completeTransfers(site: string): Map<string, (AuditEntry & { at: string })[]> {
    const out = new Map<string, (AuditEntry & { at: string })[]>();
    for (const r of agentRecords(site)) {
      if (r.t === 'audit' && r.record.result === 'complete') out.set(r.name, [...(out.get(r.name) ?? []), { ...r.record, at: r.at }]);
    }
    return out;
  }

  /**
   * Every switch verified once, one complete RETR each at its own site, data ports in the range.
   * A switch in `interrupted` (its agent killed while it copied) may have a second one, never
   * overlapping the first, and only after a pre-check found the first copy not on its flash.
   */
  function expectExactlyOnce(sites: Record<string, number>, interrupted: string[] = []): void {
    const state = foldJournal(readJournal(join(coordinatorState(), JOURNAL_FILE)).records);
    const names = [...state.switches.keys()];
    expect(names).to.have.length(Object.values(sites).reduce((a, b) => a + b, 0));
    for (const s of state.switches.values()) expect(s.outcome, `${s.name}: ${s.reason}`).to.equal('verified');
    for (const site of Object.keys(sites)) {
      const transfers = completeTransfers(site);
      for (const name of names.filter((n) => n.startsWith(`${site}-`))) {
        const mine = transfers.get(name) ?? [];
        expect(mine.length, `${name} complete RETRs`).to.equal(interrupted.includes(name) ? mine.length : 1);
        expect(mine.length, `${name} complete RETRs`).to.be.within(1, 2);
        for (const t of mine) expect(t.dataPort).to.be.within(63006, 63010);
        if (mine.length === 2) {
          const onFlash = agentRecords(site).flatMap((r) => (r.t === 'switch' && r.name === name && r.phase === 'prechecked' ? [r.precheck.onFlash] : []));
          expect(onFlash.at(-1), name).to.equal('absent');
          expect(Date.parse(mine[1]!.at) - mine[1]!.durationMs).to.be.at.least(Date.parse(mine[0]!.at));
        }
      }
    }
  }

  it('three sites: every switch verified exactly once at its own site, each within its concurrency, the canary first, the site column', async () => {
    const inventory = await setUp({ a: { switches: 4 }, b: { switches: 4 }, c: { switches: 4 } });
    const plan = writePlan({ sites: { a: { concurrency: 1 }, b: { concurrency: 2 }, c: { concurrency: 3 } } });
    const result = await finished(coordinator('run', plan, inventory));
    expect(result.code, result.stderr).to.equal(0);
    const summary = JSON.parse(result.stdout.trim().split('\n').at(-1)!) as { outcome: string; counts: Record<string, number>; reports: { json: string } };
    expect(summary).to.deep.include({ outcome: 'completed' });
    expect(summary.counts).to.deep.equal({ verified: 12, skipped: 0, failed: 0, pending: 0 });
    expectExactlyOnce({ a: 4, b: 4, c: 4 });
    // Per-site concurrency, from each site's own audit: no more transfers overlapped than its limit.
    for (const [site, limit] of [['a', 1], ['b', 2], ['c', 3]] as const) {
      const spans = [...completeTransfers(site).values()].flat().map((t) => ({ end: Date.parse(t.at), start: Date.parse(t.at) - t.durationMs }));
      const most = Math.max(...spans.map((x) => spans.filter((y) => y.start < x.end && x.start < y.end).length));
      expect(most, `site ${site}`).to.be.at.most(limit);
    }
    // The canary's verdict came back before any other switch was handed to a site.
    const records = readJournal(join(coordinatorState(), JOURNAL_FILE)).records;
    const canary = records.findIndex((r) => r.t === 'site-result' && r.name === 'a-emu-001');
    expect(canary).to.be.greaterThan(0).and.lessThan(records.findIndex((r) => r.t === 'job' && r.name !== 'a-emu-001'));
    const report = JSON.parse(readFileSync(summary.reports.json, 'utf8')) as { switches: { name: string; site: string }[]; sites: { site: string; verified: number }[] };
    expect(report.switches.every((s) => s.site === s.name.slice(0, 1))).to.equal(true);
    expect(report.sites.map((s) => [s.site, s.verified])).to.deep.equal([['a', 4], ['b', 4], ['c', 4]]);
  });

  it('kill -9 an agent mid-copy, then start it again: the job is redelivered, pre-checked again, copied once more and verified once', async () => {
    const inventory = await setUp({ a: { switches: 2, faults: '1:slow=200000,2:slow=200000' }, b: { switches: 2 } });
    const run = coordinator('run', writePlan({ waves: { canary: 0 } }), inventory);
    // Wait until a switch of site a is mid-copy.
    const deadline = Date.now() + 60_000;
    while (!agentRecords('a').some((r) => r.t === 'switch' && r.phase === 'transfer') && Date.now() < deadline) await delay(100);
    await delay(1000);
    await agents.get('a')!.stop('SIGKILL');
    const killedDuring = agentRecords('a').filter((r) => r.t === 'switch' && r.phase === 'transfer').map((r) => (r.t === 'switch' ? r.name : ''));
    expect(killedDuring.length).to.be.greaterThan(0);
    startAgent('a');
    const result = await finished(run);
    expect(result.code, result.stderr).to.equal(0);
    // The emulated switch writes its flash slowly, after the bytes arrived: the server's RETR
    // of the killed agent may have completed, but the switch's copy (over the dead agent's SSH
    // session) did not, so the new agent's pre-check finds no image and copies it once more.
    expectExactlyOnce({ a: 2, b: 2 }, killedDuring);
    const state = foldJournal(readJournal(join(coordinatorState(), JOURNAL_FILE)).records);
    // The interrupted switch was pre-checked again by the new agent process.
    for (const name of killedDuring) expect(state.switches.get(name)!.attempts, name).to.equal(2);
  });

  it('kill -9 the coordinator mid-wave, then rollout resume: no result lost, no switch transferred twice', async () => {
    const inventory = await setUp({ a: { switches: 3, faults: '2:slow=400000,3:slow=400000' }, b: { switches: 3, faults: '1:slow=400000,2:slow=400000' } });
    const plan = writePlan({ waves: { canary: 1, percent: [100] } });
    const run = coordinator('run', plan, inventory);
    const journal = join(coordinatorState(), JOURNAL_FILE);
    const deadline = Date.now() + 60_000;
    // Mid-wave 1: handed off to the sites, not all reported.
    while (Date.now() < deadline) {
      const records = existsSync(journal) ? readJournal(journal).records : [];
      if (records.filter((r) => r.t === 'job').length >= 3 && records.filter((r) => r.t === 'site-result').length >= 1) break;
      await delay(50);
    }
    await run.stop('SIGKILL');
    // The agents go on and post their results while no coordinator listens.
    await delay(3000);
    const resumed = await finished(coordinator('resume', null, null));
    expect(resumed.code, resumed.stderr).to.equal(0);
    expectExactlyOnce({ a: 3, b: 3 });
    const records = readJournal(journal).records;
    // Every switch's result folded once (a repeated one would be journaled but change nothing).
    const state = foldJournal(records);
    for (const s of state.switches.values()) expect(s.transfers, s.name).to.equal(1);
  });

  it('kill -9 redis-server mid-rollout and start it again (AOF): the agents and the coordinator reconnect, nothing lost or repeated', async () => {
    const inventory = await setUp({ a: { switches: 3, faults: '1:slow=300000,2:slow=300000,3:slow=300000' }, b: { switches: 3, faults: '1:slow=300000,2:slow=300000,3:slow=300000' } });
    const run = coordinator('run', writePlan({ waves: { canary: 0 } }), inventory);
    const deadline = Date.now() + 60_000;
    while (!agentRecords('a').some((r) => r.t === 'switch' && r.phase === 'transfer') && Date.now() < deadline) await delay(100);
    await redis!.kill();
    await delay(2000);
    await redis!.restart();
    const result = await finished(run);
    expect(result.code, result.stderr).to.equal(0);
    expectExactlyOnce({ a: 3, b: 3 });
  });

  it('a site cut off from the engine for longer than its lease, then restored: the redelivered job attaches to the running copy or gets its verdict, one transfer, one verdict', async () => {
    // The switch writes its flash for ~17 s: longer than the cut, so its job is still running when the site comes back.
    const inventory = await setUp({ a: { switches: 1, faults: '1:slow=60000' }, b: { switches: 2 } });
    const run = coordinator('run', writePlan({ waves: { canary: 0 } }), inventory);
    const deadline = Date.now() + 60_000;
    while (!agentRecords('a').some((r) => r.t === 'switch' && r.phase === 'transfer') && Date.now() < deadline) await delay(100);
    lab!.partition('a', true);
    await delay((LOCK_SECONDS * 2 + 2) * 1000);
    lab!.partition('a', false);
    const result = await finished(run);
    expect(result.code, result.stderr).to.equal(0);
    expectExactlyOnce({ a: 1, b: 2 });
    const state = foldJournal(readJournal(join(coordinatorState(), JOURNAL_FILE)).records);
    expect(state.switches.get('a-emu-001')).to.include({ attempts: 1, transfers: 1 });
    // The lease really was lost: the agent saw its job again and did not start a second copy.
    // Redelivered while the copy ran (attached to it) or just after it ended (its journaled
    // verdict posted again), depending on when the agent's stalled check ran: never a second copy.
    const said = agents.get('a')!.stdout + agents.get('a')!.stderr;
    expect(said, said).to.match(/job redelivered while its switch is in progress here: attaching, no second copy|job redelivered after its switch was done: posting the journaled verdict again/);
  });
});
