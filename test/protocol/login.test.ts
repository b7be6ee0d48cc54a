import { expect } from 'chai';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { hashPassword } from '../../src/server/accounts.js';
import { startTestServer, TEST_PASSWORD, TEST_USER, type TestServer } from '../helpers/testServer.js';
import { ControlSessions } from '../helpers/ftpControl.js';
import { RecordingLogger } from '../helpers/recordingLogger.js';

describe('login', function () {
  let server: TestServer | null = null;
  const sessions = new ControlSessions();
  const connect = (s: TestServer, localAddress?: string) => sessions.greeted(s.port, localAddress);
  afterEach(async function () {
    sessions.closeAll();
    await server?.stop();
    server = null;
  });

  it('anonymous is refused unless --anonymous is given', async function () {
    server = await startTestServer('40300-40304');
    const control = await connect(server);
    await control.send('USER anonymous');
    expect((await control.send('PASS guest@')).code).to.equal(530);
    await server.stop();
    sessions.closeAll();
    server = await startTestServer('40300-40304', { flags: { anonymous: true } });
    const anon = await connect(server);
    expect((await anon.send('USER anonymous')).code).to.equal(331);
    expect((await anon.send('PASS guest@')).code).to.equal(230);
    expect((await anon.send('SIZE dell/OS10_10.5.6.0.bin')).code).to.equal(213);
    expect((await anon.send('DELE dell/OS10_10.5.6.0.bin')).code).to.equal(550);
  });

  it('commands before login get 530', async function () {
    server = await startTestServer('40300-40304');
    const control = await connect(server);
    for (const line of ['PASV', 'RETR x', 'LIST', 'SIZE x', 'CWD /', 'STOR x']) expect((await control.send(line)).code, line).to.equal(530);
  });

  it('delays each failed login by at least 1 s, with the same reply for unknown user and wrong password', async function () {
    server = await startTestServer('40300-40304');
    const control = await connect(server);
    const attempt = async (user: string, password: string) => {
      expect((await control.send(`USER ${user}`)).text).to.equal('331 Password required');
      const started = Date.now();
      const reply = await control.send(`PASS ${password}`);
      return { reply, elapsed: Date.now() - started };
    };
    const wrongPassword = await attempt(TEST_USER, 'nope');
    const unknownUser = await attempt('no-such-user', 'nope');
    expect(wrongPassword.elapsed).to.be.at.least(1000);
    expect(unknownUser.elapsed).to.be.at.least(1000);
    expect(wrongPassword.reply.text).to.equal('530 Login incorrect');
    expect(unknownUser.reply.text).to.equal(wrongPassword.reply.text);
  });

  it('closes with 421 after three failures', async function () {
    server = await startTestServer('40300-40304');
    const control = await connect(server);
    for (let i = 1; i <= 3; i++) {
      await control.send(`USER ${TEST_USER}`);
      const reply = await control.send('PASS wrong');
      expect(reply.code).to.equal(i < 3 ? 530 : 421);
    }
    await control.waitClosed();
    // Another session is unaffected and logs in at once.
    const other = await connect(server);
    await other.send(`USER ${TEST_USER}`);
    expect((await other.send(`PASS ${TEST_PASSWORD}`)).code).to.equal(230);
  });

  it('never logs a password, right or wrong', async function () {
    const logger = new RecordingLogger();
    server = await startTestServer('40300-40304', { logger, flags: { logLevel: 'debug' } });
    const control = await connect(server);
    await control.send(`USER ${TEST_USER}`);
    await control.send('PASS Wr0ng-Secret-Guess');
    await control.send(`USER ${TEST_USER}`);
    await control.send(`PASS ${TEST_PASSWORD}`);
    const dump = logger.dump();
    expect(dump).to.include('failed login');
    expect(dump).to.include('"verb":"PASS"');
    expect(dump).to.not.include('Wr0ng-Secret-Guess');
    expect(dump).to.not.include(TEST_PASSWORD);
  });

  describe('per-account source addresses and hashed passwords', function () {
    let dir: string;
    before(async function () {
      dir = mkdtempSync(join(tmpdir(), 'swfw-login-'));
      const config = {
        accounts: [
          { user: 'mgmt', passwordHash: await hashPassword('mgmt-pass'), allowFrom: ['127.0.0.2/32', 'fd00::/8'] },
          { user: TEST_USER, passwordHash: await hashPassword(TEST_PASSWORD) },
        ],
      };
      writeFileSync(join(dir, 'swfw.json'), JSON.stringify(config));
    });
    after(() => rmSync(dir, { recursive: true, force: true }));

    it('accepts the account only from its allowed CIDRs, with the same 530 otherwise', async function () {
      server = await startTestServer('40300-40304', { configFile: join(dir, 'swfw.json') });
      const outside = await connect(server, '127.0.0.1');
      await outside.send('USER mgmt');
      expect((await outside.send('PASS mgmt-pass')).text).to.equal('530 Login incorrect');
      const inside = await connect(server, '127.0.0.2');
      await inside.send('USER mgmt');
      expect((await inside.send('PASS mgmt-pass')).code).to.equal(230);
      const plain = await connect(server, '127.0.0.1');
      await plain.send(`USER ${TEST_USER}`);
      expect((await plain.send(`PASS ${TEST_PASSWORD}`)).code).to.equal(230);
    });
  });
});
