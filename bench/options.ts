import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The project root: this file runs as dist/bench/options.js, two levels below it. */
export const PROJECT_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const SWFW_CLI = join(PROJECT_ROOT, 'dist', 'src', 'cli', 'main.js');

/** Node flags put before SWFW_CLI in every swfw child (set once by --cpu-prof). */
const swfwNodeFlags: string[] = [];

/** The argv of a swfw child: Node's flags (profiling, when asked for), the CLI, then `args`. */
export function swfwArgv(...args: string[]): string[] {
  return [...swfwNodeFlags, SWFW_CLI, ...args];
}
/** Git-ignored (.gitignore: bench/work/): images, server configs, logs, smoke results. */
export const WORK_DIR = join(PROJECT_ROOT, 'bench', 'work');
export const RESULTS_FILE = join(PROJECT_ROOT, 'bench', 'RESULTS.md');
/** Smoke results go under the ignored work dir so a smoke run leaves the tree clean. */
export const SMOKE_RESULTS_FILE = join(WORK_DIR, 'RESULTS.smoke.md');
export const VSFTPD = '/usr/sbin/vsftpd';
/** Every byte of benchmark traffic stays on loopback. */
export const HOST = '127.0.0.1';

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;

/**
 * Targets (issue 14). Ratios are swfw ÷ reference; lower is better. Where a figure's floor row
 * (what the work needs on this machine) is printed, the figure is judged against it as the issue
 * says: 1c, 4 and 7 are ratios to their floor.
 */
export const Targets = {
  /** Figure 1: serve 1 GiB to curl, swfw ÷ vsftpd, on the default config after the first transfer of that version. */
  serveLarge: 1.05,
  /** Figure 1c: the first transfer of a new version (hashed on the stream) ÷ its floor (1f). */
  serveNewVersionVsFloor: 1.1,
  /** Figure 2: 200 × 4 KiB RETR on one session, swfw ÷ vsftpd. */
  smallRetrs: 1.1,
  /** Figure 3: 5 concurrent 256 MiB pulls, wall time swfw ÷ vsftpd. */
  concurrentPulls: 1.1,
  /** Figure 4: `swfw pull --sha256 --out /dev/null` ÷ its floor (4f). */
  pullVsFloor: 1.15,
  /** Figure 4d: `swfw pull --sha256` ÷ `curl | openssl dgst -sha256`. */
  pullVsOpenssl: 1.0,
  /** Figure 5: 50 pulls from their own addresses through 5 ports, swfw wall ÷ ideal (10 × figure 3's swfw wall). */
  oversubscribed: 1.1,
  /** Figure 6: peak RSS of the server while it serves 5 × 1 GiB, in MiB. */
  serverPeakRssMiB: 100,
  /** Figure 6b: peak RSS of `swfw pull` of 1 GiB to a file, in MiB. */
  clientPeakRssMiB: 100,
  /** Figure 7: rollout wall ÷ its floor (7f). */
  rolloutVsFloor: 1.3,
} as const;

/** Image sizes and counts for one mode. */
export interface Sizes {
  /** Figures 1, 4 and 6 (1 GiB). */
  largeBytes: number;
  /** Figures 3 and 5 (256 MiB). */
  mediumBytes: number;
  /** Figure 2 (4 KiB). */
  smallBytes: number;
  /** Distinct small files, one RETR each (200). */
  smallCount: number;
  /** Concurrent pulls in figures 3 and 6: the size of the passive range. */
  concurrent: number;
  /** Concurrent pulls in figure 5, each from its own address: ten times the passive range. */
  oversubscribed: number;
  /** Figure 7: emulated switches in the rollout (200). */
  rolloutSwitches: number;
  /** Figure 7: the image each switch gets (8 MiB). */
  rolloutBytes: number;
}

export const FULL_SIZES: Sizes = {
  largeBytes: GiB,
  mediumBytes: 256 * MiB,
  smallBytes: 4096,
  smallCount: 200,
  concurrent: 5,
  oversubscribed: 50,
  rolloutSwitches: 200,
  rolloutBytes: 8 * MiB,
};

/** Tiny variants: same shapes (counts, concurrency), so the smoke run exercises every code path. */
export const SMOKE_SIZES: Sizes = {
  ...FULL_SIZES,
  largeBytes: 4 * MiB,
  mediumBytes: MiB,
  rolloutSwitches: 10,
  rolloutBytes: MiB,
};

export interface PortSpan {
  min: number;
  max: number;
}

export interface BenchOptions {
  smoke: boolean;
  /** Counted pairs per figure (each pair: one swfw run, then one vsftpd run). */
  reps: number;
  /** Pairs run first and thrown away: they fill the page cache and warm up both servers. */
  warmups: number;
  /** Runs of figure 6 (5 × 1 GiB with the server's RSS sampled); the peak is the max over them. */
  rssRuns: number;
  sizes: Sizes;
  swfwPort: number;
  swfwPasv: PortSpan;
  /** Figures 1b and 3b: a second swfw with --no-hash-sent-bytes. */
  swfwNoHashPort: number;
  swfwNoHashPasv: PortSpan;
  vsftpdPort: number;
  vsftpdPasv: PortSpan;
  /** Figure 7: the passive range of the rollout's embedded server (its control port is any free one). */
  rolloutPasv: PortSpan;
  /** Figure 7: the SSH port of every emulated switch (on 127.0.1.1-127.0.1.N). */
  rolloutSshPort: number;
  /** Figure 7: the plan's concurrency (switches at once; the runner caps transfers at the passive range). */
  rolloutConcurrency: number;
  /** Run only these figures (null: all). Only "7" and "8" can run alone for now. */
  only: string[] | null;
  /**
   * Raise swfw's --max-per-ip/--max-connections to match vsftpd's max_per_ip/max_clients. Every
   * benchmark client comes from 127.0.0.1, where real switches each have an address of their own;
   * swfw's default of 8 per address would refuse 7 of figure 5's 15 pulls with 421.
   */
  raiseSwfwLimits: boolean;
  /** Arguments of the `swfw pull` runs in figure 4; {url}, {out} (/dev/null, or a scratch file for 4c) and {sha256} are substituted. */
  pullArgs: string;
  /** Exit 3 when a figure misses its target (full runs only). */
  strict: boolean;
  resultsFile: string | null;
  /** Write a V8 CPU profile of every swfw child here (`node --cpu-prof`); null: no profiling. */
  cpuProfDir: string | null;
}

/**
 * The pull CLI as src/cli/commands/pull.ts defines it: `--sha256 <hex>` is the expected digest, which
 * pull verifies in the same pass as the download. Override with --pull-args if its flags change.
 */
export const DEFAULT_PULL_ARGS = 'pull {url} --out {out} --sha256 {sha256}';

export const USAGE = `Usage: npm run bench -- [options]

Runs swfw serve and vsftpd side by side on 127.0.0.1 and writes bench/RESULTS.md.

  --smoke                tiny images (4 MiB / 1 MiB / 4 KiB), 2 pairs; writes bench/work/RESULTS.smoke.md,
                         asserts correctness only (exit 0 unless the harness or a transfer breaks)
  --reps N               counted pairs per figure (default 5; smoke 2)
  --warmups N            warm-up pairs, not counted (default 1)
  --rss-runs N           runs of figure 6 (default 3; smoke 1)
  --swfw-port N          swfw control port (default 2121)
  --swfw-pasv A-B        swfw passive range (default 42000-42004)
  --swfw-no-hash-port N  figures 1b/3b: control port of a second swfw run with --no-hash-sent-bytes (default 2122)
  --swfw-no-hash-pasv A-B
                         its passive range (default 42005-42009)
  --vsftpd-port N        vsftpd control port (default 2221)
  --vsftpd-pasv A-B      vsftpd passive range (default 42010-42014)
  --rollout-pasv A-B     figure 7: the rollout server's passive range (default 42020-42024)
  --rollout-ssh-port N   figure 7: SSH port of the emulated switches on 127.0.1.x (default 47500)
  --rollout-concurrency N
                         figure 7: the plan's concurrency (default 40; transfers are capped at the 5
                         passive ports, the rest are in SSH pre-check or verify)
  --only 7|8|7,8         run figure 7 (the rollout) and/or 8 (multi-site at scale) alone; results go to
                         bench/work/RESULTS.only-<ids>.md
  --swfw-default-limits  keep swfw's per-address connection limit (8): figure 5 then gets 421s
  --pull-args "ARGS"     swfw pull arguments for figure 4 (default "${DEFAULT_PULL_ARGS}")
  --cpu-prof DIR         run every swfw child under node --cpu-prof, profiles written to DIR
                         (open them in Chrome DevTools; profiling slows swfw, so ratios are off)
  --strict               exit 3 when a full run misses a target
  --no-results           print the table only, write no results file
  -h, --help             this text`;

export class UsageError extends Error {
  override name = 'UsageError';
}

function parseInteger(flag: string, raw: string | undefined, min: number, max: number): number {
  const value = Number(raw);
  if (raw === undefined || !Number.isInteger(value) || value < min || value > max) {
    throw new UsageError(`${flag} needs an integer from ${min} to ${max}, got ${raw ?? 'nothing'}`);
  }
  return value;
}

function parseSpan(flag: string, raw: string | undefined, size: number): PortSpan {
  const match = /^(\d+)-(\d+)$/.exec(raw ?? '');
  const min = Number(match?.[1]);
  const max = Number(match?.[2]);
  if (!match || min < 1024 || max > 65535 || max - min + 1 !== size) {
    throw new UsageError(`${flag} needs a range of exactly ${size} unprivileged ports like 42000-42004, got ${raw ?? 'nothing'}`);
  }
  return { min, max };
}

/** Parses the bench flags; returns null for --help. */
export function parseOptions(argv: readonly string[]): BenchOptions | null {
  const args = [...argv];
  if (args.includes('-h') || args.includes('--help')) return null;
  const smoke = args.includes('--smoke');
  const sizes = smoke ? SMOKE_SIZES : FULL_SIZES;
  const options: BenchOptions = {
    smoke,
    reps: smoke ? 2 : 5,
    warmups: 1,
    rssRuns: smoke ? 1 : 3,
    sizes,
    swfwPort: 2121,
    swfwPasv: { min: 42000, max: 42004 },
    swfwNoHashPort: 2122,
    swfwNoHashPasv: { min: 42005, max: 42009 },
    vsftpdPort: 2221,
    vsftpdPasv: { min: 42010, max: 42014 },
    rolloutPasv: { min: 42020, max: 42024 },
    rolloutSshPort: 47500,
    rolloutConcurrency: 40,
    only: null,
    raiseSwfwLimits: true,
    pullArgs: DEFAULT_PULL_ARGS,
    strict: false,
    resultsFile: smoke ? SMOKE_RESULTS_FILE : RESULTS_FILE,
    cpuProfDir: null,
  };
  for (let i = 0; i < args.length; i++) {
    const flag = args[i]!;
    const value = () => args[++i];
    switch (flag) {
      case '--smoke':
        break;
      case '--reps':
        options.reps = parseInteger(flag, value(), 1, 100);
        break;
      case '--warmups':
        options.warmups = parseInteger(flag, value(), 0, 10);
        break;
      case '--rss-runs':
        options.rssRuns = parseInteger(flag, value(), 1, 20);
        break;
      case '--swfw-port':
        options.swfwPort = parseInteger(flag, value(), 1024, 65535);
        break;
      case '--swfw-no-hash-port':
        options.swfwNoHashPort = parseInteger(flag, value(), 1024, 65535);
        break;
      case '--swfw-no-hash-pasv':
        options.swfwNoHashPasv = parseSpan(flag, value(), sizes.concurrent);
        break;
      case '--vsftpd-port':
        options.vsftpdPort = parseInteger(flag, value(), 1024, 65535);
        break;
      case '--swfw-pasv':
        options.swfwPasv = parseSpan(flag, value(), sizes.concurrent);
        break;
      case '--vsftpd-pasv':
        options.vsftpdPasv = parseSpan(flag, value(), sizes.concurrent);
        break;
      case '--rollout-pasv':
        options.rolloutPasv = parseSpan(flag, value(), sizes.concurrent);
        break;
      case '--rollout-ssh-port':
        options.rolloutSshPort = parseInteger(flag, value(), 1024, 65535);
        break;
      case '--rollout-concurrency':
        options.rolloutConcurrency = parseInteger(flag, value(), 1, 1000);
        break;
      case '--only': {
        const ids = (value() ?? '').split(',').map((id) => id.trim());
        if (ids.length === 0 || ids.some((id) => id !== '7' && id !== '8')) throw new UsageError(`--only: only figures 7 and 8 can run alone (got ${ids.join(',') || 'nothing'})`);
        options.only = ids;
        break;
      }
      case '--swfw-default-limits':
        options.raiseSwfwLimits = false;
        break;
      case '--pull-args': {
        const template = value();
        if (!template || !template.includes('{url}')) throw new UsageError('--pull-args needs a template containing {url}');
        options.pullArgs = template;
        break;
      }
      case '--strict':
        options.strict = true;
        break;
      case '--cpu-prof': {
        const dir = value();
        if (!dir || dir.startsWith('--')) throw new UsageError('--cpu-prof needs a directory');
        options.cpuProfDir = resolve(dir);
        break;
      }
      case '--no-results':
        options.resultsFile = null;
        break;
      default:
        throw new UsageError(`unknown option ${flag}`);
    }
  }
  const ports = [options.swfwPort, options.swfwNoHashPort, options.vsftpdPort];
  for (const span of [options.swfwPasv, options.swfwNoHashPasv, options.vsftpdPasv, options.rolloutPasv]) for (let p = span.min; p <= span.max; p++) ports.push(p);
  if (new Set(ports).size !== ports.length) throw new UsageError('the control ports and passive ranges of the servers overlap');
  if (options.cpuProfDir) swfwNodeFlags.splice(0, swfwNodeFlags.length, '--cpu-prof', `--cpu-prof-dir=${options.cpuProfDir}`);
  if (options.only && options.resultsFile) options.resultsFile = join(WORK_DIR, `RESULTS.only-${options.only.join('-')}${smoke ? '.smoke' : ''}.md`);
  return options;
}
