import { join } from 'node:path';
import { expect } from 'chai';
import { TEST_PASSWORD, TEST_USER, type TestServer } from '../helpers/testServer.js';
import {
  IMAGES,
  clientEnv,
  expectPortsInRange,
  expectSuccess,
  expectVerifiedDownload,
  run,
  useInteropServer,
  type RunResult,
} from './support.js';

/** This suite's passive range (interop suites share 41000-41099, one slice each). */
const PASV_RANGE = '41020-41029';

describe('interop: lftp', function () {
  this.timeout(30_000);
  let server: TestServer;
  let work: string;
  useInteropServer('lftp', PASV_RANGE, (s, w) => ((server = s), (work = w)));

  /**
   * Runs lftp commands in one plaintext passive session. lftp retries for ever by default, so
   * retries and timeouts are capped; `debug 5` logs the FTP dialogue to stderr. One lftp run per
   * test, because `lftp -c` exits with the status of its last command only.
   */
  function lftp(commands: string): Promise<RunResult> {
    const script = [
      'debug 5',
      'set ftp:passive-mode on',
      'set net:max-retries 1',
      'set net:timeout 10',
      'set ssl:verify-certificate no',
      'set ftp:ssl-allow no',
      'set cmd:interactive no',
      `open -u ${TEST_USER},${TEST_PASSWORD} -p ${server.port} ${server.host}`,
      commands,
    ].join('; ');
    return run('lftp', ['-c', script], { env: clientEnv(work) });
  }

  it('downloads an image with get, byte for byte', async () => {
    const out = join(work, 'cisco.bin');
    const since = server.transfers.length;
    const result = await lftp(`get ${IMAGES.cisco} -o ${out}`);
    expectSuccess(result, 'lftp get');
    expect(result.stderr).to.match(/^---> PASV\s*$/m);
    expectPortsInRange(result.stderr, server);
    await expectVerifiedDownload(server, IMAGES.cisco, out, since);
  });

  it('downloads from inside a directory after cd (CWD, then a relative RETR)', async () => {
    const out = join(work, 'dell.bin');
    const since = server.transfers.length;
    const name = IMAGES.dell.split('/').pop()!;
    const result = await lftp(`cd /dell; get ${name} -o ${out}`);
    expectSuccess(result, 'lftp cd + get');
    expect(result.stderr).to.match(/^---> CWD \/dell\s*$/m);
    await expectVerifiedDownload(server, IMAGES.dell, out, since);
  });

  it('lists the vendor directories with cls (MLSD)', async () => {
    const result = await lftp('cls -1 /');
    expectSuccess(result, 'lftp cls');
    expect(result.stderr).to.match(/^---> MLSD/m);
    const names = result.stdout
      .split('\n')
      .map((line) => line.trim().replace(/^\//, '').replace(/\/$/, ''))
      .filter(Boolean);
    expect(names).to.include.members(['aruba', 'cisco', 'dell']); // and catalog.json, the image catalog
  });

  it('lists the vendor directories with ls (LIST), as read-only directories', async () => {
    const result = await lftp('ls /');
    expectSuccess(result, 'lftp ls');
    expect(result.stderr).to.match(/^---> LIST/m);
    const rows = result.stdout.split('\n').filter((line) => line.trim() !== '');
    const directories = rows.filter((line) => line.startsWith('d')).map((line) => line.split(/\s+/).pop());
    expect(directories).to.have.members(['arista', 'aruba', 'cisco', 'dell', 'hpe', 'juniper']);
    for (const row of rows) expect(row, 'no write bits in a read-only repository').to.match(/^.r-.r-.r-./);
  });

  it('lists one vendor directory and shows its images', async () => {
    const result = await lftp('cls -1 /cisco');
    expectSuccess(result, 'lftp cls /cisco');
    expect(result.stdout.trim().split('\n')).to.include(IMAGES.cisco).and.have.length(3);
  });
});
