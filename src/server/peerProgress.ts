/**
 * How many bytes of a data connection the peer has acknowledged: the only honest measure of a
 * slow reader's progress. A write's callback fires when the kernel took the whole chunk, and the
 * kernel's send buffer on Linux grows to megabytes: a switch reading 30 KB/s frees enough of it to
 * wake the writer only every minute or so, so a stall timer refreshed by write callbacks cut
 * steady slow readers with 426 (seen with a 16 KiB receive window at 30 KB/s: cut after 20 s).
 *
 * Linux counts, per socket, the bytes written but not yet acknowledged (`tx_queue` in
 * /proc/net/tcp and tcp6, RFC 793's SND.NXT-ish minus SND.UNA). Bytes libuv handed to the kernel
 * minus that queue is what the peer acknowledged. Node has no getsockopt(TCP_INFO) or ioctl, so the
 * table is read, once per poll for every transfer that asks (SHARED_READ_MS), and only for
 * transfers whose writes have been quiet: a healthy transfer never reads it.
 *
 * Elsewhere (or for a TLS data connection, whose descriptor is not the TCP socket's), there is no
 * probe and the caller falls back to write callbacks.
 */
import { readFileSync, readlinkSync } from 'node:fs';
import type { Socket } from 'node:net';

/** One read of the socket tables serves every transfer that asks within this long. */
const SHARED_READ_MS = 500;
const TABLES = ['/proc/net/tcp', '/proc/net/tcp6'];

let cache: { at: number; txQueues: Map<string, number> } | null = null;

/** inode → bytes not yet acknowledged, for every TCP socket of this network namespace. */
function txQueues(now: number): Map<string, number> {
  if (cache && now - cache.at < SHARED_READ_MS) return cache.txQueues;
  const queues = new Map<string, number>();
  for (const table of TABLES) {
    let text: string;
    try {
      text = readFileSync(table, 'latin1');
    } catch {
      continue;
    }
    // "  sl  local_address rem_address   st tx_queue:rx_queue tr:tm->when retrnsmt   uid  timeout inode"
    for (const line of text.split('\n').slice(1)) {
      const cols = line.trim().split(/\s+/);
      if (cols.length < 10) continue;
      queues.set(cols[9]!, parseInt(cols[4]!.split(':')[0]!, 16));
    }
  }
  cache = { at: now, txQueues: queues };
  return queues;
}

/** The Node internals this reads (stable since Node 12; absent on a TLS socket's wrapper). */
interface SocketInternals {
  _bytesDispatched?: number;
  _handle?: { fd?: number; writeQueueSize?: number } | null;
}

/**
 * A function giving the bytes of `socket` the peer has acknowledged so far (monotonic), or null
 * when this platform or socket offers no such count.
 */
export function ackedBytesProbe(socket: Socket): (() => number | null) | null {
  const internals = socket as unknown as SocketInternals;
  const fd = internals._handle?.fd;
  if (process.platform !== 'linux' || typeof fd !== 'number' || fd < 0 || typeof internals._bytesDispatched !== 'number') return null;
  let inode: string | null = null;
  try {
    inode = readlinkSync(`/proc/self/fd/${fd}`).match(/^socket:\[(\d+)\]$/)?.[1] ?? null;
  } catch {
    return null;
  }
  if (inode === null) return null;
  const id = inode;
  return () => {
    const queued = txQueues(Date.now()).get(id);
    const handle = internals._handle;
    if (queued === undefined || !handle) return null;
    // libuv's write queue holds what the kernel has not taken yet.
    const inKernel = internals._bytesDispatched! - (handle.writeQueueSize ?? 0);
    return Math.max(0, inKernel - queued);
  };
}
