/**
 * The one module that imports ssh2: the SSH client drivers use to talk to switches, and the SSH
 * server the switch emulator answers with. Everything else sees SshConnection and SshCliServer.
 *
 * Commands run on `exec` channels (one channel per command, as `ssh switch "show version"` does);
 * interactive prompts (Cisco's `Destination filename [x]?`) are answered by writing to the
 * channel's stdin when the output matches.
 */
import { generateKeyPairSync } from 'node:crypto';
import type { Socket } from 'node:net';
import ssh2 from 'ssh2';
import type { ClientChannel, Connection, ServerChannel } from 'ssh2';
import { SwitchConnectError } from './driver.js';
import { fingerprintsEqual, hostKeyFingerprint, type HostKeyCheck } from './hostKey.js';

const { Client, Server, utils } = ssh2;

/** How long a closing connection may wait for the switch's side before the socket is destroyed. */
const CLOSE_GRACE_MS = 1000;

/** Destroys ssh2's raw socket (its own destroy() does nothing once the socket was ended). */
function destroySocket(client: unknown): void {
  (client as { _sock?: Socket })._sock?.destroy();
}

export interface Prompt {
  /** Matched against the output since the last answer. */
  match: RegExp;
  /** Written followed by a newline. */
  answer: string;
}

export interface ExecOptions {
  prompts?: readonly Prompt[];
  timeoutMs: number;
  onOutput?: (chunk: string) => void;
}

export interface ExecResult {
  output: string;
  exitCode: number | null;
}

/** One logged-in SSH connection to a switch. */
export class SshConnection {
  private closed = false;

  private constructor(private readonly client: InstanceType<typeof Client>) {
    client.on('close', () => (this.closed = true));
  }

  /**
   * Connects and logs in. The host key is checked during the key exchange, before the password is
   * sent: a key other than the pinned one ends the connection with a `host-key` SwitchConnectError.
   */
  static connect(options: { host: string; port: number; username: string; password: string; timeoutMs: number; hostKey: HostKeyCheck }): Promise<SshConnection> {
    return new Promise((resolve, reject) => {
      const client = new Client();
      let settled = false;
      let mismatch: string | null = null;
      // ssh2 waits for `verify` before it authenticates: the password is sent only after it.
      const hostVerifier = (rawKey: Buffer, verify: (valid: boolean) => void): void => {
        const seen = hostKeyFingerprint(rawKey);
        if ('pinned' in options.hostKey) {
          if (fingerprintsEqual(seen, options.hostKey.pinned)) return verify(true);
          mismatch = `host key mismatch: expected ${options.hostKey.pinned}, got ${seen}`;
          return verify(false);
        }
        const recorded = (err: unknown) => {
          mismatch = `host key not recorded: ${(err as Error).message}`;
          verify(false);
        };
        try {
          Promise.resolve(options.hostKey.trustOnFirstUse(seen)).then(() => verify(true), recorded);
        } catch (err) {
          recorded(err);
        }
      };
      const fail = (err: SwitchConnectError) => {
        if (settled) return;
        settled = true;
        destroySocket(client);
        reject(err);
      };
      client.on('ready', () => {
        settled = true;
        resolve(new SshConnection(client));
      });
      client.on('error', (err: Error & { level?: string; code?: string }) => {
        const where = `${options.host}:${options.port}`;
        if (mismatch !== null) fail(new SwitchConnectError(`${mismatch} (${where})`, 'host-key'));
        else if (err.level === 'client-authentication') fail(new SwitchConnectError(`${where}: login refused`, 'auth'));
        else if (/timed out/i.test(err.message)) fail(new SwitchConnectError(`${where}: no SSH answer within ${options.timeoutMs} ms`, 'timeout'));
        else if (err.code === 'ECONNREFUSED') fail(new SwitchConnectError(`${where}: connection refused`, 'refused'));
        else fail(new SwitchConnectError(`${where}: ${err.message}`, 'other'));
      });
      client.on('close', () =>
        fail(mismatch !== null ? new SwitchConnectError(`${mismatch} (${options.host}:${options.port})`, 'host-key') : new SwitchConnectError(`${options.host}:${options.port}: connection closed before login`, 'other')),
      );
      client.connect({
        host: options.host,
        port: options.port,
        username: options.username,
        password: options.password,
        readyTimeout: options.timeoutMs,
        tryKeyboard: false,
        hostVerifier,
      });
      // Every command is a few small request/response packets: with Nagle's algorithm each waited
      // for the peer's delayed ACK, about 80 ms per command (OpenSSH sets TCP_NODELAY too).
      client.setNoDelay(true);
    });
  }

  /** Runs one command; answers prompts; resolves when the channel closes. */
  exec(command: string, options: ExecOptions): Promise<ExecResult> {
    return new Promise((resolve, reject) => {
      if (this.closed) return reject(new Error('the SSH connection was closed by the switch'));
      this.client.exec(command, (err: Error | undefined, channel: ClientChannel) => {
        if (err) return reject(err);
        let output = '';
        let sinceAnswer = '';
        const timer = setTimeout(() => {
          channel.close();
          reject(new Error(`no end of output within ${options.timeoutMs} ms`));
        }, options.timeoutMs);
        const onData = (data: Buffer) => {
          const text = data.toString('utf8');
          output += text;
          sinceAnswer += text;
          options.onOutput?.(text);
          for (const prompt of options.prompts ?? []) {
            if (prompt.match.test(sinceAnswer)) {
              sinceAnswer = '';
              channel.write(`${prompt.answer}\n`);
              break;
            }
          }
        };
        channel.on('data', onData);
        channel.stderr.on('data', onData);
        channel.on('close', (code: number | null) => {
          clearTimeout(timer);
          resolve({ output, exitCode: typeof code === 'number' ? code : null });
        });
      });
    });
  }

  close(): Promise<void> {
    if (this.closed) return Promise.resolve();
    return new Promise((resolve) => {
      this.client.once('close', () => resolve());
      this.client.end();
      // ssh2's destroy() skips a socket it already ended: a peer that never closes would keep it.
      const timer = setTimeout(() => destroySocket(this.client), CLOSE_GRACE_MS);
      this.client.once('close', () => clearTimeout(timer));
    });
  }
}

/** What a command handler gets: output, prompts that read one line, and an abort when the channel closes. */
export interface CommandIo {
  write(text: string): void;
  /** Writes `question` and resolves with the next line typed (without its line end). */
  prompt(question: string): Promise<string>;
  /** Aborted when the client goes away mid-command. */
  readonly signal: AbortSignal;
}

export interface SshCliServerOptions {
  host: string;
  port: number;
  hostKey: string;
  /** Counts every login attempt (any method), e.g. to prove a client never sent a password. */
  onAuthAttempt?: (method: string) => void;
  checkLogin(username: string, password: string): boolean;
  /** Runs one command; resolves with its exit status. */
  onCommand(command: string, io: CommandIo): Promise<number>;
}

/** A host key for the emulator (ECDSA P-256, SEC1 PEM: fast to make, read by every SSH client) and its fingerprint. */
export function generateHostKey(): { privateKey: string; fingerprint: string } {
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  const pem = privateKey.export({ type: 'sec1', format: 'pem' }).toString();
  const parsed = utils.parseKey(pem);
  if (parsed instanceof Error) throw parsed;
  const key = Array.isArray(parsed) ? parsed[0]! : parsed;
  return { privateKey: pem, fingerprint: hostKeyFingerprint(key.getPublicSSH()) };
}

/** An SSH server that runs each exec request through `onCommand`. */
export class SshCliServer {
  private readonly server: InstanceType<typeof Server>;
  private readonly clients = new Set<Connection>();
  private readonly running = new Set<AbortController>();

  constructor(private readonly options: SshCliServerOptions) {
    this.server = new Server({ hostKeys: [options.hostKey], ident: 'SSH-2.0-swfw-emulator' }, (client) => this.onClient(client));
  }

  listen(): Promise<number> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(this.options.port, this.options.host, () => {
        this.server.removeListener('error', reject);
        resolve((this.server.address() as { port: number }).port);
      });
    });
  }

  async close(): Promise<void> {
    for (const controller of this.running) controller.abort();
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    for (const client of this.clients) {
      client.end();
      // ssh2 keeps the raw socket: destroy it so nothing lingers (the leak check counts sockets).
      ((client as unknown as { _sock?: Socket })._sock)?.destroy();
    }
    await closed;
  }

  private onClient(client: Connection): void {
    this.clients.add(client);
    // As on the client side: small interactive packets, no Nagle delay. ssh2's server-side
    // connection has setNoDelay() too, but @types/ssh2 declares it on the client only.
    (client as unknown as { setNoDelay(noDelay: boolean): void }).setNoDelay(true);
    client.on('close', () => this.clients.delete(client));
    client.on('error', () => {});
    client.on('authentication', (ctx) => {
      this.options.onAuthAttempt?.(ctx.method);
      if (ctx.method === 'password' && this.options.checkLogin(ctx.username, ctx.password)) ctx.accept();
      else ctx.reject(['password']);
    });
    client.on('ready', () => {
      client.on('session', (accept) => {
        const session = accept();
        session.on('exec', (acceptExec, _reject, info) => {
          const channel = acceptExec();
          void this.runCommand(info.command, channel);
        });
      });
    });
  }

  private async runCommand(command: string, channel: ServerChannel): Promise<void> {
    const controller = new AbortController();
    this.running.add(controller);
    let buffered = '';
    let waiting: ((line: string) => void) | null = null;
    channel.on('data', (data: Buffer) => {
      buffered += data.toString('utf8');
      const end = buffered.search(/\r?\n|\r/);
      if (end >= 0 && waiting) {
        const line = buffered.slice(0, end);
        buffered = buffered.slice(end).replace(/^(\r\n|\n|\r)/, '');
        const resolve = waiting;
        waiting = null;
        resolve(line);
      }
    });
    channel.on('close', () => controller.abort());
    const io: CommandIo = {
      write: (text) => {
        if (!controller.signal.aborted) channel.write(text);
      },
      prompt: (question) =>
        new Promise((resolve, reject) => {
          io.write(question);
          const end = buffered.search(/\r?\n|\r/);
          if (end >= 0) {
            const line = buffered.slice(0, end);
            buffered = buffered.slice(end).replace(/^(\r\n|\n|\r)/, '');
            return resolve(line);
          }
          waiting = resolve;
          controller.signal.addEventListener('abort', () => reject(new Error('channel closed')), { once: true });
        }),
      signal: controller.signal,
    };
    let status = 1;
    try {
      status = await this.options.onCommand(command, io);
    } catch {
      status = 1;
    } finally {
      this.running.delete(controller);
    }
    if (!controller.signal.aborted) {
      channel.exit(status);
      channel.end();
    }
  }
}
