/**
 * The interactive CLI session against recorded byte streams: what switches send, split into the
 * packets they arrive in, with banners, echoes, pagers, escapes and questions. A scripted terminal
 * plays the switch's side; the SSH channel itself is tested through the emulator.
 */
import { expect } from 'chai';
import { CISCO_STYLE_PROMPT, COMWARE_PROMPT, JUNOS_PROMPT, CliSession, cleanTerminalText, type Terminal } from '../../src/switches/cliSession.js';
import { SwitchOutputError, SwitchTimeoutError } from '../../src/switches/driver.js';

/** A switch's side of a terminal: each line typed gets the chunks the test scripted for it. */
class ScriptedTerminal implements Terminal {
  readonly typed: string[] = [];
  closed = false;
  private dataListeners: ((chunk: string) => void)[] = [];
  private closeListeners: (() => void)[] = [];
  /** Called with everything written by the session. */
  onTyped: (text: string) => void = () => {};

  write(text: string): void {
    this.typed.push(text);
    this.onTyped(text);
  }
  onData(listener: (chunk: string) => void): void {
    this.dataListeners.push(listener);
  }
  onClose(listener: () => void): void {
    this.closeListeners.push(listener);
  }
  close(): void {
    this.closed = true;
  }
  /** The switch sends these chunks, each a separate packet. */
  send(...chunks: string[]): void {
    for (const c of chunks) for (const l of this.dataListeners) l(c);
  }
  drop(): void {
    for (const l of this.closeListeners) l();
  }
}

/** Calls `onLine` with each line typed on `t` (what came before each Enter). */
function onTypedLines(t: ScriptedTerminal, onLine: (typed: string) => void): void {
  let line = '';
  t.onTyped = (text) => {
    for (const ch of text) {
      if (ch !== '\n') {
        line += ch;
        continue;
      }
      onLine(line);
      line = '';
    }
  };
}

/** A terminal that answers Enter with the prompt, and each scripted command with its reply chunks. */
function switchTerminal(prompt: string, replies: Record<string, string[] | ((t: ScriptedTerminal) => void)>): ScriptedTerminal {
  const t = new ScriptedTerminal();
  onTypedLines(t, (typed) =>
    setImmediate(() => {
      if (typed === '') return t.send(`\r\n${prompt}`);
      const reply = replies[typed];
      if (typeof reply === 'function') return reply(t);
      t.send(`${typed}\r\n`, ...(reply ?? [`% Invalid input\r\n`]), prompt);
    }),
  );
  return t;
}

const start = (t: Terminal, grammar = CISCO_STYLE_PROMPT) => CliSession.start(t, { grammar, timeoutMs: 3000 });

/** A session on a `sw1#` switch that has shown its prompt: the start every command test shares. */
async function loggedIn(replies: Parameters<typeof switchTerminal>[1] = {}): Promise<{ t: ScriptedTerminal; cli: CliSession }> {
  const t = switchTerminal('sw1#', replies);
  const started = start(t);
  t.send('sw1#');
  return { t, cli: await started };
}

describe('the interactive CLI session (recorded byte streams)', function () {
  this.timeout(10_000);

  it('learns the prompt behind a banner whose lines look like prompts, and confirms it with Enter', async () => {
    const t = switchTerminal('sw1#', { 'terminal length 0': [] });
    const started = start(t);
    // A banner line that looks like a prompt, alone in its packet; the real prompt comes later.
    t.send('\r\n####################\r\n# Authorized only #\r\n', 'NOTICE>');
    setTimeout(() => t.send('\r\n\r\nsw1#'), 50);
    const cli = await started;
    expect(cli.prompt).to.equal('sw1#');
    expect(cli.promptEnd).to.equal('#');
    // NOTICE> was a candidate, Enter showed the real prompt, and Enter confirmed that one.
    expect(t.typed.filter((x) => x === '\n').length).to.equal(2);
    expect((await cli.run('terminal length 0', { silenceMs: 1000 })).output).to.equal('');
  });

  it('strips the echo and the prompt, and waits for a prompt split across packets', async () => {
    const { t, cli } = await loggedIn();
    t.onTyped = (text) => {
      if (text === 'show version\n') setImmediate(() => t.send('show ver', 'sion\r\n', 'Cisco IOS XE Software, Version 17.06.05\r\n', 'sw', '1', '#'));
    };
    const { output } = await cli.run('show version', { silenceMs: 1000 });
    expect(output).to.equal('Cisco IOS XE Software, Version 17.06.05\n');
  });

  it('a prompt left over from an earlier Enter does not end the next command', async () => {
    const { t, cli } = await loggedIn();
    // Teach it that this switch echoes.
    t.onTyped = (text) => {
      if (text === 'terminal length 0\n') setImmediate(() => t.send('terminal length 0\r\n', 'sw1#'));
      if (text === 'dir flash:\n') {
        // A prompt for an Enter typed before, then the echo, then the real output.
        setImmediate(() => t.send('\r\nsw1#'));
        setTimeout(() => t.send('dir flash:\r\n', '100 bytes total (50 bytes free)\r\n', 'sw1#'), 50);
      }
    };
    await cli.run('terminal length 0', { silenceMs: 1000 });
    const { output } = await cli.run('dir flash:', { silenceMs: 1000 });
    expect(output).to.equal('100 bytes total (50 bytes free)\n');
  });

  it('an echo the switch wrapped at its own width is still recognised and removed', async () => {
    const { t, cli } = await loggedIn();
    const command = 'copy ftp://sw-0123456789ab:aVeryLongOneTimePassword_x@192.0.2.10/cisco/c9300-universalk9.17.09.04a.SPA.bin flash:c9300.bin';
    t.onTyped = (text) => {
      if (text === `${command}\n`) setImmediate(() => t.send(`${command.slice(0, 80)}\r\n${command.slice(80)}\r\n`, '1048699 bytes copied in 1.0 secs\r\n', 'sw1#'));
    };
    expect((await cli.run(command, { silenceMs: 1000 })).output).to.equal('1048699 bytes copied in 1.0 secs\n');
  });

  it('a prompt with no recognisable echo before it ends the command after a quiet moment, not never', async () => {
    const { t, cli } = await loggedIn({ 'terminal length 0': [] });
    await cli.run('terminal length 0', { silenceMs: 1000 }); // learns that this switch echoes
    t.onTyped = (text) => {
      if (text === 'show clock\n') setImmediate(() => t.send('sh clock (expanded by the switch)\r\n', '12:00:00 UTC\r\n', 'sw1#'));
    };
    const began = Date.now();
    const { output } = await cli.run('show clock', { silenceMs: 5000 });
    expect(output).to.equal('sh clock (expanded by the switch)\n12:00:00 UTC\n');
    expect(Date.now() - began).to.be.within(1500, 4000);
  });

  it('answers every pager marker with a space and removes it, with the escapes that erase it', async () => {
    const t = switchTerminal('<sw1>', {});
    const started = start(t, COMWARE_PROMPT);
    t.send('\r\n<sw1>');
    const cli = await started;
    const spaces: number[] = [];
    t.onTyped = (text) => {
      if (text === 'display version\n') setImmediate(() => t.send('display version\r\n', 'line 1\r\nline 2\r\n', '  ---- More ----'));
      if (text === ' ') {
        spaces.push(1);
        setImmediate(() => t.send('\x1b[16D                \x1b[16D', 'line 3\r\n', spaces.length === 1 ? ' --More-- ' : '<sw1>'));
      }
    };
    const { output } = await cli.run('display version', { silenceMs: 1000 });
    expect(spaces.length).to.equal(2);
    expect(output.split('\n').map((l) => l.trim())).to.deep.equal(['line 1', 'line 2', 'line 3', 'line 3', '']);
  });

  it('removes ANSI sequences, backspaces and other control characters', () => {
    expect(cleanTerminalText('\x1b[1mbold\x1b[0m a\bb \x07bell\x1b]0;title\x07')).to.equal('bold b bell');
    expect(cleanTerminalText(' --More-- \b\b\b\b\b\b\b\b\b\b          \b\b\b\b\b\b\b\b\b\bnext')).to.equal('next');
  });

  it("answers the command's questions; a [confirm] gets one keystroke and no Enter", async () => {
    const { t, cli } = await loggedIn();
    const typed: string[] = [];
    t.onTyped = (text) => {
      typed.push(text);
      if (text.startsWith('copy')) setImmediate(() => t.send('copy ftp://h/f flash:f\r\n', 'Destination filename [f]? '));
      if (text === 'f\n') setImmediate(() => t.send('\r\nErase flash: before copying? [confirm]'));
      if (text === 'n') setImmediate(() => t.send('\r\nLoading f !!!\r\n[OK - 3/4096 bytes]\r\n3 bytes copied in 0.1 secs\r\n', 'sw1#'));
    };
    const { output, notes } = await cli.run('copy ftp://h/f flash:f', {
      silenceMs: 1000,
      questions: [
        { match: /Destination filename \[[^\]]*\]\?\s*$/, answer: 'f' },
        { match: /Erase \S+ before copying\?\s*\[confirm\]\s*$/, answer: 'n', enter: false, note: 'declined to erase' },
      ],
    });
    expect(typed).to.deep.equal(['copy ftp://h/f flash:f\n', 'f\n', 'n']);
    expect(notes).to.deep.equal(['declined to erase']);
    expect(output).to.match(/3 bytes copied in/);
  });

  it('fails fast, with Ctrl-C, on a question the command did not expect', async () => {
    const { t, cli } = await loggedIn();
    t.onTyped = (text) => {
      if (text === 'image download ftp://x\n') setImmediate(() => t.send('image download ftp://x\r\n', 'Download may overwrite the image. Proceed? [yes/no]:'));
      if (text === '\x03') setImmediate(() => t.send('^C\r\n', 'sw1#'));
    };
    const began = Date.now();
    const err = await cli.run('image download ftp://x', { silenceMs: 60_000 }).catch((e: unknown) => e);
    expect(err).to.be.instanceOf(SwitchOutputError);
    expect((err as Error).message).to.match(/asked "Download may overwrite the image\. Proceed\? \[yes\/no\]:"/);
    expect(Date.now() - began).to.be.lessThan(5000);
    expect(t.typed).to.include('\x03');
  });

  it('times out a silent command with Ctrl-C, and stays usable once the prompt is back', async () => {
    const { t, cli } = await loggedIn({ 'show clock': ['12:00:00 UTC\r\n'] });
    const plain = t.onTyped;
    t.onTyped = (text) => {
      if (text === 'verify /md5 flash:big\n') return setImmediate(() => t.send('verify /md5 flash:big\r\n'));
      if (text === '\x03') return setImmediate(() => t.send('^C\r\n', 'sw1#'));
      plain(text);
    };
    const err = await cli.run('verify /md5 flash:big', { silenceMs: 300 }).catch((e: unknown) => e);
    expect(err).to.be.instanceOf(SwitchTimeoutError);
    expect((err as Error).message).to.match(/no output from "verify \/md5 flash:big" for 300 ms/);
    expect((await cli.run('show clock', { silenceMs: 1000 })).output).to.equal('12:00:00 UTC\n');
  });

  it('a command that keeps printing progress outlives its silence limit', async () => {
    const { t, cli } = await loggedIn();
    t.onTyped = (text) => {
      if (text !== 'verify /md5 flash:big\n') return;
      t.send('verify /md5 flash:big\r\n');
      let dots = 0;
      const timer = setInterval(() => {
        t.send('.');
        if (++dots === 12) {
          clearInterval(timer);
          t.send('Done!\r\nverify /md5 (flash:big) = 0123456789abcdef0123456789abcdef\r\n', 'sw1#');
        }
      }, 50);
    };
    const began = Date.now();
    const { output } = await cli.run('verify /md5 flash:big', { silenceMs: 200 });
    expect(Date.now() - began).to.be.greaterThan(500);
    expect(output).to.match(/= 0123456789abcdef0123456789abcdef/);
  });

  it('a session closed by the switch fails the running command at once', async () => {
    const { t, cli } = await loggedIn();
    t.onTyped = (text) => {
      if (text === 'reload\n') setImmediate(() => t.drop());
    };
    const err = await cli.run('reload', { silenceMs: 60_000 }).catch((e: unknown) => e);
    expect((err as Error).message).to.match(/closed the CLI session/);
  });

  it('Junos: a {master:0} line before the prompt, and the user@host prompt', async () => {
    const t = switchTerminal('\r\n{master:0}\r\nadmin@ex1> ', { 'show version': ['Hostname: ex1\r\nModel: ex4300-48t\r\nJunos: 21.4R3-S3.4\r\n\r\n'] });
    const started = start(t, JUNOS_PROMPT);
    t.send('\r\n--- JUNOS 21.4R3-S3.4 Kernel 64-bit\r\n', '{master:0}\r\n', 'admin@ex1> ');
    const cli = await started;
    expect(cli.prompt.trim()).to.equal('admin@ex1>');
    const { output } = await cli.run('show version', { silenceMs: 1000 });
    expect(output).to.match(/^Hostname: ex1\nModel: ex4300-48t\nJunos: 21\.4R3-S3\.4\n/);
  });

  it('gives up when no prompt comes at all', async () => {
    const t = new ScriptedTerminal();
    const err = await CliSession.start(t, { grammar: CISCO_STYLE_PROMPT, timeoutMs: 400 }).catch((e: unknown) => e);
    expect(err).to.be.instanceOf(SwitchTimeoutError);
  });

  describe('what a hostile tester found (each once judged wrong)', function () {
    /**
     * A switch behind slow AAA on a slow link: the prompt comes 2 s after login, everything typed
     * is echoed and answered 0.5 s later. Each command's output names the command.
     */
    function slowSwitch(): ScriptedTerminal {
      const t = new ScriptedTerminal();
      let ready = false;
      const typedEarly: string[] = [];
      const answer = (typed: string) => setTimeout(() => t.send(`${typed}\r\n`, ...(typed === '' ? [] : [`output of ${typed}\r\n`]), 'sw1#'), 500);
      onTypedLines(t, (typed) => (ready ? answer(typed) : typedEarly.push(typed)));
      setTimeout(() => {
        ready = true;
        t.send('\r\nsw1#');
        for (const typed of typedEarly) answer(typed); // the Enters typed during the login
      }, 2000);
      return t;
    }

    it('a slow login on a slow link: Enters typed while learning the prompt come back late, and no command ends on their prompts', async function () {
      const t = slowSwitch();
      const cli = await CliSession.start(t, { grammar: CISCO_STYLE_PROMPT, timeoutMs: 8000 });
      for (const command of ['terminal length 0', 'show version', 'dir flash:']) {
        expect((await cli.run(command, { silenceMs: 3000 })).output).to.equal(`output of ${command}\n`);
      }
    });

    it('a question followed by a log message in the same packet is still answered', async () => {
      const { t, cli } = await loggedIn();
      t.onTyped = (text) => {
        if (text.startsWith('copy')) setImmediate(() => t.send('copy ftp://h/f flash:f\r\n', 'Destination filename [f]? \r\n*Mar  1 00:01:02.345: %LINK-3-UPDOWN: Interface GigabitEthernet1/0/1, changed state to up\r\n'));
        if (text === 'f\n') setImmediate(() => t.send('Loading f !!!\r\n[OK - 3/4096 bytes]\r\n3 bytes copied in 0.1 secs\r\n', 'sw1#'));
      };
      const { output } = await cli.run('copy ftp://h/f flash:f', { silenceMs: 2000, questions: [{ match: /Destination filename \[[^\]]*\]\?\s*$/, answer: 'f' }] });
      expect(output).to.match(/3 bytes copied in/);
      expect(output, 'log messages are not output').to.not.include('%LINK-3-UPDOWN');
    });

    it('a secret asked for again is never given twice: the command fails at once', async () => {
      const t = switchTerminal('sw1>', {});
      const started = start(t);
      t.send('sw1>');
      const cli = await started;
      const typed: string[] = [];
      t.onTyped = (text) => {
        typed.push(text);
        if (text === 'enable\n' || text === 'hunter2\n') setImmediate(() => t.send(text === 'enable\n' ? 'enable\r\n' : '\r\n% Bad secrets\r\n', 'Password: '));
        if (text === '\x03') setImmediate(() => t.send('^C\r\n', 'sw1>'));
      };
      const err = await cli.run('enable', { silenceMs: 5000, secrets: ['hunter2'], questions: [{ match: /password:\s*$/i, answer: 'hunter2', secret: true }] }).catch((e: unknown) => e);
      expect(err).to.be.instanceOf(SwitchOutputError);
      expect((err as Error).message).to.match(/asked again "Password:"/).and.not.include('hunter2');
      expect(typed.filter((x) => x === 'hunter2\n')).to.have.length(1);
    });

    it('a pager marker with a percentage (--More-- (42%)) is answered', async () => {
      const { t, cli } = await loggedIn();
      t.onTyped = (text) => {
        if (text === 'show version\n') setImmediate(() => t.send('show version\r\n', 'line 1\r\n', '--More-- (42%)'));
        if (text === ' ') setImmediate(() => t.send('\r              \r', 'line 2\r\n', 'sw1#'));
      };
      expect((await cli.run('show version', { silenceMs: 2000 })).output.split('\n').map((l) => l.trim()).filter(Boolean)).to.deep.equal(['line 1', 'line 2']);
    });

    it('a progress line of 300,000 bangs keeps its start and end only (every read would otherwise cost the whole line)', async () => {
      const { t, cli } = await loggedIn();
      t.onTyped = (text) => {
        if (!text.startsWith('copy')) return;
        setImmediate(() => {
          t.send('copy ftp://h/f flash:f\r\n', 'Loading f ');
          for (let i = 0; i < 3000; i++) t.send('!'.repeat(100));
          t.send('\r\n[OK - 300000/4096 bytes]\r\n300000 bytes copied in 1.0 secs\r\n', 'sw1#');
        });
      };
      const { output } = await cli.run('copy ftp://h/f flash:f', { silenceMs: 2000 });
      const [loading, ...rest] = output.split('\n');
      expect(loading!.startsWith('Loading f !!!')).to.equal(true);
      expect(loading!.length).to.be.below(66 * 1024).and.above(8 * 1024);
      expect(rest.join('\n')).to.include('300000 bytes copied in');
    });
  });
});
