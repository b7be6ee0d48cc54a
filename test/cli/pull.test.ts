import { expect } from 'chai';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CLI, runCli, type CliResult } from '../helpers/cli.js';
import { FIXTURE_IMAGES, TEST_PASSWORD, TEST_USER, startTestServer, type TestServer } from '../helpers/testServer.js';
import { FakeFtpServer } from '../helpers/fakeFtpServer.js';
import { expectOnlyFiles } from '../helpers/pullCheck.js';

/** This suite's passive ports (the pull suites own 43000-43099). */
const PASV_RANGE = '43060-43064';
const FAKE_PASV = { min: 43065, max: 43074 };
const DELL = '/dell/OS10_10.5.6.0.bin';
const DELL_BYTES = readFileSync(join(FIXTURE_IMAGES, DELL));
const DELL_SHA256 = '5aa194165c17bc9b01b9b30147c54b934e605dd927ff972eb363f207a97a717e';
const DELL_MD5 = 'db2af32d10ce8a0b6109441db722830e';

/** The last stdout line, parsed: --json promises one object there. */
function lastJson(result: CliResult): Record<string, unknown> {
  const lines = result.stdout.trim().split('\n');
  return JSON.parse(lines[lines.length - 1]!) as Record<string, unknown>;
}

describe('swfw pull (the built CLI)', function () {
  this.timeout(30_000);
  let server: TestServer;
  let dir: string;
  const env = { SWFW_PASSWORD: TEST_PASSWORD };

  before(async () => {
    server = await startTestServer(PASV_RANGE);
  });
  after(async () => {
    await server?.stop();
  });
  beforeEach(() => (dir = mkdtempSync(join(tmpdir(), 'swfw-cli-pull-'))));
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  const url = (path: string, auth = TEST_USER) => `ftp://${auth}@127.0.0.1:${server.port}${path}`;

  it('exit 0 with --sha256; --json is the last stdout line with bytes, durationMs, sha256, md5 and the verdict', async function () {
    const out = join(dir, 'os10.bin');
    const result = await runCli(['pull', url(DELL), '--out', out, '--sha256', DELL_SHA256, '--json'], { env });
    expect(result.code, result.stderr).to.equal(0);
    const json = lastJson(result);
    expect(json).to.include({ verdict: 'verified', ok: true, exitCode: 0, bytes: DELL_BYTES.length, sha256: DELL_SHA256, md5: null, out, hashing: 'worker' });
    expect(json['durationMs']).to.be.a('number');
    expect(readFileSync(out).equals(DELL_BYTES)).to.equal(true);
    expectOnlyFiles(dir, ['os10.bin']);
    expect(result.stderr, 'no progress bar when stderr is not a TTY').not.to.include('\r');
  });

  it('--md5 (or --all-hashes) adds MD5 to the evidence; --catalog verifies against the catalog entry', async function () {
    let result = await runCli(['pull', url(DELL), '--out', join(dir, 'a.bin'), '--md5', DELL_MD5.toUpperCase(), '--json'], { env });
    expect(result.code, result.stderr).to.equal(0);
    expect(lastJson(result)).to.include({ verdict: 'verified', md5: DELL_MD5, sha256: DELL_SHA256 });
    result = await runCli(['pull', url(DELL), '--out', join(dir, 'b.bin'), '--catalog', FIXTURE_IMAGES, '--json'], { env });
    expect(result.code, result.stderr).to.equal(0);
    const json = lastJson(result);
    expect(json).to.include({ verdict: 'verified', image: 'dell/OS10_10.5.6.0.bin', md5: DELL_MD5 });
    expect(json['expected']).to.include({ sha256: DELL_SHA256, size: DELL_BYTES.length });
    result = await runCli(['pull', url(DELL), '--out', join(dir, 'c.bin'), '--sha256', DELL_SHA256, '--all-hashes'], { env });
    expect(result.code, result.stderr).to.equal(0);
    expect(result.stdout).to.match(/^verified .*c\.bin 256 KiB in [\d.]+ s sha256 5aa1941/);
  });

  it('exit 3 when the checksum stays wrong: nothing at --out and no temp file left', async function () {
    const out = join(dir, 'os10.bin');
    const result = await runCli(['pull', url(DELL), '--out', out, '--sha256', 'f'.repeat(64), '--retries', '1', '--retry-delay', '1', '--json'], { env });
    expect(result.code).to.equal(3);
    expect(lastJson(result)).to.include({ verdict: 'checksum-mismatch', ok: false, exitCode: 3, out: null, restarts: 1 });
    expect(existsSync(out)).to.equal(false);
    expectOnlyFiles(dir, []);
    expect(result.stderr).to.match(/swfw: mismatch: /);
  });

  it('exit 4 for a missing file (550) at once; exit 4 after the retries for transient failures', async function () {
    let result = await runCli(['pull', url('/dell/nope.bin'), '--out', join(dir, 'x.bin'), '--sha256', DELL_SHA256, '--json'], { env });
    expect(result.code).to.equal(4);
    expect(lastJson(result)).to.include({ verdict: 'transfer-failed', replyCode: 550, attempts: 1 });
    const fake = await FakeFtpServer.start({ files: { '/a.bin': DELL_BYTES }, pasvRange: FAKE_PASV, script: { pasv425: 100 } });
    try {
      result = await runCli(['pull', fake.url('/a.bin'), '--out', join(dir, 'x.bin'), '--retries', '2', '--retry-delay', '1', '--json'], { env });
      expect(result.code).to.equal(4);
      expect(lastJson(result)).to.include({ verdict: 'transfer-failed', replyCode: 425, attempts: 3 });
      expect(result.stderr).to.include('retrying');
    } finally {
      await fake.stop();
    }
    expectOnlyFiles(dir, []);
  });

  it('exit 0 after a resume: the data connection is cut halfway and REST carries on', async function () {
    const half = DELL_BYTES.length >> 1;
    const fake = await FakeFtpServer.start({ files: { '/a.bin': DELL_BYTES }, pasvRange: FAKE_PASV, script: { cutRetrs: 1, cutAtBytes: half } });
    try {
      const result = await runCli(['pull', fake.url('/a.bin'), '--out', join(dir, 'a.bin'), '--sha256', DELL_SHA256, '--retry-delay', '1', '--json'], { env });
      expect(result.code, result.stderr).to.equal(0);
      expect(lastJson(result)).to.deep.include({ verdict: 'verified', restOffsets: [half], attempts: 2 });
      expect(fake.log.rests).to.deep.equal([half]);
    } finally {
      await fake.stop();
    }
  });

  it('a password in the URL works but is warned about and never printed', async function () {
    const result = await runCli(['pull', url(DELL, `${TEST_USER}:${TEST_PASSWORD}`), '--out', join(dir, 'a.bin'), '--sha256', DELL_SHA256, '--json'], { env: {} });
    expect(result.code, result.stderr).to.equal(0);
    expect(result.stderr).to.match(/warning: the password in the URL is visible/);
    expect(result.stdout + result.stderr).not.to.include(TEST_PASSWORD);
    expect(lastJson(result)['url']).to.equal(`ftp://${TEST_USER}@127.0.0.1:${server.port}${DELL}`);
  });

  it('exit 2 for usage errors (and a usage-error object with --json)', async function () {
    const out = join(dir, 'a.bin');
    const cases: Array<[string[], RegExp, NodeJS.ProcessEnv?]> = [
      [['pull', 'http://127.0.0.1/a.bin', '--out', out], /only ftp:\/\/ URLs/],
      [['pull', url(DELL)], /required option '--out <file>'/],
      [['pull', url(DELL), '--out', out, '--sha256', 'abc'], /--sha256: sha256 must be 64 hex digits/],
      [['pull', url(DELL), '--out', out, '--sha256', DELL_SHA256, '--catalog', FIXTURE_IMAGES], /either --catalog or digest flags/],
      [['pull', url('/unknown.bin'), '--out', out, '--catalog', FIXTURE_IMAGES], /no catalog entry/],
      [['pull', url(DELL), '--out', join(dir, 'missing-dir', 'a.bin')], /directory .* does not exist/],
      [['pull', url(DELL), '--out', out, '--retries', '-1'], /--retries/],
      [['pull', url(DELL), '--out', out], /no password for user "switch": set SWFW_PASSWORD/, {}],
    ];
    for (const [args, message, caseEnv] of cases) {
      const result = await runCli(args, { env: caseEnv ?? env });
      expect(result.code, `${args.join(' ')}\n${result.stderr}`).to.equal(2);
      expect(result.stderr, args.join(' ')).to.match(message);
    }
    const json = await runCli(['pull', 'ftp://127.0.0.1/', '--out', out, '--json'], { env });
    expect(json.code).to.equal(2);
    expect(lastJson(json)).to.include({ verdict: 'usage-error', ok: false, exitCode: 2 });
    expectOnlyFiles(dir, []);
  });

  it('on a TTY, draws a progress bar (bytes, rate, ETA) on stderr', async function () {
    // util-linux `script` gives the CLI a pseudo-terminal; -e returns the CLI's exit code.
    const out = join(dir, 'tty.bin');
    const command = [process.execPath, CLI, 'pull', url(DELL), '--out', out, '--sha256', DELL_SHA256].map((a) => `'${a}'`).join(' ');
    const child = spawn('script', ['-q', '-e', '-c', command, '/dev/null'], { env: { ...env, PATH: process.env['PATH'] }, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.setEncoding('utf8').on('data', (s: string) => (output += s));
    const [code] = (await once(child, 'exit')) as [number | null];
    expect(code, output).to.equal(0);
    expect(output).to.match(/\[#+\] 100% 256 KiB \/ 256 KiB .*\/s ETA/);
    expect(output).to.include('\r\x1b[K');
  });
});
