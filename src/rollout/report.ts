/** Morning reports: JSON, CSV and one self-contained HTML page (no external assets). */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { formatBytes, formatDuration } from '../core/format.js';
import type { PrecheckRecord } from './records.js';
import { countOutcomes, type RolloutState, type SwitchState } from './state.js';

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
  outcome: string;
  verdict: string | null;
  reason: string | null;
  attempts: number;
  transfers: number;
  precheck: PrecheckRecord | null;
  bytes: number | null;
  durationMs: number | null;
  bytesPerSecond: number | null;
  catalogSha256: string | null;
  serverSha256: string | null;
  switchAlgorithm: string | null;
  switchDigest: string | null;
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

function row(s: SwitchState): ReportRow {
  const alg = s.hashes?.switchAlgorithm ?? null;
  const ssh = s.precheck?.ssh;
  return {
    name: s.name,
    address: s.address,
    resolvedAddress: s.resolvedAddress,
    driver: s.driver,
    site: s.site,
    wave: s.wave,
    image: s.image,
    outcome: s.outcome ?? 'pending',
    verdict: s.verdict,
    reason: s.reason,
    attempts: s.attempts,
    transfers: s.transfers,
    precheck: s.precheck,
    bytes: s.bytes,
    durationMs: s.durationMs,
    bytesPerSecond: s.bytes && s.durationMs ? Math.round((s.bytes * 1000) / s.durationMs) : null,
    catalogSha256: s.hashes?.catalogSha256 ?? null,
    serverSha256: s.hashes?.serverSha256 ?? null,
    switchAlgorithm: alg,
    switchDigest: alg ? (s.hashes?.switchDigests[alg] ?? null) : null,
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

export function buildReport(state: RolloutState): {
  runId: string | null;
  /** When the run started and ended (ISO 8601, from the journal); null while it has not. */
  startedAt: string | null;
  endedAt: string | null;
  outcome: string | null;
  reason: string | null;
  waves: object[];
  /** Multi-site: per site, its counts, and why it halted when its own threshold stopped it. */
  sites: { site: string; size: number; verified: number; skipped: number; failed: number; pending: number; halted: string | null }[];
  totals: object;
  ftpSequences: FtpSequence[];
  switches: ReportRow[];
} {
  const switches = [...state.switches.values()].sort((a, b) => a.wave - b.wave || a.name.localeCompare(b.name));
  return {
    runId: state.runId,
    startedAt: state.start?.at ?? null,
    endedAt: state.end?.at ?? null,
    outcome: (state.end?.['outcome'] as string) ?? null,
    reason: (state.end?.['reason'] as string) ?? null,
    waves: state.waves.map((names, wave) => ({ wave, size: names.length, ...countOutcomes(names.map((n) => state.switches.get(n)!)) })),
    sites: [...new Set(switches.map((s) => s.site).filter((s): s is string => s !== null))].sort().map((site) => {
      const mine = switches.filter((s) => s.site === site);
      return { site, size: mine.length, ...countOutcomes(mine), halted: state.haltedSites.get(site) ?? null };
    }),
    totals: countOutcomes(switches),
    ftpSequences: ftpSequences(switches),
    switches: switches.map(row),
  };
}

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
];

function csvCell(value: unknown): string {
  const text = value === null || value === undefined ? '' : Array.isArray(value) ? value.join('; ') : typeof value === 'object' ? JSON.stringify(value) : String(value);
  // RFC 4180 quoting; a leading = + - @ is neutralised so spreadsheets do not run it as a formula.
  const safe = /^[=+\-@]/.test(text) ? `'${text}` : text;
  return /[",\r\n]/.test(safe) ? `"${safe.replace(/"/g, '""')}"` : safe;
}

export function toCsv(rows: readonly ReportRow[]): string {
  const lines = [[...CSV_COLUMNS, 'precheck'].join(',')];
  for (const r of rows) lines.push([...CSV_COLUMNS.map((c) => csvCell(r[c])), csvCell(r.precheck)].join(','));
  return `${lines.join('\r\n')}\r\n`;
}

/** A pre-check as a person reads it: "C9300-48P, 17.06.05, 1.2 GiB free, image not on flash; logged in by password". */
function describePrecheck(precheck: PrecheckRecord | null): string {
  if (!precheck) return '';
  if (precheck['reachable'] === false) return `unreachable: ${String(precheck['error'] ?? '')}`;
  const parts = [precheck['model'], precheck['version']].filter((v) => typeof v === 'string' && v !== '') as string[];
  if (typeof precheck['freeBytes'] === 'number') parts.push(`${formatBytes(precheck['freeBytes'])} free`);
  const onFlash = { absent: 'image not on flash', match: 'image already on flash', differs: 'a different file of that name on flash' }[String(precheck['onFlash'])];
  if (onFlash) parts.push(onFlash);
  const login = typeof precheck['login'] === 'string' ? `; logged in by ${precheck['login']}` : '';
  return `${parts.join(', ')}${login}`;
}

/** "2026-11-30T22:00:08.123Z" → "2026-11-30 22:00:08 UTC". */
function readableTime(iso: string | null): string | null {
  return iso === null ? null : `${iso.slice(0, 10)} ${iso.slice(11, 19)} UTC`;
}

const esc = (v: unknown) => String(v ?? '').replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);

export function toHtml(report: ReturnType<typeof buildReport>): string {
  const colour: Record<string, string> = { verified: '#1a7f37', skipped: '#57606a', failed: '#cf222e', pending: '#9a6700' };
  const waves = (report.waves as Record<string, unknown>[]).map((w) => `<tr><td>${esc(w['wave'])}</td><td>${esc(w['size'])}</td><td>${esc(w['verified'])}</td><td>${esc(w['skipped'])}</td><td>${esc(w['failed'])}</td><td>${esc(w['pending'])}</td></tr>`).join('');
  const multiSite = report.sites.length > 0;
  const sites = multiSite
    ? `<h2>Sites</h2><table><tr><th>site</th><th>switches</th><th>verified</th><th>skipped</th><th>failed</th><th>pending</th><th>halted</th></tr>${report.sites
        .map((x) => `<tr><td>${esc(x.site)}</td><td>${x.size}</td><td>${x.verified}</td><td>${x.skipped}</td><td>${x.failed}</td><td>${x.pending}</td><td>${esc(x.halted ?? '')}</td></tr>`)
        .join('')}</table>`
    : '';
  const rows = report.switches
    .map(
      (r) =>
        `<tr><td>${esc(r.name)}</td><td>${esc(r.address)}${r.resolvedAddress && r.resolvedAddress !== r.address ? ` (${esc(r.resolvedAddress)})` : ''}<br><small>${esc(r.driver)}</small></td>${multiSite ? `<td>${esc(r.site)}</td>` : ''}<td>${esc(r.wave)}</td><td style="color:${colour[r.outcome] ?? '#000'};font-weight:bold">${esc(r.outcome)}</td><td>${esc(r.verdict)}</td><td>${esc(r.reason)}${r.notes.length ? `<br><small>${esc(r.notes.join('; '))}</small>` : ''}</td><td>${esc(r.attempts)}</td><td>${r.bytes === null ? '' : esc(formatBytes(r.bytes))}</td><td>${r.durationMs === null ? '' : esc(formatDuration(r.durationMs))}</td><td>${r.bytesPerSecond === null ? '' : `${esc(formatBytes(r.bytesPerSecond))}/s`}</td><td class="h">${esc(r.catalogSha256)}</td><td class="h">${esc(r.serverSha256)}</td><td class="h">${esc(r.switchAlgorithm)} ${esc(r.switchDigest)}</td><td>${esc(describePrecheck(r.precheck))}</td><td class="h">${esc(r.ssh)}</td></tr>`,
    )
    .join('\n');
  const sequences = report.ftpSequences.length
    ? `<h2>FTP commands per platform (its first switch)</h2><table><tr><th>driver</th><th>switch</th><th>commands, in order</th></tr>${report.ftpSequences
        .map((q) => `<tr><td>${esc(q.driver)}</td><td>${esc(q.switch)}</td><td class="h">${q.commands.map(esc).join('<br>')}</td></tr>`)
        .join('')}</table>`
    : '';
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>swfw rollout ${esc(report.runId)}</title>
<style>body{font:14px system-ui,sans-serif;margin:1.5em}table{border-collapse:collapse;margin-bottom:1.5em}td,th{border:1px solid #d0d7de;padding:3px 6px;text-align:left;vertical-align:top}th{background:#f6f8fa}.h{font:11px monospace;word-break:break-all;max-width:22em}</style></head>
<body><h1>Rollout ${esc(report.runId)}</h1>
<p>Outcome: <b>${esc(report.outcome ?? 'running')}</b> ${esc(report.reason ?? '')}</p>
<p>Started ${esc(readableTime(report.startedAt) ?? 'not yet')}${report.endedAt ? `, ended ${esc(readableTime(report.endedAt))}` : ''}${report.startedAt && report.endedAt ? ` (${esc(formatDuration(Date.parse(report.endedAt) - Date.parse(report.startedAt)))})` : ''}</p>
<h2>Waves</h2><table><tr><th>wave</th><th>switches</th><th>verified</th><th>skipped</th><th>failed</th><th>pending</th></tr>${waves}</table>
${sites}
${sequences}
<h2>Switches</h2><table><tr><th>name</th><th>address</th>${multiSite ? '<th>site</th>' : ''}<th>wave</th><th>outcome</th><th>verdict</th><th>reason</th><th>attempts</th><th>bytes</th><th>duration</th><th>rate</th><th>catalog sha256</th><th>server sent sha256</th><th>switch's own digest</th><th>pre-check</th><th>SSH (kex / host key / cipher / mac)</th></tr>
${rows}
</table></body></html>
`;
}

export async function writeReports(dir: string, state: RolloutState): Promise<{ json: string; csv: string; html: string }> {
  await mkdir(dir, { recursive: true });
  const report = buildReport(state);
  const paths = { json: join(dir, 'rollout-report.json'), csv: join(dir, 'rollout-report.csv'), html: join(dir, 'rollout-report.html') };
  await writeFile(paths.json, `${JSON.stringify(report, null, 2)}\n`);
  await writeFile(paths.csv, toCsv(report.switches));
  await writeFile(paths.html, toHtml(report));
  return paths;
}
