import { closeSync } from 'node:fs';
import { isIP, type Socket } from 'node:net';
import { Limits } from '../core/limits.js';
import { ReplyCode } from '../core/replyCodes.js';
import { epsvReplyText, pasvReplyText } from '../core/ftpWire.js';
import { FtpReplyError } from '../core/errors.js';
import { sameAddress } from '../core/address.js';
import type { Session } from './session.js';
import { command, reject, type CommandHandler, type CommandSpec } from './commandSpec.js';
import { toVirtualPath } from './jail.js';
import { ActiveDataChannel, PassiveDataChannel, type ChannelOptions, type DataChannel } from './dataChannel.js';
import { lsLine, mlsxFacts, timeVal } from './listing.js';
import { transferImage } from './sendFile.js';
import type { TransferRecord } from './context.js';

/** After a transfer, how long the data socket may take to close before it is destroyed. */
const DATA_CLOSE_LINGER_MS = 1000;
const READ_ONLY_MESSAGE = 'Permission denied: the firmware repository is read-only';

function channelOptions(session: Session): ChannelOptions {
  const { config, secureContext, logger } = session.context;
  return {
    secureContext: session.protectData ? secureContext : null,
    dataTimeoutMs: config.dataTimeoutMs,
    logger,
  };
}

/** A path argument as a virtual path (the gate has already held a one-time account to its image). */
function filePath(session: Session, argument: string): string {
  return toVirtualPath(session.cwd, argument);
}

function replaceChannel(session: Session, channel: DataChannel | null): void {
  session.channel?.close();
  session.channel = channel;
}

/** Takes the session's data channel for one transfer (each data connection carries one). */
function takeChannel(session: Session): DataChannel {
  const channel = session.channel ?? reject(ReplyCode.CANT_OPEN_DATA_CONNECTION, 'Use PASV or EPSV first');
  session.channel = null;
  return channel;
}

/**
 * Waits for the data connection of a transfer command. The command owns the channel now (it left
 * the session), so the session ending must close it here: a client that vanishes between RETR and
 * its data connection frees its passive port at once, not after the data timeout.
 */
async function connectData(channel: DataChannel, session: Session): Promise<Socket> {
  const onSessionEnd = () => channel.close();
  session.lifetime.signal.addEventListener('abort', onSessionEnd, { once: true });
  try {
    if (session.lifetime.signal.aborted) channel.close();
    return await channel.waitForConnection();
  } catch (err) {
    channel.close();
    if (err instanceof FtpReplyError) throw err;
    return reject(ReplyCode.CANT_OPEN_DATA_CONNECTION, "Can't open data connection");
  } finally {
    session.lifetime.signal.removeEventListener('abort', onSessionEnd);
  }
}

/** Lets the client read to EOF and close first; destroys the socket if it does not. */
function closeDataSocket(socket: Socket): void {
  if (socket.destroyed) return;
  const timer = setTimeout(() => socket.destroy(), DATA_CLOSE_LINGER_MS);
  socket.once('close', () => clearTimeout(timer));
  socket.resume();
}

// --- data connections ----------------------------------------------------------------------

async function openPassive(session: Session, pinnedPort: number | null = null): Promise<number> {
  if (session.context.isShuttingDown()) reject(ReplyCode.SERVICE_NOT_AVAILABLE, 'Server shutting down');
  replaceChannel(session, null); // a repeated PASV frees the previous port first (ftp-srv leaked it)
  const { config, ports } = session.context;
  const { channel, port } = await PassiveDataChannel.open(
    ports,
    { peerAddress: session.peerAddress, sessionId: session.id },
    config.pasvWaitMs,
    session.lifetime.signal,
    channelOptions(session),
    pinnedPort,
  );
  if (session.isClosing) {
    channel.close();
    return reject(ReplyCode.SERVICE_NOT_AVAILABLE, 'Session closed');
  }
  session.channel = channel;
  return port;
}

const pasv: CommandHandler = async (session) => {
  if (session.epsvAll) return reject(ReplyCode.BAD_SEQUENCE, 'EPSV ALL is in effect; use EPSV');
  const address = session.context.config.pasvAddress ?? localIPv4(session);
  if (!address) return reject(ReplyCode.CANT_OPEN_DATA_CONNECTION, 'PASV needs IPv4; use EPSV');
  const port = await openPassive(session, takePin(session));
  session.reply(ReplyCode.ENTERING_PASSIVE, pasvReplyText(address, port));
};

function localIPv4(session: Session): string | null {
  const local = session.socket.localAddress ?? '';
  const address = local.toLowerCase().startsWith('::ffff:') ? local.slice(7) : local;
  return isIP(address) === 4 ? address : null;
}

const epsv: CommandHandler = async (session, argument) => {
  const protocol = argument.trim().toUpperCase();
  if (protocol === 'ALL') {
    session.epsvAll = true;
    return session.reply(ReplyCode.COMMAND_OK, 'EPSV ALL ok');
  }
  if (protocol !== '' && protocol !== '1' && protocol !== '2') {
    return reject(ReplyCode.EPSV_PROTOCOL_NOT_SUPPORTED, 'Network protocol not supported, use (1,2)');
  }
  const port = await openPassive(session, takePin(session));
  session.reply(ReplyCode.ENTERING_EXTENDED_PASSIVE, epsvReplyText(port));
};

function takePin(session: Session): number | null {
  const pin = session.pinnedPort;
  session.pinnedPort = null;
  return pin;
}

/**
 * SITE PROBE <port> and SITE PIN <port>: the server half of `swfw check-ports`, which must test
 * every port of the range exactly once, deterministically (authenticated users only).
 * - PIN makes the next PASV/EPSV use that port, so the reply passes through firewalls and their
 *   FTP helpers exactly as a switch's would.
 * - PROBE reserves the port at once and answers in a form no FTP helper (nf_conntrack_ftp) or ALG
 *   recognises, so a connection that still gets through proves the firewall itself is open, not
 *   just a helper's temporary expectation. A port busy with another session waits like a PASV.
 * Every other SITE command is refused: the repository is read-only.
 */
const site: CommandHandler = async (session, argument) => {
  const match = /^(PROBE|PIN)\s+(\d{1,5})\s*$/i.exec(argument.trim());
  if (!match) return reject(ReplyCode.FILE_UNAVAILABLE, READ_ONLY_MESSAGE);
  const port = Number(match[2]);
  const { min, max } = session.context.config.pasvRange;
  if (port < min || port > max) return reject(ReplyCode.SYNTAX_ERROR_IN_ARGUMENTS, `Port ${port} is not in the passive range ${min}-${max}`);
  if (match[1]!.toUpperCase() === 'PIN') {
    session.pinnedPort = port;
    return session.reply(ReplyCode.COMMAND_OK, `Next passive port will be ${port}`);
  }
  await openPassive(session, port);
  session.reply(ReplyCode.COMMAND_OK, `Probe listening on port ${port}`);
};

/** PORT h1,h2,h3,h4,p1,p2 (RFC 959) or EPRT |af|addr|port| (RFC 2428). */
function parseActiveTarget(verb: string, argument: string): { host: string; port: number } | null {
  if (verb === 'PORT') {
    const parts = argument.trim().split(',');
    if (parts.length !== 6 || !parts.every((p) => /^\d{1,3}$/.test(p) && Number(p) <= 255)) return null;
    return { host: parts.slice(0, 4).join('.'), port: Number(parts[4]) * 256 + Number(parts[5]) };
  }
  const text = argument.trim();
  const delimiter = text[0];
  if (!delimiter) return null;
  const [, family, host, port] = text.split(delimiter);
  if (!host || !port || !/^\d{1,5}$/.test(port) || (family !== '1' && family !== '2')) return null;
  if (isIP(host) !== (family === '1' ? 4 : 6)) return null;
  return { host, port: Number(port) };
}

const port: CommandHandler = (session, argument, verb) => {
  if (!session.context.config.activeMode) {
    return reject(ReplyCode.NOT_IMPLEMENTED, 'Active mode is off on this server; use PASV or EPSV');
  }
  if (session.epsvAll) return reject(ReplyCode.BAD_SEQUENCE, 'EPSV ALL is in effect; use EPSV');
  const target = parseActiveTarget(verb, argument);
  // Bounce protection (RFC 2577 §3): only the control peer, only unprivileged ports.
  if (!target || !sameAddress(target.host, session.peerAddress) || target.port < Limits.MIN_ACTIVE_MODE_PORT) {
    return reject(ReplyCode.SYNTAX_ERROR, `Illegal ${verb} command`);
  }
  replaceChannel(session, new ActiveDataChannel(target.host, target.port, channelOptions(session)));
  session.reply(ReplyCode.COMMAND_OK, `${verb} command successful`);
};

// --- files ----------------------------------------------------------------------------------

const retr: CommandHandler = async (session, argument) => {
  const { jail, config, events, logger } = session.context;
  const offset = session.restOffset;
  session.restOffset = 0;
  // Taken first: a RETR that fails for any reason also ends the data connection it was given.
  const channel = takeChannel(session);
  let opened;
  let virtualPath: string;
  try {
    virtualPath = filePath(session, argument);
    if (!channel.usable) reject(ReplyCode.CANT_OPEN_DATA_CONNECTION, 'No data connection arrived in time; send PASV again');
    opened = jail.openFile(virtualPath);
    try {
      session.context.guard.check(virtualPath, opened.entry.stats);
    } catch (err) {
      closeSync(opened.fd);
      if (err instanceof FtpReplyError) events.emit('catalog-refusal', { client: session.peerAddress, path: virtualPath, code: err.replyCode });
      throw err;
    }
    if (offset > opened.entry.stats.size) {
      closeSync(opened.fd);
      reject(ReplyCode.FILE_UNAVAILABLE, 'Restart offset is beyond the end of the file');
    }
  } catch (err) {
    channel.close();
    throw err;
  }
  const { fd, entry } = opened;
  const expectedBytes = entry.stats.size - offset;
  const progress = { session: session.id, client: session.peerAddress, user: session.user ?? '', path: virtualPath, bytes: 0, expectedBytes };
  const started = Date.now();
  const finalReplies: Array<[number, string]> = [];
  const record: TransferRecord = {
    protocol: 'ftp',
    session: session.id,
    client: session.peerAddress,
    user: session.user ?? '',
    path: virtualPath,
    offset,
    expectedBytes,
    bytes: 0,
    durationMs: 0,
    dataPort: null,
    code: ReplyCode.CANT_OPEN_DATA_CONNECTION,
    result: 'aborted',
    reason: 'no data connection',
    sha256: null,
    // The commands since the session's previous transfer: what led to this one (a long session
    // does not repeat its whole history in every record).
    commands: session.commandLog.splice(0),
  };
  try {
    session.reply(ReplyCode.FILE_STATUS_OK_OPENING_DATA, `Opening BINARY mode data connection for ${virtualPath} (${expectedBytes} bytes)`);
    let socket: Socket;
    try {
      socket = await connectData(channel, session);
    } catch (err) {
      const failure = err instanceof FtpReplyError ? err : new FtpReplyError(ReplyCode.CANT_OPEN_DATA_CONNECTION, "Can't open data connection");
      finalReplies.push([failure.replyCode, failure.message]);
      return;
    }
    record.dataPort = socket.localPort ?? null;
    const abort = new AbortController();
    session.setTransfer(abort);
    events.emit('transfer-start', progress);
    const { outcome, versionChanged } = await transferImage(
      session.context,
      {
        fd,
        offset,
        length: expectedBytes,
        size: entry.stats.size,
        sink: socket,
        signal: AbortSignal.any([abort.signal, session.lifetime.signal]),
        onProgress: (bytes) => events.emit('transfer-progress', { ...progress, bytes }),
      },
      record,
    );
    if (versionChanged) {
      // The file changed on disk while it was sent (RFC 959: 451, a local error): the client got
      // a mix of two versions, no digest describes it, and no 226 says otherwise.
      closeDataSocket(socket);
      record.code = ReplyCode.LOCAL_ERROR;
      finalReplies.push([ReplyCode.LOCAL_ERROR, 'The file changed while it was being sent; transfer failed, retry']);
    } else if (outcome.ok) {
      closeDataSocket(socket);
      record.code = ReplyCode.TRANSFER_COMPLETE;
      record.result = 'complete';
      delete record.reason;
      finalReplies.push([ReplyCode.TRANSFER_COMPLETE, 'Transfer complete']);
    } else if (outcome.reason === 'read-error') {
      // Our disk failed, not the network (RFC 959: 451, a local error). The client gets no path.
      record.code = ReplyCode.LOCAL_ERROR;
      finalReplies.push([ReplyCode.LOCAL_ERROR, 'Local error reading the file; transfer aborted']);
    } else {
      record.code = ReplyCode.TRANSFER_ABORTED;
      const why =
        outcome.reason === 'stalled'
          ? `No progress for ${config.dataTimeoutMs / 1000} s; transfer aborted`
          : outcome.reason === 'aborted'
            ? 'Transfer aborted'
            : 'Data connection closed; transfer aborted';
      finalReplies.push([ReplyCode.TRANSFER_ABORTED, why]);
      // RFC 959 §4.1.3: ABOR of a running transfer gets 426 for the transfer, then 226 for ABOR.
      if (outcome.reason === 'aborted' && !session.lifetime.signal.aborted) finalReplies.push([ReplyCode.TRANSFER_COMPLETE, 'ABOR successful']);
    }
  } finally {
    session.setTransfer(null);
    closeSync(fd);
    // The record reaches the server's listeners (a rollout's evidence, xferlog, metrics) before
    // the client sees the final reply, so whoever acts on 226 already has the server's account of
    // what it sent. The log line is formatted in the same turn, just after the reply is written:
    // winston's formatting took ~80 µs per RETR off the 226's path (bench figure 2), and its
    // write to the console or file is asynchronous either way.
    record.durationMs = Date.now() - started;
    events.emit('transfer', record);
    for (const [code, text] of finalReplies) session.reply(code, text);
    logger.info('transfer', { ...record });
  }
};

type ListStyle = 'LIST' | 'NLST' | 'MLSD';

async function listing(session: Session, argument: string, style: ListStyle): Promise<void> {
  // LIST accepts ls flags like "-la" from many clients; they are ignored.
  const pathArgument = argument.replace(/^(\s*-[a-zA-Z]+)+\s*/, '');
  const channel = takeChannel(session);
  let rows;
  try {
    const virtualPath = toVirtualPath(session.cwd, pathArgument);
    rows = await session.context.jail.list(virtualPath);
  } catch (err) {
    channel.close();
    throw err;
  }
  const now = Date.now();
  const lines = rows.map(({ name, stats }) =>
    style === 'NLST' ? name : style === 'MLSD' ? mlsxFacts(name, stats) : lsLine(name, stats, now),
  );
  session.reply(ReplyCode.FILE_STATUS_OK_OPENING_DATA, 'Here comes the directory listing');
  const socket = await connectData(channel, session);
  const body = lines.length ? `${lines.join('\r\n')}\r\n` : '';
  await new Promise<void>((resolve) => {
    socket.once('error', () => resolve());
    socket.end(body, () => resolve());
  });
  closeDataSocket(socket);
  session.reply(ReplyCode.TRANSFER_COMPLETE, 'Directory send OK');
}

const size: CommandHandler = async (session, argument) => {
  const entry = await session.context.jail.resolve(filePath(session, argument));
  if (!entry.stats.isFile()) return reject(ReplyCode.FILE_UNAVAILABLE, 'Not a plain file');
  session.reply(ReplyCode.FILE_STATUS, String(entry.stats.size));
};

const mdtm: CommandHandler = async (session, argument) => {
  const entry = await session.context.jail.resolve(filePath(session, argument));
  session.reply(ReplyCode.FILE_STATUS, timeVal(entry.stats.mtime));
};

const cwd: CommandHandler = async (session, argument, verb) => {
  const target = cwdTarget(session, argument, verb);
  const entry = await session.context.jail.resolve(target);
  if (!entry.stats.isDirectory()) return reject(ReplyCode.FILE_UNAVAILABLE, 'Not a directory');
  session.cwd = target;
  session.reply(ReplyCode.FILE_ACTION_OK, 'Directory successfully changed');
};

const pwd: CommandHandler = (session) => {
  session.reply(ReplyCode.PATHNAME_CREATED, `"${session.cwd.replace(/"/g, '""')}" is the current directory`);
};

const mlst: CommandHandler = async (session, argument) => {
  const target = filePath(session, argument);
  const entry = await session.context.jail.resolve(target);
  session.reply(ReplyCode.FILE_ACTION_OK, ['Listing', ` ${mlsxFacts(target, entry.stats)}`, 'End']);
};

const rest: CommandHandler = (session, argument) => {
  const text = argument.trim();
  if (!/^\d{1,15}$/.test(text)) return reject(ReplyCode.SYNTAX_ERROR_IN_ARGUMENTS, 'REST needs a byte offset');
  session.restOffset = Number(text);
  session.reply(ReplyCode.PENDING_FURTHER_INFO, `Restarting at ${session.restOffset}; send RETR`);
};

// --- session ---------------------------------------------------------------------------------

const type: CommandHandler = (session, argument) => {
  // ASCII is accepted but bytes are sent unchanged, as vsftpd does by default: converting line
  // ends would corrupt a firmware image fetched by a client that forgot TYPE I.
  const mode = argument.trim().toUpperCase();
  if (/^(I|L 8|L8|A|A N)$/.test(mode)) return session.reply(ReplyCode.COMMAND_OK, `Type set to ${mode.startsWith('A') ? 'A' : 'I'}`);
  reject(ReplyCode.NOT_IMPLEMENTED_FOR_PARAMETER, 'Unsupported type');
};

const onlyParameter =
  (expected: string, what: string): CommandHandler =>
  (session, argument) => {
    if (argument.trim().toUpperCase() !== expected) return reject(ReplyCode.NOT_IMPLEMENTED_FOR_PARAMETER, `Only ${what} is supported`);
    session.reply(ReplyCode.COMMAND_OK, `${what} ok`);
  };

const stat: CommandHandler = async (session, argument) => {
  if (argument.trim() === '') {
    return session.reply(ReplyCode.SYSTEM_STATUS, [
      'swfw FTP server status:',
      ` Connected from ${session.peerAddress}`,
      ` Logged in as ${session.user}`,
      ` TLS ${session.tlsActive ? 'on' : 'off'}, data ${session.protectData ? 'protected' : 'clear'}`,
      'End of status',
    ]);
  }
  const target = toVirtualPath(session.cwd, argument);
  const rows = await session.context.jail.list(target);
  const now = Date.now();
  session.reply(ReplyCode.FILE_STATUS, ['Status follows:', ...rows.map((r) => ` ${lsLine(r.name, r.stats, now)}`), 'End of status']);
};

const abor: CommandHandler = (session) => {
  // A running transfer is aborted before it reaches the queue (Session.enqueue); here there is none.
  replaceChannel(session, null);
  session.reply(ReplyCode.NO_TRANSFER_IN_PROGRESS, 'No transfer to abort');
};

const readOnly: CommandHandler = () => reject(ReplyCode.FILE_UNAVAILABLE, READ_ONLY_MESSAGE);

/** The directory CWD/CDUP goes to (for the gate and the handler alike). */
export function cwdTarget(session: Session, argument: string, verb: string): string {
  return toVirtualPath(session.cwd, /CDUP|XCUP/.test(verb) ? '..' : argument);
}

const loggedIn = 'logged-in' as const;

/** What a logged-in user reaches (after USER and PASS): everything here needs a login. */
export const USER_COMMANDS: [string, CommandSpec][] = [
  ['TYPE', command(type, { access: loggedIn, argument: 'required', help: 'TYPE I|A: binary or ASCII (bytes are sent unchanged either way)' })],
  ['MODE', command(onlyParameter('S', 'MODE S'), { access: loggedIn, argument: 'required', help: 'MODE S: stream mode, the only one' })],
  ['STRU', command(onlyParameter('F', 'STRU F'), { access: loggedIn, argument: 'required', help: 'STRU F: file structure, the only one' })],
  ['ALLO', command((s) => s.reply(ReplyCode.COMMAND_SUPERFLUOUS, 'ALLO not needed'), { access: loggedIn, help: 'ALLO <bytes>: not needed here' })],
  ['PWD', command(pwd, { access: loggedIn, argument: 'none', help: 'PWD: the current directory' })],
  ['XPWD', command(pwd, { access: loggedIn, argument: 'none', help: 'XPWD: the current directory (RFC 775)' })],
  ['CWD', command(cwd, { access: loggedIn, argument: 'required', grant: 'toward-image', help: 'CWD <dir>: change directory' })],
  ['XCWD', command(cwd, { access: loggedIn, argument: 'required', grant: 'toward-image', help: 'XCWD <dir>: change directory (RFC 775)' })],
  ['CDUP', command(cwd, { access: loggedIn, argument: 'none', grant: 'toward-image', help: 'CDUP: to the parent directory' })],
  ['XCUP', command(cwd, { access: loggedIn, argument: 'none', grant: 'toward-image', help: 'XCUP: to the parent directory (RFC 775)' })],
  ['SIZE', command(size, { access: loggedIn, argument: 'required', grant: 'image', help: 'SIZE <file>: its size in bytes (RFC 3659)' })],
  ['MDTM', command(mdtm, { access: loggedIn, argument: 'required', grant: 'image', help: 'MDTM <file>: its modification time (RFC 3659)' })],
  ['MLST', command(mlst, { access: loggedIn, grant: 'image', help: 'MLST [<path>]: facts about one file (RFC 3659)' })],
  ['REST', command(rest, { access: loggedIn, argument: 'required', help: 'REST <offset>: the next RETR starts there (RFC 3659)' })],
  ['PASV', command(pasv, { access: loggedIn, argument: 'none', protectedData: true, help: 'PASV: a passive data port (IPv4, RFC 959)' })],
  ['EPSV', command(epsv, { access: loggedIn, protectedData: true, help: 'EPSV [1|2|ALL]: a passive data port (RFC 2428)' })],
  ['PORT', command(port, { access: loggedIn, argument: 'required', protectedData: true, help: 'PORT h1,h2,h3,h4,p1,p2: active mode (off unless activeMode)' })],
  ['EPRT', command(port, { access: loggedIn, argument: 'required', protectedData: true, help: 'EPRT |af|addr|port|: active mode (off unless activeMode; RFC 2428)' })],
  ['RETR', command(retr, { access: loggedIn, argument: 'required', grant: 'image', protectedData: true, consumesChannel: true, help: 'RETR <file>: download it' })],
  ['LIST', command((s, a) => listing(s, a, 'LIST'), { access: loggedIn, grant: 'never', protectedData: true, consumesChannel: true, help: 'LIST [<path>]: a directory listing, ls style' })],
  ['NLST', command((s, a) => listing(s, a, 'NLST'), { access: loggedIn, grant: 'never', protectedData: true, consumesChannel: true, help: 'NLST [<path>]: names only' })],
  ['MLSD', command((s, a) => listing(s, a, 'MLSD'), { access: loggedIn, grant: 'never', protectedData: true, consumesChannel: true, help: 'MLSD [<dir>]: a machine-readable listing (RFC 3659)' })],
  ['STAT', command(stat, { access: loggedIn, grant: 'never', help: 'STAT [<path>]: the session status, or a listing over the control connection' })],
  ['ABOR', command(abor, { access: loggedIn, argument: 'none', help: 'ABOR: abort the running transfer (urgent data and Telnet IP/Synch accepted)' })],
  ['SITE', command(site, { access: loggedIn, argument: 'required', grant: 'never', help: 'SITE PIN|PROBE <port>: for swfw check-ports; nothing else (read-only)' })],
  // RFC 959 commands with no use here (accounts, reinitialize, structure mounts): recognized and
  // answered 502, as vsftpd answers them, not 500 "unknown" (Windows ftp.exe's `account` sends ACCT).
  ...['ACCT', 'REIN', 'SMNT'].map(
    (verb): [string, CommandSpec] => [verb, command(() => reject(ReplyCode.NOT_IMPLEMENTED, `${verb} not implemented`), { access: loggedIn, help: `${verb}: not implemented (502)` })],
  ),
  ...['STOR', 'APPE', 'STOU', 'DELE', 'RNFR', 'RNTO', 'MKD', 'XMKD', 'RMD', 'XRMD', 'MFMT', 'MFCT', 'MFF'].map(
    (verb): [string, CommandSpec] => [verb, command(readOnly, { access: loggedIn, help: `${verb}: refused, the repository is read-only (550)` })],
  ),
];
