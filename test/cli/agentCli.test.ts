/**
 * `swfw agent` and `swfw rollout … --engine` at the command line: what they refuse, with one line
 * and exit 2, before any port is bound or anything journaled; and pause/resume as queue operations
 * that hold with no coordinator running.
 */
import { expect } from 'chai';
import { chmodSync, existsSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connectEngine, siteQueue } from '../../src/engine/index.js';
import { silentLogger } from '../../src/core/logger.js';
import { Journal, JOURNAL_FILE } from '../../src/rollout/index.js';
import { CHECKOUT_READABLE_BY_NOBODY, runCli, startCli } from '../helpers/cli.js';
import { lookupUser } from '../../src/server/privileges.js';
import { FIXTURE_IMAGES } from '../helpers/testServer.js';
import { startRedis, type TestRedis } from '../helpers/redis.js';

const REDIS_PORT = 45030;
const LOSSY_REDIS_PORT = 45031;
const PASV = '45600-45604';
const IMAGE = 'cisco/c9300-universalk9.17.09.04a.SPA.bin';

describe('swfw agent and rollout --engine (the built CLI)', function () {
  this.timeout(30_000);
  let redis: TestRedis;
  let lossy: TestRedis;
  let dir: string;

  before(async () => {
    redis = await startRedis({ port: REDIS_PORT });
    lossy = await startRedis({ port: LOSSY_REDIS_PORT, args: ['--appendonly', 'no'] });
  });
  after(async () => {
    await redis.stop();
    await lossy.stop();
  });
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'swfw-agent-cli-'));
    // The agent drops root after binding (as serve does): its state directory must be reachable.
    chmodSync(dir, 0o755);
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  const agentArgs = (engine: string, extra: string[] = []) => ['agent', '--site', 'a', '--engine', engine, '--state', join(dir, 'agent'), '--images', FIXTURE_IMAGES, '--host', '127.0.0.1', '--port', '0', '--pasv-range', PASV, '--switch-networks', '127.0.0.0/8', ...extra];

  it('an agent refuses a Redis without AOF: exit 2, one line naming the setting, no port bound', async () => {
    const result = await runCli(agentArgs(lossy.url));
    expect(result.code, result.stderr).to.equal(2);
    expect(result.stderr.trim().split('\n')).to.deep.equal([`swfw: the job engine at ${lossy.url} can lose jobs: AOF is off (set appendonly yes)`]);
    // Nothing bound: the passive range is free.
    const probe = createServer();
    await new Promise<void>((resolve, reject) => probe.once('error', reject).listen(45600, '127.0.0.1', resolve));
    await new Promise((resolve) => probe.close(resolve));
  });

  it('an agent that would drop root refuses a state directory the user cannot reach, before binding', async function () {
    if (process.geteuid?.() !== 0 || !CHECKOUT_READABLE_BY_NOBODY) {
      console.log('      skipped: needs root and a checkout the user "nobody" can read (this one is not)');
      this.skip();
    }
    const closed = join(dir, 'closed');
    (await import('node:fs')).mkdirSync(closed, { mode: 0o700 });
    const result = await runCli(['agent', '--site', 'a', '--engine', redis.url, '--state', join(closed, 'agent'), '--images', FIXTURE_IMAGES, '--host', '127.0.0.1', '--port', '0', '--pasv-range', PASV, '--switch-networks', 'any']);
    expect(result.code).to.equal(2);
    expect(result.stderr.trim()).to.equal(`swfw: agent drops root to "nobody" after binding, and nobody cannot enter ${closed}: put --state where nobody can reach it (every parent directory o+x), or keep root with --run-as root`);
  });

  it('an agent needs --switch-networks (CIDRs, or any) and refuses a bad one', async () => {
    const none = await runCli(['agent', '--site', 'a', '--engine', redis.url, '--state', join(dir, 'agent')]);
    expect(none.code).to.equal(2);
    expect(none.stderr.trim()).to.equal("swfw: --switch-networks: name the networks of this site's switches (CIDRs, comma-separated), or say any: a job for a switch elsewhere is refused before any SSH");
    const bad = await runCli(['agent', '--site', 'a', '--engine', redis.url, '--state', join(dir, 'agent'), '--switch-networks', '10.0.0.0/8,banana']);
    expect(bad.code).to.equal(2);
    expect(bad.stderr.trim()).to.match(/^swfw: --switch-networks: /);
  });

  it('an agent refuses a bad site name and an engine it cannot reach, one line each', async () => {
    const bad = await runCli(['agent', '--site', 'a:b', '--engine', redis.url, '--state', join(dir, 'agent')]);
    expect(bad.code).to.equal(2);
    expect(bad.stderr.trim()).to.equal('swfw: --site: "a:b" is not a site name (letters, digits, _ and -)');
    const away = await runCli(agentArgs('redis://127.0.0.1:45032'));
    expect(away.code).to.equal(2);
    expect(away.stderr.trim()).to.match(/^swfw: cannot reach the job engine at redis:\/\/127\.0\.0\.1:45032: .*ECONNREFUSED/);
  });

  it('an agent starts, drops root to nobody (its state directory handed over), says where it serves and which queue it takes, and stops on SIGTERM with 0', async function () {
    if (process.geteuid?.() !== 0 || !CHECKOUT_READABLE_BY_NOBODY) {
      console.log('      skipped: needs root and a checkout the user "nobody" can read (this one is not)');
      this.skip();
    }
    const agent = startCli(agentArgs(redis.url));
    await agent.waitFor(/^swfw agent for site a: serving .* on 127\.0\.0\.1:\d+ \(switches dial 127\.0\.0\.1\), passive 45600-45604 as nobody; jobs from swfw\.site\.a at redis:\/\/127\.0\.0\.1:45030\n/m);
    expect(statSync(join(dir, 'agent')).uid).to.equal(lookupUser('nobody')!.uid);
    expect(Number(/^Uid:\s+(\d+)/m.exec((await import('node:fs')).readFileSync(`/proc/${agent.child.pid}/status`, 'utf8'))![1])).to.equal(lookupUser('nobody')!.uid);
    const engine = await connectEngine({ url: redis.url, logger: silentLogger });
    try {
      expect(await engine.workers(siteQueue('a'))).to.equal(1);
    } finally {
      await engine.close();
    }
    // One agent per site: a second one for site a is refused while the first is connected.
    const second = await runCli(['agent', '--site', 'a', '--engine', redis.url, '--state', join(dir, 'agent2'), '--images', FIXTURE_IMAGES, '--host', '127.0.0.1', '--port', '0', '--pasv-range', '45605-45609', '--switch-networks', 'any']);
    expect(second.code).to.equal(2);
    expect(second.stderr.trim()).to.equal('swfw: another agent is connected to swfw.site.a (1 worker): one agent per site; stop it first (a standby may start once it is gone)');
    const result = await agent.stop('SIGTERM');
    expect(result.code, result.stderr).to.equal(0);
  });

  it('a Redis that never fsyncs its AOF (appendfsync no) is refused too', async () => {
    const lazy = await startRedis({ port: LOSSY_REDIS_PORT + 2, args: ['--appendfsync', 'no'] });
    try {
      const result = await runCli(agentArgs(lazy.url));
      expect(result.code).to.equal(2);
      expect(result.stderr.trim()).to.equal(`swfw: the job engine at ${lazy.url} can lose jobs: appendfsync is no: the OS may keep 30 s of jobs unwritten (set appendfsync always or everysec)`);
    } finally {
      await lazy.stop();
    }
  });

  it('a new rollout is refused at a site whose queue still has jobs of another rollout; --dry-run on an engine needs --offline', async () => {
    const engine = await connectEngine({ url: redis.url, logger: silentLogger });
    try {
      await engine.add(siteQueue('busy'), 'transfer', {}, { jobId: 'older-rollout.sw1', delayMs: 600_000 });
      const plan = join(dir, 'plan.json');
      writeFileSync(plan, JSON.stringify({ targets: { 'cisco-ios-xe': IMAGE }, server: { address: '127.0.0.1', images: FIXTURE_IMAGES } }));
      const inventory = join(dir, 'inventory.yaml');
      writeFileSync(inventory, 'switches:\n  - { name: sw1, address: 127.0.1.1, driver: cisco-ios-xe, site: busy, credentials: { username: admin, passwordEnv: X } }\n');
      const refused = await runCli(['rollout', 'run', plan, '--inventory', inventory, '--state', join(dir, 'state'), '--engine', redis.url]);
      expect(refused.code).to.equal(2);
      expect(refused.stderr.trim()).to.equal('swfw: another rollout still has jobs at busy (1 jobs): let it finish, or abort it with swfw rollout abort --engine, first');
      // The refused run leaves no journal behind, so status says there is no rollout.
      const status = await runCli(['rollout', 'status', '--state', join(dir, 'state')]);
      expect(status.code).to.equal(2);
      const dry = await runCli(['rollout', 'run', plan, '--inventory', inventory, '--state', join(dir, 'state'), '--engine', redis.url, '--dry-run']);
      expect(dry.code).to.equal(2);
      expect(dry.stderr.trim()).to.equal("swfw: --dry-run pre-checks switches from this host, and on a job engine only the sites' agents reach them: use --dry-run --offline for the waves and sites");
      const offline = await runCli(['rollout', 'run', plan, '--inventory', inventory, '--state', join(dir, 'state'), '--engine', redis.url, '--dry-run', '--offline']);
      expect(offline.code, offline.stderr).to.equal(0);
      expect(offline.stdout).to.match(/wave 0 {2}sw1 127\.0\.1\.1 \(cisco-ios-xe, site busy\)/);
      await engine.drain(siteQueue('busy'), true);
    } finally {
      await engine.close();
    }
  });

  it('rollout run --engine refuses a lossy Redis, and a switch without a site, before journaling anything', async () => {
    const plan = join(dir, 'plan.json');
    writeFileSync(plan, JSON.stringify({ targets: { 'cisco-ios-xe': IMAGE }, server: { address: '127.0.0.1', images: FIXTURE_IMAGES } }));
    const inventory = join(dir, 'inventory.yaml');
    writeFileSync(inventory, 'switches:\n  - { name: sw1, address: 127.0.1.1, driver: cisco-ios-xe, credentials: { username: admin, passwordEnv: X } }\n');
    const state = join(dir, 'state');
    const refusedEngine = await runCli(['rollout', 'run', plan, '--inventory', inventory, '--state', state, '--engine', lossy.url]);
    expect(refusedEngine.code).to.equal(2);
    expect(refusedEngine.stderr.trim()).to.equal(`swfw: the job engine at ${lossy.url} can lose jobs: AOF is off (set appendonly yes)`);
    // An ACL user that may read but not write: refused at its first write, one line, exit 2.
    (await import('node:child_process')).execFileSync('redis-cli', ['-p', String(REDIS_PORT), 'ACL', 'SETUSER', 'reader', 'reset', 'on', '>reader-pw', '~*', '&*', '+@read', '+@connection', '+info', '+client']);
    writeFileSync(join(dir, 'sited.yaml'), 'switches:\n  - { name: sw1, address: 127.0.1.1, driver: cisco-ios-xe, site: ro, credentials: { username: admin, passwordEnv: X } }\n');
    const readOnly = await runCli(['rollout', 'run', plan, '--inventory', join(dir, 'sited.yaml'), '--state', state, '--engine', `redis://reader:reader-pw@127.0.0.1:${REDIS_PORT}`]);
    expect(readOnly.code, readOnly.stderr).to.equal(2);
    expect(readOnly.stderr.trim()).to.match(new RegExp(`^swfw: the job engine at redis://reader:\\*\\*\\*@127\\.0\\.0\\.1:${REDIS_PORT} refused to (read|set up) swfw\\.site\\.ro: NOPERM`));
    const homeless = await runCli(['rollout', 'run', plan, '--inventory', inventory, '--state', state, '--engine', redis.url]);
    expect(homeless.code).to.equal(2);
    expect(homeless.stderr.trim()).to.equal('swfw: a rollout on a job engine needs a site for every switch: sw1 has none (inventory: site)');
    expect(existsSync(join(state, JOURNAL_FILE)) ? (await import('node:fs')).readFileSync(join(state, JOURNAL_FILE), 'utf8') : '').to.equal('');
  });

  it("pause with --engine pauses the rollout's site queues with no coordinator running, status --engine shows them; without --engine nothing is written and they say what is missing; an abort stays asked for", async () => {
    const state = join(dir, 'state');
    const { mkdirSync } = await import('node:fs');
    mkdirSync(state);
    const journal = Journal.open(join(state, JOURNAL_FILE));
    await journal.append({ t: 'run-start', runId: 'r1', planPath: join(dir, 'plan.json'), planDigest: 'd', inventoryPath: join(dir, 'inv.yaml'), waves: [], switches: [], engine: { url: redis.url, sites: ['p1', 'p2'] } });
    await journal.close();
    const engine = await connectEngine({ url: redis.url, logger: silentLogger });
    try {
      const paused = await runCli(['rollout', 'pause', '--state', state, '--engine', redis.url]);
      expect(paused.code, paused.stderr).to.equal(0);
      expect(paused.stdout.trim()).to.equal('pause: requested; paused the queues of 2 sites: p1, p2');
      expect([await engine.isPaused(siteQueue('p1')), await engine.isPaused(siteQueue('p2'))]).to.deep.equal([true, true]);
      // status --engine shows the queues live: paused, nothing waiting, no agent connected.
      const status = await runCli(['rollout', 'status', '--state', state, '--engine', redis.url, '--json']);
      expect(status.code, status.stderr).to.equal(0);
      const queues = (JSON.parse(status.stdout) as { queues: { site: string; paused: boolean; agents: number; waiting: number }[] }).queues;
      expect(queues.map((q) => [q.site, q.paused, q.agents, q.waiting])).to.deep.equal([['p1', true, 0, 0], ['p2', true, 0, 0]]);
      // Refused before anything is written: the control file still says pause, not abort.
      // No job of this rollout anywhere in that engine (this test journaled it by hand): status says so.
      const suspicious = await runCli(['rollout', 'status', '--state', state, '--engine', redis.url]);
      expect(suspicious.stdout).to.include(`warning: ${redis.url} has no job of this rollout in any of its site queues and no agent: is it the engine the rollout runs on (${redis.url})?`);
      const bare = await runCli(['rollout', 'abort', '--state', state]);
      expect(bare.code).to.equal(2);
      expect(bare.stderr.trim()).to.equal("swfw: this rollout runs on a job engine: say --engine URL, so the sites' queues are paused too");
      expect(JSON.parse((await import('node:fs')).readFileSync(join(state, 'control.json'), 'utf8'))).to.include({ command: 'pause' });
      const text = await runCli(['rollout', 'status', '--state', state]);
      expect(text.stdout.split('\n')[0]).to.equal('rollout r1: interrupted: `swfw rollout resume` continues it');
      await runCli(['rollout', 'abort', '--state', state, '--engine', redis.url]);
      const aborted = await runCli(['rollout', 'status', '--state', state]);
      expect(aborted.stdout.split('\n')[0]).to.equal('rollout r1: interrupted, abort requested: `swfw rollout resume` ends it as aborted');
      const resumeBare = await runCli(['rollout', 'resume', '--state', state]);
      expect(resumeBare.code).to.equal(2);
      expect(resumeBare.stderr.trim()).to.equal(`swfw: this rollout runs on the job engine at ${redis.url}: resume it with --engine URL`);
    } finally {
      await engine.close();
    }
  });
});
