/**
 * The read-only pre-check of one switch (reachability, version, free flash, the image's hash on
 * flash) and the decision it leads to. The runner and the dry run share both, so a dry run says
 * exactly what the run would do.
 */
import { describeError } from '../core/errors.js';
import type { CatalogEntry } from '../catalog/index.js';
import {
  driverFor as defaultDriverFor,
  redactSecrets,
  SwitchConnectError,
  type HostKeyCheck,
  type SessionFacts,
  type SwitchDriver,
  type SwitchInventory,
  type SwitchSession,
  type SwitchTarget,
} from '../switches/index.js';
import { resolveEnablePassword, resolvePassword, type InventorySwitch } from './inventory.js';
import type { HostKeyPolicy, PlannedSwitch, RolloutPlanConfig } from './plan.js';

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
  return identityCheckFor(sw.hostKey, policy, recorded, onFirstUse);
}

/** The pre-check failure of a REST switch with no `restCertificate` under the `pinned` policy. */
export const NO_PINNED_REST_CERTIFICATE = 'no pinned REST API certificate (restCertificate)';

/** The same policy for the HTTPS certificate of a REST switch's API (`restCertificate`). */
export function restCertificateCheckFor(sw: InventorySwitch, policy: HostKeyPolicy, recorded: string | null, onFirstUse: (fingerprint: string) => void | Promise<void>): HostKeyCheck | null {
  return identityCheckFor(sw.restCertificate, policy, recorded, onFirstUse);
}

function identityCheckFor(pinned: string | null, policy: HostKeyPolicy, recorded: string | null, onFirstUse: (fingerprint: string) => void | Promise<void>): HostKeyCheck | null {
  if (pinned !== null) return { pinned };
  if (policy === 'pinned') return null;
  if (recorded !== null) return { pinned: recorded };
  return { trustOnFirstUse: onFirstUse };
}

/** Drivers that make the switch download over HTTP(S) through a REST API (AOS-CX), not over FTP. */
export function usesRestApi(driver: SwitchDriver): boolean {
  return !driver.pullSchemes.includes('ftp');
}

/** Whether an error is a host key refusal (an impostor, maybe: never retried, never a transient failure). */
export function isHostKeyError(err: unknown): err is SwitchConnectError {
  return err instanceof SwitchConnectError && err.kind === 'host-key';
}

/**
 * Why swfw will not even log into this switch, or null: its platform cannot pull over FTP, or its
 * name did not resolve. Checked before any password is read or sent.
 */
export function cannotContact(sw: InventorySwitch, driver: SwitchDriver): string | null {
  if (driver.unsupported) return driver.unsupported;
  if (sw.resolvedAddress === null) return sw.resolveError ?? `the name ${sw.address} does not resolve`;
  return null;
}

/** The SSH target of a switch: its resolved address, secrets read from their references, the plan's limits. */
export async function switchTarget(
  sw: InventorySwitch,
  plan: Pick<RolloutPlanConfig, 'sshTimeoutMs' | 'sshWeakAlgorithms'>,
  hostKey: HostKeyCheck,
  env?: NodeJS.ProcessEnv,
  restCertificate?: HostKeyCheck,
): Promise<SwitchTarget> {
  const password = await resolvePassword(sw.credentials, env);
  const enablePassword = await resolveEnablePassword(sw.credentials, env);
  return {
    host: sw.resolvedAddress!,
    port: sw.port,
    username: sw.credentials.username,
    password,
    ...(enablePassword !== null ? { enablePassword } : {}),
    hostKey,
    timeoutMs: plan.sshTimeoutMs,
    weakAlgorithms: [...new Set([...plan.sshWeakAlgorithms, ...sw.sshWeakAlgorithms])],
    vrf: sw.vrf,
    ...(restCertificate ? { rest: { port: sw.restPort, certificate: restCertificate } } : {}),
  };
}

export type OnFlash = 'absent' | 'match' | 'differs';

export interface PrecheckFacts extends SwitchInventory {
  onFlash: OnFlash;
  /** The algorithm the flash copy was hashed with (the platform's best it accepted), or null if it cannot hash. */
  algorithm: string | null;
  /** The digest found on flash, or null. */
  digest: string | null;
  /** Free space the pull needs (the image, twice for a Comware .ipe bundle). */
  neededBytes: number;
  /** SSH algorithms, login method and prompt of the session. */
  session: SessionFacts;
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
  if (facts.freeBytes !== null && facts.freeBytes + (facts.onFlash === 'differs' ? entry.size : 0) < facts.neededBytes) {
    return { action: 'fail', reason: `not enough flash: ${facts.freeBytes} bytes free, ${facts.neededBytes} needed` };
  }
  return { action: 'transfer', reason: `runs ${facts.version}; transfer ${entry.size} bytes and verify` };
}

/** Reads the facts over an open session: version, free space, one hash (the platform's best). Changes nothing. */
export async function gatherFacts(session: SwitchSession, driver: SwitchDriver, plan: PlannedSwitch, entry: CatalogEntry, hashBytesPerSecond: number | null): Promise<PrecheckFacts> {
  const inventory = await session.inventory();
  const reference = { sha256: entry.sha256, md5: entry.md5, sha512: entry.sha512 } as Record<string, string | undefined>;
  const found = await session.fileHash(plan.fileName, { expectedBytes: entry.size, ...(hashBytesPerSecond ? { bytesPerSecond: hashBytesPerSecond } : {}) });
  const onFlash: OnFlash = found === null ? 'absent' : found.digest === reference[found.algorithm] ? 'match' : 'differs';
  return {
    ...inventory,
    onFlash,
    algorithm: found?.algorithm ?? driver.hashAlgorithms[0] ?? null,
    digest: found?.digest ?? null,
    neededBytes: driver.spaceNeeded(entry.size, plan.fileName),
    session: session.facts,
  };
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
  plan: RolloutPlanConfig;
  env?: NodeJS.ProcessEnv;
  driverFor?: (name: string) => SwitchDriver;
}): Promise<DryRunRow[]> {
  const rows: DryRunRow[] = [];
  let next = 0;
  const one = async (plan: PlannedSwitch): Promise<DryRunRow> => {
    const sw = options.inventory.find((s) => s.name === plan.name)!;
    const entry = options.findImage(plan.image)!;
    const driver = (options.driverFor ?? defaultDriverFor)(sw.driver);
    const refused = cannotContact(sw, driver);
    if (refused) return { name: plan.name, reachable: false, facts: null, decision: { action: 'fail', reason: refused } };
    let secret = '';
    let session: SwitchSession | null = null;
    // A dry run records nothing: under trust-on-first-use it accepts any key.
    const hostKey = hostKeyCheckFor(sw, options.plan.hostKeys, null, () => {});
    if (hostKey === null) return { name: plan.name, reachable: false, facts: null, decision: { action: 'fail', reason: NO_PINNED_HOST_KEY } };
    const restCertificate = usesRestApi(driver) ? restCertificateCheckFor(sw, options.plan.hostKeys, null, () => {}) : undefined;
    if (restCertificate === null) return { name: plan.name, reachable: false, facts: null, decision: { action: 'fail', reason: NO_PINNED_REST_CERTIFICATE } };
    try {
      const target = await switchTarget(sw, options.plan, hostKey, options.env, restCertificate);
      secret = target.password;
      session = await driver.connect(target);
      const facts = await gatherFacts(session, driver, plan, entry, options.plan.hashBytesPerSecond);
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
  await Promise.all(Array.from({ length: Math.max(1, Math.min(options.plan.concurrency, options.planned.length)) }, worker));
  return rows;
}
