/**
 * `swfw serve --open-firewall` on Linux: inserts the rules of `swfw firewall rules` at start and
 * removes exactly those at stop. Every rule carries the comment `swfw:<control port>`; nothing
 * else is ever deleted. Opening first removes stale tagged rules (from a run that was killed), so
 * restarts never duplicate them.
 *
 * Backends, chosen by what is installed and usable:
 * - iptables / ip6tables (legacy or nf_tables backend): the filter table's INPUT chain;
 * - nft: every base chain on the input hook of a native table. With iptables present too, the
 *   tables iptables owns (ip/ip6 filter, raw, mangle, nat, security) are left to iptables: an
 *   nft-native ruleset (Debian's `inet filter input`) drops independently of iptables' chains,
 *   so both need the rule.
 */
import { execFile } from 'node:child_process';
import type { Logger } from '../core/logger.js';
import { iptablesRules, nftRule, ruleTag, type RuleSpec } from './rules.js';

export interface CommandResult {
  code: number;
  stdout: string;
  stderr: string;
  /** The program was not found in PATH. */
  missing: boolean;
}

export type RunCommand = (file: string, args: string[]) => Promise<CommandResult>;

/** How long one iptables/nft call may take (xtables lock waits included). */
const COMMAND_TIMEOUT_MS = 15_000;

/** Runs a program without a shell (PATH lookup), collecting its output. */
export const runCommand: RunCommand = (file, args) =>
  new Promise((resolve) => {
    execFile(file, args, { timeout: COMMAND_TIMEOUT_MS, maxBuffer: 32 * 1024 * 1024 }, (err, stdout, stderr) => {
      const error = err as (NodeJS.ErrnoException & { code?: string | number }) | null;
      const missing = error?.code === 'ENOENT';
      const code = error === null ? 0 : typeof error.code === 'number' ? error.code : missing ? 127 : 1;
      resolve({ code, stdout, stderr: missing ? `${file}: not found in PATH` : stderr || (error?.message ?? ''), missing });
    });
  });

/** --open-firewall cannot work here: not Linux, not root, or no iptables/nft. The CLI exits 2. */
export class FirewallRefusal extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'FirewallRefusal';
  }
}

/** An iptables/nft command failed while changing rules. */
export class FirewallCommandError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'FirewallCommandError';
  }
}

const IPTABLES_TABLES = new Set(['filter', 'raw', 'mangle', 'nat', 'security']);

interface NftChain {
  family: string;
  table: string;
  name: string;
}

interface NftRuleRef extends NftChain {
  handle: number;
}

/** Splits one `iptables -S` line into arguments (double quotes group, as iptables prints them). */
export function splitRuleLine(line: string): string[] {
  const args: string[] = [];
  const pattern = /"((?:[^"\\]|\\.)*)"|(\S+)/g;
  let match: RegExpExecArray | null;
  while ((match = pattern.exec(line))) args.push(match[1] !== undefined ? match[1].replace(/\\(.)/g, '$1') : match[2]!);
  return args;
}

/** The `-A INPUT …` lines of `iptables -S INPUT` whose comment is exactly `tag`, as -D arguments. */
export function taggedIptablesRules(listing: string, tag: string): string[][] {
  const found: string[][] = [];
  for (const line of listing.split('\n')) {
    const args = splitRuleLine(line.trim());
    if (args[0] !== '-A') continue;
    const comment = args.indexOf('--comment');
    if (comment < 0 || args[comment + 1] !== tag) continue;
    found.push(args.slice(2));
  }
  return found;
}

/** Base filter chains on the input hook for the family, from `nft -j list chains`. */
export function nftInputChains(json: string, family: 4 | 6, skipIptablesTables: boolean): NftChain[] {
  const families = family === 6 ? ['ip6', 'inet'] : ['ip', 'inet'];
  const chains: NftChain[] = [];
  for (const item of (JSON.parse(json) as { nftables?: Array<Record<string, unknown>> }).nftables ?? []) {
    const chain = item['chain'] as { family: string; table: string; name: string; hook?: string; type?: string } | undefined;
    if (!chain || chain.hook !== 'input' || chain.type !== 'filter' || !families.includes(chain.family)) continue;
    if (skipIptablesTables && chain.family !== 'inet' && IPTABLES_TABLES.has(chain.table)) continue;
    chains.push({ family: chain.family, table: chain.table, name: chain.name });
  }
  return chains;
}

/** Rules whose comment is exactly `tag`, from `nft -a -j list ruleset`. */
export function nftTaggedRules(json: string, tag: string, skipIptablesTables: boolean): NftRuleRef[] {
  const rules: NftRuleRef[] = [];
  for (const item of (JSON.parse(json) as { nftables?: Array<Record<string, unknown>> }).nftables ?? []) {
    const rule = item['rule'] as { family: string; table: string; chain: string; handle: number; comment?: string } | undefined;
    if (!rule || rule.comment !== tag) continue;
    if (skipIptablesTables && rule.family !== 'inet' && IPTABLES_TABLES.has(rule.table)) continue;
    rules.push({ family: rule.family, table: rule.table, name: rule.chain, handle: rule.handle });
  }
  return rules;
}

export interface FirewallEnvironment {
  run?: RunCommand;
  platform?: NodeJS.Platform;
  /** The effective uid (root is 0). */
  uid?: number;
  logger: Logger;
}

export interface OpenSummary {
  backends: string[];
  removedStale: number;
  inserted: number;
}

export class LinuxFirewall {
  private constructor(
    private readonly spec: RuleSpec,
    private readonly run: RunCommand,
    private readonly logger: Logger,
    /** iptables or ip6tables, when usable. */
    private readonly iptables: string | null,
    private readonly nft: boolean,
  ) {}

  /** Checks that rules can be changed here; throws FirewallRefusal with the reason when not. */
  static async prepare(spec: RuleSpec, env: FirewallEnvironment): Promise<LinuxFirewall> {
    const run = env.run ?? runCommand;
    const platform = env.platform ?? process.platform;
    if (platform !== 'linux') {
      throw new FirewallRefusal(`--open-firewall works on Linux only (this is ${platform}); apply the rules of \`swfw firewall rules\` by hand`);
    }
    const uid = env.uid ?? process.geteuid?.() ?? -1;
    if (uid !== 0) {
      throw new FirewallRefusal('--open-firewall needs root to change iptables/nft rules: run serve as root, or apply `swfw firewall rules` by hand');
    }
    const tool = spec.family === 6 ? 'ip6tables' : 'iptables';
    const iptables = await run(tool, ['-w', '-S', 'INPUT']);
    const nft = await run('nft', ['-j', 'list', 'chains']);
    if (iptables.code !== 0 && nft.code !== 0) {
      const why = [iptables, nft].map((r) => r.stderr.trim().split('\n')[0]).join('; ');
      throw new FirewallRefusal(`--open-firewall needs ${tool} or nft, and neither is usable: ${why}`);
    }
    return new LinuxFirewall(spec, run, env.logger, iptables.code === 0 ? tool : null, nft.code === 0);
  }

  private get tag(): string {
    return ruleTag(this.spec.controlPort);
  }

  private async must(file: string, args: string[]): Promise<string> {
    const result = await this.run(file, args);
    if (result.code !== 0) throw new FirewallCommandError(`${file} ${args.join(' ')} failed: ${result.stderr.trim() || `exit ${result.code}`}`);
    return result.stdout;
  }

  /** Removes stale tagged rules, then inserts ours first in each input chain. */
  async open(): Promise<OpenSummary> {
    const removedStale = await this.close();
    const backends: string[] = [];
    let inserted = 0;
    if (this.iptables) {
      for (const rule of [...iptablesRules(this.spec)].reverse()) {
        await this.must(this.iptables, ['-w', '-I', 'INPUT', '1', ...rule]);
        inserted++;
      }
      backends.push(`${this.iptables} INPUT`);
    }
    if (this.nft) {
      const chains = nftInputChains(await this.must('nft', ['-j', 'list', 'chains']), this.spec.family, this.iptables !== null);
      for (const chain of chains) {
        await this.must('nft', ['insert', 'rule', chain.family, chain.table, chain.name, nftRule(this.spec)]);
        inserted++;
        backends.push(`nft ${chain.family} ${chain.table} ${chain.name}`);
      }
    }
    this.logger.info('firewall opened for FTP', { tag: this.tag, rules: inserted, chains: backends, removedStale });
    return { backends, removedStale, inserted };
  }

  /** Removes every rule tagged `swfw:<port>` (ours, or stale ones of a killed run); returns how many. */
  async close(): Promise<number> {
    let removed = 0;
    if (this.iptables) {
      for (const rule of taggedIptablesRules(await this.must(this.iptables, ['-w', '-S', 'INPUT']), this.tag)) {
        await this.must(this.iptables, ['-w', '-D', 'INPUT', ...rule]);
        removed++;
      }
    }
    if (this.nft) {
      for (const rule of nftTaggedRules(await this.must('nft', ['-a', '-j', 'list', 'ruleset']), this.tag, this.iptables !== null)) {
        await this.must('nft', ['delete', 'rule', rule.family, rule.table, rule.name, 'handle', String(rule.handle)]);
        removed++;
      }
    }
    if (removed) this.logger.info('firewall rules removed', { tag: this.tag, rules: removed });
    return removed;
  }
}
