import { expect } from 'chai';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { createServer, connect, type Server } from 'node:net';
import { once } from 'node:events';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startTestServer, TEST_PASSWORD, TEST_USER, type TestServer } from '../helpers/testServer.js';
import { FtpControl, parseEpsv, parsePasv, readDataConnection } from '../helpers/ftpControl.js';
import { RecordingLogger } from '../helpers/recordingLogger.js';

const execFileAsync = promisify(execFile);

/** Opens a logged-in control session. */
async function session(server: TestServer): Promise<FtpControl> {
  const control = await FtpControl.connect(server.port);
  const reply = await control.login(TEST_USER, TEST_PASSWORD);
  expect(reply.code).to.equal(230);
  return control;
}

describe('passive range contract', function () {
  const controls: FtpControl[] = [];
  let server: TestServer | null = null;
  const open = async (s: TestServer, n = 1) => {
    const made: FtpControl[] = [];
    for (let i = 0; i < n; i++) made.push(await session(s));
    controls.push(...made);
    return made;
  };

  afterEach(async function () {
    for (const c of controls.splice(0)) c.close();
    await server?.stop();
    server = null;
  });

  it('every PASV and EPSV port is inside the range, and so is every audited data connection', async function () {
    server = await startTestServer('40000-40004');
    const [a, b] = await open(server, 2);
    for (let i = 0; i < 6; i++) {
      const { port } = parsePasv(await a!.send('PASV'));
      const data = readDataConnection(port);
      expect((await a!.send('RETR dell/OS10_10.5.6.0.bin')).code).to.equal(150);
      expect((await a!.read())?.code).to.equal(226);
      await data;
    }
    expect(server.transfers.map((t) => t.dataPort)).to.have.length(6);
    for (const t of server.transfers) expect(t.dataPort).to.be.within(40000, 40004);
    for (let i = 0; i < 12; i++) {
      const control = i % 2 ? a! : b!;
      const reply = await control.send(i % 3 ? 'PASV' : 'EPSV');
      const port = reply.code === 227 ? parsePasv(reply).port : parseEpsv(reply);
      expect(port).to.be.within(40000, 40004);
    }
  });

  it('PASV reply carries the control connection local address, or --pasv-address', async function () {
    server = await startTestServer('40000-40004');
    const [a] = await open(server);
    expect(parsePasv(await a!.send('PASV')).host).to.equal('127.0.0.1');
    await server.stop();
    server = await startTestServer('40000-40004', { flags: { pasvAddress: '192.0.2.10' } });
    const [b] = await open(server);
    expect(parsePasv(await b!.send('PASV')).host).to.equal('192.0.2.10');
  });

  it('a full pool makes PASV wait, then 425, and the session stays usable', async function () {
    server = await startTestServer('40010-40014', { flags: { pasvWait: '1' } });
    const holders = await open(server, 5);
    for (const h of holders) expect((await h.send('PASV')).code).to.equal(227);
    const [late] = await open(server);
    const started = Date.now();
    const reply = await late!.send('PASV');
    expect(reply.code).to.equal(425);
    expect(Date.now() - started).to.be.at.least(900);
    expect((await late!.send('NOOP')).code).to.equal(200);
    holders[0]!.close();
    const again = await late!.send('PASV');
    expect(again.code).to.equal(227);
    expect(parsePasv(again).port).to.be.within(40010, 40014);
  });

  it('waiting PASVs are served first come, first served', async function () {
    server = await startTestServer('40020-40021', { flags: { pasvWait: '10' } });
    const holders = await open(server, 2);
    for (const h of holders) expect((await h.send('PASV')).code).to.equal(227);
    const [first, second] = await open(server, 2);
    const order: string[] = [];
    const firstReply = first!.send('PASV').then((r) => (order.push('first'), r));
    await new Promise((r) => setTimeout(r, 100));
    const secondReply = second!.send('PASV').then((r) => (order.push('second'), r));
    await new Promise((r) => setTimeout(r, 100));
    holders[0]!.close();
    expect((await firstReply).code).to.equal(227);
    holders[1]!.close();
    expect((await secondReply).code).to.equal(227);
    expect(order).to.deep.equal(['first', 'second']);
  });

  it("a session's repeated PASV frees its previous port", async function () {
    server = await startTestServer('40030-40034', { flags: { pasvWait: '0.5' } });
    const [repeater] = await open(server);
    for (let i = 0; i < 10; i++) expect((await repeater!.send(i % 2 ? 'EPSV' : 'PASV')).code).to.be.oneOf([227, 229]);
    // If the repeats had leaked, the pool would be empty now and these would wait and get 425.
    const others = await open(server, 4);
    for (const other of others) expect((await other.send('PASV')).code).to.equal(227);
  });

  it('a PASV nobody connects to frees its port after the data timeout', async function () {
    server = await startTestServer('40040-40041', { flags: { pasvWait: '5', dataTimeout: '1' } });
    const holders = await open(server, 2);
    for (const h of holders) expect((await h.send('PASV')).code).to.equal(227);
    const [late] = await open(server);
    const started = Date.now();
    expect((await late!.send('PASV')).code).to.equal(227);
    expect(Date.now() - started).to.be.within(700, 3000);
    // The expired session's RETR gets 425 rather than hanging.
    const retr = await holders[0]!.send('RETR /dell/OS10_10.5.6.0.bin');
    expect(retr.code).to.equal(425);
  });

  it('closing the control connection frees its port at once', async function () {
    server = await startTestServer('40050-40051', { flags: { pasvWait: '5', dataTimeout: '30' } });
    const holders = await open(server, 2);
    for (const h of holders) expect((await h.send('PASV')).code).to.equal(227);
    const [late] = await open(server);
    const pending = late!.send('PASV');
    await new Promise((r) => setTimeout(r, 100));
    const started = Date.now();
    holders[1]!.close();
    expect((await pending).code).to.equal(227);
    expect(Date.now() - started).to.be.below(1000);
  });

  it('a client that vanishes after PASV and RETR, before its data connection, frees its port at once (1-port range)', async function () {
    server = await startTestServer('40055-40055', { flags: { pasvWait: '5', dataTimeout: '60' } });
    const [gone, next] = await open(server, 2);
    expect((await gone!.send('PASV')).code).to.equal(227);
    expect((await gone!.send('RETR /dell/OS10_10.5.6.0.bin')).code).to.equal(150); // waits for a data connection that never comes
    const pending = next!.send('PASV');
    await new Promise((r) => setTimeout(r, 100));
    const started = Date.now();
    gone!.close();
    expect((await pending).code).to.equal(227);
    expect(Date.now() - started).to.be.below(1000);
    expect(server.transfers.at(-1)).to.include({ result: 'aborted', code: 425 });
  });

  it('a stalled reader gets 426 after the data timeout and holds no port', async function () {
    server = await startTestServer('40060-40060', { copyImages: true, flags: { dataTimeout: '1', pasvWait: '1' } });
    writeFileSync(join(server.images, 'big.bin'), Buffer.alloc(64 * 1024 * 1024, 1));
    const [reader, other] = await open(server, 2);
    const { port } = parsePasv(await reader!.send('PASV'));
    const data = connect({ port, host: '127.0.0.1' });
    await once(data, 'connect');
    data.pause(); // never read: the server's writes stall once the socket buffers fill
    expect((await reader!.send('RETR /big.bin')).code).to.equal(150);
    // The only passive port is free again while the stalled transfer still runs.
    expect((await other!.send('PASV')).code).to.equal(227);
    const aborted = await reader!.read(10_000);
    expect(aborted?.code).to.equal(426);
    data.destroy();
    expect(server.transfers.at(-1)).to.include({ result: 'aborted', reason: 'stalled', code: 426 });
    expect((await reader!.send('NOOP')).code).to.equal(200);
  });

  it('a slow but steady reader (16 KiB receive window, 30 KB/s, 4 KiB reads) is never cut, however long a write takes', async function () {
    this.timeout(30_000);
    // The field report's input scaled down: a 2 s data timeout, 8 s of reading. Each 1 MiB write
    // waits far longer than 2 s for the kernel to take it; only the peer's ACKs show progress.
    server = await startTestServer('40065-40065', { copyImages: true, flags: { dataTimeout: '2' } });
    writeFileSync(join(server.images, 'big.bin'), Buffer.alloc(64 * 1024 * 1024, 7));
    const reader = `
import socket, sys, time, re
c = socket.create_connection(('127.0.0.1', ${server.port})); f = c.makefile('rb')
def reply():
    r = f.readline().decode()
    while r[3:4] == '-': r = f.readline().decode()
    return r
def cmd(s):
    c.sendall((s + '\\r\\n').encode()); return reply()
reply(); cmd('USER ${TEST_USER}'); assert cmd('PASS ${TEST_PASSWORD}').startswith('230')
m = re.search(r'\\((\\d+),(\\d+),(\\d+),(\\d+),(\\d+),(\\d+)\\)', cmd('PASV'))
d = socket.socket(); d.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16384)
d.connect(('127.0.0.1', int(m.group(5)) * 256 + int(m.group(6))))
assert cmd('RETR /big.bin').startswith('150')
c.setblocking(False); start = time.time(); got = 0
while time.time() - start < 8:
    got += len(d.recv(4096))
    try:
        early = c.recv(1000)
        if early: print('CUT', early.decode().strip(), got); sys.exit(1)
    except BlockingIOError: pass
    time.sleep(4096 / 30000)
print('OK', got)
`;
    const result = await execFileAsync('python3', ['-c', reader], { timeout: 20_000 }).catch((err: { stdout?: string; stderr?: string }) => err);
    expect(String(result.stdout).trim(), String(result.stderr ?? '')).to.match(/^OK \d+$/);
    expect(Number(String(result.stdout).trim().split(' ')[1])).to.be.greaterThan(150_000);
  });

  it('skips a passive port held by another process, with a warning', async function () {
    const squatter: Server = createServer();
    await new Promise<void>((resolve) => squatter.listen(40072, '127.0.0.1', resolve));
    const logger = new RecordingLogger();
    try {
      server = await startTestServer('40070-40074', { logger });
      expect(server.server.passivePorts()).to.deep.equal([40070, 40071, 40073, 40074]);
      const warning = logger.records.find((r) => r.level === 'warn' && r.fields['port'] === 40072);
      expect(warning?.message).to.match(/held by another process/);
      const [a] = await open(server);
      for (let i = 0; i < 8; i++) expect(parsePasv(await a!.send('PASV')).port).to.not.equal(40072);
    } finally {
      await new Promise((resolve) => squatter.close(resolve));
    }
  });
});
