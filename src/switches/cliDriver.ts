import { setTimeout as sleep } from 'node:timers/promises';
import { silentLogger, type Logger } from '../core/logger.js';
import { describeError } from '../core/errors.js';
import {
  DEFAULT_PULL_TIMEOUT_MS,
  ftpUrlParts,
  redactSecrets,
  type PullOutcome,
  type SwitchDriver,
  type SwitchHashAlgorithm,
  type SwitchInventory,
  type SwitchSession,
  type SwitchTarget,
} from './driver.js';
import type { Dialect } from './dialect.js';
import { SshConnection } from './ssh.js';

/** How often a background pull (Dell OS10) is polled. */
const STATUS_POLL_MS = 1000;

/** A driver for any dialect: SSH exec per command, prompts answered, outputs parsed by the dialect. */
export class CliDriver implements SwitchDriver {
  readonly name: string;
  readonly hashAlgorithms: readonly SwitchHashAlgorithm[];

  constructor(
    private readonly dialect: Dialect,
    private readonly logger: Logger = silentLogger,
  ) {
    this.name = dialect.name;
    this.hashAlgorithms = dialect.hashAlgorithms;
  }

  async connect(target: SwitchTarget): Promise<SwitchSession> {
    const connection = await SshConnection.connect(target);
    return new CliSession(this.dialect, connection, target, this.logger.child({ switch: `${target.host}:${target.port}`, driver: this.name }));
  }
}

class CliSession implements SwitchSession {
  constructor(
    private readonly dialect: Dialect,
    private readonly connection: SshConnection,
    private readonly target: SwitchTarget,
    private readonly logger: Logger,
  ) {}

  private async run(command: string, secrets: string[] = []): Promise<string> {
    this.logger.debug('command', { command: redactSecrets(command, secrets) });
    const { output } = await this.connection.exec(command, { timeoutMs: this.target.timeoutMs });
    return output;
  }

  async inventory(): Promise<SwitchInventory> {
    const outputs: string[] = [];
    for (const command of this.dialect.inventoryCommands) outputs.push(await this.run(command));
    return this.dialect.parseInventory(outputs);
  }

  async pull(ftpUrl: string, fileName: string, onProgress?: (bytes: number) => void): Promise<PullOutcome> {
    const password = ftpUrlParts(ftpUrl).password;
    const { command, prompts } = this.dialect.pullCommand(ftpUrl, fileName);
    const shown = redactSecrets(command, [password]);
    this.logger.info('starting the switch pull', { command: shown });
    let soFar = '';
    let result;
    try {
      result = await this.connection.exec(command, {
        prompts,
        timeoutMs: this.target.pullTimeoutMs ?? DEFAULT_PULL_TIMEOUT_MS,
        onOutput: (chunk) => {
          soFar += chunk;
          const bytes = this.dialect.parseProgress?.(soFar);
          if (bytes != null) onProgress?.(bytes);
        },
      });
    } catch (err) {
      return { ok: false, message: redactSecrets(describeError(err), [password]), bytes: null };
    }
    const outcome = this.dialect.parsePullOutput(redactSecrets(result.output, [password]));
    if (!outcome.ok || !this.dialect.statusCommand || !this.dialect.parseStatus) return outcome;
    // A background download: poll until it ends.
    const deadline = Date.now() + (this.target.pullTimeoutMs ?? DEFAULT_PULL_TIMEOUT_MS);
    for (;;) {
      const status = this.dialect.parseStatus(redactSecrets(await this.run(this.dialect.statusCommand), [password]));
      if (status.bytes !== null) onProgress?.(status.bytes);
      if (status.state === 'done') return { ok: true, message: status.message, bytes: status.bytes };
      if (status.state === 'failed') return { ok: false, message: status.message, bytes: status.bytes };
      if (Date.now() > deadline) return { ok: false, message: `still running after ${this.target.pullTimeoutMs ?? DEFAULT_PULL_TIMEOUT_MS} ms`, bytes: status.bytes };
      await sleep(STATUS_POLL_MS);
    }
  }

  async fileHash(fileName: string, algorithm: SwitchHashAlgorithm): Promise<string | null> {
    const command = this.dialect.hashCommand(fileName, algorithm);
    if (command === null) return null;
    return this.dialect.parseHash(await this.run(command), algorithm);
  }

  close(): Promise<void> {
    return this.connection.close();
  }
}
