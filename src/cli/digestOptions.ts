import type { Command } from './program.js';
import { ExitCode, ExitError } from './exitCodes.js';
import { HASH_ALGORITHMS, parseHexDigest, type Digests } from '../verify/algorithms.js';

/** Flag values for the digests a vendor publishes. */
export type DigestFlags = Partial<Record<(typeof HASH_ALGORITHMS)[number], string>>;

const FLAG_HELP: Record<(typeof HASH_ALGORITHMS)[number], string> = {
  sha256: 'expected SHA-256 (hex; Dell, Juniper)',
  md5: 'expected MD5 (hex; Cisco, Juniper)',
  sha512: 'expected SHA-512 (hex; Cisco)',
  sha1: 'expected SHA-1 (hex; Juniper)',
};

/** Adds --sha256, --md5, --sha512 and --sha1 to a command. */
export function addDigestOptions(command: Command): Command {
  for (const algorithm of HASH_ALGORITHMS) command.option(`--${algorithm} <hex>`, FLAG_HELP[algorithm]);
  return command;
}

/** The digests given as flags, normalized to lowercase hex; a malformed one is a usage error. */
export function digestsFromFlags(flags: DigestFlags): Digests {
  const digests: Digests = {};
  const problems: string[] = [];
  for (const algorithm of HASH_ALGORITHMS) {
    const text = flags[algorithm];
    if (text === undefined) continue;
    const parsed = parseHexDigest(algorithm, text);
    if (typeof parsed === 'string') digests[algorithm] = parsed;
    else problems.push(`--${algorithm}: ${parsed.problem}`);
  }
  if (problems.length > 0) throw new ExitError(ExitCode.USAGE, problems.join('; '));
  return digests;
}
