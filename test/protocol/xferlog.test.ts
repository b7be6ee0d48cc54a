/**
 * `--xferlog`: real transfers, one complete and one aborted, each one line in the wu-ftpd/vsftpd
 * xferlog format, read back field by field.
 */
import { expect } from 'chai';
import { connect } from 'node:net';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startTestServer, TEST_PASSWORD, TEST_USER, type TestServer } from '../helpers/testServer.js';
import { FtpControl, parsePasv, readDataConnection } from '../helpers/ftpControl.js';
import { RecordingLogger } from '../helpers/recordingLogger.js';
import { Xferlog, xferlogTime } from '../../src/observability/xferlog.js';

const DELL = 'dell/OS10_10.5.6.0.bin';
/** Large enough that no socket buffer holds it: the reader's reset cuts the transfer. */
const BIG = 'big image.bin';
const FIELDS = ['currentTime', 'transferTime', 'remoteHost', 'fileSize', 'filename', 'transferType', 'specialActionFlag', 'direction', 'accessMode', 'username', 'serviceName', 'authenticationMethod', 'authenticatedUserId', 'completionStatus'] as const;

/** Splits an xferlog line: the first five words are the date (`Tue Mar  5 09:04:01 2024`). */
function parse(line: string): Record<(typeof FIELDS)[number], string> {
  const match = /^(\w{3} \w{3} [ \d]\d \d\d:\d\d:\d\d \d{4}) (.*)$/.exec(line);
  if (!match) throw new Error(`no xferlog date at the start of: ${line}`);
  const rest = match[2]!.split(' ');
  expect(rest, line).to.have.length(FIELDS.length - 1);
  return Object.fromEntries(FIELDS.map((name, i) => [name, i === 0 ? match[1]! : rest[i - 1]!])) as Record<(typeof FIELDS)[number], string>;
}

describe('xferlog (--xferlog)', function () {
  let server: TestServer;
  let dir: string;
  let xferlog: Xferlog;
  const logger = new RecordingLogger();
  const controls: FtpControl[] = [];
  const file = () => join(dir, 'xferlog');
  const lines = (path = file()) => readFileSync(path, 'utf8').split('\n').filter(Boolean);
  const login = async () => {
    const control = await FtpControl.connect(server.port);
    controls.push(control);
    expect((await control.login(TEST_USER, TEST_PASSWORD)).code).to.equal(230);
    return control;
  };
  const download = async (path: string) => {
    const control = await login();
    const data = readDataConnection(parsePasv(await control.send('PASV')).port);
    expect((await control.send(`RETR ${path}`)).code).to.equal(150);
    expect((await control.read())?.code).to.equal(226);
    return data;
  };

  before(async function () {
    dir = mkdtempSync(join(tmpdir(), 'swfw-xferlog-'));
    server = await startTestServer('44905-44906', { copyImages: true, beforeStart: async (images) => writeFileSync(join(images, BIG), Buffer.alloc(64 * 1024 * 1024, 7)) });
    xferlog = Xferlog.start(file(), server.server, logger);
  });
  afterEach(() => controls.splice(0).forEach((c) => c.close()));
  after(async function () {
    xferlog.close();
    await server.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('a complete download is one line, field by field as vsftpd writes it', async function () {
    const before = Date.now();
    await download(`/${DELL}`);
    const [line] = lines();
    const f = parse(line!);
    const at = Date.parse(`${f.currentTime.replace(/^\w+ /, '')} UTC`);
    expect(at).to.be.within(Math.floor(before / 1000) * 1000, Date.now());
    expect(xferlogTime(new Date(at))).to.equal(f.currentTime);
    expect(f).to.deep.include({
      transferTime: '1', // whole seconds, at least 1
      remoteHost: '127.0.0.1',
      fileSize: String(statSync(join(server.images, DELL)).size),
      filename: `/${DELL}`,
      transferType: 'b',
      specialActionFlag: '_',
      direction: 'o',
      accessMode: 'r',
      username: TEST_USER,
      serviceName: 'ftp',
      authenticationMethod: '0',
      authenticatedUserId: '*',
      completionStatus: 'c',
    });
  });

  it('an aborted download is `i` with the bytes actually sent; spaces in its name become `_`', async function () {
    const control = await login();
    const data = connect({ port: parsePasv(await control.send('PASV')).port, host: '127.0.0.1' });
    data.on('error', () => {});
    expect((await control.send(`RETR ${BIG}`)).code).to.equal(150);
    await once(data, 'data');
    data.resetAndDestroy(); // the reader goes away mid-transfer
    expect((await control.read())?.code).to.equal(426);
    const f = parse(lines().at(-1)!);
    expect(f.filename).to.equal('/big_image.bin');
    expect(f.completionStatus).to.equal('i');
    expect(Number(f.fileSize)).to.be.greaterThan(0).and.below(64 * 1024 * 1024);
    expect(Number(f.fileSize)).to.equal(server.transfers.at(-1)!.bytes);
    expect(lines()).to.have.length(2);
  });

  it('reopens its path on reopen() (SIGHUP after logrotate), and never holds a password', async function () {
    renameSync(file(), `${file()}.1`);
    xferlog.reopen();
    await download(`/${DELL}`);
    expect(lines(`${file()}.1`)).to.have.length(2);
    expect(lines()).to.have.length(1);
    expect(parse(lines()[0]!).completionStatus).to.equal('c');
    expect(readFileSync(`${file()}.1`, 'utf8') + readFileSync(file(), 'utf8')).to.not.include(TEST_PASSWORD);
    expect(statSync(file()).mode & 0o777).to.equal(0o640);
  });
});
