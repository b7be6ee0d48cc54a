/** The operator's controls between processes: a control file the runner polls, and a pid lock. */
import { linkSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomic } from '../core/durableFile.js';
import { RefusalError } from '../core/errors.js';

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
  const pid = lockHolder(join(stateDir, LOCK_FILE));
  return pid !== null && pid !== process.pid && alive(pid) ? pid : null;
}

/**
 * Takes the runner lock, or fails with exit 2 naming the live runner that holds it. The lock file
 * is created exclusively (O_EXCL), so two runners started at the same moment cannot both get it.
 *
 * A lock left by a runner that died (kill -9, reboot) is taken over, and taking over is where two
 * runners could both win: each reads the dead pid, one removes the file and creates its own, the
 * other then removes *that* one. So breaking a stale lock needs a second lock, `runner.pid.break`,
 * also created exclusively: its holder checks again that the holder is dead before removing the
 * lock. Nobody else removes a lock, so that check cannot go stale. A `.break` left by a breaker
 * that died is removed once its pid is dead.
 *
 * Both files appear with their pid already in them: the pid is written to a private file first,
 * then hard-linked into place (link(2) fails with EEXIST atomically, as O_EXCL does). A lock
 * created with O_EXCL is empty until its write lands, and a runner that read it empty in that gap
 * took it for stale and removed a live runner's lock (2 takeovers in 10 won twice).
 */
export function lockStateDir(stateDir: string, who = 'a rollout runner'): void {
  const path = join(stateDir, LOCK_FILE);
  const breaker = `${path}.break`;
  for (let attempt = 0; ; attempt++) {
    if (createWithPid(path)) return;
    // Never empty (see createWithPid): null means gone since, or a file no runner wrote.
    const holder = lockHolder(path);
    if (holder === process.pid) return; // ours already (schedule holds it across its runs)
    if (holder !== null && alive(holder)) throw new RefusalError(`${who} (pid ${holder}) is already working on ${stateDir}`);
    if (attempt >= STALE_LOCK_ATTEMPTS) throw new RefusalError(`cannot take the runner lock ${path}: it keeps changing`);
    if (!createWithPid(breaker)) {
      // Another runner is breaking it: look again once it is done (it will hold the lock, alive).
      const other = lockHolder(breaker);
      if (other !== null && !alive(other)) rmSync(breaker, { force: true });
      sleepSync(STALE_LOCK_RECHECK_MS);
      continue;
    }
    try {
      const still = lockHolder(path);
      if (still === holder) rmSync(path, { force: true }); // still the dead runner's: nobody else could have replaced it
    } finally {
      rmSync(breaker, { force: true });
    }
  }
}
const STALE_LOCK_ATTEMPTS = 20;
const STALE_LOCK_RECHECK_MS = 25;

/**
 * Creates `path` holding this process's pid, or returns false if it exists. The pid is in the
 * file from the moment the name exists: written to a private file, then linked into place.
 */
function createWithPid(path: string): boolean {
  const own = `${path}.${process.pid}`;
  writeFileSync(own, `${process.pid}\n`);
  try {
    linkSync(own, path);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw err;
  } finally {
    rmSync(own, { force: true });
  }
}

/** A short synchronous pause (the lock is taken before anything else runs). */
function sleepSync(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

function lockHolder(path: string): number | null {
  try {
    const pid = Number(readFileSync(path, 'utf8').trim());
    return Number.isInteger(pid) && pid > 0 ? pid : null;
  } catch {
    return null;
  }
}

export function releaseLock(stateDir: string): void {
  rmSync(join(stateDir, LOCK_FILE), { force: true });
}
