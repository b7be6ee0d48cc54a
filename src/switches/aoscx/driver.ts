/**
 * Driver `aruba-aoscx`: HPE Aruba AOS-CX (6xxx/8xxx) cannot pull over FTP, so it pulls from swfw's
 * HTTP(S) server through its REST API (10.04 and later), into the slot it did not boot from
 * (SWITCH-CLI-REFERENCE.md §2.1). SSH reads what the REST calls below do not give with confirmed
 * output: `show version` (the release and the active slot) and `show images` (each slot's SHA-256,
 * the on-box verifier). The REST session is logged out at close, always.
 *
 * How the session contract maps onto slots: the image "file" is the non-booted slot. `fileHash`
 * returns that slot's SHA-256 from `show images` (null for an empty slot), so the pre-check's
 * "already on flash" means "already in the other slot", and the verify reads the slot the download
 * went to. Free space does not apply (null): a slot takes one image whatever its size.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { silentLogger, type Logger } from '../../core/logger.js';
import { describeError } from '../../core/errors.js';
import { CISCO_STYLE_PROMPT, type CliSession } from '../cliSession.js';
import type { SshConnection } from '../ssh.js';
import { openCli } from '../cliDriver.js';
import {
  SwitchConnectError,
  SwitchOutputError,
  grantToken,
  redactGrantToken,
  type HashRequest,
  type PullOutcome,
  type PullRequest,
  type PullScheme,
  type SessionFacts,
  type SwitchDigest,
  type SwitchDriver,
  type SwitchHashAlgorithm,
  type SwitchInventory,
  type SwitchSession,
  type SwitchTarget,
} from '../driver.js';
import { aosCxReleaseVersion, canPullFromUrl, parseAosCxShowImages, parseAosCxShowVersion, type AosCxSlot } from './cli.js';
import { AosCxRest, type FirmwareStatus } from './rest.js';

/** The VRF the download goes out of when the inventory names none: the management port's (`vrf mgmt`). */
export const AOSCX_DEFAULT_VRF = 'mgmt';
/** How often `firmware/status` is read while the switch downloads. */
const STATUS_POLL_MS = 1000;
/** Consecutive failed reads of firmware/status that end the wait (one or two happen on a busy switch). */
const STATUS_READ_FAILURES = 3;
/** A download the switch still does not report after this long was never started. */
const STATUS_APPEAR_MS = 15_000;

export class AosCxDriver implements SwitchDriver {
  readonly name = 'aruba-aoscx';
  readonly hashAlgorithms: readonly SwitchHashAlgorithm[] = ['sha256'];
  readonly protocols: readonly string[] = ['tftp', 'sftp', 'http(s) through the REST API (10.04 and later)'];
  readonly pullSchemes: readonly PullScheme[] = ['https', 'http'];
  readonly unsupported = null;

  constructor(private readonly logger: Logger = silentLogger) {}

  spaceNeeded(size: number): number {
    return size;
  }

  async connect(target: SwitchTarget): Promise<SwitchSession> {
    if (!target.rest) throw new SwitchConnectError(`${target.host}: the aruba-aoscx driver needs the switch's REST port and certificate check`, 'other');
    const logger = this.logger.child({ switch: `${target.host}:${target.port}`, driver: this.name });
    return openCli(target, CISCO_STYLE_PROMPT, logger, async (connection, cli) => {
      const session = new AosCxSession(connection, cli, target, logger);
      await session.prepare();
      return session;
    });
  }
}

/**
 * One switch: the SSH CLI from the start, the REST session from its first use (a release before
 * 10.04 has no REST API that can download, and is told so without a REST login).
 */
class AosCxSession implements SwitchSession {
  readonly facts: SessionFacts;
  private version: string | null = null;
  private activeImage: AosCxSlot | null = null;
  private restSession: Promise<AosCxRest> | null = null;

  constructor(
    private readonly connection: SshConnection,
    private readonly cli: CliSession,
    private readonly target: SwitchTarget,
    private readonly logger: Logger,
  ) {
    this.facts = { algorithms: connection.negotiated, authMethod: connection.authMethod, prompt: cli.prompt.trim() };
  }

  private rest(): Promise<AosCxRest> {
    const { host, username, password, timeoutMs, rest } = this.target;
    this.restSession ??= AosCxRest.login({ host, port: rest!.port, username, password, certificate: rest!.certificate, timeoutMs });
    return this.restSession;
  }

  private short(command: string): Promise<string> {
    return this.cli.run(command, { silenceMs: this.target.timeoutMs, secrets: [this.target.password] }).then((r) => r.output);
  }

  /** Paging off (`no page`): a refusal is harmless, pagers are answered anyway. */
  async prepare(): Promise<void> {
    await this.short('no page');
    this.facts.prompt = this.cli.prompt.trim();
  }

  async inventory(): Promise<SwitchInventory> {
    const shown = parseAosCxShowVersion(await this.short('show version'));
    this.version = shown.version;
    this.activeImage = shown.activeImage;
    const release = aosCxReleaseVersion(shown.version);
    if (!canPullFromUrl(shown.version)) return { model: 'AOS-CX (before 10.04)', version: release, freeBytes: null };
    const system = await (await this.rest()).getJson<Record<string, unknown>>('/system?attributes=platform_name');
    const platform = typeof system['platform_name'] === 'string' ? system['platform_name'] : null;
    if (!platform) throw new SwitchOutputError('GET /system?attributes=platform_name: no "platform_name"');
    // The catalog names AOS-CX releases without the platform prefix (the file name carries the platform).
    return { model: `AOS-CX ${platform}`, version: release, freeBytes: null };
  }

  /** The slot the image goes to: the one the switch did not boot from. */
  private async targetSlot(): Promise<AosCxSlot> {
    if (this.activeImage === null) {
      const images = parseAosCxShowImages(await this.short('show images'));
      this.activeImage = images.activeImage;
    }
    if (this.activeImage === null) throw new SwitchOutputError('show version / show images: no "Active Image" line: cannot tell which slot is free to write');
    return this.activeImage === 'primary' ? 'secondary' : 'primary';
  }

  async fileHash(_fileName: string, _request: HashRequest): Promise<SwitchDigest | null> {
    const images = parseAosCxShowImages(await this.short('show images'));
    this.activeImage ??= images.activeImage;
    const slot = await this.targetSlot();
    const image = images[slot];
    return image ? { algorithm: 'sha256', digest: image.sha256 } : null;
  }

  async pull(request: PullRequest): Promise<PullOutcome> {
    const token = grantToken(request.url);
    const secrets = [this.target.password, ...(token ? [token] : [])];
    const redact = (text: string) => redactGrantToken(text, secrets);
    try {
      if (this.version === null) await this.inventory();
      if (!canPullFromUrl(this.version!)) {
        return { ok: false, message: `AOS-CX ${this.version} cannot download an image from a URL: the REST API needs 10.04 or later (upgrade it by TFTP/SFTP first)`, bytes: null };
      }
      const slot = await this.targetSlot();
      const vrf = this.target.vrf ?? AOSCX_DEFAULT_VRF;
      const rest = await this.rest();
      const started = Date.now();
      // A download already running is not ours (an earlier run's, say, killed mid-way): its end
      // is awaited, so that the PUT below starts ours and the status that follows is ours.
      let baseline = await this.readStatus(rest);
      while (baseline.status === 'in_progress') {
        if (Date.now() - started > request.timeoutMs) return { ok: false, message: `the switch was busy with another download for ${request.timeoutMs} ms (firmware/status in_progress)`, bytes: null };
        this.logger.info('the switch is running another download; waiting for it to end', { slot });
        await sleep(STATUS_POLL_MS);
        baseline = await this.readStatus(rest);
      }
      const query = `image=${slot}&from=${encodeURIComponent(request.url)}&vrf=${encodeURIComponent(vrf)}`;
      this.logger.info('starting the switch download', { slot, vrf, url: redact(request.url) });
      const answer = await rest.put(`/firmware?${query}`);
      // pyaoscx: "PUT often returns 400: Firmware upgrade in progress", and the download runs.
      const startedAnyway = answer.status === 400 && /in progress/i.test(answer.body);
      if (answer.status !== 200 && !startedAnyway) {
        return { ok: false, message: redact(`the switch refused the download into ${slot}: HTTP ${answer.status} ${answer.body.replace(/\s+/g, ' ').trim().slice(0, 200)}`), bytes: null };
      }
      const outcome = await this.follow(rest, baseline, request, started, slot);
      return { ...outcome, message: redact(outcome.message) };
    } catch (err) {
      return { ok: false, message: redact(describeError(err)), bytes: null };
    }
  }

  /**
   * One read of `firmware/status`, the way a busy switch allows: a failed read (HTTP 500, a
   * timeout) is tried again after STATUS_POLL_MS, and the STATUS_READ_FAILURES-th in a row throws.
   * Used for every read, the baseline before our PUT included.
   */
  private async readStatus(rest: AosCxRest): Promise<FirmwareStatus> {
    for (let failed = 1; ; failed++) {
      try {
        return await rest.firmwareStatus();
      } catch (err) {
        if (failed >= STATUS_READ_FAILURES) throw err;
        this.logger.warn('firmware/status could not be read; trying again', { error: describeError(err), attempt: failed });
        await sleep(STATUS_POLL_MS);
      }
    }
  }

  /** Reads `firmware/status` until our download ends; a result left from an earlier download does not count. */
  private async follow(rest: AosCxRest, baseline: FirmwareStatus, request: PullRequest, started: number, slot: AosCxSlot): Promise<PullOutcome> {
    let seenRunning = false;
    for (;;) {
      const status = await this.readStatus(rest);
      // Ours: seen running, or a result dated after the one before our PUT (a clock that went
      // back, or a result older than the baseline, is not ours).
      const fresh = seenRunning || status.date > baseline.date || (baseline.status === 'none' && status.status !== 'none');
      if (status.status === 'in_progress') seenRunning = true;
      else if (status.status === 'success' && fresh) return { ok: true, message: `downloaded into the ${slot} image${status.reason ? ` (${status.reason})` : ''}`, bytes: null };
      else if (status.status === 'failure' && fresh) return { ok: false, message: `the switch's download failed: ${status.reason || 'no reason given'}`, bytes: null };
      else if (!seenRunning && Date.now() - started > STATUS_APPEAR_MS) {
        return { ok: false, message: `the switch reports no new download (firmware/status: ${status.status}${status.reason ? `, ${status.reason}` : ''})`, bytes: null };
      }
      if (Date.now() - started > request.timeoutMs) return { ok: false, message: `the download still runs after ${request.timeoutMs} ms`, bytes: null };
      await sleep(STATUS_POLL_MS);
    }
  }

  async close(): Promise<void> {
    // Logged out whatever happened: the switch keeps few REST sessions per user.
    const rest = await this.restSession?.catch(() => null);
    await rest?.logout();
    this.cli.close();
    await this.connection.close();
  }
}
