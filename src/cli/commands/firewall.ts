import { Option, type Command } from '../program.js';
import { numberArgument } from '../arguments.js';
import { ExitCode, ExitError } from '../exitCodes.js';
import { loadServerConfig, type ServeFlags } from '../../config/loader.js';
import { parseEndpoint } from '../../config/schema.js';
import { RULE_FORMATS, formatRules, ruleSpec, type RuleFormat } from '../../firewall/index.js';

export interface FirewallRulesFlags {
  format: RuleFormat;
  source?: string;
  config?: string;
  host?: string;
  port?: string;
  pasvRange?: string;
  http?: string;
  https?: string;
}

/** `swfw firewall rules`: prints rules for the configured control port and passive range. */
export function firewallRulesCommand(flags: FirewallRulesFlags): string {
  const serveFlags: ServeFlags = {};
  if (flags.host !== undefined) serveFlags.host = flags.host;
  if (flags.port !== undefined) serveFlags.port = flags.port;
  if (flags.pasvRange !== undefined) serveFlags.pasvRange = flags.pasvRange;
  const config = loadServerConfig({ configFile: flags.config, flags: serveFlags });
  // The flags are read here, not through the config: HTTPS would want a certificate to serve, and
  // printing rules needs only the port.
  const flagPorts = (['http', 'https'] as const).flatMap((key) => {
    const text = flags[key];
    if (text === undefined) return [];
    const endpoint = parseEndpoint(text, config.host);
    if (typeof endpoint === 'string') throw new ExitError(ExitCode.USAGE, `--${key}: ${endpoint}`);
    return [endpoint.port];
  });
  const webPorts = [...new Set([...[config.http, config.https].filter((e) => e !== null).map((e) => e.port), ...flagPorts])];
  const spec = ruleSpec({ host: config.host, controlPort: config.port, pasvRange: config.pasvRange, webPorts, source: flags.source ?? null });
  if (typeof spec === 'string') throw new ExitError(ExitCode.USAGE, spec);
  return formatRules(flags.format, spec);
}

export function registerFirewall(program: Command): void {
  const firewall = program.command('firewall').description('firewall rules for the FTP control port and passive range');
  firewall
    .command('rules')
    .description('print ready-to-apply rules for the configured control port and passive range')
    .addOption(new Option('--format <format>', 'rule syntax').choices([...RULE_FORMATS]).makeOptionMandatory())
    .option('--source <cidr>', 'allow only this source block (the switch subnet)')
    .option('--config <file>', 'config file layered over config/default.json, as serve uses it')
    .option('--host <addr>', "the server's bind address (a specific address also limits the destination)")
    .option('--port <n>', 'control port (default 21)', numberArgument)
    .option('--pasv-range <min-max>', 'passive range (default 63006-63010)')
    .option('--http <[addr:]port>', 'also open the HTTP port serve --http listens on (63001 in the HP layout)')
    .option('--https <[addr:]port>', 'also open the HTTPS port serve --https listens on (63002; it needs --tls-cert/--tls-key in serve, not here)')
    .action((flags: FirewallRulesFlags) => {
      process.stdout.write(firewallRulesCommand(flags));
    });
}
