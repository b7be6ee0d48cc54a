import { randomBytes } from 'node:crypto';
import { accessSync, constants, statSync } from 'node:fs';
import { Option, type Command } from '../program.js';
import { numberArgument } from '../arguments.js';
import { ExitCode, ExitError } from '../exitCodes.js';
import { loadServerConfig, PASSWORD_ENV, type ServeFlags } from '../../config/loader.js';
import { SYSLOG_FACILITIES, type ServerConfig } from '../../config/schema.js';
import { createLogger, type ClosableLogger } from '../../log/logger.js';
import type { MetricsEndpoint } from '../../observability/prometheus.js';
import { Xferlog } from '../../observability/xferlog.js';
import { hashPassword, type ResolvedAccount } from '../../server/accounts.js';
import { FirmwareServer, StartError } from '../../server/server.js';
import { FirewallHelper, FirewallRefusal, ruleSpec } from '../../firewall/index.js';
import { dropPrivileges, isRoot, type RunAsUser } from '../../server/privileges.js';
import { planPrivilegeDrop } from '../privilegeDrop.js';

export interface ServeOptions extends ServeFlags {
  config?: string;
}

/** Hashes every account's password; an unset env password is generated and printed once. */
async function resolveAccounts(config: ServerConfig, env: NodeJS.ProcessEnv, print: (line: string) => void): Promise<ResolvedAccount[]> {
  return Promise.all(
    config.accounts.map(async (account) => {
      if (account.passwordHash) return { account, passwordHash: account.passwordHash };
      const envName = account.passwordEnv ?? PASSWORD_ENV;
      let password = env[envName];
      if (!password) {
        password = randomBytes(12).toString('base64url');
        print(`${envName} is not set: generated password for account "${account.user}": ${password}`);
      }
      return { account, passwordHash: await hashPassword(password) };
    }),
  );
}

/** `swfw serve`: runs until SIGINT/SIGTERM, then stops gracefully. */
export async function serveCommand(options: ServeOptions): Promise<void> {
  const { config: configFile, ...flags } = options;
  const config = loadServerConfig({ configFile, flags });
  checkImagesDirectory(config.images);
  // Decided before the logger exists: --syslog's logger(1) starts as that user, never as root.
  const dropTo: RunAsUser | null = planPrivilegeDrop(config, 'serve');
  const logger = createLogger({
    level: config.logLevel,
    logFile: config.logFile,
    syslog: config.syslog ? { facility: SYSLOG_FACILITIES[config.syslogFacility], socket: config.syslogSocket, user: dropTo } : null,
  });
  const accounts = await resolveAccounts(config, process.env, (line) => process.stdout.write(`${line}\n`));
  // --open-firewall is checked before anything binds: without root or iptables/nft, refuse at once.
  // The rules belong to a helper that keeps root; the server itself does not.
  const firewall = config.openFirewall ? await startFirewallHelper(config, logger) : null;
  const server = new FirmwareServer({ config, accounts, logger });
  // Opened before dropping root: /var/log is root's.
  const xferlog = config.xferlog ? await openXferlog(config.xferlog, server, logger, firewall) : null;
  // Bound before the server and before dropping root, so a port below 1024 works too.
  const metrics = config.metrics ? await startMetricsEndpoint(config, server, logger, firewall, xferlog) : null;
  try {
    await server.start();
  } catch (err) {
    await metrics?.stop();
    xferlog?.close();
    await firewall?.stop();
    await logger.close();
    if (err instanceof StartError) throw new ExitError(ExitCode.USAGE, err.message);
    throw err;
  }
  try {
    await firewall?.open();
  } catch (err) {
    await server.stop(0);
    await metrics?.stop();
    xferlog?.close();
    await firewall?.stop();
    await logger.close();
    throw new ExitError(ExitCode.USAGE, `--open-firewall: ${(err as Error).message}`);
  }
  if (dropTo) {
    // Everything that needs root is done: ports bound, log file open, TLS key and catalog read.
    logger.info('dropping root', { user: dropTo.name, uid: dropTo.uid, gid: dropTo.gid, firewallHelper: firewall?.pid ?? null });
    dropPrivileges(dropTo);
  } else if (isRoot()) {
    logger.warn('serving as root (--run-as root): the process that parses every client byte keeps every privilege');
  }
  // logrotate's postrotate sends SIGHUP: the xferlog is opened again at its path.
  // Registered before the `swfw serving` line, which tells scripts the process is ready for it.
  const reopen = () => xferlog?.reopen();
  if (xferlog) process.on('SIGHUP', reopen);
  const { address, port } = server.address();
  const as = process.geteuid?.() === 0 ? ' as root' : dropTo ? ` as ${dropTo.name}` : '';
  const endpoints = server.httpEndpoints();
  const web = (['http', 'https'] as const)
    .map((protocol) => endpoints[protocol] && `, ${protocol.toUpperCase()} ${endpoints[protocol]!.address}:${endpoints[protocol]!.port}`)
    .filter(Boolean)
    .join('');
  process.stdout.write(`swfw serving ${config.images} on ${address}:${port}, passive ${config.pasvRange.min}-${config.pasvRange.max}${web}${as}\n`);
  await new Promise<void>((resolve) => {
    let stopping = false;
    const onSignal = (signal: NodeJS.Signals) => {
      if (stopping) {
        logger.warn('second signal: stopping now', { signal });
        void server.stop(0);
        return;
      }
      stopping = true;
      // stop() closes the listener before its first await, so this line is true when it appears.
      const stopped = server.stop();
      logger.info('stopping: no new connections; running transfers get a grace period', { signal });
      void stopped.then(async () => {
        process.removeListener('SIGINT', onSignal);
        process.removeListener('SIGTERM', onSignal);
        await metrics?.stop();
        process.removeListener('SIGHUP', reopen);
        xferlog?.close();
        // After the transfers: removing the rules first would cut them off.
        await firewall?.close().catch((err: Error) => logger.error('could not remove firewall rules', { error: err.message }));
        await logger.close();
        resolve();
      });
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
  });
}

/**
 * The images directory must be a readable directory before anything else happens: its default is
 * a production path (/srv/firmware), so on a new host the one line says where to set another.
 */
function checkImagesDirectory(images: string): void {
  let problem: string | null = null;
  try {
    if (!statSync(images).isDirectory()) problem = 'is not a directory';
    else accessSync(images, constants.R_OK | constants.X_OK);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    problem = code === 'ENOENT' ? 'does not exist' : `cannot be read (${code ?? (err as Error).message})`;
  }
  if (problem) {
    throw new ExitError(
      ExitCode.USAGE,
      `images directory ${images} ${problem}: set the firmware repository with --images DIR, "images" in the --config file, or SWFW_IMAGES`,
    );
  }
}

/** `--metrics HOST:PORT`: prom-client is loaded only when asked for. A port in use is one line. */
async function startMetricsEndpoint(
  config: ServerConfig,
  server: FirmwareServer,
  logger: ClosableLogger,
  firewall: FirewallHelper | null,
  xferlog: Xferlog | null,
): Promise<MetricsEndpoint> {
  const listen = config.metrics!;
  try {
    const { startMetrics } = await import('../../observability/prometheus.js');
    return await startMetrics({ listen, server, logger: logger.child({ component: 'metrics' }) });
  } catch (err) {
    xferlog?.close();
    await firewall?.stop();
    await logger.close();
    const code = (err as NodeJS.ErrnoException).code;
    const where = `${listen.host.includes(':') ? `[${listen.host}]` : listen.host}:${listen.port}`;
    if (code === 'EADDRINUSE') throw new ExitError(ExitCode.USAGE, `--metrics: ${where} is already in use by another process`);
    if (code === 'EACCES') throw new ExitError(ExitCode.USAGE, `--metrics: port ${listen.port} needs privilege; choose a port above 1023 (Prometheus exporters use 9100-9999)`);
    if (code === 'EADDRNOTAVAIL') throw new ExitError(ExitCode.USAGE, `--metrics: ${listen.host} is not an address of this host`);
    throw err;
  }
}

/** `--xferlog FILE`, opened at once: a path that cannot be written is one line. */
async function openXferlog(file: string, server: FirmwareServer, logger: ClosableLogger, firewall: FirewallHelper | null): Promise<Xferlog> {
  try {
    return Xferlog.start(file, server, logger.child({ component: 'xferlog' }));
  } catch (err) {
    await firewall?.stop();
    await logger.close();
    const code = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
    throw new ExitError(ExitCode.USAGE, `--xferlog: cannot open ${file} for appending (${code})`);
  }
}

async function startFirewallHelper(config: ServerConfig, logger: ReturnType<typeof createLogger>): Promise<FirewallHelper> {
  const webPorts = [config.http, config.https].filter((e) => e !== null).map((e) => e.port);
  const spec = ruleSpec({ host: config.host, controlPort: config.port, pasvRange: config.pasvRange, webPorts });
  try {
    if (typeof spec === 'string') throw new FirewallRefusal(spec);
    if (config.port === 0) throw new FirewallRefusal('--open-firewall needs a fixed control port, not 0');
    if (webPorts.includes(0)) throw new FirewallRefusal('--open-firewall needs fixed HTTP(S) ports, not 0');
    return await FirewallHelper.start(spec, logger);
  } catch (err) {
    await logger.close();
    if (err instanceof FirewallRefusal) throw new ExitError(ExitCode.USAGE, err.message);
    throw err;
  }
}

export function registerServe(program: Command): void {
  program
    .command('serve')
    .description('serve the firmware repository read-only over FTP, and optionally HTTP(S) (defaults: config/default.json)')
    .option('--config <file>', 'config file layered over config/default.json')
    .option('--host <addr>', 'bind address (default 0.0.0.0)')
    .option('--port <n>', 'control port (default 21; 0 picks a free port)', numberArgument)
    .option('--pasv-range <min-max>', 'passive port range (default 63006-63010)')
    .option('--pasv-address <ip>', 'IPv4 address put in PASV replies (default: local address of the control connection)')
    .option('--images <dir>', 'firmware repository (default /srv/firmware)')
    .option('--user <name>', 'the one account; its password comes from SWFW_PASSWORD')
    .option('--anonymous', 'allow anonymous read-only login (default off)')
    .option('--active-mode', 'allow PORT/EPRT, to the control peer only, ports >= 1024 (default off)')
    .option('--pasv-wait <s>', 'how long a PASV waits for a free passive port (default 20)', numberArgument)
    .option('--idle-timeout <s>', 'idle control connection timeout (default 300)', numberArgument)
    .option('--data-timeout <s>', 'no data progress for this long: 426 and the port is freed (default 60)', numberArgument)
    .option('--max-per-ip <n>', 'connections per client address (default 8)', numberArgument)
    .option('--max-connections <n>', 'total connections (default 64)', numberArgument)
    .option('--tls-cert <file>', 'certificate for explicit FTPS (AUTH TLS)')
    .option('--tls-key <file>', 'private key for explicit FTPS')
    .option('--require-tls', 'refuse plaintext logins and data connections')
    .option('--http <[addr:]port>', 'also serve the repository read-only over HTTP, e.g. 63001 (default off; addr defaults to --host)')
    .option('--https <[addr:]port>', 'also serve it over HTTPS with --tls-cert/--tls-key, e.g. 63002 (default off)')
    .option('--http-listing', 'HTTP(S): answer a directory with an HTML listing (default off: a directory is 404)')
    .addOption(new Option('--hash-sent-bytes <mode>', 'the SHA-256 of sent bytes in the audit record: per-version (hash each file version once, the default), per-transfer, or off'))
    .addOption(new Option('--no-hash-sent-bytes', 'the same as --hash-sent-bytes off'))
    .option('--open-firewall', 'Linux, root: insert iptables/nft rules for the ports at start, remove them at stop (a helper keeps root for that)')
    .option('--run-as <user>', 'started as root: become this user after binding (default nobody; root keeps root)')
    .option('--log-file <file>', 'JSON-lines log file')
    .option('--syslog', 'also log to the local syslog (default off)')
    .option('--syslog-facility <name>', 'syslog facility (default daemon)')
    .option('--syslog-socket <path>', 'the local syslog socket (default /dev/log)')
    .option('--xferlog <file>', 'one line per transfer in the wu-ftpd/vsftpd xferlog format; reopened on SIGHUP (default off)')
    .option('--metrics <host:port>', 'serve Prometheus metrics at http://HOST:PORT/metrics (default off)')
    .addOption(new Option('--log-level <level>', 'console and file log level (default info)').choices(['error', 'warn', 'info', 'debug']))
    .action(async (options: Record<string, string | boolean | undefined>) => {
      // Commander sets hashSentBytes=true when neither form is given; the config's default applies then.
      if (options['hashSentBytes'] === true) delete options['hashSentBytes'];
      await serveCommand(options);
    });
}
