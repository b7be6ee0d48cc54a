import { expect } from 'chai';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { once } from 'node:events';
import { chmodSync, existsSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { setTimeout as delay } from 'node:timers/promises';
import { readableRuntime, runCli, startCli, type CliProcess } from '../helpers/cli.js';
import { FtpControl, parsePasv, readDataConnection } from '../helpers/ftpControl.js';
import { FIXTURE_IMAGES } from '../helpers/testServer.js';
import { freePort } from '../helpers/ports.js';
import { httpGet, parseSamples } from '../helpers/prometheus.js';

const PASSWORD = 'cli-test-password';

describe('swfw serve (CLI)', function () {
  let running: CliProcess | null = null;
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'swfw-cli-'));
    // Started as root, serve drops to nobody, who must be able to read the images served from here.
    chmodSync(dir, 0o755);
  });
  afterEach(async function () {
    await running?.stop('SIGKILL');
    running = null;
    rmSync(dir, { recursive: true, force: true });
  });

  const serve = (port: number, extra: string[] = [], env: NodeJS.ProcessEnv = { SWFW_PASSWORD: PASSWORD }) =>
    startCli(['serve', '--host', '127.0.0.1', '--port', String(port), '--pasv-range', '40500-40504', ...extra], { env });

  it('a bad config gets one line per problem, each with its path, and exit 2', async function () {
    writeFileSync(join(dir, 'bad.json'), JSON.stringify({ port: 21, pasvRange: '63010-63006', colour: 'red', accounts: [{ user: 'x' }] }));
    const result = await runCli(['serve', '--config', join(dir, 'bad.json'), '--idle-timeout', '0']);
    expect(result.code).to.equal(2);
    const lines = result.stderr.trim().split('\n');
    expect(lines).to.have.length(4);
    expect(result.stderr).to.include('bad.json: colour: unknown key');
    expect(result.stderr).to.include('bad.json: pasvRange: range 63010-63006 is reversed');
    expect(result.stderr).to.include('bad.json: accounts[0]: needs exactly one of passwordEnv');
    expect(result.stderr).to.include('--idle-timeout: must be at least 1');
  });

  it('with no usable images directory, one line says where to set it, exit 2 (the default /srv/firmware too)', async function () {
    const nowhere = join(dir, 'no-such-images');
    const result = await runCli(['serve', '--port', '0', '--images', nowhere], { env: { SWFW_PASSWORD: PASSWORD } });
    expect(result.code).to.equal(2);
    expect(result.stderr.trim().split('\n')).to.deep.equal([
      `swfw: images directory ${nowhere} does not exist: set the firmware repository with --images DIR, "images" in the --config file, or SWFW_IMAGES`,
    ]);
    expect(result.stdout).to.not.include('swfw serving');
    if (existsSync('/srv/firmware')) return; // this host has a repository at the default path
    // SWFW_IMAGES unset (the helper sets it to the fixtures): the production default applies.
    const byDefault = await runCli(['serve', '--port', '0'], { env: { SWFW_PASSWORD: PASSWORD, SWFW_IMAGES: undefined } });
    expect(byDefault.code).to.equal(2);
    expect(byDefault.stderr).to.include('swfw: images directory /srv/firmware does not exist: set the firmware repository with --images DIR');
  });

  it('refuses passive ranges outside 1024-65535 or overlapping the control port', async function () {
    const low = await runCli(['serve', '--pasv-range', '1000-1004']);
    expect(low.code).to.equal(2);
    expect(low.stderr).to.include('outside 1024-65535');
    const overlap = await runCli(['serve', '--port', '63007']);
    expect(overlap.code).to.equal(2);
    expect(overlap.stderr).to.include('overlaps the control port 63007');
    const nonsense = await runCli(['serve', '--pasv-range', 'lots']);
    expect(nonsense.stderr).to.include('is not a port range');
  });

  it('a port in use gets one clear line naming it, and exit 2', async function () {
    const squatter: Server = createServer();
    await new Promise<void>((resolve) => squatter.listen(0, '127.0.0.1', resolve));
    const port = (squatter.address() as { port: number }).port;
    try {
      const result = await runCli(['serve', '--host', '127.0.0.1', '--port', String(port), '--pasv-range', '40500-40504'], {
        env: { SWFW_PASSWORD: PASSWORD },
      });
      expect(result.code).to.equal(2);
      expect(result.stderr).to.include(`swfw: port ${port} on 127.0.0.1 is already in use by another process`);
    } finally {
      await new Promise((resolve) => squatter.close(resolve));
    }
  });

  it('port 21 without privilege says how to fix it, and exits 2', async function () {
    if (process.getuid?.() !== 0 || spawnSync('setpriv', ['--version']).status !== 0) {
      this.skip(); // needs root to drop CAP_NET_BIND_SERVICE with setpriv; CI runs as root
    }
    const result = await runCli(['serve', '--host', '127.0.0.1', '--port', '21', '--pasv-range', '40500-40504'], {
      env: { SWFW_PASSWORD: PASSWORD },
      wrapper: ['setpriv', '--inh-caps=-net_bind_service', '--bounding-set=-net_bind_service'],
    });
    expect(result.code).to.equal(2);
    const line = result.stderr.trim();
    expect(line.split('\n')).to.have.length(1);
    expect(line).to.match(/port 21 needs privilege: run as root.*setcap cap_net_bind_service.*--port 2121/);
  });

  it('generates and prints a password once when SWFW_PASSWORD is unset, and it works', async function () {
    const port = await freePort();
    running = serve(port, [], {});
    const [, password] = await running.waitFor(/generated password for account "switch": (\S+)/);
    await running.waitFor(/swfw serving/);
    const control = await FtpControl.connect(port);
    try {
      expect((await control.login('switch', password!)).code).to.equal(230);
    } finally {
      control.close();
    }
    expect(running.stdout.match(/generated password/g)).to.have.length(1);
  });

  it('writes JSON-lines logs with the transfer audit and never the password', async function () {
    const port = await freePort();
    const logFile = join(dir, 'swfw.log');
    running = serve(port, ['--log-file', logFile]);
    await running.waitFor(/swfw serving/);
    expect(running.stdout).to.not.include('generated password');
    const control = await FtpControl.connect(port);
    try {
      await control.login('switch', 'not-the-password');
      await control.send('USER switch');
      expect((await control.send(`PASS ${PASSWORD}`)).code).to.equal(230);
      const { port: dataPort } = parsePasv(await control.send('PASV'));
      const data = readDataConnection(dataPort);
      expect((await control.send('RETR dell/OS10_10.5.6.0.bin')).code).to.equal(150);
      expect((await control.read())?.code).to.equal(226);
      await data;
    } finally {
      control.close();
    }
    const result = await running.stop('SIGTERM');
    expect(result.code).to.equal(0);
    const records = readFileSync(logFile, 'utf8').trim().split('\n').map((line) => JSON.parse(line) as Record<string, unknown>);
    const audit = records.find((r) => r['message'] === 'transfer');
    const expected = spawnSync('sha256sum', [join(FIXTURE_IMAGES, 'dell/OS10_10.5.6.0.bin')]).stdout.toString().split(' ')[0];
    expect(audit).to.include({ path: '/dell/OS10_10.5.6.0.bin', user: 'switch', offset: 0, bytes: 262151, code: 226, sha256: expected, client: '127.0.0.1' });
    expect(audit).to.have.property('durationMs');
    const text = readFileSync(logFile, 'utf8');
    expect(text).to.not.include(PASSWORD);
    expect(text).to.not.include('not-the-password');
  });

  /**
   * serve over a private repository holding big.bin (MIB MiB), logged in, with a PASV data
   * connection open and paused: RETR big.bin then holds a transfer running for as long as the
   * test wants.
   */
  async function serveWithOpenDataConnection(mib: number): Promise<{ server: CliProcess; port: number; control: FtpControl; data: Socket }> {
    const images = join(dir, 'images');
    mkdirSync(images);
    writeFileSync(join(images, 'big.bin'), Buffer.alloc(mib * 1024 * 1024, 9));
    const port = await freePort();
    const server = serve(port, ['--images', images]);
    running = server;
    await server.waitFor(/swfw serving/);
    const control = await FtpControl.connect(port);
    try {
      expect((await control.login('switch', PASSWORD)).code).to.equal(230);
      const { port: dataPort } = parsePasv(await control.send('PASV'));
      const data = connect({ port: dataPort, host: '127.0.0.1' });
      await once(data, 'connect');
      data.pause();
      return { server, port, control, data };
    } catch (err) {
      control.close();
      throw err;
    }
  }

  it('SIGTERM lets a running transfer finish, refuses new connections, then exits 0', async function () {
    const { server, port, control, data } = await serveWithOpenDataConnection(32);
    try {
      // Listened for now: the data connection may well close before the 226 and 421 are read.
      const dataClosed = once(data, 'close');
      let received = 0;
      data.on('data', (chunk: Buffer) => (received += chunk.length));
      expect((await control.send('RETR big.bin')).code).to.equal(150);
      server.child.kill('SIGTERM');
      await server.waitFor(/stopping/);
      // New connections are refused while the transfer drains: by the closed listener, or, for
      // one that was already in the accept queue, with 421 before any greeting.
      const late = connect({ port, host: '127.0.0.1' });
      const refusal = await new Promise<string>((resolve) => {
        let text = '';
        late.on('data', (chunk: Buffer) => (text += chunk.toString()));
        late.once('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? 'error'));
        late.once('close', () => resolve(text));
      });
      late.destroy();
      expect(refusal).to.match(/^(ECONNREFUSED|421 )/);
      data.resume();
      expect((await control.read())?.code).to.equal(226);
      expect((await control.read())?.code).to.equal(421);
      await dataClosed;
      expect(received).to.equal(32 * 1024 * 1024);
      const result = await server.exited;
      expect(result.code).to.equal(0);
      expect(result.stderr).to.include('server stopped');
    } finally {
      control.close();
    }
  });
  describe('dropping root after binding (root only)', function () {
    const uidOf = (pid: number) => readFileSync(`/proc/${pid}/status`, 'utf8').match(/^Uid:\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)$/m)!.slice(1).map(Number);
    before(function () {
      if (process.geteuid?.() !== 0) this.skip(); // CI and the dev machines run the suite as root
    });

    it('binds its ports as root, then the process that holds client connections runs as nobody (real, effective, saved, fs uid) and serves', async function () {
      const runtime = readableRuntime();
      try {
        const port = await freePort();
        running = startCli(['serve', '--host', '127.0.0.1', '--port', String(port), '--pasv-range', '40505-40506', '--images', runtime.images], { env: { SWFW_PASSWORD: PASSWORD, SWFW_RUN_AS: 'nobody' }, cli: runtime.cli });
        await running.waitFor(/swfw serving .* as nobody/);
        const nobody = Number(spawnSync('id', ['-u', 'nobody'], { encoding: 'utf8' }).stdout.trim());
        expect(uidOf(running.child.pid!)).to.deep.equal([nobody, nobody, nobody, nobody]);
        const control = await FtpControl.connect(port);
        try {
          expect((await control.login('switch', PASSWORD)).code).to.equal(230);
          expect(uidOf(running.child.pid!)).to.deep.equal([nobody, nobody, nobody, nobody]);
          const { port: dataPort } = parsePasv(await control.send('PASV'));
          const data = readDataConnection(dataPort);
          expect((await control.send('RETR /dell/OS10_10.5.6.0.bin')).code).to.equal(150);
          expect((await data).length).to.equal(262151);
          expect((await control.read())?.code).to.equal(226);
        } finally {
          control.close();
        }
      } finally {
        await running?.stop('SIGTERM');
        running = null;
        runtime.remove();
      }
    });

    it('--run-as root keeps root, and says so', async function () {
      const port = await freePort();
      running = serve(port, ['--run-as', 'root']);
      await running.waitFor(/swfw serving .* as root/);
      expect(uidOf(running.child.pid!)[1]).to.equal(0);
      expect(running.stderr).to.include('serving as root (--run-as root)');
    });

    it('refuses, before binding, a user who could not read the images after the drop: one line naming the path and the fixes, exit 2', async function () {
      const secret = mkdtempSync(join(tmpdir(), 'swfw-root-only-')); // 0700: only root can enter
      try {
        const port = await freePort();
        const result = await runCli(['serve', '--host', '127.0.0.1', '--port', String(port), '--pasv-range', '40507-40508', '--images', secret], { env: { SWFW_PASSWORD: PASSWORD, SWFW_RUN_AS: 'nobody' } });
        expect(result.code).to.equal(2);
        const lines = result.stderr.trim().split('\n');
        expect(lines).to.have.length(1);
        expect(lines[0]).to.equal(
          `swfw: serve drops root to "nobody" after binding, and nobody cannot read ${secret}: make the path readable by nobody (every parent directory o+x), choose a user who can read it with --run-as USER, or keep root with --run-as root`,
        );
        expect(result.stdout).to.not.include('swfw serving');
        const missing = await runCli(['serve', '--port', String(port), '--run-as', 'no-such-user-here'], { env: { SWFW_PASSWORD: PASSWORD } });
        expect(missing.code).to.equal(2);
        expect(missing.stderr.trim()).to.equal('swfw: --run-as: no user "no-such-user-here" on this host (serve drops to it after binding its ports)');
      } finally {
        rmSync(secret, { recursive: true, force: true });
      }
    });
  });

  it('--metrics HOST:PORT serves Prometheus metrics (bound before the drop of root) and closes them at SIGTERM', async function () {
    const port = await freePort();
    // freePort() may hand the same port twice in a row: the control port and the metrics port must differ.
    let metricsPort = await freePort();
    while (metricsPort === port) metricsPort = await freePort();
    running = serve(port, ['--metrics', `127.0.0.1:${metricsPort}`]);
    await running.waitFor(/swfw serving/);
    const scraped = await httpGet(metricsPort);
    expect(scraped.status).to.equal(200);
    expect(parseSamples(scraped.body).get('swfw_sessions')).to.equal(0);
    expect(parseSamples(scraped.body).get('swfw_login_failures_total')).to.equal(0);
    const result = await running.stop('SIGTERM');
    expect(result.code).to.equal(0);
    expect(await httpGet(metricsPort).then(() => 'answered', (err: NodeJS.ErrnoException) => err.code)).to.equal('ECONNREFUSED');
    const taken = await runCli(['serve', '--host', '127.0.0.1', '--port', String(port), '--pasv-range', '40500-40504', '--metrics', `127.0.0.1:${port}`], { env: { SWFW_PASSWORD: PASSWORD } });
    expect(taken.code).to.equal(2);
    expect(taken.stderr.trim()).to.equal(`swfw: config: --metrics: port ${port} is the control port`);
  });

  it('--xferlog FILE is reopened at its path on SIGHUP (logrotate), and serve goes on serving', async function () {
    const port = await freePort();
    // Its directory as /var/log/swfw would be: writable by the user serve runs as after a drop.
    mkdirSync(join(dir, 'logs'));
    chmodSync(join(dir, 'logs'), 0o777);
    const xferlog = join(dir, 'logs', 'xferlog');
    running = serve(port, ['--xferlog', xferlog]);
    await running.waitFor(/swfw serving/);
    renameSync(xferlog, `${xferlog}.1`);
    running.child.kill('SIGHUP');
    await running.waitFor(/xferlog reopened/);
    expect(existsSync(xferlog)).to.equal(true);
    const control = await FtpControl.connect(port);
    try {
      expect((await control.login('switch', PASSWORD)).code).to.equal(230);
    } finally {
      control.close();
    }
    expect((await running.stop('SIGTERM')).code).to.equal(0);
    const unwritable = await runCli(['serve', '--port', '0', '--xferlog', join(dir, 'missing', 'xferlog')], { env: { SWFW_PASSWORD: PASSWORD } });
    expect(unwritable.code).to.equal(2);
    expect(unwritable.stderr.trim()).to.equal(`swfw: --xferlog: cannot open ${join(dir, 'missing', 'xferlog')} for appending (ENOENT)`);
  });

  it('stopping with HTTP downloads that are not being read: each is cut and still leaves its audit record, exit 0', async function () {
    const images = join(dir, 'images');
    mkdirSync(images);
    writeFileSync(join(images, 'big.bin'), Buffer.alloc(64 * 1024 * 1024, 5));
    const port = await freePort();
    // freePort may hand the same port out twice in a row (it was free both times).
    let httpPort = await freePort();
    while (httpPort === port) httpPort = await freePort();
    const logFile = join(dir, 'swfw.log');
    const server = serve(port, ['--images', images, '--http', `127.0.0.1:${httpPort}`, '--log-file', logFile]);
    running = server;
    await server.waitFor(/swfw serving/);
    const basic = Buffer.from(`switch:${PASSWORD}`).toString('base64');
    const readers: Socket[] = [];
    try {
      for (let i = 0; i < 2; i++) {
        const reader = connect({ port: httpPort, host: '127.0.0.1' });
        reader.on('error', () => {});
        await once(reader, 'connect');
        reader.write(`GET /big.bin HTTP/1.1\r\nHost: x\r\nAuthorization: Basic ${basic}\r\n\r\n`);
        reader.pause();
        readers.push(reader);
      }
      await delay(500);
      // The first signal waits for the downloads; the second cuts them at once.
      server.child.kill('SIGTERM');
      await server.waitFor(/waiting for running transfers/);
      server.child.kill('SIGTERM');
      const result = await server.exited;
      expect(result.code, result.stderr).to.equal(0);
      expect(result.stderr).to.not.match(/write after end|Error/);
      const records = readFileSync(logFile, 'utf8').trim().split('\n').map((line) => JSON.parse(line) as Record<string, unknown>);
      const transfers = records.filter((r) => r['message'] === 'transfer');
      expect(transfers.map((r) => [r['protocol'], r['path'], r['result']])).to.deep.equal([
        ['http', '/big.bin', 'aborted'],
        ['http', '/big.bin', 'aborted'],
      ]);
      expect(records.at(-1)!['message']).to.equal('server stopped');
    } finally {
      for (const reader of readers) reader.destroy();
    }
  });

  it('a second SIGTERM during the grace period stops at once: the transfer gets 421, exit 0', async function () {
    // The data connection is never read: the transfer would hold the stop for its whole 10 s grace.
    const { server, control, data } = await serveWithOpenDataConnection(64);
    try {
      data.on('error', () => {});
      expect((await control.send('RETR big.bin')).code).to.equal(150);
      server.child.kill('SIGTERM');
      await server.waitFor(/waiting for running transfers/);
      const started = Date.now();
      server.child.kill('SIGTERM');
      const result = await server.exited;
      expect(Date.now() - started).to.be.below(3000);
      expect(result.code).to.equal(0);
      expect(result.stderr).to.include('second signal: stopping now');
      data.destroy();
    } finally {
      control.close();
    }
  });
});

describe('npm start', function () {
  /** `npm start` on 127.0.0.1, a free control port and `pasvRange`, detached: its own process group (npm → sh → node). */
  async function npmStart(pasvRange: string) {
    const { spawn } = await import('node:child_process');
    const { CliProcess } = await import('../helpers/cli.js');
    const child = spawn('npm', ['start', '--silent', '--', '--host', '127.0.0.1', '--port', '0', '--pasv-range', pasvRange], {
      cwd: join(FIXTURE_IMAGES, '..', '..'),
      env: { PATH: process.env['PATH'], HOME: process.env['HOME'], SWFW_PASSWORD: PASSWORD },
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    return { child, npm: new CliProcess(child) };
  }

  it('builds if needed and serves fixtures/images on the configured ports', async function () {
    const { child, npm } = await npmStart('40690-40694');
    try {
      const [, images, port] = await npm.waitFor(/swfw serving (\S+) on 127\.0\.0\.1:(\d+), passive 40690-40694/, 60_000);
      expect(images).to.equal(FIXTURE_IMAGES);
      const control = await FtpControl.connect(Number(port));
      try {
        expect((await control.login('switch', PASSWORD)).code).to.equal(230);
        expect((await control.send('SIZE /dell/OS10_10.5.6.0.bin')).text).to.equal('213 262151');
      } finally {
        control.close();
      }
    } finally {
      process.kill(-child.pid!, 'SIGTERM');
      await npm.exited;
    }
  });

  it("a SIGTERM to npm's own pid stops the server too (npm's sh does not pass it on)", async function () {
    const { child, npm } = await npmStart('40695-40699');
    try {
      const [, port] = await npm.waitFor(/swfw serving \S+ on 127\.0\.0\.1:(\d+)/, 60_000);
      process.kill(child.pid!, 'SIGTERM'); // npm only, as an admin would with the pid they see
      await npm.exited;
      const refused = async () =>
        new Promise<boolean>((resolve) => {
          const socket = connect({ host: '127.0.0.1', port: Number(port) });
          socket.once('connect', () => (socket.destroy(), resolve(false)));
          socket.once('error', () => resolve(true));
        });
      let stopped = false;
      for (let waited = 0; waited < 10_000 && !stopped; waited += 250) {
        stopped = await refused();
        if (!stopped) await new Promise((resolve) => setTimeout(resolve, 250));
      }
      expect(stopped, 'the server still listens after npm was stopped').to.equal(true);
    } finally {
      try {
        process.kill(-child.pid!, 'SIGKILL'); // whatever of the group is left
      } catch {
        // the group is gone: nothing left behind
      }
    }
  });
});
