import { readFileSync } from 'node:fs';
import { availableParallelism, loadavg, release, totalmem } from 'node:os';
import { join } from 'node:path';
import { PROJECT_ROOT, VSFTPD } from './options.js';
import { quick } from './proc.js';

/** What the numbers were measured on: a ratio means little without the machine and versions. */
export interface MachineInfo {
  date: string;
  nproc: number;
  cpuModel: string;
  memory: string;
  kernel: string;
  loadAverage: string;
  versions: { label: string; value: string }[];
}

const firstLine = (text: string | undefined): string => (text ?? '').trim().split('\n')[0]?.trim() ?? '';

function cpuModel(): string {
  try {
    const match = /^model name\s*:\s*(.+)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'));
    return match?.[1]?.trim() ?? 'unknown';
  } catch {
    return 'unknown';
  }
}

/** vsftpd -v prints its version to file descriptor 0, not stdout; a shell redirects it. */
function vsftpdVersion(): string {
  const result = quick('sh', ['-c', `${VSFTPD} -v 0>&1`]);
  const line = firstLine(result?.stdout) || firstLine(result?.stderr);
  const pkg = quick('dpkg-query', ['-W', '-f=${Version}', 'vsftpd']);
  return [line || 'unknown', pkg?.code === 0 && pkg.stdout ? `(Debian package ${pkg.stdout.trim()})` : ''].filter(Boolean).join(' ');
}

function swfwVersion(): string {
  const pkg = JSON.parse(readFileSync(join(PROJECT_ROOT, 'package.json'), 'utf8')) as { version: string };
  const head = quick('git', ['-C', PROJECT_ROOT, 'rev-parse', '--short', 'HEAD']);
  const dirty = quick('git', ['-C', PROJECT_ROOT, 'status', '--porcelain', '--', 'src', 'config', 'package.json']);
  const commit = head?.code === 0 ? ` (git ${head.stdout.trim()}${dirty?.stdout.trim() ? ', uncommitted changes in src/' : ''})` : '';
  return `${pkg.version}${commit}`;
}

export function machineInfo(): MachineInfo {
  return {
    date: new Date().toISOString(),
    nproc: availableParallelism(),
    cpuModel: cpuModel(),
    memory: `${(totalmem() / 1024 ** 3).toFixed(1)} GiB`,
    kernel: release(),
    loadAverage: loadavg()
      .map((l) => l.toFixed(2))
      .join(' '),
    versions: [
      { label: 'node', value: process.version },
      { label: 'vsftpd', value: vsftpdVersion() },
      { label: 'curl', value: firstLine(quick('curl', ['--version'])?.stdout) || 'unknown' },
      { label: 'python3', value: firstLine(quick('python3', ['--version'])?.stdout) || 'unknown' },
      { label: 'swfw', value: swfwVersion() },
    ],
  };
}
