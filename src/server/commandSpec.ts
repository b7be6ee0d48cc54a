/**
 * What every command table entry says about its verb. The gate (commandTable.ts) checks all of
 * it before any handler runs, as pyftpdlib's one gatekeeper does: a handler never checks login,
 * TLS, its argument's presence or a one-time account's scope itself.
 */
import { FtpReplyError } from '../core/errors.js';
import type { Session } from './session.js';

export type CommandHandler = (session: Session, argument: string, verb: string) => Promise<void> | void;

/**
 * What a one-time account (one switch's grant, read-only, one image) may do with a verb:
 * - `any`: it is harmless (TYPE, PASV, REST, QUIT);
 * - `image`: only with the granted image as its path argument (RETR, SIZE, MDTM, MLST); any other
 *   path looks exactly like a missing file;
 * - `toward-image`: only the directories on the way to the image (CWD, CDUP), for clients that
 *   walk the URL's path (RFC 1738);
 * - `never`: not for a switch pulling its image (listings, SITE, STAT).
 */
export type GrantScope = 'any' | 'image' | 'toward-image' | 'never';

export interface CommandSpec {
  /** `anyone` before login, or `logged-in` (530 before). */
  access: 'anyone' | 'logged-in';
  /** With `requireTls`, may it come on the plaintext control connection, before AUTH TLS? */
  beforeTls: boolean;
  /** With `requireTls`, a data command: refused (522) until PROT P. */
  protectedData: boolean;
  argument: 'none' | 'optional' | 'required';
  grant: GrantScope;
  /** The gate's refusal also ends the session's data channel: a transfer command would have used it up. */
  consumesChannel: boolean;
  /** `HELP VERB`: its syntax, then what it does. */
  help: string;
  /** Never logged or audited (PASS). */
  secretArgument: boolean;
  handler: CommandHandler;
}

/** Throws the FTP reply the client gets (the session's gate turns it into the reply). */
export const reject = (code: number, message: string): never => {
  throw new FtpReplyError(code, message);
};

/** A table entry, with the defaults most verbs share. */
export function command(handler: CommandHandler, spec: Pick<CommandSpec, 'access' | 'help'> & Partial<Omit<CommandSpec, 'handler'>>): CommandSpec {
  return {
    beforeTls: false,
    protectedData: false,
    argument: 'optional',
    grant: 'any',
    consumesChannel: false,
    secretArgument: false,
    handler,
    ...spec,
  };
}
