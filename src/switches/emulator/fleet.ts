/**
 * The switch emulator: N switches on loopback, each an SSH server on its own 127.0.1.x address
 * with the CLI of one platform (a personality), a flash of fixed capacity, and its own faults.
 * A switch's copy pulls through swfw's client module out of the switch's own FTP source address,
 * so the server sees N distinct switches.
 */
import { execFile } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { promisify } from 'node:util';
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
import { AosCxRestServer } from './personalities/aoscx.js';
import { hostKeyFingerprint } from '../hostKey.js';

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
  /** HTTPS port of the REST API on switches that have one (AOS-CX; default 443, as on a real switch). */
  restPort?: number;
  /**
   * PEM of the CA the switches trust when they download over HTTPS (AOS-CX `crypto pki
   * ta-profile`): swfw's server certificate, or its CA. Without it an HTTPS download fails the
   * certificate check, as on a switch with no TA profile.
   */
  trustCa?: string;
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
  /** REST API switches (AOS-CX): the HTTPS port and the `SHA256:` fingerprint of its certificate. */
  rest?: { port: number; certificateFingerprint: string };
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
  private rest: AosCxRestServer | null = null;
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
    private readonly fleet: FleetOptions,
    private readonly certificate: { cert: string; key: string } | null,
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
    if (this.certificate && this.info.rest) {
      this.rest = new AosCxRestServer({
        sw: this,
        address: this.info.address,
        port: this.info.rest.port,
        ...this.certificate,
        trustCa: this.fleet.trustCa ?? null,
        checkLogin: (u, p) => u === this.username && p === password,
      });
      await this.rest.listen();
    }
  }

  /** REST sessions logged in and not logged out (AOS-CX), or null for switches without a REST API. */
  restSessions(): { open: number; logins: number; logouts: number } | null {
    return this.rest ? { open: this.rest.openSessions(), ...this.rest.counts } : null;
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
    await this.rest?.stop();
    if (this.hang) {
      for (const s of this.hang.sockets) s.destroy();
      await new Promise<void>((resolve) => this.hang!.server.close(() => resolve()));
    }
  }
}

const run = promisify(execFile);

/**
 * A self-signed certificate for a switch's HTTPS server (a real AOS-CX makes its own at first
 * boot), with its address in the SAN. Made by openssl: Node can make keys but not certificates.
 */
async function switchCertificate(name: string, address: string, dir: string): Promise<{ cert: string; key: string; fingerprint: string }> {
  const keyFile = join(dir, `${name}.key`);
  const certFile = join(dir, `${name}.crt`);
  await run('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', keyFile, '-out', certFile, '-days', '30', '-subj', `/CN=${name}`, '-addext', `subjectAltName=IP:${address}`]);
  const [cert, key] = await Promise.all([readFile(certFile, 'utf8'), readFile(keyFile, 'utf8')]);
  await Promise.all([rm(keyFile), rm(certFile)]);
  return { cert, key, fingerprint: hostKeyFingerprint(new X509Certificate(cert).raw) };
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
      let certificate: { cert: string; key: string } | null = null;
      if (personality.restApi) {
        const made = await switchCertificate(name, address, root);
        certificate = { cert: made.cert, key: made.key };
        info.rest = { port: options.restPort ?? 443, certificateFingerprint: made.fingerprint };
      }
      members.push(new EmulatedSwitch(info, personality, options.username ?? 'admin', options.password, key.privateKey, options, certificate));
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

  /** REST sessions of switch `name` (AOS-CX): logins, logouts and those still open. */
  restSessions(name: string): { open: number; logins: number; logouts: number } | null {
    return this.members.find((m) => m.info.name === name)?.restSessions() ?? null;
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
        ...(s.rest ? { restPort: s.rest.port, restCertificate: s.rest.certificateFingerprint } : {}),
      })),
    };
  }

  async stop(): Promise<void> {
    await Promise.all(this.members.map((m) => m.stop()));
    if (this.ownedDir) await rm(this.ownedDir, { recursive: true, force: true });
  }
}
