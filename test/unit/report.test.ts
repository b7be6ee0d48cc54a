/** The rollout report from a folded journal: what a person reads in the HTML, what a program reads in the JSON and CSV. */
import { expect } from 'chai';
import { buildReport, toCsv, toHtml, REPORT_FORMAT, REPORT_VERSION, SHORT_HASH, TIMELINE_MAX_BARS } from '../../src/rollout/report.js';
import { foldJournal } from '../../src/rollout/state.js';
import type { JournalRecord } from '../../src/rollout/journal.js';

const SHA256 = 'a'.repeat(64);
const OTHER_SHA256 = `${'a'.repeat(60)}beef`;
const SHA512 = 'c'.repeat(128);

let seq = 0;
const at = (t: string, second: number, fields: Record<string, unknown>): JournalRecord => ({ seq: ++seq, at: `2026-11-30T22:00:${String(second).padStart(2, '0')}.000Z`, t, ...fields }) as JournalRecord;

const journal = [
  at('run-start', 0, {
    runId: 'r1',
    planPath: '/etc/swfw/plan.yaml',
    planDigest: 'd'.repeat(64),
    inventoryPath: '/etc/swfw/inventory.yaml',
    waves: [['core-1'], ['edge-1', 'edge-2']],
    switches: [
      { name: 'core-1', address: '10.0.0.1', driver: 'cisco-ios-xe', wave: 0, image: 'cisco/c9300.bin' },
      { name: 'edge-1', address: 'edge-1.example.net', resolvedAddress: '10.0.0.2', driver: 'dell-os10', wave: 1, image: 'cisco/c9300.bin' },
      { name: 'edge-2', address: '10.0.0.3', driver: 'cisco-ios-xe', wave: 1, image: 'cisco/c9300.bin' },
    ],
    operator: { user: 'root', host: 'jump-1', sudoUser: 'alice' },
    images: [{ file: 'cisco/c9300.bin', platform: 'cisco-ios-xe', version: '17.09.04a', size: 3 * 1024 * 1024, sha256: SHA256, sha512: SHA512 }],
    server: { address: '192.0.2.10', port: 21, pasvRange: '63006-63010' },
    window: { kind: 'daily', start: '22:00', end: '05:00', timeZone: 'Europe/Berlin' },
    concurrency: 2,
    canary: 1,
  }),
  at('wave-start', 0, { wave: 0, switches: 1 }),
  at('switch', 1, { name: 'core-1', phase: 'precheck' }),
  at('switch', 2, {
    name: 'core-1',
    phase: 'prechecked',
    precheck: { reachable: true, model: 'C9300-48P', version: '17.06.05', freeBytes: 1288490188, onFlash: 'absent', login: 'password', ssh: { kex: 'curve25519-sha256', serverHostKey: 'ssh-ed25519', cipher: 'aes128-gcm@openssh.com', mac: 'implicit' } },
  }),
  at('switch', 2, { name: 'core-1', phase: 'transfer', user: 'sw-1', source: '10.0.0.1' }),
  at('switch', 3, { name: 'core-1', phase: 'transferred', ok: true, message: 'ok', bytes: 3 * 1024 * 1024, durationMs: 75_000 }),
  at('switch', 4, { name: 'core-1', phase: 'done', outcome: 'verified', verdict: 'verified', reason: 'sha512 matches', hashes: { catalogSha256: SHA256, serverSha256: SHA256, switchDigests: { sha512: SHA512 }, switchAlgorithm: 'sha512' } }),
  at('wave-start', 5, { wave: 1, switches: 2 }),
  at('switch', 5, { name: 'edge-1', phase: 'precheck' }),
  at('switch', 6, { name: 'edge-1', phase: 'prechecked', precheck: { reachable: false, error: 'connect ECONNREFUSED 10.0.0.2:22' } }),
  at('switch', 7, { name: 'edge-1', phase: 'done', outcome: 'failed', verdict: 'unreachable', reason: 'connect ECONNREFUSED <script>alert(1)</script>' }),
  at('switch', 5, { name: 'edge-2', phase: 'precheck' }),
  at('switch', 6, { name: 'edge-2', phase: 'prechecked', precheck: { reachable: true, model: 'C9300-24T', version: '17.06.05', freeBytes: 734003200, onFlash: 'differs' } }),
  at('switch', 6, { name: 'edge-2', phase: 'transfer', user: 'sw-2', source: '10.0.0.3' }),
  at('switch', 8, { name: 'edge-2', phase: 'transferred', ok: true, message: 'ok', bytes: 3 * 1024 * 1024, durationMs: 2000 }),
  at('switch', 9, { name: 'edge-2', phase: 'done', outcome: 'failed', verdict: 'server-mismatch', reason: 'the server sent other bytes', hashes: { catalogSha256: SHA256, serverSha256: OTHER_SHA256, switchDigests: {}, switchAlgorithm: null } }),
  at('run-end', 10, { outcome: 'completed', reason: 'every wave done', counts: { verified: 1, skipped: 0, failed: 2, pending: 0 } }),
];

const NOW = Date.parse('2026-12-01T07:30:00.000Z');

describe('rollout report', function () {
  const report = buildReport(foldJournal(journal), { now: () => NOW });
  const html = toHtml(report);

  it('JSON: says what it is (format, version), when it was written, and the run\'s times', function () {
    expect(report).to.include({ format: REPORT_FORMAT, version: REPORT_VERSION, generatedAt: '2026-12-01T07:30:00.000Z', runId: 'r1', startedAt: '2026-11-30T22:00:00.000Z', endedAt: '2026-11-30T22:00:10.000Z', durationMs: 10_000, outcome: 'completed' });
    expect(REPORT_FORMAT).to.equal('swfw-rollout-report');
    const core = report.switches.find((s) => s.name === 'core-1')!;
    expect(core).to.include({ startedAt: '2026-11-30T22:00:01.000Z', transferStartedAt: '2026-11-30T22:00:02.000Z', transferredAt: '2026-11-30T22:00:03.000Z', endedAt: '2026-11-30T22:00:04.000Z', targetVersion: '17.09.04a' });
    expect(report.waves.map((w) => w.startedAt)).to.deep.equal(['2026-11-30T22:00:00.000Z', '2026-11-30T22:00:05.000Z']);
    expect(JSON.parse(JSON.stringify(report))).to.deep.equal(report);
  });

  it('JSON: keeps the raw figures for programs, and marks each hash against the catalog', function () {
    const core = report.switches.find((s) => s.name === 'core-1')!;
    expect(core).to.include({ bytes: 3145728, durationMs: 75_000, bytesPerSecond: 41943, serverMatchesCatalog: true, switchMatchesCatalog: true });
    expect(core.precheck).to.include({ freeBytes: 1288490188, onFlash: 'absent' });
    expect(report.switches.find((s) => s.name === 'edge-2')).to.include({ serverMatchesCatalog: false, switchMatchesCatalog: null });
    expect(report.switches.find((s) => s.name === 'edge-1')).to.include({ serverMatchesCatalog: null, startedAt: '2026-11-30T22:00:05.000Z', endedAt: '2026-11-30T22:00:07.000Z' });
  });

  it('the header: plan and digest, image with version and SHA-256, server, window, times, who and where, counts', function () {
    expect(report).to.deep.include({ plan: { path: '/etc/swfw/plan.yaml', digest: 'd'.repeat(64) }, operator: { user: 'root', host: 'jump-1', sudoUser: 'alice' }, window: 'daily 22:00–05:00 (Europe/Berlin)' });
    expect(html).to.include('<dt>Started</dt><dd>2026-11-30 22:00:00 UTC</dd>');
    expect(html).to.include('<dt>Ended</dt><dd>2026-11-30 22:00:10 UTC (took 10s)</dd>');
    expect(html).to.include('<dt>Run by</dt><dd>alice (sudo as root) on jump-1</dd>');
    expect(html).to.include(`cisco/c9300.bin — version <b>17.09.04a</b>, 3.0 MiB, SHA-256 <code title="${SHA256}">${SHA256}</code>`);
    expect(html).to.include(`/etc/swfw/plan.yaml <small>SHA-256</small> <code title="${'d'.repeat(64)}">${'d'.repeat(SHORT_HASH)}…</code>`);
    expect(html).to.include('ftp://192.0.2.10:21 <small>passive ports 63006-63010</small>');
    expect(html).to.include('<dt>Window</dt><dd>daily 22:00–05:00 (Europe/Berlin)</dd>');
    expect(html).to.include('Rollout <b>completed</b>: 1 verified, 2 failed, 0 skipped, 0 pending of 3 switches.');
    expect(html).to.include('<div class="tile failed"><b>2</b>failed</div>').and.include('<div class="tile skipped zero"><b>0</b>skipped</div>');
    expect(html).to.include('<title>Firmware rollout 2026-11-30 22:00 — cisco/c9300.bin 17.09.04a</title>');
  });

  it('per switch: times, the pre-check in words (MiB/GiB, on flash), versions before and after; never JSON', function () {
    expect(html).to.include('C9300-48P, 17.06.05, 1.2 GiB free, image not on flash; logged in by password');
    expect(html).to.include('C9300-24T, 17.06.05, 700 MiB free, a different image where it goes (file of that name, or the non-booted slot)');
    expect(html).to.include('unreachable: connect ECONNREFUSED 10.0.0.2:22');
    expect(html).to.include('<td>22:00:01–22:00:04<br><small>3s</small></td>');
    expect(html).to.include('17.06.05 → 17.09.04a <small>on flash</small>');
    expect(html).to.include('3.0 MiB in 1m15s<br><small>41.0 KiB/s</small>');
    expect(html).to.include('curve25519-sha256 / ssh-ed25519 / aes128-gcm@openssh.com / implicit');
    expect(html).to.include('edge-1.example.net (10.0.0.2)');
    expect(html).not.to.match(/&quot;reachable&quot;|\{&quot;/);
  });

  it('hashes: shortened, the full value in the title, marked same or different against the catalog', function () {
    expect(html).to.include(`sent <code title="${SHA256}">${SHA256.slice(0, SHORT_HASH)}…</code> <b class="same">✓<i> same as catalog</i></b>`);
    expect(html).to.include(`sha512 <code title="${SHA512}">${SHA512.slice(0, SHORT_HASH)}…</code> <b class="same">✓`);
    expect(html).to.include(`sent <code title="${OTHER_SHA256}">${OTHER_SHA256.slice(0, SHORT_HASH)}…</code> <b class="diff">✗<i> differs from catalog</i></b>`);
    // No full digest is printed in a table cell, only in titles (and once, the catalog's, in the header).
    expect(html.split(`>${SHA512}<`)).to.have.length(1);
  });

  it('failed switches come first, with their reasons; the verified ones are collapsed by wave', function () {
    const failedAt = html.indexOf('<h2 id="failed">Failed switches (2)</h2>');
    expect(failedAt).to.be.greaterThan(0);
    expect(html.indexOf('edge-1', failedAt)).to.be.lessThan(html.indexOf('<h2>Switches by wave</h2>'));
    expect(html).to.include('<h3>wave 0 (canary): 1 switch — 1 verified</h3><details class="verified"><summary>1 verified switch</summary>');
    expect(html).to.include('<h3>wave 1: 2 switches — 2 failed</h3><p>2 failed: listed under <a href="#failed">Failed switches</a>.</p>');
    expect(html).to.include('<tr class="failed">');
  });

  it('escapes everything from the journal: a switch\'s <script> is text, in cells, titles and the timeline alike', function () {
    expect(html).not.to.match(/<script/i);
    expect(html).to.include('connect ECONNREFUSED &lt;script&gt;alert(1)&lt;/script&gt;');
    const hostile = buildReport(
      foldJournal([
        at('run-start', 0, { runId: '"><img src=x onerror=alert(1)>', planPath: 'p', planDigest: 'x', inventoryPath: 'i', waves: [['a"><svg onload=alert(1)>']], switches: [{ name: 'a"><svg onload=alert(1)>', address: "<b>'", wave: 0, image: '<i>.bin' }] }),
        at('switch', 1, { name: 'a"><svg onload=alert(1)>', phase: 'precheck' }),
        at('switch', 2, { name: 'a"><svg onload=alert(1)>', phase: 'done', outcome: '<u>x</u>', verdict: '<s>', reason: '</title><script>alert(1)</script>', hashes: { catalogSha256: '"><x>', serverSha256: '"><y>', switchDigests: {}, switchAlgorithm: null } }),
      ]),
      { now: () => NOW },
    );
    const page = toHtml(hostile);
    expect(page).not.to.match(/<(script|img|svg onload|u>|s>|b>'|i>\.bin)/i);
    for (const payload of ['"><img src=x', '"><svg onload', '"><x>', '"><y>']) expect(page).not.to.include(payload);
    expect(page).to.include('a&quot;&gt;&lt;svg onload=alert(1)&gt;');
    expect(page).to.include('&lt;/title&gt;&lt;script&gt;alert(1)&lt;/script&gt;');
    expect(page).to.include('class="pending"'); // an outcome the report does not know is shown as pending, never as a class name
  });

  it('the timeline: one bar per started switch with its own <title>, wave starts marked, a time axis', function () {
    const svg = html.slice(html.indexOf('<svg'), html.indexOf('</svg>'));
    expect(svg).to.include('role="img"').and.include('<title id="tl-title">Timeline of the rollout, 22:00:00 to 22:00:10 UTC</title>');
    expect(svg.match(/<g class="bar /g)).to.have.length(3);
    expect(svg).to.include('<title>core-1: verified, 22:00:01–22:00:04 (3s): sha512 matches</title>');
    expect(svg).to.include('<g class="bar failed"><title>edge-1: failed');
    expect(svg.match(/class="xfer"/g)).to.have.length(2);
    expect(svg).to.include('>canary</text>').and.include('>wave 1</text>');
    expect(svg).to.include('>22:00:00</text>').and.include('>22:00:10</text>');
  });

  it('a print stylesheet; the small fleet prints with its collapsed sections open', function () {
    expect(html).to.include('@media print{');
    expect(html).to.include('details::details-content{content-visibility:visible');
    expect(html).not.to.match(/\b(src|href)="(https?:)?\/\//);
  });

  it('CSV: the old columns in their places, then the times', function () {
    const lines = toCsv(report.switches).split('\r\n');
    const header = lines[0]!.split(',');
    expect(header.slice(0, 3)).to.deep.equal(['name', 'address', 'resolvedAddress']);
    expect(header.indexOf('precheck')).to.equal(21);
    expect(header.slice(22)).to.deep.equal(['startedAt', 'transferStartedAt', 'transferredAt', 'endedAt', 'targetVersion']);
    expect(lines[1]).to.match(/^core-1,10\.0\.0\.1,10\.0\.0\.1,cisco-ios-xe,,0,/);
    expect(lines[1]).to.match(/,2026-11-30T22:00:01\.000Z,2026-11-30T22:00:02\.000Z,2026-11-30T22:00:03\.000Z,2026-11-30T22:00:04\.000Z,17\.09\.04a$/);
  });

  it('a journal from before the header fields folds and renders, saying what it does not know', function () {
    const old = buildReport(foldJournal([journal[0]!].map((r) => ({ seq: r.seq, at: r.at, t: 'run-start', runId: 'old', planPath: 'p', planDigest: 'x', inventoryPath: 'i', waves: [['s']], switches: [{ name: 's', address: '10.0.0.9', wave: 0, image: 'x.bin' }] }) as JournalRecord)));
    expect(old).to.include({ operator: null, server: null, window: null, concurrency: null });
    expect(old.images).to.deep.equal([{ file: 'x.bin', platform: null, version: null, size: null, sha256: null, switches: 1 }]);
    const page = toHtml(old);
    expect(page).to.include('<dt>Run by</dt><dd><small>not recorded (journal from an older swfw)</small></dd>');
    expect(page).to.include('<p>No switch was started.</p>');
  });

  it('10,000 switches: bounded in size, the timeline aggregated, verified ones collapsed', function () {
    const names = Array.from({ length: 10_000 }, (_, i) => `sw-${String(i).padStart(5, '0')}`);
    const waves = [names.slice(0, 1), names.slice(1, 1000), names.slice(1000)];
    const records: JournalRecord[] = [
      at('run-start', 0, {
        runId: 'big',
        planPath: 'p',
        planDigest: 'x',
        inventoryPath: 'i',
        waves,
        switches: names.map((name, i) => ({ name, address: `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`, driver: 'cisco-ios-xe', wave: i === 0 ? 0 : i < 1000 ? 1 : 2, image: 'cisco/c9300.bin' })),
        images: [{ file: 'cisco/c9300.bin', platform: 'cisco-ios-xe', version: '17.09.04a', size: 1 << 30, sha256: SHA256, sha512: SHA512 }],
        concurrency: 50,
        canary: 1,
      }),
    ];
    const t0 = Date.parse('2026-11-30T22:00:00.000Z');
    const stamp = (ms: number) => new Date(t0 + ms).toISOString();
    names.forEach((name, i) => {
      const start = Math.floor(i / 50) * 60_000;
      const failed = i % 97 === 5;
      records.push({ seq: ++seq, at: stamp(start), t: 'switch', name, phase: 'precheck' } as JournalRecord);
      records.push({ seq: ++seq, at: stamp(start + 2000), t: 'switch', name, phase: 'prechecked', precheck: { reachable: true, model: 'C9300-48P', version: '17.06.05', freeBytes: 2 << 30, onFlash: 'absent', login: 'password' } } as JournalRecord);
      records.push({ seq: ++seq, at: stamp(start + 3000), t: 'switch', name, phase: 'transfer', user: 'u', source: 's' } as JournalRecord);
      records.push({ seq: ++seq, at: stamp(start + 50_000), t: 'switch', name, phase: 'transferred', ok: true, message: 'ok', bytes: 1 << 30, durationMs: 47_000 } as JournalRecord);
      records.push({
        seq: ++seq,
        at: stamp(start + 58_000),
        t: 'switch',
        name,
        phase: 'done',
        outcome: failed ? 'failed' : 'verified',
        verdict: failed ? 'switch-mismatch' : 'verified',
        reason: failed ? 'the switch hashed other bytes' : 'sha512 matches',
        hashes: { catalogSha256: SHA256, serverSha256: SHA256, switchDigests: { sha512: failed ? 'f'.repeat(128) : SHA512 }, switchAlgorithm: 'sha512' },
      } as JournalRecord);
    });
    const big = buildReport(foldJournal(records), { now: () => NOW });
    const page = toHtml(big);
    expect(big.totals).to.deep.equal({ verified: 9896, failed: 104, skipped: 0, pending: 0 });
    expect(Buffer.byteLength(page)).to.be.lessThan(15 * 1024 * 1024);
    const svg = page.slice(page.indexOf('<svg'), page.indexOf('</svg>'));
    expect(10_000).to.be.greaterThan(TIMELINE_MAX_BARS);
    expect(svg).not.to.include('class="bar');
    expect((svg.match(/<rect/g) ?? []).length).to.be.within(1, 1000);
    expect(Buffer.byteLength(svg)).to.be.lessThan(200 * 1024);
    expect(svg).to.include('50 switches at work (50 verified)');
    expect(page).to.include('<h2 id="failed">Failed switches (104)</h2>');
    for (const w of big.waves.slice(1)) expect(page).to.include(`<details class="verified"><summary>${w.verified} verified switches</summary>`);
    expect(page.match(/<details class="verified">/g)).to.have.length(3);
    // Too many to print whole: printing keeps the verified ones collapsed.
    expect(page).not.to.include('details::details-content');
  });
});
