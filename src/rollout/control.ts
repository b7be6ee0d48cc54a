/** The operator's controls between processes: a control file the runner polls, and a pid lock. */
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomic } from '../core/durableFile.js';
import { ExitCode, ExitError } from '../core/errors.js';

export type ControlCommand = 'run' | 'pause' | 'abort';

export const JOURNAL_FILE = 'journal.jsonl';
const CONTROL_FILE = 'control.json';
const LOCK_FILE = 'runner.pid';

export function readControl(stateDir: string): ControlCommand {
  try {
    const value = JSON.parse(readFileSync(join(stateDir, CONTROL_FILE), 'utf8')) as { command?: string };
    return value.command === 'pause' || value.command === 'abort' ? value.command : 'run';
  } catch {
    return 'run';
  }
}

export async function writeControl(stateDir: string, command: ControlCommand): Promise<void> {
  await writeFileAtomic(join(stateDir, CONTROL_FILE), `${JSON.stringify({ command, at: new Date().toISOString() })}\n`);
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** The pid of a live runner on this state directory, or null (a stale lock from a crash is ignored). */
export function activeRunner(stateDir: string): number | null {
  try {
    const pid = Number(readFileSync(join(stateDir, LOCK_FILE), 'utf8').trim());
    return Number.isInteger(pid) && pid > 0 && pid !== process.pid && alive(pid) ? pid : null;
  } catch {
    return null;
  }
}

export function takeLock(stateDir: string): void {
  writeFileSync(join(stateDir, LOCK_FILE), `${process.pid}\n`);
}

/** Takes the runner lock, or fails with exit 2 naming the live runner that holds it. */
export function lockStateDir(stateDir: string): void {
  const other = activeRunner(stateDir);
  if (other !== null) throw new ExitError(ExitCode.USAGE, `a rollout runner (pid ${other}) is already working on ${stateDir}`);
  takeLock(stateDir);
}

export function releaseLock(stateDir: string): void {
  rmSync(join(stateDir, LOCK_FILE), { force: true });
}
