import { expect } from 'chai';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { activeRunner, lockStateDir, releaseLock } from '../../src/rollout/control.js';
import { RefusalError } from '../../src/core/errors.js';

describe('rollout runner lock (state directory)', function () {
  let dir: string;
  const lockFile = () => join(dir, 'runner.pid');
  beforeEach(() => (dir = mkdtempSync(join(tmpdir(), 'swfw-lock-'))));
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('takes a free lock with our pid, and again (held across a schedule) without complaint', function () {
    lockStateDir(dir);
    expect(readFileSync(lockFile(), 'utf8').trim()).to.equal(String(process.pid));
    lockStateDir(dir);
    releaseLock(dir);
    expect(activeRunner(dir)).to.equal(null);
  });

  it('refuses with exit 2 while another live process holds it', async function () {
    const other = spawn('sleep', ['30'], { stdio: 'ignore' });
    try {
      writeFileSync(lockFile(), `${other.pid}\n`);
      expect(activeRunner(dir)).to.equal(other.pid);
      expect(() => lockStateDir(dir))
        .to.throw(RefusalError, `a rollout runner (pid ${other.pid}) is already working on ${dir}`);
      expect(readFileSync(lockFile(), 'utf8').trim()).to.equal(String(other.pid));
    } finally {
      other.kill();
      await once(other, 'exit');
    }
  });

  it('takes over a lock whose runner died (kill -9, reboot) or that was left empty', async function () {
    const dead = spawn('true', { stdio: 'ignore' });
    await once(dead, 'exit');
    writeFileSync(lockFile(), `${dead.pid}\n`);
    lockStateDir(dir);
    expect(readFileSync(lockFile(), 'utf8').trim()).to.equal(String(process.pid));
    writeFileSync(lockFile(), '');
    lockStateDir(dir);
    expect(readFileSync(lockFile(), 'utf8').trim()).to.equal(String(process.pid));
  });

  it("eight runners taking over one dead runner's lock at the same moment: exactly one gets it", async function () {
    this.timeout(30_000);
    const control = new URL('../../src/rollout/control.js', import.meta.url).href;
    // Each child waits for the same wall-clock instant, then tries, then holds what it got for a while.
    const script = `
      const { lockStateDir } = await import(${JSON.stringify(control)});
      const at = Number(process.argv[2]);
      while (Date.now() < at) {}
      let got = 'refused';
      try { lockStateDir(process.argv[1]); got = 'locked'; } catch (e) { got = 'refused'; }
      process.stdout.write(got);
      await new Promise((r) => setTimeout(r, 1500));
    `;
    for (let round = 0; round < 5; round++) {
      const dead = spawn('true', { stdio: 'ignore' });
      await once(dead, 'exit');
      writeFileSync(lockFile(), `${dead.pid}\n`);
      const at = Date.now() + 700;
      const children = Array.from({ length: 8 }, () => spawn(process.execPath, ['--input-type=module', '-e', script, dir, String(at)], { stdio: ['ignore', 'pipe', 'inherit'] }));
      const results = await Promise.all(
        children.map(async (child) => {
          let out = '';
          child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
          await once(child, 'exit');
          return out;
        }),
      );
      expect(results.filter((r) => r === 'locked'), `round ${round}: ${results.join(' ')}`).to.have.length(1);
      rmSync(lockFile(), { force: true });
    }
  });
});
