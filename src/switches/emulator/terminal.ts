/**
 * The emulated switch's side of a terminal: what a PTY and a switch's CLI do with keystrokes.
 * Typed characters are echoed (`\r\n` for Enter), a line is read up to Enter (CR, LF or CRLF),
 * backspace edits it, Ctrl-C interrupts the running command, keystrokes typed while a command runs
 * wait for it (type-ahead), and long output stops at a pager marker until a key is pressed
 * (space: a page, Enter: a line, q: the rest is dropped), unless paging was turned off.
 *
 * Exec requests use the same class without a PTY: no echo, no pager, no prompt.
 */

export interface CliIo {
  /** Output through the pager; `\n` becomes `\r\n`. Resolves once shown (or dropped with `q`). */
  print(text: string): Promise<void>;
  /** Output with no paging: progress (`!!!`, `...`), partial lines. `\n` becomes `\r\n`. */
  write(text: string): void;
  /** Writes the question and reads one line; not echoed with `echo: false` (passwords). */
  ask(question: string, options?: { echo?: boolean }): Promise<string>;
  /** Writes the question and reads one keystroke (Cisco's `[confirm]`); Enter is `\n`. */
  askKey(question: string): Promise<string>;
  /** Aborted by Ctrl-C, or when the session ends. */
  readonly signal: AbortSignal;
}

export interface Pager {
  /** Written when a page is full, e.g. ` --More-- `; a function gets the share (0-1) of this output shown so far (Junos `---(more 42%)---`). */
  marker: string | ((shown: number) => string);
  /** Written after the key, to erase the marker (backspaces, or an ANSI cursor move). */
  erase: string;
}

export interface TerminalOptions {
  /** Writes to the client. */
  write(text: string): void;
  /** Ends the channel (after `exit`, or after an exec request's command). */
  end(status: number): void;
  /** Interactive (a shell with a PTY) or one exec request (no echo, pager or prompt). */
  interactive: boolean;
  /** Lines per page (the PTY's rows); 0 turns the pager off. */
  rows: number;
  pager: Pager;
  /** The prompt to show now. */
  prompt(): string;
  /** Runs one command line; `exit` ends the session. */
  run(line: string, io: CliIo): Promise<void | 'exit'>;
}

type Reader = { kind: 'line'; echo: boolean; resolve(line: string): void } | { kind: 'key'; resolve(key: string): void };

const CTRL_C = '\x03';
const BACKSPACES = new Set(['\x7f', '\b']);

export class EmulatedTerminal {
  /** Lines per page; personalities set it (`terminal length 0`). */
  terminalLength: number;
  private input = '';
  private line = '';
  private reader: Reader | null = null;
  private running: AbortController | null = null;
  private ended = false;
  private linesOnPage = 0;
  /** The Enter just read was a CR: an LF right after it belongs to it. */
  private lastWasCr = false;

  constructor(private readonly options: TerminalOptions) {
    this.terminalLength = options.interactive ? options.rows : 0;
  }

  /** Shows the greeting and the first prompt (interactive), or runs the exec request's command. */
  start(greeting: string, execCommand?: string): void {
    if (execCommand !== undefined) {
      void this.dispatch(execCommand);
      return;
    }
    this.options.write(greeting.replace(/\r?\n/g, '\r\n'));
    this.options.write(this.options.prompt());
  }

  /** Keystrokes from the client. */
  feed(data: string): void {
    if (this.ended) return;
    for (const ch of data) {
      if (ch === CTRL_C) {
        this.interrupt();
        continue;
      }
      this.input += ch;
    }
    this.pump();
  }

  /** The channel closed: the running command is aborted. */
  close(): void {
    this.ended = true;
    this.running?.abort();
  }

  private interrupt(): void {
    this.input = '';
    if (this.running) {
      this.running.abort();
      const reader = this.reader;
      this.reader = null;
      if (reader?.kind === 'line') reader.resolve('');
      if (reader?.kind === 'key') reader.resolve('q');
      return;
    }
    // At the prompt: the line typed so far is dropped.
    this.line = '';
    if (this.options.interactive) this.options.write(`^C\r\n${this.options.prompt()}`);
  }

  /** Hands buffered keystrokes to whoever reads: the line editor at the prompt, a question, or the pager. */
  private pump(): void {
    while (this.input.length > 0 && !this.ended) {
      const reader = this.reader;
      if (this.running && !reader) return; // type-ahead waits for the command
      const ch = this.input[0]!;
      this.input = this.input.slice(1);
      const afterCr = this.lastWasCr;
      this.lastWasCr = ch === '\r';
      if (reader?.kind === 'key') {
        if (ch === '\n' && afterCr) continue;
        this.reader = null;
        reader.resolve(ch === '\r' ? '\n' : ch);
        continue;
      }
      const echo = this.options.interactive && (reader?.kind !== 'line' || reader.echo);
      if (ch === '\r' || ch === '\n') {
        if (ch === '\n' && afterCr) continue;
        if (this.options.interactive) this.options.write('\r\n');
        const line = this.line;
        this.line = '';
        if (reader) {
          this.reader = null;
          reader.resolve(line);
        } else void this.dispatch(line);
        continue;
      }
      if (BACKSPACES.has(ch)) {
        if (this.line.length > 0) {
          this.line = this.line.slice(0, -1);
          if (echo) this.options.write('\b \b');
        }
        continue;
      }
      this.line += ch;
      if (echo) this.options.write(ch);
    }
  }

  private async dispatch(line: string): Promise<void> {
    const controller = new AbortController();
    this.running = controller;
    this.linesOnPage = 0;
    let result: void | 'exit' = undefined;
    try {
      result = await this.options.run(line.trim(), this.io(controller.signal));
    } catch (err) {
      if (!controller.signal.aborted) this.write(`% Internal error: ${(err as Error).message}\n`);
    }
    this.running = null;
    this.reader = null;
    if (this.ended) return;
    if (controller.signal.aborted && this.options.interactive) this.options.write('^C\r\n');
    if (result === 'exit' || !this.options.interactive) {
      this.ended = true;
      this.options.end(0);
      return;
    }
    this.options.write(this.options.prompt());
    this.pump();
  }

  private write(text: string): void {
    if (!this.ended) this.options.write(text.replace(/\r?\n/g, '\r\n'));
  }

  private read(reader: Reader, signal: AbortSignal): void {
    if (signal.aborted) {
      if (reader.kind === 'line') reader.resolve('');
      else reader.resolve('q');
      return;
    }
    this.reader = reader;
    this.pump();
  }

  private io(signal: AbortSignal): CliIo {
    return {
      signal,
      write: (text) => this.write(text),
      print: async (text) => {
        const lines = text.replace(/\r\n/g, '\n').split('\n');
        const last = lines.pop()!;
        const marker = this.options.pager.marker;
        let shown = 0;
        for (const line of lines) {
          if (signal.aborted) return;
          if (this.terminalLength > 0 && this.linesOnPage >= this.terminalLength - 1) {
            this.options.write(typeof marker === 'string' ? marker : marker(shown / text.length));
            const key = await new Promise<string>((resolve) => this.read({ kind: 'key', resolve }, signal));
            this.options.write(this.options.pager.erase);
            if (key === 'q' || key === 'Q' || signal.aborted) return;
            this.linesOnPage = key === '\n' ? this.linesOnPage - 1 : 0;
          }
          this.write(`${line}\n`);
          this.linesOnPage++;
          shown += line.length + 1;
        }
        if (last) this.write(last);
      },
      ask: (question, options = {}) =>
        new Promise<string>((resolve) => {
          this.write(question);
          this.read({ kind: 'line', echo: options.echo ?? true, resolve }, signal);
        }),
      askKey: (question) =>
        new Promise<string>((resolve) => {
          this.write(question);
          this.read({ kind: 'key', resolve }, signal);
        }),
    };
  }
}
