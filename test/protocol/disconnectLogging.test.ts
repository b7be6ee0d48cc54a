/**
 * Log levels fit what happened: a client that resets its connections right after a finished
 * transfer (as switches do) is routine, never an error or a warning.
 */
import { expect } from 'chai';
import { startTestServer, TEST_PASSWORD, TEST_USER, type TestServer } from '../helpers/testServer.js';
import { FtpControl, parsePasv, readDataConnection } from '../helpers/ftpControl.js';
import { RecordingLogger } from '../helpers/recordingLogger.js';

describe('log levels of client disconnects', function () {
  let server: TestServer;
  const logger = new RecordingLogger();
  before(async () => (server = await startTestServer('44915-44916', { logger, flags: { logLevel: 'debug' } })));
  after(() => server.stop());

  it('a client that resets its control connection right after 226 is logged at debug, not as an error', async function () {
    for (let i = 0; i < 3; i++) {
      const control = await FtpControl.connect(server.port);
      expect((await control.login(TEST_USER, TEST_PASSWORD)).code).to.equal(230);
      const data = readDataConnection(parsePasv(await control.send('PASV')).port);
      expect((await control.send('RETR /dell/OS10_10.5.6.0.bin')).code).to.equal(150);
      expect((await control.read())?.code).to.equal(226);
      control.socket.resetAndDestroy();
      await data;
    }
    for (let tries = 0; server.server.sessionCount() > 0; tries++) {
      expect(tries).to.be.below(200);
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    expect(server.transfers.filter((t) => t.result === 'complete')).to.have.length(3);
    expect(logger.records.filter((r) => r.level === 'error' || r.level === 'warn')).to.deep.equal([]);
    expect(logger.records.filter((r) => r.level === 'debug' && /ECONNRESET/.test(JSON.stringify(r.fields)))).to.have.length.at.least(1);
  });
});
