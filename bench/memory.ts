import { readFileSync, writeFileSync } from 'node:fs';

/** Sampling period for VmRSS: short enough to catch the burst of a transfer's start. */
export const SAMPLE_INTERVAL_MS = 50;

/** A field of /proc/<pid>/status in bytes, or null when the process is gone. */
export function procStatusBytes(pid: number, field: 'VmHWM' | 'VmRSS'): number | null {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const match = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status);
    return match ? Number(match[1]) * 1024 : null;
  } catch {
    return null;
  }
}

/**
 * Resets the kernel's peak-RSS counter (VmHWM) of a process we own, so a long-lived server's peak
 * describes one figure and not its whole life ("5" in clear_refs, Linux ≥ 4.0). Returns false
 * where that is not allowed; the sampled VmRSS maximum still stands then.
 */
export function resetPeakRss(pid: number): boolean {
  try {
    writeFileSync(`/proc/${pid}/clear_refs`, '5');
    return true;
  } catch {
    return false;
  }
}

/**
 * Tracks the peak resident memory of one process: the max of VmRSS sampled every 50 ms and of
 * VmHWM (the kernel's own peak, which sees between samples). VmHWM is only used for a process
 * started after `start()` or whose peak was reset, which `hwmIsFresh` says.
 */
export class PeakRss {
  private timer: NodeJS.Timeout | null = null;
  private peak = 0;

  constructor(
    private readonly pid: number,
    private readonly hwmIsFresh: boolean,
  ) {}

  start(): this {
    this.sample();
    this.timer = setInterval(() => this.sample(), SAMPLE_INTERVAL_MS);
    return this;
  }

  /** Stops sampling and returns the peak in bytes (0 when the process was never seen). */
  stop(): number {
    this.sample();
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    return this.peak;
  }

  private sample(): void {
    const rss = procStatusBytes(this.pid, 'VmRSS') ?? 0;
    const hwm = this.hwmIsFresh ? (procStatusBytes(this.pid, 'VmHWM') ?? 0) : 0;
    this.peak = Math.max(this.peak, rss, hwm);
  }
}
