import { readFileSync } from 'node:fs';
import { Option, type Command } from '../program.js';
import { numberArgument } from '../arguments.js';
import { addDigestOptions, digestsFromFlags, type DigestFlags } from '../digestOptions.js';
import { ProgressBar } from '../progressBar.js';
import { formatBytes } from '../../core/format.js';
import { ConfigError } from '../../core/errors.js';
import { ExitCode, ExitError, type ExitCodeValue } from '../exitCodes.js';
import { Limits } from '../../core/limits.js';
import { PASSWORD_ENV } from '../../config/loader.js';
import { createLogger } from '../../log/logger.js';
import { ANONYMOUS_USER, Puller, PullUsageError, parseFtpUrl, type FtpTarget, type PullOutcome, type PullResult } from '../../client/index.js';
import { CatalogError, entryDigests, findImage, loadCatalog } from '../../catalog/index.js';
import type { Digests } from '../../verify/algorithms.js';
import type { ReferenceEvidence } from '../../verify/evidence.js';
import { resolveImagesDir } from './catalog.js';

export interface PullFlags extends DigestFlags {
  out: string;
  catalog?: string;
  image?: string;
  allHashes?: boolean;
  retries?: string;
  timeout?: string;
  retryDelay?: string;
  epsv?: boolean;
  tls?: boolean;
  ca?: string;
  json?: boolean;
}

/** Exit code per outcome: 0 verified, 3 checksum mismatch, 4 transfer failed after retries. */
export const PULL_EXIT: Readonly<Record<PullOutcome, ExitCodeValue>> = {
  verified: ExitCode.OK,
  unverified: ExitCode.OK,
  mismatch: ExitCode.CHECKSUM_MISMATCH,
  'transfer-failed': ExitCode.TRANSFER_FAILED,
  'local-error': ExitCode.FAILURE,
  interrupted: ExitCode.FAILURE,
};

const ANONYMOUS_NAMES: ReadonlySet<string> = new Set([ANONYMOUS_USER, 'ftp']);

function usage(message: string): never {
  throw new ExitError(ExitCode.USAGE, message);
}

function integerFlag(name: string, text: string | undefined, fallback: number, min: number, max: number): number {
  if (text === undefined) return fallback;
  const value = Number(text);
  if (!Number.isInteger(value) || value < min || value > max) usage(`--${name} must be a whole number from ${min} to ${max}`);
  return value;
}

/** The password: SWFW_PASSWORD; a password in the URL works but is warned about; anonymous needs none. */
function resolvePassword(target: FtpTarget, env: NodeJS.ProcessEnv, warn: (line: string) => void): string {
  if (target.urlPassword !== null) {
    warn(`warning: the password in the URL is visible in the process list and shell history; set ${PASSWORD_ENV} instead`);
    return target.urlPassword;
  }
  const fromEnv = env[PASSWORD_ENV];
  if (fromEnv) return fromEnv;
  if (ANONYMOUS_NAMES.has(target.user.toLowerCase())) return 'anonymous@';
  return usage(`no password for user "${target.user}": set ${PASSWORD_ENV}`);
}

/** The reference to verify against: digest flags, or the catalog entry of the image. */
async function resolveReference(target: FtpTarget, flags: PullFlags): Promise<{ reference: ReferenceEvidence | null; image: string | null }> {
  const digests = digestsFromFlags(flags);
  const given = Object.keys(digests).length > 0;
  if (flags.catalog === undefined) {
    if (flags.image !== undefined) usage('--image needs --catalog');
    return { reference: given ? { digests, size: null } : null, image: null };
  }
  if (given) usage('give either --catalog or digest flags (--sha256, --md5, --sha512, --sha1), not both');
  const imagesDir = resolveImagesDir(flags.catalog);
  const catalog = await loadCatalog(imagesDir);
  const name = flags.image ?? target.path;
  const entry = findImage(catalog, name);
  if (!entry) usage(`no catalog entry for "${name}" in ${imagesDir} (use --image with the catalog path)`);
  return { reference: { digests: entryDigests(entry), size: entry.size }, image: entry.file };
}

/** The JSON report: one object, the last line on stdout. */
export function pullJson(result: PullResult, exitCode: number, image: string | null): Record<string, unknown> {
  const d: Digests = result.digests;
  const verdict = result.outcome === 'transfer-failed' || result.outcome === 'local-error' || result.outcome === 'interrupted' ? result.outcome : (result.verdict ?? result.outcome);
  return {
    verdict,
    ok: result.outcome === 'verified',
    outcome: result.outcome,
    exitCode,
    reason: result.reason,
    url: result.url,
    image,
    out: result.out,
    ...(result.discarded ? { discarded: true } : {}),
    bytes: result.bytes,
    remoteSize: result.remoteSize,
    durationMs: result.durationMs,
    sha256: d.sha256 ?? null,
    md5: d.md5 ?? null,
    sha512: d.sha512 ?? null,
    ...(d.sha1 ? { sha1: d.sha1 } : {}),
    expected: result.reference ? { ...result.reference.digests, size: result.reference.size } : null,
    algorithms: result.algorithms,
    hashing: result.hashing,
    attempts: result.attempts,
    restOffsets: result.restOffsets,
    restarts: result.restarts,
    replyCode: result.replyCode,
  };
}

/** `swfw pull URL --out FILE`: pulls like a switch, verifies in one pass, exits 0/2/3/4. */
export async function pullCommand(url: string, flags: PullFlags): Promise<void> {
  const stderr = (line: string) => process.stderr.write(`swfw: ${line}\n`);
  const parsed = parseFtpUrl(url);
  if ('problem' in parsed) usage(parsed.problem);
  const password = resolvePassword(parsed, process.env, stderr);
  const retries = integerFlag('retries', flags.retries, Limits.PULL_DEFAULT_RETRIES, 0, 100);
  const timeoutMs = integerFlag('timeout', flags.timeout, Limits.PULL_TIMEOUT_MS / 1000, 1, 3600) * 1000;
  const baseMs = integerFlag('retry-delay', flags.retryDelay, Limits.PULL_BACKOFF_BASE_MS, 0, 600_000);
  if (flags.ca !== undefined && !flags.tls) usage('--ca needs --tls');
  let ca: Buffer | undefined;
  if (flags.ca !== undefined) {
    try {
      ca = readFileSync(flags.ca);
    } catch (err) {
      usage(`--ca: cannot read ${flags.ca} (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
    }
  }
  const { reference, image } = await resolveReference(parsed, flags);
  const logger = createLogger({ level: 'warn' });
  const controller = new AbortController();
  const onSignal = () => controller.abort();
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  const puller = new Puller({
    target: parsed,
    password,
    out: flags.out,
    reference,
    extraAlgorithms: flags.allHashes ? ['md5', 'sha512'] : [],
    tls: flags.tls ? (ca ? { ca } : {}) : null,
    passive: flags.epsv ? 'epsv' : 'pasv',
    retries,
    timeoutMs,
    backoff: { baseMs, maxMs: Math.max(baseMs, Limits.PULL_BACKOFF_MAX_MS) },
    signal: controller.signal,
    logger,
  });
  const bar = process.stderr.isTTY ? new ProgressBar(process.stderr) : null;
  if (bar) {
    puller.on('progress', (p) => bar.update(p));
    puller.on('retry', () => bar.clear());
    puller.on('restart', () => bar.clear());
  }
  let result: PullResult;
  try {
    result = await puller.run();
  } catch (err) {
    if (err instanceof PullUsageError) usage(err.message);
    throw err;
  } finally {
    bar?.clear();
    process.removeListener('SIGINT', onSignal);
    process.removeListener('SIGTERM', onSignal);
    await logger.close();
  }
  const exitCode = PULL_EXIT[result.outcome];
  if (result.outcome === 'unverified') stderr('warning: no --sha256/--md5/--sha512/--catalog given: the image was pulled but NOT verified');
  if (flags.json) process.stdout.write(`${JSON.stringify(pullJson(result, exitCode, image))}\n`);
  else if (result.out || (result.discarded && exitCode === ExitCode.OK)) {
    const seconds = (result.durationMs / 1000).toFixed(2);
    process.stdout.write(`${result.outcome} ${result.out ?? '(discarded)'} ${formatBytes(result.bytes)} in ${seconds} s sha256 ${result.digests.sha256}\n`);
  }
  if (exitCode !== ExitCode.OK) throw new ExitError(exitCode, `${result.outcome}: ${result.reason}`);
}

export function registerPull(program: Command): void {
  const command = program
    .command('pull')
    .description('pull an image the way a switch does (passive FTP), verify it in one pass, then move it into place')
    .argument('<url>', 'ftp://user@host:port/path (password from SWFW_PASSWORD)')
    .requiredOption('--out <file>', 'where the verified image goes (a temp file next to it holds the transfer); /dev/null verifies without keeping it');
  addDigestOptions(command);
  command
    .option('--catalog <dir>', 'verify against the catalog in this images directory')
    .option('--image <name>', 'catalog path of the image (default: the URL path)')
    .option('--all-hashes', 'also compute MD5 and SHA-512 for the report (costs ~3.7 s/GiB of CPU)')
    .option('--retries <n>', `retries after transient failures, and re-pulls after a mismatch (default ${Limits.PULL_DEFAULT_RETRIES})`, numberArgument)
    .option('--timeout <s>', `no progress for this long fails the attempt (default ${Limits.PULL_TIMEOUT_MS / 1000})`, numberArgument)
    .option('--retry-delay <ms>', `first backoff delay, doubled per failure, with jitter (default ${Limits.PULL_BACKOFF_BASE_MS})`, numberArgument)
    .option('--epsv', 'use EPSV (RFC 2428) instead of PASV')
    .option('--tls', 'explicit FTPS (AUTH TLS, PROT P)')
    .option('--ca <file>', 'PEM certificates to trust for --tls (e.g. a private CA)')
    .addOption(new Option('--json', 'print one JSON object as the last stdout line'))
    .action(async (url: string, flags: PullFlags) => {
      try {
        await pullCommand(url, flags);
      } catch (err) {
        // Automation reading --json gets an object for usage errors too.
        const usageError = (err instanceof ExitError && err.exitCode === ExitCode.USAGE) || err instanceof ConfigError || err instanceof CatalogError;
        if (flags.json && usageError) {
          const reason = err instanceof ConfigError ? err.problems.map((p) => `${p.path}: ${p.message}`).join('; ') : (err as Error).message;
          process.stdout.write(`${JSON.stringify({ verdict: 'usage-error', ok: false, exitCode: ExitCode.USAGE, reason })}\n`);
        }
        if (err instanceof CatalogError) throw new ExitError(ExitCode.USAGE, err.message);
        throw err;
      }
    });
}
