import { setTimeout as sleep } from 'node:timers/promises';
import { silentLogger, type Logger } from '../core/logger.js';
import { describeError } from '../core/errors.js';
import {
  SwitchConnectError,
  SwitchOutputError,
  ftpUrlParts,
  redactSecrets,
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
} from './driver.js';
import { HASH_UNSUPPORTED, type Dialect, type PolledStatus } from './dialect.js';
import { CliSession, type PromptGrammar } from './cliSession.js';
import { SshConnection } from './ssh.js';

/** How often a background pull (Dell OS10) is polled. */
const STATUS_POLL_MS = 1000;
/** A background pull that the switch still does not report after this long was never started (or was lost). */
const STATUS_APPEAR_MS = 15_000;
/** The terminal asked for: wide enough that no command echo or digest wraps; pagers are off anyway. */
const PTY = { cols: 511, rows: 24 };
/** A hash command also gets this long, whatever the size: the command itself, the prompt, a busy switch. */
const HASH_BASE_MS = 30_000;

/** A driver for any dialect: one interactive CLI session per switch, prompts answered, outputs parsed by the dialect. */
export class CliDriver implements SwitchDriver {
  readonly name: string;
  readonly hashAlgorithms: readonly SwitchHashAlgorithm[];
  readonly protocols: readonly string[];
  readonly unsupported = null;
  readonly pullSchemes: readonly PullScheme[] = ['ftp'];

  constructor(
    private readonly dialect: Dialect,
    private readonly logger: Logger = silentLogger,
  ) {
    this.name = dialect.name;
    this.hashAlgorithms = dialect.hashAlgorithms;
    this.protocols = dialect.protocols;
  }

  spaceNeeded(size: number, fileName: string): number {
    return this.dialect.spaceNeeded?.(size, fileName) ?? size;
  }

  async connect(target: SwitchTarget): Promise<SwitchSession> {
    const logger = this.logger.child({ switch: `${target.host}:${target.port}`, driver: this.name });
    return openCli(target, this.dialect.prompt, logger, async (connection, cli) => {
      const session = new DialectSession(this.dialect, connection, cli, target, logger);
      await session.prepare();
      return session;
    });
  }
}

/**
 * Logs into the switch over SSH, opens one interactive shell and learns its prompt, then hands
 * both to `prepare` (which builds the session). Anything failing on the way closes the connection.
 */
export async function openCli<T>(target: SwitchTarget, grammar: PromptGrammar, logger: Logger, prepare: (connection: SshConnection, cli: CliSession) => Promise<T>): Promise<T> {
  const connection = await SshConnection.connect({
    host: target.host,
    port: target.port,
    username: target.username,
    password: target.password,
    timeoutMs: target.timeoutMs,
    hostKey: target.hostKey,
    weakAlgorithms: target.weakAlgorithms ?? [],
  });
  try {
    const shell = await connection.openShell(PTY, target.timeoutMs);
    const cli = await CliSession.start(shell, { grammar, timeoutMs: target.timeoutMs, logger });
    return await prepare(connection, cli);
  } catch (err) {
    await connection.close();
    throw err;
  }
}

class DialectSession implements SwitchSession {
  /** Algorithms this switch refused (`% Invalid input`) in this session: not asked again. */
  private readonly refused = new Set<SwitchHashAlgorithm>();
  readonly facts: SessionFacts;

  constructor(
    private readonly dialect: Dialect,
    private readonly connection: SshConnection,
    private readonly cli: CliSession,
    private readonly target: SwitchTarget,
    private readonly logger: Logger,
  ) {
    this.facts = { algorithms: connection.negotiated, authMethod: connection.authMethod, prompt: cli.prompt.trim() };
  }

  private secrets(): string[] {
    return [this.target.password, this.target.enablePassword ?? ''].filter((s) => s.length > 0);
  }

  private short(command: string): Promise<string> {
    return this.cli.run(command, { silenceMs: this.target.timeoutMs, secrets: this.secrets() }).then((r) => r.output);
  }

  /** Leaves a Unix shell or an unprivileged mode, then turns paging off. */
  async prepare(): Promise<void> {
    const d = this.dialect;
    if (d.shellEscape && this.cli.promptEnd === d.shellEscape.end) {
      await this.cli.run(d.shellEscape.command, { silenceMs: this.target.timeoutMs });
    }
    if (d.privilege && this.cli.promptEnd === d.privilege.unprivilegedEnd) {
      const secret = this.target.enablePassword ?? this.target.password;
      await this.cli.run(d.privilege.command, {
        silenceMs: this.target.timeoutMs,
        questions: [{ match: /password:\s*$/i, answer: secret, secret: true }],
        secrets: this.secrets(),
      }).catch((err: unknown) => {
        throw new SwitchConnectError(`${this.where()}: "${d.privilege!.command}" failed: ${describeError(err)}`, 'privilege');
      });
      if (this.cli.promptEnd === d.privilege.unprivilegedEnd) {
        throw new SwitchConnectError(`${this.where()}: the account is unprivileged (${this.cli.prompt.trim()}) and "${d.privilege.command}" was refused: set credentials.enablePasswordEnv or enablePasswordFile`, 'privilege');
      }
    }
    for (const command of d.setupCommands) {
      const output = await this.short(command);
      if (/%\s*(Invalid|Unrecognized|Incomplete)|^error:|syntax error/im.test(output)) this.logger.debug('setup command refused (pagers are answered anyway)', { command });
    }
    this.facts.prompt = this.cli.prompt.trim();
  }

  private where(): string {
    return `${this.target.host}:${this.target.port}`;
  }

  async inventory(): Promise<SwitchInventory> {
    const outputs: string[] = [];
    for (const command of this.dialect.inventoryCommands) outputs.push(await this.short(command));
    return this.dialect.parseInventory(outputs);
  }

  async pull(request: PullRequest): Promise<PullOutcome> {
    const parts = ftpUrlParts(request.url);
    const secrets = [...this.secrets(), parts.password];
    const { command, questions, before = [], after = [] } = this.dialect.pullCommand(parts, request.fileName, this.target.vrf ?? this.dialect.defaultVrf);
    this.logger.info('starting the switch pull', { command: redactSecrets(command, secrets) });
    const started = Date.now();
    let baseline: PolledStatus | null = null;
    const background = this.dialect.background;
    try {
      if (background) baseline = background.parseStatus(await this.short(background.statusCommand));
      for (const c of before) await this.short(c);
      const parseProgress = this.dialect.parseProgress;
      const result = await this.cli.run(command, {
        // The switch may print nothing for a long time (Junos, a stalled flash write): only the pull's own limit applies.
        silenceMs: request.timeoutMs,
        limitMs: request.timeoutMs,
        questions,
        secrets,
        ...(parseProgress
          ? {
              onOutput: (soFar: string) => {
                const bytes = parseProgress(soFar);
                if (bytes != null) request.onProgress?.(bytes);
              },
            }
          : {}),
      });
      for (const c of after) await this.short(c);
      // Judged on the switch's own words, then redacted: a password that happens to spell "Copy"
      // or "0" must not change the verdict.
      const outcome = this.dialect.parsePullOutput(result.output);
      outcome.message = redactSecrets(outcome.message, secrets);
      if (result.notes.length) outcome.notes = result.notes;
      if (!outcome.ok || !background) return outcome;
      return await this.followBackground(background, baseline!, request, started, secrets);
    } catch (err) {
      return { ok: false, message: redactSecrets(describeError(err), secrets), bytes: null };
    }
  }

  /** Polls a background download until it ends; a `done` left over from an earlier download does not count. */
  private async followBackground(background: NonNullable<Dialect['background']>, baseline: PolledStatus, request: PullRequest, started: number, secrets: string[]): Promise<PullOutcome> {
    let seenRunning = false;
    for (;;) {
      const status = background.parseStatus(await this.short(background.statusCommand));
      status.message = redactSecrets(status.message, secrets);
      // Ours, not a result left from an earlier download: it was seen running, its end time is new,
      // or the switch reported no download at all before ours.
      const fresh = seenRunning || (status.marker !== null && status.marker !== baseline.marker) || (baseline.state === 'none' && status.state !== 'none');
      if (status.bytes !== null && status.state === 'running') request.onProgress?.(status.bytes);
      if (status.state === 'running') seenRunning = true;
      else if (status.state === 'done' && fresh) return { ok: true, message: status.message, bytes: status.bytes };
      else if (status.state === 'failed' && fresh) return { ok: false, message: status.message, bytes: status.bytes };
      else if (Date.now() - started > STATUS_APPEAR_MS && !seenRunning) {
        return { ok: false, message: `the switch reports no new download (${status.message || status.state})`, bytes: null };
      }
      if (Date.now() - started > request.timeoutMs) return { ok: false, message: `still running after ${request.timeoutMs} ms`, bytes: status.bytes };
      await sleep(STATUS_POLL_MS);
    }
  }

  async fileHash(fileName: string, request: HashRequest): Promise<SwitchDigest | null> {
    const rate = request.bytesPerSecond ?? this.dialect.hashBytesPerSecond;
    // Hashing prints dots on some platforms and nothing at all on others until the digest:
    // silence may last as long as the whole read of the file.
    const silenceMs = HASH_BASE_MS + Math.ceil((request.expectedBytes * 1000) / rate);
    for (const algorithm of this.dialect.hashAlgorithms) {
      if (this.refused.has(algorithm)) continue;
      const command = this.dialect.hashCommand(fileName, algorithm);
      const { output } = await this.cli.run(command, { silenceMs, limitMs: silenceMs * 4, secrets: this.secrets() });
      const digest = this.dialect.parseHash(output, algorithm, fileName);
      if (digest === HASH_UNSUPPORTED) {
        this.logger.info('the switch refused a hash algorithm; trying the next', { algorithm });
        this.refused.add(algorithm);
        continue;
      }
      return digest === null ? null : { algorithm, digest };
    }
    if (this.dialect.hashAlgorithms.length === 0) return null;
    throw new SwitchOutputError(`the switch refused every hash command (${this.dialect.hashAlgorithms.map((a) => this.dialect.hashCommand(fileName, a)).join(', ')})`);
  }

  async close(): Promise<void> {
    this.cli.close();
    await this.connection.close();
  }
}

/** A platform swfw knows and cannot roll out to: its pre-check fails with the reason, before any login. */
export class UnsupportedDriver implements SwitchDriver {
  readonly hashAlgorithms: readonly SwitchHashAlgorithm[] = [];
  readonly pullSchemes: readonly PullScheme[] = [];
  constructor(
    readonly name: string,
    readonly protocols: readonly string[],
    readonly unsupported: string,
  ) {}

  spaceNeeded(size: number): number {
    return size;
  }

  connect(): Promise<SwitchSession> {
    return Promise.reject(new SwitchConnectError(this.unsupported, 'other'));
  }
}
