import { expect } from 'chai';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { once } from 'node:events';
import { connect as tlsConnect } from 'node:tls';
import { join } from 'node:path';
import { PROJECT_ROOT } from '../../src/config/loader.js';
import { FIXTURE_IMAGES, startTestServer, TEST_PASSWORD, TEST_USER, type TestServer } from '../helpers/testServer.js';
import { ControlSessions, parseEpsv, readDataConnection } from '../helpers/ftpControl.js';

const TLS_FLAGS = {
  tlsCert: join(PROJECT_ROOT, 'fixtures', 'tls', 'server.crt'),
  tlsKey: join(PROJECT_ROOT, 'fixtures', 'tls', 'server.key'),
};
const IMAGE = 'cisco/c9300-universalk9.17.09.04a.SPA.bin';
const sha256 = (data: Buffer) => createHash('sha256').update(data).digest('hex');

describe('FTPS (explicit, AUTH TLS)', function () {
  let server: TestServer | null = null;
  const sessions = new ControlSessions();
  const connectTo = (s: TestServer) => sessions.greeted(s.port);
  afterEach(async function () {
    sessions.closeAll();
    await server?.stop();
    server = null;
  });

  it('AUTH TLS, PBSZ 0, PROT P: login and a protected RETR', async function () {
    server = await startTestServer('40600-40604', { flags: TLS_FLAGS });
    const plain = await connectTo(server);
    expect((await plain.send('FEAT')).text).to.include('AUTH TLS');
    const secure = await plain.startTls();
    sessions.track(secure);
    expect((await secure.send(`USER ${TEST_USER}`)).code).to.equal(331);
    expect((await secure.send(`PASS ${TEST_PASSWORD}`)).code).to.equal(230);
    expect((await secure.send('PBSZ 0')).code).to.equal(200);
    expect((await secure.send('PROT P')).code).to.equal(200);
    const port = parseEpsv(await secure.send('EPSV'));
    const data = readDataConnection(port, '127.0.0.1', undefined, true);
    expect((await secure.send(`RETR ${IMAGE}`)).code).to.equal(150);
    expect((await secure.read())?.code).to.equal(226);
    expect(sha256(await data)).to.equal(sha256(readFileSync(join(FIXTURE_IMAGES, IMAGE))));
  });

  it('discards commands pipelined in plaintext behind AUTH TLS (CVE-2011-0411 class)', async function () {
    server = await startTestServer('40600-40604', { flags: TLS_FLAGS });
    const plain = await connectTo(server);
    plain.write(`USER ${TEST_USER}\r\n`);
    expect((await plain.read())?.code).to.equal(331);
    // The injected PASS rides in the same segment as AUTH TLS; it must never be executed.
    plain.socket.write(`AUTH TLS\r\nPASS ${TEST_PASSWORD}\r\n`);
    expect((await plain.read())?.code).to.equal(234);
    plain.socket.removeAllListeners('data');
    const socket = tlsConnect({ socket: plain.socket, rejectUnauthorized: false });
    await once(socket, 'secureConnect');
    socket.write('PWD\r\n');
    const [reply] = (await once(socket, 'data')) as [Buffer];
    expect(reply.toString()).to.match(/^530 /);
    socket.destroy();
  });

  describe('with --require-tls', function () {
    it('refuses USER before AUTH TLS with 530', async function () {
      server = await startTestServer('40600-40604', { flags: { ...TLS_FLAGS, requireTls: true } });
      const plain = await connectTo(server);
      expect((await plain.send(`USER ${TEST_USER}`)).code).to.equal(530);
      expect((await plain.send('PASV')).code).to.equal(530);
      expect((await plain.send('FEAT')).code).to.equal(211);
    });

    it('refuses plaintext data with 522 and PROT C with 536', async function () {
      server = await startTestServer('40600-40604', { flags: { ...TLS_FLAGS, requireTls: true } });
      const secure = await (await connectTo(server)).startTls();
      sessions.track(secure);
      await secure.send(`USER ${TEST_USER}`);
      expect((await secure.send(`PASS ${TEST_PASSWORD}`)).code).to.equal(230);
      expect((await secure.send('EPSV')).code).to.equal(522);
      expect((await secure.send('PASV')).code).to.equal(522);
      expect((await secure.send(`RETR ${IMAGE}`)).code).to.equal(522);
      expect((await secure.send('PBSZ 0')).code).to.equal(200);
      expect((await secure.send('PROT C')).code).to.equal(536);
      expect((await secure.send('PROT P')).code).to.equal(200);
      expect((await secure.send('EPSV')).code).to.equal(229);
    });
  });

  it('AUTH TLS without a configured certificate gets 502', async function () {
    server = await startTestServer('40600-40604');
    const plain = await connectTo(server);
    expect((await plain.send('AUTH TLS')).code).to.equal(502);
    expect((await plain.send('FEAT')).text).to.not.include('AUTH TLS');
  });
});
