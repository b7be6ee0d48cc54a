/**
 * Figure 8's site agents: N real SiteAgents (real BullMQ workers, real journals, real result
 * posts) in this one process, whose work on a switch is a short sleep instead of SSH and FTP, so
 * 100 sites fit on two cores. It records how many switches each site worked on at once.
 *
 *   node multisiteAgents.js ENGINE_URL SITES CONCURRENCY SLEEP_MS STATE_DIR
 *
 * Prints "ready" once every agent takes jobs; on SIGTERM stops them and prints one JSON line:
 * { "jobs": n, "mostAtOnce": { site: n, … } }.
 */
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { connectEngine, type JobEngine } from '../src/engine/index.js';
import { silentLogger } from '../src/core/logger.js';
import { loadServerConfig } from '../src/config/loader.js';
import { FirmwareServer } from '../src/server/server.js';
import { SiteAgent } from '../src/rollout/index.js';
import { findImage, loadCatalog } from '../src/catalog/index.js';
import { PROJECT_ROOT } from '../src/config/loader.js';
import type { SwitchJob, SwitchWorkContext } from '../src/rollout/transfer.js';

const [url, sitesText, concurrencyText, sleepText, stateDir] = process.argv.slice(2);
const sites = Number(sitesText);
const concurrency = Number(concurrencyText);
const sleepMs = Number(sleepText);

const running = new Map<string, number>();
const most = new Map<string, number>();
let jobs = 0;

/** The work on one switch: journaled like the real one (pre-check, verdict), with a sleep between. */
async function sleepWork(ctx: SwitchWorkContext, job: SwitchJob): Promise<void> {
  const site = job.switch?.site ?? '?';
  const now = (running.get(site) ?? 0) + 1;
  running.set(site, now);
  most.set(site, Math.max(most.get(site) ?? 0, now));
  jobs++;
  try {
    await ctx.journal.append({ t: 'switch', name: job.name, phase: 'precheck' });
    await sleep(sleepMs);
    await ctx.journal.append({ t: 'switch', name: job.name, phase: 'done', outcome: 'verified', reason: 'benchmark: a sleep', verdict: 'verified', hashes: null });
  } finally {
    running.set(site, running.get(site)! - 1);
  }
}

// The coordinator's plan uses the fixture catalog: so do the agents (they check the image's SHA-256).
const catalog = await loadCatalog(join(PROJECT_ROOT, 'fixtures', 'images'));
// One real server, shared: the agents need one for their grant desks, and the sleep never grants.
const config = loadServerConfig({ env: {}, flags: { host: '127.0.0.1', port: '0', pasvRange: '42030-42034', images: join(PROJECT_ROOT, 'fixtures', 'images'), logLevel: 'error' } });
const server = new FirmwareServer({ config, accounts: [], logger: silentLogger });
server.setMaxListeners(0);
await server.start();
const engines: JobEngine[] = [];
const agents: SiteAgent[] = [];
for (let i = 0; i < sites; i++) {
  const site = `s${String(i).padStart(3, '0')}`;
  const engine = await connectEngine({ url: url!, logger: silentLogger });
  engines.push(engine);
  const agent = new SiteAgent({
    site,
    engine,
    server,
    serverAddress: '127.0.0.1',
    passivePorts: 5,
    findImage: (file) => findImage(catalog, file) ?? undefined,
    stateDir: join(stateDir!, site),
    concurrency,
    lockDurationMs: 60_000,
    logger: silentLogger,
    work: sleepWork,
  });
  await agent.start();
  agents.push(agent);
}
process.stdout.write('ready\n');
process.once('SIGTERM', () => {
  void (async () => {
    for (const agent of agents) await agent.stop();
    for (const engine of engines) await engine.close();
    await server.stop(0);
    process.stdout.write(`${JSON.stringify({ jobs, mostAtOnce: Object.fromEntries(most) })}\n`);
    process.exit(0);
  })();
});
