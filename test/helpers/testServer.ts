import { mkdtempSync, rmSync, cpSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadServerConfig, PROJECT_ROOT } from '../../src/config/loader.js';
import type { ServeFlags } from '../../src/config/loader.js';
import { hashPassword } from '../../src/server/accounts.js';
import { FirmwareServer } from '../../src/server/server.js';
import type { TransferRecord } from '../../src/server/context.js';
import { silentLogger, type Logger } from '../../src/core/logger.js';

export const FIXTURE_IMAGES = join(PROJECT_ROOT, 'fixtures', 'images');
export const TEST_USER = 'switch';
export const TEST_PASSWORD = 'test-password-1';

export interface TestServer {
  server: FirmwareServer;
  host: string;
  port: number;
  pasvMin: number;
  pasvMax: number;
  /** The repository this server serves (a private copy when `copyImages` was set). */
  images: string;
  /** Audit records of finished transfers, in order. */
  transfers: TransferRecord[];
  stop(graceMs?: number): Promise<void>;
}

export interface TestServerOptions {
  /** Flag-style overrides, exactly as the CLI would pass them. */
  flags?: ServeFlags;
  /** Serve a private temporary copy of fixtures/images (for tests that add symlinks or files). */
  copyImages?: boolean;
  /** With copyImages: runs on the copy before the server starts (add images and catalog them). */
  beforeStart?: (images: string) => Promise<void>;
  /** A config file layered over config/default.json, as `--config` would be. */
  configFile?: string;
  logger?: Logger;
}

/**
 * Starts the real server on 127.0.0.1, control port 0 (a free port), through the same config
 * loader as the CLI. Pass a distinct `pasvRange` per test file so suites never share ports.
 */
export async function startTestServer(pasvRange: string, options: TestServerOptions = {}): Promise<TestServer> {
  let images = FIXTURE_IMAGES;
  let scratch: string | null = null;
  if (options.copyImages) {
    scratch = mkdtempSync(join(tmpdir(), 'swfw-images-'));
    images = join(scratch, 'images');
    cpSync(FIXTURE_IMAGES, images, { recursive: true });
    await options.beforeStart?.(images);
  }
  const config = loadServerConfig({
    env: {},
    ...(options.configFile ? { configFile: options.configFile } : {}),
    flags: { host: '127.0.0.1', port: '0', pasvRange, images, logLevel: 'error', ...options.flags },
  });
  const accounts = await Promise.all(
    config.accounts.map(async (account) => ({
      account,
      passwordHash: account.passwordHash ?? (await hashPassword(TEST_PASSWORD)),
    })),
  );
  const server = new FirmwareServer({ config, accounts, logger: options.logger ?? silentLogger });
  const transfers: TransferRecord[] = [];
  server.on('transfer', (record) => transfers.push(record));
  await server.start();
  return {
    server,
    host: '127.0.0.1',
    port: server.address().port,
    pasvMin: config.pasvRange.min,
    pasvMax: config.pasvRange.max,
    images,
    transfers,
    async stop(graceMs = 0) {
      await server.stop(graceMs);
      if (scratch) rmSync(scratch, { recursive: true, force: true });
    },
  };
}
