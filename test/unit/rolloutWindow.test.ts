import { expect } from 'chai';
import { Limits } from '../../src/core/limits.js';
import { validatePlan } from '../../src/rollout/plan.js';
import { nextWindow, parseDuration, runInWindows, waitForWindow, type MaintenanceWindow } from '../../src/rollout/window.js';

const HOUR = 3_600_000;
const iso = (t: number) => new Date(t).toISOString();
const at = (text: string) => Date.parse(text);
const basePlan = { targets: { 'cisco-ios-xe': 'cisco/x.bin' }, server: { address: '127.0.0.1', images: '/srv/images' } };

/** A fake clock: sleeping advances it, and every sleep is recorded. */
function fakeClock(start: number) {
  const sleeps: number[] = [];
  let now = start;
  return {
    sleeps,
    clock: {
      now: () => now,
      sleep: async (ms: number) => {
        sleeps.push(ms);
        now += ms;
      },
    },
  };
}

describe('maintenance windows: cron + duration in a time zone', function () {
  const weeknights: MaintenanceWindow = { kind: 'cron', cron: '0 22 * * 1-5', durationMs: 7 * HOUR, timeZone: 'Europe/Berlin' };

  it('is open inside a window and names the next one outside it (weekdays only)', function () {
    // Friday 2026-06-12 23:30 in Berlin (CEST, UTC+2): Friday's window, 22:00-05:00 local.
    expect(nextWindow(weeknights, at('2026-06-12T21:30:00Z'))).to.deep.equal({ opensAt: at('2026-06-12T20:00:00Z'), closesAt: at('2026-06-13T03:00:00Z') });
    // Saturday 23:30: no window on weekends; the next is Monday 22:00.
    const { opensAt, closesAt } = nextWindow(weeknights, at('2026-06-13T21:30:00Z'));
    expect([iso(opensAt), iso(closesAt)]).to.deep.equal(['2026-06-15T20:00:00.000Z', '2026-06-16T03:00:00.000Z']);
    // Saturday 04:59 (Friday night's window still open), and 05:00 exactly (closed: the end is exclusive).
    expect(nextWindow(weeknights, at('2026-06-13T02:59:00Z')).opensAt).to.equal(at('2026-06-12T20:00:00Z'));
    expect(nextWindow(weeknights, at('2026-06-13T03:00:00Z')).opensAt).to.equal(at('2026-06-15T20:00:00Z'));
  });

  it('follows the zone across a DST change: 22:00 local is 21:00Z in winter, 20:00Z in summer; the duration is elapsed time', function () {
    // Berlin springs forward on 2026-03-29. Friday 27 March opens at 22:00 CET.
    expect(nextWindow(weeknights, at('2026-03-27T12:00:00Z')).opensAt).to.equal(at('2026-03-27T21:00:00Z'));
    expect(nextWindow(weeknights, at('2026-03-28T12:00:00Z'))).to.deep.equal({ opensAt: at('2026-03-30T20:00:00Z'), closesAt: at('2026-03-31T03:00:00Z') });
    const daily: MaintenanceWindow = { kind: 'cron', cron: '0 22 * * *', durationMs: 7 * HOUR, timeZone: 'Europe/Berlin' };
    // The night of the change: opens 22:00 CET (21:00Z), 7 h later is 06:00 CEST.
    expect(nextWindow(daily, at('2026-03-28T22:00:00Z'))).to.deep.equal({ opensAt: at('2026-03-28T21:00:00Z'), closesAt: at('2026-03-29T04:00:00Z') });
  });

  it('openings that overlap or touch make one window (cut off after the longest window, 7 days)', function () {
    // Hourly for 2 h: always open. It used to close at 12:00, though the 11:00 opening runs to 13:00.
    const hourly: MaintenanceWindow = { kind: 'cron', cron: '0 * * * *', durationMs: 2 * HOUR, timeZone: 'UTC' };
    // Merged until the first end at or past 7 days after the opening.
    expect(nextWindow(hourly, at('2026-06-01T10:30:00Z'))).to.deep.equal({ opensAt: at('2026-06-01T09:00:00Z'), closesAt: at('2026-06-08T10:00:00Z') });
    // Weeknights 22:00 for 7 h do not touch: each night is its own window.
    const nights: MaintenanceWindow = { kind: 'cron', cron: '0 22 * * *', durationMs: 7 * HOUR, timeZone: 'UTC' };
    expect(nextWindow(nights, at('2026-06-01T23:00:00Z'))).to.deep.equal({ opensAt: at('2026-06-01T22:00:00Z'), closesAt: at('2026-06-02T05:00:00Z') });
    // Back to back: every 6 h for 6 h.
    const quarters: MaintenanceWindow = { kind: 'cron', cron: '0 */6 * * *', durationMs: 6 * HOUR, timeZone: 'UTC' };
    expect(nextWindow(quarters, at('2026-06-01T01:00:00Z')).closesAt).to.equal(at('2026-06-08T00:00:00Z'));
    // A daily window from midnight to midnight is the whole week too.
    const allDay: MaintenanceWindow = { kind: 'daily', start: '00:00', end: '00:00', timeZone: 'UTC' };
    expect(nextWindow(allDay, at('2026-06-01T12:00:00Z'))).to.deep.equal({ opensAt: at('2026-06-01T00:00:00Z'), closesAt: at('2026-06-08T00:00:00Z') });
  });

  it('parses durations', function () {
    expect(parseDuration('7h')).to.equal(7 * HOUR);
    expect(parseDuration('90m')).to.equal(90 * 60_000);
    expect(parseDuration('1h30m')).to.equal(90 * 60_000);
    expect(parseDuration('0m')).to.be.a('string');
    expect(parseDuration('8d')).to.be.a('string');
    expect(parseDuration('169h')).to.be.a('string');
  });

  it('plan validation: one problem per field, with its path', function () {
    const ok = validatePlan({ ...basePlan, window: { cron: '0 22 * * 1-5', duration: '7h', timeZone: 'Europe/Berlin' } }, '/');
    expect(ok.problems.list).to.deep.equal([]);
    expect(ok.plan!.window).to.deep.equal({ kind: 'cron', cron: '0 22 * * 1-5', durationMs: 7 * HOUR, timeZone: 'Europe/Berlin' });
    const bad = validatePlan({ ...basePlan, window: { cron: '61 22 * * *', duration: 'soon', timeZone: 'Mars/Olympus' } }, '/');
    expect(bad.problems.list.map((p) => p.path).sort()).to.deep.equal(['window.duration', 'window.timeZone']);
    const badCron = validatePlan({ ...basePlan, window: { cron: '61 22 * * *', duration: '1h', timeZone: 'UTC' } }, '/');
    expect(badCron.problems.list).to.have.length(1);
    expect(badCron.problems.list[0]).to.deep.include({ path: 'window.cron' });
    expect(badCron.problems.list[0]!.message).to.match(/minute/);
    const never = validatePlan({ ...basePlan, window: { cron: '0 0 31 2 *', duration: '1h', timeZone: 'UTC' } }, '/');
    expect(never.problems.list).to.deep.equal([{ path: 'window.cron', message: 'never matches' }]);
    const mixed = validatePlan({ ...basePlan, window: { cron: '0 22 * * *', duration: '1h', start: '22:00', end: '05:00', timeZone: 'UTC' } }, '/');
    expect(mixed.problems.list.map((p) => p.path)).to.deep.equal(['window']);
    const missing = validatePlan({ ...basePlan, window: { cron: '0 22 * * *' } }, '/');
    expect(missing.problems.list.map((p) => p.path).sort()).to.deep.equal(['window.duration', 'window.timeZone']);
    const backwards = validatePlan({ ...basePlan, window: { notBefore: '2026-06-02T00:00:00Z', notAfter: '2026-06-01T00:00:00Z' } }, '/');
    expect(backwards.problems.list).to.deep.equal([{ path: 'window.notAfter', message: 'must be later than window.notBefore' }]);
  });

  it('waitForWindow sleeps in chunks on the injected clock until the window opens', async function () {
    // Saturday noon → Monday 22:00 Berlin: 58 hours, never one long sleep.
    const start = at('2026-06-13T10:00:00Z');
    const { clock, sleeps } = fakeClock(start);
    const announced: number[] = [];
    const open = await waitForWindow(weeknights, clock, (next) => announced.push(next.opensAt));
    expect(open).to.deep.equal({ opensAt: at('2026-06-15T20:00:00Z'), closesAt: at('2026-06-16T03:00:00Z') });
    expect(clock.now()).to.equal(at('2026-06-15T20:00:00Z'));
    expect(Math.max(...sleeps)).to.be.at.most(Limits.SCHEDULE_SLEEP_CHUNK_MS);
    expect(sleeps.reduce((a, b) => a + b, 0)).to.equal(at('2026-06-15T20:00:00Z') - start);
    expect(announced).to.deep.equal([at('2026-06-15T20:00:00Z')]);
  });

  it('waitForWindow returns at once inside a window, and skips a window missed while asleep', async function () {
    const { clock, sleeps } = fakeClock(at('2026-06-12T21:30:00Z'));
    expect((await waitForWindow(weeknights, clock))?.opensAt).to.equal(at('2026-06-12T20:00:00Z'));
    expect(sleeps).to.deep.equal([]);
    // A host suspended across Monday's whole window wakes on Tuesday and waits for Tuesday's.
    let now = at('2026-06-15T19:59:00Z');
    const seen: number[] = [];
    await waitForWindow(weeknights, {
      now: () => now,
      sleep: async () => {
        now = now < at('2026-06-16T12:00:00Z') ? at('2026-06-16T12:00:00Z') : now + Limits.SCHEDULE_SLEEP_CHUNK_MS;
      },
    }, (next) => seen.push(next.opensAt));
    expect(seen).to.deep.equal([at('2026-06-15T20:00:00Z'), at('2026-06-16T20:00:00Z')]);
    expect(now).to.be.within(at('2026-06-16T20:00:00Z'), at('2026-06-16T20:01:00Z'));
  });

  it('an absolute window a month away never asks for a sleep past the timer limit', async function () {
    const start = at('2026-06-01T00:00:00Z');
    const { clock, sleeps } = fakeClock(start);
    await waitForWindow({ kind: 'absolute', notBefore: start + 40 * 24 * HOUR, notAfter: null }, clock);
    expect(Math.max(...sleeps)).to.be.at.most(Limits.SCHEDULE_SLEEP_CHUNK_MS);
  });

  it('waitForWindow gives null at once for an absolute window that has ended (it used to poll every millisecond forever)', async function () {
    const { clock, sleeps } = fakeClock(at('2026-06-01T00:00:00Z'));
    expect(await waitForWindow({ kind: 'absolute', notBefore: null, notAfter: at('2026-05-31T23:00:00Z') }, clock)).to.equal(null);
    expect(sleeps).to.deep.equal([]);
  });
});

describe('maintenance windows: running in one window or in every window', function () {
  const nightly: MaintenanceWindow = { kind: 'daily', start: '22:00', end: '02:00', timeZone: 'UTC' };

  /** A runner stand-in: the runs' deadlines, and after each the clock moves to its deadline (a run the window's end stopped). */
  function fakeRuns(clock: { now(): number }, outcomes: string[], advance: (to: number) => void) {
    const deadlines: Array<number | null> = [];
    const runOnce = async (deadline: number | null) => {
      deadlines.push(deadline);
      const outcome = outcomes[deadlines.length - 1] ?? 'completed';
      if (outcome === 'window-closed' && deadline !== null) advance(Math.max(clock.now(), deadline));
      return { outcome };
    };
    return { deadlines, runOnce };
  }

  it('with everyWindow, a run the window stopped goes on in the next nights until it ends another way', async function () {
    let now = at('2026-06-01T12:00:00Z');
    const clock = { now: () => now, sleep: async (ms: number) => void (now += ms) };
    const { deadlines, runOnce } = fakeRuns(clock, ['window-closed', 'window-closed', 'completed'], (to) => (now = to));
    const waited: number[] = [];
    const result = await runInWindows({ window: nightly, clock, everyWindow: true, runOnce, onWait: (next) => waited.push(next.opensAt) });
    expect(result).to.deep.equal({ outcome: 'completed' });
    expect(deadlines).to.deep.equal([at('2026-06-02T02:00:00Z'), at('2026-06-03T02:00:00Z'), at('2026-06-04T02:00:00Z')]);
    expect(waited).to.deep.equal([at('2026-06-01T22:00:00Z'), at('2026-06-02T22:00:00Z'), at('2026-06-03T22:00:00Z')]);
  });

  it('without everyWindow, one window only; a halted run is never run again', async function () {
    let now = at('2026-06-01T23:00:00Z');
    const clock = { now: () => now, sleep: async (ms: number) => void (now += ms) };
    const once = fakeRuns(clock, ['window-closed'], (to) => (now = to));
    expect(await runInWindows({ window: nightly, clock, everyWindow: false, runOnce: once.runOnce })).to.deep.equal({ outcome: 'window-closed' });
    expect(once.deadlines).to.deep.equal([at('2026-06-02T02:00:00Z')]);
    const halted = fakeRuns(clock, ['halted'], (to) => (now = to));
    expect(await runInWindows({ window: nightly, clock, everyWindow: true, runOnce: halted.runOnce })).to.deep.equal({ outcome: 'halted' });
    expect(halted.deadlines).to.have.length(1);
  });

  it('a run that reports the window closed before our clock reaches its end waits for the end before looking again', async function () {
    let now = at('2026-06-01T23:00:00Z');
    const clock = { now: () => now, sleep: async (ms: number) => void (now += ms) };
    // A runner whose clock runs ahead: it says "closed" an hour early, and the clock has not moved.
    const runs = fakeRuns(clock, ['window-closed', 'completed'], () => {});
    await runInWindows({ window: nightly, clock, everyWindow: true, runOnce: runs.runOnce });
    expect(runs.deadlines).to.deep.equal([at('2026-06-02T02:00:00Z'), at('2026-06-03T02:00:00Z')]);
  });

  it('an absolute window that ends stops every-window runs with the last outcome, and gives null if it never opened', async function () {
    let now = at('2026-06-01T10:00:00Z');
    const clock = { now: () => now, sleep: async (ms: number) => void (now += ms) };
    const window: MaintenanceWindow = { kind: 'absolute', notBefore: null, notAfter: at('2026-06-01T11:00:00Z') };
    const runs = fakeRuns(clock, ['window-closed'], (to) => (now = to));
    expect(await runInWindows({ window, clock, everyWindow: true, runOnce: runs.runOnce })).to.deep.equal({ outcome: 'window-closed' });
    expect(runs.deadlines).to.deep.equal([at('2026-06-01T11:00:00Z')]);
    const late = fakeRuns(clock, [], (to) => (now = to));
    expect(await runInWindows({ window, clock, everyWindow: true, runOnce: late.runOnce })).to.equal(null);
    expect(late.deadlines).to.deep.equal([]);
  });
});
