/**
 * The one module that imports `croner`: cron expressions for maintenance windows. Only pattern
 * parsing and "next occurrence after an instant" are used; no job is ever scheduled, so croner
 * starts no timers and reads no clock (the instant is always passed in).
 */
import { Cron } from 'croner';

export interface CronSchedule {
  readonly expression: string;
  readonly timeZone: string;
  /** The first occurrence strictly after `after` (ms since the epoch), or null if there is none. */
  nextAfter(after: number): number | null;
}

/** Parses a 5-field (minute hour day month weekday) or 6-field (with seconds) cron expression; a message on failure. */
export function parseCron(expression: string, timeZone: string): CronSchedule | string {
  let cron: Cron;
  try {
    // No callback: croner then only computes, it schedules nothing.
    cron = new Cron(expression, { timezone: timeZone, paused: true });
  } catch (err) {
    return `not a valid cron expression: ${(err as Error).message.replace(/^CronPattern: /, '')}`;
  }
  return {
    expression,
    timeZone,
    nextAfter(after: number): number | null {
      return cron.nextRun(new Date(after))?.getTime() ?? null;
    },
  };
}
