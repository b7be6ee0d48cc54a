/**
 * Figure 8: a multi-site rollout at scale. 10,000 switches in 100 sites (smoke: 1,000 in 10), the
 * real coordinator (`swfw rollout run --engine`, its own process), a real redis-server, and 100
 * real SiteAgents in one process (multisiteAgents.ts) whose work on a switch is a sleep: what is
 * measured is the engine and the coordinator, not SSH or FTP (figure 7 has those).
 *
 * Checked, not timed: every switch gets exactly one verdict, no wave's job is added before the
 * previous wave's last result, and no site ran more than its limit at once.
 */
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { PROJECT_ROOT } from '../src/config/loader.js';
import { foldJournal, readJournal, JOURNAL_FILE } from '../src/rollout/index.js';
import type { BenchContext, FigureRow } from './figures.js';
import { HarnessError, quick, run, startUntilReady, stopChild } from './proc.js';
import { PeakRss } from './memory.js';
import { mebibytes, seconds, summarize } from './stats.js';

const CLI = join(PROJECT_ROOT, 'dist', 'src', 'cli', 'main.js');
const AGENTS = join(PROJECT_ROOT, 'dist', 'bench', 'multisiteAgents.js');
const IMAGES = join(PROJECT_ROOT, 'fixtures', 'images');
const IMAGE = 'cisco/c9300-universalk9.17.09.04a.SPA.bin';
const REDIS_PORT = 42900;
/** The plan's waves: the canary, then 10 % and 50 % of the fleet, then the rest. */
const WAVES = { canary: 1, percent: [10, 50] };

export interface MultisiteSizes {
  sites: number;
  switchesPerSite: number;
  /** Transfers per site at once (the site queue's global concurrency). */
  concurrency: number;
  /** The work on one switch. */
  sleepMs: number;
}

export const FULL_MULTISITE: MultisiteSizes = { sites: 100, switchesPerSite: 100, concurrency: 5, sleepMs: 20 };
export const SMOKE_MULTISITE: MultisiteSizes = { sites: 10, switchesPerSite: 100, concurrency: 5, sleepMs: 20 };

/** The figure's own redis-server, with the settings swfw requires; stopped by its PID. */
async function startRedis(dir: string, logFile: string) {
  mkdirSync(dir, { recursive: true });
  return startUntilReady({
    label: 'redis-server',
    command: '/usr/bin/redis-server',
    args: ['--port', String(REDIS_PORT), '--bind', '127.0.0.1', '--dir', dir, '--save', '', '--appendonly', 'yes', '--appendfsync', 'everysec', '--maxmemory-policy', 'noeviction', '--daemonize', 'no', '--logfile', ''],
    env: {},
    cwd: dir,
    logFile,
    ready: /Ready to accept connections/,
    timeoutMs: 10_000,
    stopGraceMs: 5_000,
  });
}

function redisUsedMemory(): number {
  const info = quick('redis-cli', ['-p', String(REDIS_PORT), 'INFO', 'memory'])?.stdout ?? '';
  return Number(/^used_memory:(\d+)/m.exec(info)?.[1] ?? Number.NaN);
}

export async function figureMultisite(ctx: BenchContext): Promise<FigureRow> {
  const sizes = ctx.options.smoke ? SMOKE_MULTISITE : FULL_MULTISITE;
  const total = sizes.sites * sizes.switchesPerSite;
  const dir = join(ctx.workDir, 'multisite');
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  const sites = Array.from({ length: sizes.sites }, (_, i) => `s${String(i).padStart(3, '0')}`);
  // Addresses nobody contacts: the agents' work is a sleep.
  const switches = sites.flatMap((site, s) =>
    Array.from({ length: sizes.switchesPerSite }, (_, n) => ({ name: `${site}-sw${String(n).padStart(3, '0')}`, address: `10.${100 + Math.floor(s / 250)}.${s % 250}.${n + 1}`, driver: 'cisco-ios-xe', site, credentials: { username: 'admin', passwordEnv: 'BENCH_UNUSED' } })),
  );
  const inventory = join(dir, 'inventory.json');
  writeFileSync(inventory, JSON.stringify({ switches }));
  const plan = join(dir, 'plan.json');
  writeFileSync(plan, JSON.stringify({ targets: { 'cisco-ios-xe': IMAGE }, waves: WAVES, concurrency: sizes.concurrency, server: { address: '127.0.0.1', images: IMAGES } }));
  const redis = await startRedis(join(dir, 'redis'), join(dir, 'redis.log'));
  const url = `redis://127.0.0.1:${REDIS_PORT}`;
  let agents: Awaited<ReturnType<typeof startUntilReady>> | null = null;
  try {
    agents = await startUntilReady({
      label: 'multi-site agents',
      args: [AGENTS, url, String(sizes.sites), String(sizes.concurrency), String(sizes.sleepMs), join(dir, 'agents')],
      env: { PATH: process.env['PATH'] ?? '/usr/bin:/bin' },
      cwd: dir,
      logFile: join(dir, 'agents.log'),
      ready: /^ready$/m,
      timeoutMs: 120_000,
      stopGraceMs: 60_000,
    });
    const state = join(dir, 'coordinator');
    let rss: PeakRss | null = null;
    let redisPeak = 0;
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        redisPeak = Math.max(redisPeak, redisUsedMemory() || 0);
        await sleep(500);
      }
    })();
    const started = performance.now();
    const result = await run(process.execPath, [CLI, 'rollout', 'run', plan, '--inventory', inventory, '--engine', url, '--state', state, '--json'], {
      timeoutMs: 30 * 60_000,
      env: { PATH: process.env['PATH'] ?? '/usr/bin:/bin', BENCH_UNUSED: 'x' },
      onSpawn: (pid) => (rss = new PeakRss(pid, false).start()),
    });
    const wallMs = performance.now() - started;
    sampling = false;
    await sampler;
    const coordinatorRss = (rss as PeakRss | null)?.stop() ?? Number.NaN;
    if (result.code !== 0) throw new HarnessError(`figure 8: the coordinator exited ${result.code}: ${result.stderr.slice(-600)}`);
    await stopChild(agents.child, { signal: 'SIGTERM', group: false, graceMs: 60_000 });
    const agentStats = JSON.parse(readFileSync(join(dir, 'agents.log'), 'utf8').trim().split('\n').at(-1)!) as { jobs: number; mostAtOnce: Record<string, number> };
    agents = null;

    // The checks: one verdict each, waves in order, no site over its limit.
    const records = readJournal(join(state, JOURNAL_FILE)).records;
    const folded = foldJournal(records);
    const verified = [...folded.switches.values()].filter((s) => s.outcome === 'verified').length;
    if (verified !== total) throw new HarnessError(`figure 8: ${verified} of ${total} switches verified`);
    const resultsPer = new Map<string, number>();
    for (const r of records) if (r.t === 'site-result') resultsPer.set(r.name, (resultsPer.get(r.name) ?? 0) + 1);
    const twice = [...resultsPer].filter(([, n]) => n !== 1);
    if (twice.length) throw new HarnessError(`figure 8: ${twice.length} switches with more than one result journaled`);
    const waveOf = new Map(folded.waves.flatMap((names, w) => names.map((n) => [n, w] as const)));
    for (let w = 1; w < folded.waves.length; w++) {
      let lastResult = -1;
      records.forEach((r, i) => {
        if (r.t === 'site-result' && waveOf.get(r.name) === w - 1) lastResult = i;
      });
      const firstJob = records.findIndex((r) => r.t === 'job' && waveOf.get(r.name) === w);
      if (firstJob < lastResult) throw new HarnessError(`figure 8: wave ${w} started before wave ${w - 1} ended`);
    }
    const over = Object.entries(agentStats.mostAtOnce).filter(([, n]) => n > sizes.concurrency);
    if (over.length) throw new HarnessError(`figure 8: sites over their limit of ${sizes.concurrency}: ${over.map(([s, n]) => `${s} ${n}`).join(', ')}`);

    // Ideal: per wave, the busiest site's switches in batches of `concurrency`, each batch one sleep.
    const idealMs = folded.waves.reduce((sum, names) => {
      const perSite = new Map<string, number>();
      for (const n of names) perSite.set(folded.switches.get(n)!.site!, (perSite.get(folded.switches.get(n)!.site!) ?? 0) + 1);
      return sum + Math.ceil(Math.max(...perSite.values()) / sizes.concurrency) * sizes.sleepMs;
    }, 0);
    const perSecond = (total * 1000) / wallMs;
    return {
      id: '8',
      title: `Multi-site rollout: ${total.toLocaleString('en')} switches in ${sizes.sites} site queues (in-process agents, work = ${sizes.sleepMs} ms sleep, ${sizes.concurrency} per site): wall ÷ ideal`,
      target: 'report',
      value: summarize([wallMs / idealMs]),
      unit: 'ratio',
      absolute: `wall ${seconds(wallMs)} (${perSecond.toFixed(0)} switches/s through the coordinator), ideal ${seconds(idealMs)}; coordinator peak RSS ${mebibytes(coordinatorRss)}; Redis used_memory peak ${mebibytes(redisPeak)}`,
      verdict: 'info',
      note: `every switch one verdict (${total}), ${folded.waves.length} waves in order, at most ${Math.max(...Object.values(agentStats.mostAtOnce))} at once per site (limit ${sizes.concurrency}); wall = spawn to exit of swfw rollout run --engine, start-up included`,
    };
  } finally {
    if (agents) await agents.stop();
    await redis.stop();
  }
}
