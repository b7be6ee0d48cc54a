/**
 * Root hooks that fail a test which leaves sockets, servers, timers or child processes behind
 * (pyftpdlib's tests do the same). Resources may take a moment to close after a test ends,
 * so the check waits up to LEAK_SETTLE_MS for the counts to return to what they were before.
 */
import { createHook } from 'node:async_hooks';

/** SWFW_LEAK_DEBUG=1 records where each live resource was created and prints it on a leak. */
const origins = new Map<number, string>();
if (process.env['SWFW_LEAK_DEBUG']) {
  Error.stackTraceLimit = 50;
  createHook({
    init(id, type) {
      if (WATCHED.has(type)) origins.set(id, `${type} ${new Error().stack!.split('\n').filter((l) => !l.includes('node:')).slice(1, 8).join('\n    ')}`);
    },
    destroy(id) {
      origins.delete(id);
    },
  }).enable();
}

const WATCHED = new Set(['TCPSocketWrap', 'TCPServerWrap', 'TLSWrap', 'Timeout', 'ProcessWrap', 'PipeWrap']);
const LEAK_SETTLE_MS = 3500;
const POLL_MS = 25;

type Counts = Map<string, number>;

function count(): Counts {
  const counts: Counts = new Map();
  for (const type of process.getActiveResourcesInfo()) {
    if (WATCHED.has(type)) counts.set(type, (counts.get(type) ?? 0) + 1);
  }
  return counts;
}

function excess(before: Counts, now: Counts): string[] {
  const extra: string[] = [];
  for (const [type, n] of now) {
    const was = before.get(type) ?? 0;
    if (n > was) extra.push(`${n - was} ${type}`);
  }
  return extra;
}

async function settle(before: Counts): Promise<string[]> {
  const deadline = Date.now() + LEAK_SETTLE_MS;
  for (;;) {
    // The poll timer itself is one Timeout; it is not running while counting.
    const extra = excess(before, count());
    if (extra.length === 0 || Date.now() > deadline) return extra;
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
  }
}

let suiteBaseline: Counts = new Map();
let testBaseline: Counts = new Map();

export const mochaHooks = {
  // Every hook counts after its first await: by then mocha has armed the hook's own timeout
  // timer, so that timer is in the baseline and in every later count alike.
  async beforeAll(): Promise<void> {
    await null;
    suiteBaseline = count();
  },
  async beforeEach(): Promise<void> {
    await null;
    testBaseline = count();
  },
  async afterEach(): Promise<void> {
    await null;
    const extra = await settle(testBaseline);
    if (extra.length > 0) {
      if (origins.size) console.error([...origins.values()].join('\n'));
      throw new Error(`test leaked: ${extra.join(', ')}`);
    }
  },
  async afterAll(): Promise<void> {
    await null;
    const extra = await settle(suiteBaseline);
    if (extra.length > 0) throw new Error(`test run leaked: ${extra.join(', ')}`);
  },
};
