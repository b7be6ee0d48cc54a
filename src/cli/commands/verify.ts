import { basename } from 'node:path';
import type { Command } from '../program.js';
import { addDigestOptions, digestsFromFlags, type DigestFlags } from '../digestOptions.js';
import { ExitCode, ExitError } from '../exitCodes.js';
import { entryDigests, findImage, loadCatalog } from '../../catalog/index.js';
import { HASH_ALGORITHMS, withSha256, type HashAlgorithm } from '../../verify/algorithms.js';
import { judgeEvidence, type ReferenceEvidence } from '../../verify/evidence.js';
import { hashFile } from '../../verify/hashFile.js';
import { resolveImagesDir } from './catalog.js';

interface VerifyFlags extends DigestFlags {
  catalog?: string;
  image?: string;
  json?: boolean;
}

/** `swfw verify FILE`: one read pass with every algorithm asked for; exit 0 on match, 3 on mismatch. */
export async function verifyCommand(file: string, flags: VerifyFlags): Promise<void> {
  const digests = digestsFromFlags(flags);
  const given = Object.keys(digests).length > 0;
  let reference: ReferenceEvidence;
  let image: string | null = null;
  if (flags.catalog !== undefined) {
    if (given) throw new ExitError(ExitCode.USAGE, 'give either --catalog or digest flags, not both');
    const imagesDir = resolveImagesDir(flags.catalog);
    const catalog = await loadCatalog(imagesDir);
    const name = flags.image ?? basename(file);
    const entry = findImage(catalog, name);
    if (!entry) throw new ExitError(ExitCode.USAGE, `no catalog entry for "${name}" in ${imagesDir} (use --image with the catalog path)`);
    reference = { digests: entryDigests(entry), size: entry.size };
    image = entry.file;
  } else {
    if (flags.image !== undefined) throw new ExitError(ExitCode.USAGE, '--image needs --catalog');
    if (!given) throw new ExitError(ExitCode.USAGE, 'give at least one of --sha256, --md5, --sha512, --sha1, or --catalog DIR');
    reference = { digests, size: null };
  }
  // Exactly the algorithms asked for: SHA-256 only when it is one of them.
  const algorithms: HashAlgorithm[] = HASH_ALGORITHMS.filter((a) => reference.digests[a] !== undefined);
  let hashed;
  try {
    hashed = await hashFile(file, algorithms.length ? algorithms : withSha256([]));
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'EACCES' || code === 'EISDIR') throw new ExitError(ExitCode.USAGE, `cannot read ${file} (${code})`);
    throw err;
  }
  const report = judgeEvidence({ reference, client: { digests: hashed.digests, bytes: hashed.size } });
  if (flags.json) {
    process.stdout.write(
      `${JSON.stringify({ file, image, verdict: report.verdict, ok: report.ok, reason: report.reason, bytes: hashed.size, digests: hashed.digests, expected: { ...reference.digests, size: reference.size } })}\n`,
    );
  } else {
    for (const algorithm of algorithms) {
      const expected = reference.digests[algorithm]!;
      const actual = hashed.digests[algorithm]!;
      process.stdout.write(expected === actual ? `${algorithm} OK ${actual}\n` : `${algorithm} MISMATCH expected ${expected} got ${actual}\n`);
    }
    if (reference.size !== null && reference.size !== hashed.size) process.stdout.write(`size MISMATCH expected ${reference.size} got ${hashed.size}\n`);
  }
  if (!report.ok) throw new ExitError(ExitCode.CHECKSUM_MISMATCH, `${file}: ${report.verdict}: ${report.reason}`);
}

export function registerVerify(program: Command): void {
  const command = program
    .command('verify')
    .description('check a file against published digests or its catalog entry, in one read pass (exit 0 match, 3 mismatch)')
    .argument('<file>', 'the image to check');
  addDigestOptions(command);
  command
    .option('--catalog <dir>', 'check against the catalog in this images directory')
    .option('--image <name>', 'catalog path of the image (default: the file name)')
    .option('--json', 'one JSON object')
    .action(verifyCommand);
}
