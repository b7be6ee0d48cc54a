/**
 * The firewall helper's process (see helper.ts): root, no socket of its own, nothing but the
 * rules. It answers its parent over IPC and removes the rules when the parent closes the channel
 * or dies.
 */
import type { Logger, LogFields } from '../core/logger.js';
import { FirewallRefusal, LinuxFirewall } from './linuxFirewall.js';
import type { FromHelper, ToHelper } from './helper.js';

const send = (message: FromHelper) => {
  if (process.connected) process.send!(message);
};

/** Logs go to the parent, which writes them where the server's own go. */
const logger: Logger = {
  debug: (message: string, fields: LogFields = {}) => send({ type: 'log', level: 'debug', message, fields }),
  info: (message: string, fields: LogFields = {}) => send({ type: 'log', level: 'info', message, fields }),
  warn: (message: string, fields: LogFields = {}) => send({ type: 'log', level: 'warn', message, fields }),
  error: (message: string, fields: LogFields = {}) => send({ type: 'log', level: 'error', message, fields }),
  child: () => logger,
};

let firewall: LinuxFirewall | null = null;
let opened = false;
let work: Promise<unknown> = Promise.resolve();

/** Runs one request after the previous one (rules are never changed by two requests at once). */
function serially(task: () => Promise<void>): void {
  work = work.then(task, task);
}

async function closeRules(): Promise<number> {
  if (!firewall || !opened) return 0;
  opened = false;
  return firewall.close();
}

process.on('message', (message: ToHelper) =>
  serially(async () => {
    try {
      if (message.type === 'prepare') {
        firewall = await LinuxFirewall.prepare(message.spec, { logger });
        send({ type: 'prepared' });
      } else if (message.type === 'open') {
        if (!firewall) throw new Error('open before prepare');
        opened = true;
        send({ type: 'opened', summary: await firewall.open() });
      } else if (message.type === 'close') {
        send({ type: 'closed', removed: await closeRules() });
      }
    } catch (err) {
      send(err instanceof FirewallRefusal ? { type: 'refused', message: err.message } : { type: 'failed', message: (err as Error).message });
    }
  }),
);

// The parent closed the channel (done, or killed): no rule may outlive it.
process.on('disconnect', () =>
  serially(async () => {
    await closeRules().catch(() => {});
    process.exit(0);
  }),
);
process.on('SIGTERM', () =>
  serially(async () => {
    await closeRules().catch(() => {});
    process.exit(0);
  }),
);
