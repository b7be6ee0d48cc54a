/**
 * `swfw check-ports`: proves, from the switch's side, that the control port and every passive
 * port pass the firewalls between here and a running `swfw serve` (or `check-ports --listen`).
 *
 * Each passive port is tested exactly once per pass, deterministically, through two paths:
 * 1. `SITE PROBE <port>`: the server reserves that port and says so in a reply no FTP helper can
 *    parse (no 227), then a direct data connection and an NLST transfer. Success proves the
 *    firewall itself passes the port.
 * 2. `SITE PIN <port>` + `PASV`: the plaintext 227 a switch would get, which an FTP helper
 *    (nf_conntrack_ftp) or ALG reads and may rewrite, then a transfer through it. This tells
 *    `helper-only` from `filtered`/`rejected`, and shows a rewritten 227.
 * Every PASV is followed by a real connection, so no helper expectation is left behind to make a
 * later direct probe of the same port pass (nf_conntrack_ftp keeps unused ones for minutes).
 */
import type { ConnectionOptions } from 'node:tls';
import { isIP, type Socket } from 'node:net';
import { Limits } from '../core/limits.js';
import { ReplyCode } from '../core/replyCodes.js';
import { canonicalAddress } from '../core/address.js';
import type { PortRange } from '../core/portRange.js';
import { silentLogger, type Logger } from '../core/logger.js';
import { classifyPort, verdictOf, type DataAttempt, type PasvAttempt, type PortEvidence, type PortResult, type Verdict } from './classify.js';
import { parseEpsvReply, parsePasvReply } from '../core/ftpWire.js';
import { ControlChannel, ControlError, connectTcp, readToEnd, secureSocket, type FtpReply } from './probeClient.js';

export interface CheckPortsOptions {
  host: string;
  controlPort: number;
  pasvRange: PortRange;
  user: string;
  password: string;
  /** Explicit FTPS (AUTH TLS, PBSZ 0, PROT P) with these TLS options, or null for plain FTP. */
  tls: ConnectionOptions | null;
  /** Limit for each step: connect, each reply, each data connection and transfer. */
  timeoutMs: number;
  /** The address PASV replies should carry. Default: the address the control connection goes to. */
  expectAddress?: string | null;
  /** Rounds of retries for busy ports (default Limits.CHECK_PORTS_BUSY_RETRIES). */
  busyRetries?: number;
  /** Pause before each retry round (default Limits.CHECK_PORTS_BUSY_RETRY_DELAY_MS). */
  busyRetryDelayMs?: number;
  /** How long a SITE PROBE/PASV reply may take while the server queues it (default Limits.CHECK_PORTS_BUSY_REPLY_MS). */
  busyReplyMs?: number;
  /**
   * HTTP(S) listeners of the server to check too (`serve --http/--https`): for each, a TCP
   * connect and a real exchange (`HEAD /`, any HTTP status line counts; for HTTPS after a TLS
   * handshake with `httpsTls`).
   */
  web?: { http: number | null; https: number | null };
  /** TLS options for the HTTPS check (CA, verification). Default: verify against the system CAs. */
  httpsTls?: ConnectionOptions;
  logger?: Logger;
  /** Called as each port gets its (possibly provisional, if busy) result. */
  onResult?: (result: PortResult) => void;
}

export type ControlStatus = 'open' | 'filtered' | 'rejected' | 'no-greeting';

export interface ControlReport {
  port: number;
  /** The address connected to (resolved from --host). */
  address: string;
  status: ControlStatus;
  /** TCP connect time (about one round trip). */
  connectMs: number | null;
  /** The smallest of a few NOOP round trips on the control connection. */
  rttMs: number | null;
  tls: boolean;
  error?: string;
}

/** open: an HTTP status line came back; no-http: the port answered but not with HTTP; tls-failed: no TLS handshake. */
export type WebStatus = 'open' | 'filtered' | 'rejected' | 'tls-failed' | 'no-http';

/** One HTTP(S) port of the server, checked from the client side. */
export interface WebPortReport {
  protocol: 'http' | 'https';
  port: number;
  status: WebStatus;
  connectMs: number | null;
  /** The status line the server sent to `HEAD /` (e.g. `HTTP/1.1 401 Unauthorized`), or null. */
  statusLine: string | null;
  error?: string;
}

export interface CheckPortsReport {
  host: string;
  control: ControlReport;
  ports: PortResult[];
  /** The HTTP(S) ports, when the server has them (empty otherwise). */
  web: WebPortReport[];
  verdict: Verdict;
}

/** Bytes of a reply read while looking for its status line. */
const WEB_STATUS_LINE_MAX_BYTES = 1024;

/**
 * Checks one HTTP(S) port: TCP connect, TLS handshake for HTTPS, then `HEAD /` (RFC 9110 §9.3.2)
 * and the status line of whatever comes back: any status (401 included) proves the port passes.
 */
export async function checkWebPort(
  host: string,
  port: number,
  protocol: 'http' | 'https',
  timeoutMs: number,
  tls: ConnectionOptions = {},
): Promise<WebPortReport> {
  const connected = await connectTcp(host, port, timeoutMs);
  const report: WebPortReport = { protocol, port, status: 'open', connectMs: round(connected.ms), statusLine: null };
  if (!connected.socket) {
    report.status = connected.outcome === 'reset' || connected.outcome === 'unreachable' ? 'rejected' : 'filtered';
    report.error = connected.outcome === 'timeout' ? `connect timed out after ${timeoutMs / 1000} s` : `connect failed (${connected.error})`;
    return report;
  }
  let socket = connected.socket;
  try {
    if (protocol === 'https') {
      try {
        socket = await secureSocket(socket, { minVersion: 'TLSv1.2', ...(isIP(host) ? {} : { servername: host }), ...tls }, timeoutMs);
      } catch (err) {
        report.status = 'tls-failed';
        report.error = (err as Error).message;
        return report;
      }
    }
    const reply = readStatusLine(socket, timeoutMs);
    socket.write(`HEAD / HTTP/1.1\r\nHost: ${isIP(host) === 6 ? `[${host}]` : host}:${port}\r\nUser-Agent: swfw-check-ports\r\nConnection: close\r\n\r\n`);
    const { line: firstLine, error } = await reply;
    if (/^HTTP\/1\.[01] \d{3}\b/.test(firstLine)) report.statusLine = firstLine;
    else {
      report.status = 'no-http';
      report.error = firstLine ? `not an HTTP reply: ${firstLine.slice(0, 80)}` : (error ?? 'closed without a reply');
    }
    return report;
  } finally {
    socket.destroy();
  }
}

/**
 * The first line a server sends (up to WEB_STATUS_LINE_MAX_BYTES), as soon as it is complete: a
 * server that greets and then waits (FTP's 220) is judged by that line, not by a timeout.
 */
function readStatusLine(socket: Socket, timeoutMs: number): Promise<{ line: string; error: string | null }> {
  return new Promise((resolve) => {
    let text = '';
    const finish = (error: string | null) => {
      clearTimeout(timer);
      socket.removeListener('data', onData);
      socket.removeListener('close', onClose);
      resolve({ line: text.split('\r\n')[0]!.slice(0, WEB_STATUS_LINE_MAX_BYTES), error });
    };
    const onData = (chunk: Buffer) => {
      text += chunk.toString('latin1');
      if (text.includes('\r\n') || text.length >= WEB_STATUS_LINE_MAX_BYTES) finish(null);
    };
    const onClose = () => finish(text ? null : 'closed without a reply');
    const timer = setTimeout(() => finish(`no reply within ${timeoutMs} ms`), timeoutMs);
    socket.on('data', onData);
    socket.once('close', onClose);
  });
}

/** The FTP verdict, failed by any HTTP(S) port that is not open (filtered or rejected ones are to open). */
export function withWebVerdict(verdict: Verdict, web: readonly WebPortReport[], host: string): Verdict {
  const bad = web.filter((w) => w.status !== 'open');
  if (bad.length === 0) return verdict;
  const toOpen = bad.filter((w) => w.status === 'filtered' || w.status === 'rejected').map((w) => w.port);
  const portsToOpen = [...new Set([...verdict.portsToOpen, ...toOpen])].sort((a, b) => a - b);
  const notes = [...verdict.notes, ...bad.map((w) => `${w.protocol} ${w.port} ${w.status}: ${w.error ?? ''}`.trim())];
  const line = portsToOpen.length
    ? `verdict: FAIL: open TCP ${portsToOpen.join(', ')} to ${host} (from the switches' subnet)`
    : `verdict: FAIL: ${bad.map((w) => `${w.protocol} ${w.port}`).join(', ')} not proven to serve HTTP (see notes)`;
  return { ok: false, portsToOpen, line, notes };
}

/** The control port could not be reached: connect failed or no 220 greeting in time. */
export class ControlUnreachableError extends Error {
  constructor(readonly control: ControlReport) {
    super(
      `control port ${control.address || '?'}:${control.port} is not reachable: ${control.error ?? control.status}` +
        (control.status === 'filtered' ? ' (dropped by a firewall, or the host is down)' : ''),
    );
    this.name = 'ControlUnreachableError';
  }
}

/** The server was reached but cannot run the check (login refused, no SITE PROBE, range mismatch). */
export class CheckPortsError extends Error {
  constructor(
    message: string,
    /** True when the invocation must change (credentials, --pasv-range): the CLI exits 2. */
    readonly usage = false,
  ) {
    super(message);
    this.name = 'CheckPortsError';
  }
}

const round = (ms: number) => Math.round(ms * 1000) / 1000;

class ProbeSession {
  /** Set when the control channel may be out of step (a timeout mid-command): reconnect. */
  dirty = false;
  constructor(
    readonly control: ControlChannel,
    readonly address: string,
  ) {}
}

export class PortChecker {
  private session: ProbeSession | null = null;
  private readonly logger: Logger;
  private readonly busyReplyMs: number;
  private controlReport: ControlReport;

  constructor(private readonly options: CheckPortsOptions) {
    this.logger = options.logger ?? silentLogger;
    this.busyReplyMs = Math.max(options.busyReplyMs ?? Limits.CHECK_PORTS_BUSY_REPLY_MS, options.timeoutMs);
    this.controlReport = { port: options.controlPort, address: '', status: 'open', connectMs: null, rttMs: null, tls: options.tls !== null };
  }

  /** Runs the whole check. Throws ControlUnreachableError or CheckPortsError when it cannot. */
  async run(): Promise<CheckPortsReport> {
    const { pasvRange, host, controlPort } = this.options;
    try {
      this.session = await this.openSession(true);
      this.controlReport.rttMs = await this.measureRtt(this.session);
      const results = new Map<number, PortResult>();
      const evidence = new Map<number, PortEvidence>();
      const test = async (port: number) => {
        const found = await this.testPort(port);
        evidence.set(port, found);
        const result = classifyPort(found, this.options.timeoutMs);
        results.set(port, result);
        this.options.onResult?.(result);
      };
      for (let port = pasvRange.min; port <= pasvRange.max; port++) await test(port);
      const retries = this.options.busyRetries ?? Limits.CHECK_PORTS_BUSY_RETRIES;
      for (let attempt = 1; attempt <= retries; attempt++) {
        const busy = [...evidence.values()].filter((e) => e.probe === 'busy').map((e) => e.port);
        if (busy.length === 0) break;
        this.logger.info('retrying ports that were busy with another session', { ports: busy, attempt });
        await delay(this.options.busyRetryDelayMs ?? Limits.CHECK_PORTS_BUSY_RETRY_DELAY_MS);
        for (const port of busy) await test(port);
      }
      const ports = [...results.values()].sort((a, b) => a.port - b.port);
      const web: WebPortReport[] = [];
      for (const protocol of ['http', 'https'] as const) {
        const port = this.options.web?.[protocol];
        if (port === null || port === undefined) continue;
        web.push(await checkWebPort(host, port, protocol, this.options.timeoutMs, this.options.httpsTls));
      }
      const ftpVerdict = verdictOf(ports, host, controlPort);
      let verdict = withWebVerdict(ftpVerdict, web, host);
      if (verdict.ok && web.length) verdict = { ...verdict, line: `${verdict.line}, and ${web.map((w) => `${w.protocol.toUpperCase()} ${w.port}`).join(' and ')} answer` };
      return { host, control: { ...this.controlReport }, ports, web, verdict };
    } finally {
      await this.closeSession();
    }
  }

  private async openSession(first: boolean): Promise<ProbeSession> {
    const { host, controlPort, timeoutMs, tls } = this.options;
    const connected = await connectTcp(host, controlPort, timeoutMs);
    if (first) this.controlReport.connectMs = round(connected.ms);
    if (!connected.socket) {
      const status: ControlStatus = connected.outcome === 'timeout' ? 'filtered' : connected.outcome === 'reset' || connected.outcome === 'unreachable' ? 'rejected' : 'filtered';
      const error = connected.outcome === 'timeout' ? `connect timed out after ${timeoutMs / 1000} s` : `connect failed (${connected.error})`;
      throw new ControlUnreachableError({ ...this.controlReport, address: this.controlReport.address || host, status, error });
    }
    const control = new ControlChannel(connected.socket);
    const address = canonicalAddress(control.remoteAddress);
    if (first) this.controlReport.address = address;
    try {
      let greeting: FtpReply;
      try {
        greeting = await control.read(timeoutMs);
      } catch (err) {
        throw new ControlUnreachableError({ ...this.controlReport, status: 'no-greeting', error: `no FTP greeting: ${(err as Error).message}` });
      }
      if (greeting.code !== ReplyCode.SERVICE_READY) {
        throw new ControlUnreachableError({ ...this.controlReport, status: 'no-greeting', error: `the server answered "${greeting.text}" instead of 220` });
      }
      if (tls) {
        const auth = await control.send('AUTH TLS', timeoutMs);
        if (auth.code !== ReplyCode.SECURITY_EXCHANGE_OK) throw new CheckPortsError(`the server refused AUTH TLS: ${auth.text}`);
        await control.upgradeToTls({ ...tls, ...(isIP(host) ? {} : { servername: host }) }, timeoutMs).catch((err: Error) => {
          throw new CheckPortsError(`TLS on the control connection failed: ${err.message}`);
        });
      }
      await this.login(control);
      if (tls) {
        await this.expect(control, 'PBSZ 0', ReplyCode.COMMAND_OK);
        await this.expect(control, 'PROT P', ReplyCode.COMMAND_OK);
      }
      return new ProbeSession(control, address);
    } catch (err) {
      control.close();
      if (err instanceof ControlError) throw new CheckPortsError(`control connection failed: ${err.message}`);
      throw err;
    }
  }

  private async login(control: ControlChannel): Promise<void> {
    const { user, password, timeoutMs } = this.options;
    let reply = await control.send(`USER ${user}`, timeoutMs);
    if (reply.code === ReplyCode.NEED_PASSWORD) {
      // A failed login is answered after >= 1 s on purpose (swfw serve, vsftpd): allow for it.
      reply = await control.send(`PASS ${password}`, timeoutMs + Limits.FAILED_LOGIN_DELAY_MS);
    }
    if (reply.code !== ReplyCode.LOGGED_IN) {
      const hint = /^(anonymous|ftp)$/i.test(user) ? 'set SWFW_PASSWORD (and --user) to log in with an account' : 'the password comes from SWFW_PASSWORD';
      throw new CheckPortsError(`login as "${user}" refused: ${reply.text} (${hint})`, true);
    }
  }

  private async expect(control: ControlChannel, command: string, code: number): Promise<FtpReply> {
    const reply = await control.send(command, this.options.timeoutMs);
    if (reply.code !== code) throw new CheckPortsError(`${command.split(' ')[0]} refused: ${reply.text}`);
    return reply;
  }

  private async measureRtt(session: ProbeSession): Promise<number> {
    let best = Infinity;
    for (let i = 0; i < Limits.CHECK_PORTS_RTT_SAMPLES; i++) {
      const started = performance.now();
      await session.control.send('NOOP', this.options.timeoutMs);
      best = Math.min(best, performance.now() - started);
    }
    return round(best);
  }

  private async currentSession(): Promise<ProbeSession> {
    if (this.session && !this.session.dirty) return this.session;
    await this.closeSession();
    try {
      this.session = await this.openSession(false);
    } catch (err) {
      if (err instanceof ControlUnreachableError) throw new CheckPortsError(`lost the control port mid-check: ${err.message}`);
      throw err;
    }
    return this.session;
  }

  private async closeSession(): Promise<void> {
    const session = this.session;
    this.session = null;
    if (!session) return;
    if (session.dirty) session.control.close();
    else await session.control.quit(this.options.timeoutMs);
  }

  /** Sends a command whose reply may be queued behind another session's reservation. */
  private async sendWaiting(session: ProbeSession, command: string): Promise<FtpReply> {
    try {
      return await session.control.send(command, this.busyReplyMs);
    } catch (err) {
      session.dirty = true;
      throw new CheckPortsError(`${command}: ${(err as Error).message}`);
    }
  }

  private async testPort(port: number): Promise<PortEvidence> {
    const session = await this.currentSession();
    const expectedAddress = this.options.expectAddress ?? session.address;
    const evidence: PortEvidence = { port, expectedAddress, probe: 'busy', direct: null, pasv: null };
    const probe = await this.sendWaiting(session, `SITE PROBE ${port}`);
    const refusal = this.probeRefusal(probe, port);
    if (refusal) {
      evidence.probe = refusal;
      return evidence;
    }
    evidence.probe = 'reserved';
    evidence.direct = await this.transfer(session, port);
    this.logger.debug('direct probe', { port, ...evidence.direct });

    const pasvSession = await this.currentSession();
    const pin = await pasvSession.control.send(`SITE PIN ${port}`, this.options.timeoutMs).catch((err: Error) => {
      pasvSession.dirty = true;
      throw new CheckPortsError(`SITE PIN ${port}: ${err.message}`);
    });
    if (pin.code !== ReplyCode.COMMAND_OK) throw new CheckPortsError(`the server refused SITE PIN ${port}: ${pin.text}`);
    const ipv6 = isIP(pasvSession.address) === 6;
    // PASV is what switches send and what helpers rewrite; over IPv6 only EPSV exists (RFC 2428).
    const reply = await this.sendWaiting(pasvSession, ipv6 ? 'EPSV' : 'PASV');
    const refusedPasv = this.probeRefusal(reply, port, ipv6 ? ReplyCode.ENTERING_EXTENDED_PASSIVE : ReplyCode.ENTERING_PASSIVE);
    if (refusedPasv) {
      // The direct result stands only if it already proved the port open; otherwise retry later.
      if (!evidence.direct.transferred) evidence.probe = refusedPasv;
      return evidence;
    }
    // A 229 names only the port: the address is the control connection's peer (RFC 2428 §3).
    const epsvPort = ipv6 ? parseEpsvReply(reply.text) : null;
    const parsed = ipv6 ? epsvPort && { address: pasvSession.address, port: epsvPort } : parsePasvReply(reply.text);
    if (!parsed) {
      pasvSession.dirty = true;
      throw new CheckPortsError(`cannot parse the passive reply "${reply.text}"`);
    }
    const attempt = await this.transfer(pasvSession, port);
    evidence.pasv = { ...attempt, replyAddress: parsed.address, replyPort: parsed.port } satisfies PasvAttempt;
    this.logger.debug('pasv path', { port, ...evidence.pasv });
    return evidence;
  }

  /** null when the port was reserved; otherwise why not. Anything unexpected stops the check. */
  private probeRefusal(reply: FtpReply, port: number, okCode: number = ReplyCode.COMMAND_OK): 'busy' | 'held' | null {
    if (reply.code === okCode) return null;
    if (reply.code === ReplyCode.CANT_OPEN_DATA_CONNECTION) return /another process/i.test(reply.text) ? 'held' : 'busy';
    if (reply.code === ReplyCode.SYNTAX_ERROR_IN_ARGUMENTS) {
      throw new CheckPortsError(`the server refused port ${port}: ${reply.text} (check --pasv-range against the server's)`, true);
    }
    if (reply.code === ReplyCode.FILE_UNAVAILABLE || reply.code === ReplyCode.SYNTAX_ERROR || reply.code === ReplyCode.NOT_IMPLEMENTED) {
      throw new CheckPortsError(`the server does not support SITE PROBE/PIN (${reply.text}): check-ports needs swfw serve or swfw check-ports --listen on the server`);
    }
    throw new CheckPortsError(`unexpected reply to the probe of port ${port}: ${reply.text}`);
  }

  /**
   * One data path: connect to the reserved port, then NLST through it. A connect failure frees the
   * reservation with ABOR; anything that leaves the control channel out of step marks the session
   * dirty so the next step reconnects.
   */
  private async transfer(session: ProbeSession, port: number): Promise<DataAttempt> {
    const { timeoutMs, tls } = this.options;
    const connected = await connectTcp(session.address, port, timeoutMs);
    if (!connected.socket) {
      const abor = await session.control.send('ABOR', timeoutMs).catch(() => null);
      if (!abor) session.dirty = true;
      return { connect: connected.outcome, transferred: false, error: connected.error };
    }
    let socket = connected.socket;
    try {
      if (tls) socket = await secureSocket(socket, tls, timeoutMs);
      const data = readToEnd(socket, timeoutMs * 2);
      data.catch(() => {});
      const opening = await session.control.send('NLST', timeoutMs);
      if (opening.code !== ReplyCode.FILE_STATUS_OK_OPENING_DATA && opening.code !== 125) {
        socket.destroy();
        return { connect: 'connected', transferred: false, error: `NLST got ${opening.text}` };
      }
      const [final] = await Promise.all([session.control.read(timeoutMs * 2), data]);
      if (final.code !== ReplyCode.TRANSFER_COMPLETE) return { connect: 'connected', transferred: false, error: `NLST ended with ${final.text}` };
      return { connect: 'connected', transferred: true, error: '' };
    } catch (err) {
      socket.destroy();
      session.dirty = true;
      return { connect: 'connected', transferred: false, error: (err as Error).message };
    }
  }
}


function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Runs check-ports once (see PortChecker). */
export function checkPorts(options: CheckPortsOptions): Promise<CheckPortsReport> {
  return new PortChecker(options).run();
}
