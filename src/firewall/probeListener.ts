/**
 * `swfw check-ports --listen`: bare responders on the control port and every passive port, for
 * validating the firewall path on the server host before the FTP service is deployed.
 *
 * It is our own FirmwareServer on an empty temporary repository, not a second, minimal protocol
 * implementation: check-ports then talks to exactly the code it will meet in production (the same
 * SITE PROBE/PIN semantics, the same passive-port reservations, the same peer-address check on
 * data connections, the same bind errors for port 21 without privilege), and there is one FTP
 * server to keep correct instead of two. An empty repository serves nothing, and it is removed at stop.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ServerConfig } from '../config/schema.js';
import type { Logger } from '../core/logger.js';
import { hashPassword, type ResolvedAccount } from '../server/accounts.js';
import { FirmwareServer } from '../server/server.js';

export interface ProbeListenerOptions {
  /** Loads the server config with the given repository (the caller layers flags and env). */
  loadConfig: (images: string) => ServerConfig;
  env: NodeJS.ProcessEnv;
  logger: Logger;
}

/** A running probe listener. */
export class ProbeListener {
  private constructor(
    private readonly server: FirmwareServer,
    private readonly repository: string,
    readonly config: ServerConfig,
    /** Users that can log in (besides anonymous). */
    readonly users: string[],
  ) {}

  /**
   * Starts the responders. Anonymous login is always on (the repository is empty); accounts whose
   * password env var is set (SWFW_PASSWORD for the default `switch`) can log in too, so
   * check-ports with its usual credentials works unchanged. Throws the server's StartError.
   */
  static async start(options: ProbeListenerOptions): Promise<ProbeListener> {
    const repository = mkdtempSync(join(tmpdir(), 'swfw-listen-'));
    try {
      const config = options.loadConfig(repository);
      const accounts: ResolvedAccount[] = [];
      for (const account of config.accounts) {
        const password = account.passwordEnv ? options.env[account.passwordEnv] : undefined;
        if (account.passwordHash) accounts.push({ account, passwordHash: account.passwordHash });
        else if (password) accounts.push({ account, passwordHash: await hashPassword(password) });
      }
      const server = new FirmwareServer({ config, accounts, logger: options.logger });
      await server.start();
      return new ProbeListener(server, repository, config, accounts.map((a) => a.account.user));
    } catch (err) {
      rmSync(repository, { recursive: true, force: true });
      throw err;
    }
  }

  address(): { address: string; port: number } {
    return this.server.address();
  }

  passivePorts(): number[] {
    return this.server.passivePorts();
  }

  async stop(graceMs?: number): Promise<void> {
    try {
      await this.server.stop(graceMs);
    } finally {
      rmSync(this.repository, { recursive: true, force: true });
    }
  }
}
