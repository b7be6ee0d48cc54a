import { expect } from 'chai';
import { existsSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Lab, SERVER_ADDRESS, SWITCH_SUBNET, skipUnlessNetns } from '../helpers/netns.js';
import { readableRuntime, runCli, type CliProcess, type CliResult } from '../helpers/cli.js';

const PASSWORD = 'netns-rules';

function statuses(result: CliResult): Record<string, string> {
  let report: { ports: Array<{ port: number; status: string }> };
  try {
    report = JSON.parse(result.stdout) as typeof report;
  } catch {
    throw new Error(`no JSON report (exit ${result.code})\nstdout: ${result.stdout}\nstderr: ${result.stderr}`);
  }
  return Object.fromEntries(report.ports.map((p) => [p.port, p.status]));
}

/** The rule set `swfw firewall rules` prints, minus comments: each line one shell command. */
/** What `swfw firewall rules --format FORMAT` prints, whole (a file to load). */
async function printedText(format: string, extra: string[]): Promise<string> {
  const result = await runCli(['firewall', 'rules', '--format', format, ...extra]);
  expect(result.code, result.stderr).to.equal(0);
  expect(result.stdout).to.match(/FTPS/);
  return result.stdout;
}

async function printedRules(format: string, extra: string[]): Promise<string[]> {
  const result = await runCli(['firewall', 'rules', '--format', format, ...extra]);
  expect(result.code, result.stderr).to.equal(0);
  expect(result.stdout).to.match(/FTPS/);
  return result.stdout.split('\n').filter((line) => line.trim() && !line.startsWith('#'));
}

/** iptables-save without counters and comment lines: the rules themselves. */
function rulesOf(lab: Lab, ns: string): string {
  return lab
    .exec(ns, ['iptables-save'])
    .split('\n')
    .filter((l) => !l.startsWith('#'))
    .map((l) => l.replace(/\[\d+:\d+\]/g, ''))
    .join('\n');
}

describe('firewall rules and serve --open-firewall, applied to real iptables and nft (network namespaces)', function () {
  this.timeout(60_000);
  let lab: Lab | null = null;

  before(function () {
    skipUnlessNetns(this);
    lab = new Lab().create();
  });
  after(async function () {
    await lab?.destroy();
  });

  const srv = () => lab!.serverNs;
  const check = (ns: string, extra: string[] = []) =>
    lab!.runCli(ns, ['check-ports', '--host', SERVER_ADDRESS, '--timeout', '1', '--json', ...extra], { env: { SWFW_PASSWORD: PASSWORD }, timeoutMs: 40_000 });
  const tagged = (tag: string) => lab!.iptables(srv(), '-S', 'INPUT').split('\n').filter((l) => l.includes(`--comment ${tag}`) || l.includes(`--comment "${tag}"`));

  describe('printed rules', function () {
    let server: CliProcess;
    /** Where a test writes the printed rules as the file an admin would keep. */
    let scratch: string;
    before(async function () {
      if (!lab) this.skip();
      scratch = mkdtempSync(join(tmpdir(), 'swfw-rules-'));
      // HTTP on 63001 too: the nft case prints and loads its rule, and checks it from the switch side.
      server = lab.start(srv(), ['serve', '--pasv-wait', '2', '--log-level', 'warn', '--http', '63001'], { env: { SWFW_PASSWORD: PASSWORD } });
      await server.waitFor(/swfw serving/);
    });
    after(async () => {
      await server?.stop('SIGTERM', 5000);
      if (scratch) rmSync(scratch, { recursive: true, force: true });
    });

    it('iptables: a drop-by-default host passes exactly 21 and 63006-63008, and only from the switch subnet', async function () {
      lab!.iptables(srv(), '-P', 'INPUT', 'DROP');
      try {
        for (const line of await printedRules('iptables', ['--pasv-range', '63006-63008', '--source', SWITCH_SUBNET])) {
          lab!.exec(srv(), ['sh', '-c', line]);
        }
        const result = await check(lab!.switchNs);
        expect(statuses(result)).to.deep.equal({ 63006: 'open', 63007: 'open', 63008: 'open', 63009: 'filtered', 63010: 'filtered' });
        // The firewall host is outside the switch subnet: even the control port is closed to it.
        expect((await check(lab!.firewallNs)).code).to.equal(4);
      } finally {
        lab!.iptables(srv(), '-F', 'INPUT');
        lab!.iptables(srv(), '-P', 'INPUT', 'ACCEPT');
      }
    });

    it('iptables-restore: the printed fragment, loaded with iptables-restore --noflush on a drop-by-default host, passes the same ports and keeps the rules already there', async function () {
      lab!.iptables(srv(), '-P', 'INPUT', 'DROP');
      lab!.iptables(srv(), '-A', 'INPUT', '-p', 'tcp', '--dport', '2222', '-j', 'ACCEPT');
      try {
        const file = join(scratch, 'swfw.rules');
        writeFileSync(file, await printedText('iptables-restore', ['--pasv-range', '63006-63008', '--source', SWITCH_SUBNET]));
        lab!.exec(srv(), ['iptables-restore', '-w', '--noflush', file]);
        expect(tagged('swfw:21')).to.have.length(2);
        expect(lab!.iptables(srv(), '-S', 'INPUT')).to.include('--dport 2222 -j ACCEPT');
        const result = await check(lab!.switchNs);
        expect(statuses(result)).to.deep.equal({ 63006: 'open', 63007: 'open', 63008: 'open', 63009: 'filtered', 63010: 'filtered' });
      } finally {
        lab!.iptables(srv(), '-F', 'INPUT');
        lab!.iptables(srv(), '-P', 'INPUT', 'ACCEPT');
      }
    });

    it('nftables: the printed script passes nft -c -f and, loaded with nft -f into an inet filter input chain with policy drop, the same ports pass', async function () {
      lab!.exec(srv(), ['nft', '-f', '-'], 'table inet filter {\n chain input {\n  type filter hook input priority 0; policy drop;\n }\n}\n');
      try {
        const script = await printedText('nftables', ['--pasv-range', '63006-63008', '--source', SWITCH_SUBNET, '--http', '63001']);
        const file = join(scratch, 'swfw.nft');
        writeFileSync(file, script);
        lab!.exec(srv(), ['nft', '-c', '-f', file]);
        lab!.exec(srv(), ['nft', '-f', file]);
        expect(lab!.exec(srv(), ['nft', 'list', 'chain', 'inet', 'filter', 'input'])).to.include('comment "swfw:21"');
        const result = await check(lab!.switchNs, ['--http', '63001']);
        expect(statuses(result)).to.deep.equal({ 63006: 'open', 63007: 'open', 63008: 'open', 63009: 'filtered', 63010: 'filtered' });
        // The HTTP port of serve --http passes too: a real HTTP exchange from the switch side.
        const web = (JSON.parse(result.stdout) as { web: Array<{ port: number; status: string }> }).web;
        expect(web.map((w) => [w.port, w.status])).to.deep.equal([[63001, 'open']]);
        expect((await check(lab!.firewallNs)).code).to.equal(4);
      } finally {
        lab!.exec(srv(), ['nft', 'delete', 'table', 'inet', 'filter']);
      }
    });
  });

  describe('serve --open-firewall', function () {
    // A failed assertion must not leave a server running into the next test.
    afterEach(async () => lab?.stopProcesses());
    const uidOf = (pid: number) => Number(readFileSync(`/proc/${pid}/status`, 'utf8').match(/^Uid:\s+\d+\s+(\d+)/m)![1]);
    const waitUntil = async (ok: () => boolean, timeoutMs: number) => {
      const deadline = Date.now() + timeoutMs;
      while (!ok()) {
        if (Date.now() > deadline) throw new Error('timed out waiting');
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    };
    const serve = (env: NodeJS.ProcessEnv = {}, cli?: string) =>
      lab!.start(srv(), ['serve', '--open-firewall', '--pasv-wait', '2', '--log-level', 'warn'], { env: { SWFW_PASSWORD: PASSWORD, ...env }, ...(cli ? { cli } : {}) });
    /** The firewall helper: the server's one child process. */
    const helperOf = (server: CliProcess) => Number(spawnSync('ps', ['-o', 'pid=', '--ppid', String(server.child.pid)], { encoding: 'utf8' }).stdout.trim().split(/\s+/)[0]);

    it('iptables: start, kill -9, start, stop leaves exactly the rules that were there before', async function () {
      if (!lab) this.skip();
      lab.iptables(srv(), '-P', 'INPUT', 'DROP');
      // Someone else's rules, including one tagged for another swfw instance: never touched.
      lab.iptables(srv(), '-A', 'INPUT', '-p', 'tcp', '--dport', '2222', '-m', 'comment', '--comment', 'keep-me', '-j', 'ACCEPT');
      lab.iptables(srv(), '-A', 'INPUT', '-p', 'tcp', '--dport', '2121', '-m', 'comment', '--comment', 'swfw:2121', '-j', 'ACCEPT');
      const before = rulesOf(lab, srv());
      // A runtime nobody can read, so that serve really drops root here (see readableRuntime).
      const runtime = readableRuntime();
      try {
        const first = serve({ SWFW_RUN_AS: 'nobody', SWFW_IMAGES: runtime.images }, runtime.cli);
        await first.waitFor(/swfw serving .* as nobody/);
        expect(tagged('swfw:21')).to.have.length(2);
        expect(statuses(await check(lab.switchNs))).to.deep.equal({ 63006: 'open', 63007: 'open', 63008: 'open', 63009: 'open', 63010: 'open' });
        // The server that talks to clients is not root; the helper that owns the rules is.
        const helper = helperOf(first);
        expect(uidOf(first.child.pid!)).to.not.equal(0);
        expect(uidOf(helper)).to.equal(0);

        // The server killed: its helper removes the rules it owned, and ends.
        expect((await first.stop('SIGKILL')).signal).to.equal('SIGKILL');
        await waitUntil(() => tagged('swfw:21').length === 0 && !existsSync(`/proc/${helper}`), 10_000);

        // Server and helper both killed (kill -9 of everything): the rules stay behind…
        const killed = serve();
        await killed.waitFor(/swfw serving/);
        const killedHelper = helperOf(killed);
        process.kill(killedHelper, 'SIGKILL');
        await killed.stop('SIGKILL');
        expect(tagged('swfw:21'), 'a run killed with its helper leaves its rules').to.have.length(2);

        // …and the next start replaces them instead of adding more.
        const second = serve();
        await second.waitFor(/swfw serving/);
        expect(tagged('swfw:21'), 'stale rules are replaced, not duplicated').to.have.length(2);
        expect((await check(lab.switchNs)).code).to.equal(0);

        const stopped = await second.stop('SIGTERM');
        expect(stopped.code, stopped.stderr).to.equal(0);
        expect(tagged('swfw:21')).to.have.length(0);
        expect(rulesOf(lab, srv())).to.equal(before);
      } finally {
        runtime.remove();
        lab.iptables(srv(), '-F', 'INPUT');
        lab.iptables(srv(), '-P', 'INPUT', 'ACCEPT');
      }
    });

    it('nft only (no iptables in PATH): the rule goes into the native input chain and is removed at stop', async function () {
      if (!lab) this.skip();
      const bin = mkdtempSync(join(tmpdir(), 'swfw-nft-only-'));
      const nft = spawnSync('sh', ['-c', 'command -v nft'], { encoding: 'utf8' }).stdout.trim();
      symlinkSync(nft, join(bin, 'nft'));
      lab.exec(srv(), ['nft', 'flush', 'ruleset']);
      lab.exec(srv(), ['nft', '-f', '-'], 'table inet filter {\n chain input {\n  type filter hook input priority 0; policy drop;\n  tcp dport 2222 accept comment "keep-me"\n }\n}\n');
      const listChain = () => lab!.exec(srv(), ['nft', 'list', 'chain', 'inet', 'filter', 'input']);
      const before = listChain();
      try {
        const first = serve({ PATH: bin });
        await first.waitFor(/swfw serving/);
        expect(listChain()).to.match(/tcp dport \{ 21, 63006-63010 \} accept comment "swfw:21"/);
        await first.stop('SIGKILL');
        const second = serve({ PATH: bin });
        await second.waitFor(/swfw serving/);
        expect(listChain().match(/swfw:21/g)).to.have.length(1);
        expect((await check(lab.switchNs)).code).to.equal(0);
        expect((await second.stop('SIGTERM')).code).to.equal(0);
        expect(listChain()).to.equal(before);
      } finally {
        lab.exec(srv(), ['nft', 'flush', 'ruleset']);
        rmSync(bin, { recursive: true, force: true });
      }
    });

    it('iptables and a native nft ruleset together (both filter input): each gets the rule, and loses it at stop', async function () {
      if (!lab) this.skip();
      lab.exec(srv(), ['nft', 'flush', 'ruleset']);
      lab.iptables(srv(), '-P', 'INPUT', 'DROP');
      lab.exec(srv(), ['nft', '-f', '-'], 'table inet filter {\n chain input {\n  type filter hook input priority 0; policy drop;\n }\n}\n');
      const listChain = () => lab!.exec(srv(), ['nft', 'list', 'chain', 'inet', 'filter', 'input']);
      try {
        const server = serve();
        await server.waitFor(/swfw serving/);
        expect(tagged('swfw:21')).to.have.length(2);
        expect(listChain().match(/swfw:21/g)).to.have.length(1);
        expect((await check(lab.switchNs)).code).to.equal(0);
        expect((await server.stop('SIGTERM')).code).to.equal(0);
        expect(tagged('swfw:21')).to.have.length(0);
        expect(listChain()).to.not.include('swfw');
      } finally {
        lab.exec(srv(), ['nft', 'flush', 'ruleset']);
      }
    });
  });
});
