/**
 * The emulated switch's own FTP client: what `copy ftp://…` does inside a switch. It binds every
 * connection to the switch's source address (127.0.1.x), so the server sees each switch as a
 * distinct host and one-time credentials (bound to that address) work. src/client's pull cannot
 * bind a local address yet (see the README's rollout notes), so this small client stands in.
 *
 * PASV only (RFC 959 §4.1.2), binary, one RETR, no resume: like a switch's copy command.
 * Faults are applied here: a slow link (bytes/s), a cut after N bytes.
 */
import { connect, type Socket } from 'node:net';
import type { Writable } from 'node:stream';

export interface SwitchFtpOptions {
  host: string;
  port: number;
  user: string;
  password: string;
  path: string;
  localAddress: string;
  /** Bytes written here as they arrive. */
  sink: Writable;
  timeoutMs: number;
  bytesPerSecond?: number | null;
  cutAfterBytes?: number | null;
  /** Called with the byte count; returning a message aborts ("No space left on device"). */
  onBytes?: (bytes: number) => string | null;
  signal?: AbortSignal;
  /**
   * Called once the data connection is up: the port the 227 reply named and the port the socket
   * actually reached on the server (its TCP peer), so tests can check the passive range from the
   * switch's side of the wire.
   */
  onDataConnection?: (ports: { pasvPort: number; serverPort: number }) => void;
}

export class SwitchFtpError extends Error {
  constructor(
    message: string,
    readonly stage: 'open' | 'read' | 'write',
  ) {
    super(message);
    this.name = 'SwitchFtpError';
  }
}

interface Reply {
  code: number;
  text: string;
}

class ControlLine {
  private buffer = '';
  private replies: Reply[] = [];
  private waiting: ((reply: Reply) => void) | null = null;
  private failure: Error | null = null;
  private failWaiter: ((err: Error) => void) | null = null;

  constructor(readonly socket: Socket) {
    socket.setEncoding('utf8');
    socket.on('data', (text: string) => this.onData(text));
    const fail = (err: Error) => {
      this.failure ??= err;
      this.failWaiter?.(this.failure);
    };
    socket.on('error', fail);
    socket.on('close', () => fail(new Error('control connection closed')));
  }

  private onData(text: string): void {
    this.buffer += text;
    // Multi-line replies (RFC 959 §4.2): "123-…" lines until "123 …".
    for (;;) {
      const match = this.buffer.match(/^(\d{3}) [^\r\n]*\r?\n/m);
      if (!match || match.index === undefined) return;
      const end = match.index + match[0].length;
      const whole = this.buffer.slice(0, end);
      this.buffer = this.buffer.slice(end);
      const reply = { code: Number(match[1]), text: whole.trim() };
      if (this.waiting) {
        const resolve = this.waiting;
        this.waiting = null;
        resolve(reply);
      } else this.replies.push(reply);
    }
  }

  read(timeoutMs: number): Promise<Reply> {
    const queued = this.replies.shift();
    if (queued) return Promise.resolve(queued);
    if (this.failure) return Promise.reject(this.failure);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('timed out waiting for the server')), timeoutMs);
      this.waiting = (reply) => {
        clearTimeout(timer);
        this.failWaiter = null;
        resolve(reply);
      };
      this.failWaiter = (err) => {
        clearTimeout(timer);
        this.waiting = null;
        reject(err);
      };
    });
  }

  async send(command: string, timeoutMs: number): Promise<Reply> {
    this.socket.write(`${command}\r\n`);
    return this.read(timeoutMs);
  }
}

function openSocket(host: string, port: number, localAddress: string, timeoutMs: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host, port, localAddress });
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`connect to ${host}:${port} timed out`));
    }, timeoutMs);
    socket.once('connect', () => {
      clearTimeout(timer);
      socket.removeAllListeners('error');
      resolve(socket);
    });
    socket.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
  });
}

/** Pulls one file; resolves with the byte count once the data ended and 226 arrived. */
export async function switchFtpRetrieve(o: SwitchFtpOptions): Promise<{ bytes: number; size: number | null }> {
  let control: ControlLine | null = null;
  let data: Socket | null = null;
  const onAbort = () => {
    data?.destroy();
    control?.socket.destroy();
  };
  o.signal?.addEventListener('abort', onAbort);
  try {
    try {
      control = new ControlLine(await openSocket(o.host, o.port, o.localAddress, o.timeoutMs));
    } catch (err) {
      throw new SwitchFtpError(`Connection refused (${(err as Error).message})`, 'open');
    }
    const expect = (reply: Reply, ok: number[], stage: 'open' | 'read') => {
      if (!ok.includes(reply.code)) throw new SwitchFtpError(reply.text.split(/\r?\n/).at(-1)!, stage);
    };
    expect(await control.read(o.timeoutMs), [220], 'open');
    const user = await control.send(`USER ${o.user}`, o.timeoutMs);
    if (user.code === 331) expect(await control.send(`PASS ${o.password}`, o.timeoutMs), [230], 'open');
    else expect(user, [230], 'open');
    expect(await control.send('TYPE I', o.timeoutMs), [200], 'open');
    const sizeReply = await control.send(`SIZE ${o.path}`, o.timeoutMs);
    const size = sizeReply.code === 213 ? Number(sizeReply.text.slice(4)) : null;
    const pasv = await control.send('PASV', o.timeoutMs);
    expect(pasv, [227], 'open');
    const numbers = pasv.text.match(/(\d+),(\d+),(\d+),(\d+),(\d+),(\d+)/);
    if (!numbers) throw new SwitchFtpError('bad PASV reply', 'open');
    const dataPort = Number(numbers[5]) * 256 + Number(numbers[6]);
    // The data connection goes to the control peer, whatever the reply names (RFC 2577 §3).
    data = await openSocket(o.host, dataPort, o.localAddress, o.timeoutMs);
    o.onDataConnection?.({ pasvPort: dataPort, serverPort: data.remotePort ?? -1 });
    const retr = await control.send(`RETR ${o.path}`, o.timeoutMs);
    expect(retr, [125, 150], 'open');
    const bytes = await receive(data, o);
    expect(await control.read(o.timeoutMs), [226, 250], 'read');
    control.socket.write('QUIT\r\n');
    return { bytes, size };
  } catch (err) {
    if (err instanceof SwitchFtpError) throw err;
    throw new SwitchFtpError(o.signal?.aborted ? 'Aborted' : `I/O error (${(err as Error).message})`, 'read');
  } finally {
    o.signal?.removeEventListener('abort', onAbort);
    data?.destroy();
    control?.socket.end();
    control?.socket.destroy();
  }
}

function receive(socket: Socket, o: SwitchFtpOptions): Promise<number> {
  return new Promise((resolve, reject) => {
    let bytes = 0;
    const started = Date.now();
    let throttle: NodeJS.Timeout | null = null;
    let done = false;
    const finish = (err: Error | null) => {
      if (done) return;
      done = true;
      if (throttle) clearTimeout(throttle);
      if (err) {
        socket.destroy();
        reject(err);
      } else resolve(bytes);
    };
    const idle = setInterval(() => {
      if (Date.now() - last > o.timeoutMs) finish(new Error('data connection stalled'));
    }, Math.min(1000, o.timeoutMs));
    let last = Date.now();
    socket.on('data', (chunk: Buffer) => {
      last = Date.now();
      if (done) return;
      let piece = chunk;
      if (o.cutAfterBytes != null && bytes + piece.length >= o.cutAfterBytes) {
        piece = piece.subarray(0, Math.max(0, o.cutAfterBytes - bytes));
        if (piece.length > 0) o.sink.write(piece);
        bytes += piece.length;
        clearInterval(idle);
        return finish(new Error('link cut'));
      }
      o.sink.write(piece);
      bytes += piece.length;
      const refusal = o.onBytes?.(bytes) ?? null;
      if (refusal) {
        clearInterval(idle);
        return finish(new SwitchFtpError(refusal, 'write'));
      }
      if (o.bytesPerSecond) {
        const due = (bytes * 1000) / o.bytesPerSecond - (Date.now() - started);
        if (due > 5) {
          socket.pause();
          throttle = setTimeout(() => {
            throttle = null;
            last = Date.now();
            socket.resume();
          }, due);
        }
      }
    });
    socket.on('end', () => {
      clearInterval(idle);
      finish(null);
    });
    socket.on('error', (err) => {
      clearInterval(idle);
      finish(err);
    });
    socket.on('close', () => {
      clearInterval(idle);
      finish(done ? null : new Error('data connection closed'));
    });
  });
}
