import { resolve } from 'node:path';
import type { Command } from '../program.js';
import { addDigestOptions, digestsFromFlags, type DigestFlags } from '../digestOptions.js';
import { formatBytes } from '../../core/format.js';
import { ExitCode, ExitError } from '../exitCodes.js';
import { defaultImagesDir } from '../../config/loader.js';
import { CatalogError, addImage, catalogFilePath, checkCatalog, loadCatalog } from '../../catalog/index.js';

/** Env var naming the images directory (as for `swfw serve`). */
export const IMAGES_ENV = 'SWFW_IMAGES';

/** `--images DIR` (relative to the cwd), else SWFW_IMAGES, else serve's default (/srv/firmware). */
export function resolveImagesDir(flag: string | undefined, env: NodeJS.ProcessEnv = process.env): string {
  if (flag !== undefined) return resolve(flag);
  if (env[IMAGES_ENV]) return resolve(env[IMAGES_ENV]);
  return defaultImagesDir();
}

/** Runs a catalog action; a CatalogError (bad path, unknown image) is a usage error. */
async function asUsage<T>(action: () => Promise<T>): Promise<T> {
  try {
    return await action();
  } catch (err) {
    if (err instanceof CatalogError) throw new ExitError(ExitCode.USAGE, err.message);
    throw err;
  }
}

interface AddFlags extends DigestFlags {
  platform: string;
  version: string;
  images?: string;
}

export async function catalogAddCommand(file: string, flags: AddFlags): Promise<void> {
  const imagesDir = resolveImagesDir(flags.images);
  const vendor = digestsFromFlags(flags);
  const result = await asUsage(() => addImage(imagesDir, file, { platform: flags.platform, version: flags.version, vendor }));
  if (!result.added) {
    for (const algorithm of result.mismatched) {
      process.stderr.write(`swfw: ${algorithm} MISMATCH: vendor published ${vendor[algorithm]}, file has ${result.entry[algorithm]}\n`);
    }
    throw new ExitError(ExitCode.CHECKSUM_MISMATCH, `${result.entry.file} does not match the vendor's published ${result.mismatched.join(', ')}: not added`);
  }
  const checked = result.entry.vendorChecked.length ? `vendor ${result.entry.vendorChecked.join('+')} matched` : 'no vendor digest given';
  process.stdout.write(
    `${result.replaced ? 'updated' : 'added'} ${result.entry.file} ${result.entry.platform} ${result.entry.version} ${formatBytes(result.entry.size)} sha256 ${result.entry.sha256} (${checked}) in ${catalogFilePath(imagesDir)}\n`,
  );
}

export async function catalogListCommand(flags: { images?: string; json?: boolean }): Promise<void> {
  const imagesDir = resolveImagesDir(flags.images);
  const catalog = await loadCatalog(imagesDir, { missingOk: true });
  if (flags.json) {
    process.stdout.write(`${JSON.stringify({ images: imagesDir, entries: catalog.images })}\n`);
    return;
  }
  if (catalog.images.length === 0) {
    process.stdout.write(`no images in ${catalogFilePath(imagesDir)}\n`);
    return;
  }
  const rows = catalog.images.map((e) => [e.platform, e.version, formatBytes(e.size), e.sha256.slice(0, 16), e.file]);
  const header = ['PLATFORM', 'VERSION', 'SIZE', 'SHA256', 'FILE'];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  for (const row of [header, ...rows]) process.stdout.write(`${row.map((c, i) => (i === row.length - 1 ? c : c.padEnd(widths[i]!))).join('  ')}\n`);
}

export async function catalogCheckCommand(flags: { images?: string; json?: boolean }): Promise<void> {
  const imagesDir = resolveImagesDir(flags.images);
  const report = await checkCatalog(imagesDir);
  if (flags.json) process.stdout.write(`${JSON.stringify({ images: imagesDir, ...report })}\n`);
  else {
    for (const r of report.results) {
      const detail = r.state === 'ok' ? (r.mtimeChanged ? ' (mtime changed, content unchanged)' : '') : `: ${r.changes.join(', ')}`;
      process.stdout.write(`${r.state === 'ok' ? 'ok    ' : r.state === 'drift' ? 'DRIFT ' : 'MISSING'} ${r.file}${detail}\n`);
    }
    for (const file of report.uncatalogued) process.stdout.write(`note   ${file} is not in the catalog\n`);
  }
  if (!report.ok) {
    const bad = report.results.filter((r) => r.state !== 'ok').length;
    throw new ExitError(ExitCode.CHECKSUM_MISMATCH, `${bad} of ${report.results.length} catalog images drifted or are missing`);
  }
}

export function registerCatalog(program: Command): void {
  // `catalog add --version V` is the firmware version. Without positional options the root
  // program's own --version (print swfw's version) would take it wherever it appears; with them,
  // root options count only before the subcommand name (`swfw --version` still works).
  program.enablePositionalOptions();
  const catalog = program.command('catalog').description('the image catalog (catalog.json in the images directory): add, list, check');
  const imagesHelp = `images directory holding catalog.json (default: ${IMAGES_ENV} or ${defaultImagesDir()})`;
  const add = catalog
    .command('add')
    .description("hash an image once (SHA-256, MD5, SHA-512), cross-check the vendor's published digests, record it")
    .argument('<file>', 'the image, inside the images directory')
    .requiredOption('--platform <p>', 'platform, e.g. cisco-ios-xe, cisco-nxos, dell-os10')
    .requiredOption('--version <v>', 'firmware version, e.g. 17.09.04a');
  addDigestOptions(add);
  add.option('--images <dir>', imagesHelp).action(catalogAddCommand);
  catalog
    .command('list')
    .description('list the catalog')
    .option('--images <dir>', imagesHelp)
    .option('--json', 'one JSON object')
    .action(catalogListCommand);
  catalog
    .command('check')
    .description('re-hash every image and report drift (exit 3 if any image drifted or is missing)')
    .option('--images <dir>', imagesHelp)
    .option('--json', 'one JSON object')
    .action(catalogCheckCommand);
}
