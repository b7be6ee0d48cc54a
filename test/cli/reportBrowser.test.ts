/**
 * The HTML rollout report in a real browser: a real rollout over the switch emulator (one switch
 * failing its login, one already on target, one whose `show version` carries markup), its report
 * rendered by headless chromium with the network off. No console message, no request, the counts
 * and the failure's reason on the page, and a screenshot kept in test-artifacts/.
 */
import { expect } from 'chai';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PROJECT_ROOT } from '../../src/config/loader.js';
import { EmulatedFleet, parseFaults } from '../../src/switches/emulator/index.js';
import { validateInventory } from '../../src/rollout/inventory.js';
import { validatePlan } from '../../src/rollout/plan.js';
import { countOutcomes, writeReports } from '../../src/rollout/index.js';
import { FIXTURE_IMAGES, startTestServer, type TestServer } from '../helpers/testServer.js';
import { testRunner } from '../helpers/rollout.js';
import { freePort } from '../helpers/ports.js';
import { findChromium, renderInChromium } from '../helpers/chromium.js';

const IMAGE = 'cisco/c9300-universalk9.17.09.04a.SPA.bin';
const ENV = { SWFW_SWITCH_PASSWORD: 'report-browser-pass' };
/** What a switch's `show version` could carry: rendered as text, it must never run. */
const HOSTILE_VERSION = "<script>console.error('injected')</script>";
const ARTIFACTS = join(PROJECT_ROOT, 'test-artifacts');

describe('the rollout report in a real browser (headless chromium, network off)', function () {
  this.timeout(120_000);
  const chromium = findChromium();
  let dir: string;

  before(function () {
    if (chromium) return;
    // CI installs chromium (.ci/run): there a missing browser is a failure, never a skip.
    if (process.env['CI']) throw new Error('chromium is not installed, and CI is set: .ci/run installs it (apt-get install chromium)');
    console.log('    skipped: chromium is not installed (apt-get install --no-install-recommends chromium); CI is unset');
    this.skip();
  });
  beforeEach(() => (dir = mkdtempSync(join(tmpdir(), 'swfw-report-browser-'))));
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('the detector sees a control page\'s request and console message (so "none" below means none)', async function () {
    const control = join(dir, 'control.html');
    writeFileSync(control, '<!doctype html><meta charset="utf-8"><title>control</title><p>control page</p><img src="http://203.0.113.9/pixel.png"><script>console.error("control-error")</script>');
    const page = await renderInChromium(chromium!, control);
    expect(page.text).to.include('control page');
    expect(page.requests).to.deep.equal(['http://203.0.113.9/pixel.png']);
    expect(page.console.join('\n')).to.include('control-error');
  });

  it('a real rollout with a failed switch: renders with no console message and no request; counts, reason, escaped switch output; a screenshot', async function () {
    let server: TestServer | null = null;
    let fleet: EmulatedFleet | null = null;
    try {
      // One passive port, free a moment ago: another process (or this server's own control port,
      // bound first on port 0) may take it in between, so a few tries.
      let pasv = 0;
      for (let attempt = 1; !server; attempt++) {
        pasv = await freePort();
        server = await startTestServer(`${pasv}-${pasv}`).catch((err: unknown) => {
          if (attempt >= 5) throw err;
          return null;
        });
      }
      fleet = await EmulatedFleet.start({
        count: 5,
        sshPort: await freePort(),
        firstOctet: 230,
        password: ENV.SWFW_SWITCH_PASSWORD,
        // emu-002 already runs the target; emu-003 refuses the password; emu-004 prints markup as its version.
        faults: parseFaults(`2:version=17.09.04a,3:badpass,4:version=${HOSTILE_VERSION}`, 5),
        ftpTimeoutMs: 5000,
      });
      const { switches: inventory, problems } = validateInventory(fleet.inventory({ username: 'admin', passwordEnv: 'SWFW_SWITCH_PASSWORD' }), dir);
      expect(problems.list).to.deep.equal([]);
      const { plan } = validatePlan(
        { targets: { 'cisco-ios-xe': IMAGE }, waves: { canary: 1, percent: [50] }, concurrency: 2, server: { address: '127.0.0.1', images: FIXTURE_IMAGES, pasvRange: `${pasv}-${pasv}` }, timeouts: { sshSeconds: 3, pullSeconds: 30 } },
        dir,
      );
      const summary = await testRunner(join(dir, 'state'), server, { plan: plan!, inventory, env: ENV }).run();
      const outcomes = Object.fromEntries([...summary.state.switches.values()].map((s) => [s.name, s.outcome]));
      expect(outcomes).to.deep.equal({ 'emu-001': 'verified', 'emu-002': 'skipped', 'emu-003': 'failed', 'emu-004': 'verified', 'emu-005': 'verified' });
      expect(summary.state.switches.get('emu-004')!.precheck!.version).to.equal(HOSTILE_VERSION);
      const failedReason = summary.state.switches.get('emu-003')!.reason!;
      const reports = await writeReports(join(dir, 'reports'), summary.state);

      mkdirSync(ARTIFACTS, { recursive: true });
      const screenshot = join(ARTIFACTS, 'rollout-report.png');
      rmSync(screenshot, { force: true });
      copyFileSync(reports.html, join(ARTIFACTS, 'rollout-report.html'));
      const page = await renderInChromium(chromium!, reports.html, { screenshot });

      expect(page.console, 'console messages').to.deep.equal([]);
      expect(page.requests, 'requests the page made').to.deep.equal([]);
      const counts = countOutcomes(summary.state.switches.values());
      expect(counts).to.deep.equal({ verified: 3, skipped: 1, failed: 1, pending: 0 });
      expect(page.text).to.include(`Rollout completed: 3 verified, 1 failed, 1 skipped, 0 pending of 5 switches.`);
      expect(page.text).to.match(/Failed switches \(1\) .*emu-003/);
      expect(page.text).to.include(failedReason);
      // The switch's markup is on the page as text, and no element came of it.
      expect(page.text).to.include(HOSTILE_VERSION);
      expect(page.dom).not.to.match(/<script/i);
      // Who ran it, and the image with its version, in the header.
      expect(page.text).to.match(/Run by \S+ on \S+/);
      expect(page.text).to.include(`${IMAGE} — version 17.09.04a`);

      const png = readFileSync(screenshot);
      expect(statSync(screenshot).size).to.be.greaterThan(10_000);
      expect(png.subarray(0, 8).toString('hex')).to.equal('89504e470d0a1a0a');
      // IHDR: the window size asked for.
      expect([png.readUInt32BE(16), png.readUInt32BE(20)]).to.deep.equal([1400, 2000]);
    } finally {
      await fleet?.stop();
      await server?.stop();
    }
  });
});
