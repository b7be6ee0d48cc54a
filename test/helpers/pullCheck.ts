import { readdirSync } from 'node:fs';
import { expect } from 'chai';
import { setTimeout as delay } from 'node:timers/promises';

/** Files in `dir` other than `expected`: a pull must never leave its temp file behind. */
export function expectOnlyFiles(dir: string, expected: string[]): void {
  expect(readdirSync(dir).sort()).to.deep.equal([...expected].sort());
}

/**
 * Hash workers are threads the leak check does not watch: this waits briefly for their message
 * ports to close and fails the test if any is left.
 */
export async function expectNoWorkersLeft(): Promise<void> {
  for (let i = 0; i < 40; i++) {
    const left = process.getActiveResourcesInfo().filter((r) => r === 'MessagePort' || r === 'Worker');
    if (left.length === 0) return;
    await delay(25);
  }
  expect(process.getActiveResourcesInfo().filter((r) => r === 'MessagePort' || r === 'Worker'), 'hash workers left running').to.deep.equal([]);
}
