import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli, startCli, type CliProcess } from '../helpers/cli.js';
import { freePort } from '../helpers/ports.js';

const PASSWORD = 'cli-check-ports';

describe('swfw check-ports, firewall rules and serve --open-firewall (CLI)', function () {
  let running: CliProcess | null = null;
  afterEach(async () => {
    await running?.stop('SIGKILL');
    running = null;
  });

  it('check-ports against a running serve: table, JSON with ports ascending, exit 0', async function () {
    const port = await freePort();
    running = startCli(['serve', '--host', '127.0.0.1', '--port', String(port), '--pasv-range', '40916-40917', '--log-level', 'warn'], {
      env: { SWFW_PASSWORD: PASSWORD },
    });
    await running.waitFor(/swfw serving/);
    const args = ['check-ports', '--host', '127.0.0.1', '--port', String(port), '--pasv-range', '40916-40917', '--timeout', '2'];
    const json = await runCli([...args, '--json'], { env: { SWFW_PASSWORD: PASSWORD } });
    expect(json.code, json.stderr).to.equal(0);
    const report = JSON.parse(json.stdout) as { host: string; control: { port: number; status: string }; ports: Array<{ port: number; status: string }> };
    expect(report.host).to.equal('127.0.0.1');
    expect(report.control).to.include({ port, status: 'open' });
    expect(report.ports.map((p) => `${p.port} ${p.status}`)).to.deep.equal(['40916 open', '40917 open']);
    const table = await runCli(args, { env: { SWFW_PASSWORD: PASSWORD } });
    expect(table.code).to.equal(0);
    expect(table.stdout).to.match(/^40917\s+open\s+a transfer through the port works$/m);
    expect(table.stdout).to.include('verdict: OK: control port');
  });

  it('check-ports usage: no --host is exit 2; a closed control port is exit 4 at once', async function () {
    const noHost = await runCli(['check-ports']);
    expect(noHost.code).to.equal(2);
    expect(noHost.stderr).to.include('needs --host');
    const port = await freePort();
    const started = Date.now();
    const closed = await runCli(['check-ports', '--host', '127.0.0.1', '--port', String(port), '--json']);
    expect(closed.code).to.equal(4);
    expect(Date.now() - started).to.be.below(5000);
    expect(closed.stderr).to.include(`control port 127.0.0.1:${port} is not reachable: connect failed (ECONNREFUSED)`);
    expect(JSON.parse(closed.stdout)).to.deep.include({ host: '127.0.0.1', ports: [] });
  });

  it('firewall rules prints each format from the config; bad input is exit 2', async function () {
    const ufw = await runCli(['firewall', 'rules', '--format', 'ufw', '--source', '10.1.0.0/24', '--pasv-range', '63006-63008']);
    expect(ufw.code, ufw.stderr).to.equal(0);
    expect(ufw.stdout).to.include('ufw allow proto tcp from 10.1.0.0/24 to any port 21 comment swfw:21');
    expect(ufw.stdout).to.include('port 63006:63008 ');
    expect((await runCli(['firewall', 'rules', '--format', 'pf'])).code).to.equal(2);
    expect((await runCli(['firewall', 'rules'])).code).to.equal(2);
    const badSource = await runCli(['firewall', 'rules', '--format', 'iptables', '--source', '10.1.0.0/99']);
    expect(badSource.code).to.equal(2);
    expect(badSource.stderr).to.include('--source');
  });

  it('serve --open-firewall refuses, exit 2 and nothing bound, without iptables/nft or without root', async function () {
    const port = await freePort();
    const empty = mkdtempSync(join(tmpdir(), 'swfw-no-tools-'));
    const args = ['serve', '--open-firewall', '--host', '127.0.0.1', '--port', String(port), '--pasv-range', '40918-40919'];
    try {
      const root = process.geteuid?.() === 0;
      if (root) {
        const noTool = await runCli(args, { env: { SWFW_PASSWORD: PASSWORD, PATH: empty } });
        expect(noTool.code, noTool.stderr).to.equal(2);
        expect(noTool.stderr).to.include('--open-firewall needs iptables or nft, and neither is usable');
        expect(noTool.stderr).to.include('not found in PATH');
      }
      // Not root: when we are root, in a user namespace where we are nobody (uid 65534) and the
      // checkout stays readable, even one only root can enter; as ourselves otherwise.
      const unshare = root && !spawnSync('unshare', ['--user', '--map-user=65534', '--map-group=65534', 'true'], { stdio: 'ignore' }).error;
      if (root && !unshare) return;
      const wrapper = root ? ['unshare', '--user', '--map-user=65534', '--map-group=65534'] : [];
      const notRoot = await runCli(args, { env: { SWFW_PASSWORD: PASSWORD }, wrapper });
      expect(notRoot.code, notRoot.stderr).to.equal(2);
      expect(notRoot.stderr).to.include('--open-firewall needs root');
      expect(notRoot.stdout).to.not.include('swfw serving');
    } finally {
      rmSync(empty, { recursive: true, force: true });
    }
  });
});
