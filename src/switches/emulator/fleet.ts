/**
 * The switch emulator: N switches on loopback, each an SSH server on its own 127.0.1.x address
 * with the CLI of one platform (a personality), a flash of fixed capacity, and its own faults.
 * A switch's copy pulls through swfw's client module out of the switch's own FTP source address,
 * so the server sees N distinct switches.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { once } from 'node:events';
import { SshCliServer, generateHostKey, type ServerExec, type ServerShell } from '../ssh.js';
import { Flash, type CopyResult } from './flash.js';
import type { SwitchFaults } from './faults.js';
import { EmulatedTerminal } from './terminal.js';
import type { CliSessionState, EmulatedSwitchState, Personality } from './personality.js';
import { MIXED_PLATFORMS, PERSONALITIES } from './personalities/index.js';

export interface FleetOptions {
  count: number;
  /** A personality (driver name, default cisco-ios-xe), or `mixed`: every FTP-capable platform in turn. */
  platform?: string;
  /** Catalog platform written to the inventory (default: the personality's own). */
  catalogPlatform?: string;
  /** Last octet of the first switch's address 127.0.1.x (default 1). */
  firstOctet?: number;
  /** Loopback addresses for the first switches instead of 127.0.1.x (a test's switch behind a DNS name). */
  addresses?: readonly string[];
  /** SSH port on every switch address (each switch has its own address, so they share the port). */
  sshPort: number;
  username?: string;
  password: string;
  /** Flash capacity per switch (default 64 MiB). */
  flashBytes?: number;
  /** The version every switch reports (default: the personality's). */
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
  /** The driver an inventory names for it (its personality). */
  driver: string;
  platform: string;
  flashDir: string;
  faults: SwitchFaults;
  /** The OpenSSH SHA256 fingerprint of this switch's own host key (generated at start). */
  hostKey: string;
  /** The address its FTP connections come from. */
  ftpSource: string;
}

const DEFAULT_FLASH_BYTES = 64 * 1024 * 1024;

/** What IOS 15 offers (SWITCH-CLI-REFERENCE.md, "SSH as switches speak it"). */
const LEGACY_SSH = { kex: ['diffie-hellman-group14-sha1'], serverHostKey: ['ssh-rsa'], cipher: ['aes128-cbc', 'aes256-cbc'], hmac: ['hmac-sha1'] };
/** What very old images offer: nothing but diffie-hellman-group1-sha1 for the key exchange. */
const OLD_SSH = { kex: ['diffie-hellman-group1-sha1'], serverHostKey: ['ssh-rsa'], cipher: ['aes128-cbc'], hmac: ['hmac-sha1'] };

/** Lines that look like prompts to a careless reader, as real login banners have. */
const TRICKY_BANNER = `##########################################################
#  Authorized access only. Disconnect IMMEDIATELY if you  #
#  are not an authorized user!                            #
##########################################################
<<< Change window CHG0042: firmware upgrade tonight >>>
NOTICE>
`;

class EmulatedSwitch implements EmulatedSwitchState {
  private ssh: SshCliServer | null = null;
  /** Login attempts the SSH server saw (any method but `none`). */
  authAttempts = 0;
  private hang: { server: Server; sockets: Set<Socket> } | null = null;
  readonly flash: Flash;
  readonly version: string;
  readonly name: string;
  readonly address: string;
  readonly ftpSource: string;
  readonly faults: SwitchFaults;
  readonly ftpTimeoutMs: number;
  readonly memory = new Map<string, unknown>();
  private readonly terminals = new Set<EmulatedTerminal>();

  constructor(
    readonly info: EmulatedSwitchInfo,
    readonly personality: Personality,
    readonly username: string,
    readonly password: string,
    private readonly hostKey: string,
    fleet: FleetOptions,
  ) {
    this.name = info.name;
    this.address = info.address;
    this.ftpSource = info.ftpSource;
    this.faults = info.faults;
    this.flash = new Flash(info.flashDir, info.faults.flashBytes ?? fleet.flashBytes ?? DEFAULT_FLASH_BYTES);
    this.version = info.faults.version ?? fleet.version ?? personality.defaultVersion;
    this.ftpTimeoutMs = fleet.ftpTimeoutMs ?? 30_000;
  }

  copy(url: string, name: string, signal: AbortSignal, onBytes?: (bytes: number, totalBytes: number | null) => void): Promise<CopyResult> {
    return this.flash.copy(url, name, { localAddress: this.ftpSource, faults: this.faults, timeoutMs: this.ftpTimeoutMs, signal, ...(onBytes ? { onBytes } : {}) });
  }

  async start(): Promise<void> {
    await this.flash.init();
    if (this.faults.sshHangs) {
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
    const password = this.faults.wrongPassword ? `${this.password}-not-this-one` : this.password;
    const algorithms = this.faults.oldSsh ? OLD_SSH : this.faults.legacySsh ? LEGACY_SSH : undefined;
    this.ssh = new SshCliServer({
      host: this.info.address,
      port: this.info.port,
      hostKeys: [this.hostKey],
      authMethods: this.faults.keyboardInteractiveOnly ? ['keyboard-interactive'] : ['password', 'keyboard-interactive'],
      ...(algorithms ? { algorithms } : {}),
      onAuthAttempt: () => this.authAttempts++,
      checkLogin: (u, p) => u === this.username && p === password,
      onShell: (shell) => this.onShell(shell),
      onExec: (exec, connection) => this.onExec(exec, connection),
    });
    await this.ssh.listen();
  }

  private session(terminal: () => EmulatedTerminal): CliSessionState {
    return {
      mode: this.personality.initialMode(this),
      get terminalLength() {
        return terminal().terminalLength;
      },
      set terminalLength(rows: number) {
        terminal().terminalLength = rows;
      },
    };
  }

  private onShell(shell: ServerShell): void {
    let terminal: EmulatedTerminal | null = null;
    const session = this.session(() => terminal!);
    terminal = new EmulatedTerminal({
      interactive: true,
      rows: shell.pty?.rows ?? 24,
      pager: this.personality.pager,
      write: (text) => shell.write(text),
      end: (status) => shell.end(status),
      prompt: () => this.personality.prompt(this, session),
      run: (line, io) => this.personality.run(line, io, this, session),
    });
    this.terminals.add(terminal);
    shell.onData((data) => terminal!.feed(data.toString('latin1')));
    shell.onClose(() => {
      terminal!.close();
      this.terminals.delete(terminal!);
    });
    terminal.start(`${this.faults.banner ? TRICKY_BANNER : ''}${this.personality.greeting(this)}`);
  }

  private onExec(exec: ServerExec, connection: { end(): void }): void {
    let terminal: EmulatedTerminal | null = null;
    const session = this.session(() => terminal!);
    terminal = new EmulatedTerminal({
      interactive: false,
      rows: 0,
      pager: this.personality.pager,
      write: (text) => exec.write(text),
      end: (status) => exec.end(status),
      prompt: () => '',
      run: (line, io) => this.personality.run(line, io, this, session),
    });
    this.terminals.add(terminal);
    exec.onData((data) => terminal!.feed(data.toString('latin1')));
    exec.onClose(() => {
      terminal!.close();
      this.terminals.delete(terminal!);
      // Cisco IOS: the whole connection goes when the first exec channel has ended (after its
      // exit status and close reached the client, as on a real switch).
      if (this.personality.exec === 'one-per-connection') connection.end();
    });
    terminal.start('', exec.command);
  }

  async stop(): Promise<void> {
    for (const t of this.terminals) t.close();
    for (const task of this.memory.values()) (task as { stop?: () => Promise<void> } | undefined)?.stop?.();
    await this.ssh?.close();
    if (this.hang) {
      for (const s of this.hang.sockets) s.destroy();
      await new Promise<void>((resolve) => this.hang!.server.close(() => resolve()));
    }
  }
}

/** The personality of switch `i` (0-based) in a fleet of `platform`. */
function personalityFor(platform: string, i: number): Personality {
  const name = platform === 'mixed' ? MIXED_PLATFORMS[i % MIXED_PLATFORMS.length]! : platform;
  const personality = PERSONALITIES[name];
  if (!personality) throw new Error(`unknown platform "${platform}" (known: ${[...Object.keys(PERSONALITIES), 'mixed'].join(', ')})`);
  return personality;
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
    const platform = options.platform ?? 'cisco-ios-xe';
    personalityFor(platform, 0);
    const ownedDir = options.flashDir ? null : await mkdtemp(join(options.flashUnder ?? tmpdir(), 'swfw-emulator-'));
    const root = options.flashDir ?? ownedDir!;
    const members: EmulatedSwitch[] = [];
    for (let i = 0; i < options.count; i++) {
      const name = `emu-${String(i + 1).padStart(3, '0')}`;
      const personality = personalityFor(platform, i);
      const faults = options.faults?.get(i + 1) ?? {};
      // Each switch has its own host key, as real ones do: a pinned key identifies one switch.
      // IOS 15 era servers sign with ssh-rsa only: they get an RSA key.
      const key = generateHostKey(faults.legacySsh || faults.oldSsh ? 'rsa' : 'ecdsa');
      const address = options.addresses?.[i] ?? `127.0.1.${first + i}`;
      const info: EmulatedSwitchInfo = {
        name,
        address,
        port: options.sshPort,
        driver: personality.name,
        platform: options.catalogPlatform ?? personality.catalogPlatform,
        flashDir: join(root, name),
        faults,
        hostKey: key.fingerprint,
        ftpSource: faults.ftpSource ?? address,
      };
      members.push(new EmulatedSwitch(info, personality, options.username ?? 'admin', options.password, key.privateKey, options));
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
  inventory(credentials: { username: string; passwordEnv?: string; passwordFile?: string }): { switches: Record<string, unknown>[] } {
    return {
      switches: this.switches.map((s) => ({
        name: s.name,
        address: s.address,
        port: s.port,
        driver: s.driver,
        platform: s.platform,
        hostKey: s.hostKey,
        credentials,
        tags: Object.keys(s.faults).length ? ['faulty'] : [],
        ...(s.ftpSource !== s.address ? { ftpSource: s.ftpSource } : {}),
        ...(s.faults.oldSsh ? { sshWeakAlgorithms: ['diffie-hellman-group1-sha1'] } : {}),
      })),
    };
  }

  async stop(): Promise<void> {
    await Promise.all(this.members.map((m) => m.stop()));
    if (this.ownedDir) await rm(this.ownedDir, { recursive: true, force: true });
  }
}
