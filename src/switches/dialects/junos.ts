import { SwitchOutputError, ftpCredentialsAuthority, redactSecrets, type PullOutcome, type SwitchHashAlgorithm } from '../driver.js';
import { HASH_UNSUPPORTED, capture, firstLine, humanBytes, namedDigest, type Dialect } from '../dialect.js';
import { JUNOS_PROMPT } from '../cliSession.js';

/** Where images go on Junos: /var/tmp (survives `request system storage cleanup` until used). */
export const JUNOS_IMAGE_DIR = '/var/tmp';

/**
 * Juniper Junos (EX/QFX/MX/SRX; SWITCH-CLI-REFERENCE.md §2.5): `show version` (`Junos:` or, on
 * older EX, `JUNOS EX Software Suite [..]`), `show system storage`, `file copy
 * ftp://user:pass@host/%2Fpath /var/tmp/NAME` (`%2F` makes the path absolute, Juniper's URL
 * format page) and `file checksum sha-256` (or md5). Junos errors start with `error:`; the copy
 * prints no confirmed success line, so a copy without an error is judged by the hash after it.
 */
export function parseJunosShowVersion(output: string): { model: string; version: string } {
  const version =
    capture(output, /^\s*Junos:\s*(\S+)/im) ?? capture(output, /JUNOS .*?Software Suite\s*\[([^\]]+)\]/i) ?? capture(output, /JUNOS Base OS boot\s*\[([^\]]+)\]/i);
  const model = capture(output, /^\s*Model:\s*(\S+)/im);
  if (!version) throw new SwitchOutputError('show version: no "Junos:" or "JUNOS … Software Suite [..]" line');
  if (!model) throw new SwitchOutputError('show version: no "Model:" line');
  return { model, version };
}

/**
 * Free space for /var/tmp from `show system storage`: the row whose mount point (less a
 * `/.mount` prefix) is the longest prefix of /var/tmp. On a Virtual Chassis the first member's
 * section (fpc0, the one we are logged into) comes first.
 */
export function parseJunosStorageFree(output: string): number {
  let best: { mount: string; avail: number } | null = null;
  for (const raw of output.split('\n')) {
    if (/^\s*fpc\d+:/.test(raw) && best) break;
    const cols = raw.trim().split(/\s+/);
    if (cols.length < 6 || !/^\d+%$/.test(cols[4]!)) continue;
    const mount = cols.slice(5).join(' ').replace(/^\/\.mount(?=\/|$)/, '') || '/';
    // A full filesystem shows a negative Avail (reserved blocks in use): nothing is free there.
    const avail = cols[3]!.startsWith('-') ? 0 : humanBytes(cols[3]!);
    if (avail === null) continue;
    const covers = mount === '/' || JUNOS_IMAGE_DIR === mount || JUNOS_IMAGE_DIR.startsWith(`${mount}/`);
    if (covers && (!best || mount.length > best.mount.length)) best = { mount, avail };
  }
  if (!best) throw new SwitchOutputError(`show system storage: no filesystem holding ${JUNOS_IMAGE_DIR}`);
  return best.avail;
}

/**
 * `file copy` fails with an `error:` line, or with libfetch's own words on a `fetch:` line (which
 * a failed fetch prints with or without an `error:` after it).
 */
const JUNOS_COPY_FAILURE =
  /^\s*error:|\berror:|^\s*fetch:|Not logged in|\bfailed\b|No such file|Permission denied|timed out|refused|unknown command|syntax error|Can't open data connection|transfer aborted|File unavailable|Insufficient storage|Unknown host|Host is down|Network is unreachable/i;

export function parseJunosCopy(output: string): PullOutcome {
  const failure = firstLine(output, JUNOS_COPY_FAILURE);
  if (failure) return { ok: false, message: redactSecrets(failure), bytes: null };
  return { ok: true, message: 'file copy ended without an error', bytes: null };
}

const JUNOS_LABEL: Record<SwitchHashAlgorithm, string> = { sha256: 'sha-256', md5: 'md5', sha512: 'sha-512' };

/** `SHA256 (/var/tmp/f) = <hex>`; missing files: `error: stat: … No such file or directory` or, on 24.x, `sha256: (sha256: …: No such file or directory) = directory`. */
export function parseJunosChecksum(output: string, algorithm: SwitchHashAlgorithm, fileName: string): string | null | typeof HASH_UNSUPPORTED {
  if (/syntax error|unknown command|invalid value/i.test(output)) return HASH_UNSUPPORTED;
  const command = `file checksum ${JUNOS_LABEL[algorithm]}`;
  const digest = namedDigest(output, /^\s*(?:SHA-?256|SHA-?512|MD5|SHA1)\s*\((?<name>[^)]*)\)\s*=\s*(?<hex>[0-9a-fA-F]+)\s*$/im, fileName, algorithm, command, /^\s*error:/im);
  if (digest !== null) return digest;
  if (/No such file|does not exist|not found/i.test(output)) return null;
  throw new SwitchOutputError(`${command}: no "(file) = <digest>" line`);
}

export const juniperJunos: Dialect = {
  name: 'juniper-junos',
  protocols: ['ftp', 'http', 'https', 'scp', 'sftp'],
  prompt: JUNOS_PROMPT,
  shellEscape: { end: '%', command: 'cli' },
  setupCommands: ['set cli screen-length 0', 'set cli screen-width 1024'],
  inventoryCommands: ['show version', 'show system storage'],
  parseInventory: (outputs) => ({ ...parseJunosShowVersion(outputs[0] ?? ''), freeBytes: parseJunosStorageFree(outputs[1] ?? '') }),
  defaultVrf: null,
  pullCommand(url, fileName, vrf) {
    const authority = ftpCredentialsAuthority(url);
    // %2F: an absolute path (Juniper's URL format); without it the path is relative to the login directory.
    const path = `/%2F${url.path.replace(/^\/+/, '').split('/').map(encodeURIComponent).join('/')}`;
    return {
      command: `file copy ftp://${authority}${path} ${JUNOS_IMAGE_DIR}/${fileName}${vrf ? ` routing-instance ${vrf}` : ''}`,
      questions: [{ match: /Password for [^\r\n]*:\s*$/i, answer: url.password, secret: true }],
    };
  },
  parsePullOutput: parseJunosCopy,
  hashAlgorithms: ['sha256', 'md5'],
  hashCommand: (fileName, algorithm) => `file checksum ${JUNOS_LABEL[algorithm]} ${JUNOS_IMAGE_DIR}/${fileName}`,
  parseHash: parseJunosChecksum,
  hashBytesPerSecond: 4_000_000,
};
