/**
 * A three-host lab in network namespaces: switch side ↔ firewall (real iptables, ip_forward) ↔
 * server side. Each lab has unique namespace names (pid + counter); the veth pairs are created
 * directly inside the namespaces, so nothing is added to the host's own network stack, and all
 * traffic stays between the namespaces. iptables/nft changes happen only inside them.
 *
 *   switch 10.231.1.2/24 ── 10.231.1.1 [firewall] 10.231.2.1 ── 10.231.2.2/24 server
 *
 * Teardown kills only the processes inside these namespaces (by PID, from `ip netns pids`), then
 * deletes the namespaces and checks with `ip netns list` that they are gone.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { startCli, runCli, type CliOptions, type CliProcess, type CliResult } from './cli.js';

export const SWITCH_ADDRESS = '10.231.1.2';
export const SWITCH_SUBNET = '10.231.1.0/24';
export const FIREWALL_SWITCH_SIDE = '10.231.1.1';
export const FIREWALL_SERVER_SIDE = '10.231.2.1';
export const SERVER_ADDRESS = '10.231.2.2';

/** Absolute path of `ip`, so a child started with a restricted PATH still runs inside the namespace. */
export const IP = (spawnSync('sh', ['-c', 'command -v ip'], { encoding: 'utf8' }).stdout ?? '').trim() || '/usr/sbin/ip';

let counter = 0;
const live = new Set<Lab>();

/** Why netns tests cannot run here, or null. */
export function netnsSkipReason(): string | null {
  if (process.platform !== 'linux') return 'network namespaces need Linux';
  if (process.geteuid?.() !== 0) return 'network namespaces and iptables need root (CI runs as root)';
  for (const tool of ['ip', 'iptables', 'nft']) {
    if (spawnSync(tool, ['--version'], { stdio: 'ignore' }).error) return `${tool} is not installed`;
  }
  const probe = `swfwprobe${process.pid}`;
  const made = spawnSync('ip', ['netns', 'add', probe], { encoding: 'utf8' });
  if (made.status !== 0) return `cannot create a network namespace: ${made.stderr.trim()}`;
  spawnSync('ip', ['netns', 'del', probe]);
  return null;
}

/** Skips the suite with a printed reason when namespaces cannot be used. */
export function skipUnlessNetns(context: Mocha.Context): void {
  const reason = netnsSkipReason();
  if (reason) {
    console.log(`      skipped: ${reason}`);
    context.skip();
  }
}

function run(command: string[], input?: string): string {
  try {
    return execFileSync(command[0]!, command.slice(1), { encoding: 'utf8', input, stdio: ['pipe', 'pipe', 'pipe'] });
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    throw new Error(`${command.join(' ')} failed: ${e.stderr?.trim() || e.message}`);
  }
}

export class Lab {
  readonly switchNs: string;
  readonly firewallNs: string;
  readonly serverNs: string;
  private readonly processes = new Set<CliProcess>();

  constructor() {
    counter++;
    const base = `swfw${process.pid}n${counter}`;
    this.switchNs = `${base}sw`;
    this.firewallNs = `${base}fw`;
    this.serverNs = `${base}srv`;
  }

  get names(): string[] {
    return [this.switchNs, this.firewallNs, this.serverNs];
  }

  /** Creates the namespaces, links, addresses, routes and forwarding. */
  create(): this {
    live.add(this);
    const { switchNs: sw, firewallNs: fw, serverNs: srv } = this;
    for (const ns of this.names) {
      run(['ip', 'netns', 'add', ns]);
      run(['ip', '-n', ns, 'link', 'set', 'lo', 'up']);
    }
    run(['ip', '-n', fw, 'link', 'add', 'tosw', 'type', 'veth', 'peer', 'name', 'tofw', 'netns', sw]);
    run(['ip', '-n', fw, 'link', 'add', 'tosrv', 'type', 'veth', 'peer', 'name', 'tofw', 'netns', srv]);
    run(['ip', '-n', fw, 'addr', 'add', `${FIREWALL_SWITCH_SIDE}/24`, 'dev', 'tosw']);
    run(['ip', '-n', fw, 'addr', 'add', `${FIREWALL_SERVER_SIDE}/24`, 'dev', 'tosrv']);
    run(['ip', '-n', sw, 'addr', 'add', `${SWITCH_ADDRESS}/24`, 'dev', 'tofw']);
    run(['ip', '-n', srv, 'addr', 'add', `${SERVER_ADDRESS}/24`, 'dev', 'tofw']);
    for (const [ns, dev] of [[fw, 'tosw'], [fw, 'tosrv'], [sw, 'tofw'], [srv, 'tofw']] as const) run(['ip', '-n', ns, 'link', 'set', dev, 'up']);
    run(['ip', '-n', sw, 'route', 'add', 'default', 'via', FIREWALL_SWITCH_SIDE]);
    run(['ip', '-n', srv, 'route', 'add', 'default', 'via', FIREWALL_SERVER_SIDE]);
    this.exec(fw, ['sysctl', '-q', '-w', 'net.ipv4.ip_forward=1']);
    return this;
  }

  /** Runs a command inside a namespace (synchronously); throws with its stderr on failure. */
  exec(ns: string, command: string[], input?: string): string {
    return run(['ip', 'netns', 'exec', ns, ...command], input);
  }

  /** iptables inside a namespace. */
  iptables(ns: string, ...args: string[]): string {
    return this.exec(ns, ['iptables', '-w', ...args]);
  }

  /** Resets the firewall namespace: empty FORWARD (policy ACCEPT) and raw table. */
  resetFirewall(): void {
    this.iptables(this.firewallNs, '-P', 'FORWARD', 'ACCEPT');
    this.iptables(this.firewallNs, '-F', 'FORWARD');
    this.iptables(this.firewallNs, '-t', 'raw', '-F');
    // Forget connections of earlier tests: their conntrack entries must not decide this one.
    spawnSync('ip', ['netns', 'exec', this.firewallNs, 'conntrack', '-F'], { stdio: 'ignore' });
  }

  /** Starts `swfw ARGS` inside a namespace; stopped (by PID) in destroy() if the test does not. */
  start(ns: string, args: string[], options: CliOptions = {}): CliProcess {
    const cli = startCli(args, { ...options, wrapper: [IP, 'netns', 'exec', ns] });
    this.processes.add(cli);
    void cli.exited.then(() => this.processes.delete(cli));
    return cli;
  }

  /** Stops (SIGKILL, by PID) every process started with start() that is still running. */
  async stopProcesses(): Promise<void> {
    await Promise.all([...this.processes].map((cli) => cli.stop('SIGKILL', 2000)));
  }

  /** Runs `swfw ARGS` inside a namespace to completion. */
  runCli(ns: string, args: string[], options: CliOptions & { timeoutMs?: number } = {}): Promise<CliResult> {
    return runCli(args, { ...options, wrapper: [IP, 'netns', 'exec', ns] });
  }

  /**
   * Stops every process this lab started and anything else still inside its namespaces (by PID),
   * deletes the namespaces, and verifies they are gone. Never throws for a partly built lab.
   */
  async destroy(): Promise<void> {
    await this.stopProcesses();
    this.destroySync();
  }

  destroySync(): void {
    live.delete(this);
    deleteNamespaces(this.names);
  }
}

/**
 * Kills every process inside the namespaces (by PID, from `ip netns pids`), deletes them, and
 * checks with `ip netns list` that they are gone; throws naming any left behind.
 */
export function deleteNamespaces(names: readonly string[]): void {
  for (const ns of names) {
    const pids = spawnSync(IP, ['netns', 'pids', ns], { encoding: 'utf8' }).stdout ?? '';
    for (const pid of pids.split(/\s+/).filter(Boolean)) {
      try {
        process.kill(Number(pid), 'SIGKILL');
      } catch {
        // already gone
      }
    }
    spawnSync(IP, ['netns', 'del', ns], { stdio: 'ignore' });
  }
  const left = spawnSync(IP, ['netns', 'list'], { encoding: 'utf8' }).stdout ?? '';
  const remaining = names.filter((ns) => left.split('\n').some((line) => line.split(' ')[0] === ns));
  if (remaining.length) throw new Error(`network namespaces left behind: ${remaining.join(', ')}`);
}

// Best effort if the run dies between create() and destroy(): delete what is left.
process.once('exit', () => {
  for (const lab of live) {
    try {
      lab.destroySync();
    } catch {
      // nothing more can be done while exiting
    }
  }
});
