#!/usr/bin/env node
import { Command, CommanderError } from './program.js';
import { ConfigError, RefusalError, describeError } from '../core/errors.js';
import { ExitCode, ExitError } from './exitCodes.js';
type Register = (program: Command) => void;

/**
 * Every subcommand, loaded on demand: `swfw pull` need not load ftp-srv, ssh2 and winston first
 * (loading every command cost about 0.5 s per run). Help and unknown commands load them all.
 */
const COMMANDS: Record<string, () => Promise<Register>> = {
  serve: async () => (await import('./commands/serve.js')).registerServe,
  'hash-password': async () => (await import('./commands/hashPassword.js')).registerHashPassword,
  pull: async () => (await import('./commands/pull.js')).registerPull,
  verify: async () => (await import('./commands/verify.js')).registerVerify,
  catalog: async () => (await import('./commands/catalog.js')).registerCatalog,
  'check-ports': async () => (await import('./commands/checkPorts.js')).registerCheckPorts,
  firewall: async () => (await import('./commands/firewall.js')).registerFirewall,
  emulate: async () => (await import('./commands/emulate.js')).registerEmulate,
  rollout: async () => (await import('./commands/rollout.js')).registerRollout,
  agent: async () => (await import('./commands/agent.js')).registerAgent,
};

/** The program with the subcommand named in `argv` registered, or all of them. */
export async function buildProgram(argv: string[] = process.argv): Promise<Command> {
  const program = new Command('swfw')
    .description('Switch-firmware FTP transfer service')
    .version('0.1.0')
    .showHelpAfterError('(swfw --help, or swfw <command> --help, for usage)')
    .exitOverride();
  const named = argv[2];
  const versionOnly = named === '--version' || named === '-V';
  const wanted = named !== undefined && named in COMMANDS ? [named] : versionOnly ? [] : Object.keys(COMMANDS);
  for (const name of wanted) (await COMMANDS[name]!())(program);
  return program;
}

/** Runs the CLI; the only place that exits the process. */
async function main(argv: string[]): Promise<void> {
  try {
    await (await buildProgram(argv)).parseAsync(argv);
    process.exitCode = ExitCode.OK;
  } catch (err) {
    if (err instanceof CommanderError) {
      // Help and version are not errors; commander already printed its message.
      process.exit(err.exitCode === 0 ? ExitCode.OK : ExitCode.USAGE);
    }
    if (err instanceof ConfigError) {
      for (const problem of err.problems) process.stderr.write(`swfw: config: ${problem.path}: ${problem.message}\n`);
      process.exit(ExitCode.USAGE);
    }
    if (err instanceof ExitError) {
      process.stderr.write(`swfw: ${err.message}\n`);
      process.exit(err.exitCode);
    }
    if (err instanceof RefusalError) {
      process.stderr.write(`swfw: ${err.message}\n`);
      process.exit(ExitCode.USAGE);
    }
    process.stderr.write(`swfw: ${describeError(err)}\n`);
    process.exit(ExitCode.FAILURE);
  }
}

void main(process.argv);
