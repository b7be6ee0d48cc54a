/** `swfw emulate`, `swfw rollout run --dry-run`, `status`, and exit 2 for bad plans and inventories (the built CLI). */
import { expect } from 'chai';
import { PROJECT_ROOT } from '../../src/config/loader.js';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli, startCli, type CliProcess } from '../helpers/cli.js';
import { FIXTURE_IMAGES } from '../helpers/testServer.js';

/** This suite's ports: SSH 47140 on 127.0.1.140-143 (47141 on .149: nothing listens), passive 44120-44124. */
const SSH_PORT = 47140;
const FIRST_OCTET = 140;
const IMAGE = 'cisco/c9300-universalk9.17.09.04a.SPA.bin';
/** NODE_OPTIONS that make any load of bullmq or ioredis fatal (test/helpers/noEngineHooks.ts). */
const NO_ENGINE = `--import=${join(PROJECT_ROOT, 'dist', 'test', 'helpers', 'noEngine.js')}`;

/** The first line the SSH server sends, or the connect error's code. */
function sshBanner(host: string, port: number): Promise<string> {
  return new Promise((resolve) => {
    const socket = connect({ host, port });
    socket.setEncoding('utf8');
    socket.once('data', (text: string) => {
      socket.destroy();
      resolve(text.split('\r\n')[0]!);
    });
    socket.once('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? 'error'));
  });
}

describe('swfw emulate and swfw rollout (the built CLI)', function () {
  this.timeout(60_000);
  let dir: string;
  let emulator: CliProcess | null = null;
  const plan = (extra: Record<string, unknown> = {}) => {
    const path = join(dir, 'plan.json');
    writeFileSync(
      path,
      JSON.stringify({
        targets: { 'cisco-ios-xe': IMAGE },
        waves: { canary: 1, percent: [50] },
        server: { address: '127.0.0.1', listen: '127.0.0.1', port: 0, pasvRange: '44120-44124', images: FIXTURE_IMAGES },
        timeouts: { sshSeconds: 3, pullSeconds: 30 },
        ...extra,
      }),
    );
    return path;
  };

  beforeEach(() => (dir = mkdtempSync(join(tmpdir(), 'swfw-rollout-cli-'))));
  afterEach(async () => {
    await emulator?.stop('SIGTERM');
    emulator = null;
    rmSync(dir, { recursive: true, force: true });
  });

  it('emulate: listens on each switch address, writes the inventory (password by file, 0600), keeps flash under --flash-under, stops on SIGTERM with 0', async function () {
    const inventory = join(dir, 'inventory.json');
    const flashUnder = join(dir, 'flash');
    mkdirSync(flashUnder);
    emulator = startCli(['emulate', '--switches', '3', '--ssh-port', String(SSH_PORT), '--first-octet', String(FIRST_OCTET), '--inventory-out', inventory, '--flash-under', flashUnder]);
    await emulator.waitFor(/emulating 3 switches \(cisco-ios-xe\) on 127\.0\.1\.140-127\.0\.1\.142 port 47140/, 30_000);
    const flashRoots = readdirSync(flashUnder);
    expect(flashRoots).to.have.length(1);
    expect(readdirSync(join(flashUnder, flashRoots[0]!)).sort()).to.deep.equal(['emu-001', 'emu-002', 'emu-003']);
    const written = JSON.parse(readFileSync(inventory, 'utf8')) as { switches: { name: string; address: string; port: number; credentials: Record<string, string> }[] };
    expect(written.switches.map((s) => [s.name, s.address, s.port])).to.deep.equal([
      ['emu-001', '127.0.1.140', SSH_PORT],
      ['emu-002', '127.0.1.141', SSH_PORT],
      ['emu-003', '127.0.1.142', SSH_PORT],
    ]);
    expect(written.switches[0]!.credentials).to.deep.equal({ username: 'admin', passwordFile: `${inventory}.password` });
    expect(statSync(`${inventory}.password`).mode & 0o777).to.equal(0o600);
    expect(readFileSync(inventory, 'utf8')).to.not.include(readFileSync(`${inventory}.password`, 'utf8').trim());
    expect(await sshBanner('127.0.1.142', SSH_PORT)).to.match(/^SSH-2\.0-/);
    const result = await emulator.stop('SIGTERM');
    emulator = null;
    expect(result.code, result.stderr).to.equal(0);
    expect(await sshBanner('127.0.1.140', SSH_PORT)).to.equal('ECONNREFUSED');
    expect(readdirSync(flashUnder)).to.deep.equal([]); // the flash went with the fleet
  });

  it('emulate: a --flash-under that is not a directory is a usage error (exit 2, one line)', async function () {
    const bad = await runCli(['emulate', '--switches', '2', '--ssh-port', String(SSH_PORT), '--first-octet', String(FIRST_OCTET), '--flash-under', join(dir, 'missing')], { env: { SWFW_SWITCH_PASSWORD: 'x' } });
    expect(bad.code).to.equal(2);
    expect(bad.stderr.trim()).to.equal(`swfw: --flash-under: ${join(dir, 'missing')} is not a directory`);
  });

  it('rollout run: an unknown --log-level is a usage error (exit 2) naming the allowed levels', async function () {
    const bad = await runCli(['rollout', 'run', join(dir, 'plan.yaml'), '--inventory', join(dir, 'inventory.yaml'), '--log-level', 'warning']);
    expect(bad.code).to.equal(2);
    expect(bad.stderr).to.match(/argument 'warning' is invalid\. Allowed choices are error, warn, info, debug/);
  });

  it('schedule: a window that has already ended is exit 4 at once, naming when it ended; nothing contacted or written', async function () {
    const inventory = join(dir, 'inventory.yaml');
    // Nothing listens on .149:47141: a contacted switch would fail, not hang the test.
    writeFileSync(inventory, `switches:\n  - { name: a, address: 127.0.1.149, port: 47141, driver: cisco-ios-xe, credentials: { username: admin, passwordEnv: X } }\n`);
    const state = join(dir, 'state');
    const started = Date.now();
    const ended = await runCli(['rollout', 'schedule', plan({ window: { notAfter: '2020-01-01T00:00:00Z' } }), '--inventory', inventory, '--state', state, '--every-window'], { env: { X: 'x' } });
    expect(ended.code, ended.stderr).to.equal(4);
    expect(ended.stderr.trim()).to.equal('swfw: the maintenance window ended at 2020-01-01T00:00:00.000Z: no switch was started');
    expect(Date.now() - started).to.be.below(10_000);
    expect(existsSync(state)).to.equal(false);
  });

  it('schedule: holds the runner lock while it waits, so status shows it and resume starts no second runner', async function () {
    const inventory = join(dir, 'inventory.yaml');
    writeFileSync(inventory, `switches:\n  - { name: a, address: 127.0.1.149, port: 47141, driver: cisco-ios-xe, credentials: { username: admin, passwordEnv: X } }\n`);
    const state = join(dir, 'state');
    const opensAt = new Date(Date.now() + 3_600_000).toISOString();
    const waiting = startCli(['rollout', 'schedule', plan({ window: { notBefore: opensAt } }), '--inventory', inventory, '--state', state, '--every-window'], { env: { X: 'x' } });
    try {
      await waiting.waitFor(/waiting for the window/, 30_000);
      const status = await runCli(['rollout', 'status', '--state', state]);
      expect(status.code, status.stderr).to.equal(0);
      expect(status.stdout).to.match(new RegExp(`runner pid ${waiting.child.pid} is waiting for the first window`));
      const resumed = await runCli(['rollout', 'resume', '--state', state]);
      expect(resumed.code, resumed.stderr).to.equal(0);
      expect(resumed.stdout).to.include(`resumed: runner pid ${waiting.child.pid}`);
      expect(existsSync(join(state, 'journal.jsonl'))).to.equal(false); // no second runner started
    } finally {
      await waiting.stop('SIGTERM');
    }
  });

  it("the README's emulated fleet: emulate --platform mixed, then rollout run config/rollout.emulated.yaml: every FTP-capable platform verified, exit 0", async function () {
    const inventory = join(dir, 'inventory.json');
    emulator = startCli(['emulate', '--switches', '7', '--platform', 'mixed', '--ssh-port', String(SSH_PORT), '--first-octet', String(FIRST_OCTET), '--inventory-out', inventory]);
    await emulator.waitFor(/emulating 7 switches \(cisco-ios, cisco-ios-xe, cisco-nxos, arista-eos, juniper-junos, comware, dell-os10\) on 127\.0\.1\.140-127\.0\.1\.146/, 30_000);
    const drivers = ['cisco-ios', 'cisco-ios-xe', 'cisco-nxos', 'arista-eos', 'juniper-junos', 'comware', 'dell-os10'];
    // The example plan as shipped, on this suite's ports (the README runs it on 2121 and 63011-63015).
    let example = readFileSync(join(FIXTURE_IMAGES, '..', '..', 'config', 'rollout.emulated.yaml'), 'utf8');
    for (const [from, to] of [
      ['port: 2121', 'port: 0'],
      ['pasvRange: 63011-63015', 'pasvRange: 44120-44124'],
      ['images: ../fixtures/images', `images: ${FIXTURE_IMAGES}`],
    ]) {
      expect(example).to.include(from);
      example = example.replace(from, to);
    }
    const path = join(dir, 'rollout.emulated.yaml');
    writeFileSync(path, example);
    // Single-site stays zero-setup: the whole run with any load of bullmq or ioredis made fatal.
    const result = await runCli(['rollout', 'run', path, '--inventory', inventory, '--state', join(dir, 'state'), '--json'], { env: { NODE_OPTIONS: NO_ENGINE } });
    expect(result.code, result.stderr).to.equal(0);
    const out = JSON.parse(result.stdout) as { outcome: string; counts: Record<string, number>; reports: { json: string } };
    expect(out.outcome).to.equal('completed');
    expect(out.counts).to.deep.equal({ verified: 7, skipped: 0, failed: 0, pending: 0 });
    const report = JSON.parse(readFileSync(out.reports.json, 'utf8')) as { ftpSequences: { driver: string }[] };
    expect(report.ftpSequences.map((q) => q.driver).sort()).to.deep.equal([...drivers].sort());
  });

  it("the README's AOS-CX fleet: emulate --platform aruba-aoscx --trust-ca, then rollout run config/rollout.aoscx.yaml: each switch downloads its HTTPS grant URL, verified, exit 0; without server.https: exit 2 before anything starts", async function () {
    const inventory = join(dir, 'inventory.json');
    const cert = join(FIXTURE_IMAGES, '..', 'tls', 'server.crt');
    emulator = startCli(['emulate', '--switches', '3', '--platform', 'aruba-aoscx', '--ssh-port', String(SSH_PORT), '--rest-port', String(SSH_PORT + 1), '--first-octet', String(FIRST_OCTET), '--trust-ca', cert, '--inventory-out', inventory]);
    await emulator.waitFor(/emulating 3 switches \(aruba-aoscx\)/, 30_000);
    let example = readFileSync(join(FIXTURE_IMAGES, '..', '..', 'config', 'rollout.aoscx.yaml'), 'utf8');
    for (const [from, to] of [
      ['port: 2121', 'port: 0'],
      ['pasvRange: 63011-63015', 'pasvRange: 44120-44124'],
      ['https: 63002', 'https: 44126'],
      ['tlsCert: ../fixtures/tls/server.crt', `tlsCert: ${cert}`],
      ['tlsKey: ../fixtures/tls/server.key', `tlsKey: ${join(FIXTURE_IMAGES, '..', 'tls', 'server.key')}`],
      ['images: ../fixtures/images', `images: ${FIXTURE_IMAGES}`],
    ]) {
      expect(example).to.include(from);
      example = example.replace(from, to);
    }
    const path = join(dir, 'rollout.aoscx.yaml');
    writeFileSync(path, example);
    const result = await runCli(['rollout', 'run', path, '--inventory', inventory, '--state', join(dir, 'state'), '--json']);
    expect(result.code, result.stderr).to.equal(0);
    const out = JSON.parse(result.stdout) as { outcome: string; counts: Record<string, number> };
    expect(out.counts).to.deep.equal({ verified: 3, skipped: 0, failed: 0, pending: 0 });

    const ftpOnly = join(dir, 'ftp-only.yaml');
    writeFileSync(ftpOnly, example.replace(/^  (https|tlsCert|tlsKey): .*\n/gm, ''));
    const refused = await runCli(['rollout', 'run', ftpOnly, '--inventory', inventory, '--state', join(dir, 'state-ftp-only')]);
    expect(refused.code, refused.stderr).to.equal(2);
    expect(refused.stderr).to.include("swfw: server.https: 3 switches download over HTTP(S) only (emu-001, emu-002, emu-003) and the plan's server serves FTP only: set server.https with server.tlsCert and server.tlsKey (or server.http)");
    expect(existsSync(join(dir, 'state-ftp-only', 'journal.jsonl'))).to.equal(false);
  });

  it('the guard of the zero-setup check bites: with --engine, the same guard stops the run at the first load of bullmq', async function () {
    writeFileSync(join(dir, 'inventory.yaml'), 'switches:\n  - { name: a, address: 127.0.1.149, driver: cisco-ios-xe, site: a, credentials: { username: admin, passwordEnv: X } }\n');
    const result = await runCli(['rollout', 'run', plan({}), '--inventory', join(dir, 'inventory.yaml'), '--state', join(dir, 'state'), '--engine', 'redis://127.0.0.1:1'], { env: { X: 'x', NODE_OPTIONS: NO_ENGINE } });
    expect(result.code).to.not.equal(0);
    expect(result.stderr).to.include('the job engine library bullmq was loaded');
  });

  it("a plan whose passive range another process holds (npm start's, say) is refused at start: exit 2, one line, nothing journaled", async function () {
    const { createServer } = await import('node:net');
    const squatter = createServer();
    await new Promise<void>((resolve) => squatter.listen(44125, '127.0.0.1', resolve));
    try {
      writeFileSync(join(dir, 'inventory.yaml'), 'switches:\n  - { name: a, address: 127.0.1.149, driver: cisco-ios-xe, credentials: { username: admin, passwordEnv: X } }\n');
      const state = join(dir, 'state');
      const result = await runCli(['rollout', 'run', plan({ server: { address: '127.0.0.1', listen: '127.0.0.1', port: 0, pasvRange: '44125-44125', images: FIXTURE_IMAGES } }), '--inventory', join(dir, 'inventory.yaml'), '--state', state], { env: { X: 'x' } });
      expect(result.code, result.stderr).to.equal(2);
      expect(result.stderr.trim().split('\n').filter((line) => line.startsWith('swfw:'))).to.deep.equal([
        "swfw: the plan's server cannot start: none of the passive ports 44125-44125 on 127.0.0.1 could be bound: another process holds them (another swfw serve, npm start or FTP server?); stop it or choose another passive range",
      ]);
      const journal = join(state, 'journal.jsonl');
      expect(existsSync(journal) ? readFileSync(journal, 'utf8') : '').to.equal('');
      expect(existsSync(join(state, 'runner.pid'))).to.equal(false);
    } finally {
      await new Promise((resolve) => squatter.close(resolve));
    }
  });

  it('emulate: a bad fault spec is a usage error (exit 2, one line)', async function () {
    const bad = await runCli(['emulate', '--switches', '2', '--ssh-port', String(SSH_PORT), '--first-octet', String(FIRST_OCTET), '--faults', '3:slow=1'], { env: { SWFW_SWITCH_PASSWORD: 'x' } });
    expect(bad.code).to.equal(2);
    expect(bad.stderr.trim()).to.match(/^swfw: --faults: .*not in 1-2$/);
  });

  it('--dry-run pre-checks reachable switches read-only, prints what happens to whom, and writes no state', async function () {
    const inventory = join(dir, 'inventory.json');
    emulator = startCli(
      ['emulate', '--switches', '3', '--ssh-port', String(SSH_PORT), '--first-octet', String(FIRST_OCTET), '--inventory-out', inventory, '--faults', '2:version=17.09.04a,3:flash=1000'],
      { env: { SWFW_SWITCH_PASSWORD: 'dry-run-pass' } },
    );
    await emulator.waitFor(/emulating 3 switches/, 30_000);
    // A fourth switch nobody answers for.
    const doc = JSON.parse(readFileSync(inventory, 'utf8')) as { switches: Record<string, unknown>[] };
    doc.switches.push({ ...doc.switches[0]!, name: 'emu-zzz', address: '127.0.1.149', port: SSH_PORT + 1 });
    writeFileSync(inventory, JSON.stringify(doc));
    const state = join(dir, 'state');
    const env = { SWFW_SWITCH_PASSWORD: 'dry-run-pass' };

    const text = await runCli(['rollout', 'run', plan(), '--inventory', inventory, '--state', state, '--dry-run'], { env });
    expect(text.code, text.stderr).to.equal(0);
    expect(text.stdout).to.match(/^wave 0 \(canary\): 1 switch$/m);
    expect(text.stdout).to.match(/^wave 1: 2 switches$/m);
    expect(text.stdout).to.match(/emu-001 127\.0\.1\.140 \(cisco-ios-xe\) → cisco\/c9300.*: transfer: runs 17\.06\.05; transfer 1048699 bytes and verify$/m);
    expect(text.stdout).to.match(/emu-002 .*: skip: already runs 17\.09\.04a$/m);
    expect(text.stdout).to.match(/emu-003 .*: fail: not enough flash: 1000 bytes free/m);
    expect(text.stdout).to.match(/emu-zzz 127\.0\.1\.149 .*: fail: unreachable: /m);
    expect(text.stdout).to.include('nothing was changed');
    expect(existsSync(state), 'no state directory').to.equal(false);

    const json = await runCli(['rollout', 'run', plan(), '--inventory', inventory, '--state', state, '--dry-run', '--json'], { env });
    expect(json.code, json.stderr).to.equal(0);
    const out = JSON.parse(json.stdout) as { contacted: boolean; waves: string[][]; switches: { name: string; action: string; precheck: Record<string, unknown> | null }[] };
    expect(out.contacted).to.equal(true);
    expect(out.waves).to.deep.equal([['emu-001'], ['emu-002', 'emu-003'], ['emu-zzz']]);
    expect(out.switches.map((s) => [s.name, s.action])).to.deep.equal([
      ['emu-001', 'transfer'],
      ['emu-002', 'skip'],
      ['emu-003', 'fail'],
      ['emu-zzz', 'fail'],
    ]);
    expect(out.switches[0]!.precheck).to.deep.include({ reachable: true, version: '17.06.05', freeBytes: 64 * 1024 * 1024, onFlash: 'absent' });
    expect(out.switches[0]!.precheck!['ssh']).to.have.keys('kex', 'serverHostKey', 'cipher', 'mac');
    expect(out.switches[3]!.precheck).to.include({ reachable: false });

    const offline = await runCli(['rollout', 'run', plan(), '--inventory', inventory, '--state', state, '--dry-run', '--offline'], { env });
    expect(offline.code, offline.stderr).to.equal(0);
    expect(offline.stdout).to.include('nothing was contacted or changed');
    expect(existsSync(state), 'no state directory').to.equal(false);

    // status: no journal is a usage error, and a dry run never made one.
    const status = await runCli(['rollout', 'status', '--state', state]);
    expect(status.code).to.equal(2);
    expect(status.stderr.trim()).to.equal(`swfw: no rollout journal in ${state}`);
  });

  it('bad plan or inventory: one line per problem with its path, exit 2, nothing written', async function () {
    const inventory = join(dir, 'inventory.yaml');
    writeFileSync(
      inventory,
      [
        'switches:',
        '  - name: a',
        '    address: 127.0.1.150',
        '    driver: cisco-ios-xe',
        '    credentials: { username: admin, password: hunter2 }',
        '  - name: b',
        '    address: 127.0.1.151',
        '    driver: nokia',
        '    credentials: { username: admin, passwordEnv: X }',
      ].join('\n'),
    );
    const state = join(dir, 'state');
    const badInventory = await runCli(['rollout', 'run', plan(), '--inventory', inventory, '--state', state]);
    expect(badInventory.code).to.equal(2);
    const lines = badInventory.stderr.trim().split('\n');
    expect(lines).to.have.length(3);
    expect(lines).to.include(`swfw: config: ${inventory}: switches[0].credentials.password: inline secrets are not allowed: use passwordEnv or passwordFile`);
    expect(lines.some((l) => l.startsWith(`swfw: config: ${inventory}: switches[0].credentials: needs exactly one`))).to.equal(true);
    expect(lines.some((l) => l.startsWith(`swfw: config: ${inventory}: switches[1].driver: unknown driver`))).to.equal(true);
    expect(badInventory.stderr).to.not.include('hunter2');

    const badPlanPath = plan({ concurrency: 0, window: { start: '25:00', end: '05:00', timeZone: 'UTC' }, colour: 'red' });
    const badPlan = await runCli(['rollout', 'run', badPlanPath, '--inventory', inventory, '--state', state, '--dry-run']);
    expect(badPlan.code).to.equal(2);
    expect(badPlan.stderr.trim().split('\n').sort()).to.deep.equal(
      [
        `swfw: config: ${badPlanPath}: colour: unknown key (known: targets, waves, concurrency, failureThreshold, window, sites, server, timeouts, credentialMinutes, hostKeys, sshWeakAlgorithms)`,
        `swfw: config: ${badPlanPath}: concurrency: must be a whole number in 1-1000`,
        `swfw: config: ${badPlanPath}: window.start: must be HH:MM (24 h)`,
      ].sort(),
    );

    const missing = await runCli(['rollout', 'run', join(dir, 'nope.yaml'), '--inventory', inventory, '--state', state]);
    expect(missing.code).to.equal(2);
    expect(missing.stderr.trim()).to.equal(`swfw: cannot read ${join(dir, 'nope.yaml')} (ENOENT)`);

    // A switch whose platform the plan has no image for: the plan's targets are named, and the switch.
    writeFileSync(inventory, 'switches:\n  - { name: c, address: 127.0.1.152, driver: dell-os10, credentials: { username: admin, passwordEnv: X } }\n');
    const planPath = plan();
    const noTarget = await runCli(['rollout', 'run', planPath, '--inventory', inventory, '--state', state, '--dry-run']);
    expect(noTarget.code).to.equal(2);
    expect(noTarget.stderr.trim()).to.equal(`swfw: config: ${planPath}: targets.dell-os10: no target image for platform dell-os10 (needed by c in ${inventory})`);
    expect(existsSync(state)).to.equal(false);
  });
});
