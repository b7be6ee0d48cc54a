import { expect } from 'chai';
import { connect } from 'node:net';
import { once } from 'node:events';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startTestServer, TEST_PASSWORD, TEST_USER, type TestServer } from '../helpers/testServer.js';
import { ControlSessions, parsePasv, readDataConnection } from '../helpers/ftpControl.js';
import { RecordingLogger } from '../helpers/recordingLogger.js';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('control-channel limits', function () {
  let server: TestServer | null = null;
  const sessions = new ControlSessions();
  const connectTo = (s: TestServer, localAddress?: string) => sessions.connect(s.port, localAddress);
  const login = async (s: TestServer, localAddress?: string) => {
    const control = await connectTo(s, localAddress);
    expect((await control.login(TEST_USER, TEST_PASSWORD)).code).to.equal(230);
    return control;
  };
  afterEach(async function () {
    sessions.closeAll();
    await server?.stop();
    server = null;
  });

  it('buffers a command split across TCP segments', async function () {
    server = await startTestServer('40400-40404');
    const control = await connectTo(server);
    expect((await control.read())?.code).to.equal(220);
    for (const piece of ['US', 'ER ', TEST_USER.slice(0, 2), TEST_USER.slice(2), '\r', '\n']) {
      control.write(piece);
      await sleep(30);
    }
    expect((await control.read())?.code).to.equal(331);
    control.write(`PASS ${TEST_PASSWORD}\r`);
    await sleep(30);
    control.write('\nNO');
    await sleep(30);
    control.write('OP\r\n');
    expect((await control.read())?.code).to.equal(230);
    expect((await control.read())?.code).to.equal(200);
  });

  it('answers pipelined commands in order', async function () {
    server = await startTestServer('40400-40404');
    const control = await connectTo(server);
    expect((await control.read())?.code).to.equal(220);
    control.write(`USER ${TEST_USER}\r\nPASS ${TEST_PASSWORD}\r\nPWD\r\nSIZE dell/OS10_10.5.6.0.bin\r\nNOOP\r\n`);
    const codes = [];
    for (let i = 0; i < 5; i++) codes.push((await control.read())?.code);
    expect(codes).to.deep.equal([331, 230, 257, 213, 200]);
  });

  it('a line over 4 KiB gets 500 and that client is cut; a running transfer elsewhere is unaffected', async function () {
    server = await startTestServer('40400-40404');
    const bystander = await login(server);
    const { port } = parsePasv(await bystander.send('PASV'));
    const data = readDataConnection(port);
    const attacker = await connectTo(server);
    expect((await attacker.read())?.code).to.equal(220);
    attacker.write(`USER ${'A'.repeat(5000)}\r\n`);
    expect((await attacker.read())?.code).to.equal(500);
    await attacker.waitClosed();
    expect((await bystander.send('RETR cisco/c9300-universalk9.17.09.04a.SPA.bin')).code).to.equal(150);
    expect((await bystander.read())?.code).to.equal(226);
    expect((await data).length).to.equal(1048699);
  });

  it('20 kB with no newline at all also gets 500 and a close', async function () {
    server = await startTestServer('40400-40404');
    const attacker = await connectTo(server);
    expect((await attacker.read())?.code).to.equal(220);
    attacker.write('X'.repeat(20_000));
    expect((await attacker.read())?.code).to.equal(500);
    await attacker.waitClosed();
  });

  it('the idle timeout answers 421, even to a slowloris trickling bytes', async function () {
    server = await startTestServer('40400-40404', { flags: { idleTimeout: '1' } });
    const idle = await login(server);
    const slow = await connectTo(server);
    expect((await slow.read())?.code).to.equal(220);
    const trickle = setInterval(() => slow.closed || slow.write('N'), 200);
    try {
      const started = Date.now();
      expect((await idle.read(5000))?.code).to.equal(421);
      expect((await slow.read(5000))?.code).to.equal(421);
      expect(Date.now() - started).to.be.within(500, 2500);
      await idle.waitClosed();
      await slow.waitClosed();
    } finally {
      clearInterval(trickle);
    }
  });

  it('the idle timeout never fires during a running transfer', async function () {
    server = await startTestServer('40400-40404', { copyImages: true, flags: { idleTimeout: '1' } });
    writeFileSync(join(server.images, 'big.bin'), Buffer.alloc(48 * 1024 * 1024, 3));
    const control = await login(server);
    const { port } = parsePasv(await control.send('PASV'));
    const data = connect({ port, host: '127.0.0.1' });
    await once(data, 'connect');
    let received = 0;
    data.on('data', (chunk: Buffer) => {
      received += chunk.length;
      // Read slowly, so the transfer outlives the 1 s idle timeout several times over.
      data.pause();
      setTimeout(() => data.resume(), 5);
    });
    const started = Date.now();
    expect((await control.send('RETR big.bin')).code).to.equal(150);
    const done = await control.read(60_000);
    expect(done?.code).to.equal(226);
    expect(Date.now() - started).to.be.above(2000);
    if (!data.readableEnded) await once(data, 'end');
    expect(received).to.equal(48 * 1024 * 1024);
    // And idleness after the transfer is still caught.
    expect((await control.read(5000))?.code).to.equal(421);
  });

  it('a client that resets its connection is logged at debug, never as an error (a switch reboots, a link drops)', async function () {
    const logger = new RecordingLogger();
    server = await startTestServer('40400-40404', { logger, flags: { logLevel: 'debug' } });
    const control = await login(server);
    control.socket.resetAndDestroy();
    await sleep(200);
    const other = await login(server); // and the server goes on serving
    expect((await other.send('NOOP')).code).to.equal(200);
    expect(logger.records.filter((r) => r.level === 'error' || r.level === 'warn')).to.deep.equal([]);
    expect(logger.records.some((r) => r.level === 'debug' && /ECONNRESET/.test(JSON.stringify(r.fields)))).to.equal(true);
  });

  it('the per-address connection limit answers 421 before the greeting', async function () {
    server = await startTestServer('40400-40404', { flags: { maxPerIp: '2' } });
    const first = await connectTo(server);
    const second = await connectTo(server);
    expect((await first.read())?.code).to.equal(220);
    expect((await second.read())?.code).to.equal(220);
    const third = await connectTo(server);
    const refused = await third.read();
    expect(refused?.code).to.equal(421);
    expect(refused?.text).to.match(/your address/);
    await third.waitClosed();
    const elsewhere = await connectTo(server, '127.0.0.2');
    expect((await elsewhere.read())?.code).to.equal(220);
    first.close();
    await sleep(100);
    const again = await connectTo(server);
    expect((await again.read())?.code).to.equal(220);
  });

  it('the total connection limit answers 421', async function () {
    server = await startTestServer('40400-40404', { flags: { maxConnections: '3', maxPerIp: '2' } });
    const a = await connectTo(server, '127.0.0.1');
    const b = await connectTo(server, '127.0.0.2');
    const c = await connectTo(server, '127.0.0.3');
    for (const control of [a, b, c]) expect((await control.read())?.code).to.equal(220);
    const d = await connectTo(server, '127.0.0.4');
    const refused = await d.read();
    expect(refused?.code).to.equal(421);
    expect(refused?.text).to.match(/server limit 3/);
  });
});
