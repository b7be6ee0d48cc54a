/**
 * The job engine on BullMQ and Redis: the only module that imports bullmq or ioredis, and it is
 * loaded lazily (engine/index.ts connectEngine), so single-site rollouts never load either.
 */
import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { DelayedError, Queue, Worker, type Job } from 'bullmq';
import { Redis, type RedisOptions } from 'ioredis';
import { RefusalError, describeError } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import { redactUrl, type AddOptions, type Consumer, type EngineJob, type EngineOptions, type JobEngine, type JobState, type QueueCounts, type WorkOptions } from './index.js';

/** Completed jobs are kept this long, so a coordinator resumed within it re-adds nothing (its add is a no-op). */
const KEEP_COMPLETED_SECONDS = 14 * 24 * 3600;
/** Reconnection backoff: 0.2 s, 0.4 s, … at most 2 s, forever (a site may be cut off for hours). */
const reconnectDelay = (attempt: number) => Math.min(attempt * 200, 2000);
/** How long close() waits for Redis before it drops the connections (an unreachable engine). */
const CLOSE_GRACE_MS = 5000;
/**
 * Seconds an idle worker blocks on Redis (BZPOPMIN) before it looks again (BullMQ's drainDelay,
 * default 5). BullMQ guards each block with a timer of this plus a second, which a close while
 * Redis is unreachable cannot clear: it outlives close() by up to that long and holds the
 * process open. One second keeps that short; an idle site's worker then asks Redis once a second.
 */
const WORKER_BLOCK_SECONDS = 1;
/** Connection errors are logged once per this interval, not once per retry. */
const ERROR_LOG_INTERVAL_MS = 30_000;

export async function openBullmqEngine(options: EngineOptions): Promise<JobEngine> {
  const url = new URL(options.url);
  const redisOptions: RedisOptions = {
    // BullMQ's workers block on Redis and must never give a command up (its documented setting).
    maxRetriesPerRequest: null,
    lazyConnect: true,
    // Its INFO check would print ioredis's own warning for an ACL user without INFO; swfw pings,
    // then checks the settings itself, and names what is refused.
    enableReadyCheck: false,
    retryStrategy: reconnectDelay,
    connectionName: 'swfw',
  };
  if (url.protocol === 'rediss:') {
    // SNI carries names only (RFC 6066 §3); an IP address is checked against the certificate's IP SANs.
    const host = url.hostname.replace(/^\[|\]$/g, '');
    redisOptions.tls = { ...(isIP(host) ? {} : { servername: host }), ...(options.caFile ? { ca: readFileSync(options.caFile) } : {}) };
  }
  const redis = new Redis(options.url, redisOptions);
  const displayUrl = redactUrl(options.url);
  const logger = options.logger.child({ component: 'engine', engine: displayUrl });
  let lastErrorLog = 0;
  /** The socket's own error (ECONNREFUSED, a TLS failure): connect() itself only says "Connection is closed". */
  let lastError: Error | null = null;
  /** Before the first connection an error is the refusal's reason, not a log line. */
  let connected = false;
  const onError = (err: Error) => {
    lastError = err;
    if (!connected) return;
    const now = Date.now();
    if (now - lastErrorLog < ERROR_LOG_INTERVAL_MS) return;
    lastErrorLog = now;
    logger.warn('job engine connection error (retrying)', { error: describeError(err) });
  };
  redis.on('error', onError);
  const timeoutMs = options.connectTimeoutMs ?? 10_000;
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      redis.connect(),
      new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error(`no answer in ${timeoutMs / 1000} s`)), timeoutMs);
      }),
    ]);
    await redis.ping();
    connected = true;
  } catch (err) {
    redis.disconnect();
    throw new RefusalError(`cannot reach the job engine at ${displayUrl}: ${describeError(lastError ?? err)}`);
  } finally {
    clearTimeout(timer);
  }
  return new BullmqEngine(redis, displayUrl, logger, onError);
}

class BullmqEngine implements JobEngine {
  private readonly queues = new Map<string, Queue>();
  private readonly running = new Set<Worker>();

  constructor(
    private readonly redis: Redis,
    readonly displayUrl: string,
    private readonly logger: Logger,
    private readonly onError: (err: Error) => void,
  ) {}

  private queue(name: string): Queue {
    let queue = this.queues.get(name);
    if (!queue) {
      queue = new Queue(name, { connection: this.redis });
      queue.on('error', this.onError);
      this.queues.set(name, queue);
    }
    return queue;
  }

  async durabilityProblems(): Promise<string[]> {
    const problems: string[] = [];
    const field = (info: string, key: string) => new RegExp(`^${key}:(.*)$`, 'm').exec(info)?.[1]?.trim() ?? null;
    const persistence = await this.redis.info('persistence');
    if (field(persistence, 'aof_enabled') !== '1') problems.push('AOF is off (set appendonly yes)');
    const memory = await this.redis.info('memory');
    const policy = field(memory, 'maxmemory_policy');
    if (policy !== 'noeviction') problems.push(`maxmemory-policy is ${policy ?? 'unknown'} (set maxmemory-policy noeviction)`);
    // appendfsync is not in INFO; CONFIG may be denied to an ACL user, and then it goes unchecked.
    const fsync = await (this.redis.config('GET', 'appendfsync') as Promise<string[]>).catch(() => null);
    if (fsync?.[1] === 'no') problems.push('appendfsync is no: the OS may keep 30 s of jobs unwritten (set appendfsync always or everysec)');
    return problems;
  }

  async add<T>(queue: string, name: string, data: T, options: AddOptions): Promise<void> {
    await this.queue(queue).add(name, data, {
      jobId: options.jobId,
      delay: options.delayMs ?? 0,
      attempts: options.attempts ?? 1,
      backoff: { type: 'exponential', delay: options.backoffMs ?? 5000 },
      removeOnComplete: { age: KEEP_COMPLETED_SECONDS },
      removeOnFail: { age: KEEP_COMPLETED_SECONDS },
    });
  }

  async setConcurrency(queue: string, limit: number): Promise<void> {
    await this.queue(queue).setGlobalConcurrency(limit);
  }

  async pause(queue: string): Promise<void> {
    await this.queue(queue).pause();
  }

  async resume(queue: string): Promise<void> {
    await this.queue(queue).resume();
  }

  isPaused(queue: string): Promise<boolean> {
    return this.queue(queue).isPaused();
  }

  async drain(queue: string, delayed: boolean): Promise<void> {
    await this.queue(queue).drain(delayed);
  }

  async counts(queue: string): Promise<QueueCounts> {
    const c = await this.queue(queue).getJobCounts('waiting', 'delayed', 'active', 'completed', 'failed');
    return { waiting: c['waiting'] ?? 0, delayed: c['delayed'] ?? 0, active: c['active'] ?? 0, completed: c['completed'] ?? 0, failed: c['failed'] ?? 0 };
  }

  async jobState(queue: string, jobId: string): Promise<JobState> {
    const state = await this.queue(queue).getJobState(jobId);
    // Prioritized and waiting-children jobs are waiting to us: no swfw job uses either.
    return state === 'prioritized' || state === 'waiting-children' ? 'waiting' : state;
  }

  async removeQueue(queue: string): Promise<void> {
    await this.queue(queue).obliterate({ force: true });
    await this.queues.get(queue)?.close();
    this.queues.delete(queue);
  }

  workers(queue: string): Promise<number> {
    return this.queue(queue).getWorkersCount();
  }

  async work<T>(queue: string, options: WorkOptions, handler: (job: EngineJob<T>) => Promise<void>): Promise<Consumer> {
    const worker = new Worker<T>(
      queue,
      async (job: Job<T>, token?: string) => {
        await handler({
          id: job.id!,
          data: job.data,
          attemptsMade: job.attemptsMade,
          attempts: job.opts.attempts ?? 1,
          delayUntil: async (at: number) => {
            await job.moveToDelayed(at, token);
            return new DelayedError();
          },
        });
      },
      {
        connection: this.redis,
        concurrency: options.concurrency,
        lockDuration: options.lockDurationMs,
        stalledInterval: options.stalledIntervalMs ?? options.lockDurationMs,
        maxStalledCount: options.maxStalledCount ?? 3,
        drainDelay: WORKER_BLOCK_SECONDS,
        removeOnComplete: { age: KEEP_COMPLETED_SECONDS },
        removeOnFail: { age: KEEP_COMPLETED_SECONDS },
      },
    );
    worker.on('error', this.onError);
    worker.on('failed', (job, err) => {
      if (job) this.logger.warn('job failed', { queue, job: job.id, attemptsMade: job.attemptsMade, error: err.message });
    });
    this.running.add(worker);
    await worker.waitUntilReady();
    return {
      close: async (force = false) => {
        await worker.close(force);
        // Only once closed: until then the engine's own close() can still drop its connections
        // (a close that waits for an engine that is gone).
        this.running.delete(worker);
      },
    };
  }

  async usedMemory(): Promise<number> {
    return Number(/^used_memory:(\d+)/m.exec(await this.redis.info('memory'))?.[1] ?? 0);
  }

  async close(): Promise<void> {
    const workers = [...this.running];
    const queues = [...this.queues.values()];
    this.running.clear();
    this.queues.clear();
    const graceful = (async () => {
      await Promise.all(workers.map((w) => w.close(true)));
      await Promise.all(queues.map((q) => q.close()));
      await this.redis.quit();
    })().catch(() => {});
    // An unreachable Redis would hold a graceful close (and the process) until it comes back.
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([graceful, new Promise<void>((resolve) => (timer = setTimeout(resolve, CLOSE_GRACE_MS)))]);
    clearTimeout(timer);
    // After a graceful close these are no-ops; after the grace they stop the reconnecting.
    this.redis.disconnect();
    const dropped = Promise.allSettled([...workers, ...queues].map((c) => c.disconnect()));
    await Promise.race([dropped, new Promise<void>((resolve) => (timer = setTimeout(resolve, CLOSE_GRACE_MS)))]);
    clearTimeout(timer);
  }
}
