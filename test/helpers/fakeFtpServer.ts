import { createServer, type Server, type Socket } from 'node:net';
import { once } from 'node:events';
import { epsvReplyText, LineSplitter, pasvReplyText, splitCommand } from '../../src/core/ftpWire.js';

/**
 * A scripted FTP server for fault injection, on real TCP sockets on loopback. It speaks just
 * enough FTP for basic-ftp (USER PASS FEAT OPTS TYPE STRU PWD SYST NOOP SIZE PASV EPSV REST RETR
 * QUIT) and misbehaves on cue: refused greetings, 425s, data connections cut halfway, flipped
 * bytes, a PASV reply naming a foreign host. Never use it to test protocol conformance: that is
 * what the real server and vsftpd are for.
 */
export interface FakeScript {
  /** The first N control connections get `421` and are closed. */
  greeting421: number;
  /** The first N PASV/EPSV commands get `425`. */
  pasv425: number;
  /** The first N RETRs stop after `cutAtBytes` of the file (absolute position) in `cutMode`. */
  cutRetrs: number;
  cutAtBytes: number;
  /**
   * - `fin-426`: end the data connection cleanly, wait for the client to close it, then 426;
   * - `reset`: destroy the data connection with a TCP RST, then 426;
   * - `fin-226`: end the data connection and claim success with 226 (a short transfer);
   * - `stall`: stop sending and keep everything open (the client's timeout must fire).
   */
  cutMode: 'fin-426' | 'reset' | 'fin-226' | 'stall';
  /** The first N RETRs flip one byte in the middle of what they send (Infinity: always). */
  corruptRetrs: number;
  /** The IPv4 address put in 227 replies (default: the control connection's local address). */
  pasvHost: string | null;
  /** Reply 502 to REST (a server that cannot resume). */
  restUnsupported: boolean;
  /** Reply 502 to SIZE. */
  sizeUnsupported: boolean;
}

export interface RetrRecord {
  path: string;
  offset: number;
  bytesSent: number;
  outcome: 'complete' | 'cut' | 'missing' | 'no-data-connection';
  corrupted: boolean;
}

export interface FakeLog {
  controlConnections: number;
  dataConnections: number;
  /** Every command line received, PASS redacted. */
  commands: string[];
  /** REST offsets received, in order. */
  rests: number[];
  retrs: RetrRecord[];
}

export interface FakeFtpOptions {
  files: Record<string, Buffer>;
  /** Passive ports to use (inclusive); tests must stay inside their assigned range. */
  pasvRange: { min: number; max: number };
  /** Where data listeners bind (default 127.0.0.1); a foreign-host test binds 127.0.0.2 to catch a client that goes there. */
  dataBindHost?: string;
  user?: string;
  password?: string;
  script?: Partial<FakeScript>;
}

const DEFAULT_SCRIPT: FakeScript = {
  greeting421: 0,
  pasv425: 0,
  cutRetrs: 0,
  cutAtBytes: 0,
  cutMode: 'fin-426',
  corruptRetrs: 0,
  pasvHost: null,
  restUnsupported: false,
  sizeUnsupported: false,
};

const DATA_CONNECT_WAIT_MS = 5_000;

export class FakeFtpServer {
  readonly log: FakeLog = { controlConnections: 0, dataConnections: 0, commands: [], rests: [], retrs: [] };
  readonly script: FakeScript;
  private readonly sockets = new Set<Socket>();
  private readonly dataServers = new Set<Server>();
  private nextPort: number;
  private pasvCount = 0;
  private retrCount = 0;

  private constructor(
    private readonly control: Server,
    private readonly options: FakeFtpOptions,
  ) {
    this.script = { ...DEFAULT_SCRIPT, ...options.script };
    this.nextPort = options.pasvRange.min;
  }

  static async start(options: FakeFtpOptions): Promise<FakeFtpServer> {
    const control = createServer();
    const fake = new FakeFtpServer(control, options);
    control.on('connection', (socket) => fake.onConnection(socket));
    control.listen(0, '127.0.0.1');
    await once(control, 'listening');
    return fake;
  }

  get host(): string {
    return '127.0.0.1';
  }

  get port(): number {
    const address = this.control.address();
    if (!address || typeof address === 'string') throw new Error('not listening');
    return address.port;
  }

  url(path: string, user = this.options.user ?? 'switch'): string {
    return `ftp://${user}@127.0.0.1:${this.port}${path}`;
  }

  private track(socket: Socket): void {
    this.sockets.add(socket);
    socket.on('error', () => {});
    socket.once('close', () => this.sockets.delete(socket));
  }

  private onConnection(socket: Socket): void {
    this.track(socket);
    this.log.controlConnections++;
    if (this.log.controlConnections <= this.script.greeting421) {
      socket.end('421 Too many connections, try again later\r\n');
      return;
    }
    const session = new FakeSession(this, socket);
    socket.write('220 fake FTP ready\r\n');
    const lines = new LineSplitter();
    socket.setEncoding('latin1');
    socket.on('data', (chunk: string) => lines.push(chunk).forEach((line) => session.enqueue(line)));
  }

  /** Opens a passive listener on the next free port of the range; resolves with the port and the socket to come. */
  async openPassive(): Promise<{ port: number; connection: Promise<Socket | null> }> {
    const { min, max } = this.options.pasvRange;
    for (let tries = 0; tries <= max - min; tries++) {
      const port = this.nextPort;
      this.nextPort = port >= max ? min : port + 1;
      const server = createServer();
      try {
        server.listen(port, this.options.dataBindHost ?? '127.0.0.1');
        await once(server, 'listening');
      } catch {
        server.close();
        continue;
      }
      this.dataServers.add(server);
      const connection = new Promise<Socket | null>((resolve) => {
        const timer = setTimeout(() => {
          close();
          resolve(null);
        }, DATA_CONNECT_WAIT_MS);
        const close = () => {
          clearTimeout(timer);
          server.close();
          this.dataServers.delete(server);
        };
        server.once('connection', (socket) => {
          this.log.dataConnections++;
          this.track(socket);
          close();
          resolve(socket);
        });
        server.once('close', () => {
          clearTimeout(timer);
          resolve(null);
        });
      });
      return { port, connection };
    }
    throw new Error('fake FTP server: no free passive port in range');
  }

  nextPasvFails(): boolean {
    this.pasvCount++;
    return this.pasvCount <= this.script.pasv425;
  }

  nextRetr(): { index: number; cut: boolean; corrupt: boolean } {
    this.retrCount++;
    return { index: this.retrCount, cut: this.retrCount <= this.script.cutRetrs, corrupt: this.retrCount <= this.script.corruptRetrs };
  }

  file(path: string): Buffer | undefined {
    return this.options.files[path.startsWith('/') ? path : `/${path}`];
  }

  /** Whether some file lies under the directory `dir` (an absolute path). */
  hasDirectory(dir: string): boolean {
    return Object.keys(this.options.files).some((f) => f.startsWith(`${dir}/`));
  }

  checkLogin(user: string, password: string): boolean {
    return (this.options.user === undefined || user === this.options.user) && (this.options.password === undefined || password === this.options.password);
  }

  /** Closes every listener and socket (stalled ones included). */
  async stop(): Promise<void> {
    for (const server of this.dataServers) server.close();
    this.dataServers.clear();
    for (const socket of this.sockets) socket.destroy();
    this.control.close();
    if (this.control.listening) await once(this.control, 'close');
    else await new Promise((resolve) => setImmediate(resolve));
  }
}

/** One control connection: commands run one at a time, in order. */
class FakeSession {
  private readonly queue: string[] = [];
  private running = false;
  private user = '';
  private loggedIn = false;
  /** The working directory (CWD), for clients that walk the URL path (RFC 1738). */
  private cwd = '/';
  private rest = 0;
  private data: Promise<Socket | null> | null = null;

  constructor(
    private readonly server: FakeFtpServer,
    private readonly socket: Socket,
  ) {}

  enqueue(line: string): void {
    this.queue.push(line);
    void this.run();
  }

  private reply(text: string): void {
    if (!this.socket.destroyed) this.socket.write(`${text}\r\n`);
  }

  /** A path argument made absolute against the working directory (`..` and `.` folded). */
  private resolve(path: string): string {
    const parts: string[] = [];
    for (const part of (path.startsWith('/') ? path : `${this.cwd}/${path}`).split('/')) {
      if (part === '' || part === '.') continue;
      if (part === '..') parts.pop();
      else parts.push(part);
    }
    return `/${parts.join('/')}`;
  }

  private async run(): Promise<void> {
    if (this.running) return;
    this.running = true;
    try {
      while (this.queue.length > 0 && !this.socket.destroyed) await this.execute(this.queue.shift()!);
    } finally {
      this.running = false;
    }
  }

  private async execute(line: string): Promise<void> {
    const { verb, argument } = splitCommand(line);
    this.server.log.commands.push(verb === 'PASS' ? 'PASS ***' : line);
    const script = this.server.script;
    switch (verb) {
      case 'USER':
        this.user = argument;
        return this.reply('331 Password required');
      case 'PASS':
        if (this.server.checkLogin(this.user, argument)) {
          this.loggedIn = true;
          return this.reply('230 Login successful');
        }
        return this.reply('530 Login incorrect');
      case 'FEAT':
        return this.reply('211-Features:\r\n EPSV\r\n PASV\r\n REST STREAM\r\n SIZE\r\n211 End');
      case 'OPTS':
      case 'TYPE':
      case 'STRU':
      case 'NOOP':
        return this.reply(`200 ${verb} ok`);
      case 'SYST':
        return this.reply('215 UNIX Type: L8');
      case 'QUIT':
        this.reply('221 Goodbye');
        this.socket.end();
        return;
    }
    if (!this.loggedIn) return this.reply('530 Please login with USER and PASS');
    switch (verb) {
      case 'PWD':
        return this.reply(`257 "${this.cwd}" is the current directory`);
      case 'CWD': {
        const dir = this.resolve(argument);
        if (dir !== '/' && !this.server.hasDirectory(dir)) return this.reply('550 No such directory');
        this.cwd = dir;
        return this.reply('250 Directory successfully changed');
      }
      case 'SIZE': {
        if (script.sizeUnsupported) return this.reply('502 SIZE not implemented');
        const file = this.server.file(this.resolve(argument));
        return file ? this.reply(`213 ${file.length}`) : this.reply('550 No such file or directory');
      }
      case 'REST':
        if (script.restUnsupported) return this.reply('502 REST not implemented');
        this.rest = Number(argument);
        this.server.log.rests.push(this.rest);
        return this.reply(`350 Restarting at ${this.rest}`);
      case 'PASV':
      case 'EPSV': {
        if (this.server.nextPasvFails()) return this.reply("425 Can't open passive connection");
        const { port, connection } = await this.server.openPassive();
        this.data = connection;
        if (verb === 'EPSV') return this.reply(`229 ${epsvReplyText(port)}`);
        const host = script.pasvHost ?? (this.socket.localAddress ?? '127.0.0.1').replace(/^::ffff:/, '');
        return this.reply(`227 ${pasvReplyText(host, port)}`);
      }
      case 'RETR':
        return this.retr(this.resolve(argument));
      default:
        return this.reply('502 Command not implemented');
    }
  }

  private async retr(path: string): Promise<void> {
    const offset = this.rest;
    this.rest = 0;
    const data = this.data;
    this.data = null;
    const file = this.server.file(path);
    const record: RetrRecord = { path, offset, bytesSent: 0, outcome: 'missing', corrupted: false };
    this.server.log.retrs.push(record);
    if (!file) {
      void data?.then((s) => s?.destroy());
      return this.reply('550 No such file or directory');
    }
    const socket = data ? await data : null;
    if (!socket) {
      record.outcome = 'no-data-connection';
      return this.reply("425 Can't open data connection");
    }
    const { cut, corrupt } = this.server.nextRetr();
    const script = this.server.script;
    const end = cut ? Math.max(offset, Math.min(script.cutAtBytes, file.length)) : file.length;
    let payload = file.subarray(offset, end);
    if (corrupt && payload.length > 0) {
      payload = Buffer.from(payload);
      payload[payload.length >> 1]! ^= 0xff;
      record.corrupted = true;
    }
    this.reply(`150 Opening BINARY mode data connection for ${path} (${file.length - offset} bytes)`);
    await new Promise<void>((resolve) => socket.write(payload, () => resolve()));
    record.bytesSent = payload.length;
    if (!cut) {
      socket.end();
      await once(socket, 'close').catch(() => {});
      record.outcome = 'complete';
      return this.reply('226 Transfer complete');
    }
    record.outcome = 'cut';
    switch (script.cutMode) {
      case 'fin-426':
        socket.end();
        await once(socket, 'close').catch(() => {});
        return this.reply('426 Connection closed; transfer aborted');
      case 'reset':
        socket.resetAndDestroy();
        return this.reply('426 Connection closed; transfer aborted');
      case 'fin-226':
        socket.end();
        await once(socket, 'close').catch(() => {});
        return this.reply('226 Transfer complete');
      case 'stall':
        return; // nothing more: the client's watchdog must give up; stop() destroys the socket
    }
  }
}
