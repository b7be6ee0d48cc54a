import { expect } from 'chai';
import { spawn } from 'node:child_process';
import { floorMs, trackCpu, untrackCpu, withCpu } from '../../bench/cpu.js';

/** CPU a child burns in a busy loop; the counted CPU must be at least most of it. */
const BUSY_MS = 300;
const busyScript = `const end = Date.now() + ${BUSY_MS}; while (Date.now() < end) {}`;

/** Resolves when the child has exited and been reaped (its CPU is then in our counters). */
const closed = (child: ReturnType<typeof spawn>) => new Promise<void>((resolve) => child.once('close', () => resolve()));

describe('bench CPU accounting (bench/cpu.ts)', function () {
  this.timeout(20_000);

  it('counts the CPU of a child that ran and was reaped', async () => {
    const { cpuMs, childrenMs } = await withCpu([], () => closed(spawn(process.execPath, ['-e', busyScript], { stdio: 'ignore' })));
    expect(childrenMs).to.equal(cpuMs);
    // The busy loop plus node's own start-up; a loaded machine only stretches the wall time.
    expect(cpuMs).to.be.at.least(BUSY_MS * 0.8).and.below(BUSY_MS * 10);
  });

  it("a tracked server's cgroup counts work done by a process re-parented to init (vsftpd's sessions)", async function () {
    if (process.getuid?.() !== 0) {
      console.log('      (not root: cgroups are not writable; the bench then falls back to /proc counters)');
      this.skip();
    }
    // A "server" that forks a worker and exits before it: the worker is re-parented to init, so
    // its CPU never reaches the server's /proc counters, which is what vsftpd's sessions do.
    const server = spawn('sh', ['-c', `sleep 0.2; ${JSON.stringify(process.execPath)} -e ${JSON.stringify(busyScript)} & exit 0`], { stdio: 'ignore' });
    const serverPid = server.pid!;
    expect(trackCpu(serverPid, 'test-orphan'), 'cgroup v1 cpuacct or v2 must be writable as root').to.equal(true);
    try {
      const { byPidMs } = await withCpu([serverPid], async () => {
        await closed(server);
        // The orphan outlives the server; wait for it through the settle step (its cgroup empties).
      });
      expect(byPidMs[0]).to.be.at.least(BUSY_MS * 0.8);
    } finally {
      await untrackCpu(serverPid);
    }
  });

  it('a floor is the CPU spread over every core, never less than the part that cannot be split', () => {
    expect(floorMs(1800, 700, 2)).to.equal(900);
    expect(floorMs(1000, 700, 2)).to.equal(700);
  });
});
