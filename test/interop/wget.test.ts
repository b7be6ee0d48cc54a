import { readFileSync, writeFileSync } from 'node:fs';
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
const PASV_RANGE = '41010-41019';

describe('interop: wget', function () {
  this.timeout(30_000);
  let server: TestServer;
  let work: string;
  useInteropServer('wget', PASV_RANGE, (s, w) => ((server = s), (work = w)));

  /** wget ignores every wgetrc, tries once, and logs the FTP dialogue (-d) to stderr. */
  function wget(args: string[]): Promise<RunResult> {
    return run('wget', ['--no-config', '-d', '--tries=1', '--timeout=10', ...args], { env: clientEnv(work) });
  }

  it('downloads an image over ftp://user:pass@host:port/path (passive), byte for byte', async () => {
    const out = join(work, 'cisco.bin');
    const since = server.transfers.length;
    const result = await wget(['-O', out, ftpUrl(server, TEST_USER, TEST_PASSWORD, IMAGES.cisco)]);
    expectSuccess(result, 'wget');
    // wget walks to the directory, then asks for the file by name.
    expect(result.stderr).to.match(/^--> CWD \/cisco\s*$/m);
    expect(result.stderr).to.match(/^--> PASV\s*$/m);
    expectPortsInRange(result.stderr, server);
    await expectVerifiedDownload(server, IMAGES.cisco, out, since);
  });

  it('continues a partial download with -c (REST)', async () => {
    const out = join(work, 'aruba.bin');
    const offset = 123_457;
    writeFileSync(out, readFileSync(imageOnDisk(server, IMAGES.aruba)).subarray(0, offset));
    const since = server.transfers.length;
    const result = await wget(['-c', '-O', out, ftpUrl(server, TEST_USER, TEST_PASSWORD, IMAGES.aruba)]);
    expectSuccess(result, 'wget -c');
    expect(result.stderr).to.match(new RegExp(`^--> REST ${offset}\\s*$`, 'm'));
    await expectVerifiedDownload(server, IMAGES.aruba, out, since, offset);
  });

  it('reports a missing image as an error (550), not as an empty file', async () => {
    const out = join(work, 'missing.bin');
    const since = server.transfers.length;
    const result = await wget(['-O', out, ftpUrl(server, TEST_USER, TEST_PASSWORD, '/dell/no-such-image.bin')]);
    expect(result.timedOut).to.equal(false);
    // 8: "server issued an error response".
    expect(result.code, result.stderr).to.equal(8);
    expect(result.stderr).to.match(/^550 /m);
    expect(server.transfers.slice(since)).to.be.empty;
  });
});
