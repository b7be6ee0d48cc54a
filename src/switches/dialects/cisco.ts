import { SwitchOutputError, ftpCredentialsAuthority, redactSecrets, type PullOutcome, type SwitchHashAlgorithm, type SwitchInventory } from '../driver.js';
import { HASH_UNSUPPORTED, capture, lastLine, namedDigest, type Dialect } from '../dialect.js';
import { CISCO_STYLE_PROMPT, type Question } from '../cliSession.js';

/**
 * Cisco IOS and IOS XE (SWITCH-CLI-REFERENCE.md §1.1): `show version`, `dir flash:`,
 * `copy ftp://user:pass@host/path flash:NAME` and `verify /sha512` (IOS XE) or `/md5`.
 *
 * The copy's questions are all answered, and never with a guess that destroys data: on class-B
 * flash platforms IOS asks `Erase flash: before copying? [confirm]`, where Enter erases every file;
 * swfw types `n` (one keystroke, no Enter: `[confirm]` reads a single key, and an Enter left
 * behind would confirm the next question).
 */
export function parseCiscoShowVersion(output: string): { model: string; version: string } {
  const version =
    capture(output, /Cisco IOS XE Software, Version\s+(\S+)/) ?? capture(output, /Cisco IOS Software.*?, Version\s+([^,\s]+)/) ?? capture(output, /^.*IOS.*Version\s+([^,\s]+)/m);
  const model =
    capture(output, /Model [Nn]umber\s*:\s*(\S+)/) ?? capture(output, /^cisco\s+(\S+)\s+\(.*\)\s+processor/im) ?? capture(output, /^cisco\s+(\S+)\s+.*bytes of memory/im);
  if (!version) throw new SwitchOutputError('show version: no "Version" line');
  if (!model) throw new SwitchOutputError('show version: no model ("Model Number" or "cisco … processor")');
  return { model, version };
}

export function parseCiscoDirFree(output: string, command = 'dir flash:'): number {
  const free = capture(output, /\d+\s+bytes total\s+\((\d+)\s+bytes free\)/);
  if (free === null) throw new SwitchOutputError(`${command}: no "bytes total (… bytes free)" line`);
  return Number(free);
}

/**
 * `N bytes copied in …` (or `[OK - N/4096 bytes]`, `[OK - N bytes]`); any `%Error` is a failure,
 * and so is an old IOS's `Verifying checksum... invalid` (its `OK (0xF5DB)` form is fine).
 */
export function parseCiscoCopy(output: string): PullOutcome {
  const error =
    output.match(/^\s*%\s*Error.*$/im) ?? output.match(/^\s*%\s*(?:Copy|Erase) aborted.*$/im) ?? output.match(/^.*Verifying checksum\.*\s*(?:invalid|failed|error|bad).*$/im);
  if (error) return { ok: false, message: redactSecrets(error[0].trim()), bytes: null };
  const copied = capture(output, /(\d+) bytes copied in/) ?? capture(output, /\[OK - (\d+)(?:\/\d+)? bytes\]/);
  if (copied !== null) return { ok: true, message: redactSecrets(lastLine(output, /bytes copied|\[OK/)), bytes: Number(copied) };
  return { ok: false, message: redactSecrets(lastLine(output) || 'copy ended without "[OK" or "bytes copied"'), bytes: null };
}

/** Cisco's refusal of a command or keyword it does not have (`verify /sha512` on classic IOS). */
export const CISCO_INVALID_INPUT = /%\s*(Invalid input|Incomplete command|Unrecognized command|Ambiguous command)/i;
/** How IOS says a file is missing (pyntc's list, plus `%Error verifying … (No such file …)`). */
const CISCO_NO_FILE = /No such file|No files found|Path does not exist|Error opening|file not found/i;

/**
 * `verify /md5 (flash:f) = <hex>`, the hex possibly wrapped; the `.`s before `Done!` are progress.
 * The digest must name our file and no `%Error` may follow it.
 */
export function parseCiscoVerify(output: string, algorithm: SwitchHashAlgorithm, fileName: string): string | null | typeof HASH_UNSUPPORTED {
  if (CISCO_INVALID_INPUT.test(output)) return HASH_UNSUPPORTED;
  const line = new RegExp(`verify /${algorithm}\\s*\\((?<name>[^)]*)\\)\\s*=\\s*(?<hex>[0-9a-fA-F]+)`, 'i');
  const digest = namedDigest(output, line, fileName, algorithm, `verify /${algorithm}`, /%\s*Error/i);
  if (digest !== null) return digest;
  if (CISCO_NO_FILE.test(output)) return null;
  throw new SwitchOutputError(`verify /${algorithm}: no "= <digest>" line`);
}

/** The copy's questions (§1.1 Prompts). The order matters only in that each is tested alone. */
export function ciscoCopyQuestions(host: string, path: string, fileName: string): Question[] {
  return [
    { match: /Address or name of remote host\s*\[[^\]]*\]\?\s*$/i, answer: host },
    { match: /Source (?:file)?name\s*\[[^\]]*\]\?\s*$/i, answer: path.replace(/^\//, '') },
    { match: /Destination (?:file)?name\s*\[[^\]]*\]\?\s*$/i, answer: fileName },
    // Never Enter here: Enter means "erase every file on the flash".
    { match: /Erase \S+ before copying\?\s*\[confirm\]\s*$/i, answer: 'n', enter: false, note: 'declined to erase the flash before copying' },
    { match: /Erasing the \S+ (?:file ?system|flash) will remove all files.*\[confirm\]\s*$/i, answer: 'n', enter: false, note: 'declined to erase the flash' },
    // The file exists and differs (the pre-check saw it): replacing it is the point.
    { match: /over\s*write\?\s*\[confirm\]\s*$/i, answer: '', note: 'replaced the file of the same name' },
  ];
}

function ciscoDialect(name: string, hashBytesPerSecond: number): Dialect {
  return {
    name,
    protocols: ['ftp', 'tftp', 'scp', 'http', 'https'],
    prompt: CISCO_STYLE_PROMPT,
    privilege: { unprivilegedEnd: '>', command: 'enable' },
    setupCommands: ['terminal length 0', 'terminal width 511'],
    inventoryCommands: ['show version', 'dir flash:'],
    parseInventory(outputs): SwitchInventory {
      return { ...parseCiscoShowVersion(outputs[0] ?? ''), freeBytes: parseCiscoDirFree(outputs[1] ?? '') };
    },
    defaultVrf: null,
    pullCommand(url, fileName) {
      const authority = ftpCredentialsAuthority(url);
      // Paths are relative to the FTP login directory (§1.1): swfw's root is that directory.
      return { command: `copy ftp://${authority}${url.path} flash:${fileName}`, questions: ciscoCopyQuestions(url.host, url.path, fileName) };
    },
    parsePullOutput: parseCiscoCopy,
    // SHA-512 is documented for IOS XE only; classic IOS answers `% Invalid input` and md5 is used.
    hashAlgorithms: ['sha512', 'md5'],
    hashCommand: (fileName, algorithm) => `verify /${algorithm} flash:${fileName}`,
    parseHash: parseCiscoVerify,
    hashBytesPerSecond,
  };
}

/** Classic IOS (Catalyst 2960/3750): older flash, assumed slower to read. */
export const ciscoIos = ciscoDialect('cisco-ios', 1_000_000);
/** IOS XE: a Catalyst 9k reads flash at under 4 MB/s during `verify` (pyntc#410); half that is assumed. */
export const ciscoIosXe = ciscoDialect('cisco-ios-xe', 2_000_000);
