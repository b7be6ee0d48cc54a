import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import type { Command } from '../program.js';
import { numberArgument } from '../arguments.js';
import { ExitCode, ExitError } from '../exitCodes.js';
import { Limits } from '../../core/limits.js';
import { loadServerConfig, PASSWORD_ENV, type ServeFlags } from '../../config/loader.js';
import { parseEndpoint, type ServerConfig } from '../../config/schema.js';
import { createLogger } from '../../log/logger.js';
import { StartError } from '../../server/server.js';
import { untilStopSignal } from '../stopSignal.js';
import {
  CheckPortsError,
  ControlUnreachableError,
  ProbeListener,
  checkPorts,
  formatPortList,
  reportJson,
  reportTable,
  unreachableJson,
  type PortResult,
} from '../../firewall/index.js';

export interface CheckPortsFlags {
  host?: string;
  port?: string;
  pasvRange?: string;
  http?: string;
  https?: string;
  config?: string;
  user?: string;
  tls?: boolean;
  ca?: string;
  insecure?: boolean;
  timeout?: string;
  expectAddress?: string;
  json?: boolean;
  listen?: boolean;
}

const ANONYMOUS_NAMES: ReadonlySet<string> = new Set(['anonymous', 'ftp']);
const DEFAULT_USER = 'switch';

function usage(message: string): never {
  throw new ExitError(ExitCode.USAGE, message);
}

/** Control port and passive range through the config loader (config/default.json, --config, env, flags). */
function portFlags(flags: CheckPortsFlags): ServeFlags {
  return {
    ...(flags.port !== undefined ? { port: flags.port } : {}),
    ...(flags.pasvRange !== undefined ? { pasvRange: flags.pasvRange } : {}),
    ...(flags.http !== undefined ? { http: flags.http } : {}),
    // --https is not passed: serve's rule that https needs tlsCert and tlsKey is the server's, and
    // the switch-side host that runs this check holds no server key (see httpsPort).
  };
}

/** The HTTPS port to check: --https ([ADDR:]PORT, the port is what counts here), else the config's. */
function httpsPort(flags: CheckPortsFlags, config: ServerConfig): number | null {
  if (flags.https === undefined) return config.https?.port ?? null;
  const parsed = parseEndpoint(flags.https, '0.0.0.0');
  if (typeof parsed === 'string') usage(`--https ${flags.https}: ${parsed}`);
  return parsed.port;
}

/** Credentials: --user (default switch) with SWFW_PASSWORD; without a password and --user, anonymous. */
function credentials(flags: CheckPortsFlags, env: NodeJS.ProcessEnv): { user: string; password: string } {
  const password = env[PASSWORD_ENV];
  const user = flags.user ?? (password ? DEFAULT_USER : 'anonymous');
  if (ANONYMOUS_NAMES.has(user.toLowerCase())) return { user, password: password || 'check-ports@' };
  if (!password) usage(`no password for user "${user}": set ${PASSWORD_ENV}`);
  return { user, password };
}

async function runCheck(flags: CheckPortsFlags): Promise<void> {
  if (!flags.host) usage('check-ports needs --host (the swfw server to check), or --listen on the server host');
  const config = loadServerConfig({ configFile: flags.config, flags: portFlags(flags) });
  const timeoutS = flags.timeout === undefined ? Limits.CHECK_PORTS_STEP_TIMEOUT_MS / 1000 : Number(flags.timeout);
  if (!(timeoutS > 0 && timeoutS <= 600)) usage('--timeout must be more than 0 and at most 600 seconds');
  if (flags.expectAddress !== undefined && isIP(flags.expectAddress) === 0) usage('--expect-address must be an IP address');
  const https = httpsPort(flags, config);
  if ((flags.ca || flags.insecure) && !flags.tls && https === null) usage('--ca and --insecure need --tls or an HTTPS port');
  let ca: Buffer | undefined;
  if (flags.ca) {
    try {
      ca = readFileSync(flags.ca);
    } catch (err) {
      usage(`--ca ${flags.ca}: ${(err as NodeJS.ErrnoException).code ?? 'unreadable'}`);
    }
  }
  const { user, password } = credentials(flags, process.env);
  const progress = process.stderr.isTTY && !flags.json;
  const host = flags.host;
  try {
    const report = await checkPorts({
      host,
      controlPort: config.port,
      pasvRange: config.pasvRange,
      user,
      password,
      tls: flags.tls ? { minVersion: 'TLSv1.2', ...(ca ? { ca } : {}), ...(flags.insecure ? { rejectUnauthorized: false } : {}) } : null,
      web: { http: config.http?.port ?? null, https },
      httpsTls: { ...(ca ? { ca } : {}), ...(flags.insecure ? { rejectUnauthorized: false } : {}) },
      timeoutMs: Math.round(timeoutS * 1000),
      expectAddress: flags.expectAddress ?? null,
      onResult: progress ? (r: PortResult) => process.stderr.write(`  ${r.port} ${r.status}\n`) : undefined,
    });
    process.stdout.write(flags.json ? `${reportJson(report)}\n` : reportTable(report));
    if (!report.verdict.ok) {
      const bad = report.ports.filter((p) => p.status !== 'open').map((p) => p.port);
      const badWeb = report.web.filter((w) => w.status !== 'open').map((w) => `${w.protocol} ${w.port} ${w.status}`);
      const parts = [
        ...(bad.length ? [`${bad.length} of ${report.ports.length} passive ports not open (${formatPortList(bad)})`] : []),
        ...(badWeb.length ? [badWeb.join(', ')] : []),
      ];
      throw new ExitError(ExitCode.FAILURE, `check-ports: ${parts.join('; ')}`);
    }
  } catch (err) {
    if (err instanceof ControlUnreachableError) {
      if (flags.json) process.stdout.write(`${unreachableJson(host, err.control)}\n`);
      throw new ExitError(ExitCode.CONTROL_UNREACHABLE, err.message);
    }
    if (err instanceof CheckPortsError) throw new ExitError(err.usage ? ExitCode.USAGE : ExitCode.FAILURE, `check-ports: ${err.message}`);
    throw err;
  }
}

/** `--listen`: bare responders on the control port and the passive range until SIGINT/SIGTERM. */
async function runListen(flags: CheckPortsFlags): Promise<void> {
  if (flags.http || flags.https) usage('--listen answers FTP only; start swfw serve --http/--https to check HTTP(S) ports');
  if (flags.tls || flags.json || flags.expectAddress) usage('--listen takes only --host (bind address), --port, --pasv-range, --user and --config');
  const logger = createLogger({ level: 'warn', logFile: null });
  let listener: ProbeListener;
  try {
    listener = await ProbeListener.start({
      env: process.env,
      logger,
      loadConfig: (images) =>
        loadServerConfig({
          configFile: flags.config,
          flags: {
            ...portFlags(flags),
            ...(flags.host !== undefined ? { host: flags.host } : {}),
            ...(flags.user !== undefined ? { user: flags.user } : {}),
            images,
            anonymous: true,
            // The service is not deployed yet: nothing here may touch the firewall.
            openFirewall: false,
          },
        }),
    });
  } catch (err) {
    await logger.close();
    if (err instanceof StartError) throw new ExitError(ExitCode.USAGE, err.message);
    throw err;
  }
  const { address, port } = listener.address();
  const { min, max } = listener.config.pasvRange;
  const bound = listener.passivePorts();
  const logins = ['anonymous', ...listener.users].join(', ');
  process.stdout.write(
    `swfw check-ports listening on ${address}:${port}, passive ${min}-${max} (${bound.length} bound; empty repository; logins: ${logins}). ` +
      'Run `swfw check-ports --host THIS-HOST` from the switch side; Ctrl-C stops.\n',
  );
  await untilStopSignal(async () => {
    await listener.stop(0);
    await logger.close();
  });
}

export function registerCheckPorts(program: Command): void {
  program
    .command('check-ports')
    .description('prove, from the switch side, that the FTP control port and every passive port pass the firewall')
    .option('--host <addr>', 'the swfw server to check (with --listen: the bind address)')
    .option('--port <n>', 'control port (default 21)', numberArgument)
    .option('--pasv-range <min-max>', 'passive range to test (default 63006-63010)')
    .option('--http <port>', "also check the server's HTTP port, e.g. 63001 (default: the config's http, else none)")
    .option('--https <port>', "also check the server's HTTPS port, e.g. 63002: TLS handshake and HEAD / (default: the config's https)")
    .option('--config <file>', 'config file for the port defaults, as serve uses it')
    .option('--user <name>', `login (default ${DEFAULT_USER} with ${PASSWORD_ENV}; anonymous when ${PASSWORD_ENV} is unset)`)
    .option('--tls', 'explicit FTPS (AUTH TLS, PROT P), as switches with FTPS would use')
    .option('--ca <file>', 'with --tls or an HTTPS port: trust this CA or self-signed certificate')
    .option('--insecure', 'with --tls or an HTTPS port: do not verify the server certificate')
    .option('--timeout <s>', 'limit for each step: connect, reply, data connection (default 5)', numberArgument)
    .option('--expect-address <ip>', 'the address PASV replies should carry (default: the address connected to)')
    .option('--json', 'print one JSON object instead of the table')
    .option('--listen', 'on the server host, before deployment: bare responders on the control port and the passive range')
    .action(async (flags: CheckPortsFlags) => {
      if (flags.listen) await runListen(flags);
      else await runCheck(flags);
    });
}
