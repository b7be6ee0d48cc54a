/**
 * The systemd units in contrib/: systemd's own checker accepts them with no warning, and what
 * they promise holds when run: `swfw serve` as an unprivileged user whose only capability is
 * CAP_NET_BIND_SERVICE (the unit's AmbientCapabilities and CapabilityBoundingSet) binds port 21
 * and serves, inside a network namespace of the test's own so port 21 is free.
 */
import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PROJECT_ROOT } from '../../src/config/loader.js';
import { CHECKOUT_READABLE_BY_NOBODY, CLI, startCli } from '../helpers/cli.js';
import { IP } from '../helpers/netns.js';
import { SitesLab } from '../helpers/sitesLab.js';
import { FIXTURE_IMAGES } from '../helpers/testServer.js';

const UNITS = ['swfw.service', 'swfw-agent@.service'];
const INSTALLED_SWFW = '/usr/local/bin/swfw';

describe('systemd units (contrib/)', function () {
  this.timeout(30_000);
  let dir: string;
  beforeEach(() => (dir = mkdtempSync(join(tmpdir(), 'swfw-units-'))));
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('systemd-analyze verify accepts both units with no warning (ExecStart pointed at this checkout)', function () {
    if (spawnSync('systemd-analyze', ['--version']).error) {
      console.log('      skipped: systemd-analyze is not installed');
      this.skip();
    }
    for (const unit of UNITS) {
      const text = readFileSync(join(PROJECT_ROOT, 'contrib', unit), 'utf8');
      // verify checks that the command exists: the installed path is replaced by this checkout's.
      expect(text, unit).to.include(`ExecStart=${INSTALLED_SWFW} `);
      writeFileSync(join(dir, unit), text.replace(`ExecStart=${INSTALLED_SWFW} `, `ExecStart=${process.execPath} ${CLI} `));
    }
    copyFileSync(join(dir, 'swfw-agent@.service'), join(dir, 'swfw-agent@paris.service'));
    const result = spawnSync('systemd-analyze', ['verify', '--man=no', join(dir, 'swfw.service'), join(dir, 'swfw-agent@paris.service')], { encoding: 'utf8' });
    expect(result.status, result.stderr).to.equal(0);
    expect(result.stderr.trim()).to.equal('');
  });

  it("the unit's promise: serve as an unprivileged user with only CAP_NET_BIND_SERVICE binds 21 and serves an image", async function () {
    if (process.geteuid?.() !== 0 || !CHECKOUT_READABLE_BY_NOBODY || spawnSync('setpriv', ['--version']).error) {
      console.log('      skipped: needs root, setpriv, and a checkout the user "nobody" can read (this one is not)');
      this.skip();
    }
    const unit = readFileSync(join(PROJECT_ROOT, 'contrib', 'swfw.service'), 'utf8');
    expect(unit).to.match(/^User=swfw$/m).and.match(/^AmbientCapabilities=CAP_NET_BIND_SERVICE$/m).and.match(/^CapabilityBoundingSet=CAP_NET_BIND_SERVICE$/m).and.match(/^NoNewPrivileges=yes$/m);
    const lab = new SitesLab(['svc']).create();
    try {
      const setpriv = ['setpriv', '--reuid=nobody', '--regid=nogroup', '--clear-groups', '--inh-caps=+net_bind_service', '--ambient-caps=+net_bind_service', '--bounding-set=-all,+net_bind_service', '--no-new-privs'];
      const serve = startCli(['serve', '--images', FIXTURE_IMAGES, '--host', '127.0.0.1'], { env: { SWFW_PASSWORD: 'unit-test' }, wrapper: [IP, 'netns', 'exec', lab.ns('svc'), ...setpriv] });
      try {
        await serve.waitFor(/^swfw serving .* on 127\.0\.0\.1:21, passive 63006-63010\n/m);
        const status = readFileSync(`/proc/${serve.child.pid}/status`, 'utf8');
        expect(/^Uid:\s+(\d+)/m.exec(status)![1]).to.equal('65534');
        // Bit 10 is CAP_NET_BIND_SERVICE: the only effective capability.
        expect(/^CapEff:\s+(\w+)/m.exec(status)![1]).to.equal('0000000000000400');
        const got = spawnSync(IP, ['netns', 'exec', lab.ns('svc'), 'curl', '-sS', '-o', '/dev/null', '-w', '%{http_code}', 'ftp://switch:unit-test@127.0.0.1/dell/OS10_10.5.6.0.bin'], { encoding: 'utf8' });
        expect(got.stdout, got.stderr).to.equal('226');
      } finally {
        await serve.stop('SIGTERM');
      }
    } finally {
      await lab.destroy();
    }
  });
});
