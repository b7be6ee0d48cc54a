import { expect } from 'chai';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { once } from 'node:events';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { FIXTURE_IMAGES, startTestServer, TEST_PASSWORD, TEST_USER, type TestServer } from '../helpers/testServer.js';
import { FtpControl, parsePasv, readDataConnection } from '../helpers/ftpControl.js';
import { RecordingLogger } from '../helpers/recordingLogger.js';

const IMAGE = 'cisco/c9300-universalk9.17.09.04a.SPA.bin';
const IMAGE_SHA256 = createHash('sha256').update(readFileSync(join(FIXTURE_IMAGES, IMAGE))).digest('hex');
const sha256 = (data: Buffer) => createHash('sha256').update(data).digest('hex');

/** A TCP listener that records who connected to it. */
async function recordingListener(host: string): Promise<{ server: Server; port: number; connections: Socket[] }> {
  const connections: Socket[] = [];
  const server = createServer((socket) => {
    connections.push(socket);
    socket.on('error', () => {});
    socket.resume();
  });
  await new Promise<void>((resolve) => server.listen(0, host, resolve));
  const address = server.address();
  if (!address || typeof address === 'string') throw new Error('no address');
  return { server, port: address.port, connections };
}

async function closeListener(listener: { server: Server; connections: Socket[] }): Promise<void> {
  for (const socket of listener.connections) socket.destroy();
  await new Promise((resolve) => listener.server.close(resolve));
}

describe('data connections', function () {
  let server: TestServer | null = null;
  const controls: FtpControl[] = [];
  const login = async (s: TestServer, localAddress?: string) => {
    const control = await FtpControl.connect(s.port, '127.0.0.1', localAddress);
    controls.push(control);
    expect((await control.login(TEST_USER, TEST_PASSWORD)).code).to.equal(230);
    return control;
  };
  afterEach(async function () {
    for (const c of controls.splice(0)) c.close();
    await server?.stop();
    server = null;
  });

  describe('active mode', function () {
    it('is off by default: PORT and EPRT get 502', async function () {
      server = await startTestServer('40200-40204');
      const control = await login(server);
      expect((await control.send('PORT 127,0,0,1,200,10')).code).to.equal(502);
      expect((await control.send('EPRT |1|127.0.0.1|51210|')).code).to.equal(502);
    });

    it('when enabled, connects only to the control peer on ports >= 1024', async function () {
      server = await startTestServer('40200-40204', { flags: { activeMode: true } });
      const control = await login(server);
      const thirdParty = await recordingListener('127.0.0.2');
      const own = await recordingListener('127.0.0.1');
      try {
        const p = thirdParty.port;
        expect((await control.send(`PORT 127,0,0,2,${p >> 8},${p & 255}`)).code).to.equal(500);
        expect((await control.send(`EPRT |1|127.0.0.2|${p}|`)).code).to.equal(500);
        expect((await control.send('PORT 127,0,0,1,0,22')).code).to.equal(500);
        expect((await control.send('EPRT |1|127.0.0.1|25|')).code).to.equal(500);
        expect((await control.send('PORT 1,2,3')).code).to.equal(500);
        // The legitimate target works and gets the image.
        const q = own.port;
        expect((await control.send(`PORT 127,0,0,1,${q >> 8},${q & 255}`)).code).to.equal(200);
        const arrived = once(own.server, 'connection');
        expect((await control.send(`RETR ${IMAGE}`)).code).to.equal(150);
        const [socket] = (await arrived) as [Socket];
        const chunks: Buffer[] = [];
        socket.on('data', (c: Buffer) => chunks.push(c));
        expect((await control.read())?.code).to.equal(226);
        if (!socket.readableEnded) await once(socket, 'end');
        expect(sha256(Buffer.concat(chunks))).to.equal(IMAGE_SHA256);
        expect(thirdParty.connections).to.have.length(0);
      } finally {
        await closeListener(thirdParty);
        await closeListener(own);
      }
    });
  });

  describe('data-connection theft', function () {
    it('drops a data connection from a foreign address and the legitimate session still transfers', async function () {
      const logger = new RecordingLogger();
      server = await startTestServer('40210-40214', { logger });
      const victim = await login(server, '127.0.0.1');
      const { port } = parsePasv(await victim.send('PASV'));
      // The thief races to the announced port from another address.
      const thief = connect({ port, host: '127.0.0.1', localAddress: '127.0.0.2' });
      const stolen: Buffer[] = [];
      thief.on('data', (c: Buffer) => stolen.push(c));
      thief.on('error', () => {});
      await once(thief, 'close');
      expect(Buffer.concat(stolen)).to.have.length(0);
      expect(logger.records.some((r) => r.level === 'warn' && /foreign address/.test(r.message) && r.fields['from'] === '127.0.0.2')).to.equal(true);
      // ftp-srv closed the victim's control session here; ours keeps it and serves the real client.
      const data = readDataConnection(port, '127.0.0.1', '127.0.0.1');
      expect((await victim.send(`RETR ${IMAGE}`)).code).to.equal(150);
      expect((await victim.read())?.code).to.equal(226);
      expect(sha256(await data)).to.equal(IMAGE_SHA256);
      expect(server.transfers.at(-1)?.sha256).to.equal(IMAGE_SHA256);
    });

    it("a thief's own session cannot use a port reserved for another session", async function () {
      server = await startTestServer('40220-40220', { flags: { pasvWait: '0.3' } });
      const victim = await login(server, '127.0.0.1');
      const thiefSession = await login(server, '127.0.0.2');
      const { port } = parsePasv(await victim.send('PASV'));
      expect(port).to.equal(40220);
      expect((await thiefSession.send('PASV')).code).to.equal(425);
      const data = readDataConnection(port);
      expect((await victim.send(`RETR ${IMAGE}`)).code).to.equal(150);
      expect((await victim.read())?.code).to.equal(226);
      expect(sha256(await data)).to.equal(IMAGE_SHA256);
    });
  });

  describe('transfers', function () {
    it('REST resumes at an offset and the audit hashes exactly the bytes sent', async function () {
      server = await startTestServer('40230-40234');
      const control = await login(server);
      const whole = readFileSync(join(FIXTURE_IMAGES, IMAGE));
      expect((await control.send('REST 1000000')).code).to.equal(350);
      const { port } = parsePasv(await control.send('PASV'));
      const data = readDataConnection(port);
      expect((await control.send(`RETR ${IMAGE}`)).code).to.equal(150);
      expect((await control.read())?.code).to.equal(226);
      const tail = await data;
      expect(tail.equals(whole.subarray(1_000_000))).to.equal(true);
      expect(server.transfers.at(-1)).to.include({ offset: 1_000_000, bytes: whole.length - 1_000_000, sha256: sha256(tail), result: 'complete' });
    });

    it('ABOR during a transfer gets 426 then 226 and the session goes on', async function () {
      server = await startTestServer('40240-40244', { copyImages: true });
      const { writeFileSync } = await import('node:fs');
      writeFileSync(join(server.images, 'big.bin'), Buffer.alloc(64 * 1024 * 1024, 7));
      const control = await login(server);
      const { port } = parsePasv(await control.send('PASV'));
      const data = connect({ port, host: '127.0.0.1' });
      data.on('error', () => {});
      await once(data, 'connect');
      data.pause();
      expect((await control.send('RETR big.bin')).code).to.equal(150);
      control.write('ABOR\r\n');
      expect((await control.read())?.code).to.equal(426);
      expect((await control.read())?.code).to.equal(226);
      data.destroy();
      expect((await control.send('NOOP')).code).to.equal(200);
      expect(server.transfers.at(-1)).to.include({ result: 'aborted', reason: 'aborted' });
    });

    it('200 small RETRs on one session all complete', async function () {
      server = await startTestServer('40250-40254');
      const control = await login(server);
      const expected = readFileSync(join(FIXTURE_IMAGES, 'dell/OS10_10.5.6.0.bin'));
      for (let i = 0; i < 200; i++) {
        const { port } = parsePasv(await control.send('PASV'));
        const data = readDataConnection(port);
        expect((await control.send('RETR dell/OS10_10.5.6.0.bin')).code).to.equal(150);
        expect((await control.read())?.code).to.equal(226);
        expect((await data).length).to.equal(expected.length);
      }
      expect(server.transfers).to.have.length(200);
    });
  });
});
