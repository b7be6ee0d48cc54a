/**
 * Morning reports: JSON and CSV for programs, and one self-contained HTML page for people (to
 * attach to a change ticket): inline CSS and SVG, no script, no external request.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { formatBytes, formatCount, formatDuration } from '../core/format.js';
import type { Operator, OutcomeCounts, PrecheckRecord, StartImage } from './records.js';
import { countOutcomes, type RolloutState, type SwitchState } from './state.js';
import type { MaintenanceWindow } from './window.js';

/** What the JSON report says it is, so a program can tell it (and its version) from other JSON. */
export const REPORT_FORMAT = 'swfw-rollout-report';
/** Bumped when a field changes meaning or goes away; new fields do not bump it. */
export const REPORT_VERSION = 1;

export interface ReportRow {
  name: string;
  address: string;
  /** What a DNS name in `address` resolved to (the address itself otherwise). */
  resolvedAddress: string | null;
  driver: string | null;
  /** Multi-site: the site whose agent worked on the switch; null in a single-site rollout. */
  site: string | null;
  wave: number;
  image: string;
  /** The catalog version of `image` (null in journals from before images were journaled). */
  targetVersion: string | null;
  outcome: string;
  verdict: string | null;
  reason: string | null;
  attempts: number;
  transfers: number;
  precheck: PrecheckRecord | null;
  /** When its latest attempt began (pre-check: the SSH connect), its transfer began and ended, and its verdict (ISO 8601). */
  startedAt: string | null;
  transferStartedAt: string | null;
  transferredAt: string | null;
  endedAt: string | null;
  bytes: number | null;
  durationMs: number | null;
  bytesPerSecond: number | null;
  catalogSha256: string | null;
  serverSha256: string | null;
  /** Whether the bytes the server sent hash to the catalog's SHA-256; null when either is unknown. */
  serverMatchesCatalog: boolean | null;
  switchAlgorithm: string | null;
  switchDigest: string | null;
  /** Whether the switch's own digest equals the catalog's digest of that algorithm; null when either is unknown. */
  switchMatchesCatalog: boolean | null;
  /** The SSH algorithms the switch agreed to: `kex / host key / cipher / mac`. */
  ssh: string | null;
  /** Questions the switch asked during its copy, and the answers. */
  notes: string[];
}

/** How one platform's FTP client behaved: the commands its first switch in the rollout sent, up to its RETR. */
export interface FtpSequence {
  driver: string;
  switch: string;
  commands: string[];
}

export interface WaveSummary extends OutcomeCounts {
  wave: number;
  size: number;
  /** When the wave first started; null while it has not. */
  startedAt: string | null;
}

export interface SiteSummary extends OutcomeCounts {
  site: string;
  size: number;
  /** Why the site halted when its own threshold stopped it. */
  halted: string | null;
}

/** An image of the rollout: its catalog facts when the journal has them, and how many switches get it. */
export interface ReportImage {
  file: string;
  platform: string | null;
  version: string | null;
  size: number | null;
  sha256: string | null;
  switches: number;
}

export interface RolloutReport {
  format: typeof REPORT_FORMAT;
  version: typeof REPORT_VERSION;
  /** When this report was written (ISO 8601). */
  generatedAt: string;
  runId: string | null;
  /** When the run started and ended (ISO 8601, from the journal); null while it has not. */
  startedAt: string | null;
  endedAt: string | null;
  durationMs: number | null;
  outcome: string | null;
  reason: string | null;
  plan: { path: string | null; digest: string | null };
  inventoryPath: string | null;
  /** Who started the run and from which host; null in journals from before it was recorded. */
  operator: Operator | null;
  /** Every later runner that took the rollout up again (resume, the next window). */
  resumes: { at: string; pid: number; operator: Operator | null }[];
  images: ReportImage[];
  /** The embedded server the switches pulled from; null on a job engine or in older journals. */
  server: { address: string; port: number; pasvRange: string; http?: number | null; https?: number | null } | null;
  /** The plan's maintenance window in words, or null for none (or unknown). */
  window: string | null;
  concurrency: number | null;
  canary: number | null;
  /** Multi-site: the job engine (password removed) and its sites; null in a single-site rollout. */
  engine: { url: string; sites: string[] } | null;
  waves: WaveSummary[];
  /** Multi-site: per site, its counts, and why it halted when its own threshold stopped it. */
  sites: SiteSummary[];
  totals: OutcomeCounts;
  ftpSequences: FtpSequence[];
  switches: ReportRow[];
}

/** Whether two digests are the same value (hex in any case); null when either is unknown. */
function sameDigest(a: string | null | undefined, b: string | null | undefined): boolean | null {
  return typeof a === 'string' && typeof b === 'string' && a !== '' && b !== '' ? a.toLowerCase() === b.toLowerCase() : null;
}

function row(s: SwitchState, images: ReadonlyMap<string, StartImage>): ReportRow {
  const alg = s.hashes?.switchAlgorithm ?? null;
  const ssh = s.precheck?.ssh;
  const image = images.get(s.image);
  const catalogSha256 = s.hashes?.catalogSha256 ?? null;
  const switchDigest = alg ? (s.hashes?.switchDigests[alg] ?? null) : null;
  // The switch hashes with its platform's best algorithm: compared with the catalog's digest of that one.
  const catalogDigests: Record<string, string | undefined> = { sha256: catalogSha256 ?? image?.sha256, md5: image?.md5, sha512: image?.sha512, sha1: image?.sha1 };
  return {
    name: s.name,
    address: s.address,
    resolvedAddress: s.resolvedAddress,
    driver: s.driver,
    site: s.site,
    wave: s.wave,
    image: s.image,
    targetVersion: image?.version ?? null,
    outcome: s.outcome ?? 'pending',
    verdict: s.verdict,
    reason: s.reason,
    attempts: s.attempts,
    transfers: s.transfers,
    precheck: s.precheck,
    startedAt: s.startedAt,
    transferStartedAt: s.transferStartedAt,
    transferredAt: s.transferredAt,
    endedAt: s.doneAt,
    bytes: s.bytes,
    durationMs: s.durationMs,
    bytesPerSecond: s.bytes && s.durationMs ? Math.round((s.bytes * 1000) / s.durationMs) : null,
    catalogSha256,
    serverSha256: s.hashes?.serverSha256 ?? null,
    serverMatchesCatalog: sameDigest(s.hashes?.serverSha256, catalogSha256),
    switchAlgorithm: alg,
    switchDigest,
    switchMatchesCatalog: alg ? sameDigest(switchDigest, catalogDigests[alg]) : null,
    ssh: ssh ? `${ssh.kex} / ${ssh.serverHostKey} / ${ssh.cipher} / ${ssh.mac}` : null,
    notes: s.notes,
  };
}

/**
 * Per platform, the FTP commands of its first switch (canary first, then by wave and name) whose
 * transfer reached the server: no public trace of these exists, and after the canary an admin
 * wants to see exactly what the platform sends (PASV or EPSV, SIZE, REST, CWD walks).
 */
export function ftpSequences(switches: readonly SwitchState[]): FtpSequence[] {
  const seen = new Map<string, FtpSequence>();
  for (const s of switches) {
    const driver = s.driver ?? 'unknown';
    if (seen.has(driver)) continue;
    const audit = s.audit.find((a) => Array.isArray(a['commands']) && (a['commands'] as unknown[]).length > 0);
    if (audit) seen.set(driver, { driver, switch: s.name, commands: audit['commands'] as string[] });
  }
  return [...seen.values()];
}

const iso = (ms: number) => new Date(ms).toISOString();

/** "2026-03-14T21:00:00.000Z" style instants in UTC, for an absolute window's ends. */
function readableInstant(ms: number | null): string | null {
  return ms === null ? null : readableTime(iso(ms));
}

/** A maintenance window as the plan means it: "daily 22:00–05:00 (Europe/Berlin)". */
export function describeWindow(w: MaintenanceWindow | null | undefined): string | null {
  if (!w) return null;
  switch (w.kind) {
    case 'daily':
      return `daily ${w.start}–${w.end} (${w.timeZone})`;
    case 'cron':
      return `opens at cron "${w.cron}" (${w.timeZone}), for ${formatDuration(w.durationMs)}`;
    case 'absolute': {
      const from = readableInstant(w.notBefore);
      const to = readableInstant(w.notAfter);
      return from && to ? `${from} to ${to}` : from ? `not before ${from}` : to ? `not after ${to}` : 'any time';
    }
    default:
      return null;
  }
}

export function buildReport(state: RolloutState, options: { now?: () => number } = {}): RolloutReport {
  const switches = [...state.switches.values()].sort((a, b) => a.wave - b.wave || a.name.localeCompare(b.name));
  const start = state.start;
  const journaledImages = new Map((start?.images ?? []).map((i) => [i.file, i]));
  const perImage = new Map<string, number>();
  for (const s of switches) perImage.set(s.image, (perImage.get(s.image) ?? 0) + 1);
  const images: ReportImage[] = [...new Set([...journaledImages.keys(), ...perImage.keys()])].sort().map((file) => {
    const i = journaledImages.get(file);
    return { file, platform: i?.platform ?? null, version: i?.version ?? null, size: i?.size ?? null, sha256: i?.sha256 ?? null, switches: perImage.get(file) ?? 0 };
  });
  const startedAt = start?.at ?? null;
  const endedAt = state.end?.at ?? null;
  const durationMs = startedAt && endedAt ? Date.parse(endedAt) - Date.parse(startedAt) : null;
  return {
    format: REPORT_FORMAT,
    version: REPORT_VERSION,
    generatedAt: iso((options.now ?? Date.now)()),
    runId: state.runId,
    startedAt,
    endedAt,
    durationMs: durationMs !== null && Number.isFinite(durationMs) ? durationMs : null,
    outcome: (state.end?.['outcome'] as string) ?? null,
    reason: (state.end?.['reason'] as string) ?? null,
    plan: { path: start?.planPath ?? null, digest: start?.planDigest ?? null },
    inventoryPath: start?.inventoryPath ?? null,
    operator: start?.operator ?? null,
    resumes: state.resumes,
    images,
    server: start?.server ?? null,
    // A journal from before windows were journaled says nothing: null; a plan without one: "none".
    window: start?.window === undefined ? null : (describeWindow(start.window) ?? 'none (any time)'),
    concurrency: start?.concurrency ?? null,
    canary: start?.canary ?? null,
    engine: start?.engine ?? null,
    waves: state.waves.map((names, wave) => ({ wave, size: names.length, startedAt: state.waveStartedAt.get(wave) ?? null, ...countOutcomes(names.map((n) => state.switches.get(n)!)) })),
    sites: [...new Set(switches.map((s) => s.site).filter((s): s is string => s !== null))].sort().map((site) => {
      const mine = switches.filter((s) => s.site === site);
      return { site, size: mine.length, ...countOutcomes(mine), halted: state.haltedSites.get(site) ?? null };
    }),
    totals: countOutcomes(switches),
    ftpSequences: ftpSequences(switches),
    switches: switches.map((s) => row(s, journaledImages)),
  };
}

/** The CSV's columns; times come last so readers of the columns before them by position go on working. */
const CSV_COLUMNS: (keyof ReportRow)[] = [
  'name',
  'address',
  'resolvedAddress',
  'driver',
  'site',
  'wave',
  'image',
  'outcome',
  'verdict',
  'reason',
  'attempts',
  'transfers',
  'bytes',
  'durationMs',
  'bytesPerSecond',
  'catalogSha256',
  'serverSha256',
  'switchAlgorithm',
  'switchDigest',
  'ssh',
  'notes',
  'precheck',
  'startedAt',
  'transferStartedAt',
  'transferredAt',
  'endedAt',
  'targetVersion',
];

function csvCell(value: unknown): string {
  const text = value === null || value === undefined ? '' : Array.isArray(value) ? value.join('; ') : typeof value === 'object' ? JSON.stringify(value) : String(value);
  // RFC 4180 quoting; a leading = + - @ is neutralised so spreadsheets do not run it as a formula.
  const safe = /^[=+\-@]/.test(text) ? `'${text}` : text;
  return /[",\r\n]/.test(safe) ? `"${safe.replace(/"/g, '""')}"` : safe;
}

export function toCsv(rows: readonly ReportRow[]): string {
  const lines = [CSV_COLUMNS.join(',')];
  for (const r of rows) lines.push(CSV_COLUMNS.map((c) => csvCell(r[c])).join(','));
  return `${lines.join('\r\n')}\r\n`;
}

/** 1288490188 → "1.2 GiB"; free flash is read in MiB and GiB, not bytes. */
function freeSpace(bytes: unknown): string | null {
  return typeof bytes === 'number' && Number.isFinite(bytes) ? `${formatBytes(bytes)} free` : null;
}

/** A pre-check as a person reads it: "C9300-48P, 17.06.05, 1.2 GiB free, image not on flash; logged in by password". */
export function describePrecheck(precheck: PrecheckRecord | null): string {
  if (!precheck) return '';
  if (precheck['reachable'] === false) return `unreachable: ${String(precheck['error'] ?? '')}`;
  if (typeof precheck['error'] === 'string') return `reached, but: ${precheck['error']}`;
  const parts = [precheck['model'], precheck['version']].filter((v) => typeof v === 'string' && v !== '') as string[];
  const free = freeSpace(precheck['freeBytes']);
  if (free) parts.push(free);
  const onFlash = { absent: 'image not on flash', match: 'image already on flash', differs: 'a different image where it goes (file of that name, or the non-booted slot)' }[String(precheck['onFlash'])];
  if (onFlash) parts.push(onFlash);
  const login = typeof precheck['login'] === 'string' ? `; logged in by ${precheck['login']}` : '';
  return `${parts.join(', ')}${login}`;
}

/** "2026-11-30T22:00:08.123Z" → "2026-11-30 22:00:08 UTC". */
function readableTime(at: string | null): string | null {
  return at === null ? null : `${at.slice(0, 10)} ${at.slice(11, 19)} UTC`;
}

/** The one escape of the page: every string from the journal, the inventory or a switch goes through it, in text and in attributes. */
export function esc(value: unknown): string {
  return String(value ?? '').replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

const OUTCOMES = ['verified', 'failed', 'skipped', 'pending'] as const;
type Outcome = (typeof OUTCOMES)[number];
/** An outcome as a class name: only the four known ones, whatever the journal says. */
const outcomeOf = (o: unknown): Outcome => (OUTCOMES.includes(o as Outcome) ? (o as Outcome) : 'pending');
const COLOUR: Record<Outcome, string> = { verified: '#1a7f37', failed: '#cf222e', skipped: '#6e7781', pending: '#bf8700' };

/** Hex digits a hash is shortened to in the page; the full value is in its `title`. */
export const SHORT_HASH = 12;

/**
 * A digest, shortened, with its mark against the catalog: ✓ same, ✗ different, ? nothing to
 * compare with. The mark's meaning is in words too (its title and a hidden label), not in colour only.
 */
function hashCell(label: string, digest: string | null, same: boolean | null): string {
  if (!digest) return '';
  const mark = same === true ? '<b class="same">✓<i> same as catalog</i></b>' : same === false ? '<b class="diff">✗<i> differs from catalog</i></b>' : '<b class="unk">?<i> no catalog value to compare</i></b>';
  return `<div>${esc(label)} <code title="${esc(digest)}">${esc(digest.slice(0, SHORT_HASH))}…</code> ${mark}</div>`;
}

/** Times of one run: "22:00:08" when on the run's first day, with the date otherwise. */
function clockFor(day: string | null): (at: string | null) => string {
  return (at) => (at === null ? '' : day !== null && at.slice(0, 10) === day ? at.slice(11, 19) : `${at.slice(0, 10)} ${at.slice(11, 19)}`);
}

function spanMs(from: string | null, to: string | null): number | null {
  if (!from || !to) return null;
  const ms = Date.parse(to) - Date.parse(from);
  return Number.isFinite(ms) && ms >= 0 ? ms : null;
}

/** Before → after: what the switch ran, and the version now on its flash (swfw stages the image; it does not reboot). */
function versions(r: ReportRow): string {
  const before = typeof r.precheck?.version === 'string' ? r.precheck.version : null;
  if (!before && !r.targetVersion) return '';
  if (r.outcome === 'verified') return `${esc(before ?? '?')} → ${esc(r.targetVersion ?? '?')} <small>on flash</small>`;
  if (r.outcome === 'skipped') return `${esc(before ?? '?')} <small>(target ${esc(r.targetVersion ?? '?')})</small>`;
  return `${esc(before ?? '?')} <small>(target ${esc(r.targetVersion ?? '?')} not installed)</small>`;
}

const TABLE_HEAD = '<thead><tr><th>switch</th><th>wave</th><th>outcome</th><th>time (UTC)</th><th>pre-check</th><th>version</th><th>transfer</th><th>hashes vs catalog</th><th>reason</th></tr></thead>';

function switchRow(r: ReportRow, clock: (at: string | null) => string): string {
  const o = outcomeOf(r.outcome);
  const where = r.resolvedAddress && r.resolvedAddress !== r.address ? `${esc(r.address)} (${esc(r.resolvedAddress)})` : esc(r.address);
  const took = spanMs(r.startedAt, r.endedAt);
  const time = r.startedAt ? `${esc(clock(r.startedAt))}–${r.endedAt ? esc(clock(r.endedAt)) : '…'}${took !== null ? `<br><small>${esc(formatDuration(took))}</small>` : ''}` : '<small>not started</small>';
  const transfer = r.bytes !== null ? `${esc(formatBytes(r.bytes))}${r.durationMs !== null ? ` in ${esc(formatDuration(r.durationMs))}` : ''}${r.bytesPerSecond !== null ? `<br><small>${esc(formatBytes(r.bytesPerSecond))}/s</small>` : ''}` : '';
  const tries = r.attempts > 1 ? `<br><small>${esc(r.attempts)} attempts</small>` : '';
  const hashes = hashCell('sent', r.serverSha256, r.serverMatchesCatalog) + hashCell(r.switchAlgorithm ?? 'switch', r.switchDigest, r.switchMatchesCatalog);
  const notes = r.notes.length ? `<br><small>${esc(r.notes.join('; '))}</small>` : '';
  const ssh = r.ssh ? `<br><small>SSH ${esc(r.ssh)}</small>` : '';
  return `<tr class="${o}"><td><b>${esc(r.name)}</b><br><small>${where} · ${esc(r.driver ?? '')}${r.site ? ` · site ${esc(r.site)}` : ''}</small></td><td>${esc(r.wave)}</td><td><span class="badge ${o}">${esc(o)}</span>${r.verdict && r.verdict !== o ? `<br><small>${esc(r.verdict)}</small>` : ''}</td><td>${time}</td><td>${esc(describePrecheck(r.precheck))}${ssh}</td><td>${versions(r)}</td><td>${transfer}${tries}</td><td class="hashes">${hashes}</td><td>${esc(r.reason ?? '')}${notes}</td></tr>`;
}

function switchTable(rows: readonly ReportRow[], clock: (at: string | null) => string): string {
  return `<table class="switches">${TABLE_HEAD}<tbody>${rows.map((r) => switchRow(r, clock)).join('\n')}</tbody></table>`;
}

/** Switches one bar each up to this many; beyond it the timeline shows switches at work over time, so its size stays bounded. */
export const TIMELINE_MAX_BARS = 200;
/** Columns of the aggregated timeline. */
const TIMELINE_BUCKETS = 200;
const SVG_WIDTH = 1000;

/** A tick step on the time axis that gives about 6–10 labels. */
function tickStep(spanMsTotal: number): number {
  const steps = [0.1, 0.2, 0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400].map((s) => s * 1000);
  return steps.find((s) => spanMsTotal / s <= 10) ?? 86400_000 * Math.ceil(spanMsTotal / 86400_000 / 10);
}

const n2 = (x: number) => (Number.isFinite(x) ? x.toFixed(1) : '0');

/**
 * The run on a time axis: one bar per switch from its connect to its verdict (the transfer part
 * darker), coloured by outcome, wave starts marked; for more than TIMELINE_MAX_BARS switches, the
 * number of switches at work over time, stacked by outcome.
 */
function timeline(report: RolloutReport): string {
  const started = report.switches.filter((r) => r.startedAt !== null && Number.isFinite(Date.parse(r.startedAt)));
  if (started.length === 0) return '<p>No switch was started.</p>';
  const times = [report.startedAt, report.endedAt, ...started.flatMap((r) => [r.startedAt, r.endedAt])].map((t) => (t ? Date.parse(t) : NaN)).filter(Number.isFinite);
  const t0 = Math.min(...times);
  // A tenth of a second at least: an emulated fleet can finish in less, and the axis needs a span.
  const t1 = Math.max(t0 + 100, ...times);
  const endOf = (r: ReportRow) => (r.endedAt && Number.isFinite(Date.parse(r.endedAt)) ? Date.parse(r.endedAt) : t1);
  const aggregate = started.length > TIMELINE_MAX_BARS;
  const labels = !aggregate && started.length <= 60;
  const left = labels ? 120 : 50;
  const right = 12;
  const top = 30;
  const x = (t: number) => left + ((t - t0) / (t1 - t0)) * (SVG_WIDTH - left - right);
  const rowHeight = aggregate ? 0 : labels ? 14 : Math.max(3, Math.min(8, 600 / started.length));
  const plotHeight = aggregate ? 220 : started.length * rowHeight;
  const height = top + plotHeight + 10;
  const clock = clockFor(report.startedAt?.slice(0, 10) ?? null);
  const parts: string[] = [];
  // Time axis: a label and a faint grid line per step.
  const step = tickStep(t1 - t0);
  for (let t = Math.ceil(t0 / step) * step; t <= t1; t += step) {
    const label = step >= 60_000 ? iso(t).slice(11, 16) : step >= 1000 ? iso(t).slice(11, 19) : iso(t).slice(11, 21);
    parts.push(`<line class="grid" x1="${n2(x(t))}" x2="${n2(x(t))}" y1="${top - 4}" y2="${top + plotHeight}"/><text class="tick" x="${n2(x(t))}" y="${top - 8}">${esc(label)}</text>`);
  }
  for (const w of report.waves) {
    if (!w.startedAt || !Number.isFinite(Date.parse(w.startedAt))) continue;
    const wx = x(Date.parse(w.startedAt));
    const name = w.wave === 0 && report.canary ? 'canary' : `wave ${w.wave}`;
    parts.push(`<line class="wave" x1="${n2(wx)}" x2="${n2(wx)}" y1="${top}" y2="${top + plotHeight}"><title>${esc(name)} started ${esc(clock(w.startedAt))}</title></line><text class="wavelabel" x="${n2(wx + 2)}" y="${top + 10}">${esc(name)}</text>`);
  }
  if (!aggregate) {
    const rows = [...started].sort((a, b) => a.wave - b.wave || Date.parse(a.startedAt!) - Date.parse(b.startedAt!) || a.name.localeCompare(b.name));
    rows.forEach((r, i) => {
      const o = outcomeOf(r.outcome);
      const y = top + i * rowHeight;
      const x0 = x(Date.parse(r.startedAt!));
      const width = Math.max(1.5, x(endOf(r)) - x0);
      const took = spanMs(r.startedAt, r.endedAt);
      const what = `${r.name}: ${o}${r.endedAt ? '' : ' (no verdict yet)'}, ${clock(r.startedAt)}–${r.endedAt ? clock(r.endedAt) : '…'}${took !== null ? ` (${formatDuration(took)})` : ''}${r.reason ? `: ${r.reason}` : ''}`;
      let bar = `<g class="bar ${o}"><title>${esc(what)}</title><rect x="${n2(x0)}" y="${n2(y + 1)}" width="${n2(width)}" height="${n2(rowHeight - 2)}"/>`;
      if (r.transferStartedAt && Number.isFinite(Date.parse(r.transferStartedAt))) {
        const tx0 = x(Date.parse(r.transferStartedAt));
        const tx1 = r.transferredAt && Number.isFinite(Date.parse(r.transferredAt)) ? x(Date.parse(r.transferredAt)) : x0 + width;
        bar += `<rect class="xfer" x="${n2(tx0)}" y="${n2(y + 1)}" width="${n2(Math.max(1, tx1 - tx0))}" height="${n2(rowHeight - 2)}"/>`;
      }
      if (labels) bar += `<text class="name" x="${left - 4}" y="${n2(y + rowHeight - 3)}">${esc(r.name)}</text>`;
      parts.push(`${bar}</g>`);
    });
  } else {
    // Switches at work per column, by outcome: a difference array per outcome, O(switches + columns).
    const width = (t1 - t0) / TIMELINE_BUCKETS;
    const diff = Object.fromEntries(OUTCOMES.map((o) => [o, new Array<number>(TIMELINE_BUCKETS + 1).fill(0)])) as Record<Outcome, number[]>;
    for (const r of started) {
      const a = Math.min(TIMELINE_BUCKETS - 1, Math.max(0, Math.floor((Date.parse(r.startedAt!) - t0) / width)));
      const b = Math.min(TIMELINE_BUCKETS - 1, Math.max(a, Math.floor((endOf(r) - t0) / width)));
      diff[outcomeOf(r.outcome)][a]!++;
      diff[outcomeOf(r.outcome)][b + 1]!--;
    }
    const running = Object.fromEntries(OUTCOMES.map((o) => [o, 0])) as Record<Outcome, number>;
    const columns: Record<Outcome, number>[] = [];
    for (let i = 0; i < TIMELINE_BUCKETS; i++) {
      for (const o of OUTCOMES) running[o] += diff[o][i]!;
      columns.push({ ...running });
    }
    const peak = Math.max(1, ...columns.map((c) => OUTCOMES.reduce((n, o) => n + c[o], 0)));
    parts.push(`<text class="tick" x="${left - 4}" y="${top + 8}" text-anchor="end">${esc(peak)}</text><text class="tick" x="${left - 4}" y="${top + plotHeight}" text-anchor="end">0</text>`);
    columns.forEach((c, i) => {
      const total = OUTCOMES.reduce((n, o) => n + c[o], 0);
      if (total === 0) return;
      const cx = x(t0 + i * width);
      const cw = Math.max(0.5, x(t0 + (i + 1) * width) - cx);
      let y = top + plotHeight;
      const what = `${clock(iso(t0 + i * width))}–${clock(iso(t0 + (i + 1) * width))}: ${total} switches at work (${OUTCOMES.filter((o) => c[o] > 0).map((o) => `${c[o]} ${o}`).join(', ')})`;
      let column = `<g><title>${esc(what)}</title>`;
      for (const o of OUTCOMES) {
        if (c[o] === 0) continue;
        const h = (c[o] / peak) * plotHeight;
        y -= h;
        column += `<rect class="${o}" x="${n2(cx)}" y="${n2(y)}" width="${n2(cw)}" height="${n2(h)}"/>`;
      }
      parts.push(`${column}</g>`);
    });
  }
  const notStarted = report.switches.length - started.length;
  const caption = aggregate
    ? `Switches at work over time (${started.length} switches, too many for one bar each), stacked by outcome; the left axis gives the peak${report.concurrency ? ` (the plan allows ${report.concurrency} at once)` : ''}.`
    : `One bar per switch from its connect (pre-check) to its verdict, by wave; the darker part is its transfer (FTP, or HTTP(S) for REST switches).`;
  const legend = OUTCOMES.map((o) => `<span><i class="swatch ${o}"></i>${esc(o)} ${esc(report.totals[o])}</span>`).join(' ');
  return `<figure class="timeline"><svg role="img" aria-labelledby="tl-title tl-desc" viewBox="0 0 ${SVG_WIDTH} ${n2(height)}" width="100%" xmlns="http://www.w3.org/2000/svg"><title id="tl-title">Timeline of the rollout, ${esc(clock(iso(t0)))} to ${esc(clock(iso(t1)))} UTC</title><desc id="tl-desc">${esc(caption)}</desc>${parts.join('')}</svg><figcaption>${esc(caption)} ${legend}${notStarted ? ` · ${esc(notStarted)} not started` : ''}</figcaption></figure>`;
}

function who(o: Operator | null): string | null {
  return o ? `${o.sudoUser ? `${o.sudoUser} (sudo as ${o.user})` : o.user} on ${o.host}` : null;
}

/** Above this many switches, printing keeps the verified ones collapsed (their counts are printed): hundreds of pages help nobody. */
const PRINT_EXPANDED_MAX = 500;

const STYLE = `
:root{--v:${COLOUR.verified};--f:${COLOUR.failed};--s:${COLOUR.skipped};--p:${COLOUR.pending};--line:#d0d7de;--soft:#f6f8fa}
body{font:14px/1.4 system-ui,"DejaVu Sans",sans-serif;margin:1.5em;color:#1f2328;max-width:1500px}
h1{font-size:1.5em;margin:0 0 .3em}h2{font-size:1.2em;margin:1.4em 0 .5em;border-bottom:1px solid var(--line)}h3{font-size:1em;margin:1em 0 .4em}
.outcome{font-size:1.1em;margin:.2em 0 .8em}
.tiles{display:flex;gap:.8em;flex-wrap:wrap;margin:.6em 0 1em}
.tile{border:2px solid;border-radius:8px;padding:.4em .9em;min-width:7em}.tile b{display:block;font-size:2em;line-height:1.1}
.tile.verified{border-color:var(--v);color:var(--v)}.tile.failed{border-color:var(--f);color:var(--f)}.tile.skipped{border-color:var(--s);color:var(--s)}.tile.pending{border-color:var(--p);color:var(--p)}
.tile.zero{opacity:.55}
dl.facts{display:grid;grid-template-columns:max-content 1fr;gap:.2em 1em;margin:0}dl.facts dt{font-weight:600;color:#57606a}dl.facts dd{margin:0}
table{border-collapse:collapse;margin:.3em 0 1em}td,th{border:1px solid var(--line);padding:3px 6px;text-align:left;vertical-align:top}th{background:var(--soft)}
table.switches{width:100%}table.switches td{font-size:13px}
tr.failed td:first-child{border-left:4px solid var(--f)}
.badge{display:inline-block;border-radius:4px;padding:0 .4em;color:#fff;font-weight:600;font-size:12px}
.badge.verified{background:var(--v)}.badge.failed{background:var(--f)}.badge.skipped{background:var(--s)}.badge.pending{background:var(--p)}
code{font:12px "DejaVu Sans Mono",monospace}.hashes div{white-space:nowrap}
b.same{color:var(--v)}b.diff{color:var(--f)}b.unk{color:#57606a}b i{position:absolute;left:-9999px}
details{margin:.3em 0 .8em}summary{cursor:pointer;font-weight:600}
.timeline{margin:0}.timeline svg{max-width:100%;height:auto;border:1px solid var(--line);background:#fff}
.timeline figcaption{font-size:12px;color:#57606a}
.swatch{display:inline-block;width:.8em;height:.8em;margin:0 .2em 0 .6em;vertical-align:-.1em}
.swatch.verified,svg .verified{fill:var(--v);background:var(--v)}.swatch.failed,svg .failed{fill:var(--f);background:var(--f)}.swatch.skipped,svg .skipped{fill:var(--s);background:var(--s)}.swatch.pending,svg .pending{fill:var(--p);background:var(--p)}
svg .bar rect{fill-opacity:.55}svg .bar rect.xfer{fill-opacity:1}
svg .grid{stroke:#eaeef2}svg .wave{stroke:#57606a;stroke-dasharray:4 3}svg text{font:11px system-ui,"DejaVu Sans",sans-serif;fill:#57606a}
svg .tick{text-anchor:middle}svg .name{text-anchor:end;fill:#1f2328}svg .wavelabel{fill:#1f2328}
small{color:#57606a}
@media print{
 body{margin:0;font-size:10pt;max-width:none}
 *{print-color-adjust:exact;-webkit-print-color-adjust:exact}
 h2{break-after:avoid}tr,.tile,.timeline{break-inside:avoid}thead{display:table-header-group}
 summary{list-style:none}summary::-webkit-details-marker{display:none}
 table.switches td{font-size:8pt}
}`;

export function toHtml(report: RolloutReport): string {
  const day = report.startedAt?.slice(0, 10) ?? null;
  const clock = clockFor(day);
  const multiSite = report.sites.length > 0;
  const failed = report.switches.filter((r) => outcomeOf(r.outcome) === 'failed');
  const title = `Firmware rollout ${report.startedAt ? readableTime(report.startedAt)!.slice(0, 16) : ''} — ${report.images.map((i) => `${i.file}${i.version ? ` ${i.version}` : ''}`).join(', ')}`;
  const outcome = report.outcome ?? 'not finished';

  const tiles = OUTCOMES.map((o) => `<div class="tile ${o}${report.totals[o] === 0 ? ' zero' : ''}"><b>${esc(report.totals[o])}</b>${esc(o)}</div>`).join('');
  const fact = (name: string, value: string | null) => (value ? `<dt>${esc(name)}</dt><dd>${value}</dd>` : '');
  const images = report.images
    .map((i) => `${esc(i.file)}${i.version ? ` — version <b>${esc(i.version)}</b>` : ''}${i.size !== null ? `, ${esc(formatBytes(i.size))}` : ''}${i.sha256 ? `, SHA-256 <code title="${esc(i.sha256)}">${esc(i.sha256)}</code>` : ''} <small>(${esc(i.switches)} switch${i.switches === 1 ? '' : 'es'})</small>`)
    .join('<br>');
  const resumes = report.resumes.map((r) => `${esc(readableTime(r.at))}${r.operator ? ` by ${esc(who(r.operator))}` : ''}`).join('<br>');
  const facts = [
    fact('Outcome', `<b>${esc(outcome)}</b>${report.reason ? ` — ${esc(report.reason)}` : ''}`),
    fact('Started', report.startedAt ? esc(readableTime(report.startedAt)) : 'not yet'),
    fact('Ended', report.endedAt ? `${esc(readableTime(report.endedAt))}${report.durationMs !== null ? ` (took ${esc(formatDuration(report.durationMs))})` : ''}` : 'not yet'),
    fact('Run by', who(report.operator) ? esc(who(report.operator)) : '<small>not recorded (journal from an older swfw)</small>'),
    fact('Resumed', resumes || null),
    fact('Image', images || null),
    fact('Plan', report.plan.path ? `${esc(report.plan.path)}${report.plan.digest ? ` <small>SHA-256</small> <code title="${esc(report.plan.digest)}">${esc(report.plan.digest.slice(0, SHORT_HASH))}…</code>` : ''}` : null),
    fact('Inventory', report.inventoryPath ? esc(report.inventoryPath) : null),
    fact(
      'Server',
      report.server
        ? `ftp://${esc(report.server.address)}:${esc(report.server.port)} <small>passive ports ${esc(report.server.pasvRange)}</small>${report.server.https ? `, https://${esc(report.server.address)}:${esc(report.server.https)}` : ''}${report.server.http ? `, http://${esc(report.server.address)}:${esc(report.server.http)}` : ''}`
        : null,
    ),
    fact('Job engine', report.engine ? `${esc(report.engine.url)}` : null),
    fact('Sites', report.engine ? esc(report.engine.sites.join(', ')) : null),
    fact('Window', report.window ? esc(report.window) : null),
    fact('Waves', `${esc(report.waves.length)}${report.canary ? ` (the first a canary of ${esc(report.canary)})` : ''}${report.concurrency ? `, ${esc(report.concurrency)} switches at once` : ''}`),
    fact('Generated', esc(readableTime(report.generatedAt))),
    fact('Run ID', report.runId ? `<small>${esc(report.runId)}</small>` : null),
  ].join('');

  const waves = `<table><thead><tr><th>wave</th><th>started</th><th>switches</th><th>verified</th><th>failed</th><th>skipped</th><th>pending</th></tr></thead><tbody>${report.waves
    .map((w) => `<tr><td>${esc(w.wave)}${w.wave === 0 && report.canary ? ' (canary)' : ''}</td><td>${esc(clock(w.startedAt))}</td><td>${esc(w.size)}</td><td>${esc(w.verified)}</td><td>${esc(w.failed)}</td><td>${esc(w.skipped)}</td><td>${esc(w.pending)}</td></tr>`)
    .join('')}</tbody></table>`;
  const sites = multiSite
    ? `<h2>Sites</h2><table><thead><tr><th>site</th><th>switches</th><th>verified</th><th>failed</th><th>skipped</th><th>pending</th><th>halted</th></tr></thead><tbody>${report.sites
        .map((x) => `<tr><td>${esc(x.site)}</td><td>${esc(x.size)}</td><td>${esc(x.verified)}</td><td>${esc(x.failed)}</td><td>${esc(x.skipped)}</td><td>${esc(x.pending)}</td><td>${esc(x.halted ?? '')}</td></tr>`)
        .join('')}</tbody></table>`
    : '';

  const failedSection = failed.length
    ? `<h2 id="failed">Failed switches (${esc(failed.length)})</h2>${switchTable(failed, clock)}`
    : '<h2 id="failed">Failed switches</h2><p>None.</p>';

  // Everything but the failed ones, grouped by site (multi-site) or wave: what needs a look open,
  // the verified and the never-started collapsed, so 10,000 switches stay one page to scroll.
  const groups = new Map<string, ReportRow[]>();
  for (const r of report.switches) {
    const key = multiSite ? `site ${r.site ?? '(none)'}` : r.wave === 0 && report.canary ? 'wave 0 (canary)' : `wave ${r.wave}`;
    const list = groups.get(key) ?? [];
    list.push(r);
    groups.set(key, list);
  }
  const grouped = [...groups]
    .map(([name, rows]) => {
      const counts = countRows(rows);
      // By outcomeOf, as everywhere on the page: a row whose outcome this version does not know shows as pending, never nowhere.
      const look = rows.filter((r) => outcomeOf(r.outcome) === 'skipped' || (outcomeOf(r.outcome) === 'pending' && r.startedAt !== null));
      const verified = rows.filter((r) => outcomeOf(r.outcome) === 'verified');
      const notStarted = rows.filter((r) => outcomeOf(r.outcome) === 'pending' && r.startedAt === null);
      const failedHere = rows.filter((r) => outcomeOf(r.outcome) === 'failed').length;
      return `<section class="group"><h3>${esc(name)}: ${esc(formatCount(rows.length, 'switch', 'switches'))} — ${OUTCOMES.filter((o) => counts[o] > 0).map((o) => `${esc(counts[o])} ${esc(o)}`).join(', ')}</h3>${
        failedHere ? `<p>${esc(failedHere)} failed: listed under <a href="#failed">Failed switches</a>.</p>` : ''
      }${look.length ? switchTable(look, clock) : ''}${
        verified.length ? `<details class="verified"><summary>${esc(formatCount(verified.length, 'verified switch', 'verified switches'))}</summary>${switchTable(verified, clock)}</details>` : ''
      }${notStarted.length ? `<details class="notstarted"><summary>${esc(formatCount(notStarted.length, 'switch', 'switches'))} not started</summary>${switchTable(notStarted, clock)}</details>` : ''}</section>`;
    })
    .join('\n');

  const sequences = report.ftpSequences.length
    ? `<h2>Transfer commands per platform (its first switch: FTP commands, or the HTTP(S) request)</h2><table><thead><tr><th>driver</th><th>switch</th><th>commands, in order</th></tr></thead><tbody>${report.ftpSequences
        .map((q) => `<tr><td>${esc(q.driver)}</td><td>${esc(q.switch)}</td><td><code>${q.commands.map(esc).join('<br>')}</code></td></tr>`)
        .join('')}</tbody></table>`
    : '';
  // A small fleet prints whole; a large one prints its problems and counts (see PRINT_EXPANDED_MAX).
  const printAll = report.switches.length <= PRINT_EXPANDED_MAX ? '@media print{details::details-content{content-visibility:visible;display:block}}' : '';
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; img-src data:">
<title>${esc(title)}</title>
<style>${STYLE}${printAll}</style></head>
<body><header><h1>${esc(title)}</h1>
<p class="outcome">Rollout <b>${esc(outcome)}</b>: ${esc(report.totals.verified)} verified, ${esc(report.totals.failed)} failed, ${esc(report.totals.skipped)} skipped, ${esc(report.totals.pending)} pending of ${esc(formatCount(report.switches.length, 'switch', 'switches'))}.</p>
<div class="tiles">${tiles}</div>
<dl class="facts">${facts}</dl></header>
<h2>Timeline</h2>${timeline(report)}
${failedSection}
<h2>Waves</h2>${waves}
${sites}
<h2>Switches by ${multiSite ? 'site' : 'wave'}</h2>
${grouped}
${sequences}
<footer><p><small>Written by swfw from the rollout journal. Hashes are shortened to ${SHORT_HASH} hex digits: hover one for its full value. ✓ same as the catalog, ✗ different, ? nothing to compare with.</small></p></footer>
</body></html>
`;
}

function countRows(rows: readonly ReportRow[]): Record<Outcome, number> {
  const counts = { verified: 0, failed: 0, skipped: 0, pending: 0 };
  for (const r of rows) counts[outcomeOf(r.outcome)]++;
  return counts;
}

export async function writeReports(dir: string, state: RolloutState, options: { now?: () => number } = {}): Promise<{ json: string; csv: string; html: string }> {
  await mkdir(dir, { recursive: true });
  const report = buildReport(state, options);
  const paths = { json: join(dir, 'rollout-report.json'), csv: join(dir, 'rollout-report.csv'), html: join(dir, 'rollout-report.html') };
  await writeFile(paths.json, `${JSON.stringify(report, null, 2)}\n`);
  await writeFile(paths.csv, toCsv(report.switches));
  await writeFile(paths.html, toHtml(report));
  return paths;
}
