import { expect } from 'chai';
import { judgeEvidence, type EvidenceInput } from '../../src/verify/evidence.js';

const GOOD = 'a'.repeat(64);
const BAD = 'b'.repeat(64);
const OTHER = 'c'.repeat(64);
const SIZE = 1000;
const reference = { digests: { sha256: GOOD, md5: '1'.repeat(32) }, size: SIZE };
const wholeServer = (sha256: string, bytes = SIZE) => ({ sha256, bytes, offset: 0, result: 'complete' as const });

function verdict(input: EvidenceInput) {
  return judgeEvidence(input);
}

describe('evidence verdict (catalog, server record, client hash)', function () {
  it('verified: all three agree', function () {
    const report = verdict({ reference, server: wholeServer(GOOD), client: { digests: { sha256: GOOD }, bytes: SIZE } });
    expect(report).to.include({ verdict: 'verified', ok: true, serverEvidenceUsed: true });
    expect(report.algorithms).to.deep.equal(['sha256']);
    expect(report.notes).to.deep.equal([]);
  });

  it('verified on every algorithm in common, and only those', function () {
    const report = verdict({ reference, client: { digests: { sha256: GOOD, md5: '1'.repeat(32) }, bytes: SIZE } });
    expect(report.verdict).to.equal('verified');
    expect(report.algorithms).to.deep.equal(['sha256', 'md5']);
  });

  it('truncated: fewer bytes arrived than the image has', function () {
    const report = verdict({ reference, server: wholeServer(GOOD), client: { digests: { sha256: BAD }, bytes: SIZE - 1 } });
    expect(report.verdict).to.equal('truncated');
    expect(report.ok).to.equal(false);
    expect(report.reason).to.include(`${SIZE - 1} of ${SIZE}`);
  });

  it('truncated also when the server record is of an aborted transfer', function () {
    const report = verdict({
      reference,
      server: { sha256: OTHER, bytes: 400, offset: 0, result: 'aborted' },
      client: { digests: { sha256: OTHER }, bytes: 400 },
    });
    expect(report.verdict).to.equal('truncated');
    expect(report.serverEvidenceUsed).to.equal(false);
  });

  it('truncated uses the server byte count when the reference has no size', function () {
    const report = verdict({
      reference: { digests: { sha256: GOOD }, size: null },
      server: wholeServer(GOOD),
      client: { digests: { sha256: BAD }, bytes: 10 },
    });
    expect(report.verdict).to.equal('truncated');
  });

  it('corrupted-in-transit: the server sent the catalog bytes, different ones arrived', function () {
    const report = verdict({ reference, server: wholeServer(GOOD), client: { digests: { sha256: BAD }, bytes: SIZE } });
    expect(report.verdict).to.equal('corrupted-in-transit');
  });

  it('wrong-image-served: the server sent bytes that do not match the catalog', function () {
    const report = verdict({ reference, server: wholeServer(BAD), client: { digests: { sha256: BAD }, bytes: SIZE } });
    expect(report.verdict).to.equal('wrong-image-served');
  });

  it('wrong-image-served takes precedence over a short count when the server completed a different image', function () {
    const report = verdict({ reference, server: wholeServer(BAD, 500), client: { digests: { sha256: BAD }, bytes: 500 } });
    expect(report.verdict).to.equal('wrong-image-served');
  });

  it('repository-drift: the image on disk no longer matches its catalog entry', function () {
    const report = verdict({
      reference,
      repository: { digests: { sha256: BAD }, size: SIZE },
      server: wholeServer(BAD),
      client: { digests: { sha256: BAD }, bytes: SIZE },
    });
    expect(report.verdict).to.equal('repository-drift');
  });

  it('repository-drift by size alone', function () {
    const report = verdict({ reference, repository: { digests: {}, size: SIZE + 5 }, client: { digests: { sha256: BAD }, bytes: SIZE + 5 } });
    expect(report.verdict).to.equal('repository-drift');
  });

  it('checksum-mismatch: wrong bytes and no whole-image server record to place the fault', function () {
    const resumed = { sha256: GOOD, bytes: 600, offset: 400, result: 'complete' as const };
    const report = verdict({ reference, server: resumed, client: { digests: { sha256: BAD }, bytes: SIZE } });
    expect(report.verdict).to.equal('checksum-mismatch');
    expect(report.serverEvidenceUsed).to.equal(false);
    expect(verdict({ reference, client: { digests: { sha256: BAD }, bytes: SIZE } }).verdict).to.equal('checksum-mismatch');
  });

  it('a server record with hashing off is not evidence', function () {
    const report = verdict({ reference, server: { sha256: null, bytes: SIZE, offset: 0, result: 'complete' }, client: { digests: { sha256: BAD }, bytes: SIZE } });
    expect(report.verdict).to.equal('checksum-mismatch');
  });

  it('a mismatch on any one algorithm fails (md5 wrong, sha256 right)', function () {
    const report = verdict({ reference, client: { digests: { sha256: GOOD, md5: '2'.repeat(32) }, bytes: SIZE } });
    expect(report.verdict).to.equal('checksum-mismatch');
    expect(report.reason).to.include('md5');
  });

  it('unverified: no reference, or no algorithm in common', function () {
    expect(verdict({ reference: null, client: { digests: { sha256: GOOD }, bytes: 1 } }).verdict).to.equal('unverified');
    const report = verdict({ reference: { digests: { sha512: 'f'.repeat(128) }, size: null }, client: { digests: { sha256: GOOD }, bytes: 1 } });
    expect(report).to.include({ verdict: 'unverified', ok: false });
  });

  it('verified copy with a drifted repository or a foreign server record gets notes, not a failure', function () {
    const report = verdict({
      reference,
      repository: { digests: { sha256: BAD }, size: SIZE },
      server: wholeServer(OTHER),
      client: { digests: { sha256: GOOD }, bytes: SIZE },
    });
    expect(report.verdict).to.equal('verified');
    expect(report.notes).to.have.length(2);
  });

  it('is pure: the same input gives the same report and the input is not modified', function () {
    const input: EvidenceInput = { reference, server: wholeServer(GOOD), client: { digests: { sha256: BAD }, bytes: SIZE } };
    const copy = JSON.parse(JSON.stringify(input)) as EvidenceInput;
    expect(judgeEvidence(input)).to.deep.equal(judgeEvidence(input));
    expect(input).to.deep.equal(copy);
  });
});
