/**
 * The installable package: `npm pack` builds a tarball (prepack builds dist/), and
 * `npm install -g` of that tarball into a temporary prefix gives a working `swfw` on PATH, with
 * no test fixtures, tests, benchmark or dev dependencies in it.
 */
import { expect } from 'chai';
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { PROJECT_ROOT } from '../../src/config/loader.js';
import { CHECKOUT_READABLE_BY_NOBODY, CliProcess } from '../helpers/cli.js';
import { FIXTURE_IMAGES } from '../helpers/testServer.js';
import { freePort } from '../helpers/ports.js';

const DEV_DEPENDENCIES = ['mocha', 'typescript', 'chai', '@types/mocha', '@types/chai', '@types/ssh2'];

describe('the npm package (npm pack, npm install -g)', function () {
  this.timeout(300_000);
  let scratch: string;
  let tarball: string;
  let prefix: string;
  // The installed `swfw` runs with this test's node first on PATH (its shebang is /usr/bin/env node).
  const env = () => ({ PATH: `${join(prefix, 'bin')}:${dirname(process.execPath)}:${process.env['PATH'] ?? '/usr/bin:/bin'}`, HOME: scratch });
  const run = (command: string, args: string[], cwd: string) => {
    const result = spawnSync(command, args, { cwd, env: { ...process.env, ...env() }, encoding: 'utf8', timeout: 240_000 });
    if (result.status !== 0) throw new Error(`${command} ${args.join(' ')} failed (${result.status ?? result.signal}):\n${result.stdout}\n${result.stderr}`);
    return result.stdout;
  };

  before(function () {
    scratch = mkdtempSync(join(tmpdir(), 'swfw-package-'));
    // Started as root, the installed serve drops to nobody, who must reach its code here.
    chmodSync(scratch, 0o755);
    prefix = join(scratch, 'prefix');
    const npmCache = join(process.env['HOME'] ?? '/root', '.npm');
    // The user's npm cache (HOME is the scratch directory below): --prefer-offline installs from
    // it when it holds the dependencies, from the registry otherwise.
    const cache = ['--cache', npmCache, '--prefer-offline', '--no-audit', '--no-fund'];
    const packed = run('npm', ['pack', '--pack-destination', scratch, '--cache', npmCache], PROJECT_ROOT).trim().split('\n').pop()!;
    tarball = join(scratch, packed);
    run('npm', ['install', '-g', '--prefix', prefix, ...cache, tarball], scratch);
  });

  after(() => rmSync(scratch, { recursive: true, force: true }));

  it('holds the built CLI, its default config, the units and the README, and no fixtures, tests, benchmark or source maps', function () {
    const files = spawnSync('tar', ['tzf', tarball], { encoding: 'utf8' }).stdout.trim().split('\n').map((f) => f.replace(/^package\//, ''));
    expect(files).to.include.members(['package.json', 'README.md', 'dist/src/cli/main.js', 'config/default.json', 'contrib/swfw.service']);
    const strays = files.filter((f) => /^(fixtures|test|bench|scripts|src|docs)\/|^dist\/(test|bench)\/|\.map$|\.ts$/.test(f));
    expect(strays).to.deep.equal([]);
  });

  it('installs `swfw` on PATH, without dev dependencies, and it runs', async function () {
    const installed = join(prefix, 'lib', 'node_modules', 'swfw');
    const modules = join(installed, 'node_modules');
    expect(DEV_DEPENDENCIES.filter((name) => existsSync(join(modules, name)))).to.deep.equal([]);
    expect(readdirSync(installed).sort()).to.deep.equal(['README.md', 'config', 'contrib', 'dist', 'node_modules', 'package.json']);
    const swfw = join(prefix, 'bin', 'swfw');
    expect(run(swfw, ['--version'], scratch).trim()).to.equal('0.1.0');
    const help = run(swfw, ['serve', '--help'], scratch);
    expect(help).to.include('--images <dir>');
    expect(help).to.include('--metrics <host:port>');

    // And it serves, from the installed copy alone (its config/default.json and dist/).
    const port = await freePort();
    const serve = new CliProcess(
      spawn(swfw, ['serve', '--host', '127.0.0.1', '--port', String(port), '--pasv-range', '44990-44991', '--images', FIXTURE_IMAGES, ...(CHECKOUT_READABLE_BY_NOBODY ? [] : ['--run-as', 'root'])], {
        cwd: scratch,
        env: { ...env(), SWFW_PASSWORD: 'package-test-password' },
        stdio: ['ignore', 'pipe', 'pipe'],
      }),
    );
    try {
      await serve.waitFor(/swfw serving .* on 127\.0\.0\.1:\d+/);
    } finally {
      const result = await serve.stop('SIGTERM');
      expect(result.code, result.stderr).to.equal(0);
    }
  });
});
