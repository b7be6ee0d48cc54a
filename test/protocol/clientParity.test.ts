/**
 * What real clients send, answered as vsftpd answers it. Each client's commands for its everyday
 * user commands (RFC 959, RFC 775's X-verbs, RFC 3659) are sent to swfw and to a real vsftpd
 * serving the same file, and the reply codes are compared step by step. Where swfw answers
 * otherwise on purpose, the difference is listed below with its reason; any other difference fails.
 */
import { expect } from 'chai';
import { copyFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { FIXTURE_IMAGES, startTestServer, TEST_PASSWORD, TEST_USER, type TestServer } from '../helpers/testServer.js';
import { startVsftpd, type Vsftpd } from '../helpers/vsftpd.js';
import { FtpControl, parsePasv, readDataConnection } from '../helpers/ftpControl.js';

const IMAGE = 'dell/OS10_10.5.6.0.bin';
const FILE = 'OS10_10.5.6.0.bin';

/** A command, or `DATA <command>`: PASV, a data connection, then the command (its 1xx and its final reply). */
type Step = string;

/**
 * The commands each client sends for the user commands named, after its login. Data transfers
 * use PASV here for every client: Windows ftp.exe can only do active mode (PORT), which swfw
 * refuses by default (see DELIBERATE).
 */
const CLIENTS: Record<string, Step[]> = {
  // GNU inetutils ftp: system, pwd, cd, cdup, ascii/binary, mode, struct, size, modtime, ls, nlist,
  // rstatus, rhelp, reget, idle, umask, chmod.
  'inetutils ftp': [
    'SYST', 'PWD', 'CWD dell', 'CDUP', 'CWD /dell', 'TYPE A', 'TYPE I', 'MODE S', 'STRU F', `SIZE ${FILE}`, `MDTM ${FILE}`,
    'DATA LIST', 'DATA NLST', 'STAT', `STAT ${FILE}`, 'HELP', 'REST 100', `DATA RETR ${FILE}`, 'SITE IDLE 60', 'SITE UMASK', `SITE CHMOD 644 ${FILE}`,
  ],
  // Windows ftp.exe: pwd (XPWD), cd, ls (NLST), dir (LIST), mkdir (XMKD), rmdir (XRMD), account (ACCT),
  // get, delete, quote REIN.
  'Windows ftp.exe': ['OPTS UTF8 ON', 'XPWD', 'CWD /dell', 'DATA NLST', 'DATA LIST', 'XMKD new', 'XRMD new', 'ACCT billing', `DATA RETR ${FILE}`, `DELE ${FILE}`, 'REIN'],
  // lftp: its FEAT probe, UTF-8, then cls/ls (MLSD when FEAT names MLST), get with size and time first.
  lftp: ['FEAT', 'OPTS UTF8 ON', 'PWD', 'CWD /dell', 'DATA MLSD', `MLST ${FILE}`, 'OPTS MLST type;size;modify;', `SIZE ${FILE}`, `MDTM ${FILE}`, 'REST 0', `DATA RETR ${FILE}`, 'EPSV'],
  // FileZilla: SYST and FEAT on connect, then its directory listing and a download.
  FileZilla: ['SYST', 'FEAT', 'OPTS UTF8 ON', 'PWD', 'TYPE I', 'CWD /dell', 'DATA MLSD', `MDTM ${FILE}`, `SIZE ${FILE}`, 'REST 0', `DATA RETR ${FILE}`, 'CLNT FileZilla', 'NOOP'],
};

/** Where swfw answers otherwise on purpose: its codes, vsftpd 3.0.3's, and why. */
const DELIBERATE: Record<string, { swfw: number[]; vsftpd: number[]; why: string }> = {
  'DATA MLSD': { swfw: [150, 226], vsftpd: [500], why: 'RFC 3659 machine listings; vsftpd has none' },
  [`MLST ${FILE}`]: { swfw: [250], vsftpd: [500], why: 'RFC 3659; vsftpd has none' },
  PORT: { swfw: [502], vsftpd: [200], why: 'active mode is off by default (switches pull passive; PORT is the bounce vector)' },
};

async function replies(port: number, user: string, password: string, steps: Step[]): Promise<number[][]> {
  const control = await FtpControl.connect(port);
  try {
    expect((await control.login(user, password)).code).to.equal(230);
    const codes: number[][] = [];
    for (const step of steps) {
      if (!step.startsWith('DATA ')) {
        codes.push([(await control.send(step)).code]);
        continue;
      }
      const pasv = await control.send('PASV');
      expect(pasv.code).to.equal(227);
      const data = readDataConnection(parsePasv(pasv).port);
      const first = await control.send(step.slice(5));
      if (first.code >= 200) {
        // Refused before the transfer: nobody will send on the data connection.
        codes.push([first.code]);
        data.catch(() => {});
        continue;
      }
      const final = await control.read();
      await data;
      codes.push([first.code, final?.code ?? 0]);
    }
    return codes;
  } finally {
    control.close();
  }
}

describe('what real clients send, answered as vsftpd answers it', function () {
  this.timeout(60_000);
  let server: TestServer;
  let vsftpd: Vsftpd;

  before(async () => {
    server = await startTestServer('40085-40086');
    vsftpd = await startVsftpd([join(FIXTURE_IMAGES, IMAGE)], { min: 40087, max: 40088 });
    mkdirSync(join(vsftpd.root, 'dell'));
    copyFileSync(join(FIXTURE_IMAGES, IMAGE), join(vsftpd.root, IMAGE));
  });
  after(async () => {
    await server?.stop();
    await vsftpd?.stop();
  });

  for (const [client, steps] of Object.entries(CLIENTS)) {
    it(`${client}: every reply code as vsftpd's, but for the listed deliberate differences`, async function () {
      const ours = await replies(server.port, TEST_USER, TEST_PASSWORD, steps);
      const theirs = await replies(vsftpd.port, 'anonymous', 'switch@', steps);
      steps.forEach((step, i) => {
        const deliberate = DELIBERATE[step];
        if (deliberate) {
          expect(ours[i], `${step} (swfw)`).to.deep.equal(deliberate.swfw);
          expect(theirs[i], `${step} (vsftpd)`).to.deep.equal(deliberate.vsftpd);
        } else {
          expect(ours[i], `${step}: swfw ${JSON.stringify(ours[i])}, vsftpd ${JSON.stringify(theirs[i])}`).to.deep.equal(theirs[i]);
        }
      });
    });
  }

  it("active mode (Windows ftp.exe's only mode): vsftpd takes PORT, swfw refuses it by default with 502", async function () {
    const port = (host: number) => `PORT 127,0,0,1,${host >> 8},${host & 0xff}`;
    const ours = await FtpControl.connect(server.port);
    const theirs = await FtpControl.connect(vsftpd.port);
    try {
      await ours.login(TEST_USER, TEST_PASSWORD);
      await theirs.login('anonymous', 'switch@');
      expect([(await ours.send(port(40089))).code]).to.deep.equal(DELIBERATE['PORT']!.swfw);
      expect([(await theirs.send(port(40089))).code]).to.deep.equal(DELIBERATE['PORT']!.vsftpd);
    } finally {
      ours.close();
      theirs.close();
    }
  });
});
