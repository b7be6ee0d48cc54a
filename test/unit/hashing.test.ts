import { expect } from 'chai';
import { createHash, randomBytes } from 'node:crypto';
import { InlineHasher, WorkerHasher, planHashThreads, type BatchHasher } from '../../src/verify/hasher.js';
import { parseHexDigest, withSha256, HASH_ALGORITHMS, type HashAlgorithm } from '../../src/verify/algorithms.js';

function reference(data: Buffer, algorithms: readonly HashAlgorithm[]): Record<string, string> {
  return Object.fromEntries(algorithms.map((a) => [a, createHash(a).update(data).digest('hex')]));
}

/** Feeds `data` through the hasher in batches of `batchBytes`, reusing two batches like the pull does. */
async function feed(hasher: BatchHasher, data: Buffer, batchBytes: number): Promise<void> {
  const pending: Array<Promise<Buffer>> = [Promise.resolve(hasher.allocate(batchBytes)), Promise.resolve(hasher.allocate(batchBytes))];
  for (let offset = 0, i = 0; offset < data.length; offset += batchBytes, i++) {
    const batch = await pending[i % 2]!;
    const length = data.copy(batch, 0, offset, Math.min(data.length, offset + batchBytes));
    pending[i % 2] = hasher.update(batch, length);
  }
  await Promise.all(pending);
}

describe('one-pass multi-hash', function () {
  const data = randomBytes(3 * 1024 * 1024 + 12345);
  const all = [...HASH_ALGORITHMS];

  const kinds = [
    { kind: 'inline', make: (a: readonly HashAlgorithm[]): BatchHasher => new InlineHasher(a) },
    { kind: 'worker', make: (a: readonly HashAlgorithm[]): BatchHasher => new WorkerHasher(a, 2) },
  ];
  for (const { kind, make } of kinds) {
    it(`${kind}: every algorithm matches node:crypto over odd batch boundaries`, async function () {
      const hasher = make(all);
      try {
        for (const batchBytes of [1, 4096 + 3, 1024 * 1024]) {
          const sample = batchBytes === 1 ? data.subarray(0, 2000) : data;
          await feed(hasher, sample, batchBytes);
          expect(await hasher.digest(), `batch ${batchBytes}`).to.deep.equal(reference(sample, all));
        }
      } finally {
        await hasher.close();
      }
    });

    it(`${kind}: digest() starts over; reset() forgets; empty input has the empty digest`, async function () {
      const hasher = make(['sha256', 'md5']);
      try {
        expect(await hasher.digest()).to.deep.equal(reference(Buffer.alloc(0), ['sha256', 'md5']));
        await feed(hasher, data.subarray(0, 5000), 1000);
        hasher.reset();
        await feed(hasher, data.subarray(5000, 9000), 1000);
        expect(await hasher.digest()).to.deep.equal(reference(data.subarray(5000, 9000), ['sha256', 'md5']));
        await feed(hasher, data.subarray(0, 10), 10);
        expect(await hasher.digest()).to.deep.equal(reference(data.subarray(0, 10), ['sha256', 'md5']));
      } finally {
        await hasher.close();
      }
    });
  }

  it('the worker hasher moves batches (no copy), refuses one that shares its memory, and fails cleanly once closed', async function () {
    const hasher = new WorkerHasher(['sha256']);
    try {
      const batch = hasher.allocate(1000);
      batch.fill(7);
      const back = await hasher.update(batch, 1000);
      expect(batch.length, 'moved to the worker: the sender view is detached').to.equal(0);
      expect(back.length).to.equal(1000);
      expect(back.every((b) => b === 7)).to.equal(true);
      expect(await hasher.digest()).to.deep.equal({ sha256: createHash('sha256').update(Buffer.alloc(1000, 7)).digest('hex') });
      let error: unknown = null;
      await hasher.update(Buffer.from('pooled'), 6).catch((err: unknown) => (error = err));
      expect(error).to.be.instanceOf(TypeError);
    } finally {
      await hasher.close();
    }
    await hasher.close();
    let closed: unknown = null;
    await hasher.digest().catch((err: unknown) => (closed = err));
    expect(String(closed)).to.include('closed');
  });

  it('splits algorithms over threads by cost (most expensive first, least loaded thread)', function () {
    expect(planHashThreads(['sha256'], 2)).to.deep.equal([['sha256']]);
    expect(planHashThreads(['sha256', 'md5', 'sha512'], 2)).to.deep.equal([['sha512'], ['md5', 'sha256']]);
    expect(planHashThreads(['sha256', 'md5', 'sha512'], 1)).to.deep.equal([['sha512', 'md5', 'sha256']]);
    expect(planHashThreads(['sha256', 'md5'], 8)).to.deep.equal([['md5'], ['sha256']]);
  });

  it('parses published digests: case, spaces and an algo: prefix; rejects wrong length or non-hex', function () {
    expect(parseHexDigest('md5', ' MD5:ABCDEF0123456789ABCDEF0123456789 ')).to.equal('abcdef0123456789abcdef0123456789');
    expect(parseHexDigest('md5', 'abc')).to.deep.equal({ problem: 'md5 must be 32 hex digits, got 3' });
    expect(parseHexDigest('sha256', 'z'.repeat(64))).to.have.property('problem');
    expect(withSha256(['md5', 'sha512', 'md5'])).to.deep.equal(['sha256', 'md5', 'sha512']);
  });
});
