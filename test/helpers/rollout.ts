import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { RolloutRunner, type RunnerOptions } from '../../src/rollout/runner.js';
import type { CatalogEntry } from '../../src/catalog/index.js';
import type { TestServer } from './testServer.js';

/** The catalog of `imagesDir` as the runner's `findImage` (tests load it as JSON; the server already checked it). */
export function catalogLookup(imagesDir: string): (file: string) => CatalogEntry | undefined {
  const { images } = JSON.parse(readFileSync(join(imagesDir, 'catalog.json'), 'utf8')) as { images: CatalogEntry[] };
  return (file) => images.find((i) => i.file === file);
}

/**
 * A RolloutRunner on a test server: its state in `stateDir`, plan and inventory paths recorded
 * beside it, images looked up in the server's own catalog. `options` gives the plan, the
 * inventory and the environment, and overrides any default.
 */
export function testRunner(stateDir: string, server: TestServer, options: Pick<RunnerOptions, 'plan' | 'inventory' | 'env'> & Partial<RunnerOptions>): RolloutRunner {
  return new RolloutRunner({
    stateDir,
    planPath: join(stateDir, 'plan.yaml'),
    planDigest: 'test',
    inventoryPath: join(stateDir, 'inventory.json'),
    findImage: catalogLookup(server.images),
    server: server.server,
    ...options,
  });
}
