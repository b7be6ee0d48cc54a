import { expect } from 'chai';
import { spawn } from 'node:child_process';
import { accessSync, constants, existsSync } from 'node:fs';
import { floorMs, trackCpu, untrackCpu, withCpu } from '../cpu.js';

/** CPU a child burns in a busy loop, by its own CPU clock: a loaded machine stretches only the wall time. */
const BUSY_MS = 300;
const busyScript = `const t = process.cpuUsage(); for (;;) { const u = process.cpuUsage(t); if (u.user + u.system >= ${BUSY_MS * 1000}) break; }`;

/** Where the bench puts vsftpd's cgroup, if this machine lets root write there (not in a container with a read-only cgroupfs). */
function writableCgroupRoot(): string | null {
  for (const dir of ['/sys/fs/cgroup/cpuacct', '/sys/fs/cgroup']) {
    if (!existsSync(dir)) continue;
    try {
      accessSync(dir, constants.W_OK);
      return dir;
    } catch {
      // Read-only here: try the next layout.
    }
  }
  return null;
}

/** Resolves when the child has exited and been reaped (its CPU is then in our counters). */
const closed = (child: ReturnType<typeof spawn>) => new Promise<void>((resolve) => child.once('close', () => resolve()));

describe('bench CPU accounting (bench/cpu.ts)', function () {
  this.timeout(20_000);

  it('counts the CPU of a child that ran and was reaped', async () => {
    const { cpuMs, byPidMs } = await withCpu([], () => closed(spawn(process.execPath, ['-e', busyScript], { stdio: 'ignore' })));
    expect(byPidMs).to.deep.equal([]);
    // The busy loop plus node's own start-up, in whole clock ticks.
    expect(cpuMs).to.be.at.least(BUSY_MS).and.below(BUSY_MS * 10);
  });

  it("a tracked server's cgroup counts work done by a process re-parented to init (vsftpd's sessions)", async function () {
    if (process.getuid?.() !== 0 || !writableCgroupRoot()) {
      console.log('      (cgroups not writable here: the bench falls back to /proc counters and says so in its report)');
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
      expect(byPidMs[0]).to.be.at.least(BUSY_MS);
    } finally {
      await untrackCpu(serverPid);
    }
  });

  it('a floor is the CPU spread over every core, never less than the part that cannot be split', () => {
    expect(floorMs(1800, 700, 2)).to.equal(900);
    expect(floorMs(1000, 700, 2)).to.equal(700);
  });
});
