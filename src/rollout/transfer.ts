/**
 * The work on one switch, shared by the embedded runner and the multi-site agent: pre-check,
 * one-time grant, the switch's copy, verify, revoke. Every step is journaled (durable) before it
 * is acted on, so a process that dies anywhere leaves a journal from which `resume` (or a
 * redelivered job) pre-checks again and never copies blind.
 */
import { describeError } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import type { CatalogEntry } from '../catalog/index.js';
import type { FirmwareServer, OneTimeAccess } from '../server/server.js';
import type { TransferProgress, TransferRecord } from '../server/context.js';
import { judgeEvidence } from '../verify/evidence.js';
import {
  driverFor as defaultDriverFor,
  redactSecrets,
  SwitchConnectError,
  SwitchOutputError,
  type PullScheme,
  type SwitchDriver,
  type SwitchSession,
} from '../switches/index.js';
import type { InventorySwitch } from './inventory.js';
import type { Journal } from './journal.js';
import type { HostKeyPolicy, PlannedSwitch, RolloutPlanConfig } from './plan.js';
import {
  HOST_KEY_MISMATCH_VERDICT,
  NO_PINNED_HOST_KEY,
  NO_PINNED_REST_CERTIFICATE,
  cannotContact,
  decide,
  gatherFacts,
  hostKeyCheckFor,
  isHostKeyError,
  restCertificateCheckFor,
  switchTarget,
  usesRestApi,
} from './precheck.js';
import type { AuditEntry, Hashes, SwitchOutcome, SwitchStep } from './records.js';
import type { JournalFold } from './state.js';

/** The verdict of a switch whose platform cannot pull over FTP (Aruba AOS-CX, ArubaOS-Switch, Brocade FOS). */
export const UNSUPPORTED_PLATFORM_VERDICT = 'unsupported-platform';
/** The verdict of a switch that answered SSH but refused the login: its credentials, not the network. */
export const LOGIN_REFUSED_VERDICT = 'login-refused';
/** The verdict of a switch whose output could not be read (a cut digest): a parse fault, never evidence about the bytes. */
export const UNREADABLE_OUTPUT_VERDICT = 'unreadable-switch-output';

/** The plan settings the work on one switch needs: plain data, so a multi-site job can carry them. */
export type SwitchSettings = Pick<RolloutPlanConfig, 'sshTimeoutMs' | 'pullTimeoutMs' | 'hashBytesPerSecond' | 'sshWeakAlgorithms' | 'credentialMinutes'> & { hostKeys: HostKeyPolicy };

/** A switch's verdict: what the `done` record says. */
export interface SwitchVerdict {
  outcome: SwitchOutcome;
  reason: string;
  verdict: string | null;
  hashes: Hashes | null;
}

/** Events for progress displays: a switch finished, or its transfer moved. */
export type SwitchWorkEvent =
  | { type: 'switch'; name: string; outcome: SwitchOutcome; reason: string }
  | { type: 'progress'; name: string; bytes: number; expectedBytes: number };

/** A counting semaphore: at most `free` holders at once, the rest wait in order. */
export class Semaphore {
  private waiting: (() => void)[] = [];
  constructor(private free: number) {}
  async take(): Promise<void> {
    if (this.free > 0) {
      this.free--;
      return;
    }
    await new Promise<void>((resolve) => this.waiting.push(resolve));
  }
  give(): void {
    const next = this.waiting.shift();
    if (next) next();
    else this.free++;
  }
}

interface Grant {
  name: string;
  access: OneTimeAccess;
  journal: Journal;
  /** Gives the passive slot back, once, when the server accepts the switch's data connection. */
  connected: () => void;
}

/**
 * The server side of per-switch work: one-time grants, the passive slots, and the server's audit
 * records journaled for the switch they belong to. A passive port is held from PASV until the data
 * connection is accepted, then free for the next switch; so at most one switch per port may be
 * between "copy" and its data connection (more would queue in the server's PASV wait). Once
 * connected a transfer needs no port.
 */
export class GrantDesk {
  private readonly grants = new Map<string, Grant>();
  readonly slots: Semaphore;

  constructor(
    readonly server: FirmwareServer,
    passiveSlots: number,
    private readonly logger: Logger,
    private readonly onEvent: (event: SwitchWorkEvent) => void = () => {},
  ) {
    this.slots = new Semaphore(passiveSlots);
    server.on('transfer', this.onTransfer);
    server.on('transfer-start', this.onTransferStart);
    server.on('transfer-progress', this.onProgress);
  }

  /** One-time, read-only access to one image from one source address (or CIDR), for one switch. */
  async grant(name: string, journal: Journal, options: { sourceAddress: string; imagePath: string; validForMs: number }, connected: () => void): Promise<OneTimeAccess> {
    const access = await this.server.grantOneTimeAccess(options);
    this.grants.set(access.user, { name, access, journal, connected });
    return access;
  }

  revoke(access: OneTimeAccess): void {
    access.revoke();
    this.grants.delete(access.user);
  }

  /** Revokes every grant still open and stops listening to the server. */
  close(): void {
    for (const { access } of this.grants.values()) access.revoke();
    this.grants.clear();
    this.server.off('transfer', this.onTransfer);
    this.server.off('transfer-start', this.onTransferStart);
    this.server.off('transfer-progress', this.onProgress);
  }

  private readonly onTransferStart = (p: TransferProgress): void => {
    this.grants.get(p.user)?.connected();
    this.onProgress(p);
  };

  private readonly onTransfer = (record: TransferRecord): void => {
    const grant = this.grants.get(record.user);
    if (!grant) return;
    const audit: AuditEntry = { client: record.client, user: record.user, path: record.path, offset: record.offset, bytes: record.bytes, sha256: record.sha256, result: record.result, code: record.code, durationMs: record.durationMs, dataPort: record.dataPort, commands: record.commands };
    // Not awaited (an event handler): the switch's next record is appended after this one, so it
    // cannot become durable first; a failed write fails every later append as well.
    grant.journal.append({ t: 'audit', name: grant.name, record: audit }).catch((err: Error) => this.logger.error('cannot journal a transfer audit record', { switch: grant.name, error: err.message }));
  };

  private readonly onProgress = (p: TransferProgress): void => {
    const grant = this.grants.get(p.user);
    if (grant) this.onEvent({ type: 'progress', name: grant.name, bytes: p.bytes, expectedBytes: p.expectedBytes });
  };
}

/** Everything the work on one switch needs besides the switch. */
export interface SwitchWorkContext {
  desk: GrantDesk;
  /** The journal this switch's records go to, and its fold (the switch's audit and host key are read back from it). */
  journal: Journal;
  fold: JournalFold;
  /** The address switches dial for FTP (the plan's `server.address`, or the agent's). */
  serverAddress: string;
  settings: SwitchSettings;
  env?: NodeJS.ProcessEnv;
  now: () => number;
  logger: Logger;
  driverFor?: (name: string) => SwitchDriver;
  onEvent?: (event: SwitchWorkEvent) => void;
}

/** One switch's job: the switch as the inventory has it (undefined: no longer there), its plan and image. */
export interface SwitchJob {
  name: string;
  switch: InventorySwitch | undefined;
  planned: PlannedSwitch;
  entry: CatalogEntry;
}

/**
 * Pre-checks one switch, and when it needs the image, grants, makes it copy, and verifies it
 * against the catalog and the server's audit. Never throws for the switch's own faults: those end
 * in a `done` record. It throws only when the journal cannot be written (then nothing is decided).
 */
export async function processSwitch(ctx: SwitchWorkContext, job: SwitchJob): Promise<SwitchVerdict> {
  const { journal, settings } = ctx;
  const { name, planned: plan, entry } = job;
  const sw = job.switch;
  const step = (s: SwitchStep) => journal.append({ t: 'switch', name, ...s });
  const done = async (outcome: SwitchOutcome, reason: string, extra: { verdict?: string | null; hashes?: Hashes | null } = {}): Promise<SwitchVerdict> => {
    const verdict: SwitchVerdict = { outcome, reason, verdict: extra.verdict ?? null, hashes: extra.hashes ?? null };
    await step({ phase: 'done', ...verdict });
    ctx.onEvent?.({ type: 'switch', name, outcome, reason });
    ctx.logger.info('switch done', { switch: name, outcome, reason });
    return verdict;
  };
  await step({ phase: 'precheck' });
  if (!sw) return done('failed', 'no longer in the inventory');
  const driver = (ctx.driverFor ?? defaultDriverFor)(sw.driver);
  const refused = cannotContact(sw, driver);
  if (refused) {
    await step({ phase: 'prechecked', precheck: { reachable: false, error: refused } });
    return done('failed', refused, { verdict: driver.unsupported ? UNSUPPORTED_PLATFORM_VERDICT : null });
  }
  const scheme = pullSchemeFor(driver, ctx.desk.server);
  if (scheme === null) {
    const why = `the switch downloads over ${driver.pullSchemes.join(' or ')} only and the server serves neither: set server.https (with tlsCert and tlsKey) or server.http in the plan (--https/--http for an agent)`;
    await step({ phase: 'prechecked', precheck: { reachable: false, error: why } });
    return done('failed', why);
  }
  let session: SwitchSession | null = null;
  let secret = '';
  const recorded = (service: 'https' | undefined) => {
    const found = journal.records.find((r) => r.t === 'host-key' && r.name === name && r.service === service);
    return found?.t === 'host-key' ? found.fingerprint : null;
  };
  const hostKey = hostKeyCheckFor(sw, settings.hostKeys, recorded(undefined), async (fingerprint) => {
    // Durable before the key exchange goes on (the password comes after it).
    await journal.append({ t: 'host-key', name, address: sw.resolvedAddress, fingerprint });
  });
  if (hostKey === null) {
    await step({ phase: 'prechecked', precheck: { reachable: false, error: NO_PINNED_HOST_KEY } });
    return done('failed', NO_PINNED_HOST_KEY);
  }
  // A REST switch's HTTPS certificate, under the same policy: durable before the login is sent.
  const restCertificate = usesRestApi(driver)
    ? restCertificateCheckFor(sw, settings.hostKeys, recorded('https'), async (fingerprint) => {
        await journal.append({ t: 'host-key', name, address: sw.resolvedAddress, fingerprint, service: 'https' });
      })
    : undefined;
  if (restCertificate === null) {
    await step({ phase: 'prechecked', precheck: { reachable: false, error: NO_PINNED_REST_CERTIFICATE } });
    return done('failed', NO_PINNED_REST_CERTIFICATE);
  }
  try {
    const target = await switchTarget(sw, settings, hostKey, ctx.env, restCertificate);
    secret = target.password;
    session = await driver.connect(target);
  } catch (err) {
    if (isHostKeyError(err)) {
      await step({ phase: 'prechecked', precheck: { reachable: false, error: err.message } });
      return done('failed', err.message, { verdict: HOST_KEY_MISMATCH_VERDICT });
    }
    const why = redactSecrets(describeError(err), [secret]);
    if (err instanceof SwitchConnectError && err.kind === 'auth') {
      // The switch answered: its credentials are what to check, not the network.
      await step({ phase: 'prechecked', precheck: { reachable: true, error: why } });
      return done('failed', `${why}: check the inventory's credentials for this switch`, { verdict: LOGIN_REFUSED_VERDICT });
    }
    await step({ phase: 'prechecked', precheck: { reachable: false, error: why } });
    return done('failed', `unreachable: ${why}`);
  }
  try {
    const facts = await gatherFacts(session, driver, plan, entry, settings.hashBytesPerSecond);
    const { model, version, freeBytes, onFlash } = facts;
    await step({
      phase: 'prechecked',
      precheck: { reachable: true, model, version, freeBytes, onFlash, ssh: facts.session.algorithms, login: facts.session.authMethod, prompt: facts.session.prompt },
    });
    const decision = decide(facts, plan, entry);
    if (decision.action === 'skip') return done('skipped', decision.reason);
    if (decision.action === 'already-on-flash') {
      return done('verified', decision.reason, {
        verdict: 'verified',
        hashes: { catalogSha256: entry.sha256, serverSha256: null, switchDigests: { [facts.algorithm!]: facts.digest! }, switchAlgorithm: facts.algorithm },
      });
    }
    if (decision.action === 'fail') return done('failed', decision.reason);
    return await copyAndVerify(ctx, job, sw, session, scheme, done);
  } catch (err) {
    // A switch whose output cannot be read is a parse fault: it says nothing about the bytes. A
    // REST API certificate other than the pinned one (its session starts after SSH) is an impostor, maybe.
    const verdict = err instanceof SwitchOutputError ? UNREADABLE_OUTPUT_VERDICT : isHostKeyError(err) ? HOST_KEY_MISMATCH_VERDICT : null;
    return done('failed', redactSecrets(describeError(err), [secret]), { verdict });
  } finally {
    await session.close().catch(() => {});
  }
}

/**
 * The scheme the switch is handed: the driver's best that the server serves (FTP always; HTTP(S)
 * when configured), or null when there is none.
 */
export function pullSchemeFor(driver: SwitchDriver, server: FirmwareServer): PullScheme | null {
  const endpoints = server.httpEndpoints();
  return driver.pullSchemes.find((scheme) => scheme === 'ftp' || endpoints[scheme] !== null) ?? null;
}

/**
 * What to check when a switch's copy failed and the server saw no transfer from it. Over HTTPS a
 * certificate the switch does not trust is the likely cause (AOS-CX checks it against its TA
 * profile); otherwise, where the switch got no reply it could show or its login was refused
 * (FTP 530), or an HTTP 404 for its grant URL, a source address other than its management
 * address. A 425 or 550 has other causes.
 */
function noTransferHint(scheme: PullScheme, message: string, reply: string | undefined, hasFtpSource: boolean): string {
  if (scheme === 'https' && /certificate|SSL|TLS/i.test(message)) {
    return "; the switch does not trust the server's certificate: add it (or its CA) to the switch's trust store (AOS-CX: crypto pki ta-profile)";
  }
  if (hasFtpSource) return '';
  // Over HTTP(S) a grant URL from another address is answered 404; any other failure (a switch
  // that never started its download, a refused connection) says nothing about the source.
  const refused = scheme === 'ftp' ? reply === undefined || reply === '530' : reply === '404';
  return refused ? `; if the switch sources ${scheme === 'ftp' ? 'FTP' : 'HTTP(S)'} from another address, set ftpSource` : '';
}

/** The URL of a one-time grant, as the switch is given it: the server's address for switches, its port for the scheme. */
function grantUrl(scheme: PullScheme, serverAddress: string, server: FirmwareServer, access: OneTimeAccess): string {
  const host = serverAddress.includes(':') ? `[${serverAddress}]` : serverAddress;
  if (scheme === 'ftp') {
    const port = server.address().port;
    return `ftp://${access.user}:${encodeURIComponent(access.password)}@${host}${port === 21 ? '' : `:${port}`}${access.path}`;
  }
  const port = server.httpEndpoints()[scheme]!.port;
  const defaultPort = scheme === 'https' ? 443 : 80;
  return `${scheme}://${host}${port === defaultPort ? '' : `:${port}`}${access.httpPath}`;
}

/** The transfer (one-time credentials for this switch, this image, from its FTP source only) and the three-way verify. */
async function copyAndVerify(
  ctx: SwitchWorkContext,
  job: SwitchJob,
  sw: InventorySwitch,
  session: SwitchSession,
  scheme: PullScheme,
  done: (outcome: SwitchOutcome, reason: string, extra?: { verdict?: string | null; hashes?: Hashes | null }) => Promise<SwitchVerdict>,
): Promise<SwitchVerdict> {
  const { journal, settings, desk } = ctx;
  const { name, planned: plan, entry } = job;
  const step = (s: SwitchStep) => journal.append({ t: 'switch', name, ...s });
  // The passive slot first (FTP only: HTTP needs no passive port): the one-time password's
  // lifetime starts at the grant, and must not be spent waiting behind switches that hold every slot.
  let slotHeld = scheme === 'ftp';
  if (slotHeld) await desk.slots.take();
  const giveSlot = () => {
    if (!slotHeld) return;
    slotHeld = false;
    desk.slots.give();
  };
  let access: OneTimeAccess | null = null;
  let outcome;
  const started = ctx.now();
  const source = sw.ftpSource ?? sw.resolvedAddress!;
  try {
    access = await desk.grant(name, journal, { sourceAddress: source, imagePath: plan.image, validForMs: settings.credentialMinutes * 60_000 }, giveSlot);
    await step({ phase: 'transfer', user: access.user, source });
    const url = grantUrl(scheme, ctx.serverAddress, desk.server, access);
    outcome = await session.pull({ url, fileName: plan.fileName, timeoutMs: settings.pullTimeoutMs });
  } finally {
    if (access) desk.revoke(access);
    giveSlot();
  }
  const durationMs = Math.round(ctx.now() - started);
  const audits = ctx.fold.state.switches.get(name)!.audit.filter((a) => a.user === access!.user);
  const audit = audits.at(-1) ?? null;
  await step({ phase: 'transferred', ok: outcome.ok, message: outcome.message, bytes: outcome.bytes ?? audit?.bytes ?? null, durationMs, ...(outcome.notes?.length ? { notes: outcome.notes } : {}) });
  if (!outcome.ok) {
    // No audit record at all: the switch never reached the server (or was refused before RETR).
    // The ftpSource hint only where a wrong source address is a likely cause: the switch got no
    // FTP reply it could show, or its login was refused (530). A 425 or 550 has other causes.
    const reply = /\b([45]\d\d)\b/.exec(outcome.message)?.[1];
    const hint = noTransferHint(scheme, outcome.message, reply, sw.ftpSource !== null);
    const why = audit ? outcome.message : `${outcome.message} (the server saw no transfer from ${source}${hint})`;
    return done('failed', `the switch's copy failed: ${why}`, { hashes: { catalogSha256: entry.sha256, serverSha256: audit?.sha256 ?? null, switchDigests: {}, switchAlgorithm: null } });
  }
  await step({ phase: 'verify' });
  const switchDigests: Record<string, string> = {};
  // One hash, the platform's best (as the pre-check asks): every on-switch hash re-reads the
  // whole image from flash, minutes for a large image on a real switch, and a second weaker
  // algorithm adds no evidence the strong one lacks.
  const found = await session.fileHash(plan.fileName, { expectedBytes: entry.size, ...(settings.hashBytesPerSecond ? { bytesPerSecond: settings.hashBytesPerSecond } : {}) });
  if (found) switchDigests[found.algorithm] = found.digest;
  const reference = { sha256: entry.sha256, md5: entry.md5, sha512: entry.sha512 } as Record<string, string>;
  const report = judgeEvidence({
    reference: { digests: reference, size: entry.size },
    client: { digests: switchDigests, bytes: outcome.bytes ?? entry.size },
    server: audit ? { sha256: audit.sha256, bytes: audit.bytes, offset: audit.offset, result: audit.result } : null,
  });
  const hashes: Hashes = { catalogSha256: entry.sha256, serverSha256: audit?.sha256 ?? null, switchDigests, switchAlgorithm: report.algorithms[0] ?? null };
  if (report.ok && audit && audit.sha256 !== entry.sha256) {
    return done('failed', 'the switch holds the right bytes but the server audit disagrees with the catalog', { verdict: 'wrong-image-served', hashes });
  }
  return done(report.ok ? 'verified' : 'failed', report.reason, { verdict: report.verdict, hashes });
}
