import { expect } from 'chai';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { ImageWriter } from '../../src/client/imageWriter.js';
import type { DataFlow } from '../../src/client/ftp.js';
import { InlineHasher, WorkerHasher, type BatchHasher } from '../../src/verify/hasher.js';

const KiB = 1024;

/**
 * Plays a data socket in `onread` mode: every read lands in the same buffer, which is overwritten
 * by the next read; pause() holds reading until resume(). `rogueResumes` resumes the socket from
 * outside now and then, as basic-ftp's pipe() can.
 */
async function feed(writer: ImageWriter, data: Buffer, readBytes: number, options: { rogueResumes?: boolean; bytesPerSecond?: number | null } = {}) {
  const sink = writer.attempt(options.bytesPerSecond ?? null);
  const buffer = Buffer.alloc(readBytes);
  let paused = false;
  let wake: (() => void) | null = null;
  let destroyed: Error | null = null;
  const flow: DataFlow = {
    pause: () => void (paused = true),
    resume: () => {
      paused = false;
      wake?.();
    },
    destroy: (err) => void (destroyed = err),
  };
  sink.receiver.attach(flow);
  let maxPausedReads = 0;
  for (let offset = 0, reads = 0; offset < data.length; reads++) {
    if (paused && options.rogueResumes && reads % 3 === 0) {
      paused = false; // a resume nobody asked for: the next read comes while chunks still wait
      maxPausedReads++;
    }
    while (paused) await new Promise<void>((resolve) => (wake = resolve));
    const n = Math.min(readBytes, data.length - offset);
    data.copy(buffer, 0, offset, offset + n);
    sink.receiver.onData(buffer.subarray(0, n));
    buffer.fill(0xee); // the "next read" overwrites the buffer at once
    offset += n;
    if (reads % 5 === 0) await sleep(0);
  }
  while (paused) await new Promise<void>((resolve) => (wake = resolve));
  sink.close();
  return { destroyed, maxPausedReads };
}

describe('image writer: the direct receive path', function () {
  this.timeout(20_000);
  let dir: string;
  beforeEach(() => (dir = mkdtempSync(join(tmpdir(), 'swfw-writer-'))));
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  const cases: Array<[string, () => BatchHasher]> = [
    ['inline hasher', () => new InlineHasher(['sha256'])],
    ['worker hasher', () => new WorkerHasher(['sha256'], 1)],
  ];
  for (const [kind, makeHasher] of cases) {
    it(`${kind}: a reused read buffer, short batches and rogue resumes still write and hash every byte once, in order`, async function () {
      const data = randomBytes(3 * 1024 * KiB + 777);
      const hasher = makeHasher();
      const path = join(dir, 'image.part');
      const handle = await open(path, 'wx');
      // Tiny batches, two in flight: the receiver runs out of batches all the time.
      const writer = new ImageWriter(handle, hasher, { batchBytes: 64 * KiB, batches: 2, syncEveryBytes: 0 });
      try {
        const { destroyed, maxPausedReads } = await feed(writer, data, 48 * KiB, { rogueResumes: true });
        expect(destroyed).to.equal(null);
        expect(maxPausedReads).to.be.greaterThan(0); // the rogue resumes did happen
        const digests = await writer.finish();
        writer.dispose();
        expect(writer.bytes).to.equal(data.length);
        expect(digests.sha256).to.equal(createHash('sha256').update(data).digest('hex'));
      } finally {
        await handle.close();
        await hasher.close();
      }
      expect(readFileSync(path).equals(data)).to.equal(true);
    });
  }

  it('a rate cap pauses reading, and only the latest hold resumes it', async function () {
    const data = randomBytes(256 * KiB);
    const hasher = new InlineHasher(['sha256']);
    const writer = new ImageWriter(null, hasher, { batchBytes: 64 * KiB, batches: 2, syncEveryBytes: 0 });
    const started = performance.now();
    // 1 MiB/s: 256 KiB takes about 250 ms.
    const { destroyed } = await feed(writer, data, 16 * KiB, { bytesPerSecond: 1024 * KiB, rogueResumes: true });
    const elapsed = performance.now() - started;
    expect(destroyed).to.equal(null);
    const digests = await writer.finish();
    expect(digests.sha256).to.equal(createHash('sha256').update(data).digest('hex'));
    expect(elapsed).to.be.greaterThan(150);
  });
});
