/**
 * `--syslog`: records reach a real Unix datagram socket, as /dev/log is, with the PRI of their
 * facility and severity, and never a password.
 */
import { expect } from 'chai';
import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLogger } from '../../src/log/logger.js';
import { startCli, type CliProcess } from '../helpers/cli.js';
import { FtpControl } from '../helpers/ftpControl.js';
import { freePort } from '../helpers/ports.js';

/** A syslog daemon's socket: a SOCK_DGRAM Unix socket (Node cannot bind one), each datagram a line on stdout. */
const LISTENER = `
import os, socket, sys
path = sys.argv[1]
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(path)
os.chmod(path, 0o666)
print("ready", flush=True)
while True:
    data = s.recv(65536).decode("utf-8", "replace").replace("\\n", " ")
    print(data, flush=True)
`;

class SyslogListener {
  lines: string[] = [];
  private constructor(private readonly child: ChildProcess) {
    let buffer = '';
    child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
      buffer += chunk;
      const parts = buffer.split('\n');
      buffer = parts.pop()!;
      this.lines.push(...parts);
    });
  }
  static async start(path: string): Promise<SyslogListener> {
    const listener = new SyslogListener(spawn('python3', ['-c', LISTENER, path], { stdio: ['ignore', 'pipe', 'inherit'] }));
    await listener.waitFor(/^ready$/);
    return listener;
  }
  async waitFor(pattern: RegExp, timeoutMs = 10_000): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const line = this.lines.find((l) => pattern.test(l));
      if (line) return line;
      if (Date.now() > deadline) throw new Error(`no syslog message matched ${pattern}; got:\n${this.lines.join('\n')}`);
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
  }
  async stop(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    const exited = new Promise((resolve) => this.child.once('exit', resolve));
    this.child.kill('SIGTERM');
    await exited;
  }
}

/** An RFC 3164 message as logger(1) sends it: `<PRI>Mmm dd hh:mm:ss HOST swfw[pid]: text` (PRI, pid, text). */
const RFC3164 = /^<(\d+)>\w{3} [ \d]\d \d\d:\d\d:\d\d \S+ swfw\[(\d+)\]: (.*)$/;

describe('--syslog (the local syslog, through logger(1))', function () {
  let dir: string;
  let listener: SyslogListener;
  let serve: CliProcess | null = null;
  beforeEach(async function () {
    dir = mkdtempSync(join(tmpdir(), 'swfw-syslog-'));
    chmodSync(dir, 0o755); // serve's logger(1) runs as the user serve drops to
    listener = await SyslogListener.start(join(dir, 'log'));
  });
  afterEach(async function () {
    await serve?.stop('SIGKILL');
    serve = null;
    await listener.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('sends each record with PRI = facility × 8 + severity, the tag and pid, and never a password field', async function () {
    const logger = createLogger({ level: 'debug', console: false, syslog: { facility: 16, socket: join(dir, 'log') } });
    logger.info('hello from the test', { user: 'switch', password: 'never-this-secret' });
    logger.error('something broke', { code: 42 });
    logger.debug('two\nlines');
    await logger.close();
    const info = RFC3164.exec(await listener.waitFor(/hello from the test/))!;
    expect(info[1]).to.equal(String(16 * 8 + 6)); // local0.info
    expect(info[2]).to.equal(String(process.pid));
    expect(info[3]).to.equal('hello from the test user=switch password=[redacted]');
    expect(RFC3164.exec(await listener.waitFor(/something broke/))![1]).to.equal(String(16 * 8 + 3)); // local0.err
    const debug = RFC3164.exec(await listener.waitFor(/two/))!;
    expect([debug[1], debug[3]]).to.deep.equal([String(16 * 8 + 7), 'two lines']);
    expect(listener.lines.join('\n')).to.not.include('never-this-secret');
  });

  it('swfw serve --syslog: facility daemon by default; a failed login is a warning without the password', async function () {
    const port = await freePort();
    serve = startCli(['serve', '--host', '127.0.0.1', '--port', String(port), '--pasv-range', '44910-44911', '--syslog', '--syslog-socket', join(dir, 'log')], {
      env: { SWFW_PASSWORD: 'syslog-test-password' },
    });
    await serve.waitFor(/swfw serving/);
    const serving = RFC3164.exec(await listener.waitFor(/serving firmware images read-only/))!;
    expect(serving[1]).to.equal(String(3 * 8 + 6)); // daemon.info
    expect(serving[2]).to.equal(String(serve.child.pid));
    const control = await FtpControl.connect(port);
    try {
      expect((await control.login('switch', 'a-wrong-password-here')).code).to.equal(530);
    } finally {
      control.close();
    }
    const failed = RFC3164.exec(await listener.waitFor(/failed login/))!;
    expect(failed[1]).to.equal(String(3 * 8 + 4)); // daemon.warning
    expect((await serve.stop('SIGTERM')).code).to.equal(0);
    expect(listener.lines.join('\n')).to.not.include('a-wrong-password-here');
    expect(listener.lines.join('\n')).to.not.include('syslog-test-password');
    await listener.waitFor(/server stopped/);
  });
});
