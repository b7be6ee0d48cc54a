/**
 * The read-only pre-check of one switch (reachability, version, free flash, the image's hash on
 * flash) and the decision it leads to. The runner and the dry run share both, so a dry run says
 * exactly what the run would do.
 */
import { describeError } from '../core/errors.js';
import type { CatalogEntry } from '../catalog/index.js';
import { driverFor as defaultDriverFor, redactSecrets, SwitchConnectError, type HostKeyCheck, type SwitchDriver, type SwitchInventory, type SwitchSession } from '../switches/index.js';
import { resolvePassword, type InventorySwitch } from './inventory.js';
import type { HostKeyPolicy, PlannedSwitch } from './plan.js';

/** The pre-check failure of a switch with no `hostKey` under the `pinned` policy. */
export const NO_PINNED_HOST_KEY = 'no pinned host key';
/** The verdict of a switch that showed another host key than the pinned (or first seen) one. */
export const HOST_KEY_MISMATCH_VERDICT = 'host-key-mismatch';

/**
 * How a switch's host key is checked: its inventory `hostKey`; else, under `trust-on-first-use`,
 * the key recorded earlier in this rollout (`recorded`) or, the first time, any key, reported to
 * `onFirstUse` before the password is sent. Null under `pinned` when the inventory has none.
 */
export function hostKeyCheckFor(sw: InventorySwitch, policy: HostKeyPolicy, recorded: string | null, onFirstUse: (fingerprint: string) => void | Promise<void>): HostKeyCheck | null {
  if (sw.hostKey !== null) return { pinned: sw.hostKey };
  if (policy === 'pinned') return null;
  if (recorded !== null) return { pinned: recorded };
  return { trustOnFirstUse: onFirstUse };
}

/** Whether an error is a host key refusal (an impostor, maybe: never retried, never a transient failure). */
export function isHostKeyError(err: unknown): err is SwitchConnectError {
  return err instanceof SwitchConnectError && err.kind === 'host-key';
}

export type OnFlash = 'absent' | 'match' | 'differs';

export interface PrecheckFacts extends SwitchInventory {
  onFlash: OnFlash;
  /** The algorithm the flash copy was hashed with (the platform's best), or null if it cannot hash. */
  algorithm: string | null;
  /** The digest found on flash, or null. */
  digest: string | null;
}

export type PrecheckDecision =
  | { action: 'skip'; reason: string }
  | { action: 'already-on-flash'; reason: string }
  | { action: 'fail'; reason: string }
  | { action: 'transfer'; reason: string };

/** Pure: what happens to a switch after its pre-check. */
export function decide(facts: PrecheckFacts, plan: PlannedSwitch, entry: CatalogEntry): PrecheckDecision {
  if (facts.version === plan.targetVersion) return { action: 'skip', reason: `already runs ${plan.targetVersion}` };
  if (facts.onFlash === 'match') return { action: 'already-on-flash', reason: `image already on flash with the right ${facts.algorithm} (no transfer)` };
  // A differing file of the same name is overwritten, so its space counts as free.
  if (facts.freeBytes !== null && facts.freeBytes + (facts.onFlash === 'differs' ? entry.size : 0) < entry.size) {
    return { action: 'fail', reason: `not enough flash: ${facts.freeBytes} bytes free, ${entry.size} needed` };
  }
  return { action: 'transfer', reason: `runs ${facts.version}; transfer ${entry.size} bytes and verify` };
}

/** Reads the facts over an open session: `show version`, `dir`, one hash. Changes nothing. */
export async function gatherFacts(session: SwitchSession, driver: SwitchDriver, plan: PlannedSwitch, entry: CatalogEntry): Promise<PrecheckFacts> {
  const inventory = await session.inventory();
  const reference = { sha256: entry.sha256, md5: entry.md5, sha512: entry.sha512 } as Record<string, string | undefined>;
  const algorithm = driver.hashAlgorithms[0] ?? null;
  const digest = algorithm ? await session.fileHash(plan.fileName, algorithm) : null;
  const onFlash: OnFlash = digest === null ? 'absent' : digest === reference[algorithm!] ? 'match' : 'differs';
  return { ...inventory, onFlash, algorithm, digest };
}

export interface DryRunRow {
  name: string;
  reachable: boolean;
  facts: PrecheckFacts | null;
  decision: PrecheckDecision;
}

/**
 * The dry run's pre-checks: every planned switch, `concurrency` at a time, read-only. An
 * unreachable switch is reported, not fatal.
 */
export async function dryRunPrechecks(options: {
  planned: readonly PlannedSwitch[];
  inventory: readonly InventorySwitch[];
  findImage: (file: string) => CatalogEntry | undefined;
  concurrency: number;
  timeoutMs: number;
  /** The plan's `hostKeys` (default `pinned`). A dry run records nothing: under trust-on-first-use it accepts any key. */
  hostKeys?: HostKeyPolicy;
  env?: NodeJS.ProcessEnv;
  driverFor?: (name: string) => SwitchDriver;
}): Promise<DryRunRow[]> {
  const rows: DryRunRow[] = [];
  let next = 0;
  const one = async (plan: PlannedSwitch): Promise<DryRunRow> => {
    const sw = options.inventory.find((s) => s.name === plan.name)!;
    const entry = options.findImage(plan.image)!;
    const driver = (options.driverFor ?? defaultDriverFor)(sw.driver);
    let secret = '';
    let session: SwitchSession | null = null;
    const hostKey = hostKeyCheckFor(sw, options.hostKeys ?? 'pinned', null, () => {});
    if (hostKey === null) return { name: plan.name, reachable: false, facts: null, decision: { action: 'fail', reason: NO_PINNED_HOST_KEY } };
    try {
      secret = await resolvePassword(sw.credentials, options.env);
      session = await driver.connect({ host: sw.address, port: sw.port, username: sw.credentials.username, password: secret, timeoutMs: options.timeoutMs, hostKey });
      const facts = await gatherFacts(session, driver, plan, entry);
      return { name: plan.name, reachable: true, facts, decision: decide(facts, plan, entry) };
    } catch (err) {
      const reason = redactSecrets(describeError(err), [secret]);
      if (isHostKeyError(err)) return { name: plan.name, reachable: false, facts: null, decision: { action: 'fail', reason } };
      return { name: plan.name, reachable: session !== null, facts: null, decision: { action: 'fail', reason: session ? `pre-check failed: ${reason}` : `unreachable: ${reason}` } };
    } finally {
      await session?.close().catch(() => {});
    }
  };
  const worker = async () => {
    while (next < options.planned.length) {
      const i = next++;
      rows[i] = await one(options.planned[i]!);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(options.concurrency, options.planned.length)) }, worker));
  return rows;
}
