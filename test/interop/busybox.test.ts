import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect } from 'chai';
import { TEST_PASSWORD, TEST_USER, type TestServer } from '../helpers/testServer.js';
import {
  IMAGES,
  clientEnv,
  expectSuccess,
  expectVerifiedDownload,
  imageOnDisk,
  run,
  useInteropServer,
  type RunResult,
} from './support.js';

/** This suite's passive range (interop suites share 41000-41099, one slice each). */
const PASV_RANGE = '41030-41039';

/**
 * busybox ftpget is the closest thing here to a switch's own minimal FTP client: USER, PASS,
 * TYPE I, EPSV (PASV without IPv6 support), SIZE, RETR, and nothing else; no listing, no retries.
 */
describe('interop: busybox ftpget', function () {
  this.timeout(30_000);
  let server: TestServer;
  let work: string;
  useInteropServer('busybox', PASV_RANGE, (s, w) => ((server = s), (work = w)));

  function ftpget(local: string, remote: string, options: { password?: string; extra?: string[] } = {}): Promise<RunResult> {
    const args = ['ftpget', '-v', ...(options.extra ?? [])];
    args.push('-u', TEST_USER, '-p', options.password ?? TEST_PASSWORD, '-P', String(server.port), server.host, local, remote);
    return run('busybox', args, { env: clientEnv(work) });
  }

  it('downloads an image by absolute path, byte for byte', async () => {
    const out = join(work, 'cisco.bin');
    const since = server.transfers.length;
    const result = await ftpget(out, IMAGES.cisco);
    expectSuccess(result, 'busybox ftpget');
    await expectVerifiedDownload(server, IMAGES.cisco, out, since);
  });

  it('downloads an image by path relative to the login directory', async () => {
    const out = join(work, 'aruba.bin');
    const since = server.transfers.length;
    const result = await ftpget(out, IMAGES.aruba.slice(1));
    expectSuccess(result, 'busybox ftpget (relative path)');
    await expectVerifiedDownload(server, IMAGES.aruba, out, since);
  });

  it('continues a partial download with -c (REST), as a switch resumes after a dropped link', async () => {
    const out = join(work, 'dell.bin');
    const offset = 65_537;
    writeFileSync(out, readFileSync(imageOnDisk(server, IMAGES.dell)).subarray(0, offset));
    const since = server.transfers.length;
    const result = await ftpget(out, IMAGES.dell, { extra: ['-c'] });
    expectSuccess(result, 'busybox ftpget -c');
    expect(result.stderr).to.match(new RegExp(`cmd REST ${offset}`));
    await expectVerifiedDownload(server, IMAGES.dell, out, since, offset);
  });

  it('fails on a wrong password, with 530 and no file', async () => {
    const out = join(work, 'denied.bin');
    const since = server.transfers.length;
    const result = await ftpget(out, IMAGES.cisco, { password: 'wrong-password' });
    expect(result.timedOut).to.equal(false);
    expect(result.code).to.not.equal(0);
    expect(result.stderr).to.match(/PASS: 530 /);
    expect(existsSync(out)).to.equal(false);
    expect(server.transfers.slice(since)).to.be.empty;
  });

  it('fails on a missing image, with 550', async () => {
    const out = join(work, 'missing.bin');
    const result = await ftpget(out, '/cisco/no-such-image.bin');
    expect(result.timedOut).to.equal(false);
    expect(result.code).to.not.equal(0);
    expect(result.stderr).to.match(/: 550 /);
  });
});
