/**
 * The job engine's contract, as swfw relies on it, against a real redis-server: idempotent adds,
 * a global concurrency no number of workers exceeds, moveToDelayed at a window's end, pause and
 * drain, the durability refusal, and a Redis ACL user confined to its site's keys.
 */
import { expect } from 'chai';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { PROJECT_ROOT } from '../../src/config/loader.js';
import { connectEngine, siteQueue, type JobEngine } from '../../src/engine/index.js';
import { RefusalError } from '../../src/core/errors.js';
import { silentLogger } from '../../src/core/logger.js';
import { startRedis, type TestRedis } from '../helpers/redis.js';

const PORT = 45000;

async function until(check: () => boolean | Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('timed out waiting');
    await delay(20);
  }
}

describe('job engine contract (BullMQ on a real redis-server)', function () {
  this.timeout(30_000);
  let redis: TestRedis;
  const engines: JobEngine[] = [];
  const engine = async (url = redis.url) => {
    const e = await connectEngine({ url, logger: silentLogger });
    engines.push(e);
    return e;
  };
  let queue: string;
  let n = 0;

  before(async () => {
    redis = await startRedis({ port: PORT });
  });
  after(async () => redis.stop());
  beforeEach(() => {
    queue = siteQueue(`contract-${++n}`);
  });
  afterEach(async () => {
    await Promise.all(engines.splice(0).map((e) => e.close()));
  });

  it('refuses a Redis that can lose jobs, one clause per setting to fix', async () => {
    const lossy = await startRedis({ port: PORT + 1, args: ['--appendonly', 'no', '--maxmemory-policy', 'allkeys-lru'] });
    try {
      let refused: unknown;
      await connectEngine({ url: lossy.url, logger: silentLogger }).catch((err: unknown) => (refused = err));
      expect(refused).to.be.instanceOf(RefusalError);
      expect((refused as Error).message).to.equal(`the job engine at ${lossy.url} can lose jobs: AOF is off (set appendonly yes); maxmemory-policy is allkeys-lru (set maxmemory-policy noeviction)`);
    } finally {
      await lossy.stop();
    }
  });

  it('refuses an engine it cannot reach, and a URL that is not redis:// or rediss://', async () => {
    const errors: string[] = [];
    await connectEngine({ url: `redis://127.0.0.1:${PORT + 2}`, logger: silentLogger, connectTimeoutMs: 2000 }).catch((err: Error) => errors.push(err.message));
    await connectEngine({ url: 'http://127.0.0.1:6379', logger: silentLogger }).catch((err: Error) => errors.push(err.message));
    expect(errors[0]).to.match(new RegExp(`^cannot reach the job engine at redis://127.0.0.1:${PORT + 2}: .*ECONNREFUSED`));
    expect(errors[1]).to.equal('--engine http://127.0.0.1:6379: unsupported scheme http: (use redis:// or rediss://)');
  });

  it('an add with a job ID already in the queue is a no-op, also after the job completed', async () => {
    const e = await engine();
    await e.add(queue, 'transfer', { n: 1 }, { jobId: 'r1.sw-1' });
    await e.add(queue, 'transfer', { n: 2 }, { jobId: 'r1.sw-1' });
    expect((await e.counts(queue)).waiting).to.equal(1);
    const seen: unknown[] = [];
    const consumer = await e.work<{ n: number }>(queue, { concurrency: 1, lockDurationMs: 5000 }, async (job) => {
      seen.push(job.data);
    });
    await until(async () => (await e.counts(queue)).completed === 1);
    await e.add(queue, 'transfer', { n: 3 }, { jobId: 'r1.sw-1' });
    await delay(200);
    await consumer.close();
    expect(seen).to.deep.equal([{ n: 1 }]);
  });

  it('three workers of 4 each never run more than the queue global concurrency (2) at once', async () => {
    const producer = await engine();
    await producer.setConcurrency(queue, 2);
    for (let i = 0; i < 12; i++) await producer.add(queue, 'transfer', { i }, { jobId: `job-${i}` });
    let running = 0;
    let most = 0;
    let done = 0;
    const consumers = await Promise.all(
      [0, 1, 2].map(async () =>
        (await engine()).work(queue, { concurrency: 4, lockDurationMs: 5000 }, async () => {
          most = Math.max(most, ++running);
          await delay(60);
          running--;
          done++;
        }),
      ),
    );
    await until(() => done === 12);
    await Promise.all(consumers.map((c) => c.close()));
    expect(most).to.equal(2);
  });

  it('a job started after its window closed is put back until the next opening (moveToDelayed), keeping its attempts', async () => {
    const e = await engine();
    await e.add(queue, 'transfer', {}, { jobId: 'windowed', attempts: 3 });
    const runs: { at: number; attemptsMade: number }[] = [];
    let reopensAt = 0;
    const consumer = await e.work(queue, { concurrency: 1, lockDurationMs: 5000 }, async (job) => {
      runs.push({ at: Date.now(), attemptsMade: job.attemptsMade });
      if (runs.length === 1) {
        reopensAt = Date.now() + 400;
        throw await job.delayUntil(reopensAt);
      }
    });
    await until(async () => (await e.counts(queue)).delayed === 1, 2000);
    await until(async () => (await e.counts(queue)).completed === 1);
    await consumer.close();
    expect(runs).to.have.length(2);
    expect(runs[1]!.at).to.be.at.least(reopensAt);
    expect(runs[1]!.attemptsMade).to.equal(0);
  });

  it('pause starts no new job while the running one finishes; drain(true) removes waiting and delayed jobs', async () => {
    const e = await engine();
    let release!: () => void;
    const started: string[] = [];
    const consumer = await e.work(queue, { concurrency: 1, lockDurationMs: 5000 }, async (job) => {
      started.push(job.id);
      if (job.id === 'first') await new Promise<void>((resolve) => (release = resolve));
    });
    await e.add(queue, 'transfer', {}, { jobId: 'first' });
    await until(() => started.length === 1);
    await e.pause(queue);
    await e.add(queue, 'transfer', {}, { jobId: 'second' });
    await e.add(queue, 'transfer', {}, { jobId: 'later', delayMs: 60_000 });
    release();
    await until(async () => (await e.counts(queue)).completed === 1);
    await delay(300);
    expect(started).to.deep.equal(['first']);
    expect(await e.isPaused(queue)).to.equal(true);
    await e.drain(queue, true);
    const counts = await e.counts(queue);
    expect(counts.waiting + counts.delayed).to.equal(0);
    await e.resume(queue);
    await delay(200);
    await consumer.close();
    expect(started).to.deep.equal(['first']);
  });

  it('TLS (rediss://): works with the CA of the server certificate, and is refused without it, naming why', async () => {
    const tls = join(PROJECT_ROOT, 'fixtures', 'tls');
    const secure = await startRedis({ port: PORT + 3, args: ['--port', '0', '--tls-port', String(PORT + 3), '--tls-cert-file', join(tls, 'server.crt'), '--tls-key-file', join(tls, 'server.key'), '--tls-auth-clients', 'no'] });
    try {
      const url = `rediss://127.0.0.1:${PORT + 3}`;
      let refused = '';
      await connectEngine({ url, logger: silentLogger, connectTimeoutMs: 3000 }).catch((err: Error) => (refused = err.message));
      expect(refused).to.match(new RegExp(`^cannot reach the job engine at ${url}: .*self.signed certificate`));
      const e = await connectEngine({ url, caFile: join(tls, 'server.crt'), logger: silentLogger });
      engines.push(e);
      await e.add(queue, 'transfer', { tls: true }, { jobId: 'over-tls' });
      let ran = 0;
      const consumer = await e.work(queue, { concurrency: 1, lockDurationMs: 5000 }, async () => {
        ran++;
      });
      await until(() => ran === 1);
      await consumer.close();
      await Promise.all(engines.splice(0).map((x) => x.close()));
    } finally {
      await secure.stop();
    }
  });

  it('close() returns when Redis is gone (an agent stopping while its site is cut off), leaving nothing behind', async () => {
    const doomed = await startRedis({ port: PORT + 4 });
    const e = await connectEngine({ url: doomed.url, logger: silentLogger });
    await e.work(queue, { concurrency: 1, lockDurationMs: 5000 }, async () => {});
    await doomed.kill();
    await e.close();
    await doomed.stop();
  });

  it("an ACL user limited to its site's keys works its own queue and is refused another site's", async () => {
    const admin = await engine();
    // The ACL of MULTISITE §3.7: the site's queue keys and the results queues, nothing else.
    const rules = ['on', '>agent-secret', '~bull:swfw.site.acl-a:*', '~bull:swfw.results.*', '&*', '+@all'];
    const redisAdmin = await import('node:child_process');
    redisAdmin.execFileSync('redis-cli', ['-p', String(PORT), 'ACL', 'SETUSER', 'agent-a', 'reset', ...rules]);
    const agent = await engine(`redis://agent-a:agent-secret@127.0.0.1:${PORT}`);
    expect(agent.displayUrl).to.equal(`redis://agent-a:***@127.0.0.1:${PORT}`);
    await admin.add(siteQueue('acl-a'), 'transfer', { ok: true }, { jobId: 'acl-1' });
    let ran = 0;
    const consumer = await agent.work(siteQueue('acl-a'), { concurrency: 1, lockDurationMs: 5000 }, async () => {
      ran++;
    });
    await until(() => ran === 1);
    await consumer.close();
    let refused: unknown = null;
    await agent.add(siteQueue('acl-b'), 'transfer', {}, { jobId: 'acl-2' }).catch((err: unknown) => (refused = err));
    expect(String(refused)).to.match(/NOPERM/);
  });
});
