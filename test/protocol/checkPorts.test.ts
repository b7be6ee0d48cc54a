import { expect } from 'chai';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createServer, type Server } from 'node:net';
import { PROJECT_ROOT } from '../../src/config/loader.js';
import { CheckPortsError, ControlUnreachableError, checkPorts, type CheckPortsOptions, type PortResult } from '../../src/firewall/index.js';
import { startTestServer, TEST_PASSWORD, TEST_USER, type TestServer } from '../helpers/testServer.js';
import { FtpControl, parsePasv } from '../helpers/ftpControl.js';

const TLS_CERT = join(PROJECT_ROOT, 'fixtures', 'tls', 'server.crt');
const TLS_KEY = join(PROJECT_ROOT, 'fixtures', 'tls', 'server.key');

/** check-ports' own slice of ports: 40900-40919 (the other protocol suites use 40000-40799). */
describe('check-ports prober against the real server on loopback', function () {
  let server: TestServer;
  let squatter: Server;
  before(async function () {
    squatter = createServer();
    await new Promise<void>((resolve) => squatter.listen(40904, '127.0.0.1', resolve));
    server = await startTestServer('40900-40904', { flags: { pasvWait: '0.5', tlsCert: TLS_CERT, tlsKey: TLS_KEY } });
  });
  after(async function () {
    await server.stop();
    await new Promise((resolve) => squatter.close(resolve));
  });

  const options = (extra: Partial<CheckPortsOptions> = {}): CheckPortsOptions => ({
    host: '127.0.0.1',
    controlPort: server.port,
    pasvRange: { min: 40900, max: 40903 },
    user: TEST_USER,
    password: TEST_PASSWORD,
    tls: null,
    timeoutMs: 2000,
    busyRetries: 0,
    ...extra,
  });
  const statuses = (ports: PortResult[]) => ports.map((p) => `${p.port} ${p.status}`);

  it('every port open: each tested once, ascending, through both the direct probe and the PASV path', async function () {
    const seen: number[] = [];
    const report = await checkPorts(options({ onResult: (r) => seen.push(r.port) }));
    expect(seen).to.deep.equal([40900, 40901, 40902, 40903]);
    expect(statuses(report.ports)).to.deep.equal(['40900 open', '40901 open', '40902 open', '40903 open']);
    for (const port of report.ports) {
      expect(port.direct).to.deep.equal({ connect: 'connected', transferred: true, error: '' });
      expect(port.pasv).to.include({ connect: 'connected', transferred: true, replyAddress: '127.0.0.1', replyPort: port.port });
    }
    expect(report.control).to.include({ port: server.port, address: '127.0.0.1', status: 'open', tls: false });
    expect(report.control.rttMs).to.be.a('number');
    expect(report.verdict.ok).to.equal(true);
  });

  it('a port held by another process on the server is reported busy, with that reason', async function () {
    const report = await checkPorts(options({ pasvRange: { min: 40903, max: 40904 } }));
    expect(statuses(report.ports)).to.deep.equal(['40903 open', '40904 busy']);
    expect(report.ports[1]!.detail).to.include('held by another process');
    expect(report.verdict.ok).to.equal(false);
    expect(report.verdict.portsToOpen).to.deep.equal([]);
  });

  it('a port reserved by another session is retried later: open once it frees, busy if it never does', async function () {
    const holder = await FtpControl.connect(server.port);
    expect((await holder.login(TEST_USER, TEST_PASSWORD)).code).to.equal(230);
    expect((await holder.send('SITE PIN 40901')).code).to.equal(200);
    expect(parsePasv(await holder.send('PASV')).port).to.equal(40901);
    try {
      const stuck = await checkPorts(options({ busyRetries: 1, busyRetryDelayMs: 50 }));
      expect(statuses(stuck.ports)).to.deep.equal(['40900 open', '40901 busy', '40902 open', '40903 open']);
      expect(stuck.ports[1]!.detail).to.include('another session');

      const release = setTimeout(() => holder.close(), 700);
      const freed = await checkPorts(options({ busyRetries: 2, busyRetryDelayMs: 400 }));
      clearTimeout(release);
      expect(statuses(freed.ports)).to.deep.equal(['40900 open', '40901 open', '40902 open', '40903 open']);
    } finally {
      holder.close();
    }
  });

  it('a PASV reply carrying another address than the one connected to is "rewritten"', async function () {
    const natted = await startTestServer('40910-40911', { flags: { pasvAddress: '127.0.0.2' } });
    try {
      const report = await checkPorts(options({ controlPort: natted.port, pasvRange: { min: 40910, max: 40911 } }));
      expect(statuses(report.ports)).to.deep.equal(['40910 rewritten', '40911 rewritten']);
      expect(report.ports[0]!.detail).to.include('127.0.0.2:40910');
      // With the expected address given, the same reply is fine.
      const told = await checkPorts(options({ controlPort: natted.port, pasvRange: { min: 40910, max: 40911 }, expectAddress: '127.0.0.2' }));
      expect(told.verdict.ok).to.equal(true);
    } finally {
      await natted.stop();
    }
  });

  it('FTPS (AUTH TLS, PROT P): the same probes through encrypted control and data connections', async function () {
    const report = await checkPorts(options({ tls: { ca: readFileSync(TLS_CERT) }, pasvRange: { min: 40900, max: 40901 } }));
    expect(report.control.tls).to.equal(true);
    expect(statuses(report.ports)).to.deep.equal(['40900 open', '40901 open']);
  });

  it('a closed control port is unreachable at once; a wrong password and a wrong range are usage errors', async function () {
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const freePort = (closed.address() as { port: number }).port;
    await new Promise((resolve) => closed.close(resolve));
    const unreachable = await checkPorts(options({ controlPort: freePort })).catch((err: unknown) => err);
    expect(unreachable).to.be.instanceOf(ControlUnreachableError);
    expect((unreachable as ControlUnreachableError).control).to.include({ status: 'rejected', port: freePort });

    const login = await checkPorts(options({ password: 'wrong' })).catch((err: unknown) => err);
    expect(login).to.be.instanceOf(CheckPortsError);
    expect((login as CheckPortsError).usage).to.equal(true);
    expect((login as Error).message).to.include('login as "switch" refused: 530');

    const range = await checkPorts(options({ pasvRange: { min: 40905, max: 40905 } })).catch((err: unknown) => err);
    expect(range).to.be.instanceOf(CheckPortsError);
    expect((range as Error).message).to.include('check --pasv-range');
  });
});
