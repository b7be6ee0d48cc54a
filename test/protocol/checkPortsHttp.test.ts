import { expect } from 'chai';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { PROJECT_ROOT } from '../../src/config/loader.js';
import { checkPorts, reportJson, reportTable, type CheckPortsOptions } from '../../src/firewall/index.js';
import { startTestServer, TEST_PASSWORD, TEST_USER, type TestServer } from '../helpers/testServer.js';
import { freePort } from '../helpers/ports.js';
import { runCli } from '../helpers/cli.js';

const TLS_CERT = join(PROJECT_ROOT, 'fixtures', 'tls', 'server.crt');
const TLS_KEY = join(PROJECT_ROOT, 'fixtures', 'tls', 'server.key');

/** check-ports with the server's HTTP(S) ports (serve --http/--https): a real connect and HEAD / each. */
describe('check-ports: HTTP and HTTPS ports of the real server', function () {
  this.timeout(30_000);
  let server: TestServer;
  let http: number;
  let https: number;
  before(async () => {
    server = await startTestServer('44820-44821', { flags: { tlsCert: TLS_CERT, tlsKey: TLS_KEY, http: '127.0.0.1:0', https: '127.0.0.1:0' } });
    ({ http: { port: http }, https: { port: https } } = server.server.httpEndpoints() as { http: { port: number }; https: { port: number } });
  });
  after(async () => {
    await server?.stop();
  });

  const options = (extra: Partial<CheckPortsOptions> = {}): CheckPortsOptions => ({
    host: '127.0.0.1',
    controlPort: server.port,
    pasvRange: { min: 44820, max: 44821 },
    user: TEST_USER,
    password: TEST_PASSWORD,
    tls: null,
    timeoutMs: 2000,
    busyRetries: 0,
    ...extra,
  });

  it('both answer: open, with the status line of HEAD / (401: no credentials are sent), in the table and the JSON', async () => {
    const report = await checkPorts(options({ web: { http, https }, httpsTls: { ca: readFileSync(TLS_CERT) } }));
    expect(report.web.map((w) => [w.protocol, w.port, w.status, w.statusLine])).to.deep.equal([
      ['http', http, 'open', 'HTTP/1.1 401 Unauthorized'],
      ['https', https, 'open', 'HTTP/1.1 401 Unauthorized'],
    ]);
    expect(report.verdict.ok).to.equal(true);
    expect(report.verdict.line).to.match(new RegExp(`and HTTP ${http} and HTTPS ${https} answer$`));
    const table = reportTable(report);
    expect(table).to.match(new RegExp(`^${http} \\(http\\)\\s+open\\s+HEAD / answered "HTTP/1.1 401 Unauthorized"`, 'm'));
    expect(table).to.match(new RegExp(`^${https} \\(https\\)\\s+open\\s+`, 'm'));
    const json = JSON.parse(reportJson(report)) as { web: Array<{ port: number; status: string }> };
    expect(json.web.map((w) => [w.port, w.status])).to.deep.equal([[http, 'open'], [https, 'open']]);
  });

  it('from the command line on a switch-side host (no server certificate or key there): --https with --ca checks, --insecure too, no --ca fails the handshake', async () => {
    const base = ['check-ports', '--host', '127.0.0.1', '--port', String(server.port), '--pasv-range', '44820-44821', '--http', String(http), '--https', `127.0.0.1:${https}`, '--json'];
    const env = { SWFW_PASSWORD: TEST_PASSWORD };
    type Web = { web: Array<{ port: number; status: string }> };
    const trusted = await runCli([...base, '--user', TEST_USER, '--ca', TLS_CERT], { env });
    expect(trusted.code, trusted.stderr).to.equal(0);
    expect((JSON.parse(trusted.stdout.trim().split('\n').pop()!) as Web).web.map((w) => [w.port, w.status])).to.deep.equal([[http, 'open'], [https, 'open']]);
    const insecure = await runCli([...base, '--user', TEST_USER, '--insecure'], { env });
    expect(insecure.code, insecure.stderr).to.equal(0);
    const untrusted = await runCli([...base, '--user', TEST_USER], { env });
    expect(untrusted.code).to.not.equal(0);
    expect((JSON.parse(untrusted.stdout.trim().split('\n').pop()!) as Web).web.map((w) => [w.port, w.status])).to.deep.equal([[http, 'open'], [https, 'tls-failed']]);
    const bad = await runCli(['check-ports', '--host', '127.0.0.1', '--https', 'not-a-port'], { env });
    expect(bad.code).to.equal(2);
    expect(bad.stderr).to.match(/--https not-a-port: /);
  });

  it('a closed port is rejected and to be opened; FTP on the HTTP port is no-http; an untrusted certificate is tls-failed', async () => {
    const closed = await freePort();
    const report = await checkPorts(options({ web: { http: closed, https: server.port } }));
    expect(report.web.map((w) => [w.port, w.status])).to.deep.equal([[closed, 'rejected'], [server.port, 'tls-failed']]);
    expect(report.verdict.ok).to.equal(false);
    expect(report.verdict.portsToOpen).to.deep.equal([closed]);
    const ftpAsHttp = await checkPorts(options({ web: { http: server.port, https } }));
    expect(ftpAsHttp.web.map((w) => [w.port, w.status])).to.deep.equal([[server.port, 'no-http'], [https, 'tls-failed']]);
    expect(ftpAsHttp.web[0]!.error).to.match(/not an HTTP reply: 220/);
    expect(ftpAsHttp.verdict.ok).to.equal(false);
    expect(ftpAsHttp.verdict.line).to.include('not proven to serve HTTP');
  });
});
