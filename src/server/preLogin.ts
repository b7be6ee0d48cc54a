/**
 * What a stranger reaches: the commands anyone may send before logging in (USER, PASS, the TLS
 * upgrade, FEAT, SYST, NOOP, OPTS, QUIT; HELP lives with the table). Kept apart from the logged-in
 * commands (commands.ts), as vsftpd keeps its pre-login code apart: this is where every byte of an
 * unknown client is parsed.
 */
import { Limits } from '../core/limits.js';
import { ReplyCode } from '../core/replyCodes.js';
import type { Session } from './session.js';
import { command, reject, type CommandHandler, type CommandSpec } from './commandSpec.js';

/** Login names that mean anonymous when `anonymous` is on (FTP USER, HTTP Basic). */
export const ANONYMOUS_USERS: ReadonlySet<string> = new Set(['anonymous', 'ftp']);

// --- login -----------------------------------------------------------------------------------

const user: CommandHandler = (session, argument) => {
  if (session.authenticated) return reject(ReplyCode.NOT_LOGGED_IN, "Can't change to another user");
  if (session.context.isShuttingDown()) return reject(ReplyCode.SERVICE_NOT_AVAILABLE, 'Server shutting down');
  session.pendingUser = argument.trim();
  const anonymous = session.context.config.anonymous && ANONYMOUS_USERS.has(session.pendingUser.toLowerCase());
  session.reply(ReplyCode.NEED_PASSWORD, anonymous ? 'Anonymous login ok, send any password' : 'Password required');
};

const pass: CommandHandler = async (session, argument) => {
  if (session.authenticated) return session.reply(ReplyCode.COMMAND_SUPERFLUOUS, 'Already logged in');
  const name = session.pendingUser ?? reject(ReplyCode.BAD_SEQUENCE, 'Login with USER first');
  session.pendingUser = null;
  const { config, auth } = session.context;
  const anonymous = config.anonymous && ANONYMOUS_USERS.has(name.toLowerCase());
  const login = anonymous ? { user: 'anonymous', onlyPath: null } : await auth.check(name, argument, session.peerAddress);
  if (login) {
    session.user = login.user;
    session.onlyPath = login.onlyPath;
    session.logger.info('login', { user: session.user });
    return session.reply(ReplyCode.LOGGED_IN, 'Login successful');
  }
  session.failedLogins++;
  // The user name is logged so an admin can see what was tried; the password never is.
  session.logger.warn('failed login', { user: name, attempt: session.failedLogins });
  session.context.events.emit('login-failure', { client: session.peerAddress, user: name });
  await session.pause(Limits.FAILED_LOGIN_DELAY_MS);
  if (session.failedLogins >= Limits.MAX_FAILED_LOGINS) {
    return session.closeWith(ReplyCode.SERVICE_NOT_AVAILABLE, 'Too many failed logins; closing control connection');
  }
  session.reply(ReplyCode.NOT_LOGGED_IN, 'Login incorrect');
};

// --- TLS (RFC 4217) ----------------------------------------------------------------------------

const auth: CommandHandler = (session, argument) => {
  if (!session.context.secureContext) return reject(ReplyCode.NOT_IMPLEMENTED, 'TLS is not configured on this server');
  if (session.tlsActive) return reject(ReplyCode.BAD_SEQUENCE, 'Already using TLS');
  if (!/^(TLS|TLS-C|SSL)$/i.test(argument.trim())) return reject(ReplyCode.NOT_IMPLEMENTED_FOR_PARAMETER, 'Only AUTH TLS is supported');
  session.reply(ReplyCode.SECURITY_EXCHANGE_OK, 'Proceed with negotiation');
  session.startTls();
};

const pbsz: CommandHandler = (session, argument) => {
  if (!session.tlsActive) return reject(ReplyCode.BAD_SEQUENCE, 'PBSZ needs AUTH TLS first');
  session.pbszReceived = true;
  session.reply(ReplyCode.COMMAND_OK, argument.trim() === '0' ? 'PBSZ=0' : 'PBSZ=0 (only 0 applies to TLS)');
};

const prot: CommandHandler = (session, argument) => {
  if (!session.tlsActive) return reject(ReplyCode.BAD_SEQUENCE, 'PROT needs AUTH TLS first');
  if (!session.pbszReceived) return reject(ReplyCode.BAD_SEQUENCE, 'PROT needs PBSZ first');
  const level = argument.trim().toUpperCase();
  if (level === 'P') {
    session.protectData = true;
    return session.reply(ReplyCode.COMMAND_OK, 'Data connections will be protected');
  }
  if (level === 'C') {
    if (session.context.config.requireTls) return reject(ReplyCode.PROTECTION_LEVEL_NOT_SUPPORTED, 'PROT C refused: this server requires protected data');
    session.protectData = false;
    return session.reply(ReplyCode.COMMAND_OK, 'Data connections will be clear');
  }
  if (level === 'S' || level === 'E') return reject(ReplyCode.PROTECTION_LEVEL_NOT_SUPPORTED, 'Only PROT P and PROT C are supported');
  reject(ReplyCode.NOT_IMPLEMENTED_FOR_PARAMETER, 'Unknown protection level');
};

function features(session: Session): string[] {
  const list = ['EPSV', 'PASV', 'SIZE', 'MDTM', 'REST STREAM', 'TVFS', 'UTF8', 'MLST type*;size*;modify*;perm*;'];
  if (session.context.secureContext) list.push('AUTH TLS', 'PBSZ', 'PROT');
  return list.sort().map((f) => ` ${f}`);
}

const feat: CommandHandler = (session) => session.reply(ReplyCode.SYSTEM_STATUS, ['Features:', ...features(session), 'End']);

const opts: CommandHandler = (session, argument) => {
  if (/^UTF-?8(\s+ON)?\s*$/i.test(argument.trim())) return session.reply(ReplyCode.COMMAND_OK, 'Always in UTF8 mode');
  reject(ReplyCode.SYNTAX_ERROR_IN_ARGUMENTS, 'Option not understood');
};

const quit: CommandHandler = (session) => session.closeWith(ReplyCode.CLOSING_CONTROL, 'Goodbye');

const anyone = 'anyone' as const;

/** Before login: USER and PASS, the TLS upgrade (RFC 4217) and a few harmless commands. */
export const STRANGER_COMMANDS: [string, CommandSpec][] = [
  ['USER', command(user, { access: anyone, argument: 'required', help: 'USER <name>: who is logging in' })],
  ['PASS', command(pass, { access: anyone, secretArgument: true, help: 'PASS <password>: the password (never logged)' })],
  ['AUTH', command(auth, { access: anyone, argument: 'required', beforeTls: true, help: 'AUTH TLS: upgrade the control connection (RFC 4217)' })],
  ['PBSZ', command(pbsz, { access: anyone, argument: 'required', help: 'PBSZ 0: after AUTH TLS (RFC 4217)' })],
  ['PROT', command(prot, { access: anyone, argument: 'required', help: 'PROT P|C: protected or clear data connections (RFC 4217)' })],
  ['FEAT', command(feat, { access: anyone, argument: 'none', beforeTls: true, help: 'FEAT: the extensions this server has (RFC 2389)' })],
  ['SYST', command((s) => s.reply(ReplyCode.SYSTEM_TYPE, 'UNIX Type: L8'), { access: anyone, argument: 'none', beforeTls: true, help: 'SYST: the system type' })],
  ['NOOP', command((s) => s.reply(ReplyCode.COMMAND_OK, 'NOOP ok'), { access: anyone, argument: 'none', beforeTls: true, help: 'NOOP: nothing' })],
  ['QUIT', command(quit, { access: anyone, argument: 'none', beforeTls: true, help: 'QUIT: close the connection' })],
  // Clients such as lftp send OPTS UTF8 ON before logging in; vsftpd answers it too.
  ['OPTS', command(opts, { access: anyone, argument: 'required', help: 'OPTS UTF8 ON: names are UTF-8 (always)' })],
];
