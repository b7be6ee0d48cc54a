import { formatBytes, formatDuration } from '../core/format.js';
import type { PullProgress } from '../client/index.js';

/** One progress line: bar, percentage, bytes, rate and ETA (bar and ETA only when the total is known). */
export function formatProgress(progress: PullProgress, barWidth = 24): string {
  const rate = progress.bytesPerSecond > 0 ? `${formatBytes(Math.round(progress.bytesPerSecond))}/s` : '--/s';
  const retry = progress.attempt > 1 ? ` (attempt ${progress.attempt})` : '';
  if (progress.totalBytes === null || progress.totalBytes === 0) return `${formatBytes(progress.bytes)} ${rate}${retry}`;
  const fraction = Math.min(1, progress.bytes / progress.totalBytes);
  const filled = Math.round(fraction * barWidth);
  const bar = `[${'#'.repeat(filled)}${'-'.repeat(barWidth - filled)}]`;
  const eta = progress.etaMs === null ? '--' : formatDuration(progress.etaMs);
  return `${bar} ${(fraction * 100).toFixed(0).padStart(3)}% ${formatBytes(progress.bytes)} / ${formatBytes(progress.totalBytes)} ${rate} ETA ${eta}${retry}`;
}

/** Draws progress on one terminal line (carriage return, clear to end of line). Only used on a TTY. */
export class ProgressBar {
  private drawn = false;
  constructor(private readonly stream: NodeJS.WriteStream) {}

  update(progress: PullProgress): void {
    const width = Math.max(20, (this.stream.columns || 80) - 1);
    this.stream.write(`\r\x1b[K${formatProgress(progress).slice(0, width)}`);
    this.drawn = true;
  }

  /** Erases the line so messages after it start clean. */
  clear(): void {
    if (this.drawn) this.stream.write('\r\x1b[K');
    this.drawn = false;
  }
}
