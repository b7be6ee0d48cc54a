import { expect } from 'chai';
import { readdirSync, readFileSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import { startTestServer, TEST_PASSWORD, TEST_USER, type TestServer } from '../helpers/testServer.js';
import { FtpControl, parsePasv, readDataConnection, type FtpReply } from '../helpers/ftpControl.js';

/** Every file under `dir` with its size, mtime and content hash: "the repository". */
function snapshot(dir: string, prefix = ''): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    const name = `${prefix}/${entry.name}`;
    if (entry.isDirectory()) return [`${name}/`, ...snapshot(path, name)];
    const stats = statSync(path);
    const digest = entry.isFile() ? createHash('sha256').update(readFileSync(path)).digest('hex') : '';
    return [`${name} ${stats.size} ${stats.mtimeMs} ${digest}`];
  });
}

describe('read-only jail', function () {
  let server: TestServer;
  let control: FtpControl;
  const replies: FtpReply[] = [];
  const send = async (line: string) => {
    const reply = await control.send(line);
    replies.push(reply);
    return reply;
  };

  before(async function () {
    server = await startTestServer('40100-40104', { copyImages: true });
    symlinkSync('/etc', join(server.images, 'etc-link'));
    symlinkSync('/etc/passwd', join(server.images, 'passwd.bin'));
    symlinkSync('cisco/c9300-universalk9.17.09.04a.SPA.bin', join(server.images, 'latest-cisco.bin'));
  });
  beforeEach(async function () {
    control = await FtpControl.connect(server.port);
    expect((await control.login(TEST_USER, TEST_PASSWORD)).code).to.equal(230);
  });
  afterEach(() => control.close());
  after(async function () {
    await server.stop();
    // No reply, in any test of this suite, ever showed where the repository lives on the server.
    for (const reply of replies) {
      expect(reply.text).to.not.include(server.images);
      expect(reply.text).to.not.match(/\/tmp\/|\/etc\/|\/work\/|ENOENT|EACCES/);
    }
  });

  it('refuses every write command with 550 and leaves the repository unchanged', async function () {
    const before = snapshot(server.images);
    const writes = [
      'STOR new.bin',
      'APPE cisco/c9300-universalk9.17.09.04a.SPA.bin',
      'STOU',
      'DELE cisco/c9300-universalk9.17.09.04a.SPA.bin',
      'RNFR dell/OS10_10.5.6.0.bin',
      'RNTO dell/renamed.bin',
      'MKD newdir',
      'XMKD newdir',
      'RMD cisco',
      'XRMD cisco',
      'SITE CHMOD 777 cisco/c9300-universalk9.17.09.04a.SPA.bin',
      'MFMT 20200101000000 dell/OS10_10.5.6.0.bin',
    ];
    for (const line of writes) {
      const reply = await send(line);
      expect(reply.code, line).to.equal(550);
    }
    // STOR with a data connection open must not create the file either.
    const { port } = parsePasv(await send('PASV'));
    const data = readDataConnection(port);
    expect((await send('STOR sneaky.bin')).code).to.equal(550);
    expect((await send('NOOP')).code).to.equal(200);
    expect(snapshot(server.images)).to.deep.equal(before);
    await send('ABOR');
    await data;
  });

  const escapes = [
    '../../../../etc/passwd',
    '/../../etc/passwd',
    '..\\..\\..\\etc\\passwd',
    '%2e%2e/%2e%2e/%2e%2e/etc/passwd',
    '/etc/passwd',
    'cisco/../../etc/passwd',
    'cisco/\u0000../../etc/passwd',
    'passwd.bin',
    'etc-link/passwd',
  ];
  for (const path of escapes) {
    it(`SIZE and RETR of ${JSON.stringify(path)} get 550`, async function () {
      expect((await send(`SIZE ${path}`)).code).to.equal(550);
      const { port } = parsePasv(await send('PASV'));
      const data = readDataConnection(port);
      const reply = await send(`RETR ${path}`);
      expect(reply.code).to.equal(550);
      expect((await data).length).to.equal(0);
    });
  }

  it('CWD cannot leave the root; .. at the root stays at the root', async function () {
    expect((await send('CWD ../../..')).code).to.equal(250);
    expect((await send('PWD')).text).to.include('"/"');
    expect((await send('CWD etc-link')).code).to.equal(550);
    expect((await send('CWD /etc')).code).to.equal(550);
    expect((await send('CDUP')).code).to.equal(250);
    expect((await send('PWD')).text).to.include('"/"');
  });

  it('follows a symlink that stays inside the root', async function () {
    expect((await send('SIZE latest-cisco.bin')).text).to.equal('213 1048699');
  });

  it('lists neither symlinks that lead outside nor server paths', async function () {
    const { port } = parsePasv(await send('PASV'));
    const data = readDataConnection(port);
    expect((await send('NLST')).code).to.equal(150);
    expect((await control.read())?.code).to.equal(226);
    const names = (await data).toString().trim().split(/\r\n/);
    expect(names).to.include.members(['aruba', 'cisco', 'dell', 'latest-cisco.bin']);
    expect(names).to.not.include.members(['etc-link']);
    expect(names).to.not.include('passwd.bin');
  });

  it('a missing file gets 550 with no path in the text', async function () {
    const reply = await send('SIZE /cisco/nope.bin');
    expect(reply.code).to.equal(550);
    expect(reply.text).to.equal('550 No such file or directory');
  });

  it('a write to an existing path never reaches the disk even for a file created out of band', async function () {
    writeFileSync(join(server.images, 'out-of-band.txt'), 'x');
    expect((await send('DELE out-of-band.txt')).code).to.equal(550);
    expect(statSync(join(server.images, 'out-of-band.txt')).size).to.equal(1);
  });
});
