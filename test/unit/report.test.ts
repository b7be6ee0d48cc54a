/** The rollout report from a folded journal: what a person reads in the HTML, what a program reads in the JSON. */
import { expect } from 'chai';
import { buildReport, toHtml } from '../../src/rollout/report.js';
import { foldJournal } from '../../src/rollout/state.js';
import type { JournalRecord } from '../../src/rollout/journal.js';

let seq = 0;
const at = (t: string, second: number, fields: Record<string, unknown>): JournalRecord => ({ seq: ++seq, at: `2026-11-30T22:00:${String(second).padStart(2, '0')}.000Z`, t, ...fields }) as JournalRecord;

const journal = [
  at('run-start', 0, {
    runId: 'r1',
    waves: [['core-1'], ['edge-1']],
    switches: [
      { name: 'core-1', address: '10.0.0.1', driver: 'cisco-ios-xe', wave: 0, image: 'cisco/c9300.bin' },
      { name: 'edge-1', address: 'edge-1.example.net', resolvedAddress: '10.0.0.2', driver: 'dell-os10', wave: 1, image: 'dell/os10.bin' },
    ],
  }),
  at('switch', 1, { name: 'core-1', phase: 'precheck' }),
  at('switch', 2, {
    name: 'core-1',
    phase: 'prechecked',
    precheck: { reachable: true, model: 'C9300-48P', version: '17.06.05', freeBytes: 1288490188, onFlash: 'absent', login: 'password', ssh: { kex: 'curve25519-sha256', serverHostKey: 'ssh-ed25519', cipher: 'aes128-gcm@openssh.com', mac: 'implicit' } },
  }),
  at('switch', 3, { name: 'core-1', phase: 'transferred', bytes: 3 * 1024 * 1024, durationMs: 75_000 }),
  at('switch', 4, { name: 'core-1', phase: 'done', outcome: 'verified', verdict: 'verified', reason: 'sha256 matches' }),
  at('switch', 5, { name: 'edge-1', phase: 'precheck' }),
  at('switch', 6, { name: 'edge-1', phase: 'prechecked', precheck: { reachable: false, error: 'connect ECONNREFUSED 10.0.0.2:22' } }),
  at('switch', 7, { name: 'edge-1', phase: 'done', outcome: 'failed', verdict: 'unreachable', reason: 'connect ECONNREFUSED <b>' }),
  at('run-end', 8, { outcome: 'completed', reason: 'every wave done' }),
];

describe('rollout report', function () {
  const report = buildReport(foldJournal(journal));

  it('says when the run started and ended, from the journal', function () {
    expect(report).to.include({ runId: 'r1', startedAt: '2026-11-30T22:00:00.000Z', endedAt: '2026-11-30T22:00:08.000Z', outcome: 'completed' });
    expect(toHtml(report)).to.include('Started 2026-11-30 22:00:00 UTC, ended 2026-11-30 22:00:08 UTC (8s)');
  });

  it('the HTML reads as sentences (pre-check, sizes, durations, rates), never as JSON, and escapes what switches said', function () {
    const html = toHtml(report);
    expect(html).to.include('<td>C9300-48P, 17.06.05, 1.2 GiB free, image not on flash; logged in by password</td>');
    expect(html).to.include('<td>unreachable: connect ECONNREFUSED 10.0.0.2:22</td>');
    expect(html).to.include('<td>3.0 MiB</td><td>1m15s</td><td>41.0 KiB/s</td>');
    expect(html).to.include('curve25519-sha256 / ssh-ed25519 / aes128-gcm@openssh.com / implicit');
    expect(html).to.include('edge-1.example.net (10.0.0.2)');
    expect(html).to.include('ECONNREFUSED &lt;b&gt;');
    expect(html).not.to.match(/&quot;reachable&quot;|\{&quot;/);
  });

  it('the JSON keeps the raw figures for programs', function () {
    const core = report.switches.find((s) => s.name === 'core-1')!;
    expect(core).to.include({ bytes: 3145728, durationMs: 75_000, bytesPerSecond: 41943 });
    expect(core.precheck).to.include({ freeBytes: 1288490188, onFlash: 'absent' });
  });
});
