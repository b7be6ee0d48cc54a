/** Morning reports: JSON, CSV and one self-contained HTML page (no external assets). */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { countOutcomes, type RolloutState, type SwitchState } from './state.js';

export interface ReportRow {
  name: string;
  address: string;
  wave: number;
  image: string;
  outcome: string;
  verdict: string | null;
  reason: string | null;
  attempts: number;
  transfers: number;
  precheck: Record<string, unknown> | null;
  bytes: number | null;
  durationMs: number | null;
  bytesPerSecond: number | null;
  catalogSha256: string | null;
  serverSha256: string | null;
  switchAlgorithm: string | null;
  switchDigest: string | null;
}

function row(s: SwitchState): ReportRow {
  const alg = s.hashes?.switchAlgorithm ?? null;
  return {
    name: s.name,
    address: s.address,
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
  };
}

export function buildReport(state: RolloutState): { runId: string | null; outcome: string | null; reason: string | null; waves: object[]; totals: object; switches: ReportRow[] } {
  const switches = [...state.switches.values()].sort((a, b) => a.wave - b.wave || a.name.localeCompare(b.name));
  return {
    runId: state.runId,
    outcome: (state.end?.['outcome'] as string) ?? null,
    reason: (state.end?.['reason'] as string) ?? null,
    waves: state.waves.map((names, wave) => ({ wave, size: names.length, ...countOutcomes(names.map((n) => state.switches.get(n)!)) })),
    totals: countOutcomes(switches),
    switches: switches.map(row),
  };
}

const CSV_COLUMNS: (keyof ReportRow)[] = ['name', 'address', 'wave', 'image', 'outcome', 'verdict', 'reason', 'attempts', 'transfers', 'bytes', 'durationMs', 'bytesPerSecond', 'catalogSha256', 'serverSha256', 'switchAlgorithm', 'switchDigest'];

function csvCell(value: unknown): string {
  const text = value === null || value === undefined ? '' : typeof value === 'object' ? JSON.stringify(value) : String(value);
  // RFC 4180 quoting; a leading = + - @ is neutralised so spreadsheets do not run it as a formula.
  const safe = /^[=+\-@]/.test(text) ? `'${text}` : text;
  return /[",\r\n]/.test(safe) ? `"${safe.replace(/"/g, '""')}"` : safe;
}

export function toCsv(rows: readonly ReportRow[]): string {
  const lines = [[...CSV_COLUMNS, 'precheck'].join(',')];
  for (const r of rows) lines.push([...CSV_COLUMNS.map((c) => csvCell(r[c])), csvCell(r.precheck)].join(','));
  return `${lines.join('\r\n')}\r\n`;
}

const esc = (v: unknown) => String(v ?? '').replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);

export function toHtml(report: ReturnType<typeof buildReport>): string {
  const colour: Record<string, string> = { verified: '#1a7f37', skipped: '#57606a', failed: '#cf222e', pending: '#9a6700' };
  const waves = (report.waves as Record<string, unknown>[]).map((w) => `<tr><td>${esc(w['wave'])}</td><td>${esc(w['size'])}</td><td>${esc(w['verified'])}</td><td>${esc(w['skipped'])}</td><td>${esc(w['failed'])}</td><td>${esc(w['pending'])}</td></tr>`).join('');
  const rows = report.switches
    .map(
      (r) =>
        `<tr><td>${esc(r.name)}</td><td>${esc(r.address)}</td><td>${esc(r.wave)}</td><td style="color:${colour[r.outcome] ?? '#000'};font-weight:bold">${esc(r.outcome)}</td><td>${esc(r.verdict)}</td><td>${esc(r.reason)}</td><td>${esc(r.attempts)}</td><td>${esc(r.bytes)}</td><td>${esc(r.durationMs)}</td><td>${esc(r.bytesPerSecond)}</td><td class="h">${esc(r.catalogSha256)}</td><td class="h">${esc(r.serverSha256)}</td><td class="h">${esc(r.switchAlgorithm)} ${esc(r.switchDigest)}</td><td class="h">${esc(JSON.stringify(r.precheck))}</td></tr>`,
    )
    .join('\n');
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>swfw rollout ${esc(report.runId)}</title>
<style>body{font:14px system-ui,sans-serif;margin:1.5em}table{border-collapse:collapse;margin-bottom:1.5em}td,th{border:1px solid #d0d7de;padding:3px 6px;text-align:left;vertical-align:top}th{background:#f6f8fa}.h{font:11px monospace;word-break:break-all;max-width:22em}</style></head>
<body><h1>Rollout ${esc(report.runId)}</h1>
<p>Outcome: <b>${esc(report.outcome ?? 'running')}</b> ${esc(report.reason ?? '')}</p>
<h2>Waves</h2><table><tr><th>wave</th><th>switches</th><th>verified</th><th>skipped</th><th>failed</th><th>pending</th></tr>${waves}</table>
<h2>Switches</h2><table><tr><th>name</th><th>address</th><th>wave</th><th>outcome</th><th>verdict</th><th>reason</th><th>attempts</th><th>bytes</th><th>ms</th><th>bytes/s</th><th>catalog sha256</th><th>server sent sha256</th><th>switch's own digest</th><th>pre-check</th></tr>
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
