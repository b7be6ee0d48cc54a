/**
 * The one module that imports ssh2: the SSH client the drivers log into switches with, and the SSH
 * server the switch emulator answers with. Everything else sees SshConnection, SshShell and
 * SshCliServer.
 *
 * Drivers talk to a switch through one interactive shell with a PTY (see cliSession.ts), never
 * through one exec channel per command: Cisco IOS and IOS XE close the whole connection when the
 * first exec channel ends (paramiko#55, mscdex/ssh2#284), so a second command would fail.
 *
 * Authentication answers `password` and `keyboard-interactive` (switches under AAA/TACACS often
 * offer only the latter, Netshot#400). The algorithms offered are ssh2's modern defaults followed by
 * the SHA-1 era ones older IOS 15 images need (LEGACY_ALGORITHMS), as paramiko and netmiko offer
 * them; weaker ones (WEAK_ALGORITHMS) only when the inventory or plan asks for them by name. The
 * host key is checked against a pinned fingerprint before any password is sent, so a weaker key
 * exchange cannot be used to impersonate the switch.
 */
import { generateKeyPairSync } from 'node:crypto';
import type { Socket } from 'node:net';
import ssh2 from 'ssh2';
import type { AuthContext, ClientChannel, Connection, PseudoTtyInfo, ServerChannel } from 'ssh2';
import { SwitchConnectError } from './driver.js';
import { fingerprintsEqual, hostKeyFingerprint, type HostKeyCheck } from './hostKey.js';

const { Client, Server, utils } = ssh2;

/** How long a closing connection may wait for the switch's side before the socket is destroyed. */
const CLOSE_GRACE_MS = 1000;

/**
 * Offered after ssh2's defaults, always: what Cisco IOS 15 offers (diffie-hellman-group14-sha1 or
 * group-exchange-sha1 key exchange, ssh-rsa signatures, CBC ciphers, hmac-sha1). ssh2's defaults
 * already include ssh-rsa, the CTR ciphers and hmac-sha1.
 */
export const LEGACY_ALGORITHMS = {
  kex: ['diffie-hellman-group14-sha1', 'diffie-hellman-group-exchange-sha1'],
  cipher: ['aes128-cbc', 'aes192-cbc', 'aes256-cbc'],
} as const;

/**
 * Offered only when a switch (inventory) or the plan names them in `sshWeakAlgorithms`: broken or
 * too small for general use, but all some very old images speak.
 */
export const WEAK_ALGORITHMS: Readonly<Record<string, 'kex' | 'serverHostKey' | 'cipher' | 'hmac'>> = {
  'diffie-hellman-group1-sha1': 'kex',
  'ssh-dss': 'serverHostKey',
  '3des-cbc': 'cipher',
  'hmac-md5': 'hmac',
  'hmac-sha1-96': 'hmac',
  'hmac-md5-96': 'hmac',
};

/** What the key exchange settled on (client to server direction; switches use the same both ways). */
export interface NegotiatedAlgorithms {
  kex: string;
  serverHostKey: string;
  cipher: string;
  mac: string;
}

export interface SshConnectOptions {
  host: string;
  port: number;
  username: string;
  password: string;
  /** Limit for the TCP connect, key exchange and login together. */
  timeoutMs: number;
  hostKey: HostKeyCheck;
  /** Names from WEAK_ALGORITHMS to offer as well (after everything else). */
  weakAlgorithms?: readonly string[];
}

/** Destroys ssh2's raw socket (its own destroy() does nothing once the socket was ended). */
function destroySocket(endpoint: unknown): void {
  (endpoint as { _sock?: Socket })._sock?.destroy();
}

function offeredAlgorithms(weak: readonly string[]): Record<string, { append: string[] }> {
  const offer: Record<string, { append: string[] }> = {
    kex: { append: [...LEGACY_ALGORITHMS.kex] },
    serverHostKey: { append: [] },
    cipher: { append: [...LEGACY_ALGORITHMS.cipher] },
    hmac: { append: [] },
  };
  for (const name of weak) {
    const category = WEAK_ALGORITHMS[name];
    if (!category) throw new Error(`unknown weak SSH algorithm "${name}" (known: ${Object.keys(WEAK_ALGORITHMS).join(', ')})`);
    offer[category]!.append.push(name);
  }
  return offer;
}

/**
 * A keyboard-interactive prompt that asks for the password ("Password:", "Password for admin@sw1:").
 * A one-time code (`OTP Passcode:`, `Token:`) gets nothing: sending the password there would hand
 * it to the wrong question and count as a failed try.
 */
const PASSWORD_QUESTION = /\bpassword\b/i;
const ONE_TIME_CODE = /\b(otp|one[- ]?time|passcode|token|pin|verification code)\b/i;
const USERNAME_QUESTION = /user(name)?\s*:?\s*$/i;

/** One interactive shell on a switch: a PTY, bytes in and out. */
export interface SshShell {
  write(text: string): void;
  onData(listener: (chunk: string) => void): void;
  /** Called once, when the switch closes the shell or the connection drops. */
  onClose(listener: () => void): void;
  close(): void;
}

/** PTY size asked for: wide, so the switch wraps no line (command echo and digests stay whole). */
export interface PtySize {
  cols: number;
  rows: number;
}

/** One logged-in SSH connection to a switch. */
export class SshConnection {
  private closed = false;

  private constructor(
    private readonly client: InstanceType<typeof Client>,
    /** The algorithms the key exchange settled on. */
    readonly negotiated: NegotiatedAlgorithms,
    /** The method the switch accepted the password through. */
    readonly authMethod: 'password' | 'keyboard-interactive',
  ) {
    client.on('close', () => (this.closed = true));
  }

  /**
   * Connects and logs in. The host key is checked during the key exchange, before the password is
   * sent: a key other than the pinned one ends the connection with a `host-key` SwitchConnectError.
   * A key exchange with nothing in common says what the switch offered and how to allow it.
   */
  static connect(options: SshConnectOptions): Promise<SshConnection> {
    return new Promise((resolve, reject) => {
      const client = new Client();
      const where = `${options.host}:${options.port}`;
      let settled = false;
      let mismatch: string | null = null;
      let negotiated: NegotiatedAlgorithms | null = null;
      let authMethod: 'password' | 'keyboard-interactive' = 'password';
      let algorithms: Record<string, { append: string[] }>;
      try {
        algorithms = offeredAlgorithms(options.weakAlgorithms ?? []);
      } catch (err) {
        reject(new SwitchConnectError(`${where}: ${(err as Error).message}`, 'other'));
        return;
      }
      /** The switch's own offer, from ssh2's debug lines: named in a "no matching algorithm" error. */
      const remoteOffer = new Map<string, string>();
      const debug = (line: string) => {
        const m = line.match(/^Handshake: \(remote\) (KEX method|Host key format|C->S cipher|C->S MAC): (.*)$/);
        if (m) remoteOffer.set(m[1]!, m[2]!);
      };
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
      // `none` first (it lists the methods the switch allows), then the password through whichever
      // method the switch offers: never sent twice, so a refused login costs one attempt.
      let passwordSent = false;
      const authHandler = (methodsLeft: string[] | null, _partial: boolean | null, next: (method: unknown) => void): void => {
        if (methodsLeft === null) return next({ type: 'none', username: options.username });
        if (passwordSent) return next(false);
        passwordSent = true;
        if (methodsLeft.includes('password')) return next({ type: 'password', username: options.username, password: options.password });
        if (methodsLeft.includes('keyboard-interactive')) {
          authMethod = 'keyboard-interactive';
          // One round with the password. A server that asks again (wrong password, IOS
          // `authentication-retries`, or one that never stops asking) gets empty answers: each
          // resent password is a failed try towards an AAA lockout.
          let given = false;
          return next({
            type: 'keyboard-interactive',
            username: options.username,
            prompt: (_name: string, _instructions: string, _lang: string, prompts: { prompt: string; echo?: boolean }[], finish: (answers: string[]) => void) => {
              const isPassword = (p: { prompt: string }) => PASSWORD_QUESTION.test(p.prompt) && !ONE_TIME_CODE.test(p.prompt);
              if (prompts.some(isPassword)) {
                if (given) return finish(prompts.map(() => ''));
                given = true;
              }
              finish(prompts.map((p) => (isPassword(p) ? options.password : USERNAME_QUESTION.test(p.prompt) ? options.username : '')));
            },
          });
        }
        return next(false);
      };
      const fail = (err: SwitchConnectError) => {
        if (settled) return;
        settled = true;
        destroySocket(client);
        reject(err);
      };
      client.on('handshake', (n: { kex: string; serverHostKey: string; cs: { cipher: string; mac: string } }) => {
        negotiated = { kex: n.kex, serverHostKey: n.serverHostKey, cipher: n.cs.cipher, mac: n.cs.mac || 'implicit (AEAD)' };
      });
      client.on('ready', () => {
        settled = true;
        resolve(new SshConnection(client, negotiated!, authMethod));
      });
      client.on('error', (err: Error & { level?: string; code?: string }) => {
        if (mismatch !== null) return fail(new SwitchConnectError(`${mismatch} (${where})`, 'host-key'));
        if (err.level === 'client-authentication') return fail(new SwitchConnectError(`${where}: login refused`, 'auth'));
        if (/timed out/i.test(err.message)) return fail(new SwitchConnectError(`${where}: no SSH answer within ${options.timeoutMs} ms`, 'timeout'));
        if (err.code === 'ECONNREFUSED') return fail(new SwitchConnectError(`${where}: connection refused`, 'refused'));
        const noMatch = err.message.match(/no matching (key exchange algorithm|host key format|C->S cipher|S->C cipher|C->S MAC|S->C MAC)/i);
        if (noMatch) {
          const label = noMatch[1]!.toLowerCase().startsWith('key') ? 'KEX method' : noMatch[1]!.toLowerCase().startsWith('host') ? 'Host key format' : noMatch[1]!.includes('cipher') ? 'C->S cipher' : 'C->S MAC';
          const offered = remoteOffer.get(label);
          const weak = (offered ?? '').split(',').filter((a) => a in WEAK_ALGORITHMS);
          const hint = weak.length ? `; to allow it, add ${weak.map((a) => `"${a}"`).join(' or ')} to sshWeakAlgorithms (inventory or plan)` : '';
          return fail(new SwitchConnectError(`${where}: no ${noMatch[1]} in common${offered ? ` (the switch offers ${offered})` : ''}${hint}`, 'algorithms'));
        }
        fail(new SwitchConnectError(`${where}: ${err.message}`, 'other'));
      });
      client.on('close', () =>
        fail(mismatch !== null ? new SwitchConnectError(`${mismatch} (${where})`, 'host-key') : new SwitchConnectError(`${where}: connection closed before login`, 'other')),
      );
      client.connect({
        host: options.host,
        port: options.port,
        username: options.username,
        readyTimeout: options.timeoutMs,
        algorithms,
        authHandler: authHandler as never,
        hostVerifier,
        debug,
      });
      // Every command is a few small request/response packets: with Nagle's algorithm each waited
      // for the peer's delayed ACK, about 80 ms per command (OpenSSH sets TCP_NODELAY too).
      client.setNoDelay(true);
    });
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /**
   * Opens an interactive shell with a PTY (`vt100`, the type switches expect from netmiko and
   * PuTTY). Rejects after `timeoutMs` when the switch never answers the channel, PTY or shell
   * request (ssh2's own timeout ends at login), and the connection is then closed.
   */
  openShell(size: PtySize, timeoutMs: number): Promise<SshShell> {
    return new Promise((resolve, reject) => {
      if (this.closed) return reject(new Error('the SSH connection was closed by the switch'));
      let answered = false;
      const timer = setTimeout(() => {
        answered = true;
        reject(new SwitchConnectError(`no answer to the shell request within ${timeoutMs} ms`, 'timeout'));
        void this.close();
      }, timeoutMs);
      this.client.shell({ term: 'vt100', cols: size.cols, rows: size.rows, width: 0, height: 0 }, (err: Error | undefined, channel: ClientChannel) => {
        clearTimeout(timer);
        if (answered) {
          channel?.close();
          return;
        }
        answered = true;
        if (err) return reject(new Error(`the switch refused an interactive shell: ${err.message}`));
        let closed = false;
        const closeListeners: (() => void)[] = [];
        const onClosed = () => {
          if (closed) return;
          closed = true;
          for (const l of closeListeners) l();
        };
        channel.on('close', onClosed);
        this.client.once('close', onClosed);
        resolve({
          write: (text) => {
            if (!closed) channel.write(text);
          },
          onData: (listener) => {
            channel.on('data', (data: Buffer) => listener(data.toString('utf8')));
            channel.stderr.on('data', (data: Buffer) => listener(data.toString('utf8')));
          },
          onClose: (listener) => {
            if (closed) listener();
            else closeListeners.push(listener);
          },
          close: () => {
            if (!closed) channel.close();
          },
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

/* ------------------------------------------------------------------------------------------- */
/* The server side, for the switch emulator.                                                    */
/* ------------------------------------------------------------------------------------------- */

/** The terminal a client asked for with its `pty-req`, or null when it asked for none. */
export interface ServerPty {
  cols: number;
  rows: number;
  term: string;
}

/** An interactive shell channel, server side. */
export interface ServerShell {
  write(text: string): void;
  onData(listener: (chunk: Buffer) => void): void;
  onClose(listener: () => void): void;
  /** Ends the shell (`exit`), with an exit status. */
  end(status?: number): void;
  readonly pty: ServerPty | null;
}

/** One exec request, server side: output and the typed answers to its questions. */
export interface ServerExec {
  readonly command: string;
  write(text: string): void;
  onData(listener: (chunk: Buffer) => void): void;
  onClose(listener: () => void): void;
  end(status: number): void;
}

export interface SshCliServerOptions {
  host: string;
  port: number;
  /** PEM private host keys (one per type offered). */
  hostKeys: string[];
  /** Methods the server accepts the password through (default: password). */
  authMethods?: readonly ('password' | 'keyboard-interactive')[];
  /** Restricts what the server offers (a legacy switch): per category, the only names offered. */
  algorithms?: { kex?: string[]; serverHostKey?: string[]; cipher?: string[]; hmac?: string[] };
  /** Counts every login attempt (any method), e.g. to prove a client never sent a password. */
  onAuthAttempt?: (method: string) => void;
  checkLogin(username: string, password: string): boolean;
  /** A client opened a shell: the emulator's CLI runs on it. `connection` ends the whole SSH connection. */
  onShell(shell: ServerShell, connection: { end(): void }): void;
  /**
   * A client sent an exec request. `connection.end()` drops the whole SSH connection, as Cisco IOS
   * does once its first exec channel ends.
   */
  onExec(exec: ServerExec, connection: { end(): void }): void;
}

/** A host key for the emulator (ECDSA P-256, SEC1 PEM: fast to make, read by every SSH client) and its fingerprint. */
export function generateHostKey(type: 'ecdsa' | 'rsa' = 'ecdsa'): { privateKey: string; fingerprint: string } {
  const pem =
    type === 'rsa'
      ? generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ type: 'pkcs1', format: 'pem' }).toString()
      : generateKeyPairSync('ec', { namedCurve: 'prime256v1' }).privateKey.export({ type: 'sec1', format: 'pem' }).toString();
  const parsed = utils.parseKey(pem);
  if (parsed instanceof Error) throw parsed;
  const key = Array.isArray(parsed) ? parsed[0]! : parsed;
  return { privateKey: pem, fingerprint: hostKeyFingerprint(key.getPublicSSH()) };
}

/** An SSH server whose shells and exec requests the emulator's CLI answers. */
export class SshCliServer {
  private readonly server: InstanceType<typeof Server>;
  private readonly clients = new Set<Connection>();

  constructor(private readonly options: SshCliServerOptions) {
    const algorithms = options.algorithms ? Object.fromEntries(Object.entries(options.algorithms).filter(([, v]) => v !== undefined)) : undefined;
    this.server = new Server({ hostKeys: options.hostKeys, ident: 'SSH-2.0-swfw-emulator', ...(algorithms ? { algorithms } : {}) }, (client) => this.onClient(client));
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
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    for (const client of this.clients) {
      client.end();
      // ssh2 keeps the raw socket: destroy it so nothing lingers (the leak check counts sockets).
      destroySocket(client);
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
    const methods = this.options.authMethods ?? ['password'];
    client.on('authentication', (ctx: AuthContext) => {
      if (ctx.method !== 'none') this.options.onAuthAttempt?.(ctx.method);
      if (ctx.method === 'password' && methods.includes('password')) {
        return this.options.checkLogin(ctx.username, ctx.password) ? ctx.accept() : ctx.reject([...methods]);
      }
      if (ctx.method === 'keyboard-interactive' && methods.includes('keyboard-interactive')) {
        return ctx.prompt([{ prompt: 'Password: ', echo: false }], (answers: string[]) =>
          this.options.checkLogin(ctx.username, answers[0] ?? '') ? ctx.accept() : ctx.reject([...methods]),
        );
      }
      ctx.reject([...methods]);
    });
    const connection = {
      end: () => {
        client.end();
        setTimeout(() => destroySocket(client), CLOSE_GRACE_MS).unref();
      },
    };
    client.on('ready', () => {
      client.on('session', (accept) => {
        const session = accept();
        let pty: ServerPty | null = null;
        session.on('pty', (acceptPty, _reject, info: PseudoTtyInfo) => {
          pty = { cols: info.cols || 80, rows: info.rows || 24, term: info.term };
          acceptPty?.();
        });
        session.on('window-change', (acceptChange) => acceptChange?.());
        session.on('shell', (acceptShell) => {
          const channel = acceptShell();
          this.options.onShell(serverShell(channel, pty), connection);
        });
        session.on('exec', (acceptExec, _reject, info) => {
          const channel = acceptExec();
          const { write, onData, onClose, end } = serverShell(channel, pty);
          this.options.onExec({ command: info.command, write, onData, onClose, end: (status) => end(status) }, connection);
        });
      });
    });
  }
}

function serverShell(channel: ServerChannel, pty: ServerPty | null): ServerShell {
  let closed = false;
  const closeListeners: (() => void)[] = [];
  channel.on('close', () => {
    closed = true;
    for (const l of closeListeners) l();
  });
  channel.on('error', () => {});
  return {
    pty,
    write: (text) => {
      if (!closed) channel.write(text);
    },
    onData: (listener) => channel.on('data', listener),
    onClose: (listener) => {
      if (closed) listener();
      else closeListeners.push(listener);
    },
    end: (status = 0) => {
      if (closed) return;
      channel.exit(status);
      channel.end();
    },
  };
}
