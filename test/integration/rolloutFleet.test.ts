/**
 * A fleet through the five-port passive range: N emulated switches (SWFW_FLEET_SIZE, default 40)
 * each pull the 1 MiB fixture image. Every switch must end verified, the server must have served
 * each exactly once, and every data connection (the server's audit records its port) must have
 * reached a port inside the range. A second, slowed fleet proves more transfers run at once than
 * the range has ports.
 */
import { expect } from 'chai';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FIXTURE_IMAGES, startTestServer, type TestServer } from '../helpers/testServer.js';
import { testRunner } from '../helpers/rollout.js';
import { EmulatedFleet, parseFaults } from '../../src/switches/emulator/index.js';
import { validateInventory, type InventorySwitch } from '../../src/rollout/inventory.js';
import { validatePlan, type RolloutPlanConfig } from '../../src/rollout/plan.js';
import { foldJournal, readJournal, JOURNAL_FILE, type RunSummary } from '../../src/rollout/index.js';
import type { TransferProgress } from '../../src/server/context.js';

/** This suite's ports: passive 44110-44114, SSH 47130 on 127.0.1.130 and up. */
const PASV = { min: 44110, max: 44114 };
const SSH_PORT = 47130;
const FIRST_OCTET = 130;
const FLEET_SIZE = Number(process.env['SWFW_FLEET_SIZE'] ?? 40);
const IMAGE = 'cisco/c9300-universalk9.17.09.04a.SPA.bin';
const catalog = JSON.parse(readFileSync(join(FIXTURE_IMAGES, 'catalog.json'), 'utf8')) as { images: { file: string; size: number; sha256: string }[] };
const entry = catalog.images.find((i) => i.file === IMAGE)!;
const ENV = { SWFW_SWITCH_PASSWORD: 'fleet-test-pass' };

/** Runs a rollout of `switches` from `plan` on the test's own server, and expects every switch verified. */
async function runVerified(dir: string, plan: RolloutPlanConfig, switches: InventorySwitch[], server: TestServer, digest: string): Promise<RunSummary> {
  const summary = await testRunner(join(dir, 'state'), server, { plan, inventory: switches, env: ENV, planDigest: digest }).run();
  const failed = [...summary.state.switches.values()].filter((s) => s.outcome !== 'verified').map((s) => `${s.name}: ${s.outcome} ${s.reason}`);
  expect(failed).to.deep.equal([]);
  return summary;
}

describe(`rollout of a ${FLEET_SIZE}-switch fleet through a 5-port passive range`, function () {
  this.timeout(120_000);
  let server: TestServer;
  let fleet: EmulatedFleet | null = null;
  let dir: string;

  before(async function () {
    if (!Number.isInteger(FLEET_SIZE) || FLEET_SIZE < 1 || FIRST_OCTET + FLEET_SIZE - 1 > 254) throw new Error(`SWFW_FLEET_SIZE must be 1-${255 - FIRST_OCTET}`);
    dir = mkdtempSync(join(tmpdir(), 'swfw-fleet-'));
    server = await startTestServer(`${PASV.min}-${PASV.max}`);
    fleet = await EmulatedFleet.start({
      count: FLEET_SIZE,
      sshPort: SSH_PORT,
      firstOctet: FIRST_OCTET,
      password: ENV.SWFW_SWITCH_PASSWORD,
      flashBytes: 4 * 1024 * 1024,
      ftpTimeoutMs: 20_000,
    });
  });
  after(async () => {
    await fleet?.stop();
    await server?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('verifies every switch, one transfer each, every data connection inside the range', async function () {
    const { switches, problems } = validateInventory(fleet!.inventory({ username: 'admin', passwordEnv: 'SWFW_SWITCH_PASSWORD' }), dir);
    expect(problems.list).to.deep.equal([]);
    const { plan, problems: planProblems } = validatePlan(
      {
        targets: { 'cisco-ios-xe': IMAGE },
        waves: { canary: 1, percent: [25] },
        concurrency: 10,
        server: { address: '127.0.0.1', images: FIXTURE_IMAGES, pasvRange: `${PASV.min}-${PASV.max}` },
        timeouts: { sshSeconds: 20, pullSeconds: 60 },
      },
      dir,
    );
    expect(planProblems.list).to.deep.equal([]);
    const started = Date.now();
    const summary = await runVerified(dir, plan!, switches, server, 'fleet');
    const seconds = (Date.now() - started) / 1000;
    expect(summary.outcome).to.equal('completed');
    expect(summary.state.switches.size).to.equal(FLEET_SIZE);

    // The server's audit: one complete transfer per switch, from its own address, of the catalog's bytes.
    const audit = server.transfers.filter((t) => t.path === `/${IMAGE}`);
    expect(audit.map((t) => t.client).sort()).to.deep.equal(switches.map((s) => s.address).sort());
    expect(audit.every((t) => t.result === 'complete' && t.bytes === entry.size && t.sha256 === entry.sha256)).to.equal(true);
    const journaled = foldJournal(readJournal(join(dir, 'state', JOURNAL_FILE)).records);
    for (const s of journaled.switches.values()) expect(s.audit.filter((a) => a['result'] === 'complete'), s.name).to.have.length(1);

    // Every data connection inside the range: the server's port of each, from its audit record.
    expect(audit.map((t) => t.dataPort)).to.have.length(FLEET_SIZE);
    const outside = audit.filter((t) => t.dataPort === null || t.dataPort < PASV.min || t.dataPort > PASV.max);
    expect(outside.map((t) => `${t.client}: ${t.dataPort}`)).to.deep.equal([]);
    expect(server.server.passivePorts().sort()).to.deep.equal([44110, 44111, 44112, 44113, 44114]);
    const used = new Set(audit.map((t) => t.dataPort));
    console.log(`      ${FLEET_SIZE} switches in ${seconds.toFixed(1)} s; data ports used: ${[...used].sort().join(', ')}`);
  });
});

/**
 * The runner's claim: a passive port is needed only from PASV until the data connection is up, so
 * more switches than the range has ports can transfer at once. Every switch here pulls slowly
 * (its own rate limit), so their transfers can only overlap if that claim holds.
 */
describe('rollout: more transfers at once than the passive range has ports', function () {
  this.timeout(120_000);
  /** This block's ports: passive 44115-44119, SSH 47132 on 127.0.1.200 and up. */
  const OVERLAP_PASV = { min: 44115, max: 44119 };
  const PORTS = OVERLAP_PASV.max - OVERLAP_PASV.min + 1;
  const SWITCHES = 12;
  /** 1 MiB at 512 KiB/s: each transfer lasts about 2 s, long enough for all to be in flight together. */
  const SLOW_BYTES_PER_SECOND = 512 * 1024;
  let server: TestServer;
  let fleet: EmulatedFleet | null = null;
  let dir: string;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'swfw-overlap-'));
    server = await startTestServer(`${OVERLAP_PASV.min}-${OVERLAP_PASV.max}`);
    const slowEverywhere = Array.from({ length: SWITCHES }, (_, i) => `${i + 1}:slow=${SLOW_BYTES_PER_SECOND}`).join(',');
    fleet = await EmulatedFleet.start({
      count: SWITCHES,
      sshPort: 47132,
      firstOctet: 200,
      password: ENV.SWFW_SWITCH_PASSWORD,
      flashBytes: 4 * 1024 * 1024,
      ftpTimeoutMs: 20_000,
      faults: parseFaults(slowEverywhere, SWITCHES),
    });
  });
  after(async () => {
    await fleet?.stop();
    await server?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it(`runs all ${SWITCHES} transfers at once through ${PORTS} passive ports, every switch verified`, async () => {
    const { switches } = validateInventory(fleet!.inventory({ username: 'admin', passwordEnv: 'SWFW_SWITCH_PASSWORD' }), dir);
    const { plan, problems } = validatePlan(
      {
        targets: { 'cisco-ios-xe': IMAGE },
        waves: { canary: 0 },
        concurrency: SWITCHES,
        server: { address: '127.0.0.1', images: FIXTURE_IMAGES, pasvRange: `${OVERLAP_PASV.min}-${OVERLAP_PASV.max}` },
        timeouts: { sshSeconds: 20, pullSeconds: 60 },
      },
      dir,
    );
    expect(problems.list).to.deep.equal([]);
    // A transfer is in flight from its data connection (the server's event, per one-time user)
    // until the switch reports its copy done (the journal's "transferred" record). The server's own
    // end of a transfer is no use here: 1 MiB fits in loopback's socket buffers at once.
    const connectedAt = new Map<string, number>();
    const onStart = (p: TransferProgress) => {
      if (p.path === `/${IMAGE}` && !connectedAt.has(p.user)) connectedAt.set(p.user, Date.now());
    };
    server.server.on('transfer-start', onStart);
    try {
      await runVerified(dir, plan!, switches, server, 'overlap');
    } finally {
      server.server.removeListener('transfer-start', onStart);
    }
    const records = readJournal(join(dir, 'state', JOURNAL_FILE)).records;
    const userOf = new Map(records.filter((r) => r.t === 'switch' && r['phase'] === 'transfer').map((r) => [r['name'] as string, r['user'] as string]));
    const edges: Array<[number, 1 | -1]> = [];
    for (const r of records.filter((r) => r.t === 'switch' && r['phase'] === 'transferred')) {
      const start = connectedAt.get(userOf.get(r['name'] as string) ?? '');
      expect(start, `${r['name'] as string}: no data connection seen`).to.be.a('number');
      edges.push([start!, 1], [Date.parse(r['at'] as string), -1]);
    }
    expect(edges).to.have.length(2 * SWITCHES);
    // Sweep the interval ends in time order (an end before a start at the same instant).
    let inFlight = 0;
    let most = 0;
    for (const [, step] of edges.sort((a, b) => a[0] - b[0] || a[1] - b[1])) most = Math.max(most, (inFlight += step));
    expect(most, `at most ${most} transfers were in flight together`).to.be.greaterThan(PORTS);
    const dataPorts = server.transfers.filter((t) => t.path === `/${IMAGE}`).map((t) => t.dataPort);
    expect(dataPorts.filter((port) => port === null || port < OVERLAP_PASV.min || port > OVERLAP_PASV.max)).to.deep.equal([]);
    console.log(`      ${most} of ${SWITCHES} transfers in flight at once through ${PORTS} passive ports`);
  });
});
