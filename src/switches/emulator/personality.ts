/**
 * A personality: how one platform's CLI looks and behaves in the emulator. Each is written from
 * SWITCH-CLI-REFERENCE.md (formats, prompts, questions, paging, quirks), never from the drivers:
 * the emulator is the stand-in for a real switch, and a driver must cope with it as it would with
 * one.
 */
import type { CopyResult, Flash } from './flash.js';
import type { SwitchFaults } from './faults.js';
import type { CliIo, Pager } from './terminal.js';

/** One emulated switch, as its personality sees it. */
export interface EmulatedSwitchState {
  /** Host name (`emu-001`): shown in prompts and `show version`. */
  readonly name: string;
  /** The SSH login user (Junos shows it in its prompt: `admin@sw> `). */
  readonly username: string;
  /** The SSH (management) address. */
  readonly address: string;
  /** The address its FTP connections come from (its SSH address unless the `ftpsource` fault says otherwise). */
  readonly ftpSource: string;
  readonly version: string;
  readonly flash: Flash;
  readonly faults: SwitchFaults;
  /** The login password; `enable` accepts it too (fault `userexec`). */
  readonly password: string;
  /** FTP client timeout per command, ms. */
  readonly ftpTimeoutMs: number;
  /** State that outlives a session (OS10's background download), by personality-chosen key; a value with a `stop()` is stopped with the fleet. */
  readonly memory: Map<string, unknown>;
  /** Pulls `url` into `name` on flash, from `ftpSource`, with the switch's faults; `onBytes` gets the size the server announced, when it did. */
  copy(url: string, name: string, signal: AbortSignal, onBytes?: (bytes: number, totalBytes: number | null) => void): Promise<CopyResult>;
}

/** One CLI session (one SSH shell or exec request). */
export interface CliSessionState {
  /** Personality-defined mode: `user`, `exec`, `config`, `shell`… */
  mode: string;
  /** Lines per page (0: no paging); `terminal length 0` and the like set it. */
  terminalLength: number;
}

export interface Personality {
  /** The driver name this personality stands in for (`cisco-ios-xe`). */
  readonly name: string;
  /** The catalog platform its inventory entries name (usually the same). */
  readonly catalogPlatform: string;
  readonly defaultVersion: string;
  /** Cisco IOS closes the whole connection when its first exec channel ends (paramiko#55, ssh2#284). */
  readonly exec: 'one-per-connection' | 'many';
  readonly pager: Pager;
  /** The mode a login lands in. */
  initialMode(sw: EmulatedSwitchState): string;
  /** Text shown after login, before the first prompt (MOTD, last login). */
  greeting(sw: EmulatedSwitchState): string;
  prompt(sw: EmulatedSwitchState, session: CliSessionState): string;
  /** Platforms driven over a REST API as well (AOS-CX): the fleet starts the switch's HTTPS server. */
  readonly restApi?: boolean;
  /** Runs one command line (already trimmed); `exit` ends the session. */
  run(line: string, io: CliIo, sw: EmulatedSwitchState, session: CliSessionState): Promise<void | 'exit'>;
}

/** Writes `text` in two halves on two lines (the `wrap` fault). */
export function wrapped(text: string, wrap: boolean | undefined): string {
  if (!wrap) return text;
  const half = Math.ceil(text.length / 2);
  return `${text.slice(0, half)}\n${text.slice(half)}`;
}

/** A date as switches print it in `dir`: `Nov 30 2026 12:00:00`. */
export function dirDate(d: Date): string {
  const month = d.toLocaleString('en-US', { month: 'short', timeZone: 'UTC' });
  const pad = (n: number) => String(n).padStart(2, '0');
  return `${month} ${pad(d.getUTCDate())} ${d.getUTCFullYear()} ${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())}`;
}

/** The URL with its credentials replaced (`ftp://*:*@host/path`), as many switches echo it. */
export function maskedUrl(url: string, mask = '*'): string {
  return url.replace(/^([a-z]+:\/\/)[^@/]*@/i, `$1${mask}:${mask}@`);
}
