import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PROJECT_ROOT } from './options.js';
import type { FigureRow } from './figures.js';
import type { MachineInfo } from './machine.js';
import type { BenchOptions } from './options.js';
import { mebibytes, ratio } from './stats.js';

/** How the run was set up, for the report header. */
export interface RunSettings {
  options: BenchOptions;
  command: string;
  swfwCommand: string;
  vsftpdConfig: string;
  /** How vsftpd's CPU-seconds were counted (cpu.ts cpuSourceOf). */
  vsftpdCpuSource: string;
  durationMs: number;
}

const HEADERS = ['#', 'Figure', 'Target', 'Median', 'Min', 'Max', 'Absolute medians', 'Result'] as const;

function cells(row: FigureRow): string[] {
  const format = (v: number) => (row.unit === 'bytes' ? mebibytes(v) : row.unit === 'ms' ? `${v.toFixed(1)} ms` : ratio(v));
  // An n/a row says why in its result cell ("n/a (swfw pull not built yet)").
  const result = row.verdict === 'n/a' && row.note ? row.note : row.verdict;
  return [
    row.id,
    row.title,
    row.target,
    row.value ? format(row.value.median) : 'n/a',
    row.value ? format(row.value.min) : '',
    row.value ? format(row.value.max) : '',
    row.absolute,
    result,
  ];
}

/** Footnotes: notes that are not already the result cell. */
const footnotes = (rows: readonly FigureRow[]): string[] =>
  rows.filter((r) => r.note && r.verdict !== 'n/a').map((r) => `Figure ${r.id}: ${r.note}`);

/** The table as aligned plain text, for the terminal. */
export function textTable(rows: readonly FigureRow[]): string {
  const table = [[...HEADERS], ...rows.map(cells)];
  const widths = HEADERS.map((_, col) => Math.max(...table.map((r) => r[col]!.length)));
  const line = (r: string[]) => r.map((cell, col) => cell.padEnd(widths[col]!)).join('  ').trimEnd();
  const rule = widths.map((w) => '-'.repeat(w)).join('  ');
  const notes = footnotes(rows);
  return [line(table[0]!), rule, ...table.slice(1).map(line), ...(notes.length ? ['', ...notes] : [])].join('\n');
}

const escapeCell = (text: string): string => text.replaceAll('|', '\\|');

export function markdownTable(rows: readonly FigureRow[]): string {
  const head = `| ${HEADERS.join(' | ')} |`;
  const rule = `|${HEADERS.map(() => '---').join('|')}|`;
  return [head, rule, ...rows.map((r) => `| ${cells(r).map(escapeCell).join(' | ')} |`)].join('\n');
}

/**
 * The hand-written analysis, kept in bench/ANALYSIS.md so that a new run's table never overwrites
 * it. It names the run it was written for; a later run's table may differ from its figures.
 */
export const ANALYSIS_FILE = join(PROJECT_ROOT, 'bench', 'ANALYSIS.md');

function analysis(smoke: boolean): string {
  if (smoke) return '_A smoke run: tiny images, times not judged. The analysis of a full run is in bench/ANALYSIS.md._';
  if (!existsSync(ANALYSIS_FILE)) return '_bench/ANALYSIS.md is missing: what limits each figure is written there._';
  return readFileSync(ANALYSIS_FILE, 'utf8').replace(/^# .*\n+/, '').trim();
}

export function markdownReport(rows: readonly FigureRow[], machine: MachineInfo, settings: RunSettings): string {
  const { options } = settings;
  const notes = footnotes(rows);
  const mode = options.smoke ? 'smoke (tiny images; correctness only, times not judged)' : 'full';
  return `# swfw benchmark results${options.smoke ? ' (smoke run)' : ''}

- Date: ${machine.date}; mode: ${mode}; ${options.warmups} warm-up round(s), then ${options.reps} counted rounds per figure; figure 6: ${options.rssRuns} run(s)
- Command: \`${settings.command}\` (took ${(settings.durationMs / 1000).toFixed(0)} s); the machine and the setup are at the end.

Ratios are swfw ÷ reference (or ÷ the figure's floor, where the target says so); each is the
median (min, max) over the counted rounds. Each round runs swfw first, then the reference, back
to back, so background load hits both. Every download's byte count is checked against the file
size, and every digest (ftplib, \`curl | openssl dgst -sha256\`, \`swfw pull --sha256\`) against
the file's SHA-256. Floor rows: the least time the work needs on this machine's cores.

## Results

${markdownTable(rows)}
${notes.length ? `\n${notes.map((n) => `- ${n}`).join('\n')}\n` : ''}
## Analysis

${analysis(options.smoke)}

## Machine

- CPUs (nproc): ${machine.nproc}
- CPU model: ${machine.cpuModel}
- Memory: ${machine.memory}
- Kernel: ${machine.kernel}
- Load average at start: ${machine.loadAverage}

## Versions

${machine.versions.map((v) => `- ${v.label}: ${v.value}`).join('\n')}

## Setup

Three servers on 127.0.0.1, each with a five-port passive range, serving the same directory of
random-byte images (${mebibytes(options.sizes.largeBytes)}, ${mebibytes(options.sizes.mediumBytes)}, ${options.sizes.smallCount} × ${options.sizes.smallBytes} B).

- swfw on its defaults (\`hashSentBytes: per-version\`: each file version hashed once, on the
  stream of its first whole transfer; info log to a file):
  \`${settings.swfwCommand}\`${options.raiseSwfwLimits ? '\n  The per-address limits are raised to match vsftpd\'s max_per_ip/max_clients: the benchmark\'s\n  clients come from 127.0.0.1 (figure 5\'s from 127.0.10.x), where switches each have their own address.' : ''}
- for rows 1b and 3b only, a second swfw with the same flags plus \`--no-hash-sent-bytes\` (port
  ${options.swfwNoHashPort}, passive ${options.swfwNoHashPasv.min}-${options.swfwNoHashPasv.max}): the data path without any hash, measured in the same
  rounds. The targets are judged on the default server only.
- CPU-seconds per run: swfw's from \`/proc/PID/stat\` (all its threads), vsftpd's by
  ${settings.vsftpdCpuSource}, and the clients' (curl, python, \`swfw pull\`, \`swfw rollout\`),
  which are the harness's own children, from its \`cutime\` and \`cstime\`.
- vsftpd, anonymous, generated config:

\`\`\`
${settings.vsftpdConfig.trim()}
\`\`\`
`;
}

export function writeReport(file: string, text: string): void {
  writeFileSync(file, text);
}
