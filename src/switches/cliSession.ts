/**
 * One interactive CLI session on a switch: a shell with a PTY, read as a person at a terminal would
 * read it. This is how netmiko and the vendors' Ansible collections drive switches, and the only
 * form every platform accepts (Cisco IOS drops the whole SSH connection after its first exec
 * channel; SWITCH-CLI-REFERENCE.md §0.3).
 *
 * What it handles:
 * - the prompt: learned once after login (a banner may come first, and may end in `>` or `#`),
 *   then matched exactly, in any mode (`sw1>`, `sw1#`, `sw1(config)#`, `<sw1>`, `[sw1]`,
 *   `admin@sw1>`), and only at the very end of the output: a prompt split across packets is
 *   awaited whole;
 * - paging: the dialect's commands turn it off, and any pager marker (`--More--`,
 *   `---- More ----`, `---(more 23%)---`, …) that still appears is answered with a space;
 * - the echo of the command, ANSI escape sequences, backspaces and CR/LF variants are removed;
 * - the questions a command may ask, answered per command; an unexpected question (`[confirm]`,
 *   `(y/n)`, `?` at the end of a line that then stays silent) fails the command at once, with
 *   Ctrl-C, instead of hanging until its timeout;
 * - a time limit per command that counts silence: a command that keeps printing progress (Cisco's
 *   `!` and `.`) is alive; a hard cap still ends one that prints forever.
 */
import { SwitchOutputError, SwitchTimeoutError, redactSecrets } from './driver.js';
import { silentLogger, type Logger } from '../core/logger.js';
import type { SshShell } from './ssh.js';

/** What the session reads and writes: an SSH shell, or a recorded byte stream in tests. */
export type Terminal = SshShell;

/** How a platform's prompt looks. */
export interface PromptGrammar {
  /** Matches a whole prompt line; group `base` is the part that stays the same in every mode, group `end` its last character. */
  readonly line: RegExp;
  /** The exact prompt of this switch in any mode, from the learned base. */
  exact(base: string): RegExp;
}

const escapeRegExp = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** Cisco IOS, IOS XE, NX-OS, Arista EOS, Dell OS10: `sw1>`, `sw1#`, `sw1(config-if)#`. */
export const CISCO_STYLE_PROMPT: PromptGrammar = {
  line: /^(?<base>[A-Za-z0-9][\w.:/@+-]*?)(?:\([^()\r\n]*\))?(?<end>[>#])\s?$/,
  exact: (base) => new RegExp(`^${escapeRegExp(base)}(?:\\([^()\\r\\n]*\\))?(?<end>[>#])\\s?$`),
};

/** Juniper Junos: `admin@sw1>` (operational), `admin@sw1#` (configuration), `root@sw1%` or `root@sw1:~ #` (the FreeBSD shell). */
export const JUNOS_PROMPT: PromptGrammar = {
  line: /^(?<base>[\w.-]+@[\w.-]+)(?::\S*\s?)?(?<end>[>#%])\s?$/,
  exact: (base) => new RegExp(`^${escapeRegExp(base)}(?::\\S*\\s?)?(?<end>[>#%])\\s?$`),
};

/** HPE/H3C Comware: `<sw1>` (user view), `[sw1]` and `[sw1-GigabitEthernet1/0/1]` (system views). */
export const COMWARE_PROMPT: PromptGrammar = {
  line: /^(?<open>[<[])(?<base>[^<>[\]\s-][^<>[\]\s]*?)(?:-[^\]\s]*)?(?<end>[>\]])\s?$/,
  exact: (base) => new RegExp(`^[<[]${escapeRegExp(base)}(?:-[^\\]\\s]*)?(?<end>[>\\]])\\s?$`),
};

/** A question a command may ask, and what to type. */
export interface Question {
  /** Tested against the current (last, unfinished) line of output. */
  match: RegExp;
  /** What is typed. */
  answer: string;
  /**
   * Enter after the answer (default true). Cisco's `[confirm]` reads one keystroke: `n` plus Enter
   * would leave an Enter behind, which confirms the next `[confirm]` (Enter means yes there).
   */
  enter?: boolean;
  /** The answer is a secret: never logged, and given once (asked again means refused: no guessing, no lockout). */
  secret?: boolean;
  /** Recorded in the command's notes when this question is answered (e.g. "declined to erase flash"). */
  note?: string;
}

export interface RunOptions {
  /** The command fails when the switch prints nothing for this long. */
  silenceMs: number;
  /** Hard cap on the whole command, even while it prints (default: 8 × silenceMs). */
  limitMs?: number;
  questions?: readonly Question[];
  /** Output so far (cleaned), as it arrives: progress for long commands. Costs a join per read: leave unset unless needed. */
  onOutput?: (cleanedSoFar: string) => void;
  /** Literal secrets in the command or answers, kept out of logs and errors. */
  secrets?: readonly string[];
}

export interface RunResult {
  /** The output: echo, pager markers, escapes, log messages and the closing prompt removed; lines end with \n. */
  output: string;
  /** Notes of the questions answered, in order. */
  notes: string[];
}

/**
 * Pager markers as switches print them: Cisco/NX-OS/EOS ` --More-- ` (also `--More-- (42%)`),
 * Comware `---- More ----`, Junos `---(more 23%)---`, Dell OS10 `--more--`, ArubaOS
 * `-- MORE --, next page: Space…`.
 */
const PAGER_MARKER = /(?:-{2,}\s*\(?\s*more(?:\s+\d+%)?\s*\)?\s*-{2,}(?:\s*\(\d+%\))?|<-+\s*more\s*-+>|-- MORE --[^\r\n]*|press any key to continue)\s*$/i;
/**
 * The forms of a question that waits for an answer. An unfinished line of these, followed by
 * silence, is a question the command did not expect: failing fast beats hanging until the timeout
 * (and is safer than guessing: Enter confirms `Erase flash: before copying? [confirm]`). A plain
 * `:` ends progress lines too (`Loading x from 10.0.0.5 (via Gi0/0): !!!`), so it counts only after
 * a word that asks (`Enter the new image name:`) or names a credential.
 */
const QUESTION_FORM =
  /(?:\?\s*(?:\[[^\]\r\n]*\]\s*)?|\[confirm\]\s*|[[(](?:y\/n|yes\/no)[\])][^\r\n]*|[[(][yn]\/[yn][\])]:?\s*|\b(?:password|passcode|username|login|token)\s*:\s*|^\s*(?:please\s+)?(?:enter|type|specify|provide|choose|select|confirm)\b[^\r\n]*:\s*)$/i;
/**
 * Log messages a terminal shows between command output (Cisco `terminal monitor` without
 * `logging synchronous`: `*Mar  1 00:01:02.345: %LINK-3-UPDOWN: …`; Comware info-center:
 * `%Mar  1 10:00:00:123 2023 sw1 SHELL/5/SHELL_LOGIN: …`). They are not command output, and a
 * question they follow is still waiting for its answer.
 */
const LOG_MESSAGE = /^\s*[*.]?(?:[A-Z][a-z]{2}\s+\d+\s+[\d:.]+(?:\s+[A-Z]{2,5})?:\s*)?%[A-Z0-9_]+-\d-[A-Z0-9_]+:|^\s*%[A-Z][a-z]{2}\s+\d+\s+[\d:]+\s+\d{4}\s+\S+\s+[A-Z0-9_-]+\/\d\/[A-Z0-9_]+:/;
/** How long an unexpected question may stay unanswered before the command fails. */
const QUESTION_SETTLE_MS = 3000;
/** After Ctrl-C, how long the prompt may take to come back. */
const INTERRUPT_GRACE_MS = 3000;
/** An unfinished line is examined only this far back: a line of 300,000 `!` costs nothing. */
const TAIL_CHARS = 512;
/**
 * An unfinished line longer than this (a big image's `!!!…`) keeps only its start and end: the
 * bytes between are progress, and keeping them would make every read cost the whole line.
 */
const PARTIAL_MAX_CHARS = 64 * 1024;
const PARTIAL_KEEP_HEAD = 4096;
const PARTIAL_KEEP_TAIL = 8192;
const CTRL_C = '\x03';

// eslint-disable-next-line no-control-regex
const ANSI = /\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)|[()][A-Za-z0-9]|[=>78cDEHM])/g;
// eslint-disable-next-line no-control-regex
const OTHER_CONTROLS = /[\x00-\x07\x0b\x0c\x0e-\x1f\x7f]/g;

/** Terminal text to plain text: escape sequences out, backspaces applied, other controls dropped. */
export function cleanTerminalText(text: string): string {
  let out = text.replace(ANSI, '');
  if (out.includes('\b')) {
    const kept: string[] = [];
    for (const ch of out) {
      if (ch === '\b') kept.pop();
      else kept.push(ch);
    }
    out = kept.join('');
  }
  return out.replace(OTHER_CONTROLS, '');
}

const squash = (s: string) => s.replace(/\s+/g, '');

/**
 * The echo is looked for in the first lines only: a leftover prompt or two, and the command wrapped
 * at a width as narrow as 40 columns. Further down, the command's text is output, not echo.
 */
const echoLinesFor = (command: string) => 3 + Math.ceil(command.length / 40);

interface Pending {
  command: string;
  options: RunOptions;
  /** Whether the echo of the command has been read (a prompt before it is a leftover of an earlier Enter). */
  echoSeen: boolean;
  /** Index in `lines` of the echo's last line, once seen. */
  echoLine: number;
  /** The first lines, without whitespace, until the echo is found in them (a switch may wrap a long command). */
  echoProbe: string;
  /** The command without whitespace. */
  squashed: string;
  /** False for the wait after Ctrl-C: the prompt that comes back has no echo before it. */
  awaitEcho: boolean;
  /** Questions answered, by index in `options.questions`. */
  answered: Set<number>;
  /** Index in `lines` of the last line a question was answered on (a question hidden by log lines is answered once). */
  answeredLine: number;
  /** Indexes in `lines` at which a leftover prompt was already discounted. */
  leftoverAt: number;
  resolve(result: RunResult): void;
  reject(err: Error): void;
}

/** How the session is learning its prompt (between login and the first command). */
interface Learning {
  candidate: string | null;
  /** Lines read when the candidate was seen: the confirming prompt must come on a later line. */
  linesAtCandidate: number;
  rounds: number;
  /** When the last Enter was typed (to measure the round trip). */
  enterAt: number;
  done(err?: Error): void;
}

/**
 * A prompt before the command's echo is a leftover of an earlier Enter, or the end of a command on
 * a switch that echoes differently (or not at all). Only quiet tells them apart: this long (or
 * three round trips, on a slow link) before the echo's behaviour is known, and longer on a switch
 * that has echoed before.
 */
const UNECHOED_PROMPT_QUIET_MS = 300;
const UNECHOED_PROMPT_QUIET_ECHOING_MS = 2000;

export class CliSession {
  /** The prompt as last seen (`sw1#`). */
  prompt = '';
  private exact: RegExp | null = null;
  /** Completed lines of the running command (cleaned). */
  private lines: string[] = [];
  /** Raw text after the last line end. */
  private partial = '';
  /** Offset in `partial` up to which line ends were already looked for. */
  private scanned = 0;
  /** Offset in `partial` up to which questions were already answered. */
  private answeredUpTo = 0;
  private pending: Pending | null = null;
  private learning: Learning | null = null;
  /** Learned from the first command: does this switch echo what is typed? (PTYs do.) */
  private echoes: boolean | null = null;
  /**
   * Prompts still to come for Enters typed while learning the prompt: each Enter brings one, and on
   * a slow login (AAA, a far site) some arrive after the prompt was learned. Discounted when they
   * come before a command's echo, so no command ends on one.
   */
  private leftoverPrompts = 0;
  /** The login round trip, measured while learning: sets how long a prompt before the echo must stay alone. */
  private roundTripMs = 0;
  private notes: string[] = [];
  private silenceTimer: NodeJS.Timeout | null = null;
  private limitTimer: NodeJS.Timeout | null = null;
  private questionTimer: NodeJS.Timeout | null = null;
  private quietTimer: NodeJS.Timeout | null = null;
  private closed = false;
  /** Set when a command could not be interrupted: nothing more can run in this session. */
  private broken: string | null = null;

  private constructor(
    private readonly terminal: Terminal,
    private readonly grammar: PromptGrammar,
    private readonly logger: Logger,
  ) {
    terminal.onData((chunk) => this.onData(chunk));
    terminal.onClose(() => {
      this.closed = true;
      this.learning?.done(new SwitchOutputError('the switch closed the session before its first prompt'));
      this.fail(new SwitchOutputError('the switch closed the CLI session'));
    });
  }

  /**
   * Waits for the first prompt after login, then confirms it: Enter must bring back the same
   * prompt. A banner line that happens to look like a prompt (`<<< authorized use only >>>`,
   * `#######`) is replaced by the real prompt that follows. Rejects after `timeoutMs`.
   */
  static async start(terminal: Terminal, options: { grammar: PromptGrammar; timeoutMs: number; logger?: Logger }): Promise<CliSession> {
    const session = new CliSession(terminal, options.grammar, options.logger ?? silentLogger);
    await session.learnPrompt(options.timeoutMs);
    return session;
  }

  /** The prompt's last character (`>`, `#`, `%`, `]`), which tells the mode. */
  get promptEnd(): string {
    return this.exact?.exec(this.prompt.trimStart())?.groups?.['end'] ?? this.prompt.trimEnd().slice(-1);
  }

  private enter(): void {
    if (this.learning) {
      this.learning.enterAt = Date.now();
      this.leftoverPrompts++;
    }
    this.terminal.write('\n');
  }

  private learnPrompt(timeoutMs: number): Promise<void> {
    return new Promise((resolve, reject) => {
      if (this.closed) return reject(new SwitchOutputError('the switch closed the session before its first prompt'));
      const timer = setTimeout(() => this.learning?.done(new SwitchTimeoutError(`no CLI prompt within ${timeoutMs} ms of login`)), timeoutMs);
      // Nothing prompt-like after a moment (some switches wait for a key after the banner): Enter.
      const nudge = setTimeout(() => {
        if (this.learning?.candidate === null) this.enter();
      }, Math.min(1500, timeoutMs / 3));
      this.leftoverPrompts = 0;
      this.learning = {
        candidate: null,
        linesAtCandidate: 0,
        rounds: 0,
        enterAt: 0,
        done: (err) => {
          clearTimeout(timer);
          clearTimeout(nudge);
          this.learning = null;
          if (err) reject(err);
          else resolve();
        },
      };
      this.resetOutput();
      this.examine();
    });
  }

  private learnFrom(line: string): void {
    const learning = this.learning!;
    const base = this.grammar.line.exec(line)?.groups?.['base'];
    if (!base) return;
    if (learning.candidate !== null && this.lines.length > learning.linesAtCandidate && this.grammar.exact(learning.candidate).test(line)) {
      const exact = this.grammar.exact(learning.candidate);
      // The login's own prompt and one per Enter; seen so far: every earlier one went by as a
      // line, this one is unfinished. The rest are still on their way.
      const seen = this.lines.filter((l) => exact.test(l.trimStart())).length + 1;
      this.leftoverPrompts = Math.max(0, this.leftoverPrompts + 1 - seen);
      this.roundTripMs = Date.now() - learning.enterAt;
      this.exact = exact;
      this.prompt = line;
      this.resetOutput();
      return learning.done();
    }
    if (learning.candidate === base) return; // the rest of the same prompt line
    if (++learning.rounds > 5) return learning.done(new SwitchOutputError(`the prompt keeps changing (last: "${line}")`));
    learning.candidate = base;
    learning.linesAtCandidate = this.lines.length;
    this.enter();
  }

  /**
   * Runs one command and resolves with its output once the prompt is back. Rejects with a
   * SwitchTimeoutError after `silenceMs` without output (or `limitMs` in all), having sent Ctrl-C;
   * with a SwitchOutputError when the switch asks an unexpected question, asks again for a secret,
   * or closes the session.
   */
  run(command: string, options: RunOptions): Promise<RunResult> {
    if (this.broken) return Promise.reject(new SwitchOutputError(this.broken));
    if (this.closed) return Promise.reject(new SwitchOutputError('the switch closed the CLI session'));
    if (this.pending || this.learning) return Promise.reject(new Error('a command is already running on this CLI session'));
    return new Promise((resolve, reject) => {
      this.resetOutput();
      this.notes = [];
      this.pending = {
        command,
        options,
        resolve,
        reject,
        echoSeen: false,
        echoLine: -1,
        echoProbe: '',
        squashed: squash(command),
        awaitEcho: true,
        answered: new Set(),
        answeredLine: -1,
        leftoverAt: -1,
      };
      this.logger.debug('command', { command: redactSecrets(command, options.secrets ?? []) });
      this.armSilence();
      const limit = options.limitMs ?? options.silenceMs * 8;
      this.limitTimer = setTimeout(() => void this.interrupt(`no prompt after "${this.shown(command)}" within ${limit} ms`), limit);
      this.terminal.write(`${command}\n`);
    });
  }

  /** Closes the shell (the SSH connection is the caller's). */
  close(): void {
    this.clearTimers();
    this.terminal.close();
  }

  private shown(command: string): string {
    return redactSecrets(command, this.pending?.options.secrets ?? []);
  }

  private resetOutput(): void {
    this.lines = [];
    this.partial = '';
    this.scanned = 0;
    this.answeredUpTo = 0;
  }

  private onData(chunk: string): void {
    this.partial += chunk;
    // Split off finished lines, looking only at what was not looked at yet (linear in the output);
    // a CR at the very end may be the first half of CRLF: keep it for the next read.
    let start = 0;
    const text = this.partial;
    const end = text.endsWith('\r') ? text.length - 1 : text.length;
    const pending = this.pending;
    for (let i = this.scanned; i < end; i++) {
      const c = text.charCodeAt(i);
      if (c !== 10 && c !== 13) continue;
      const line = cleanTerminalText(text.slice(start, i));
      if (pending && !pending.echoSeen && pending.squashed !== '' && this.lines.length < echoLinesFor(pending.command)) {
        pending.echoProbe += squash(line);
        if (pending.echoProbe.includes(pending.squashed)) {
          pending.echoSeen = true;
          pending.echoLine = this.lines.length;
        }
      }
      this.lines.push(line);
      if (c === 13 && text.charCodeAt(i + 1) === 10) i++;
      start = i + 1;
    }
    if (start > 0) {
      this.partial = text.slice(start);
      this.answeredUpTo = 0;
    }
    this.scanned = this.partial.endsWith('\r') ? this.partial.length - 1 : this.partial.length;
    if (this.partial.length > PARTIAL_MAX_CHARS) {
      this.partial = `${this.partial.slice(0, PARTIAL_KEEP_HEAD)}…${this.partial.slice(-PARTIAL_KEEP_TAIL)}`;
      this.scanned = this.partial.endsWith('\r') ? this.partial.length - 1 : this.partial.length;
      // A question answered at the start of this line stays answered.
      if (this.answeredUpTo > 0) this.answeredUpTo = PARTIAL_KEEP_HEAD + 1;
    }
    this.examine();
  }

  /** Looks at the unfinished line: pager marker, prompt, or question. */
  private examine(): void {
    if (this.quietTimer) clearTimeout(this.quietTimer);
    this.quietTimer = null;
    const tail = cleanTerminalText(this.partial.slice(Math.max(this.answeredUpTo, this.partial.length - TAIL_CHARS)));
    if (PAGER_MARKER.test(tail)) {
      // Answered once: the marker (and whatever the switch writes to erase it) leaves the line.
      this.terminal.write(' ');
      this.partial = '';
      this.scanned = 0;
      this.answeredUpTo = 0;
      return;
    }
    const line = cleanTerminalText(this.partial.slice(-TAIL_CHARS)).trimStart();
    if (this.learning) return this.learnFrom(line);
    const pending = this.pending;
    if (!pending) return;
    this.armSilence();
    pending.options.onOutput?.(this.outputSoFar());
    if (this.exact?.test(line)) {
      if (pending.echoSeen || !pending.awaitEcho) return this.complete(line);
      if (this.leftoverPrompts > 0 && pending.leftoverAt !== this.lines.length) {
        // An Enter typed while learning the prompt, answered late: not this command's end.
        this.leftoverPrompts--;
        pending.leftoverAt = this.lines.length;
        return;
      }
      const quiet = Math.max(this.echoes === true ? UNECHOED_PROMPT_QUIET_ECHOING_MS : UNECHOED_PROMPT_QUIET_MS, this.roundTripMs * 3);
      this.quietTimer = setTimeout(() => this.complete(line), quiet);
      return;
    }
    let asked = tail.replace(/^\s+/, '');
    let onLine = this.lines.length;
    if (asked.trim() === '') {
      // A question followed by log messages (a terminal monitor without `logging synchronous`)
      // is no longer the unfinished line, and still waits for its answer.
      let i = this.lines.length - 1;
      while (i > pending.echoLine && LOG_MESSAGE.test(this.lines[i]!)) i--;
      if (i > pending.echoLine && i < this.lines.length - 1 && i > pending.answeredLine) {
        asked = this.lines[i]!.trim();
        onLine = i;
      }
    }
    const questions = pending.options.questions ?? [];
    for (let qi = 0; qi < questions.length; qi++) {
      const q = questions[qi]!;
      if (!q.match.test(asked)) continue;
      this.clearQuestionTimer();
      if (q.secret && pending.answered.has(qi)) {
        // Asked again for a secret: the one given was refused. Never again (an AAA lockout counts tries).
        void this.interrupt(`the switch asked again "${redactSecrets(asked.trim().slice(-120), pending.options.secrets ?? [])}": the answer given was refused`, SwitchOutputError);
        return;
      }
      this.logger.debug('answering', { question: redactSecrets(asked.slice(-120), pending.options.secrets ?? []), answer: q.secret ? '***' : q.answer });
      if (q.note) this.notes.push(q.note);
      pending.answered.add(qi);
      pending.answeredLine = onLine;
      this.answeredUpTo = this.partial.length;
      this.terminal.write(q.enter === false ? q.answer : `${q.answer}\n`);
      return;
    }
    this.clearQuestionTimer();
    if (QUESTION_FORM.test(asked) && onLine > pending.answeredLine) {
      this.questionTimer = setTimeout(() => {
        const question = redactSecrets(asked.trim().slice(-200), pending.options.secrets ?? []);
        void this.interrupt(`the switch asked "${question}", which swfw does not answer for "${this.shown(pending.command)}"`, SwitchOutputError);
      }, QUESTION_SETTLE_MS);
    }
  }

  private outputSoFar(): string {
    return [...this.lines, cleanTerminalText(this.partial.slice(-TAIL_CHARS))].join('\n');
  }

  private complete(promptLine: string): void {
    const pending = this.pending!;
    this.prompt = promptLine;
    if (pending.awaitEcho && this.echoes === null) this.echoes = pending.echoSeen;
    // Everything up to the echo is the tail of the previous prompt (or a leftover prompt).
    const lines = (pending.echoSeen ? this.lines.slice(pending.echoLine + 1) : [...this.lines]).filter((l) => !LOG_MESSAGE.test(l));
    const output = lines.map((l) => l.replace(/\s+$/, '')).join('\n').replace(/^\n+/, '');
    const notes = this.notes;
    this.finishCommand();
    pending.resolve({ output: output === '' ? '' : `${output}\n`, notes });
  }

  private finishCommand(): void {
    this.clearTimers();
    this.pending = null;
    this.resetOutput();
  }

  private fail(err: Error): void {
    const pending = this.pending;
    if (!pending) return;
    this.finishCommand();
    pending.reject(err);
  }

  /** Ctrl-C, then wait a little for the prompt; the command fails either way. */
  private async interrupt(message: string, kind: typeof SwitchTimeoutError | typeof SwitchOutputError = SwitchTimeoutError): Promise<void> {
    const pending = this.pending;
    if (!pending) return;
    this.clearTimers();
    const err = new kind(message);
    // Take the command over: its output no longer matters, only whether the prompt comes back.
    const back = await new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => resolve(false), INTERRUPT_GRACE_MS);
      this.resetOutput();
      this.pending = {
        command: pending.command,
        options: { silenceMs: INTERRUPT_GRACE_MS * 2, limitMs: INTERRUPT_GRACE_MS * 2 },
        echoSeen: false,
        echoLine: -1,
        echoProbe: '',
        squashed: '',
        awaitEcho: false,
        answered: new Set(),
        answeredLine: -1,
        leftoverAt: -1,
        resolve: () => {
          clearTimeout(timer);
          resolve(true);
        },
        reject: () => {
          clearTimeout(timer);
          resolve(false);
        },
      };
      this.terminal.write(CTRL_C);
    });
    if (!back) this.broken = `the switch did not return to its prompt after Ctrl-C (${message})`;
    this.finishCommand();
    pending.reject(err);
  }

  private armSilence(): void {
    const pending = this.pending;
    if (!pending) return;
    if (this.silenceTimer) clearTimeout(this.silenceTimer);
    this.silenceTimer = setTimeout(() => void this.interrupt(`no output from "${this.shown(pending.command)}" for ${pending.options.silenceMs} ms`), pending.options.silenceMs);
  }

  private clearQuestionTimer(): void {
    if (this.questionTimer) clearTimeout(this.questionTimer);
    this.questionTimer = null;
  }

  private clearTimers(): void {
    if (this.silenceTimer) clearTimeout(this.silenceTimer);
    if (this.limitTimer) clearTimeout(this.limitTimer);
    if (this.quietTimer) clearTimeout(this.quietTimer);
    this.silenceTimer = null;
    this.limitTimer = null;
    this.quietTimer = null;
    this.clearQuestionTimer();
  }
}
