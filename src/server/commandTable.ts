/**
 * The one command table, and its one gate. Every verb's entry names who may send it (anyone, or
 * a logged-in session), whether it may come before AUTH TLS under `requireTls`, whether it is a
 * data command needing PROT P, its argument, what a one-time account may do with it, and its
 * help. The gate checks all of it, in that order, before any handler runs. Anything not in the
 * table gets 500.
 */
import { ReplyCode } from '../core/replyCodes.js';
import { FtpReplyError } from '../core/errors.js';
import { NOT_FOUND_MESSAGE, toVirtualPath } from './jail.js';
import { command, type CommandSpec } from './commandSpec.js';
import { STRANGER_COMMANDS } from './preLogin.js';
import { USER_COMMANDS, cwdTarget } from './commands.js';
import type { Session } from './session.js';

/** HELP [VERB]: the verbs, or one verb's syntax (RFC 959 §4.1.3). */
const help = command(
  (session, argument) => {
    const verb = argument.trim().toUpperCase();
    if (verb === '') return session.reply(ReplyCode.HELP, ['Commands:', ` ${[...COMMANDS.keys()].sort().join(' ')}`, 'HELP <command> for its syntax; HELP OK']);
    const spec = COMMANDS.get(verb);
    if (!spec) throw new FtpReplyError(ReplyCode.SYNTAX_ERROR_IN_ARGUMENTS, `Unknown command ${verb.slice(0, 32)}`);
    session.reply(ReplyCode.HELP, `Syntax: ${spec.help}`);
  },
  { access: 'anyone', beforeTls: true, help: 'HELP [<command>]: the commands, or one command\'s syntax' },
);

export const COMMANDS: ReadonlyMap<string, CommandSpec> = new Map<string, CommandSpec>([...STRANGER_COMMANDS, ['HELP', help], ...USER_COMMANDS]);

/** Commands a session that must use TLS may send before AUTH TLS (for the README's table and tests). */
export const BEFORE_TLS: readonly string[] = [...COMMANDS].filter(([, spec]) => spec.beforeTls).map(([verb]) => verb);

/**
 * Checks a command against its table entry; throws the FtpReplyError the client gets, or returns
 * and the handler runs. A refused transfer command also ends the session's data channel, as the
 * transfer itself would have.
 */
export function gate(session: Session, spec: CommandSpec, verb: string, argument: string): void {
  try {
    const { config } = session.context;
    if (config.requireTls && !session.tlsActive && !spec.beforeTls) throw new FtpReplyError(ReplyCode.NOT_LOGGED_IN, 'TLS required: send AUTH TLS first');
    if (spec.access === 'logged-in' && !session.authenticated) throw new FtpReplyError(ReplyCode.NOT_LOGGED_IN, 'Please login with USER and PASS');
    if (spec.argument === 'required' && argument.trim() === '') throw new FtpReplyError(ReplyCode.SYNTAX_ERROR_IN_ARGUMENTS, `${verb} needs an argument`);
    if (spec.argument === 'none' && argument.trim() !== '') throw new FtpReplyError(ReplyCode.SYNTAX_ERROR_IN_ARGUMENTS, `${verb} takes no argument`);
    if (spec.protectedData && config.requireTls && !session.protectData) {
      throw new FtpReplyError(ReplyCode.DATA_PROTECTION_REQUIRED, 'Data connections must be encrypted: send PBSZ 0 and PROT P');
    }
    const image = session.onlyPath;
    if (image !== null) {
      if (spec.grant === 'never') throw new FtpReplyError(ReplyCode.FILE_UNAVAILABLE, `${verb} is not available to this account`);
      // A one-time account sees one file: any other path looks exactly like a missing one.
      if (spec.grant === 'image' && toVirtualPath(session.cwd, argument) !== image) throw new FtpReplyError(ReplyCode.FILE_UNAVAILABLE, NOT_FOUND_MESSAGE);
      if (spec.grant === 'toward-image') {
        const target = cwdTarget(session, argument, verb);
        if (target !== '/' && !image.startsWith(`${target}/`)) throw new FtpReplyError(ReplyCode.FILE_UNAVAILABLE, NOT_FOUND_MESSAGE);
      }
    }
  } catch (err) {
    if (spec.consumesChannel) {
      session.channel?.close();
      session.channel = null;
    }
    throw err;
  }
}
