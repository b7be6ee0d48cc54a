import { chownSync, mkdirSync, readdirSync } from 'node:fs';
import { isIP } from 'node:net';
import { join, resolve } from 'node:path';
import { Option, type Command } from '../program.js';
import { numberArgument, wholeNumberArgument } from '../arguments.js';
import { ExitCode, ExitError } from '../exitCodes.js';
import { loadServerConfig } from '../../config/loader.js';
import { createLogger } from '../../log/logger.js';
import { FirmwareServer, StartError } from '../../server/server.js';
import { findImage, loadCatalog } from '../../catalog/index.js';
import { connectEngine, SITE_NAME, siteQueue, type JobEngine } from '../../engine/index.js';
import { lockStateDir, releaseLock, SiteAgent } from '../../rollout/index.js';
import { portRangeSize } from '../../core/portRange.js';
import { canonicalAddress, parseCidr } from '../../core/address.js';
import { accessProblem, dropPrivileges, isRoot, type RunAsUser } from '../../server/privileges.js';
import { planPrivilegeDrop } from '../privilegeDrop.js';

interface AgentFlags {
  site: string;
  engine: string;
  engineCa?: string;
  config?: string;
  host?: string;
  port?: string;
  pasvRange?: string;
  pasvAddress?: string;
  images?: string;
  address?: string;
  state: string;
  concurrency: number;
  lockSeconds: number;
  logLevel?: string;
  logFile?: string;
  runAs?: string;
  switchNetworks?: string;
}

/**
 * Hands the state directory (and the journals in it) to the user the agent drops to, so it can
 * write them after the drop; refuses, with one line, a directory that user cannot reach.
 */
function giveStateDir(stateDir: string, user: RunAsUser): void {
  const rollouts = join(stateDir, 'rollouts');
  mkdirSync(rollouts, { recursive: true, mode: 0o700 });
  for (const path of [stateDir, rollouts, ...readdirSync(rollouts).map((f) => join(rollouts, f))]) chownSync(path, user.uid, user.gid);
  const problem = accessProblem(stateDir, 'list', user);
  if (problem) throw new ExitError(ExitCode.USAGE, `agent drops root to "${user.name}" after binding, and ${problem}: put --state where ${user.name} can reach it (every parent directory o+x), or keep root with --run-as root`);
}

/** The default lease on a job: long enough that WAN blips do not make the engine redeliver it (MULTISITE §3.1). */
const DEFAULT_LOCK_SECONDS = 120;

/**
 * `swfw agent`: the site daemon of a multi-site rollout (rollout/agent.ts). Runs until SIGINT or
 * SIGTERM, then takes no new job, lets running transfers finish and report, and stops.
 */
async function agentCommand(flags: AgentFlags): Promise<void> {
  if (!SITE_NAME.test(flags.site)) throw new ExitError(ExitCode.USAGE, `--site: "${flags.site}" is not a site name (letters, digits, _ and -)`);
  const { site, engine: url, engineCa, config: configFile, address: givenAddress, state, concurrency, lockSeconds, switchNetworks: networksText, ...serverFlags } = flags;
  if (!networksText) throw new ExitError(ExitCode.USAGE, "--switch-networks: name the networks of this site's switches (CIDRs, comma-separated), or say any: a job for a switch elsewhere is refused before any SSH");
  const switchNetworks = (networksText === 'any' ? '' : networksText).split(',').map((t) => t.trim()).filter(Boolean).map((text) => {
    const cidr = parseCidr(canonicalAddress(text));
    if (typeof cidr === 'string') throw new ExitError(ExitCode.USAGE, `--switch-networks: ${cidr}`);
    return cidr;
  });
  const config = loadServerConfig({ configFile, flags: serverFlags as Record<string, string | undefined> });
  const address = givenAddress ?? config.pasvAddress ?? (config.host !== '0.0.0.0' && config.host !== '::' ? config.host : null);
  if (!address || !isIP(address)) throw new ExitError(ExitCode.USAGE, '--address: name the address the site\'s switches reach this agent at (or listen on one address with --host)');
  const stateDir = resolve(state);
  // Decided before anything binds, as serve does: the images and the code must be readable after the drop.
  const dropTo = planPrivilegeDrop(config, 'agent');
  const logger = createLogger({ level: config.logLevel, logFile: config.logFile });
  let engine: JobEngine | null = null;
  let server: FirmwareServer | null = null;
  let agent: SiteAgent | null = null;
  let locked = false;
  const shutdown = async () => {
    await agent?.stop();
    await server?.stop();
    await engine?.close();
    if (locked) releaseLock(stateDir);
    await logger.close();
  };
  try {
    // The engine first: an engine that can lose jobs refuses before any port is bound.
    engine = await connectEngine({ url, ...(engineCa ? { caFile: engineCa } : {}), logger });
    // One agent per site: two would each copy a switch whose job moved between them after a lost
    // lease (the attach guard is per process). A standby starts when the first is gone.
    const others = await engine.workers(siteQueue(site));
    if (others > 0) throw new ExitError(ExitCode.USAGE, `another agent is connected to ${siteQueue(site)} (${others} worker${others === 1 ? '' : 's'}): one agent per site; stop it first (a standby may start once it is gone)`);
    const catalog = await loadCatalog(config.images);
    mkdirSync(stateDir, { recursive: true, mode: 0o700 });
    if (dropTo) giveStateDir(stateDir, dropTo);
    // One agent per state directory: two would write one journal.
    lockStateDir(stateDir, 'an agent');
    locked = true;
    // One-time grants only: the agent's server has no standing accounts.
    server = new FirmwareServer({ config, accounts: [], logger: logger.child({ component: 'server', site }) });
    try {
      await server.start();
    } catch (err) {
      server = null;
      if (err instanceof StartError) throw new ExitError(ExitCode.USAGE, err.message);
      throw err;
    }
    if (dropTo) {
      // Everything that needs root is done: ports bound, the engine connected (its TLS CA read),
      // the catalog loaded. The switches' SSH passwords are read per job, after this: a
      // passwordFile must be readable by this user (or use passwordEnv).
      logger.info('dropping root', { user: dropTo.name, uid: dropTo.uid, gid: dropTo.gid });
      dropPrivileges(dropTo);
    } else if (isRoot()) {
      logger.warn('agent running as root (--run-as root): the process that parses every switch\'s bytes keeps every privilege');
    }
    agent = new SiteAgent({
      site,
      engine,
      server,
      serverAddress: address,
      passivePorts: portRangeSize(config.pasvRange),
      findImage: (file) => findImage(catalog, file) ?? undefined,
      stateDir,
      concurrency,
      lockDurationMs: lockSeconds * 1000,
      switchNetworks,
      logger,
    });
    await agent.start();
  } catch (err) {
    await shutdown();
    throw err;
  }
  const bound = server.address();
  const as = process.geteuid?.() === 0 ? ' as root' : dropTo ? ` as ${dropTo.name}` : '';
  process.stdout.write(`swfw agent for site ${site}: serving ${config.images} on ${bound.address}:${bound.port} (switches dial ${address}), passive ${config.pasvRange.min}-${config.pasvRange.max}${as}; jobs from ${siteQueue(site)} at ${engine.displayUrl}\n`);
  await new Promise<void>((done) => {
    let stopping = false;
    const onSignal = (signal: NodeJS.Signals) => {
      if (stopping) {
        // A second signal: stop now (running switches are redelivered after their lease).
        logger.warn('second signal: abandoning running transfers, stopping the server', { signal });
        agent?.stopNow();
        void server?.stop(0);
        void engine?.close();
        return;
      }
      stopping = true;
      logger.info('stopping: no new jobs; running transfers finish and report (a second signal abandons them)', { signal });
      void shutdown().then(() => {
        process.removeListener('SIGINT', onSignal);
        process.removeListener('SIGTERM', onSignal);
        done();
      });
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
  });
}

export function registerAgent(program: Command): void {
  program
    .command('agent')
    .description("multi-site rollouts: serve this site's images and work on its switches' jobs from the job engine")
    .requiredOption('--site <name>', 'the site this agent serves (its queue: swfw.site.<name>)')
    .requiredOption('--engine <url>', 'the job engine: redis://[user:password@]host:port or rediss://… (Redis with AOF and noeviction)')
    .option('--engine-ca <file>', 'PEM CA of the engine\'s TLS certificate (rediss://)')
    .requiredOption('--state <dir>', 'where the agent journals its work (one file per rollout)')
    .option('--address <ip>', "the address the site's switches reach this agent's FTP server at (default: --pasv-address, or --host)")
    .option('--config <file>', 'server config layered over config/default.json (as swfw serve)')
    .option('--host <addr>', 'bind address (default 0.0.0.0)')
    .option('--port <n>', 'control port (default 21)', numberArgument)
    .option('--pasv-range <min-max>', 'passive port range (default 63006-63010)')
    .option('--pasv-address <ip>', 'IPv4 address put in PASV replies')
    .option('--images <dir>', "the site's image mirror with its catalog.json")
    .option('--concurrency <n>', 'switches worked on at once by this agent (the queue\'s global limit, set by the plan, may be lower)', wholeNumberArgument(1, 1000), 10)
    .option('--switch-networks <cidrs>', "comma-separated networks of this site's switches: a job for a switch elsewhere is refused before any SSH (default: any)")
    .option('--run-as <user>', 'started as root: become this user after binding (default nobody; root keeps root); the state directory is handed to it')
    .option('--lock-seconds <s>', 'lease on a job: an agent silent this long has its jobs redelivered', wholeNumberArgument(1, 3600), DEFAULT_LOCK_SECONDS)
    .option('--log-file <file>', 'JSON-lines log file')
    .addOption(new Option('--log-level <level>', 'log level').choices(['error', 'warn', 'info', 'debug']))
    .action((flags: AgentFlags) => agentCommand(flags));
}
