import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { expect } from 'chai';
import { TEST_PASSWORD, TEST_USER, type TestServer } from '../helpers/testServer.js';
import { runFtplib } from './ftplib.js';
import {
  IMAGES,
  expectPortsInRange,
  expectVerifiedDownload,
  useInteropServer,
} from './support.js';

/** This suite's passive range (interop suites share 41000-41099, one slice each). */
const PASV_RANGE = '41040-41049';

describe('interop: python ftplib', function () {
  this.timeout(30_000);
  let server: TestServer;
  let work: string;
  useInteropServer('ftplib', PASV_RANGE, (s, w) => ((server = s), (work = w)));

  const login = () => ({ host: server.host, port: server.port, user: TEST_USER, password: TEST_PASSWORD });

  it('downloads an image with retrbinary over PASV (set_pasv(True)), byte for byte', async () => {
    const out = join(work, 'cisco.bin');
    const since = server.transfers.length;
    const { outcome, result } = await runFtplib({ ...login(), passive: true, path: IMAGES.cisco, out });
    expect(outcome, result.stdout).to.deep.include({ login: '230 Login successful', retr: '226 Transfer complete', quit: '221 Goodbye' });
    expect(outcome.welcome).to.match(/^220 /);
    expect(result.stdout).to.include("*cmd* 'PASV'");
    expectPortsInRange(result.stdout, server);
    await expectVerifiedDownload(server, IMAGES.cisco, out, since);
  });

  it('lists a vendor directory with nlst', async () => {
    const { outcome, result } = await runFtplib({ ...login(), nlst: '/aruba' });
    expect(outcome.error, result.stdout).to.equal(undefined);
    expect(outcome.nlst?.map((name) => name.split('/').pop())).to.deep.equal([IMAGES.aruba.split('/').pop()]);
  });

  it('gets 530 for a wrong password, and nothing is sent', async () => {
    const out = join(work, 'denied.bin');
    const since = server.transfers.length;
    const { outcome } = await runFtplib({ ...login(), password: 'wrong-password', path: IMAGES.cisco, out });
    expect(outcome.error).to.equal('error_perm');
    expect(outcome.message).to.match(/^530 /);
    expect(existsSync(out)).to.equal(false);
    expect(server.transfers.slice(since)).to.be.empty;
  });

  it('is refused active mode (set_pasv(False)): active mode is off by default', async () => {
    const out = join(work, 'active.bin');
    const since = server.transfers.length;
    const { outcome, result } = await runFtplib({ ...login(), passive: false, path: IMAGES.cisco, out });
    // ftplib sends PORT for IPv4; the server refuses it (502) before anything connects.
    expect(result.stdout).to.match(/\*cmd\* 'PORT /);
    expect(outcome.error).to.equal('error_perm');
    expect(outcome.message).to.match(/^502 /);
    expect(server.transfers.slice(since)).to.be.empty;
  });
});
