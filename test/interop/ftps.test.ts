import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { expect } from 'chai';
import { PROJECT_ROOT } from '../../src/config/loader.js';
import { startTestServer, TEST_PASSWORD, TEST_USER, type TestServer } from '../helpers/testServer.js';
import { runFtplib } from './ftplib.js';
import {
  IMAGES,
  clientEnv,
  expectPortsInRange,
  expectSuccess,
  expectVerifiedDownload,
  ftpUrl,
  killStrayClients,
  makeTempDir,
  removeTempDir,
  run,
  type RunResult,
} from './support.js';

/** Self-signed test material; see fixtures/tls/README.md. */
const TLS_FLAGS = {
  tlsCert: join(PROJECT_ROOT, 'fixtures', 'tls', 'server.crt'),
  tlsKey: join(PROJECT_ROOT, 'fixtures', 'tls', 'server.key'),
};
/** Passive ranges of this suite's two servers (interop suites share 41000-41099, one slice each). */
const OPTIONAL_TLS_RANGE = '41050-41059';
const REQUIRED_TLS_RANGE = '41060-41069';

/** Explicit FTPS (RFC 4217): AUTH TLS on the control port, then PBSZ 0 and PROT P for data. */
describe('interop: FTPS (explicit AUTH TLS)', function () {
  this.timeout(30_000);
  let work: string;

  before(() => {
    work = makeTempDir('ftps');
  });

  after(() => {
    killStrayClients();
    removeTempDir(work);
  });

  /** curl with a clean config, verbose log on stderr, hard limits; -k: the test cert is self-signed. */
  function curl(args: string[]): Promise<RunResult> {
    return run('curl', ['-q', '-sS', '-v', '-k', '--connect-timeout', '5', '--max-time', '15', ...args], {
      env: clientEnv(work),
    });
  }

  function lftp(server: TestServer, commands: string): Promise<RunResult> {
    const script = [
      'debug 5',
      'set ftp:passive-mode on',
      'set net:max-retries 1',
      'set net:timeout 10',
      'set ssl:verify-certificate no',
      'set ftp:ssl-force true',
      'set ftp:ssl-protect-data true',
      'set cmd:interactive no',
      `open -u ${TEST_USER},${TEST_PASSWORD} -p ${server.port} ${server.host}`,
      commands,
    ].join('; ');
    return run('lftp', ['-c', script], { env: clientEnv(work) });
  }

  /** The curl log shows the whole RFC 4217 sequence: AUTH, login inside TLS, PBSZ 0, PROT P. */
  function expectProtectedSession(log: string): void {
    expect(log).to.match(/^> AUTH (TLS|SSL)\s*$/m);
    expect(log).to.match(/^< 234 /m);
    expect(log).to.match(/^> PBSZ 0\s*$/m);
    expect(log).to.match(/^> PROT P\s*$/m);
    expect(log).to.match(/^< 200 /m);
  }

  describe('TLS offered (tlsCert, tlsKey)', () => {
    let server: TestServer;

    before(async () => {
      server = await startTestServer(OPTIONAL_TLS_RANGE, { flags: TLS_FLAGS });
    });

    after(async () => {
      killStrayClients();
      await server?.stop();
    });

    it('curl --ssl-reqd downloads an image over protected data (PROT P), byte for byte', async () => {
      const out = join(work, 'curl-tls.bin');
      const since = server.transfers.length;
      const result = await curl(['--ssl-reqd', '-o', out, ftpUrl(server, TEST_USER, TEST_PASSWORD, IMAGES.cisco)]);
      expectSuccess(result, 'curl --ssl-reqd');
      expectProtectedSession(result.stderr);
      expectPortsInRange(result.stderr, server);
      await expectVerifiedDownload(server, IMAGES.cisco, out, since);
    });

    it('python ftplib FTP_TLS with prot_p() downloads an image, byte for byte', async () => {
      const out = join(work, 'ftplib-tls.bin');
      const since = server.transfers.length;
      const { outcome, result } = await runFtplib({
        host: server.host,
        port: server.port,
        user: TEST_USER,
        password: TEST_PASSWORD,
        tls: true,
        path: IMAGES.aruba,
        out,
      });
      expect(outcome, result.stdout).to.deep.include({ retr: '226 Transfer complete', quit: '221 Goodbye' });
      expect(outcome.prot).to.match(/^200 /);
      expect(result.stdout).to.include("*cmd* 'AUTH TLS'");
      expect(result.stdout).to.include("*resp* '234 ");
      expectPortsInRange(result.stdout, server);
      await expectVerifiedDownload(server, IMAGES.aruba, out, since);
    });

    it('lftp with ftp:ssl-force and ftp:ssl-protect-data downloads an image, byte for byte', async () => {
      const out = join(work, 'lftp-tls.bin');
      const since = server.transfers.length;
      const result = await lftp(server, `get ${IMAGES.dell} -o ${out}`);
      expectSuccess(result, 'lftp (FTPS)');
      expect(result.stderr).to.match(/^---> AUTH TLS\s*$/m);
      expect(result.stderr).to.match(/^---> PROT P\s*$/m);
      await expectVerifiedDownload(server, IMAGES.dell, out, since);
    });

    it('still serves plain FTP when TLS is only offered', async () => {
      const out = join(work, 'curl-plain.bin');
      const since = server.transfers.length;
      const result = await curl(['-o', out, ftpUrl(server, TEST_USER, TEST_PASSWORD, IMAGES.dell)]);
      expectSuccess(result, 'curl (plain, TLS optional)');
      expect(result.stderr).to.not.match(/^> AUTH/m);
      await expectVerifiedDownload(server, IMAGES.dell, out, since);
    });
  });

  describe('TLS required (requireTls)', () => {
    let server: TestServer;

    before(async () => {
      server = await startTestServer(REQUIRED_TLS_RANGE, { flags: { ...TLS_FLAGS, requireTls: true } });
    });

    after(async () => {
      killStrayClients();
      await server?.stop();
    });

    it('curl --ssl-reqd downloads an image, byte for byte', async () => {
      const out = join(work, 'required-curl-tls.bin');
      const since = server.transfers.length;
      const result = await curl(['--ssl-reqd', '-o', out, ftpUrl(server, TEST_USER, TEST_PASSWORD, IMAGES.cisco)]);
      expectSuccess(result, 'curl --ssl-reqd (TLS required)');
      expectProtectedSession(result.stderr);
      await expectVerifiedDownload(server, IMAGES.cisco, out, since);
    });

    it('python ftplib FTP_TLS with prot_p() downloads an image, byte for byte', async () => {
      const out = join(work, 'required-ftplib-tls.bin');
      const since = server.transfers.length;
      const { outcome, result } = await runFtplib({
        host: server.host,
        port: server.port,
        user: TEST_USER,
        password: TEST_PASSWORD,
        tls: true,
        path: IMAGES.cisco,
        out,
      });
      expect(outcome, result.stdout).to.deep.include({ retr: '226 Transfer complete', quit: '221 Goodbye' });
      await expectVerifiedDownload(server, IMAGES.cisco, out, since);
    });

    it('a plaintext curl login fails with 530 at USER, and the password is never sent in clear', async () => {
      const out = join(work, 'required-curl-plain.bin');
      const since = server.transfers.length;
      const result = await curl(['-o', out, ftpUrl(server, TEST_USER, TEST_PASSWORD, IMAGES.cisco)]);
      expect(result.timedOut).to.equal(false);
      expect(result.code, result.stderr).to.not.equal(0);
      // 67: CURLE_LOGIN_DENIED.
      expect(result.code, result.stderr).to.equal(67);
      expect(result.stderr).to.match(/^< 530 /m);
      expect(result.stderr).to.not.match(/^> PASS/m);
      expect(existsSync(out)).to.equal(false);
      expect(server.transfers.slice(since)).to.be.empty;
    });

    it('a plaintext python ftplib login gets 530', async () => {
      const out = join(work, 'required-ftplib-plain.bin');
      const since = server.transfers.length;
      const { outcome, result } = await runFtplib({
        host: server.host,
        port: server.port,
        user: TEST_USER,
        password: TEST_PASSWORD,
        path: IMAGES.cisco,
        out,
      });
      expect(outcome.welcome).to.match(/^220 /);
      expect(outcome.error, result.stdout).to.equal('error_perm');
      expect(outcome.message).to.match(/^530 /);
      expect(result.stdout).to.not.include("*cmd* 'PASS");
      expect(server.transfers.slice(since)).to.be.empty;
    });

    it('a TLS login with clear data (curl --ftp-ssl-control: PROT C) gets 536, then 522, and no bytes', async () => {
      const out = join(work, 'required-curl-clear-data.bin');
      const since = server.transfers.length;
      const result = await curl(['--ftp-ssl-control', '-o', out, ftpUrl(server, TEST_USER, TEST_PASSWORD, IMAGES.cisco)]);
      expect(result.timedOut).to.equal(false);
      expect(result.code, result.stderr).to.not.equal(0);
      expect(result.stderr).to.match(/^> PROT C\s*$/m);
      expect(result.stderr).to.match(/^< 536 /m);
      expect(result.stderr).to.match(/^< 522 /m);
      expect(result.stderr).to.not.match(/^> RETR/m);
      expect(existsSync(out)).to.equal(false);
      expect(server.transfers.slice(since)).to.be.empty;
    });
  });
});
