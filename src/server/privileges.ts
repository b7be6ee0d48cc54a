/**
 * Dropping root after binding, as vsftpd splits itself by trust: the process that parses every
 * byte a stranger sends on port 21 must hold no privilege. `swfw serve` started as root binds its
 * control port and passive range, opens its log file, loads its TLS key and catalog, starts its
 * hash worker, then becomes `runAs` (setgroups, setgid, setuid: no way back). Root is kept only
 * when told so (`--run-as root`), and a root-only helper process owns the firewall rules
 * (src/firewall/helper.ts).
 *
 * Before anything binds, the user is looked up and its access to what the server reads after the
 * drop (the images and catalog, the code it may still load) is checked with the permission bits,
 * so a checkout only root can enter is refused with one line naming the path and the fix, not
 * with EACCES on the first RETR.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';

/** `--run-as root`: keep root (the operator said so). */
export const KEEP_ROOT = 'root';

export interface RunAsUser {
  name: string;
  uid: number;
  gid: number;
  /** Supplementary groups (`id -G`), for the permission check. */
  groups: number[];
}

/** The running process can drop privileges (it is root). */
export function isRoot(): boolean {
  return process.geteuid?.() === 0;
}

/** Where `id` is looked for when PATH has none (a service's PATH may be bare). */
const ID_FALLBACKS = ['/usr/bin/id', '/bin/id'];

/** The account `name` on this host (`id`, which asks NSS as the system does), or null. */
export function lookupUser(name: string): RunAsUser | null {
  const command = [...ID_FALLBACKS].find((p) => existsSync(p)) ?? 'id';
  const id = (flag: string) => execFileSync(command, [flag, '--', name], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  try {
    return { name, uid: Number(id('-u')), gid: Number(id('-g')), groups: id('-G').split(/\s+/).filter(Boolean).map(Number) };
  } catch {
    return null;
  }
}

type Need = 'read' | 'list';
const R = 4;
const X = 1;

/** The permission bits that apply to `user` for a file with this owner and group. */
function bitsFor(user: RunAsUser, st: { uid: number; gid: number; mode: number }): number {
  if (st.uid === user.uid) return (st.mode >> 6) & 7;
  if (st.gid === user.gid || user.groups.includes(st.gid)) return (st.mode >> 3) & 7;
  return st.mode & 7;
}

/**
 * Why `user` cannot reach `path` (every parent directory searchable, then readable, and listable
 * for a directory), or null. POSIX permission bits only; ACLs are not read.
 */
export function accessProblem(path: string, need: Need, user: RunAsUser): string | null {
  const full = resolve(path);
  const parents: string[] = [];
  for (let dir = dirname(full); ; dir = dirname(dir)) {
    parents.unshift(dir);
    if (dir === dirname(dir)) break;
  }
  for (const dir of parents) {
    const st = statSync(dir, { throwIfNoEntry: false });
    if (!st) return `${dir} does not exist`;
    if (!(bitsFor(user, st) & X)) return `${user.name} cannot enter ${dir}`;
  }
  const st = statSync(full, { throwIfNoEntry: false });
  if (!st) return `${full} does not exist`;
  const bits = bitsFor(user, st);
  if (!(bits & R) || (need === 'list' && !(bits & X))) return `${user.name} cannot read ${full}`;
  return null;
}

/**
 * Why `user` (by name, on this host) could not list every one of `dirs` after a drop, or null;
 * null also when this process is not root (nothing will be dropped). For callers that decide
 * whether to serve as root: `npm start`, the benchmark, the tests.
 */
export function dropBlocker(userName: string, dirs: readonly string[]): string | null {
  if (!isRoot()) return null;
  const user = lookupUser(userName);
  if (!user) return `no user "${userName}" on this host`;
  for (const dir of dirs) {
    const problem = accessProblem(dir, 'list', user);
    if (problem) return problem;
  }
  return null;
}

/**
 * Becomes `user` for good: supplementary groups, then the group, then the user (the order that
 * leaves no privilege to undo the others). Throws if the process could regain root afterwards.
 */
export function dropPrivileges(user: RunAsUser): void {
  process.setgroups?.([user.gid]);
  process.setgid?.(user.gid);
  process.setuid?.(user.uid);
  if (process.getuid?.() !== user.uid || process.geteuid?.() !== user.uid || process.getegid?.() !== user.gid) {
    throw new Error(`could not become ${user.name} (uid ${user.uid})`);
  }
  let regained = false;
  try {
    process.setuid?.(0);
    regained = true;
  } catch {
    // expected: the drop cannot be undone
  }
  if (regained) throw new Error(`dropped to ${user.name} but could become root again`);
}
