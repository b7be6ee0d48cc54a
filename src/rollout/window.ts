/**
 * Maintenance windows: daily `start`–`end` (HH:MM, may cross midnight) in an IANA time zone, a
 * cron expression (when the window opens) plus a duration in an IANA time zone, or absolute
 * `notBefore`/`notAfter` instants. Pure: the clock is passed in.
 */
import { Limits } from '../core/limits.js';
import { parseCron, type CronSchedule } from './cron.js';

export type MaintenanceWindow =
  | { kind: 'daily'; start: string; end: string; timeZone: string }
  | { kind: 'cron'; cron: string; durationMs: number; timeZone: string }
  | { kind: 'absolute'; notBefore: number | null; notAfter: number | null };

const DURATION = /^(?:(\d+)h)?\s*(?:(\d+)m)?$/;

/** `7h`, `90m`, `1h30m` → milliseconds; a message when malformed or not in (0, 7 days]. */
export function parseDuration(text: string): number | string {
  const match = text.trim().match(DURATION);
  if (!match || (match[1] === undefined && match[2] === undefined)) return 'must be hours and/or minutes, e.g. 6h, 90m, 1h30m';
  const ms = (Number(match[1] ?? 0) * 60 + Number(match[2] ?? 0)) * 60_000;
  if (ms <= 0 || ms > Limits.MAX_WINDOW_DURATION_MS) return `must be more than 0 and at most ${Limits.MAX_WINDOW_DURATION_MS / 3_600_000}h`;
  return ms;
}

/** Checks a cron window's expression; a message when it is malformed or never matches. */
export function checkCronWindow(cron: string, timeZone: string): string | null {
  const schedule = parseCron(cron, timeZone);
  if (typeof schedule === 'string') return schedule;
  // A fixed instant, not the clock: the question is only whether the pattern can ever match.
  if (schedule.nextAfter(Date.UTC(2000, 0, 1)) === null) return 'never matches';
  return null;
}

/** Parsed schedules per window object: waiting re-asks nextWindow every chunk. */
const schedules = new WeakMap<MaintenanceWindow, CronSchedule>();

function cronWindow(schedule: CronSchedule, durationMs: number, now: number): { opensAt: number; closesAt: number } {
  // The first opening whose window has not closed by `now`…
  const first = schedule.nextAfter(now - durationMs);
  if (first === null) throw new Error(`cron window "${schedule.expression}" has no next opening`);
  if (first > now) return { opensAt: first, closesAt: first + durationMs };
  // …it is open; with overlapping openings the latest one at or before `now` sets the end.
  let latest = first;
  for (let i = 0; i < Limits.CRON_SCAN_MAX_OCCURRENCES; i++) {
    const next = schedule.nextAfter(latest);
    if (next === null || next > now) break;
    latest = next;
  }
  return { opensAt: first, closesAt: latest + durationMs };
}

/** One formatter per time zone: building an Intl.DateTimeFormat costs far more than using one. */
const zoneFormats = new Map<string, Intl.DateTimeFormat>();

/** The offset (ms) of `timeZone` from UTC at instant `at`. */
function zoneOffset(at: number, timeZone: string): number {
  let format = zoneFormats.get(timeZone);
  if (!format) {
    format = new Intl.DateTimeFormat('en-US', {
      timeZone,
      hourCycle: 'h23',
      year: 'numeric',
      month: '2-digit',
      day: '2-digit',
      hour: '2-digit',
      minute: '2-digit',
      second: '2-digit',
    });
    zoneFormats.set(timeZone, format);
  }
  const parts = format.formatToParts(new Date(at));
  const get = (type: string) => Number(parts.find((p) => p.type === type)!.value);
  const asUtc = Date.UTC(get('year'), get('month') - 1, get('day'), get('hour'), get('minute'), get('second'));
  return asUtc - Math.floor(at / 1000) * 1000;
}

/** The local calendar date of `at` in `timeZone`. */
function localDate(at: number, timeZone: string): { y: number; m: number; d: number } {
  const local = new Date(at + zoneOffset(at, timeZone));
  return { y: local.getUTCFullYear(), m: local.getUTCMonth(), d: local.getUTCDate() };
}

/** The instant of local wall time y-m-d hh:mm in `timeZone` (DST gaps resolve forward). */
export function zonedInstant(y: number, m: number, d: number, hh: number, mm: number, timeZone: string): number {
  const guess = Date.UTC(y, m, d, hh, mm);
  const first = guess - zoneOffset(guess, timeZone);
  return guess - zoneOffset(first, timeZone);
}

export function isValidTimeZone(timeZone: string): boolean {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone });
    return true;
  } catch {
    return false;
  }
}

/**
 * The window that is open at `now`, or else the next one: [opensAt, closesAt). Openings that
 * touch or overlap make one window (an hourly cron with a 2 h duration, a daily 00:00-00:00), so
 * the runner is never stopped at an end that another opening already covers; merging stops at
 * the first end at or past MAX_WINDOW_DURATION_MS after the opening (an always-open schedule is
 * then one long window after another).
 */
export function nextWindow(window: MaintenanceWindow, now: number): { opensAt: number; closesAt: number } {
  const { opensAt, closesAt: firstEnd } = singleWindow(window, now);
  let closesAt = firstEnd;
  if (window.kind === 'absolute') return { opensAt, closesAt };
  const limit = opensAt + Limits.MAX_WINDOW_DURATION_MS;
  while (closesAt < limit) {
    const following = singleWindow(window, closesAt);
    if (following.opensAt > closesAt || following.closesAt <= closesAt) break;
    closesAt = following.closesAt;
  }
  return { opensAt, closesAt };
}

/** One opening's window: the one open at `now`, or else the next. */
function singleWindow(window: MaintenanceWindow, now: number): { opensAt: number; closesAt: number } {
  if (window.kind === 'absolute') return { opensAt: window.notBefore ?? now, closesAt: window.notAfter ?? Number.POSITIVE_INFINITY };
  if (window.kind === 'cron') {
    const schedule = schedules.get(window) ?? parseCron(window.cron, window.timeZone);
    if (typeof schedule !== 'string') schedules.set(window, schedule);
    if (typeof schedule === 'string') throw new Error(`window.cron: ${schedule}`);
    return cronWindow(schedule, window.durationMs, now);
  }
  const [sh, sm] = window.start.split(':').map(Number) as [number, number];
  const [eh, em] = window.end.split(':').map(Number) as [number, number];
  const today = localDate(now, window.timeZone);
  // Yesterday's window may still be open (it crosses midnight), else today's, else tomorrow's.
  for (const shift of [-1, 0, 1]) {
    const day = new Date(Date.UTC(today.y, today.m, today.d + shift));
    const opensAt = zonedInstant(day.getUTCFullYear(), day.getUTCMonth(), day.getUTCDate(), sh, sm, window.timeZone);
    const endDay = eh * 60 + em <= sh * 60 + sm ? 1 : 0;
    const end = new Date(Date.UTC(day.getUTCFullYear(), day.getUTCMonth(), day.getUTCDate() + endDay));
    const closesAt = zonedInstant(end.getUTCFullYear(), end.getUTCMonth(), end.getUTCDate(), eh, em, window.timeZone);
    if (now < closesAt) return { opensAt, closesAt };
  }
  throw new Error('unreachable: a daily window always has a next opening');
}

/** What waiting needs from the outside world: injected, so tests drive it with a fake clock. */
export interface WindowClock {
  now(): number;
  sleep(ms: number): Promise<void>;
}

/**
 * Waits until a window is open and returns it, or null when none will open again (an absolute
 * window whose notAfter has passed; daily and cron windows always come round again). Sleeps in
 * chunks and reads the clock again after each, so a suspended host, clock steps and setTimeout's
 * 24.8-day limit cannot make it start outside a window; a window missed while asleep is replaced
 * by the next one.
 */
export async function waitForWindow(
  window: MaintenanceWindow,
  clock: WindowClock,
  onWait?: (next: { opensAt: number; closesAt: number }) => void,
): Promise<{ opensAt: number; closesAt: number } | null> {
  let announced: number | null = null;
  for (;;) {
    const now = clock.now();
    const next = nextWindow(window, now);
    if (now >= next.closesAt) return null;
    if (next.opensAt <= now) return next;
    if (announced !== next.opensAt) {
      announced = next.opensAt;
      onWait?.(next);
    }
    await clock.sleep(Math.min(Limits.SCHEDULE_SLEEP_CHUNK_MS, Math.max(1, next.opensAt - now)));
  }
}

export interface WindowedRunOptions<T extends { outcome: string }> {
  window: MaintenanceWindow;
  clock: WindowClock;
  /** After a run the window's end stopped, wait for the next window and run again. */
  everyWindow: boolean;
  onWait?: (next: { opensAt: number; closesAt: number }) => void;
  onOpen?: (open: { opensAt: number; closesAt: number }) => void;
  /** One run, starting no switch after `deadline` (null: the window has no end). */
  runOnce: (deadline: number | null) => Promise<T>;
}

/**
 * Runs inside the plan's window: waits for it to open, then runs with its closing time as the
 * deadline. With `everyWindow`, a run that ended because the window closed ('window-closed')
 * waits for the next window and runs again (the journal resumes where it stopped), until a run
 * ends any other way or no window will open again. Returns the last run's result, or null when
 * no window opened at all.
 */
export async function runInWindows<T extends { outcome: string }>(options: WindowedRunOptions<T>): Promise<T | null> {
  let last: T | null = null;
  for (;;) {
    const open = await waitForWindow(options.window, options.clock, options.onWait);
    if (!open) return last;
    options.onOpen?.(open);
    const deadline = Number.isFinite(open.closesAt) ? open.closesAt : null;
    last = await options.runOnce(deadline);
    if (!options.everyWindow || last.outcome !== 'window-closed') return last;
    // The runner says the window closed; if its clock ran ahead of ours, wait for the window to
    // close here too, so the next wait cannot find the same window open and run again at once.
    while (deadline !== null && options.clock.now() < deadline) await options.clock.sleep(Math.min(Limits.SCHEDULE_SLEEP_CHUNK_MS, deadline - options.clock.now()));
  }
}
