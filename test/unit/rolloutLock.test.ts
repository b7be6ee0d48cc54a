import { expect } from 'chai';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { activeRunner, lockStateDir, releaseLock } from '../../src/rollout/control.js';
import { ExitError } from '../../src/core/errors.js';

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
        .to.throw(ExitError, `a rollout runner (pid ${other.pid}) is already working on ${dir}`)
        .with.property('exitCode', 2);
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
});
