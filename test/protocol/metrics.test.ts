/**
 * `--metrics`: the server's counters in the Prometheus text format, over real sockets. Each
 * counter is read before and after what moves it, and must move by exactly that much.
 */
import { expect } from 'chai';
import { Writable } from 'node:stream';
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Client } from 'basic-ftp';
import { startTestServer, TEST_PASSWORD, TEST_USER, type TestServer } from '../helpers/testServer.js';
import { FtpControl, parsePasv } from '../helpers/ftpControl.js';
import { httpGet, parseSamples } from '../helpers/prometheus.js';
import { startMetrics, type MetricsEndpoint } from '../../src/observability/prometheus.js';
import { silentLogger } from '../../src/core/logger.js';

const CISCO = 'cisco/c9300-universalk9.17.09.04a.SPA.bin';
const DELL = 'dell/OS10_10.5.6.0.bin';

describe('Prometheus metrics (--metrics)', function () {
  let server: TestServer;
  let metrics: MetricsEndpoint;
  const controls: FtpControl[] = [];
  const scrape = async () => {
    const response = await httpGet(metrics.address().port);
    expect(response.status).to.equal(200);
    expect(response.contentType).to.match(/^text\/plain; version=0\.0\.4/);
    return parseSamples(response.body);
  };
  /** How much each sample moved between two scrapes (a missing sample counts as 0). */
  const moved = (before: Map<string, number>, after: Map<string, number>, name: string) => (after.get(name) ?? 0) - (before.get(name) ?? 0);
  const control = async () => {
    const c = await FtpControl.connect(server.port);
    controls.push(c);
    expect((await c.login(TEST_USER, TEST_PASSWORD)).code).to.equal(230);
    return c;
  };

  before(async function () {
    server = await startTestServer('44900-44901', {
      copyImages: true,
      // A catalog image whose bytes changed: refused with 550 (the catalog refusal below).
      beforeStart: async (images) => {
        const bytes = readFileSync(join(images, CISCO));
        bytes[1000] = bytes[1000]! ^ 0xff;
        writeFileSync(join(images, CISCO), bytes);
      },
      flags: { pasvWait: '1' },
    });
    await server.server.imageChecksSettled();
    metrics = await startMetrics({ listen: { host: '127.0.0.1', port: 0 }, server: server.server, logger: silentLogger });
  });
  afterEach(() => controls.splice(0).forEach((c) => c.close()));
  after(async function () {
    await metrics?.stop();
    await server?.stop();
  });

  it('counts a download (transfer, bytes) and a failed login, by the right amounts', async function () {
    const before = await scrape();
    const client = new Client(10_000);
    try {
      await client.access({ host: '127.0.0.1', port: server.port, user: TEST_USER, password: TEST_PASSWORD });
      const chunks: Buffer[] = [];
      await client.downloadTo(new Writable({ write: (chunk: Buffer, _encoding, done) => (chunks.push(chunk), done()) }), DELL);
      expect(Buffer.concat(chunks).length).to.equal(statSync(join(server.images, DELL)).size);
    } finally {
      client.close();
    }
    const wrong = new Client(10_000);
    try {
      const failure = await wrong.access({ host: '127.0.0.1', port: server.port, user: TEST_USER, password: 'not-the-password' }).then(
        () => null,
        (err: { code?: number }) => err,
      );
      expect(failure?.code).to.equal(530);
    } finally {
      wrong.close();
    }
    const after = await scrape();
    expect(moved(before, after, 'swfw_transfers_total{code="226",protocol="ftp",result="complete"}')).to.equal(1);
    expect(moved(before, after, 'swfw_sent_bytes_total')).to.equal(statSync(join(server.images, DELL)).size);
    expect(moved(before, after, 'swfw_login_failures_total')).to.equal(1);
    expect(moved(before, after, 'swfw_catalog_refusals_total{code="550"}')).to.equal(0);
    // And prom-client's default process metrics.
    expect(after.get('process_cpu_user_seconds_total')).to.be.a('number');
    expect(after.has('nodejs_eventloop_lag_seconds')).to.equal(true);
    expect(after.get('process_resident_memory_bytes')).to.be.greaterThan(0);
  });

  it('counts passive waits, their 425s, catalog refusals and open sessions', async function () {
    const before = await scrape();
    // Two sessions reserve both passive ports (and never connect); a third PASV waits, then 425.
    const [first, second, third] = [await control(), await control(), await control()];
    expect((await first!.send('PASV')).code).to.equal(227);
    expect((await second!.send('PASV')).code).to.equal(227);
    expect((await third!.send('PASV')).code).to.equal(425);
    expect((await scrape()).get('swfw_sessions')).to.equal(3);
    // The first session goes away and frees its port; the third gets it and asks for the
    // drifted image: 550 from the catalog, and no transfer counted.
    first!.close();
    await first!.waitClosed();
    for (let tries = 0; (await scrape()).get('swfw_sessions') !== 2; tries++) {
      expect(tries, 'the server never saw the first session close').to.be.below(100);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    const { port } = parsePasv(await third!.send('PASV'));
    expect(port).to.be.within(44900, 44901);
    expect((await third!.send(`RETR ${CISCO}`)).code).to.equal(550);
    const after = await scrape();
    expect(moved(before, after, 'swfw_passive_waits_total')).to.equal(1);
    expect(moved(before, after, 'swfw_passive_wait_timeouts_total')).to.equal(1);
    expect(moved(before, after, 'swfw_catalog_refusals_total{code="550"}')).to.equal(1);
    expect(moved(before, after, 'swfw_transfers_total{code="226",protocol="ftp",result="complete"}')).to.equal(0);
  });

  it('counts one-time access granted and revoked (a second revoke() counts nothing)', async function () {
    const before = await scrape();
    const access = await server.server.grantOneTimeAccess({ sourceAddress: '127.0.0.1', imagePath: DELL, validForMs: 60_000 });
    access.revoke();
    access.revoke();
    const after = await scrape();
    expect(moved(before, after, 'swfw_one_time_access_granted_total')).to.equal(1);
    expect(moved(before, after, 'swfw_one_time_access_revoked_total')).to.equal(1);
    expect(JSON.stringify([...after])).to.not.include(access.password);
  });

  it('answers 404 off /metrics, and once stopped leaves no listener', async function () {
    expect((await httpGet(metrics.address().port, '/')).status).to.equal(404);
    const port = metrics.address().port;
    await metrics.stop();
    const refused = await httpGet(port).then(
      () => null,
      (err: NodeJS.ErrnoException) => err.code,
    );
    expect(refused).to.equal('ECONNREFUSED');
  });
});
