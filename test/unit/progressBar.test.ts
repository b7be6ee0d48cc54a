import { expect } from 'chai';
import { formatProgress } from '../../src/cli/progressBar.js';
import { formatBytes, formatDuration } from '../../src/core/format.js';

describe('pull progress line', function () {
  it('formats bytes, durations, rate and ETA', function () {
    expect(formatBytes(0)).to.equal('0 B');
    expect(formatBytes(1536)).to.equal('1.5 KiB');
    expect(formatBytes(1024 ** 3)).to.equal('1.0 GiB');
    expect(formatBytes(500 * 1024 ** 2)).to.equal('500 MiB');
    expect(formatDuration(4_400)).to.equal('4s');
    expect(formatDuration(23)).to.equal('0.02s');
    expect(formatDuration(0)).to.equal('0s');
    expect(formatDuration(75_000)).to.equal('1m15s');
    expect(formatDuration(3_700_000)).to.equal('1h01m');
    const line = formatProgress({ bytes: 512 * 1024 ** 2, totalBytes: 1024 ** 3, bytesPerSecond: 256 * 1024 ** 2, etaMs: 2000, attempt: 1 }, 10);
    expect(line).to.equal('[#####-----]  50% 512 MiB / 1.0 GiB 256 MiB/s ETA 2s');
  });

  it('without a known total shows bytes and rate only; later attempts are marked', function () {
    expect(formatProgress({ bytes: 2048, totalBytes: null, bytesPerSecond: 1024, etaMs: null, attempt: 2 })).to.equal('2.0 KiB 1.0 KiB/s (attempt 2)');
    expect(formatProgress({ bytes: 0, totalBytes: 100, bytesPerSecond: 0, etaMs: null, attempt: 1 }, 4)).to.equal('[----]   0% 0 B / 100 B --/s ETA --');
  });
});
