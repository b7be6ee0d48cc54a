import type { PullOutcome, SwitchHashAlgorithm, SwitchInventory } from './driver.js';
import type { Prompt } from './ssh.js';

/** A state a polled transfer is in (Dell OS10 `show image status`, Brocade `firmwaredownloadstatus`). */
export interface PolledStatus {
  state: 'running' | 'done' | 'failed';
  message: string;
  bytes: number | null;
}

/**
 * One vendor's CLI: command templates and output parsers, all pure functions so each is tested
 * against recorded transcripts in fixtures/transcripts/<driver>/.
 */
export interface Dialect {
  readonly name: string;
  readonly hashAlgorithms: readonly SwitchHashAlgorithm[];
  /** Commands whose outputs, in order, make up the inventory. */
  readonly inventoryCommands: readonly string[];
  parseInventory(outputs: readonly string[]): SwitchInventory;
  /** The command that makes the switch pull, and the prompts it asks on the way. */
  pullCommand(ftpUrl: string, fileName: string): { command: string; prompts: readonly Prompt[] };
  /** The outcome, from the pull command's own output (for dialects that finish in one command). */
  parsePullOutput(output: string): PullOutcome;
  /** Bytes so far, from the pull command's output so far, if it says. */
  parseProgress?(outputSoFar: string): number | null;
  /** For dialects whose pull runs in the background: the command to poll, and its parser. */
  readonly statusCommand?: string;
  parseStatus?(output: string): PolledStatus;
  /** Null when the platform cannot compute this algorithm. */
  hashCommand(fileName: string, algorithm: SwitchHashAlgorithm): string | null;
  /** The hex digest, or null when the switch says the file is missing. Throws on output it does not understand. */
  parseHash(output: string, algorithm: SwitchHashAlgorithm): string | null;
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
