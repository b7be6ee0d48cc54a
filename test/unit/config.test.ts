import { expect } from 'chai';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadServerConfig } from '../../src/config/loader.js';
import { ConfigError } from '../../src/core/errors.js';

function problems(fn: () => unknown): string[] {
  try {
    fn();
  } catch (err) {
    if (err instanceof ConfigError) return err.problems.map((p) => `${p.path}: ${p.message}`);
    throw err;
  }
  throw new Error('expected a ConfigError');
}

describe('server config', function () {
  let dir: string;
  beforeEach(() => (dir = mkdtempSync(join(tmpdir(), 'swfw-config-'))));
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('defaults come from config/default.json and match the documented ones', function () {
    const config = loadServerConfig({ env: {} });
    expect(config).to.include({
      host: '0.0.0.0',
      port: 21,
      pasvAddress: null,
      anonymous: false,
      activeMode: false,
      pasvWaitMs: 20_000,
      idleTimeoutMs: 300_000,
      dataTimeoutMs: 60_000,
      maxPerIp: 8,
      maxConnections: 64,
      requireTls: false,
      hashSentBytes: 'per-version',
      logFile: null,
      images: '/srv/firmware',
    });
    expect(config.pasvRange).to.deep.equal({ min: 63006, max: 63010 });
    expect(config.accounts.map((a) => [a.user, a.passwordEnv])).to.deep.equal([['switch', 'SWFW_PASSWORD']]);
    expect(Object.isFrozen(config)).to.equal(true);
  });

  it('layers file, then env, then flags', function () {
    writeFileSync(join(dir, 'c.json'), JSON.stringify({ port: 2121, idleTimeout: 10, images: 'repo' }));
    const config = loadServerConfig({
      configFile: join(dir, 'c.json'),
      env: { SWFW_PORT: '2122', SWFW_MAX_PER_IP: '3' },
      flags: { port: '2123' },
    });
    expect(config.port).to.equal(2123);
    expect(config.maxPerIp).to.equal(3);
    expect(config.idleTimeoutMs).to.equal(10_000);
    // Relative paths in a config file are relative to that file.
    expect(config.images).to.equal(join(dir, 'repo'));
  });

  it('--user replaces the accounts with one account whose password is SWFW_PASSWORD', function () {
    const config = loadServerConfig({ env: {}, flags: { user: 'sw-admin' } });
    expect(config.accounts.map((a) => [a.user, a.passwordEnv])).to.deep.equal([['sw-admin', 'SWFW_PASSWORD']]);
  });

  it('reports every problem at once, one per line with its path', function () {
    writeFileSync(join(dir, 'c.json'), JSON.stringify({ prot: 21, maxPerIp: 'many', tlsCert: 'a.pem', requireTls: true }));
    const found = problems(() =>
      loadServerConfig({ configFile: join(dir, 'c.json'), env: { SWFW_DATA_TIMEOUT: '-1' }, flags: { pasvRange: '63010-63006' } }),
    );
    expect(found).to.have.members([
      `${join(dir, 'c.json')}: prot: unknown key (known: host, port, pasvRange, pasvAddress, images, anonymous, activeMode, pasvWait, idleTimeout, dataTimeout, maxPerIp, maxConnections, tlsCert, tlsKey, requireTls, hashSentBytes, logFile, logLevel, openFirewall, runAs, http, https, httpListing, metrics, xferlog, syslog, syslogFacility, syslogSocket, accounts)`,
      `${join(dir, 'c.json')}: maxPerIp: must be a number`,
      'env SWFW_DATA_TIMEOUT: must be at least 1',
      '--pasv-range: range 63010-63006 is reversed; the lower port comes first',
      `${join(dir, 'c.json')}: tlsCert: needs tlsKey too`,
    ]);
  });

  it('rejects plaintext passwords, bad CIDRs and an IPv6 PASV address', function () {
    writeFileSync(
      join(dir, 'c.json'),
      JSON.stringify({ pasvAddress: '::1', accounts: [{ user: 'a', passwordHash: 'hunter2', allowFrom: ['10.0.0.0/33', 'nonsense'] }] }),
    );
    const found = problems(() => loadServerConfig({ configFile: join(dir, 'c.json'), env: {} }));
    expect(found.some((p) => p.includes('accounts[0].passwordHash: must be a hash printed by `swfw hash-password`'))).to.equal(true);
    expect(found.some((p) => p.includes('accounts[0].allowFrom[0]') && p.includes('prefix length'))).to.equal(true);
    expect(found.some((p) => p.includes('accounts[0].allowFrom[1]'))).to.equal(true);
    expect(found.some((p) => p.includes('pasvAddress') && p.includes('IPv4'))).to.equal(true);
  });

  it('HTTP and HTTPS are off by default; [ADDR:]PORT from file, env and flags, address defaulting to host', function () {
    const off = loadServerConfig({ env: {} });
    expect(off.http).to.equal(null);
    expect(off.https).to.equal(null);
    expect(off.httpListing).to.equal(false);
    writeFileSync(join(dir, 'c.json'), JSON.stringify({ host: '10.0.0.5', http: 63001, tlsCert: 'c.pem', tlsKey: 'k.pem' }));
    const config = loadServerConfig({
      configFile: join(dir, 'c.json'),
      env: { SWFW_HTTPS: '[::1]:63002', SWFW_HTTP_LISTING: 'yes' },
      flags: {},
    });
    expect(config.http).to.deep.equal({ host: '10.0.0.5', port: 63001 });
    expect(config.https).to.deep.equal({ host: '::1', port: 63002 });
    expect(config.httpListing).to.equal(true);
    const flagged = loadServerConfig({ env: { SWFW_HTTP: '63001' }, flags: { http: '127.0.0.2:8080', tlsCert: 'c', tlsKey: 'k', https: '0' } });
    expect(flagged.http).to.deep.equal({ host: '127.0.0.2', port: 8080 });
    expect(flagged.https).to.deep.equal({ host: '0.0.0.0', port: 0 });
  });

  it('reports HTTP(S) problems one per line: syntax, HTTPS without TLS material, clashing ports', function () {
    writeFileSync(join(dir, 'c.json'), JSON.stringify({ http: 'localhost:80', https: 63002, httpListing: 'maybe' }));
    expect(problems(() => loadServerConfig({ configFile: join(dir, 'c.json'), env: { SWFW_HTTP: '99999' } }))).to.have.members([
      `${join(dir, 'c.json')}: httpListing: must be true or false`,
      'env SWFW_HTTP: port 99999 is above 65535',
      `${join(dir, 'c.json')}: https: needs tlsCert and tlsKey`,
    ]);
    expect(problems(() => loadServerConfig({ env: {}, flags: { http: '21' } }))).to.deep.equal(['--http: uses the FTP control port 21']);
    expect(problems(() => loadServerConfig({ env: {}, flags: { http: '63007' } }))).to.deep.equal(['--http: port 63007 is inside the passive range 63006-63010']);
    expect(problems(() => loadServerConfig({ env: {}, flags: { http: 'a:b:c' } }))).to.deep.equal([
      '--http: "a:b:c" is not [ADDR:]PORT (e.g. 63001, 10.0.0.5:63001 or [fd00::5]:63001)',
    ]);
    expect(problems(() => loadServerConfig({ env: {}, flags: { http: '127.0.0.1:8080', https: '8080', tlsCert: 'c', tlsKey: 'k' } }))).to.deep.equal([
      '--https: uses the same port as http (8080)',
    ]);
    expect(problems(() => loadServerConfig({ env: {}, flags: { http: '[10.0.0.1]:80' } }))).to.deep.equal(['--http: "[10.0.0.1]" must hold an IPv6 address']);
  });

  it('a missing or malformed file is one clear problem', function () {
    expect(problems(() => loadServerConfig({ configFile: join(dir, 'none.json'), env: {} }))).to.deep.equal([`${join(dir, 'none.json')}: file not found`]);
    writeFileSync(join(dir, 'bad.json'), '{ "port": ');
    expect(problems(() => loadServerConfig({ configFile: join(dir, 'bad.json'), env: {} }))[0]).to.match(/is not valid JSON/);
  });
});
