/**
 * The job engine of multi-site rollouts: durable queues, leases, delays and pause, from BullMQ on
 * Redis (engine/bullmq.ts). swfw writes no queue or lease code of its own.
 *
 * This module never loads bullmq or ioredis: `connectEngine` imports engine/bullmq.ts when it is
 * first called, so a single-site rollout (no `--engine`) never has them in its module graph.
 */
import { RefusalError } from '../core/errors.js';
import type { Logger } from '../core/logger.js';

/**
 * Queue names: one per site (`swfw.site.<site>`), and per rollout one results queue per site
 * (`swfw.results.<rollout>.<site>`), so a site's Redis ACL user can post results for its own
 * switches only (`~bull:swfw.site.<site>:* ~bull:swfw.results.*.<site>:*`). BullMQ forbids `:`.
 */
export const siteQueue = (site: string): string => `swfw.site.${site}`;
export const resultsQueue = (rolloutId: string, site: string): string => `swfw.results.${rolloutId}.${site}`;

/** A site name: what the inventory's `site`, the plan's `sites` and `swfw agent --site` hold. */
export const SITE_NAME = /^[A-Za-z0-9][A-Za-z0-9_-]{0,62}$/;

export interface EngineOptions {
  /** `redis://[user:password@]host:port[/db]` or `rediss://…` (TLS). */
  url: string;
  /** PEM file of the CA that signed the Redis server's certificate (rediss:// only); default: the system's CAs. */
  caFile?: string;
  logger: Logger;
  /** How long to wait for the first connection, ms; default 10,000. */
  connectTimeoutMs?: number;
}

/** One job as a handler sees it. */
export interface EngineJob<T> {
  id: string;
  data: T;
  /** Attempts made before this one (0 on the first). */
  attemptsMade: number;
  /** Attempts the job may make in all. */
  attempts: number;
  /**
   * Puts the job back in its queue until `at` (epoch ms), keeping its ID and attempts. The handler
   * must then throw the error this returns, and nothing else.
   */
  delayUntil(at: number): Promise<Error>;
}

export interface AddOptions {
  /** The job ID: a second add with the same ID is a no-op while the first job exists. */
  jobId: string;
  /** Held back this long before it may start, ms; default 0. */
  delayMs?: number;
  /** Attempts in all (a handler that throws is retried with exponential backoff); default 1. */
  attempts?: number;
  backoffMs?: number;
}

export interface WorkOptions {
  /** Jobs this process runs at once. */
  concurrency: number;
  /** How long a job's lease lasts without renewal, ms (renewed every half of it). */
  lockDurationMs: number;
  /** How often leases are checked for expiry, ms; default: lockDurationMs. */
  stalledIntervalMs?: number;
  /** How often a job may lose its lease before it fails; default 3. */
  maxStalledCount?: number;
}

export interface QueueCounts {
  waiting: number;
  delayed: number;
  active: number;
  completed: number;
  failed: number;
}

export type JobState = 'waiting' | 'delayed' | 'active' | 'completed' | 'failed' | 'unknown';

export interface Consumer {
  /** Stops taking jobs; waits for running ones unless `force`. */
  close(force?: boolean): Promise<void>;
}

export interface JobEngine {
  /** The engine's URL with any password replaced by `***`: what logs and journals may hold. */
  readonly displayUrl: string;
  /** What makes this Redis unfit to hold jobs (AOF off or never fsynced, an evicting memory policy); empty when fit. */
  durabilityProblems(): Promise<string[]>;
  add<T>(queue: string, name: string, data: T, options: AddOptions): Promise<void>;
  /** Jobs of `queue` running at once across every worker: the engine's global concurrency. */
  setConcurrency(queue: string, limit: number): Promise<void>;
  pause(queue: string): Promise<void>;
  resume(queue: string): Promise<void>;
  isPaused(queue: string): Promise<boolean>;
  /** Removes every waiting job, and with `delayed` the delayed ones too; running jobs go on. */
  drain(queue: string, delayed: boolean): Promise<void>;
  counts(queue: string): Promise<QueueCounts>;
  /** The state of a job: `unknown` when the queue has no job of that ID (a Redis that lost data has lost it). */
  jobState(queue: string, jobId: string): Promise<JobState>;
  /** Removes the queue and every job and key of it (a rollout's results queue once it has ended). */
  removeQueue(queue: string): Promise<void>;
  /** Workers connected to `queue` (agent liveness). */
  workers(queue: string): Promise<number>;
  work<T>(queue: string, options: WorkOptions, handler: (job: EngineJob<T>) => Promise<void>): Promise<Consumer>;
  /** The server's `INFO memory` used_memory, bytes (for the scale figure). */
  usedMemory(): Promise<number>;
  close(): Promise<void>;
}

/** `redis://user:secret@host:6379` → `redis://user:***@host:6379`. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString().replace(/\/$/, '');
  } catch {
    return '(unparsable engine URL)';
  }
}

/** Checks an engine URL's form; the problem in words, or null. */
export function engineUrlProblem(url: string): string | null {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return 'must be a URL such as redis://host:6379 or rediss://user:password@host:6380';
  }
  if (u.protocol !== 'redis:' && u.protocol !== 'rediss:') return `unsupported scheme ${u.protocol} (use redis:// or rediss://)`;
  if (!u.hostname) return 'names no host';
  return null;
}

/**
 * Connects to the engine, loading BullMQ only now. Refuses (RefusalError, exit 2) an unreachable
 * engine, and one that can lose jobs: Redis without AOF (`appendonly yes`), or with a
 * `maxmemory-policy` other than `noeviction` (BullMQ's production guide: evicted keys are lost
 * jobs). One line names each problem and the setting that fixes it.
 */
export async function connectEngine(options: EngineOptions): Promise<JobEngine> {
  const problem = engineUrlProblem(options.url);
  if (problem) throw new RefusalError(`--engine ${redactUrl(options.url)}: ${problem}`);
  const { openBullmqEngine } = await import('./bullmq.js');
  const engine = await openBullmqEngine(options);
  let problems: string[];
  try {
    problems = await engine.durabilityProblems();
  } catch (err) {
    await engine.close();
    // NOPERM for INFO: an ACL user too narrow for BullMQ (it needs INFO and its scripts).
    throw new RefusalError(`the job engine at ${engine.displayUrl} refused a command swfw needs: ${(err as Error).message}`);
  }
  if (problems.length) {
    await engine.close();
    throw new RefusalError(`the job engine at ${engine.displayUrl} can lose jobs: ${problems.join('; ')}`);
  }
  return engine;
}
