import { expect } from 'chai';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { FIXTURE_IMAGES, startTestServer, type TestServer } from '../helpers/testServer.js';
import { FtpControl, parsePasv, readDataConnection } from '../helpers/ftpControl.js';
import { RecordingLogger } from '../helpers/recordingLogger.js';

const IMAGE = 'cisco/c9300-universalk9.17.09.04a.SPA.bin';
const sha256 = (data: Buffer) => createHash('sha256').update(data).digest('hex');

describe('one-time rollout accounts', function () {
  let server: TestServer;
  const logger = new RecordingLogger();
  const controls: FtpControl[] = [];
  const connect = async (localAddress: string) => {
    const control = await FtpControl.connect(server.port, '127.0.0.1', localAddress);
    controls.push(control);
    expect((await control.read())?.code).to.equal(220);
    return control;
  };
  const login = async (control: FtpControl, user: string, password: string) => {
    await control.send(`USER ${user}`);
    return control.send(`PASS ${password}`);
  };
  before(async () => (server = await startTestServer('40800-40804', { logger })));
  afterEach(() => controls.splice(0).forEach((c) => c.close()));
  after(() => server.stop());

  it('reads its own image, from its own address, and nothing else', async function () {
    const access = await server.server.grantOneTimeAccess({ sourceAddress: '127.0.1.7', imagePath: IMAGE, validForMs: 60_000 });
    expect(access.path).to.equal(`/${IMAGE}`);
    const control = await connect('127.0.1.7');
    expect((await login(control, access.user, access.password)).code).to.equal(230);
    // The way a switch does it: CWD to the directory, then RETR the file.
    expect((await control.send('CWD /cisco')).code).to.equal(250);
    expect((await control.send('SIZE c9300-universalk9.17.09.04a.SPA.bin')).text).to.equal('213 1048699');
    const { port } = parsePasv(await control.send('PASV'));
    const data = readDataConnection(port, '127.0.0.1', '127.0.1.7');
    expect((await control.send('RETR c9300-universalk9.17.09.04a.SPA.bin')).code).to.equal(150);
    expect((await control.read())?.code).to.equal(226);
    expect(sha256(await data)).to.equal(sha256(readFileSync(join(FIXTURE_IMAGES, IMAGE))));
    expect(server.transfers.at(-1)).to.include({ user: access.user, client: '127.0.1.7', result: 'complete' });
    // Everything else looks missing.
    expect((await control.send('SIZE /dell/OS10_10.5.6.0.bin')).code).to.equal(550);
    expect((await control.send('CWD /dell')).code).to.equal(550);
    expect((await control.send('STAT /')).code).to.equal(550);
    expect((await control.send('PASV')).code).to.equal(227);
    expect((await control.send('NLST /')).code).to.equal(550);
    expect((await control.send('PASV')).code).to.equal(227);
    expect((await control.send('RETR /dell/OS10_10.5.6.0.bin')).code).to.equal(550);
    expect(logger.dump()).to.not.include(access.password);
  });

  it('is refused from another address, after revoke and after expiry, like a wrong password', async function () {
    const access = await server.server.grantOneTimeAccess({ sourceAddress: '127.0.1.8', imagePath: IMAGE, validForMs: 60_000 });
    const elsewhere = await connect('127.0.1.9');
    expect((await login(elsewhere, access.user, access.password)).text).to.equal('530 Login incorrect');
    const wrong = await connect('127.0.1.8');
    expect((await login(wrong, access.user, 'guess')).text).to.equal('530 Login incorrect');
    access.revoke();
    const revoked = await connect('127.0.1.8');
    expect((await login(revoked, access.user, access.password)).text).to.equal('530 Login incorrect');

    const brief = await server.server.grantOneTimeAccess({ sourceAddress: '127.0.1.8', imagePath: IMAGE, validForMs: 50 });
    await new Promise((resolve) => setTimeout(resolve, 100));
    const late = await connect('127.0.1.8');
    expect((await login(late, brief.user, brief.password)).text).to.equal('530 Login incorrect');
  });

  it('cannot be granted for a path outside the repository or a directory', async function () {
    let failures = 0;
    for (const imagePath of ['../../etc/passwd', 'cisco', 'nope.bin']) {
      await server.server.grantOneTimeAccess({ sourceAddress: '127.0.1.8', imagePath, validForMs: 1000 }).catch(() => failures++);
    }
    expect(failures).to.equal(3);
  });
});
