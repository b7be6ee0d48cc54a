/**
 * A real crash: `swfw emulate` and `swfw rollout run` as child processes, the runner killed with
 * SIGKILL while the first wave's slow transfers are on the wire, then `swfw rollout resume` to the
 * end. Everything asserted comes from the fsynced journal (including the server's audit records
 * it holds) and the CLI's own output.
 */
import { expect } from 'chai';
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli, startCli, type CliProcess } from '../helpers/cli.js';
import { JOURNAL_FILE, foldJournal, readJournal } from '../../src/rollout/index.js';
import type { JournalRecord } from '../../src/rollout/journal.js';

/** This suite's ports: SSH 47120 on 127.0.1.120-125, passive 44100-44104. */
const SSH_PORT = '47120';
const FIRST_OCTET = 120;
const PASV_RANGE = '44100-44104';
const SWITCHES = 6;
const IMAGE = 'cisco/c9300-crash-test.17.09.04a.SPA.bin';
/**
 * The image must be larger than what loopback's socket buffers swallow (send 4 MiB, receive
 * autotuned), or the server finishes sending (and audits `complete`) long before a slow switch
 * has read it, and the kill would land after the server's part was over.
 */
const IMAGE_BYTES = 24 * 1024 * 1024;
/** 24 MiB at 3 MiB/s: about 8 s on the wire, ample room for the kill to land mid-transfer. */
const SLOW_BPS = 3 * 1024 * 1024;

/** A one-image repository with its catalog (the fixture images are too small to outlast the buffers). */
function makeImages(root: string): { images: string; entry: { size: number; sha256: string } } {
  const images = join(root, 'images');
  mkdirSync(join(images, 'cisco'), { recursive: true });
  const block = randomBytes(1024 * 1024);
  const data = Buffer.concat(Array.from({ length: IMAGE_BYTES / block.length }, (_, i) => Buffer.concat([Buffer.from([i]), block.subarray(1)])));
  const path = join(images, IMAGE);
  writeFileSync(path, data);
  const digest = (algorithm: string) => createHash(algorithm).update(data).digest('hex');
  const entry = { file: IMAGE, platform: 'cisco-ios-xe', version: '17.09.04a', size: data.length, mtime: new Date(Math.floor(statSync(path).mtimeMs)).toISOString(), sha256: digest('sha256'), md5: digest('md5'), sha512: digest('sha512'), vendorChecked: [] };
  writeFileSync(join(images, 'catalog.json'), JSON.stringify({ format: 'swfw-catalog', version: 1, images: [entry] }, null, 2));
  return { images, entry };
}
const ENV = { SWFW_SWITCH_PASSWORD: 'crash-test-pass' };

/** Polls the journal until `done(records)` holds; fails with the journal's tail on timeout. */
async function waitForJournal(path: string, done: (records: JournalRecord[]) => boolean, timeoutMs: number, poll = 50): Promise<JournalRecord[]> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const { records } = readJournal(path);
    if (done(records)) return records;
    if (Date.now() > deadline) throw new Error(`journal never reached the state wanted; last records:\n${records.slice(-8).map((r) => JSON.stringify(r)).join('\n')}`);
    await new Promise((resolve) => setTimeout(resolve, poll));
  }
}

const switchRecords = (records: JournalRecord[], name: string) => records.filter((r) => (r.t === 'switch' || r.t === 'audit') && r['name'] === name);

describe('rollout crash: kill -9 mid-transfer, then resume (the built CLI)', function () {
  this.timeout(120_000);
  let dir: string;
  let emulator: CliProcess | null = null;
  let runner: CliProcess | null = null;
  let entry: { size: number; sha256: string };

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'swfw-crash-'));
    const repo = makeImages(dir);
    entry = repo.entry;
    // emu-001 is fast; emu-002 and emu-003 (the rest of wave 0) crawl.
    emulator = startCli(
      ['emulate', '--switches', String(SWITCHES), '--ssh-port', SSH_PORT, '--first-octet', String(FIRST_OCTET), '--inventory-out', join(dir, 'inventory.json'), '--faults', `2:slow=${SLOW_BPS},3:slow=${SLOW_BPS}`],
      { env: ENV },
    );
    await emulator.waitFor(/emulating 6 switches/, 30_000);
    writeFileSync(
      join(dir, 'plan.json'),
      JSON.stringify({
        targets: { 'cisco-ios-xe': IMAGE },
        waves: { canary: 0, percent: [50] },
        concurrency: 3,
        server: { address: '127.0.0.1', listen: '127.0.0.1', port: 0, pasvRange: PASV_RANGE, images: repo.images },
        timeouts: { sshSeconds: 10, pullSeconds: 60 },
      }),
    );
  });
  afterEach(async () => {
    await runner?.stop('SIGKILL');
    runner = null;
  });
  after(async () => {
    const result = await emulator?.stop('SIGTERM');
    emulator = null;
    rmSync(dir, { recursive: true, force: true });
    expect(result?.code, result?.stderr).to.equal(0);
  });

  it('every switch verified exactly once, none lost, none re-transferred after verification; the interrupted ones re-checked', async function () {
    const state = join(dir, 'state');
    const journalPath = join(state, JOURNAL_FILE);
    runner = startCli(['rollout', 'run', join(dir, 'plan.json'), '--inventory', join(dir, 'inventory.json'), '--state', state], { env: ENV });
    // Wave 0: emu-001 verified, emu-002 and emu-003 on the wire (transfer journaled, not yet transferred).
    const inFlight = ['emu-002', 'emu-003'];
    await waitForJournal(
      journalPath,
      (records) => {
        const s = foldJournal(records).switches;
        return s.get('emu-001')?.outcome === 'verified' && inFlight.every((n) => s.get(n)?.phase === 'transfer');
      },
      60_000,
    );
    const killed = await runner.stop('SIGKILL');
    runner = null;
    expect(killed.signal).to.equal('SIGKILL');

    const atKill = readJournal(journalPath);
    const before = foldJournal(atKill.records);
    // The kill landed mid-transfer: no transferred record, no audit for the slow two, wave 1 untouched.
    for (const n of inFlight) expect(before.switches.get(n), n).to.include({ phase: 'transfer', outcome: null, transfers: 1 });
    for (const n of inFlight) expect(before.switches.get(n)!.audit, n).to.deep.equal([]);
    for (const n of ['emu-004', 'emu-005', 'emu-006']) expect(before.switches.get(n)!.attempts, n).to.equal(0);
    expect(before.end).to.equal(null);
    const resumeAt = atKill.records.length;

    // Status sees an interrupted rollout with no runner.
    const status = await runCli(['rollout', 'status', '--state', state, '--json']);
    expect(status.code, status.stderr).to.equal(0);
    const shown = JSON.parse(status.stdout) as { runner: unknown; outcome: unknown; totals: Record<string, number> };
    expect(shown.runner).to.equal(null);
    expect(shown.outcome).to.equal(null);
    expect(shown.totals).to.include({ verified: 1, pending: 5 });

    const resumed = await runCli(['rollout', 'resume', '--state', state, '--json'], { env: ENV, timeoutMs: 90_000 });
    expect(resumed.code, resumed.stderr).to.equal(0);
    const summary = JSON.parse(resumed.stdout.trim().split('\n').at(-1)!) as { outcome: string; counts: Record<string, number> };
    expect(summary).to.deep.include({ outcome: 'completed', counts: { verified: SWITCHES, skipped: 0, failed: 0, pending: 0 } });

    const { records, tornBytes } = readJournal(journalPath);
    expect(tornBytes).to.equal(0);
    expect(records.slice(0, resumeAt)).to.deep.equal(atKill.records); // history is never rewritten
    expect(records.filter((r) => r.t === 'run-start')).to.have.length(1);
    expect(records.filter((r) => r.t === 'run-resume')).to.have.length(1);
    const final = foldJournal(records);
    expect(final.end?.['outcome']).to.equal('completed');
    const names = [...final.switches.keys()].sort();
    expect(names).to.have.length(SWITCHES); // no lost switch

    for (const name of names) {
      const mine = switchRecords(records, name);
      // Verified exactly once.
      const verified = mine.filter((r) => r.t === 'switch' && r['phase'] === 'done' && r['outcome'] === 'verified');
      expect(verified, name).to.have.length(1);
      expect(mine.filter((r) => r.t === 'switch' && r.phase === 'done'), name).to.have.length(1);
      // Nothing transferred (and nothing served) after the verification.
      const after = mine.filter((r) => r.seq > verified[0]!.seq);
      expect(after, name).to.deep.equal([]);
      // The server's audit: exactly one complete transfer of the catalog's bytes, from the switch's own address.
      const s = final.switches.get(name)!;
      const complete = s.audit.filter((a) => a['result'] === 'complete');
      expect(complete, name).to.have.length(1);
      expect(complete[0]).to.include({ client: s.address, sha256: entry.sha256, bytes: entry.size, offset: 0 });
      expect(s.hashes).to.deep.include({ catalogSha256: entry.sha256, serverSha256: entry.sha256, switchAlgorithm: 'sha512' });
    }
    // emu-001 was done before the crash: untouched by the resume.
    expect(final.switches.get('emu-001')).to.include({ attempts: 1, transfers: 1 });
    expect(records.slice(resumeAt).some((r) => 'name' in r && r.name === 'emu-001')).to.equal(false);
    // The interrupted switches were pre-checked again after the resume, found no image on flash
    // (the killed copy left only a discarded partial file), and transferred once more.
    for (const n of inFlight) {
      expect(final.switches.get(n), n).to.include({ attempts: 2, transfers: 2, outcome: 'verified' });
      const recheck = records.slice(resumeAt).find((r) => r.t === 'switch' && r.name === n && r.phase === 'prechecked');
      expect(recheck?.t === 'switch' && recheck.phase === 'prechecked' ? recheck.precheck : null, n).to.deep.include({ reachable: true, onFlash: 'absent' });
    }
    // Wave 1 started only after the resume, once each.
    for (const n of ['emu-004', 'emu-005', 'emu-006']) expect(final.switches.get(n), n).to.include({ attempts: 1, transfers: 1 });
  });
});
