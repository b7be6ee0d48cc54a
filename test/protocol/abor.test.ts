/**
 * ABOR as real clients send it (RFC 959 §4.1.3): with Telnet IP and the Synch as urgent data
 * (inetutils/BSD ftp), as urgent data itself (Python's ftplib.abort()), and during a RETR whose
 * data connection the client closed. Each input runs against our server and against a real
 * vsftpd, which answers all of them, and the replies are compared.
 */
import { expect } from 'chai';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { startTestServer, TEST_PASSWORD, TEST_USER, type TestServer } from '../helpers/testServer.js';
import { startVsftpd, type Vsftpd } from '../helpers/vsftpd.js';

const run = promisify(execFile);
const BIG_BYTES = 32 * 1024 * 1024;

/** The three inputs of the field reports; each prints the reply codes it got, as JSON. */
const SCRIPT = String.raw`
import ftplib, json, re, socket, sys, time
host, port, user, password, case = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
out = []
def replies(sock, want, timeout=5):
    sock.settimeout(timeout); buf = b''; got = []
    try:
        while len(got) < want:
            chunk = sock.recv(4096)
            if not chunk: break
            buf += chunk
            while b'\r\n' in buf:
                line, buf = buf.split(b'\r\n', 1)
                if re.match(rb'^\d{3} ', line): got.append(int(line[:3]))
    except socket.timeout: pass
    return got
if case == 'ftplib-abort':
    f = ftplib.FTP(); f.connect(host, port, timeout=5); f.login(user, password)
    out.append(int(f.abort()[:3])); f.close()
else:
    c = socket.create_connection((host, port)); replies(c, 1)
    c.sendall(('USER %s\r\n' % user).encode()); replies(c, 1)
    c.sendall(('PASS %s\r\n' % password).encode()); replies(c, 1)
    c.sendall(b'TYPE I\r\n'); replies(c, 1)
    if case == 'telnet-synch':
        c.send(b'\xff\xf4\xff', socket.MSG_OOB); c.send(b'\xf2ABOR\r\n')
        out += replies(c, 1)
    elif case == 'urgent-abor-during-retr':
        c.sendall(b'PASV\r\n'); pasv = c.recv(200).decode()
        m = re.search(r'\((\d+),(\d+),(\d+),(\d+),(\d+),(\d+)\)', pasv)
        d = socket.create_connection((host, int(m.group(5)) * 256 + int(m.group(6))))
        c.sendall(b'RETR big.bin\r\n'); out += replies(c, 1)
        got = 0
        while got < 65536: got += len(d.recv(65536 - got))
        d.close(); time.sleep(0.2)
        c.sendall(b'ABOR\r\n', socket.MSG_OOB)
        time.sleep(0.5)
        c.sendall(b'PWD\r\n')
        out += replies(c, 3, timeout=3)
print(json.dumps(out))
`;

async function codes(host: string, port: number, user: string, password: string, which: string): Promise<number[]> {
  const { stdout } = await run('python3', ['-c', SCRIPT, host, String(port), user, password, which], { timeout: 20_000 });
  return JSON.parse(stdout.trim()) as number[];
}

describe('ABOR as real clients send it (urgent data, Telnet IP and Synch)', function () {
  this.timeout(60_000);
  let server: TestServer;
  let vsftpd: Vsftpd;
  let dir: string;

  before(async () => {
    server = await startTestServer('40070-40071', { copyImages: true });
    writeFileSync(join(server.images, 'big.bin'), Buffer.alloc(BIG_BYTES, 3));
    dir = mkdtempSync(join(tmpdir(), 'swfw-abor-'));
    writeFileSync(join(dir, 'big.bin'), Buffer.alloc(BIG_BYTES, 3));
    vsftpd = await startVsftpd([join(dir, 'big.bin')], { min: 40072, max: 40073 });
  });
  after(async () => {
    await server?.stop();
    await vsftpd?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  const ours = (which: string) => codes('127.0.0.1', server.port, TEST_USER, TEST_PASSWORD, which);
  const theirs = (which: string) => codes(vsftpd.host, vsftpd.port, 'anonymous', 'a@b', which);

  it('inetutils: IAC IP IAC sent urgently, then DM ABOR: answered 225/226, as vsftpd answers', async function () {
    const [a, b] = await Promise.all([ours('telnet-synch'), theirs('telnet-synch')]);
    expect(a).to.have.length(1);
    expect(a[0]).to.be.oneOf([225, 226]);
    expect(b[0]).to.be.oneOf([225, 226]);
  });

  it("Python's ftplib.abort() (ABOR CRLF as urgent data, its LF dropped by the kernel): answered at once", async function () {
    const [a, b] = await Promise.all([ours('ftplib-abort'), theirs('ftplib-abort')]);
    expect(a[0]).to.be.oneOf([225, 226]);
    expect(b[0]).to.be.oneOf([225, 226]);
  });

  it('an urgent ABOR after the client closed a running RETR: 426 for the transfer, then PWD still gets 257 (the session stays in step)', async function () {
    const a = await ours('urgent-abor-during-retr');
    const b = await theirs('urgent-abor-during-retr');
    expect(a[0]).to.equal(150);
    expect(a).to.include(426);
    expect(a.at(-1), JSON.stringify(a)).to.equal(257);
    expect(a.filter((c) => c >= 500), JSON.stringify(a)).to.deep.equal([]);
    // vsftpd keeps step too: the same last reply.
    expect(b.at(-1), JSON.stringify(b)).to.equal(257);
    expect(server.transfers.at(-1)).to.include({ result: 'aborted', code: 426 });
  });
});
