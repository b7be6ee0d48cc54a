import type { FtpUrlParts, PullOutcome, SwitchHashAlgorithm, SwitchInventory } from './driver.js';
import { DIGEST_HEX_LENGTH, SwitchOutputError } from './driver.js';
import type { PromptGrammar, Question } from './cliSession.js';

/** A state a background transfer is in (Dell OS10 `show image status`). */
export interface PolledStatus {
  state: 'running' | 'done' | 'failed' | 'none';
  message: string;
  bytes: number | null;
  /**
   * What identifies the last transfer the switch reports (OS10's `Task End`): a `done` with the
   * same marker as before the pull started is the previous download's, not ours.
   */
  marker: string | null;
}

/** What `parseHash` returns when the switch refused the command itself (`% Invalid input`): try the next algorithm. */
export const HASH_UNSUPPORTED = Symbol('hash-unsupported');

export interface PullCommand {
  command: string;
  /** The questions the command may ask, with their answers. */
  questions: readonly Question[];
  /** Commands run before it (EOS `cli vrf NAME`) and after it, whatever its outcome. */
  before?: readonly string[];
  after?: readonly string[];
}

/**
 * One vendor's CLI: its prompt, command templates and output parsers. The parsers are pure
 * functions, each tested against the transcripts in fixtures/transcripts/<driver>/.
 */
export interface Dialect {
  readonly name: string;
  /** Protocols the platform's own CLI can pull an image with. */
  readonly protocols: readonly string[];
  readonly prompt: PromptGrammar;
  /** Prompt ends that mean an unprivileged mode, and the command that leaves it (`>` → `enable`). */
  readonly privilege?: { readonly unprivilegedEnd: string; readonly command: string };
  /** Prompt end of a Unix shell the account may land in, and the command that starts the CLI (Junos root: `%` → `cli`). */
  readonly shellEscape?: { readonly end: string; readonly command: string };
  /** Run once after login: paging off, wide terminal. A refusal is harmless (pagers are answered anyway). */
  readonly setupCommands: readonly string[];
  /** Commands whose outputs, in order, make up the inventory. */
  readonly inventoryCommands: readonly string[];
  parseInventory(outputs: readonly string[]): SwitchInventory;
  /** The VRF the copy uses when the inventory names none (NX-OS: `management`), or null. */
  readonly defaultVrf: string | null;
  /** The command that makes the switch pull, and the questions it asks on the way. */
  pullCommand(url: FtpUrlParts, fileName: string, vrf: string | null): PullCommand;
  /** The outcome, from the pull command's own output. */
  parsePullOutput(output: string): PullOutcome;
  /** Bytes so far, from the pull command's output so far, if it says. */
  parseProgress?(outputSoFar: string): number | null;
  /** For platforms whose pull runs in the background (OS10 `image download`): how to poll it. */
  readonly background?: { readonly statusCommand: string; parseStatus(output: string): PolledStatus };
  /** On-box digests, best first. */
  readonly hashAlgorithms: readonly SwitchHashAlgorithm[];
  hashCommand(fileName: string, algorithm: SwitchHashAlgorithm): string;
  /**
   * The hex digest of `fileName`, null when the switch says the file is missing, HASH_UNSUPPORTED
   * when it refused the command. Throws on output it does not understand, on a digest that names
   * another file, and on an error after the digest: never a digest it is not sure of.
   */
  parseHash(output: string, algorithm: SwitchHashAlgorithm, fileName: string): string | null | typeof HASH_UNSUPPORTED;
  /**
   * How fast the platform hashes a file on its flash, assumed low (bytes per second): a hash
   * command may print nothing for size ÷ rate. A Catalyst 9k reads flash for `verify` at under
   * 4 MB/s (pyntc#410, cisco.ios#1093).
   */
  readonly hashBytesPerSecond: number;
  /** Bytes of free space the pull needs for an image of `size` (Comware .ipe bundles unpack beside themselves). */
  spaceNeeded?(size: number, fileName: string): number;
}

/** The first capture of `pattern` in `text`, or null. */
export function capture(text: string, pattern: RegExp): string | null {
  const match = text.match(pattern);
  return match?.[1] ?? null;
}

/** The last non-empty line that matches `pattern` (or the last non-empty line), trimmed. */
export function lastLine(text: string, pattern?: RegExp): string {
  const lines = text.split(/\r?\n|\r/).map((l) => l.trim()).filter((l) => l.length > 0);
  const wanted = pattern ? lines.filter((l) => pattern.test(l)) : lines;
  return wanted.at(-1) ?? lines.at(-1) ?? '';
}

/** The first line that matches `pattern`, trimmed, or null. */
export function firstLine(text: string, pattern: RegExp): string | null {
  return text.split(/\r?\n|\r/).map((l) => l.trim()).find((l) => pattern.test(l)) ?? null;
}

/**
 * Reads a hex digest that starts at `start` in `text` and may be wrapped over several lines (a
 * Cisco-published `verify /sha512` capture shows a SHA-512 broken in two): lines made only of hex
 * digits continue it. A digest that is not its algorithm's length is a parse fault, said as such.
 */
export function joinedDigest(text: string, start: RegExp, algorithm: SwitchHashAlgorithm, command: string): string | null {
  const match = start.exec(text);
  if (!match) return null;
  const rest = text.slice(match.index + match[0].length);
  // The digest may start on the same line or on the next (Comware: `SHA256 digest:` then the hex).
  const lines = rest.split('\n');
  if ((lines[0] ?? '').trim() === '' && lines.length > 1) lines.shift();
  let hex = (lines[0] ?? '').trim();
  if (!/^[0-9a-fA-F]+$/.test(hex)) throw new SwitchOutputError(`${command}: no hex digest after "${match[0].trim()}"`);
  for (const line of lines.slice(1)) {
    const t = line.trim();
    if (!/^[0-9a-fA-F]+$/.test(t)) break;
    hex += t;
  }
  return checkedDigest(hex, algorithm, command);
}

/** Lower-cases a digest after checking its length: a cut or padded digest is a parse fault. */
export function checkedDigest(hex: string, algorithm: SwitchHashAlgorithm, command: string): string {
  const want = DIGEST_HEX_LENGTH[algorithm];
  if (!/^[0-9a-fA-F]+$/.test(hex) || hex.length !== want) {
    throw new SwitchOutputError(`${command}: the ${algorithm} digest has ${hex.length} hex digits, not ${want} (cut or garbled output; nothing is concluded about the image)`);
  }
  return hex.toLowerCase();
}

/** Sizes as Junos and `df -h` print them (`7.0G`, `512M`, `980K`, `1.2T`, plain bytes). */
export function humanBytes(text: string): number | null {
  const m = text.trim().match(/^(\d+(?:\.\d+)?)([BKMGTP]?)i?B?$/i);
  if (!m) return null;
  const power = 'BKMGTP'.indexOf((m[2] || 'B').toUpperCase());
  return Math.floor(Number(m[1]) * 1024 ** power);
}

/**
 * The digest a hash command printed for `fileName`, from lines that name the file (`verify /md5
 * (flash:NAME) = …`, `SHA256 (/var/tmp/NAME) = …`, `HEX  /var/os10-image/NAME`): `line` captures
 * `name` and `hex` (the hex may continue on following lines; see joinedDigest). Null when no such
 * line is there. Throws when the line names another file, or when an error follows it.
 */
export function namedDigest(output: string, line: RegExp, fileName: string, algorithm: SwitchHashAlgorithm, command: string, errorAfter: RegExp): string | null {
  const withIndices = new RegExp(line.source, line.flags.includes('d') ? line.flags : `${line.flags}d`);
  const match = withIndices.exec(output);
  if (!match?.groups || !match.indices?.groups) return null;
  const named = match.groups['name']!.trim();
  const base = named.split(/[/:]/).pop() ?? named;
  if (base !== fileName) throw new SwitchOutputError(`${command}: the digest is of ${named}, not ${fileName}`);
  // From the hex on; lines made only of hex continue it (a digest wrapped by the terminal).
  const [hexStart, hexEnd] = match.indices.groups['hex']!;
  const lineEnd = output.indexOf('\n', hexEnd);
  const lines = [output.slice(hexStart, hexEnd), ...(lineEnd === -1 ? [] : output.slice(lineEnd + 1).split('\n'))];
  let hex = lines.shift()!.trim();
  while (lines.length && /^[0-9a-fA-F]+$/.test(lines[0]!.trim())) hex += lines.shift()!.trim();
  const after = lines.join('\n');
  if (errorAfter.test(after)) throw new SwitchOutputError(`${command}: an error follows the digest (${after.trim().split('\n')[0]}): nothing is concluded`);
  return checkedDigest(hex, algorithm, command);
}
