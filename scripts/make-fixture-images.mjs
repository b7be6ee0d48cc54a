// Writes the small deterministic firmware images under fixtures/images.
// They are committed; run this only to regenerate them (same bytes every time).
import { createHash } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', 'fixtures', 'images');
const images = [
  ['cisco/c9300-universalk9.17.09.04a.SPA.bin', 1024 * 1024 + 123],
  ['aruba/ArubaOS-CX_6300_10_13_1000.swi', 768 * 1024],
  ['dell/OS10_10.5.6.0.bin', 256 * 1024 + 7],
  ['cisco/c2960x-universalk9-mz.152-7.E8.bin', 512 * 1024 + 11],
  ['cisco/nxos64-cs.10.3.4a.M.bin', 640 * 1024 + 3],
  ['arista/EOS-4.31.2F.swi', 448 * 1024 + 5],
  ['juniper/junos-arm-32-23.4R2-S2.1.tgz', 384 * 1024 + 9],
  ['hpe/S5130EI-CMW710-R3506P10.ipe', 320 * 1024 + 13],
];

/** Counter-mode SHA-256 stream: deterministic, incompressible bytes. */
function bytes(seed, length) {
  const out = Buffer.alloc(length);
  for (let block = 0, offset = 0; offset < length; block++, offset += 32) {
    createHash('sha256').update(`${seed}:${block}`).digest().copy(out, offset);
  }
  return out;
}

for (const [name, length] of images) {
  const file = join(root, name);
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(file, bytes(name, length));
  console.log(`${name} ${length}`);
}
