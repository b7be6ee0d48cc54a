import { expect } from 'chai';
import {
  FirewallRefusal,
  LinuxFirewall,
  classifyPort,
  connectOutcomeOf,
  formatPortList,
  formatRules,
  iptablesRules,
  nftInputChains,
  nftRule,
  nftTaggedRules,
  reportJson,
  reportTable,
  ruleSpec,
  splitRuleLine,
  taggedIptablesRules,
  verdictOf,
  type CommandResult,
  type DataAttempt,
  type PortEvidence,
  type RuleSpec,
} from '../../src/firewall/index.js';
import { silentLogger } from '../../src/core/logger.js';

const ok: DataAttempt = { connect: 'connected', transferred: true, error: '' };
const failed = (connect: DataAttempt['connect'], error = ''): DataAttempt => ({ connect, transferred: false, error });
const evidence = (direct: DataAttempt | null, pasv: DataAttempt | null, reply = { replyAddress: '10.0.0.5', replyPort: 63006 }): PortEvidence => ({
  port: 63006,
  expectedAddress: '10.0.0.5',
  probe: 'reserved',
  direct,
  pasv: pasv ? { ...pasv, ...reply } : null,
});
const status = (e: PortEvidence) => classifyPort(e, 5000).status;

describe('check-ports classification', function () {
  it('maps socket errors: resets and ICMP errors apart from timeouts', function () {
    expect(connectOutcomeOf('ECONNREFUSED')).to.equal('reset');
    expect(connectOutcomeOf('ECONNRESET')).to.equal('reset');
    expect(connectOutcomeOf('EHOSTUNREACH')).to.equal('unreachable');
    expect(connectOutcomeOf('ENETUNREACH')).to.equal('unreachable');
    expect(connectOutcomeOf('ETIMEDOUT')).to.equal('timeout');
    expect(connectOutcomeOf('EMFILE')).to.equal('error');
  });

  it('open only when the direct probe (no 227 for a helper to read) carried a transfer', function () {
    expect(status(evidence(ok, ok))).to.equal('open');
    expect(classifyPort(evidence(ok, ok), 5000).detail).to.equal('a transfer through the port works');
  });

  it('rewritten when the 227 carries another address or port than the server has', function () {
    expect(status(evidence(ok, ok, { replyAddress: '192.0.2.1', replyPort: 63006 }))).to.equal('rewritten');
    expect(status(evidence(ok, ok, { replyAddress: '10.0.0.5', replyPort: 63099 }))).to.equal('rewritten');
    expect(status(evidence(ok, ok, { replyAddress: '::ffff:10.0.0.5', replyPort: 63006 }))).to.equal('open');
    expect(classifyPort(evidence(ok, ok, { replyAddress: '192.0.2.1', replyPort: 63006 }), 5000).detail).to.include('192.0.2.1:63006');
  });

  it('helper-only when the direct probe fails but the PASV path works, whatever the direct failure', function () {
    for (const direct of [failed('timeout'), failed('reset'), failed('unreachable', 'EHOSTUNREACH')]) {
      expect(status(evidence(direct, ok))).to.equal('helper-only');
    }
    const both = classifyPort(evidence(failed('timeout'), ok, { replyAddress: '192.0.2.1', replyPort: 63006 }), 5000);
    expect(both.status).to.equal('helper-only');
    expect(both.detail).to.include('192.0.2.1');
  });

  it('filtered on a timeout, rejected on a reset or ICMP error, when neither path works', function () {
    expect(status(evidence(failed('timeout'), failed('timeout')))).to.equal('filtered');
    expect(classifyPort(evidence(failed('timeout'), failed('timeout')), 2000).detail).to.equal('connect timed out after 2 s (dropped)');
    expect(status(evidence(failed('reset'), failed('reset')))).to.equal('rejected');
    expect(status(evidence(failed('unreachable', 'EHOSTUNREACH'), failed('unreachable')))).to.equal('rejected');
    expect(status(evidence(failed('reset'), null))).to.equal('rejected');
    expect(status(evidence(failed('connected', 'the data did not end'), failed('connected')))).to.equal('filtered');
  });

  it('busy when the port could not be tested', function () {
    expect(status({ ...evidence(null, null), probe: 'busy' })).to.equal('busy');
    const held = classifyPort({ ...evidence(null, null), probe: 'held' }, 5000);
    expect(held.status).to.equal('busy');
    expect(held.detail).to.include('another process');
  });

  it('the verdict lists exactly the ports to open, ascending, with the FTPS note for helper-only ports', function () {
    const results = [
      classifyPort({ ...evidence(failed('timeout'), ok), port: 63009 }, 5000),
      classifyPort({ ...evidence(ok, ok), port: 63006 }, 5000),
      classifyPort({ ...evidence(failed('reset'), failed('reset')), port: 63007 }, 5000),
      classifyPort({ ...evidence(null, null), port: 63010, probe: 'busy' }, 5000),
    ];
    const verdict = verdictOf(results, '10.0.0.5', 21);
    expect(verdict.ok).to.equal(false);
    expect(verdict.portsToOpen).to.deep.equal([63007, 63009]);
    expect(verdict.line).to.include('open TCP 63007,63009 to 10.0.0.5');
    expect(verdict.notes.join('\n')).to.match(/helper-only 63009: .*FTPS/);
    expect(verdict.notes.join('\n')).to.include('busy 63010');
    expect(verdictOf([classifyPort(evidence(ok, ok), 5000)], 'h', 21).ok).to.equal(true);
    expect(verdictOf([], 'h', 21).ok).to.equal(false);
  });

  it('formats port lists compactly', function () {
    expect(formatPortList([63010, 63006, 63007, 63008])).to.equal('63006-63008,63010');
    expect(formatPortList([21])).to.equal('21');
  });

  it('renders a table with one row per port and the verdict, and JSON with ports ascending', function () {
    const ports = [classifyPort({ ...evidence(failed('timeout'), failed('timeout')), port: 63007 }, 1000), classifyPort(evidence(ok, ok), 1000)];
    const report = {
      host: '10.0.0.5',
      control: { port: 21, address: '10.0.0.5', status: 'open' as const, connectMs: 0.4, rttMs: 0.3, tls: false },
      ports,
      web: [],
      verdict: verdictOf(ports, '10.0.0.5', 21),
    };
    const table = reportTable(report).split('\n');
    expect(table[2]).to.match(/^21 \(control\)\s+open\s+10\.0\.0\.5, connect 0\.40 ms, round trip 0\.30 ms, plain FTP$/);
    expect(table[3]).to.match(/^63006\s+open\s+/);
    expect(table[4]).to.match(/^63007\s+filtered\s+connect timed out after 1 s/);
    expect(table[5]).to.equal('verdict: FAIL: open TCP 63007 to 10.0.0.5 (from the switches\' subnet); `swfw firewall rules --source SUBNET` prints the rules');
    const json = JSON.parse(reportJson(report)) as { host: string; control: object; ports: Array<{ port: number; status: string }> };
    expect(Object.keys(json)).to.deep.equal(['host', 'control', 'ports', 'web', 'verdict']);
    expect(json.ports.map((p) => [p.port, p.status])).to.deep.equal([[63006, 'open'], [63007, 'filtered']]);
  });
});

describe('firewall rule generators', function () {
  const spec = (source: string | null = null, host = '0.0.0.0'): RuleSpec => {
    const made = ruleSpec({ host, controlPort: 21, pasvRange: { min: 63006, max: 63010 }, source });
    if (typeof made === 'string') throw new Error(made);
    return made;
  };

  it('validates the source block against the bind address', function () {
    expect(ruleSpec({ host: '0.0.0.0', controlPort: 21, pasvRange: { min: 63006, max: 63010 }, source: '10.1.0.0/33' })).to.match(/invalid prefix/);
    expect(ruleSpec({ host: '0.0.0.0', controlPort: 21, pasvRange: { min: 63006, max: 63010 }, source: 'fd00::/8' })).to.match(/IPv4 only/);
    expect(ruleSpec({ host: '10.0.0.5', controlPort: 21, pasvRange: { min: 63006, max: 63010 }, source: 'fd00::/8' })).to.match(/IPv6 but the server binds 10\.0\.0\.5/);
    expect(spec('fd00::/8', '::')).to.include({ family: 6, destination: null });
    expect(spec(null, '10.0.0.5')).to.include({ family: 4, destination: '10.0.0.5' });
  });

  it('iptables: one tagged rule for the control port and one for the range', function () {
    expect(iptablesRules(spec('10.1.0.0/24'))).to.deep.equal([
      ['-p', 'tcp', '-s', '10.1.0.0/24', '--dport', '21', '-m', 'comment', '--comment', 'swfw:21', '-j', 'ACCEPT'],
      ['-p', 'tcp', '-s', '10.1.0.0/24', '--dport', '63006:63010', '-m', 'comment', '--comment', 'swfw:21', '-j', 'ACCEPT'],
    ]);
    const text = formatRules('iptables', spec('10.1.0.0/24', '10.0.0.5'));
    expect(text).to.include('iptables -I INPUT -p tcp -s 10.1.0.0/24 -d 10.0.0.5 --dport 63006:63010 -m comment --comment swfw:21 -j ACCEPT');
    expect(formatRules('iptables', spec('fd00::/8', '::'))).to.include('ip6tables -I INPUT -p tcp -s fd00::/8 --dport 21 ');
  });

  it('nftables: one rule with a port set, tagged with a comment', function () {
    expect(nftRule(spec('10.1.0.0/24'))).to.equal('ip saddr 10.1.0.0/24 tcp dport { 21, 63006-63010 } accept comment "swfw:21"');
    expect(nftRule(spec())).to.equal('tcp dport { 21, 63006-63010 } accept comment "swfw:21"');
    const script = formatRules('nftables', spec());
    // A script for `nft -f` (and /etc/nftables.d/), not a shell line.
    expect(script.split('\n')[0]).to.equal('#!/usr/sbin/nft -f');
    expect(script.trim().split('\n').filter((l) => !l.startsWith('#'))).to.deep.equal(['insert rule inet filter input tcp dport { 21, 63006-63010 } accept comment "swfw:21"']);
  });

  it('firewalld, ufw and Windows use their own syntax for the range and the source', function () {
    expect(formatRules('firewalld', spec())).to.include('firewall-cmd --permanent --add-port=63006-63010/tcp\nfirewall-cmd --reload');
    expect(formatRules('firewalld', spec('10.1.0.0/24'))).to.include(
      `firewall-cmd --permanent '--add-rich-rule=rule family="ipv4" source address="10.1.0.0/24" port port="63006-63010" protocol="tcp" accept'`,
    );
    expect(formatRules('ufw', spec('10.1.0.0/24'))).to.include('ufw allow proto tcp from 10.1.0.0/24 to any port 63006:63010 comment swfw:21');
    const windows = formatRules('windows', spec('10.1.0.0/24'));
    expect(windows).to.include('New-NetFirewallRule -DisplayName "swfw:21 FTP passive" -Group "swfw" -Direction Inbound -Protocol TCP -LocalPort 63006-63010 -RemoteAddress 10.1.0.0/24 -Action Allow');
    expect(windows).to.include('StatefulFTP');
  });

  it('iptables-restore: a fragment for iptables-restore --noflush, the same two rules', function () {
    const text = formatRules('iptables-restore', spec('10.1.0.0/24'));
    expect(text.trim().split('\n').filter((l) => !l.startsWith('#'))).to.deep.equal([
      '*filter',
      '-I INPUT -p tcp -s 10.1.0.0/24 --dport 21 -m comment --comment swfw:21 -j ACCEPT',
      '-I INPUT -p tcp -s 10.1.0.0/24 --dport 63006:63010 -m comment --comment swfw:21 -j ACCEPT',
      'COMMIT',
    ]);
    expect(formatRules('iptables-restore', spec('fd00::/8', '::'))).to.include('ip6tables-restore --noflush');
  });

  it('HTTP(S) ports served beside FTP (serve --http/--https) are opened in every format, with the same source', function () {
    const web = ruleSpec({ host: '0.0.0.0', controlPort: 21, pasvRange: { min: 63006, max: 63010 }, webPorts: [63001, 63002], source: '10.1.0.0/24' });
    if (typeof web === 'string') throw new Error(web);
    expect(iptablesRules(web).map((r) => r[r.indexOf('--dport') + 1])).to.deep.equal(['21', '63006:63010', '63001', '63002']);
    expect(nftRule(web)).to.equal('ip saddr 10.1.0.0/24 tcp dport { 21, 63006-63010, 63001, 63002 } accept comment "swfw:21"');
    expect(formatRules('ufw', web)).to.include('ufw allow proto tcp from 10.1.0.0/24 to any port 63002 comment swfw:21');
    expect(formatRules('firewalld', web)).to.include('port port="63001" protocol="tcp" accept');
    expect(formatRules('windows', web)).to.include('-DisplayName "swfw:21 HTTP(S) 63002"');
    expect(formatRules('iptables', web)).to.match(/^# swfw: allow inbound TCP 21 \(FTP control\) and 63006-63010 \(passive data\) and 63001, 63002 \(HTTP\(S\)\) from 10\.1\.0\.0\/24\./);
  });

  it('every format carries the FTP helper / FTPS note', function () {
    for (const format of ['iptables', 'iptables-restore', 'nftables', 'firewalld', 'ufw', 'windows'] as const) {
      const text = formatRules(format, spec()).replace(/^#!.*\n/, '');
      expect(text, format).to.match(/^# swfw: allow inbound TCP 21 \(FTP control\) and 63006-63010 \(passive data\) from anywhere\./);
      expect(text.replace(/\n# /g, ' '), format).to.include('nf_conntrack_ftp');
      expect(text.replace(/\n# /g, ' '), format).to.match(/FTPS \(AUTH TLS\).*break the day FTPS is switched on/);
    }
  });
});

describe('open-firewall rule bookkeeping', function () {
  const spec: RuleSpec = { controlPort: 21, pasvRange: { min: 63006, max: 63010 }, webPorts: [], source: null, destination: null, family: 4 };

  it('finds exactly the rules tagged swfw:<port> in iptables -S output', function () {
    const listing = [
      '-P INPUT DROP',
      '-A INPUT -p tcp -m tcp --dport 21 -m comment --comment swfw:21 -j ACCEPT',
      '-A INPUT -p tcp -m tcp --dport 2121 -m comment --comment swfw:2121 -j ACCEPT',
      '-A INPUT -p tcp -m tcp --dport 22 -m comment --comment "keep swfw:21" -j ACCEPT',
      '-A INPUT -p tcp -m tcp --dport 63006:63010 -m comment --comment swfw:21 -j ACCEPT',
    ].join('\n');
    expect(taggedIptablesRules(listing, 'swfw:21')).to.deep.equal([
      ['-p', 'tcp', '-m', 'tcp', '--dport', '21', '-m', 'comment', '--comment', 'swfw:21', '-j', 'ACCEPT'],
      ['-p', 'tcp', '-m', 'tcp', '--dport', '63006:63010', '-m', 'comment', '--comment', 'swfw:21', '-j', 'ACCEPT'],
    ]);
    expect(splitRuleLine('-A INPUT -m comment --comment "a \\"b\\" c" -j ACCEPT')).to.deep.equal(['-A', 'INPUT', '-m', 'comment', '--comment', 'a "b" c', '-j', 'ACCEPT']);
  });

  it('picks base input chains of the right family, leaving iptables-owned tables to iptables', function () {
    const chains = JSON.stringify({
      nftables: [
        { chain: { family: 'inet', table: 'filter', name: 'input', hook: 'input', type: 'filter' } },
        { chain: { family: 'ip', table: 'filter', name: 'INPUT', hook: 'input', type: 'filter' } },
        { chain: { family: 'ip6', table: 'mine', name: 'in', hook: 'input', type: 'filter' } },
        { chain: { family: 'inet', table: 'filter', name: 'forward', hook: 'forward', type: 'filter' } },
        { chain: { family: 'inet', table: 'filter', name: 'regular' } },
      ],
    });
    expect(nftInputChains(chains, 4, false).map((c) => `${c.family} ${c.table} ${c.name}`)).to.deep.equal(['inet filter input', 'ip filter INPUT']);
    expect(nftInputChains(chains, 4, true).map((c) => `${c.family} ${c.table} ${c.name}`)).to.deep.equal(['inet filter input']);
    expect(nftInputChains(chains, 6, false).map((c) => c.table)).to.deep.equal(['filter', 'mine']);
    const ruleset = JSON.stringify({
      nftables: [
        { rule: { family: 'inet', table: 'filter', chain: 'input', handle: 7, comment: 'swfw:21' } },
        { rule: { family: 'inet', table: 'filter', chain: 'input', handle: 8, comment: 'swfw:2121' } },
        { rule: { family: 'inet', table: 'filter', chain: 'input', handle: 9 } },
      ],
    });
    expect(nftTaggedRules(ruleset, 'swfw:21', false).map((r) => r.handle)).to.deep.equal([7]);
  });

  /** A fake iptables: keeps INPUT as `iptables -S` lines and records every call. */
  function fakeIptables(initial: string[]) {
    const rules = [...initial];
    const calls: string[] = [];
    const result = (stdout = '', code = 0, missing = false): CommandResult => ({ code, stdout, stderr: missing ? 'not found in PATH' : '', missing });
    const run = async (file: string, args: string[]) => {
      calls.push(`${file} ${args.join(' ')}`);
      if (file === 'nft') return result('', 127, true);
      const [, op, , ...rest] = args;
      if (op === '-S') return result(['-P INPUT DROP', ...rules].join('\n'));
      if (op === '-I') rules.splice(Number(rest[0]) - 1, 0, `-A INPUT ${rest.slice(1).join(' ')}`);
      if (op === '-D') rules.splice(rules.indexOf(`-A INPUT ${rest.join(' ')}`), 1);
      return result();
    };
    return { rules, calls, run };
  }

  it('refuses off Linux, without root, and without iptables or nft', async function () {
    const fake = fakeIptables([]);
    const refusal = (env: Parameters<typeof LinuxFirewall.prepare>[1]) => LinuxFirewall.prepare(spec, env).then(() => null, (err: unknown) => err);
    expect(await refusal({ run: fake.run, platform: 'win32', uid: 0, logger: silentLogger })).to.be.instanceOf(FirewallRefusal);
    const notRoot = await refusal({ run: fake.run, platform: 'linux', uid: 1000, logger: silentLogger });
    expect((notRoot as Error).message).to.include('needs root');
    const none = async (): Promise<CommandResult> => ({ code: 127, stdout: '', stderr: 'x: not found in PATH', missing: true });
    const missing = await refusal({ run: none, platform: 'linux', uid: 0, logger: silentLogger });
    expect((missing as Error).message).to.include('needs iptables or nft, and neither is usable');
  });

  it('open replaces stale tagged rules instead of duplicating them; close removes only its own', async function () {
    const foreign = '-A INPUT -p tcp -m tcp --dport 2121 -m comment --comment swfw:2121 -j ACCEPT';
    const stale = '-A INPUT -p tcp --dport 21 -m comment --comment swfw:21 -j ACCEPT';
    const fake = fakeIptables([foreign, stale]);
    const firewall = await LinuxFirewall.prepare(spec, { run: fake.run, platform: 'linux', uid: 0, logger: silentLogger });
    const summary = await firewall.open();
    expect(summary).to.deep.include({ removedStale: 1, inserted: 2 });
    expect(fake.rules).to.deep.equal([
      '-A INPUT -p tcp --dport 21 -m comment --comment swfw:21 -j ACCEPT',
      '-A INPUT -p tcp --dport 63006:63010 -m comment --comment swfw:21 -j ACCEPT',
      foreign,
    ]);
    await firewall.open();
    expect(fake.rules).to.have.length(3);
    expect(await firewall.close()).to.equal(2);
    expect(fake.rules).to.deep.equal([foreign]);
  });
});
