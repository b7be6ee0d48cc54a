import { expect } from 'chai';
import { createServer, type Server } from 'node:net';
import { startTestServer, TEST_PASSWORD, TEST_USER, type TestServer } from '../helpers/testServer.js';
import { FtpControl, parseEpsv, parsePasv, readDataConnection } from '../helpers/ftpControl.js';

describe('check-ports probe commands (SITE PIN, SITE PROBE)', function () {
  let server: TestServer;
  let squatter: Server;
  const controls: FtpControl[] = [];
  const login = async () => {
    const control = await FtpControl.connect(server.port);
    controls.push(control);
    expect((await control.login(TEST_USER, TEST_PASSWORD)).code).to.equal(230);
    return control;
  };
  before(async function () {
    squatter = createServer();
    await new Promise<void>((resolve) => squatter.listen(40704, '127.0.0.1', resolve));
    server = await startTestServer('40700-40704', { flags: { pasvWait: '0.5' } });
  });
  afterEach(() => controls.splice(0).forEach((c) => c.close()));
  after(async function () {
    await server.stop();
    await new Promise((resolve) => squatter.close(resolve));
  });

  it('SITE PIN makes the next PASV and EPSV use exactly that port, once', async function () {
    const control = await login();
    for (const port of [40702, 40700, 40703, 40701]) {
      expect((await control.send(`SITE PIN ${port}`)).code).to.equal(200);
      expect(parsePasv(await control.send('PASV')).port).to.equal(port);
    }
    expect((await control.send('SITE PIN 40703')).code).to.equal(200);
    expect(parseEpsv(await control.send('EPSV'))).to.equal(40703);
  });

  it('SITE PROBE opens the port with a reply no FTP helper can parse, and a transfer goes through', async function () {
    const control = await login();
    const reply = await control.send('SITE PROBE 40701');
    expect(reply.text).to.equal('200 Probe listening on port 40701');
    expect(reply.text).to.not.match(/\(\d+,\d+,\d+,\d+,\d+,\d+\)|\(\|\|\|\d+\|\)/);
    const data = readDataConnection(40701);
    expect((await control.send('NLST /')).code).to.equal(150);
    expect((await control.read())?.code).to.equal(226);
    expect((await data).toString()).to.include('cisco');
  });

  it('a port reserved by another session is busy: the probe waits, then 425', async function () {
    const holder = await login();
    const prober = await login();
    expect((await holder.send('SITE PIN 40700')).code).to.equal(200);
    expect(parsePasv(await holder.send('PASV')).port).to.equal(40700);
    const started = Date.now();
    expect((await prober.send('SITE PROBE 40700')).code).to.equal(425);
    expect(Date.now() - started).to.be.at.least(400);
    holder.close();
    await new Promise((r) => setTimeout(r, 100));
    expect((await prober.send('SITE PROBE 40700')).code).to.equal(200);
  });

  it('refuses ports outside the range, ports held by another process, and anonymous probing', async function () {
    const control = await login();
    expect((await control.send('SITE PROBE 40799')).code).to.equal(501);
    expect((await control.send('SITE PIN 21')).code).to.equal(501);
    const held = await control.send('SITE PROBE 40704');
    expect(held.code).to.equal(425);
    expect(held.text).to.include('held by another process');
    expect((await control.send('SITE CHMOD 777 /cisco')).code).to.equal(550);
    const stranger = await FtpControl.connect(server.port);
    controls.push(stranger);
    expect((await stranger.read())?.code).to.equal(220);
    expect((await stranger.send('SITE PROBE 40701')).code).to.equal(530);
  });
});
