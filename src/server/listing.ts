import type { Stats } from 'node:fs';

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
const SIX_MONTHS_MS = 182 * 24 * 3600 * 1000;

/**
 * One `ls -l` style line, the de-facto LIST format every client parses. Owner and group are
 * always `ftp`: the server's accounts are nobody's business.
 */
export function lsLine(name: string, stats: Stats, now: number): string {
  const type = stats.isDirectory() ? 'd' : '-';
  // Read-only repository: show what a client can do, not the server's modes.
  const mode = stats.isDirectory() ? 'r-xr-xr-x' : 'r--r--r--';
  const date = stats.mtime;
  const recent = Math.abs(now - date.getTime()) < SIX_MONTHS_MS;
  const day = String(date.getUTCDate()).padStart(2, ' ');
  const when = recent
    ? `${String(date.getUTCHours()).padStart(2, '0')}:${String(date.getUTCMinutes()).padStart(2, '0')}`
    : ` ${date.getUTCFullYear()}`;
  return `${type}${mode} 1 ftp ftp ${String(stats.size).padStart(12)} ${MONTHS[date.getUTCMonth()]} ${day} ${when} ${name}`;
}

/** RFC 3659 time-val: YYYYMMDDHHMMSS in UTC. */
export function timeVal(date: Date): string {
  return date.toISOString().replace(/[-:T]/g, '').slice(0, 14);
}

/** RFC 3659 §7 MLSx facts for one entry. */
export function mlsxFacts(name: string, stats: Stats, kind?: 'cdir'): string {
  const type = kind ?? (stats.isDirectory() ? 'dir' : 'file');
  const perm = stats.isDirectory() ? 'el' : 'r';
  return `type=${type};size=${stats.size};modify=${timeVal(stats.mtime)};perm=${perm}; ${name}`;
}
