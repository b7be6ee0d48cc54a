import { writeFileSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect } from 'chai';
import { TEST_PASSWORD, TEST_USER, type TestServer } from '../helpers/testServer.js';
import {
  IMAGES,
  clientEnv,
  expectPortsInRange,
  expectSuccess,
  expectVerifiedDownload,
  ftpUrl,
  imageOnDisk,
  run,
  useInteropServer,
  type RunResult,
} from './support.js';

/** This suite's passive range (interop suites share 41000-41099, one slice each). */
const PASV_RANGE = '41000-41009';

describe('interop: curl', function () {
  this.timeout(30_000);
  let server: TestServer;
  let work: string;
  useInteropServer('curl', PASV_RANGE, (s, w) => ((server = s), (work = w)));

  /** curl with a clean config (-q must come first), verbose protocol log on stderr, hard limits. */
  function curl(args: string[]): Promise<RunResult> {
    return run('curl', ['-q', '-sS', '-v', '--connect-timeout', '5', '--max-time', '15', ...args], {
      env: clientEnv(work),
    });
  }

  /** URL paths are relative to the login directory (RFC 1738 §3.2.2); ours is "/". */
  const url = (path: string) => ftpUrl(server, TEST_USER, TEST_PASSWORD, path);

  it('downloads with EPSV (the default), byte for byte', async () => {
    const out = join(work, 'epsv.bin');
    const since = server.transfers.length;
    const result = await curl(['-o', out, url(IMAGES.cisco)]);
    expectSuccess(result, 'curl (EPSV)');
    expect(result.stderr).to.match(/^> EPSV/m);
    expect(result.stderr).to.match(/^< 229 /m);
    expectPortsInRange(result.stderr, server);
    await expectVerifiedDownload(server, IMAGES.cisco, out, since);
  });

  it('downloads PASV-only (--disable-epsv), as older switch clients do', async () => {
    const out = join(work, 'pasv.bin');
    const since = server.transfers.length;
    const result = await curl(['--disable-epsv', '-o', out, url(IMAGES.cisco)]);
    expectSuccess(result, 'curl --disable-epsv');
    expect(result.stderr).to.not.match(/^> EPSV/m);
    expect(result.stderr).to.match(/^< 227 Entering Passive Mode \(127,0,0,1,\d+,\d+\)/m);
    expectPortsInRange(result.stderr, server);
    await expectVerifiedDownload(server, IMAGES.cisco, out, since);
  });

  it('downloads with --ftp-method singlecwd (one CWD to the directory, then RETR)', async () => {
    const out = join(work, 'singlecwd.bin');
    const since = server.transfers.length;
    const result = await curl(['--ftp-method', 'singlecwd', '-o', out, url(IMAGES.aruba)]);
    expectSuccess(result, 'curl --ftp-method singlecwd');
    expect(result.stderr).to.match(/^> CWD aruba\r?$/m);
    await expectVerifiedDownload(server, IMAGES.aruba, out, since);
  });

  it('downloads with --ftp-method nocwd (RETR of a relative path with a directory)', async () => {
    const out = join(work, 'nocwd.bin');
    const since = server.transfers.length;
    const result = await curl(['--ftp-method', 'nocwd', '-o', out, url(IMAGES.dell)]);
    expectSuccess(result, 'curl --ftp-method nocwd');
    expect(result.stderr).to.not.match(/^> CWD/m);
    expect(result.stderr).to.match(/^> RETR dell\/OS10_10\.5\.6\.0\.bin\r?$/m);
    await expectVerifiedDownload(server, IMAGES.dell, out, since);
  });

  it('resumes a partial download with -C - (REST), and the audit covers only the bytes sent', async () => {
    const out = join(work, 'resume.bin');
    const offset = 300_000;
    writeFileSync(out, readFileSync(imageOnDisk(server, IMAGES.cisco)).subarray(0, offset));
    const since = server.transfers.length;
    const result = await curl(['-C', '-', '-o', out, url(IMAGES.cisco)]);
    expectSuccess(result, 'curl -C -');
    expect(result.stderr).to.match(new RegExp(`^> REST ${offset}\\r?$`, 'm'));
    await expectVerifiedDownload(server, IMAGES.cisco, out, since, offset);
  });

  it('lists the repository root (LIST) with the vendor directories', async () => {
    const result = await curl([url('/')]);
    expectSuccess(result, 'curl LIST');
    const names = result.stdout
      .split(/\r?\n/)
      .filter((line) => line.startsWith('d'))
      .map((line) => line.split(/\s+/).pop());
    expect(names).to.include.members(['aruba', 'cisco', 'dell']);
  });

  it('fails cleanly with 550 for a missing image, without leaking a server path', async () => {
    const out = join(work, 'missing.bin');
    const result = await curl(['-o', out, url('/cisco/no-such-image.bin')]);
    expect(result.timedOut).to.equal(false);
    // 78: CURLE_REMOTE_FILE_NOT_FOUND (the server answered 550).
    expect(result.code, result.stderr).to.equal(78);
    const reply = /^< 550 .*$/m.exec(result.stderr)?.[0] ?? '';
    expect(reply, result.stderr).to.not.equal('');
    expect(reply).to.not.include(server.images);
  });
});
