import { expect } from 'chai';
import { appendFileSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Journal, readJournal } from '../../src/rollout/journal.js';
import { JournalFold, foldJournal } from '../../src/rollout/state.js';

describe('rollout journal (group commit)', function () {
  let dir: string;
  let path: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'swfw-journal-'));
    path = join(dir, 'journal.jsonl');
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('appends made at once are all durable, in append order, once their promises resolve', async () => {
    const journal = Journal.open(path);
    const appends = Array.from({ length: 200 }, (_, i) => journal.append({ t: 'switch', name: `sw-${i}`, phase: 'precheck' }));
    // In memory at once, in order (a fold sees them before they are durable).
    expect(journal.records.map((r) => (r.t === 'switch' ? r.name : null))).to.deep.equal(Array.from({ length: 200 }, (_, i) => `sw-${i}`));
    const records = await Promise.all(appends);
    expect(records.map((r) => r.seq)).to.deep.equal(Array.from({ length: 200 }, (_, i) => i + 1));
    // Resolved means on disk: read back without closing.
    const onDisk = readJournal(path);
    expect(onDisk.tornBytes).to.equal(0);
    expect(onDisk.records).to.deep.equal(records);
    await journal.close();
  });

  it('close waits for pending records; appends after close are refused', async () => {
    const journal = Journal.open(path);
    const pending = journal.append({ t: 'run-start', runId: 'r', planPath: 'p', planDigest: 'd', inventoryPath: 'i', waves: [], switches: [] });
    await journal.close();
    await pending;
    expect(readJournal(path).records.map((r) => r.t)).to.deep.equal(['run-start']);
    let refused: unknown = null;
    await journal.append({ t: 'run-end', outcome: 'completed', reason: 'r', counts: { verified: 0, skipped: 0, failed: 0, pending: 0 } }).catch((err: unknown) => (refused = err));
    expect(refused).to.be.instanceOf(Error);
  });

  it('a reopened journal cuts a torn last line and continues the sequence', async () => {
    const first = Journal.open(path);
    await first.append({ t: 'run-start', runId: 'r', planPath: 'p', planDigest: 'd', inventoryPath: 'i', waves: [['a']], switches: [{ name: 'a', address: '127.0.1.1', wave: 0, image: 'x' }] });
    await first.close();
    appendFileSync(path, '{"seq":2,"t":"swi');
    const second = Journal.open(path);
    const record = await second.append({ t: 'switch', name: 'a', phase: 'precheck' });
    await second.close();
    expect(record.seq).to.equal(2);
    expect(readFileSync(path, 'utf8').trim().split('\n')).to.have.length(2);
    expect(readJournal(path).tornBytes).to.equal(0);
  });

  it('the incremental fold of a growing journal equals the fold of the whole', async () => {
    const journal = Journal.open(path);
    const fold = new JournalFold(journal.records);
    await journal.append({ t: 'run-start', runId: 'r', planPath: 'p', planDigest: 'd', inventoryPath: 'i', waves: [['a', 'b']], switches: ['a', 'b'].map((name, i) => ({ name, address: `127.0.1.${i + 1}`, wave: 0, image: 'x' })) });
    expect(fold.state.switches.get('a')!.phase).to.equal(null);
    await journal.append({ t: 'switch', name: 'a', phase: 'precheck' });
    await journal.append({ t: 'switch', name: 'a', phase: 'done', outcome: 'verified', reason: 'ok', verdict: 'verified', hashes: null });
    expect(fold.state.switches.get('a')).to.include({ phase: 'done', outcome: 'verified', attempts: 1 });
    await journal.append({ t: 'switch', name: 'b', phase: 'precheck' });
    await journal.close();
    expect(fold.state).to.deep.equal(foldJournal(readJournal(path).records));
  });
});
