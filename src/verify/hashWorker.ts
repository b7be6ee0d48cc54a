/**
 * Hash worker thread (started by WorkerHasher). It hashes batches in the order they arrive and
 * transfers each batch's memory back, so the sender can reuse it.
 */
import { createHash, type Hash } from 'node:crypto';
import { parentPort, workerData } from 'node:worker_threads';
import type { Digests, HashAlgorithm } from './algorithms.js';
import type { HashWorkerReply, HashWorkerRequest } from './hasher.js';

const algorithms = (workerData as { algorithms: HashAlgorithm[] }).algorithms;
let hashes: Hash[] = algorithms.map((a) => createHash(a));
const port = parentPort!;

port.on('message', (message: HashWorkerRequest) => {
  switch (message.op) {
    case 'update': {
      const view = new Uint8Array(message.buffer, 0, message.length);
      for (const hash of hashes) hash.update(view);
      // Hand the memory back (moved, not copied) so the sender can reuse it.
      port.postMessage({ op: 'ack', buffer: message.buffer } satisfies HashWorkerReply, [message.buffer]);
      break;
    }
    case 'digest': {
      const digests: Digests = {};
      algorithms.forEach((algorithm, i) => (digests[algorithm] = hashes[i]!.digest('hex')));
      hashes = algorithms.map((a) => createHash(a));
      port.postMessage({ op: 'digest', digests } satisfies HashWorkerReply);
      break;
    }
    case 'reset':
      hashes = algorithms.map((a) => createHash(a));
      break;
  }
});
