import { expect } from 'chai';
import { setTimeout as sleep } from 'node:timers/promises';
import { MAX_ACTIVE_LINES, ProgressRenderer, ProgressTracker, RATE_WINDOW_MS, renderProgress, transferRate, type ProgressState } from '../../src/rollout/progress.js';

const MiB = 1024 ** 2;
const ESC = '\x1b';

function fakeStream(isTTY: boolean, columns = 80) {
  const chunks: string[] = [];
  return { isTTY, columns, chunks, write: (text: string) => chunks.push(text) };
}

function active(label: string, bytes: number, expectedBytes: number, rate: number, now: number) {
  return { label, path: `/images/${label}.bin`, bytes, expectedBytes, samples: [{ at: now - 1000, bytes: bytes - rate }, { at: now, bytes }] };
}

describe('rollout progress', function () {
  describe('renderProgress', function () {
    it('shows overall counts, bytes, aggregate rate and ETA, and one line per active switch', function () {
      const now = 10_000;
      const state: ProgressState = {
        total: 10,
        done: 3,
        failed: 1,
        sentBytes: 200 * MiB,
        totalBytes: 400 * MiB,
        active: [active('sw-01', 60 * MiB, 100 * MiB, 2 * MiB, now), active('core-switch', 40 * MiB, 100 * MiB, 2 * MiB, now)],
      };
      const lines = renderProgress(state, now, 200);
      expect(lines).to.have.length(3);
      // 200 MiB left at 4 MiB/s: 50 s.
      expect(lines[0]).to.equal('3/10 switches done, 1 failed, 2 transferring · 200 MiB / 400 MiB · 4.0 MiB/s · ETA 50s');
      expect(lines[1]).to.equal('  sw-01       [######----]  60% 60.0 MiB / 100 MiB 2.0 MiB/s  /images/sw-01.bin');
      expect(lines[2]).to.equal('  core-switch [####------]  40% 40.0 MiB / 100 MiB 2.0 MiB/s  /images/core-switch.bin');
    });

    it('has no ETA without a rate or a known total, and 0s when nothing is left', function () {
      const base: ProgressState = { total: 2, done: 0, failed: 0, sentBytes: 0, totalBytes: 10 * MiB, active: [] };
      expect(renderProgress(base, 0, 200)[0]).to.equal('0/2 switches done, 0 transferring · 0 B / 10.0 MiB · --/s · ETA --');
      expect(renderProgress({ ...base, totalBytes: null, sentBytes: 1536 }, 0, 200)[0]).to.contain('1.5 KiB sent · --/s · ETA --');
      expect(renderProgress({ ...base, done: 2, sentBytes: 10 * MiB }, 0, 200)[0]).to.contain('ETA 0s');
    });

    it('measures rates over recent samples and lets a stalled transfer fall', function () {
      const samples = [{ at: 0, bytes: 0 }, { at: 2000, bytes: 4 * MiB }];
      expect(transferRate(samples, 2000)).to.equal(2 * MiB);
      expect(transferRate(samples, 4000)).to.equal(MiB);
      expect(transferRate(samples.slice(0, 1), 4000)).to.equal(0);
    });

    it('shows at most MAX_ACTIVE_LINES per-switch lines and then "+K more"', function () {
      const now = 1000;
      const many = Array.from({ length: MAX_ACTIVE_LINES + 5 }, (_, i) => active(`sw-${i}`, MiB, 2 * MiB, MiB, now));
      const lines = renderProgress({ total: 20, done: 0, failed: 0, sentBytes: 0, totalBytes: null, active: many }, now, 200);
      expect(lines).to.have.length(1 + MAX_ACTIVE_LINES);
      expect(lines.at(-1)).to.equal(`  +6 more transferring`);
      expect(lines[0]).to.contain(`${MAX_ACTIVE_LINES + 5} transferring`);
      // Exactly MAX_ACTIVE_LINES transfers fit without a "more" line.
      expect(renderProgress({ total: 20, done: 0, failed: 0, sentBytes: 0, totalBytes: null, active: many.slice(0, MAX_ACTIVE_LINES) }, now, 200)).to.have.length(1 + MAX_ACTIVE_LINES);
    });

    it('cuts every line below the width and shortens long labels', function () {
      const now = 1000;
      const state: ProgressState = { total: 1, done: 0, failed: 0, sentBytes: 0, totalBytes: 100 * MiB, active: [active('a-very-long-switch-name-indeed.example.net', MiB, 2 * MiB, MiB, now)] };
      for (const width of [30, 50, 80]) {
        for (const line of renderProgress(state, now, width)) expect(line.length).to.be.at.most(width - 1);
      }
      const [, line] = renderProgress(state, now, 200);
      expect(line).to.match(/^ {2}a-very-long-switch-… \[/);
      expect(renderProgress(state, now, 40)[0]).to.match(/…$/);
    });
  });

  describe('ProgressTracker', function () {
    const switches = [
      { name: 'sw1', address: '10.0.0.1', plannedBytes: 100 },
      { name: 'sw2', address: '10.0.0.2', plannedBytes: 100 },
      { name: 'sw3', address: '10.0.0.3', plannedBytes: 100, outcome: 'verified' as const },
    ];

    it('maps server transfer events to switches by client address', function () {
      const t = new ProgressTracker(switches);
      t.transferProgress({ client: '10.0.0.2', path: '/img.bin', bytes: 0, expectedBytes: 80 }, 0);
      t.transferProgress({ client: '10.0.0.2', path: '/img.bin', bytes: 40, expectedBytes: 80 }, 1000);
      t.transferProgress({ client: '192.0.2.9', path: '/other.bin', bytes: 5, expectedBytes: 10 }, 1000);
      let s = t.state();
      expect(s.active.map((a) => a.label)).to.deep.equal(['sw2', '192.0.2.9']);
      expect(transferRate(s.active[0]!.samples, 1000)).to.equal(40);
      // sw1 planned 100, sw2 sends 80, sw3 was done before (0), the stranger 10.
      expect(s).to.include({ total: 3, done: 1, failed: 0, sentBytes: 45, totalBytes: 190 });
      t.transferEnded({ client: '10.0.0.2', bytes: 80 });
      t.switchDone('sw2', 'verified');
      t.switchDone('sw1', 'failed');
      s = t.state();
      expect(s).to.include({ done: 3, failed: 1, sentBytes: 85, totalBytes: 90 });
      expect(s.active.map((a) => a.label)).to.deep.equal(['192.0.2.9']);
      expect(t.addressOf('sw1')).to.equal('10.0.0.1');
    });

    it('keeps only the recent samples for the rate', function () {
      const t = new ProgressTracker(switches);
      for (let at = 0; at <= 3 * RATE_WINDOW_MS; at += 1000) t.transferProgress({ client: '10.0.0.1', path: '/img.bin', bytes: at, expectedBytes: 1e9 }, at);
      const samples = t.state().active[0]!.samples;
      expect(samples[0]!.at).to.be.at.least(2 * RATE_WINDOW_MS - 1000);
      expect(transferRate(samples, 3 * RATE_WINDOW_MS)).to.equal(1000);
    });
  });

  describe('ProgressRenderer', function () {
    it('redraws in place on a TTY: cursor up and clear line over the previous lines', function () {
      const stream = fakeStream(true);
      let lines = ['overall', 'sw1 line'];
      const r = new ProgressRenderer(stream, () => lines, { now: () => 0 });
      r.tick();
      expect(stream.chunks).to.deep.equal([], 'nothing changed yet');
      r.update();
      r.tick();
      r.tick();
      expect(stream.chunks).to.deep.equal(['overall\nsw1 line']);
      lines = ['overall 2'];
      r.update();
      r.tick();
      expect(stream.chunks[1]).to.equal(`\r${ESC}[2K${ESC}[1A${ESC}[2Koverall 2`);
      r.print('sw1: verified\n');
      expect(stream.chunks[2]).to.equal(`\r${ESC}[2Ksw1: verified\noverall 2`);
      r.stop();
      expect(stream.chunks[3]).to.equal(`\r${ESC}[2K`);
      expect(stream.chunks).to.have.length(4);
    });

    it('prints messages to another stream between erasing and redrawing', function () {
      const stream = fakeStream(true);
      const out = fakeStream(false);
      const r = new ProgressRenderer(stream, () => ['a', 'b', 'c'], { now: () => 0 });
      r.update();
      r.tick();
      r.print('wave 1\n', out);
      expect(out.chunks).to.deep.equal(['wave 1\n']);
      expect(stream.chunks.slice(1)).to.deep.equal([`\r${ESC}[2K${ESC}[1A${ESC}[2K${ESC}[1A${ESC}[2K`, 'a\nb\nc']);
      r.stop();
    });

    it('redraws from its own timer at most every interval and leaves no timer behind', async function () {
      const stream = fakeStream(true, 40);
      let widths: number[] = [];
      const r = new ProgressRenderer(stream, (_now, width) => (widths.push(width), ['x']), { intervalMs: 20 });
      r.start();
      r.start();
      for (let i = 0; i < 10; i++) {
        r.update();
        await sleep(5);
      }
      r.stop();
      expect(widths.length).to.be.within(1, 4);
      expect(widths[0]).to.equal(40);
      widths = [];
      r.update();
      await sleep(50);
      expect(widths).to.deep.equal([], 'no redraw after stop');
    });

    it('writes nothing of its own when the stream is not a TTY', async function () {
      const stream = fakeStream(false);
      const r = new ProgressRenderer(stream, () => ['never'], { intervalMs: 5 });
      r.start();
      r.update();
      r.tick();
      await sleep(20);
      r.print('sw1: verified\n');
      r.stop();
      expect(r.enabled).to.equal(false);
      expect(stream.chunks).to.deep.equal(['sw1: verified\n']);
    });
  });
});
