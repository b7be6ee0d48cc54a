import { expect } from 'chai';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { pull, parseFtpUrl, type PullOptions } from '../../src/client/index.js';
import { FIXTURE_IMAGES, TEST_PASSWORD, TEST_USER, startTestServer, type TestServer } from '../helpers/testServer.js';
import { expectNoWorkersLeft } from '../helpers/pullCheck.js';

/** This suite's passive ports (the pull suites own 43000-43099). */
const PASV_RANGE = '43090-43094';
const IMAGE = 'cisco/c9300-universalk9.17.09.04a.SPA.bin';
const SOURCE = '127.0.1.50';

describe('pull from a chosen local address (localAddress)', function () {
  this.timeout(20_000);
  let server: TestServer;
  let dir: string;

  before(async () => (server = await startTestServer(PASV_RANGE)));
  after(async () => server?.stop());
  beforeEach(() => (dir = mkdtempSync(join(tmpdir(), 'swfw-pull-local-'))));
  afterEach(async () => {
    rmSync(dir, { recursive: true, force: true });
    await expectNoWorkersLeft();
  });

  function options(user: string, password: string, path: string, extra: Partial<PullOptions> = {}): PullOptions {
    const target = parseFtpUrl(`ftp://${encodeURIComponent(user)}@${server.host}:${server.port}${path}`);
    if ('problem' in target) throw new Error(target.problem);
    return { target, password, out: join(dir, 'image.bin'), reference: null, retries: 0, backoff: { baseMs: 5, maxMs: 20 }, ...extra };
  }

  /** The server emits its audit record just after 226, which the client may see first. */
  async function auditAfter(count: number) {
    for (let i = 0; i < 100 && server.transfers.length <= count; i++) await delay(20);
    expect(server.transfers.length).to.equal(count + 1);
    return server.transfers[count]!;
  }

  it('connects the control and data connections from localAddress: the audit names it', async function () {
    const before = server.transfers.length;
    const result = await pull(options(TEST_USER, TEST_PASSWORD, `/${IMAGE}`, { localAddress: SOURCE }));
    expect(result.outcome).to.equal('unverified');
    const record = await auditAfter(before);
    expect(record).to.include({ client: SOURCE, result: 'complete', bytes: result.bytes });
    expect(record.dataPort).to.be.within(server.pasvMin, server.pasvMax);
    expect(readFileSync(join(dir, 'image.bin'))).to.deep.equal(readFileSync(join(FIXTURE_IMAGES, IMAGE)));
  });

  it('a one-time grant for 127.0.1.50 works only from that address', async function () {
    const grant = () => server.server.grantOneTimeAccess({ sourceAddress: SOURCE, imagePath: IMAGE, validForMs: 60_000 });
    // Without localAddress the pull comes from 127.0.0.1: refused at login.
    const refused = await grant();
    const before = server.transfers.length;
    const denied = await pull(options(refused.user, refused.password, refused.path));
    expect(denied.outcome).to.equal('transfer-failed');
    expect(denied.replyCode).to.equal(530);
    expect(server.transfers.length).to.equal(before);

    const access = await grant();
    const result = await pull(options(access.user, access.password, access.path, { localAddress: SOURCE }));
    expect(result.outcome).to.equal('unverified');
    expect(await auditAfter(before)).to.include({ client: SOURCE, result: 'complete' });
  });
});
