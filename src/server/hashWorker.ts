/**
 * Worker thread that computes the SHA-256 of bytes sent, off the event loop that moves them.
 * Buffers are SharedArrayBuffers registered once, so an update is a message with an id and a
 * length, not a copy. Messages from one port arrive in order, so each transfer's updates are
 * hashed in the order the bytes were sent.
 */
import { createHash, type Hash } from 'node:crypto';
import { parentPort } from 'node:worker_threads';

export type ToHashWorker =
  | { type: 'buffer'; id: number; memory: SharedArrayBuffer }
  | { type: 'update'; transfer: number; id: number; length: number }
  | { type: 'digest'; transfer: number };

export type FromHashWorker = { type: 'released'; id: number } | { type: 'digest'; transfer: number; hex: string };

const buffers = new Map<number, Uint8Array>();
const hashes = new Map<number, Hash>();

parentPort?.on('message', (message: ToHashWorker) => {
  switch (message.type) {
    case 'buffer':
      buffers.set(message.id, new Uint8Array(message.memory));
      return;
    case 'update': {
      let hash = hashes.get(message.transfer);
      if (!hash) hashes.set(message.transfer, (hash = createHash('sha256')));
      hash.update(buffers.get(message.id)!.subarray(0, message.length));
      parentPort!.postMessage({ type: 'released', id: message.id } satisfies FromHashWorker);
      return;
    }
    case 'digest': {
      const hash = hashes.get(message.transfer) ?? createHash('sha256');
      hashes.delete(message.transfer);
      parentPort!.postMessage({ type: 'digest', transfer: message.transfer, hex: hash.digest('hex') } satisfies FromHashWorker);
      return;
    }
  }
});
