import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { PROJECT_ROOT } from '../../src/config/loader.js';
import { Lab, SERVER_ADDRESS, skipUnlessNetns } from '../helpers/netns.js';
import type { CliProcess, CliResult } from '../helpers/cli.js';

const PASSWORD = 'netns-check-ports';
const TLS_CERT = join(PROJECT_ROOT, 'fixtures', 'tls', 'server.crt');
const TLS_KEY = join(PROJECT_ROOT, 'fixtures', 'tls', 'server.key');
const RANGE = [63006, 63007, 63008, 63009, 63010];

interface JsonReport {
  host: string;
  control: { port: number; status: string; address: string; rttMs: number | null; connectMs: number | null };
  ports: Array<{ port: number; status: string; detail: string }>;
  verdict: { ok: boolean; portsToOpen: number[]; notes: string[] };
}

function parse(result: CliResult): JsonReport {
  try {
    return JSON.parse(result.stdout) as JsonReport;
  } catch {
    throw new Error(`no JSON report (exit ${result.code})\nstdout: ${result.stdout}\nstderr: ${result.stderr}`);
  }
}

const statuses = (report: JsonReport) => Object.fromEntries(report.ports.map((p) => [p.port, p.status]));

describe('check-ports through a real firewall (network namespaces)', function () {
  this.timeout(60_000);
  let lab: Lab | null = null;
  let server: CliProcess;

  before(async function () {
    skipUnlessNetns(this);
    lab = new Lab().create();
    // The real defaults: control port 21, passive 63006-63010 (namespaces have their own ports).
    // TLS is offered (not required), so the same server answers plain and FTPS checks.
    server = lab.start(lab.serverNs, ['serve', '--pasv-wait', '2', '--log-level', 'warn', '--tls-cert', TLS_CERT, '--tls-key', TLS_KEY], {
      env: { SWFW_PASSWORD: PASSWORD },
    });
    await server.waitFor(/swfw serving .* on 0\.0\.0\.0:21, passive 63006-63010/);
  });
  beforeEach(() => lab?.resetFirewall());
  after(async function () {
    await lab?.destroy();
  });

  const fw = (...args: string[]) => lab!.iptables(lab!.firewallNs, ...args);
  const check = (extra: string[] = [], env: NodeJS.ProcessEnv = { SWFW_PASSWORD: PASSWORD }) =>
    lab!.runCli(lab!.switchNs, ['check-ports', '--host', SERVER_ADDRESS, '--timeout', '1', ...extra], { env, timeoutMs: 50_000 });

  it('everything open: every port open, control port and round trip reported, exit 0', async function () {
    const result = await check(['--json']);
    expect(result.code, result.stderr).to.equal(0);
    const report = parse(result);
    expect(report.host).to.equal(SERVER_ADDRESS);
    expect(report.control).to.include({ port: 21, status: 'open', address: SERVER_ADDRESS });
    expect(report.control.rttMs).to.be.a('number').and.be.below(1000);
    expect(report.ports.map((p) => p.port)).to.deep.equal(RANGE);
    expect(report.ports.every((p) => p.status === 'open')).to.equal(true);
    expect(report.verdict.ok).to.equal(true);
  });

  it('one port dropped, another rejected with tcp-reset: exactly those two, each with its status', async function () {
    fw('-A', 'FORWARD', '-p', 'tcp', '-d', SERVER_ADDRESS, '--dport', '63007', '-j', 'DROP');
    fw('-A', 'FORWARD', '-p', 'tcp', '-d', SERVER_ADDRESS, '--dport', '63009', '-j', 'REJECT', '--reject-with', 'tcp-reset');
    const result = await check(['--json']);
    expect(result.code, result.stderr).to.equal(1);
    const report = parse(result);
    expect(statuses(report)).to.deep.equal({ 63006: 'open', 63007: 'filtered', 63008: 'open', 63009: 'rejected', 63010: 'open' });
    expect(report.verdict.portsToOpen).to.deep.equal([63007, 63009]);

    const table = await check();
    expect(table.code).to.equal(1);
    expect(table.stdout).to.match(/^63007\s+filtered\s+connect timed out/m);
    expect(table.stdout).to.match(/^63009\s+rejected\s+connection reset/m);
    expect(table.stdout).to.match(/^21 \(control\)\s+open\s+10\.231\.2\.2, connect .* round trip/m);
    expect(table.stdout).to.include('verdict: FAIL: open TCP 63007,63009 to 10.231.2.2');
  });

  describe('only port 21 open, plus the conntrack FTP helper', function () {
    beforeEach(function () {
      spawnSync('modprobe', ['nf_conntrack_ftp'], { stdio: 'ignore' });
      try {
        fw('-t', 'raw', '-A', 'PREROUTING', '-p', 'tcp', '--dport', '21', '-j', 'CT', '--helper', 'ftp');
      } catch (err) {
        console.log(`      pending: the FTP conntrack helper is not available here: ${(err as Error).message}`);
        this.skip();
      }
      fw('-P', 'FORWARD', 'DROP');
      fw('-A', 'FORWARD', '-m', 'conntrack', '--ctstate', 'RELATED,ESTABLISHED', '-j', 'ACCEPT');
      fw('-A', 'FORWARD', '-p', 'tcp', '-d', SERVER_ADDRESS, '--dport', '21', '-j', 'ACCEPT');
    });

    it('plain FTP: every passive port is helper-only, and the report warns that FTPS will break', async function () {
      const result = await check(['--json']);
      expect(result.code, result.stderr).to.equal(1);
      const report = parse(result);
      expect(report.control.status).to.equal('open');
      expect(Object.values(statuses(report))).to.deep.equal(RANGE.map(() => 'helper-only'));
      expect(report.verdict.portsToOpen).to.deep.equal(RANGE);
      expect(report.verdict.notes.join(' ')).to.match(/FTPS.*break/);
    });

    it('FTPS: the helper cannot read the encrypted 227, so every passive port is filtered', async function () {
      const result = await check(['--json', '--tls', '--insecure']);
      expect(result.code, result.stderr).to.equal(1);
      const report = parse(result);
      expect(report.control).to.include({ status: 'open', tls: true } as object);
      expect(Object.values(statuses(report))).to.deep.equal(RANGE.map(() => 'filtered'));
    });
  });

  it('the control port blocked: exit 4 within the timeout', async function () {
    fw('-A', 'FORWARD', '-p', 'tcp', '-d', SERVER_ADDRESS, '--dport', '21', '-j', 'DROP');
    const started = Date.now();
    const result = await check(['--json']);
    expect(result.code, result.stderr).to.equal(4);
    expect(Date.now() - started).to.be.below(4000);
    expect(result.stderr).to.include('control port 10.231.2.2:21 is not reachable: connect timed out after 1 s');
    const report = parse(result);
    expect(report.control).to.include({ port: 21, status: 'filtered' });
    expect(report.ports).to.deep.equal([]);
  });
});
