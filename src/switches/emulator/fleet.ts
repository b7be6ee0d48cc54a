/**
 * The switch emulator: N switches on loopback, each an SSH server (its own 127.0.1.x address)
 * speaking the Cisco-style CLI the `emulated` and `cisco-*` drivers use, with a flash directory of
 * fixed capacity. `copy ftp://…` pulls with src/client's pull() out of the switch's own address
 * (127.0.1.x), without verifying, retrying or resuming, as a switch's copy does.
 * Faults are set per switch (see parseFaults).
 */
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, open, readdir, rm, stat } from 'node:fs/promises';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { once } from 'node:events';
import { ftpUrlParts, redactSecrets } from './driver.js';
import { SshCliServer, generateHostKey, type CommandIo } from './ssh.js';
import { Puller, parseFtpUrl, type PullResult } from '../client/index.js';

export interface SwitchFaults {
  /** Link speed for the pull, bytes per second. */
  slowBytesPerSecond?: number;
  /** The link drops after this many bytes of the image. */
  cutAfterBytes?: number;
  /** The byte at this offset is flipped on flash after the copy. */
  corruptAt?: number;
  /** Flash capacity (overrides the fleet's). */
  flashBytes?: number;
  /** The switch's SSH password is not the one in the inventory. */
  wrongPassword?: boolean;
  /** The SSH port accepts TCP and never answers. */
  sshHangs?: boolean;
  /** The version the switch reports (overrides the fleet's). */
  version?: string;
}

const FAULT_KINDS = ['slow', 'cut', 'corrupt', 'flash', 'badpass', 'hang', 'version'] as const;

/**
 * `N:kind[=value]` items, comma-separated, N the 1-based switch number:
 * `3:slow=65536,5:cut=300000,7:corrupt=1000,9:flash=100000,11:badpass,13:hang,2:version=17.09.04a`.
 */
export function parseFaults(spec: string | undefined, count: number): Map<number, SwitchFaults> {
  const faults = new Map<number, SwitchFaults>();
  if (!spec) return faults;
  for (const item of spec.split(',').map((s) => s.trim()).filter(Boolean)) {
    const match = item.match(/^(\d+):([a-z]+)(?:=(.+))?$/);
    if (!match) throw new Error(`fault "${item}": expected N:kind[=value] (kinds: ${FAULT_KINDS.join(', ')})`);
    const index = Number(match[1]);
    const kind = match[2]!;
    const value = match[3];
    if (index < 1 || index > count) throw new Error(`fault "${item}": switch ${index} is not in 1-${count}`);
    const f = faults.get(index) ?? {};
    const num = () => {
      const n = Number(value);
      if (!Number.isSafeInteger(n) || n < 0) throw new Error(`fault "${item}": needs a whole number`);
      return n;
    };
    if (kind === 'slow') f.slowBytesPerSecond = num();
    else if (kind === 'cut') f.cutAfterBytes = num();
    else if (kind === 'corrupt') f.corruptAt = num();
    else if (kind === 'flash') f.flashBytes = num();
    else if (kind === 'badpass') f.wrongPassword = true;
    else if (kind === 'hang') f.sshHangs = true;
    else if (kind === 'version' && value) f.version = value;
    else throw new Error(`fault "${item}": unknown kind (kinds: ${FAULT_KINDS.join(', ')})`);
    faults.set(index, f);
  }
  return faults;
}

export interface FleetOptions {
  count: number;
  /** Driver name written to the inventory: `emulated` (default) or a cisco dialect. */
  platform?: string;
  /** Catalog platform written to the inventory (which image the plan targets). Default cisco-ios-xe. */
  catalogPlatform?: string;
  /** Last octet of the first switch's address 127.0.1.x (default 1). */
  firstOctet?: number;
  /** SSH port on every switch address (each switch has its own address, so they share the port). */
  sshPort: number;
  username?: string;
  password: string;
  /** Flash capacity per switch (default 64 MiB). */
  flashBytes?: number;
  /** The version every switch reports (default 17.06.05). */
  version?: string;
  faults?: Map<number, SwitchFaults>;
  /** Where flash directories go (default: a new temp dir, removed at stop). */
  flashDir?: string;
  /**
   * Without flashDir: the directory the new temp dir goes in (default os.tmpdir()). A RAM-backed
   * one such as /dev/shm keeps a big fleet's flash writes off the host's disk.
   */
  flashUnder?: string;
  /** Per-command FTP timeout inside a switch. */
  ftpTimeoutMs?: number;
}

export interface EmulatedSwitchInfo {
  name: string;
  address: string;
  port: number;
  driver: string;
  platform: string;
  flashDir: string;
  faults: SwitchFaults;
  /** The OpenSSH SHA256 fingerprint of this switch's own host key (generated at start). */
  hostKey: string;
}

const DEFAULT_FLASH_BYTES = 64 * 1024 * 1024;
const BANG_EVERY_BYTES = 64 * 1024;
/**
 * The bangs due are written at most this often, several per write: one SSH packet per bang (128
 * for 8 MiB) made the encryption of `!`s a visible share of a 200-switch emulator's CPU.
 */
const BANG_WRITE_INTERVAL_MS = 100;
/** Read size of `verify`: large enough that the hash, not the reads, is the cost. */
const VERIFY_READ_BYTES = 1024 * 1024;

class EmulatedSwitch {
  private ssh: SshCliServer | null = null;
  /** Login attempts the SSH server saw (any method). */
  authAttempts = 0;
  private hang: { server: Server; sockets: Set<Socket> } | null = null;
  readonly capacity: number;
  readonly version: string;

  constructor(
    readonly info: EmulatedSwitchInfo,
    private readonly username: string,
    private readonly password: string,
    private readonly hostKey: string,
    fleet: FleetOptions,
  ) {
    this.capacity = info.faults.flashBytes ?? fleet.flashBytes ?? DEFAULT_FLASH_BYTES;
    this.version = info.faults.version ?? fleet.version ?? '17.06.05';
    this.ftpTimeoutMs = fleet.ftpTimeoutMs ?? 30_000;
  }
  private readonly ftpTimeoutMs: number;

  async start(): Promise<void> {
    await mkdir(this.info.flashDir, { recursive: true });
    if (this.info.faults.sshHangs) {
      const sockets = new Set<Socket>();
      const server = createServer((socket) => {
        sockets.add(socket);
        socket.on('close', () => sockets.delete(socket));
        socket.on('error', () => {});
        socket.resume(); // read and drop: it must still see the client's FIN to close
      });
      server.listen(this.info.port, this.info.address);
      await once(server, 'listening');
      this.hang = { server, sockets };
      return;
    }
    const password = this.info.faults.wrongPassword ? `${this.password}-not-this-one` : this.password;
    this.ssh = new SshCliServer({
      host: this.info.address,
      port: this.info.port,
      hostKey: this.hostKey,
      onAuthAttempt: () => this.authAttempts++,
      checkLogin: (u, p) => u === this.username && p === password,
      onCommand: (command, io) => this.command(command.trim(), io),
    });
    await this.ssh.listen();
  }

  async stop(): Promise<void> {
    await this.ssh?.close();
    if (this.hang) {
      for (const s of this.hang.sockets) s.destroy();
      await new Promise<void>((resolve) => this.hang!.server.close(() => resolve()));
    }
  }

  private async files(): Promise<{ name: string; size: number; mtime: Date }[]> {
    const names = (await readdir(this.info.flashDir)).filter((n) => !n.startsWith('.'));
    return Promise.all(names.map(async (name) => ({ name, ...(await stat(join(this.info.flashDir, name))) })));
  }

  private async used(except?: string): Promise<number> {
    return (await this.files()).filter((f) => f.name !== except).reduce((sum, f) => sum + f.size, 0);
  }

  private async command(line: string, io: CommandIo): Promise<number> {
    if (line === 'show version') {
      io.write(
        [
          `Cisco IOS XE Software, Version ${this.version}`,
          'Cisco IOS Software [swfw], Emulated Switch Software (SWFW_EMU), RELEASE SOFTWARE',
          '',
          `${this.info.name} uptime is 1 day, 2 hours, 3 minutes`,
          'cisco SWFW-EMU-48 (X86) processor with 1048576K bytes of memory.',
          `Model Number                       : SWFW-EMU-48`,
          '',
        ].join('\n'),
      );
      return 0;
    }
    if (line === 'dir flash:' || line === 'dir') {
      const files = await this.files();
      const used = files.reduce((s, f) => s + f.size, 0);
      io.write('Directory of flash:/\n\n');
      files.forEach((f, i) => io.write(`${String(1000 + i).padStart(7)}  -rw-  ${String(f.size).padStart(12)}  ${f.mtime.toUTCString()}  ${f.name}\n`));
      io.write(`\n${this.capacity} bytes total (${Math.max(0, this.capacity - used)} bytes free)\n`);
      return 0;
    }
    let match = line.match(/^verify \/(md5|sha256|sha512) flash:\/?(\S+)$/);
    if (match) return this.verify(match[1]!, match[2]!, io);
    match = line.match(/^copy (ftp:\/\/\S+) flash:\/?(\S*)$/);
    if (match) return this.copy(match[1]!, match[2]!, io);
    io.write(`${line}\n^\n% Invalid input detected at '^' marker.\n`);
    return 1;
  }

  private async verify(algorithm: string, name: string, io: CommandIo): Promise<number> {
    const path = join(this.info.flashDir, basename(name));
    const handle = await open(path, 'r').catch(() => null);
    if (!handle) {
      io.write(`%Error verifying flash:${name} (No such file or directory)\n`);
      return 1;
    }
    const hash = createHash(algorithm);
    // One buffer, large reads: a stream's 64 KiB chunks cost a thread-pool round trip and an
    // allocation each, and 200 switches verifying 8 MiB made that the emulator's biggest cost.
    const buffer = Buffer.allocUnsafe(VERIFY_READ_BYTES);
    try {
      for (;;) {
        const { bytesRead } = await handle.read(buffer, 0, buffer.length, null);
        if (bytesRead === 0) break;
        hash.update(buffer.subarray(0, bytesRead));
      }
    } finally {
      await handle.close().catch(() => {});
    }
    io.write(`.......Done!\nverify /${algorithm} (flash:${name}) = ${hash.digest('hex')}\n`);
    return 0;
  }

  private async copy(url: string, given: string, io: CommandIo): Promise<number> {
    let parts;
    try {
      parts = ftpUrlParts(url);
    } catch {
      io.write('%Error parsing filename (Bad URL)\n');
      return 1;
    }
    const shownUrl = `ftp://*****:*****@${parts.host}${parts.port === 21 ? '' : `:${parts.port}`}${parts.path}`;
    const defaultName = given || basename(parts.path);
    const answer = (await io.prompt(`Destination filename [${defaultName}]? `)).trim();
    const name = basename(answer || defaultName);
    const path = join(this.info.flashDir, name);
    if (await stat(path).catch(() => null)) {
      io.write('\n%Warning:There is a file already existing with this name\n');
      const confirm = (await io.prompt('Do you want to over write? [confirm]')).trim().toLowerCase();
      if (confirm.startsWith('n')) {
        io.write('\n%Copy aborted\n');
        return 1;
      }
    }
    io.write(`\nAccessing ${shownUrl}...\nLoading ${parts.path.replace(/^\//, '')} `);
    const free = this.capacity - (await this.used(name));
    const started = Date.now();
    let bangs = 0;
    let lastBangsAt = 0;
    const writeBangs = (bytes: number, now: boolean) => {
      const due = Math.floor(bytes / BANG_EVERY_BYTES);
      if (due <= bangs || (!now && Date.now() - lastBangsAt < BANG_WRITE_INTERVAL_MS)) return;
      io.write('!'.repeat(due - bangs));
      bangs = due;
      lastBangsAt = Date.now();
    };
    const faults = this.info.faults;
    const target = parseFtpUrl(url);
    if ('problem' in target) {
      io.write('%Error parsing filename (Bad URL)\n');
      return 1;
    }
    // The switch's own faults stop the pull through its abort signal; so does the SSH channel closing.
    const controller = new AbortController();
    let stopped: { message: string; stage: 'read' | 'write' } | null = null;
    const stop = (message: string, stage: 'read' | 'write') => {
      stopped ??= { message, stage };
      controller.abort();
    };
    const onChannelAbort = () => stop('Aborted', 'read');
    io.signal.addEventListener('abort', onChannelAbort, { once: true });
    if (io.signal.aborted) onChannelAbort();
    const puller = new Puller({
      target,
      password: parts.password,
      out: path,
      // A switch's copy does not verify: no reference, the outcome is `unverified`.
      reference: null,
      // …nor retry or resume: one RETR.
      retries: 0,
      localAddress: this.info.address,
      timeoutMs: this.ftpTimeoutMs,
      // Nothing to verify against, and a switch's copy computes no digest; `verify` reads flash later.
      hashing: 'none',
      progressIntervalMs: 0,
      signal: controller.signal,
      ...(faults.slowBytesPerSecond ? { maxBytesPerSecond: faults.slowBytesPerSecond } : {}),
    });
    puller.on('progress', ({ bytes: n }) => {
      if (stopped) return;
      writeBangs(n, false);
      if (faults.cutAfterBytes !== undefined && n >= faults.cutAfterBytes) stop('I/O error (link cut)', 'read');
      else if (n > free) stop('No space left on device', 'write');
    });
    let result: PullResult;
    try {
      result = await puller.run();
    } catch (err) {
      io.write(`\n%Error copying ${shownUrl} (I/O error (${(err as Error).message}))\n`);
      return 1;
    } finally {
      io.signal.removeEventListener('abort', onChannelAbort);
    }
    const bytes = result.bytes;
    if (!stopped) writeBangs(bytes, true);
    if (result.outcome !== 'unverified') {
      let verb: string;
      let message: string;
      const fault = stopped as { message: string; stage: 'read' | 'write' } | null; // set in the progress handler
      if (fault) {
        verb = fault.stage === 'write' ? 'copying' : 'reading';
        message = fault.message;
      } else if (result.outcome === 'local-error') {
        verb = 'copying';
        message = `I/O error (${result.reason})`;
      } else {
        // A refusal before any byte (login, file, data connection) is an "opening" error; a break after is "reading".
        verb = bytes > 0 ? 'reading' : 'opening';
        const reason = result.reason.replace(/ \(gave up after \d+ attempts?\)$/, '');
        message = result.replyCode !== null && !reason.startsWith(String(result.replyCode)) ? `${result.replyCode} ${reason}` : reason;
        if (result.replyCode === null) message = `${bytes > 0 ? 'I/O error' : 'Connection refused'} (${message})`;
      }
      io.write(`\n%Error ${verb} ${shownUrl} (${redactSecrets(message, [parts.password])})\n`);
      return 1;
    }
    if (faults.corruptAt !== undefined && faults.corruptAt < bytes) {
      const handle = await open(path, 'r+');
      const one = Buffer.alloc(1);
      await handle.read(one, 0, 1, faults.corruptAt);
      one[0] = one[0]! ^ 0xff;
      await handle.write(one, 0, 1, faults.corruptAt);
      await handle.close();
    }
    const secs = Math.max(0.001, (Date.now() - started) / 1000);
    io.write(`\n[OK - ${bytes}/4096 bytes]\n\n${bytes} bytes copied in ${secs.toFixed(3)} secs (${Math.round(bytes / secs)} bytes/sec)\n`);
    return 0;
  }
}

/** A running emulated fleet. */
export class EmulatedFleet {
  private constructor(
    readonly switches: EmulatedSwitchInfo[],
    private readonly members: EmulatedSwitch[],
    private readonly ownedDir: string | null,
  ) {}

  static async start(options: FleetOptions): Promise<EmulatedFleet> {
    const first = options.firstOctet ?? 1;
    if (options.count < 1 || first + options.count - 1 > 254) throw new Error(`--switches: 1-${255 - first} switches fit in 127.0.1.${first}-254`);
    const ownedDir = options.flashDir ? null : await mkdtemp(join(options.flashUnder ?? tmpdir(), 'swfw-emulator-'));
    const root = options.flashDir ?? ownedDir!;
    const driver = options.platform ?? 'emulated';
    const members: EmulatedSwitch[] = [];
    for (let i = 0; i < options.count; i++) {
      const name = `emu-${String(i + 1).padStart(3, '0')}`;
      // Each switch has its own host key, as real ones do: a pinned key identifies one switch.
      const key = generateHostKey();
      const info: EmulatedSwitchInfo = {
        name,
        address: `127.0.1.${first + i}`,
        port: options.sshPort,
        driver,
        platform: options.catalogPlatform ?? 'cisco-ios-xe',
        flashDir: join(root, name),
        faults: options.faults?.get(i + 1) ?? {},
        hostKey: key.fingerprint,
      };
      members.push(new EmulatedSwitch(info, options.username ?? 'admin', options.password, key.privateKey, options));
    }
    const fleet = new EmulatedFleet(members.map((m) => m.info), members, ownedDir);
    try {
      await Promise.all(members.map((m) => m.start()));
    } catch (err) {
      await fleet.stop();
      throw err;
    }
    return fleet;
  }

  /** Login attempts (any method) switch `name` has seen since the fleet started. */
  authAttempts(name: string): number {
    return this.members.find((m) => m.info.name === name)?.authAttempts ?? 0;
  }

  /** The inventory a rollout reads: credentials by reference only, each switch's host key pinned. */
  inventory(credentials: { username: string; passwordEnv?: string; passwordFile?: string }): object {
    return {
      switches: this.switches.map((s) => ({
        name: s.name,
        address: s.address,
        port: s.port,
        driver: s.driver,
        platform: s.platform,
        hostKey: s.hostKey,
        credentials,
        site: 'emulator',
        tags: Object.keys(s.faults).length ? ['faulty'] : [],
      })),
    };
  }

  async stop(): Promise<void> {
    await Promise.all(this.members.map((m) => m.stop()));
    if (this.ownedDir) await rm(this.ownedDir, { recursive: true, force: true });
  }
}
