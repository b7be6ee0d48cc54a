/** Who a command that talks to strangers (`serve`, `agent`) becomes after binding its ports. */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { PROJECT_ROOT } from '../config/loader.js';
import type { ServerConfig } from '../config/schema.js';
import { CATALOG_FILE } from '../catalog/index.js';
import { KEEP_ROOT, accessProblem, isRoot, lookupUser, type RunAsUser } from '../server/privileges.js';
import { ExitCode, ExitError } from './exitCodes.js';

/**
 * Who the server becomes after binding, decided before anything binds: null keeps the current
 * user (not started as root, or `--run-as root`). Refuses, with one line naming the path and the
 * fix, a user that does not exist or cannot read what the server reads after the drop.
 */
export function planPrivilegeDrop(config: ServerConfig, command: 'serve' | 'agent', extra: readonly [string, 'read' | 'list'][] = []): RunAsUser | null {
  if (!isRoot()) return null;
  if (config.runAs === KEEP_ROOT) return null; // warned once serving (a server that never starts keeps nothing)
  const user = lookupUser(config.runAs);
  if (!user) throw new ExitError(ExitCode.USAGE, `--run-as: no user "${config.runAs}" on this host (${command} drops to it after binding its ports)`);
  if (user.uid === 0) throw new ExitError(ExitCode.USAGE, `--run-as: "${config.runAs}" is root; say --run-as root to keep root`);
  const needs: [string, 'read' | 'list'][] = [
    [config.images, 'list'],
    [join(config.images, CATALOG_FILE), 'read'],
    // Code loaded after the drop (commands and workers start lazily).
    [join(PROJECT_ROOT, 'dist'), 'list'],
    ...extra,
  ];
  for (const [path, need] of needs) {
    if (need === 'read' && !existsSync(path)) continue;
    const problem = accessProblem(path, need, user);
    if (problem) {
      throw new ExitError(
        ExitCode.USAGE,
        `${command} drops root to "${user.name}" after binding, and ${problem}: make the path readable by ${user.name} (every parent directory o+x), choose a user who can read it with --run-as USER, or keep root with --run-as root`,
      );
    }
  }
  return user;
}

