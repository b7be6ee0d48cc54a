/**
 * Pure classification for `swfw check-ports`: what one port's evidence means, and the verdict.
 * No sockets here, so every rule is unit-tested (test/unit/checkPortsClassify.test.ts).
 */
import { canonicalAddress } from '../core/address.js';

/** What a TCP connect attempt ended with, as seen from the switch's side. */
export type ConnectOutcome =
  /** The three-way handshake completed. */
  | 'connected'
  /** No answer within the step timeout: a firewall dropped the SYN (or the host is down). */
  | 'timeout'
  /** A TCP reset (ECONNREFUSED / ECONNRESET): REJECT --reject-with tcp-reset, or no listener. */
  | 'reset'
  /** An ICMP error (host/net unreachable, administratively prohibited): REJECT with ICMP. */
  | 'unreachable'
  /** Anything else (local errors); the message says what. */
  | 'error';

/**
 * The status of one port.
 * - `open`: a transfer through the port works without help from an FTP helper.
 * - `filtered`: connecting timed out: the firewall drops the traffic.
 * - `rejected`: a reset or ICMP error came back while the server had a listener on the port.
 * - `helper-only`: the direct probe fails, but the same port works after a plaintext 227 reply:
 *   the firewall's FTP helper (nf_conntrack_ftp, an ALG) opens it. FTPS will break it.
 * - `rewritten`: a NAT/ALG changed the address or port inside the 227 reply.
 * - `busy`: the port could not be tested: another session kept it reserved through every retry,
 *   or another process holds it on the server.
 */
export type PortStatus = 'open' | 'filtered' | 'rejected' | 'helper-only' | 'rewritten' | 'busy';

export const PORT_STATUSES: readonly PortStatus[] = ['open', 'filtered', 'rejected', 'helper-only', 'rewritten', 'busy'];

/** Maps a socket error code to an outcome. Linux reports an ICMP port-unreachable for TCP as ECONNREFUSED. */
export function connectOutcomeOf(code: string | undefined): ConnectOutcome {
  switch (code) {
    case 'ECONNREFUSED':
    case 'ECONNRESET':
      return 'reset';
    case 'EHOSTUNREACH':
    case 'ENETUNREACH':
    case 'EHOSTDOWN':
    case 'ENONET':
    case 'EPERM':
    case 'EACCES':
      return 'unreachable';
    case 'ETIMEDOUT':
      return 'timeout';
    default:
      return 'error';
  }
}

/** One data path attempt: the connect, then (when connected) the transfer over it. */
export interface DataAttempt {
  connect: ConnectOutcome;
  /** True when the listing arrived and the server answered 226. */
  transferred: boolean;
  /** Why it failed, for people (empty when it worked). */
  error: string;
}

/** The PASV path: PIN + PASV, the plaintext 227 an FTP helper reads, then a transfer to it. */
export interface PasvAttempt extends DataAttempt {
  /** Address and port carried by the 227 reply as it arrived here (after any NAT/ALG). */
  replyAddress: string;
  replyPort: number;
}

/** Everything learned about one port. */
export interface PortEvidence {
  port: number;
  /** The address the control connection goes to: the one a 227 reply should carry. */
  expectedAddress: string;
  /** What SITE PROBE got: the port reserved, busy with another session, or held by another process. */
  probe: 'reserved' | 'busy' | 'held';
  /** The direct connection to the probe listener (null unless reserved). */
  direct: DataAttempt | null;
  /** The PASV path (null when it was not reached). */
  pasv: PasvAttempt | null;
}

export interface PortResult {
  port: number;
  status: PortStatus;
  /** One line for people: why this status. */
  detail: string;
  direct: DataAttempt | null;
  pasv: PasvAttempt | null;
}

function describeFailure(attempt: DataAttempt, timeoutMs: number): string {
  switch (attempt.connect) {
    case 'timeout':
      return `connect timed out after ${formatSeconds(timeoutMs)} (dropped)`;
    case 'reset':
      return 'connection reset while the server was listening (REJECT with tcp-reset)';
    case 'unreachable':
      return `ICMP error while the server was listening (${attempt.error || 'unreachable'})`;
    case 'error':
      return `connect failed: ${attempt.error}`;
    case 'connected':
      return `connected, but the transfer failed: ${attempt.error}`;
  }
}

export function formatSeconds(ms: number): string {
  return `${Number((ms / 1000).toFixed(3))} s`;
}

function rewriteOf(evidence: PortEvidence): string | null {
  const pasv = evidence.pasv;
  if (!pasv) return null;
  const addressChanged = canonicalAddress(pasv.replyAddress) !== canonicalAddress(evidence.expectedAddress);
  if (!addressChanged && pasv.replyPort === evidence.port) return null;
  return `the 227 reply carried ${pasv.replyAddress}:${pasv.replyPort} but the server is ${evidence.expectedAddress}:${evidence.port}`;
}

/**
 * Classifies one port. The order matters:
 * 1. not testable (busy / held by another process) → `busy`;
 * 2. the direct probe (no helper can have opened it: the SITE PROBE reply is no 227) worked →
 *    `rewritten` if the 227 of the PASV path was changed on the way, else `open`;
 * 3. the direct probe failed but the PASV path worked → `helper-only` (the helper read the 227);
 * 4. otherwise the direct failure decides: a timeout is `filtered`, a reset or ICMP error is
 *    `rejected` (the server had a listener, so something in between answered).
 *    A connection that opened but carried no transfer counts as `filtered`.
 */
export function classifyPort(evidence: PortEvidence, timeoutMs: number): PortResult {
  const base = { port: evidence.port, direct: evidence.direct, pasv: evidence.pasv };
  if (evidence.probe === 'busy') {
    return { ...base, status: 'busy', detail: 'reserved by another session through every retry; run again later' };
  }
  if (evidence.probe === 'held' || !evidence.direct) {
    return { ...base, status: 'busy', detail: 'held by another process on the server: swfw could not listen on it' };
  }
  const direct = evidence.direct;
  const rewrite = rewriteOf(evidence);
  if (direct.transferred) {
    if (rewrite) return { ...base, status: 'rewritten', detail: `${rewrite}: a NAT or FTP ALG rewrites PASV replies` };
    return { ...base, status: 'open', detail: 'a transfer through the port works' };
  }
  if (evidence.pasv?.transferred) {
    const note = rewrite ? `; also ${rewrite}` : '';
    return {
      ...base,
      status: 'helper-only',
      detail: `passes only after a plaintext 227 (FTP helper); direct: ${describeFailure(direct, timeoutMs)}${note}`,
    };
  }
  const status: PortStatus = direct.connect === 'reset' || direct.connect === 'unreachable' ? 'rejected' : 'filtered';
  return { ...base, status, detail: describeFailure(direct, timeoutMs) };
}

/** The fix, computed from the results: what to open, and what else to do. */
export interface Verdict {
  ok: boolean;
  /** Ports to open in the firewall (filtered, rejected, helper-only), ascending. */
  portsToOpen: number[];
  /** One line for people. */
  line: string;
  /** Extra advice lines (helper/FTPS, ALG rewriting, busy ports). */
  notes: string[];
}

/** Compresses a sorted port list: 63006,63007,63008,63010 → "63006-63008,63010". */
export function formatPortList(ports: readonly number[]): string {
  const sorted = [...ports].sort((a, b) => a - b);
  const parts: string[] = [];
  for (let i = 0; i < sorted.length; ) {
    let j = i;
    while (j + 1 < sorted.length && sorted[j + 1] === sorted[j]! + 1) j++;
    parts.push(j === i ? String(sorted[i]) : `${sorted[i]}-${sorted[j]}`);
    i = j + 1;
  }
  return parts.join(',');
}

export const HELPER_FTPS_NOTE =
  'The firewall FTP helper (nf_conntrack_ftp, or an ALG or "inspect ftp" fixup) opens passive ports by reading plaintext 227 replies. ' +
  'It cannot read FTPS (AUTH TLS) control traffic, so ports that pass only through it break the day FTPS is switched on: open them explicitly.';

export function verdictOf(results: readonly PortResult[], host: string, controlPort: number): Verdict {
  const of = (status: PortStatus) => results.filter((r) => r.status === status).map((r) => r.port);
  const portsToOpen = results
    .filter((r) => r.status === 'filtered' || r.status === 'rejected' || r.status === 'helper-only')
    .map((r) => r.port)
    .sort((a, b) => a - b);
  const notes: string[] = [];
  const helperOnly = of('helper-only');
  if (helperOnly.length) notes.push(`helper-only ${formatPortList(helperOnly)}: ${HELPER_FTPS_NOTE}`);
  const rewritten = of('rewritten');
  if (rewritten.length) {
    notes.push(
      `rewritten ${formatPortList(rewritten)}: a NAT or FTP ALG changes the address in PASV replies; switches would connect elsewhere. ` +
        'Turn off the ALG\'s FTP rewriting, or set the server\'s pasvAddress to the address switches reach it by.',
    );
  }
  const busy = of('busy');
  if (busy.length) notes.push(`busy ${formatPortList(busy)}: not tested (reserved by a running session or held by another process); run check-ports again.`);
  const ok = results.length > 0 && results.every((r) => r.status === 'open');
  let line: string;
  if (ok) line = `verdict: OK: control port ${controlPort} and all ${results.length} passive ports pass`;
  else if (portsToOpen.length) {
    line = `verdict: FAIL: open TCP ${formatPortList(portsToOpen)} to ${host} (from the switches' subnet); \`swfw firewall rules --source SUBNET\` prints the rules`;
  } else line = `verdict: FAIL: ${results.length - of('open').length} port(s) not proven open (see notes)`;
  return { ok, portsToOpen, line, notes };
}
