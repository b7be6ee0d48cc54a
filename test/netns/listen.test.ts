import { expect } from 'chai';
import { Lab, SERVER_ADDRESS, skipUnlessNetns } from '../helpers/netns.js';
import type { CliResult } from '../helpers/cli.js';

function statuses(result: CliResult): Record<string, string> {
  const report = JSON.parse(result.stdout) as { ports: Array<{ port: number; status: string }> };
  return Object.fromEntries(report.ports.map((p) => [p.port, p.status]));
}

describe('check-ports --listen: validating the path before the service is deployed (network namespaces)', function () {
  this.timeout(60_000);
  let lab: Lab | null = null;

  before(function () {
    skipUnlessNetns(this);
    lab = new Lab().create();
  });
  afterEach(async () => lab?.stopProcesses());
  after(async function () {
    await lab?.destroy();
  });

  it('bare responders on 21 and 63006-63010 answer the same check, anonymously; a dropped port shows; SIGTERM stops them', async function () {
    const listener = lab!.start(lab!.serverNs, ['check-ports', '--listen']);
    await listener.waitFor(/listening on 0\.0\.0\.0:21, passive 63006-63010 \(5 bound; empty repository; logins: anonymous\)/);
    const check = () => lab!.runCli(lab!.switchNs, ['check-ports', '--host', SERVER_ADDRESS, '--timeout', '1', '--json'], { timeoutMs: 30_000 });

    const open = await check();
    expect(open.code, open.stderr).to.equal(0);
    expect(statuses(open)).to.deep.equal({ 63006: 'open', 63007: 'open', 63008: 'open', 63009: 'open', 63010: 'open' });

    lab!.iptables(lab!.firewallNs, '-A', 'FORWARD', '-p', 'tcp', '-d', SERVER_ADDRESS, '--dport', '63008', '-j', 'DROP');
    const dropped = await check();
    expect(dropped.code).to.equal(1);
    expect(statuses(dropped)).to.deep.include({ 63007: 'open', 63008: 'filtered', 63009: 'open' });

    const stopped = await listener.stop('SIGTERM', 5000);
    expect(stopped.code, stopped.stderr).to.equal(0);
    expect(stopped.signal).to.equal(null);
  });

  it('with SWFW_PASSWORD set on both sides, the usual account logs in', async function () {
    const env = { SWFW_PASSWORD: 'listen-secret' };
    const listener = lab!.start(lab!.serverNs, ['check-ports', '--listen', '--port', '2121', '--pasv-range', '63020-63021'], { env });
    await listener.waitFor(/logins: anonymous, switch\)/);
    const result = await lab!.runCli(
      lab!.switchNs,
      ['check-ports', '--host', SERVER_ADDRESS, '--port', '2121', '--pasv-range', '63020-63021', '--timeout', '1', '--json'],
      { env, timeoutMs: 30_000 },
    );
    expect(result.code, result.stderr).to.equal(0);
    expect(statuses(result)).to.deep.equal({ 63020: 'open', 63021: 'open' });
    expect((await listener.stop('SIGTERM', 5000)).code).to.equal(0);
  });
});
