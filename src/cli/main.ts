#!/usr/bin/env node
import { Command, CommanderError } from 'commander';
import { ConfigError, ExitCode, ExitError, describeError } from '../core/errors.js';
import { registerServe } from './commands/serve.js';
import { registerHashPassword } from './commands/hashPassword.js';
import { registerCheckPorts } from './commands/checkPorts.js';
import { registerFirewall } from './commands/firewall.js';
import { registerPull } from './commands/pull.js';
import { registerVerify } from './commands/verify.js';
import { registerCatalog } from './commands/catalog.js';

export function buildProgram(): Command {
  const program = new Command('swfw')
    .description('Switch-firmware FTP transfer service')
    .version('0.1.0')
    .showHelpAfterError('(swfw --help, or swfw <command> --help, for usage)')
    .exitOverride();

  registerServe(program);
  registerHashPassword(program);
  registerCheckPorts(program);
  registerFirewall(program);
  registerPull(program);
  registerVerify(program);
  registerCatalog(program);

  return program;
}

/** Runs the CLI; the only place that exits the process. */
async function main(argv: string[]): Promise<void> {
  try {
    await buildProgram().parseAsync(argv);
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
    process.stderr.write(`swfw: ${describeError(err)}\n`);
    process.exit(ExitCode.FAILURE);
  }
}

void main(process.argv);
