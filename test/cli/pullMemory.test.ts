import { expect } from 'chai';
import { createHash, randomBytes } from 'node:crypto';
import { closeSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, statSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { startCli } from '../helpers/cli.js';
import { TEST_PASSWORD, TEST_USER, startTestServer, type TestServer } from '../helpers/testServer.js';

/** This suite's passive ports (the pull suites own 43000-43099). */
const PASV_RANGE = '43080-43084';
const GIB = 1024 * 1024 * 1024;
const BLOCK = 4 * 1024 * 1024;
const MAX_RSS_KIB = 150 * 1024;

/** Peak resident set (VmHWM) of a live process, in KiB; null once it has exited. */
function peakRssKiB(pid: number): number | null {
  try {
    const match = /^VmHWM:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return match ? Number(match[1]) : null;
  } catch {
    return null;
  }
}

describe('swfw pull memory: a 1 GiB pull stays flat', function () {
  this.timeout(120_000);
  let dir: string;
  let server: TestServer | null = null;
  let sha256: string;

  before(async function () {
    dir = mkdtempSync(join(tmpdir(), 'swfw-pull-1g-'));
    mkdirSync(join(dir, 'images'));
    mkdirSync(join(dir, 'out'));
    // 1 GiB of incompressible bytes: a random 4 MiB block with a counter in each copy.
    const block = randomBytes(BLOCK);
    const hash = createHash('sha256');
    const fd = openSync(join(dir, 'images', 'big.bin'), 'w');
    try {
      for (let i = 0; i < GIB / BLOCK; i++) {
        block.writeUInt32BE(i, 0);
        hash.update(block);
        writeSync(fd, block);
      }
    } finally {
      closeSync(fd);
    }
    sha256 = hash.digest('hex');
    // The server's own SHA-256 of sent bytes is off: this test measures the client, and the
    // server's hash would only compete with it for this machine's two cores.
    server = await startTestServer(PASV_RANGE, { flags: { images: join(dir, 'images'), hashSentBytes: false } });
  });
  after(async () => {
    await server?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('peak RSS (VmHWM) of the CLI pulling and hashing 1 GiB is below 150 MiB', async function () {
    const out = join(dir, 'out', 'big.bin');
    const started = Date.now();
    const cli = startCli(['pull', `ftp://${TEST_USER}@127.0.0.1:${server!.port}/big.bin`, '--out', out, '--sha256', sha256, '--json'], {
      env: { SWFW_PASSWORD: TEST_PASSWORD },
    });
    const pid = cli.child.pid!;
    let peak = 0;
    let done = false;
    void cli.exited.then(() => (done = true));
    while (!done) {
      peak = Math.max(peak, peakRssKiB(pid) ?? 0);
      await delay(20);
    }
    const result = await cli.exited;
    const seconds = (Date.now() - started) / 1000;
    expect(result.code, result.stderr).to.equal(0);
    const json = JSON.parse(result.stdout.trim().split('\n').pop()!) as Record<string, unknown>;
    expect(json).to.include({ verdict: 'verified', bytes: GIB, sha256 });
    expect(statSync(out).size).to.equal(GIB);
    console.log(`      1 GiB pull: ${seconds.toFixed(1)} s wall (pull ${json['durationMs']} ms), peak RSS ${(peak / 1024).toFixed(0)} MiB`);
    expect(peak, 'VmHWM was sampled').to.be.above(10 * 1024);
    expect(peak).to.be.below(MAX_RSS_KIB);
  });
});
