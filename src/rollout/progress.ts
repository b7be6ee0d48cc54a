/**
 * Rollout progress on a terminal: a tracker fed by the server's transfer events (mapped to
 * switches by client address, since each switch pulls from its own address), a pure
 * `renderProgress()` and a small renderer that redraws the lines in place on a TTY.
 */
import { formatBytes, formatDuration } from '../core/format.js';
import type { TransferProgress, TransferRecord } from '../server/context.js';

/** Per-switch lines shown at most; the rest are summed up as "+K more". */
export const MAX_ACTIVE_LINES = 10;
/** Rates are measured over this much recent history. */
export const RATE_WINDOW_MS = 5_000;
/** The renderer redraws at most this often. */
export const REDRAW_INTERVAL_MS = 200;
/** Width of the small per-switch bar, brackets excluded. */
const BAR_WIDTH = 10;
/** Longest switch label before it is shortened. */
const MAX_LABEL_WIDTH = 20;
/** Width used when the stream does not know its columns. */
const DEFAULT_COLUMNS = 80;
/** Narrowest line the renderer will cut to. */
const MIN_WIDTH = 20;
const ELLIPSIS = '…';

interface Sample {
  at: number;
  bytes: number;
}

/** One running transfer as the renderer sees it. */
export interface ActiveTransfer {
  /** Switch name, or the client address when no switch pulls from it. */
  label: string;
  path: string;
  bytes: number;
  expectedBytes: number;
  /** Recent (time, bytes) samples, oldest first; the rate is measured over them. */
  samples: readonly Sample[];
}

export interface ProgressState {
  total: number;
  done: number;
  failed: number;
  /** Bytes every switch has sent so far, finished transfers included. */
  sentBytes: number;
  /** Bytes the rollout is expected to send in all (null when unknown). */
  totalBytes: number | null;
  active: readonly ActiveTransfer[];
}

/** Bytes per second over an active transfer's recent samples, measured up to `now` (a stall shows as a falling rate). */
export function transferRate(samples: readonly Sample[], now: number): number {
  if (samples.length < 2) return 0;
  const first = samples[0]!;
  const last = samples[samples.length - 1]!;
  const elapsed = Math.max(now, last.at) - first.at;
  return elapsed > 0 ? ((last.bytes - first.bytes) * 1000) / elapsed : 0;
}

function fit(text: string, width: number): string {
  return text.length <= width ? text : `${text.slice(0, Math.max(0, width - 1))}${ELLIPSIS}`;
}

function rateText(rate: number): string {
  return rate > 0 ? `${formatBytes(Math.round(rate))}/s` : '--/s';
}

function bar(fraction: number): string {
  const filled = Math.round(Math.min(1, Math.max(0, fraction)) * BAR_WIDTH);
  return `[${'#'.repeat(filled)}${'-'.repeat(BAR_WIDTH - filled)}]`;
}

/**
 * The progress lines: one overall line (switches, bytes, aggregate rate, ETA), then one per active
 * transfer (label, bar, bytes, rate, path), at most MAX_ACTIVE_LINES of them and a "+K more" line.
 * Every line is at most `width - 1` characters so the terminal never wraps it.
 */
export function renderProgress(state: ProgressState, now: number, width: number, maxLines = MAX_ACTIVE_LINES): string[] {
  const cut = Math.max(MIN_WIDTH, width) - 1;
  const rates = state.active.map((a) => transferRate(a.samples, now));
  const aggregate = rates.reduce((s, r) => s + r, 0);
  const left = state.totalBytes === null ? null : Math.max(0, state.totalBytes - state.sentBytes);
  const eta = left === null ? '--' : left === 0 ? '0s' : aggregate > 0 ? formatDuration((left * 1000) / aggregate) : '--';
  const bytes = state.totalBytes === null ? `${formatBytes(state.sentBytes)} sent` : `${formatBytes(state.sentBytes)} / ${formatBytes(state.totalBytes)}`;
  const failed = state.failed ? `, ${state.failed} failed` : '';
  const lines = [fit(`${state.done}/${state.total} switches done${failed}, ${state.active.length} transferring · ${bytes} · ${rateText(aggregate)} · ETA ${eta}`, cut)];
  const shown = state.active.length > maxLines ? maxLines - 1 : state.active.length;
  const labelWidth = Math.min(MAX_LABEL_WIDTH, Math.max(0, ...state.active.slice(0, shown).map((a) => a.label.length)));
  state.active.slice(0, shown).forEach((a, i) => {
    const label = fit(a.label, labelWidth).padEnd(labelWidth);
    const fraction = a.expectedBytes > 0 ? a.bytes / a.expectedBytes : 0;
    const percent = `${(fraction * 100).toFixed(0).padStart(3)}%`;
    lines.push(fit(`  ${label} ${bar(fraction)} ${percent} ${formatBytes(a.bytes)} / ${formatBytes(a.expectedBytes)} ${rateText(rates[i]!)}  ${a.path}`, cut));
  });
  if (shown < state.active.length) lines.push(fit(`  +${state.active.length - shown} more transferring`, cut));
  return lines;
}

interface SwitchEntry {
  name: string;
  /** The image's size from the catalog, for the ETA before the transfer starts (null: unknown). */
  plannedBytes: number | null;
  /** Bytes of this switch's transfers that ended. */
  endedBytes: number;
  transferred: boolean;
  outcome: 'verified' | 'skipped' | 'failed' | null;
}

/** Folds transfer events and switch outcomes into a ProgressState. The clock is passed in. */
export class ProgressTracker {
  private readonly switches = new Map<string, SwitchEntry>();
  private readonly byAddress = new Map<string, string>();
  /** Running transfers by client address. */
  private readonly active = new Map<string, ActiveTransfer & { samples: Sample[]; name: string | null }>();

  constructor(switches: readonly { name: string; address: string; plannedBytes?: number | null; outcome?: SwitchEntry['outcome'] }[]) {
    for (const s of switches) {
      this.switches.set(s.name, { name: s.name, plannedBytes: s.plannedBytes ?? null, endedBytes: 0, transferred: false, outcome: s.outcome ?? null });
      this.byAddress.set(s.address, s.name);
    }
  }

  /** A server 'transfer-start' or 'transfer-progress' event. */
  transferProgress(p: Pick<TransferProgress, 'client' | 'path' | 'bytes' | 'expectedBytes'>, now: number): void {
    let a = this.active.get(p.client);
    if (!a || a.path !== p.path || p.bytes < a.bytes) {
      if (a) this.endTransfer(p.client);
      const name = this.byAddress.get(p.client) ?? null;
      a = { label: name ?? p.client, name, path: p.path, bytes: 0, expectedBytes: p.expectedBytes, samples: [] };
      this.active.set(p.client, a);
      if (name) this.switches.get(name)!.transferred = true;
    }
    a.bytes = p.bytes;
    a.expectedBytes = p.expectedBytes;
    a.samples.push({ at: now, bytes: p.bytes });
    // Keep one sample older than the window as the anchor the rate is measured from.
    while (a.samples.length > 2 && a.samples[1]!.at <= now - RATE_WINDOW_MS) a.samples.shift();
  }

  /** A server 'transfer' record: the transfer ended (complete or aborted). */
  transferEnded(record: Pick<TransferRecord, 'client' | 'bytes'>): void {
    const a = this.active.get(record.client);
    if (a) a.bytes = record.bytes;
    this.endTransfer(record.client);
  }

  /** The runner finished a switch. */
  switchDone(name: string, outcome: 'verified' | 'skipped' | 'failed'): void {
    for (const [client, a] of this.active) if (a.name === name) this.endTransfer(client);
    const s = this.switches.get(name);
    if (s) s.outcome = outcome;
  }

  /** The address a switch pulls from (to feed runner events that carry only the name). */
  addressOf(name: string): string | undefined {
    for (const [address, n] of this.byAddress) if (n === name) return address;
    return undefined;
  }

  state(): ProgressState {
    let sentBytes = 0;
    let totalBytes: number | null = 0;
    let done = 0;
    let failed = 0;
    const running = new Map<string, number>();
    for (const a of this.active.values()) {
      sentBytes += a.bytes;
      if (a.name) running.set(a.name, (running.get(a.name) ?? 0) + a.expectedBytes);
      else if (totalBytes !== null) totalBytes += a.expectedBytes;
    }
    for (const s of this.switches.values()) {
      sentBytes += s.endedBytes;
      if (s.outcome) {
        done++;
        if (s.outcome === 'failed') failed++;
      }
      if (totalBytes === null) continue;
      if (running.has(s.name)) totalBytes += s.endedBytes + running.get(s.name)!;
      else if (s.outcome || s.transferred) totalBytes += s.endedBytes;
      else if (s.plannedBytes === null) totalBytes = null;
      else totalBytes += s.plannedBytes;
    }
    return { total: this.switches.size, done, failed, sentBytes, totalBytes, active: [...this.active.values()] };
  }

  private endTransfer(client: string): void {
    const a = this.active.get(client);
    if (!a) return;
    this.active.delete(client);
    const s = a.name ? this.switches.get(a.name) : undefined;
    if (s) s.endedBytes += a.bytes;
  }
}

/** The part of a write stream the renderer uses (process.stderr, or a fake in tests). */
export interface ProgressStream {
  isTTY?: boolean;
  columns?: number;
  write(text: string): unknown;
}

export interface ProgressRendererOptions {
  now?: () => number;
  intervalMs?: number;
}

/**
 * Redraws the progress lines in place (cursor up, clear line) at most every REDRAW_INTERVAL_MS,
 * only when the stream is a TTY; elsewhere it draws nothing and `print` just writes. One
 * interval timer between `start()` and `stop()`.
 */
export class ProgressRenderer {
  private timer: NodeJS.Timeout | null = null;
  private drawn: string[] = [];
  private dirty = false;
  private readonly now: () => number;
  readonly enabled: boolean;

  constructor(
    private readonly stream: ProgressStream,
    private readonly render: (now: number, width: number) => string[],
    private readonly options: ProgressRendererOptions = {},
  ) {
    this.now = options.now ?? Date.now;
    this.enabled = stream.isTTY === true;
  }

  start(): void {
    if (!this.enabled || this.timer) return;
    this.timer = setInterval(() => this.tick(), this.options.intervalMs ?? REDRAW_INTERVAL_MS);
    this.timer.unref();
  }

  /** Something changed: drawn on the next tick. */
  update(): void {
    this.dirty = true;
  }

  /** Redraws when something changed since the last draw (the timer calls this). */
  tick(): void {
    if (!this.enabled || !this.dirty) return;
    this.dirty = false;
    const lines = this.render(this.now(), this.stream.columns || DEFAULT_COLUMNS);
    this.stream.write(`${this.erase()}${lines.join('\n')}`);
    this.drawn = lines;
  }

  /** Writes a permanent message (ending in a newline) above the progress lines. */
  print(text: string, out: ProgressStream = this.stream): void {
    if (!this.enabled || this.drawn.length === 0) {
      out.write(text);
      return;
    }
    const lines = this.drawn;
    if (out === this.stream) {
      this.stream.write(`${this.erase()}${text}${lines.join('\n')}`);
    } else {
      this.stream.write(this.erase());
      out.write(text);
      this.stream.write(lines.join('\n'));
    }
    this.drawn = lines;
  }

  /** Stops the timer and erases the progress lines. */
  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    if (this.drawn.length) this.stream.write(this.erase());
  }

  /** Clears the drawn lines, leaving the cursor at the start of the first one. */
  private erase(): string {
    const n = this.drawn.length;
    this.drawn = [];
    return n === 0 ? '' : `\r\x1b[2K${'\x1b[1A\x1b[2K'.repeat(n - 1)}`;
  }
}
