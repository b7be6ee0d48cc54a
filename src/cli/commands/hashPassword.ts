import type { Command } from '../program.js';
import { ExitCode, ExitError } from '../exitCodes.js';
import { hashPassword } from '../../server/accounts.js';
import { PASSWORD_ENV } from '../../config/loader.js';

/** Reads all of standard input. */
async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

/**
 * `swfw hash-password`: prints the scrypt hash for an account's `passwordHash` key.
 * The password comes from SWFW_PASSWORD or standard input, never from the command line.
 */
export async function hashPasswordCommand(): Promise<void> {
  const password = process.env[PASSWORD_ENV] ?? (process.stdin.isTTY ? '' : (await readStdin()).replace(/\r?\n$/, ''));
  if (!password) throw new ExitError(ExitCode.USAGE, `give the password in ${PASSWORD_ENV} or on standard input`);
  process.stdout.write(`${await hashPassword(password)}\n`);
}

export function registerHashPassword(program: Command): void {
  program
    .command('hash-password')
    .description('print the scrypt hash of SWFW_PASSWORD (or stdin) for an account passwordHash')
    .action(hashPasswordCommand);
}
