/**
 * The multi-site lab: one network namespace per site, each with its own port 21 and passive range
 * 63006-63010 (namespaces have separate port spaces, as separate sites have), its own emulated
 * switches on its own loopback, and a relay (redisRelay.ts) that is its WAN link to the central
 * redis-server: the relay listens on 127.0.0.1:6379 inside the site and pipes to Redis's Unix
 * socket. Redis and the coordinator stay in the root namespace on 127.0.0.1. No interface is
 * added to the host's network stack; all of a site's traffic stays inside its namespace.
 *
 * Teardown stops every process started here by PID, and anything else left inside the namespaces,
 * then deletes them and checks they are gone.
 */
import { execFileSync, spawn } from 'node:child_process';
import { join } from 'node:path';
import { PROJECT_ROOT } from '../../src/config/loader.js';
import { IP, deleteNamespaces } from './netns.js';
import { CliProcess, startCli } from './cli.js';

/** Where a site's agent reaches Redis: its relay, inside the site's namespace. */
export const SITE_ENGINE_URL = 'redis://127.0.0.1:6379';
const RELAY = join(PROJECT_ROOT, 'dist', 'test', 'helpers', 'redisRelay.js');

let counter = 0;
const live = new Set<SitesLab>();

export class SitesLab {
  readonly namespaces = new Map<string, string>();
  private readonly processes = new Set<CliProcess>();
  private readonly relays = new Map<string, CliProcess>();

  constructor(readonly sites: readonly string[]) {
    counter++;
    for (const site of sites) this.namespaces.set(site, `swfw${process.pid}m${counter}${site}`);
  }

  ns(site: string): string {
    return this.namespaces.get(site)!;
  }

  create(): this {
    live.add(this);
    for (const ns of this.namespaces.values()) {
      execFileSync(IP, ['netns', 'add', ns]);
      execFileSync(IP, ['-n', ns, 'link', 'set', 'lo', 'up']);
    }
    return this;
  }

  /** Starts the site's WAN link to Redis's Unix socket. */
  async startRelay(site: string, socketPath: string): Promise<void> {
    const child = spawn(IP, ['netns', 'exec', this.ns(site), process.execPath, RELAY, '127.0.0.1', '6379', socketPath], { stdio: ['ignore', 'pipe', 'pipe'] });
    const relay = new CliProcess(child);
    this.relays.set(site, relay);
    this.processes.add(relay);
    await relay.waitFor(/^relay /m, 10_000);
  }

  /** Starts `swfw ARGS` inside the site's namespace; stopped by PID at destroy() if the test does not. */
  start(site: string, args: string[], env: NodeJS.ProcessEnv = {}): CliProcess {
    const cli = startCli(args, { env, wrapper: [IP, 'netns', 'exec', this.ns(site)] });
    this.processes.add(cli);
    void cli.exited.then(() => this.processes.delete(cli));
    return cli;
  }

  /**
   * Cuts the site off the engine (`cut`) or restores it: packets to and from the relay are dropped
   * inside the site's namespace, so open connections hang as over a failed WAN link.
   */
  partition(site: string, cut: boolean): void {
    const op = cut ? '-I' : '-D';
    for (const rule of [['INPUT', '--dport'], ['INPUT', '--sport']] as const) {
      execFileSync(IP, ['netns', 'exec', this.ns(site), 'iptables', '-w', op, rule[0], '-p', 'tcp', rule[1], '6379', '-j', 'DROP']);
    }
  }

  async destroy(): Promise<void> {
    await Promise.all([...this.processes].map((p) => p.stop('SIGKILL', 2000)));
    this.processes.clear();
    this.destroySync();
  }

  destroySync(): void {
    live.delete(this);
    deleteNamespaces([...this.namespaces.values()]);
  }
}

process.once('exit', () => {
  for (const lab of live) {
    try {
      lab.destroySync();
    } catch {
      // nothing more can be done while exiting
    }
  }
});
