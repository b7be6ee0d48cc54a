/**
 * The Cisco drivers against the emulator's Cisco personalities, over real SSH and real FTP: the
 * faults real switches show (SWITCH-CLI-REFERENCE.md) and what each driver must do about them.
 */
import { expect } from 'chai';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { startTestServer, FIXTURE_IMAGES, type TestServer } from '../helpers/testServer.js';
import { EmulatedFleet, parseFaults } from '../../src/switches/emulator/index.js';
import { driverFor, SwitchConnectError, type SwitchSession, type SwitchTarget } from '../../src/switches/index.js';

const run = promisify(execFile);
const IMAGE = 'cisco/c9300-universalk9.17.09.04a.SPA.bin';
const FILE = 'c9300-universalk9.17.09.04a.SPA.bin';
const catalog = JSON.parse(readFileSync(join(FIXTURE_IMAGES, 'catalog.json'), 'utf8')) as { images: { file: string; size: number; sha256: string; md5: string; sha512: string }[] };
const entry = catalog.images.find((i) => i.file === IMAGE)!;
const SSH_PORT = 47100;
const PASSWORD = 'emu-secret-1';
const HASH = { expectedBytes: entry.size };
/** Switch numbers (1-based) and their faults. */
const FAULTS = [
  '2:cut=300000',
  '3:corrupt=1000',
  '4:flash=500000',
  '5:badpass',
  '6:hang',
  '7:erase',
  '8:wrap,8:hashrate=2000000',
  '9:kbdint,9:legacyssh,9:banner,9:userexec',
  '10:oldssh',
  '11:nosha512',
].join(',');

describe('Cisco drivers against the emulated Cisco switches', function () {
  this.timeout(60_000);
  let server: TestServer;
  let fleet: EmulatedFleet;
  const sessions: SwitchSession[] = [];
  const sw = (n: number) => fleet.switches[n - 1]!;
  const target = (n: number, extra: Partial<SwitchTarget> = {}): SwitchTarget => ({
    host: sw(n).address,
    port: SSH_PORT,
    username: 'admin',
    password: PASSWORD,
    timeoutMs: 3000,
    hostKey: { pinned: sw(n).hostKey },
    ...extra,
  });
  const connect = async (n: number, extra: Partial<SwitchTarget> = {}, driver = 'cisco-ios-xe') => {
    const s = await driverFor(driver).connect(target(n, extra));
    sessions.push(s);
    return s;
  };
  const urlFor = async (n: number) => {
    const access = await server.server.grantOneTimeAccess({ sourceAddress: sw(n).ftpSource, imagePath: IMAGE, validForMs: 60_000 });
    return `ftp://${access.user}:${encodeURIComponent(access.password)}@127.0.0.1:${server.port}${access.path}`;
  };
  const pull = async (s: SwitchSession, n: number) => s.pull({ url: await urlFor(n), fileName: FILE, timeoutMs: 20_000 });

  before(async () => {
    server = await startTestServer('44000-44004');
    fleet = await EmulatedFleet.start({
      count: 11,
      sshPort: SSH_PORT,
      firstOctet: 101,
      password: PASSWORD,
      flashBytes: 8 * 1024 * 1024,
      faults: parseFaults(FAULTS, 11),
      ftpTimeoutMs: 5000,
    });
  });
  afterEach(async () => Promise.all(sessions.splice(0).map((s) => s.close())));
  after(async () => {
    await fleet?.stop();
    await server?.stop();
  });

  it('parses fault specs and refuses bad ones', function () {
    expect(parseFaults('1:slow=100,1:badpass', 2).get(1)).to.deep.equal({ slowBytesPerSecond: 100, wrongPassword: true });
    expect(parseFaults('2:stall=12,2:wrap,2:ftpsource=127.0.2.9', 2).get(2)).to.deep.equal({ stallSeconds: 12, wrapDigests: true, ftpSource: '127.0.2.9' });
    expect(() => parseFaults('3:slow=1', 2)).to.throw(/not in 1-2/);
    expect(() => parseFaults('1:melt', 2)).to.throw(/unknown kind/);
    expect(() => parseFaults('1:erase=3', 2)).to.throw(/takes no value/);
    expect(() => parseFaults('1:ftpsource=10.0.0.1', 2)).to.throw(/loopback/);
  });

  it('reads inventory, pulls with one-time credentials from its own address, hashes with SHA-512, replaces a differing file', async function () {
    const s = await connect(1);
    expect(s.facts.prompt).to.equal('emu-001#');
    expect(await s.inventory()).to.deep.equal({ model: 'C9300-48P', version: '17.06.05', freeBytes: 8 * 1024 * 1024 });
    expect(await s.fileHash(FILE, HASH)).to.equal(null);
    const url = await urlFor(1);
    const result = await s.pull({ url, fileName: FILE, timeoutMs: 20_000 });
    expect(result).to.include({ ok: true, bytes: entry.size });
    expect(result.message).to.not.include('@127.0.0.1:');
    expect(await s.fileHash(FILE, HASH)).to.deep.equal({ algorithm: 'sha512', digest: entry.sha512 });
    expect(server.transfers.at(-1)).to.include({ client: '127.0.1.101', result: 'complete', sha256: entry.sha256 });
    // The server's audit keeps the switch's FTP commands, the password redacted.
    const commands = server.transfers.at(-1)!.commands;
    expect(commands.find((c) => c.startsWith('USER'))).to.match(/^USER sw-[0-9a-f]+$/);
    expect(commands).to.include('PASS ***');
    expect(commands.join(' ')).to.not.include(decodeURIComponent(new URL(url).password));
    expect(commands.slice(-3)).to.deep.equal(['CWD cisco', `SIZE ${FILE}`, 'PASV', `RETR ${FILE}`].slice(-3));
    const again = await pull(s, 1);
    expect(again.ok).to.equal(true);
    expect(again.notes).to.deep.equal(['replaced the file of the same name']);
    expect((await s.inventory()).freeBytes).to.equal(8 * 1024 * 1024 - entry.size);
  });

  it("a grant for one switch is refused from another switch's address", async function () {
    const s = await connect(1);
    const result = await s.pull({ url: await urlFor(4), fileName: 'other.bin', timeoutMs: 20_000 });
    expect(result.ok).to.equal(false);
    expect(result.message).to.match(/Error opening.*530/);
    expect(result.message).to.not.match(/:[^*@/]+@127/);
  });

  it('a cut link fails the copy and leaves nothing on flash', async function () {
    const s = await connect(2);
    const result = await pull(s, 2);
    expect(result.ok).to.equal(false);
    expect(result.message).to.match(/%Error reading/);
    expect(await s.fileHash(FILE, HASH)).to.equal(null);
  });

  it('a corrupted byte completes the copy but the switch hash differs', async function () {
    const s = await connect(3);
    expect((await pull(s, 3)).ok).to.equal(true);
    expect((await s.fileHash(FILE, HASH))!.digest).to.not.equal(entry.sha512);
    expect(server.transfers.at(-1)).to.include({ client: '127.0.1.103', sha256: entry.sha256 });
  });

  it('a small flash refuses the copy', async function () {
    const s = await connect(4);
    const result = await pull(s, 4);
    expect(result.ok).to.equal(false);
    expect(result.message).to.match(/No space left on device/);
  });

  it('wrong password and a hanging SSH are connect errors of their kind', async function () {
    const err1 = await driverFor('cisco-ios-xe').connect(target(5)).catch((e: unknown) => e);
    expect(err1).to.be.instanceOf(SwitchConnectError);
    expect((err1 as SwitchConnectError).kind).to.equal('auth');
    const err2 = await driverFor('cisco-ios-xe').connect({ ...target(6), timeoutMs: 800 }).catch((e: unknown) => e);
    expect(err2).to.be.instanceOf(SwitchConnectError);
    expect((err2 as SwitchConnectError).kind).to.equal('timeout');
    await new Promise((resolve) => setTimeout(resolve, 100)); // the emulator's side of the dropped socket closes
  });

  it("gives each switch its own host key and refuses another switch's key before any login", async function () {
    expect(new Set(fleet.switches.map((s) => s.hostKey)).size).to.equal(fleet.switches.length);
    const attempts = fleet.authAttempts(sw(1).name);
    const err = await driverFor('cisco-ios-xe').connect({ ...target(1), hostKey: { pinned: sw(2).hostKey } }).catch((e: unknown) => e);
    expect(err).to.be.instanceOf(SwitchConnectError);
    expect((err as SwitchConnectError).kind).to.equal('host-key');
    expect((err as Error).message).to.equal(`host key mismatch: expected ${sw(2).hostKey}, got ${sw(1).hostKey} (${sw(1).address}:${SSH_PORT})`);
    expect(fleet.authAttempts(sw(1).name)).to.equal(attempts);
    const seen: string[] = [];
    const s = await driverFor('cisco-ios-xe').connect({ ...target(1), hostKey: { trustOnFirstUse: (fp) => void seen.push(fp) } });
    sessions.push(s);
    expect(seen).to.deep.equal([sw(1).hostKey]);
    expect(fleet.authAttempts(sw(1).name)).to.be.greaterThan(attempts);
  });

  it('class-B flash: "Erase flash: before copying? [confirm]" is answered n, and the other files stay', async function () {
    const s = await connect(7);
    const other = join(sw(7).flashDir, 'vlan.dat');
    writeFileSync(other, 'vlan database\n');
    const result = await pull(s, 7);
    expect(result.ok, result.message).to.equal(true);
    expect(result.notes).to.deep.equal(['declined to erase the flash before copying']);
    expect(readFileSync(other, 'utf8')).to.equal('vlan database\n');
    expect(await s.fileHash(FILE, HASH)).to.deep.equal({ algorithm: 'sha512', digest: entry.sha512 });
  });

  it('a digest wrapped over two lines is joined; slow on-box hashing with progress dots completes', async function () {
    const s = await connect(8);
    expect((await pull(s, 8)).ok).to.equal(true);
    const began = Date.now();
    // 1 MiB at 2 MB/s: about half a second of dots; the wrapped SHA-512 reads whole.
    expect(await s.fileHash(FILE, { expectedBytes: entry.size, bytesPerSecond: 2_000_000 })).to.deep.equal({ algorithm: 'sha512', digest: entry.sha512 });
    expect(Date.now() - began).to.be.greaterThan(400);
  });

  it('AAA switch: keyboard-interactive only, IOS 15 algorithms only, a tricky banner, user EXEC and enable', async function () {
    const s = await connect(9);
    expect(s.facts).to.deep.include({ authMethod: 'keyboard-interactive', prompt: 'emu-009#' });
    expect(s.facts.algorithms).to.deep.equal({ kex: 'diffie-hellman-group14-sha1', serverHostKey: 'ssh-rsa', cipher: 'aes128-cbc', mac: 'hmac-sha1' });
    expect((await s.inventory()).model).to.equal('C9300-48P');
    expect((await pull(s, 9)).ok).to.equal(true);
  });

  it('an enable secret that is refused is a privilege error naming the fix', async function () {
    const err = await driverFor('cisco-ios-xe').connect({ ...target(9), enablePassword: 'not-the-secret' }).catch((e: unknown) => e);
    expect(err).to.be.instanceOf(SwitchConnectError);
    expect((err as SwitchConnectError).kind).to.equal('privilege');
    expect((err as Error).message).to.match(/enablePasswordEnv/);
    expect((err as Error).message).to.not.include('not-the-secret');
  });

  it('diffie-hellman-group1-sha1 only: refused by default with the fix named, accepted when the inventory allows it', async function () {
    const err = await driverFor('cisco-ios-xe').connect(target(10)).catch((e: unknown) => e);
    expect(err).to.be.instanceOf(SwitchConnectError);
    expect((err as SwitchConnectError).kind).to.equal('algorithms');
    expect((err as Error).message).to.match(/offers diffie-hellman-group1-sha1.*add "diffie-hellman-group1-sha1" to sshWeakAlgorithms/);
    const s = await connect(10, { weakAlgorithms: ['diffie-hellman-group1-sha1'] });
    expect(s.facts.algorithms.kex).to.equal('diffie-hellman-group1-sha1');
  });

  it('no verify /sha512 (classic IOS): "% Invalid input" falls back to md5', async function () {
    const s = await connect(11);
    expect((await pull(s, 11)).ok).to.equal(true);
    expect(await s.fileHash(FILE, HASH)).to.deep.equal({ algorithm: 'md5', digest: entry.md5 });
    // Remembered for the session: the second hash goes straight to md5.
    expect(await s.fileHash(FILE, HASH)).to.deep.equal({ algorithm: 'md5', digest: entry.md5 });
  });

  it('Cisco IOS closes the whole SSH connection when its first exec channel ends (a real OpenSSH client shows it)', async function () {
    const dir = mkdtempSync(join(tmpdir(), 'swfw-ssh-'));
    const askpass = join(dir, 'askpass.sh');
    writeFileSync(askpass, `#!/bin/sh\necho '${PASSWORD}'\n`, { mode: 0o700 });
    const control = join(dir, 'mux');
    const env = { ...process.env, SSH_ASKPASS: askpass, SSH_ASKPASS_REQUIRE: 'force', DISPLAY: ':0' };
    const base = ['-o', 'StrictHostKeyChecking=no', '-o', 'UserKnownHostsFile=/dev/null', '-o', 'LogLevel=ERROR', '-p', String(SSH_PORT), '-S', control];
    try {
      const first = await run('ssh', [...base, '-o', 'ControlMaster=yes', '-o', 'ControlPersist=20', `admin@${sw(1).address}`, 'show version'], { env, timeout: 15_000 }).catch((err: Error & { stderr?: string }) => {
        throw new Error(`${err.message}: ${err.stderr ?? ''}`);
      });
      expect(first.stdout).to.match(/Cisco IOS XE Software, Version 17\.06\.05/);
      // The master connection is gone: the switch dropped it after the exec channel ended.
      await new Promise((resolve) => setTimeout(resolve, 300));
      const check = await run('ssh', [...base, '-O', 'check', `admin@${sw(1).address}`], { env, timeout: 5000 }).then(
        () => 'alive',
        () => 'gone',
      );
      expect(check).to.equal('gone');
    } finally {
      await run('ssh', [...base, '-O', 'exit', `admin@${sw(1).address}`], { env, timeout: 5000 }).catch(() => {});
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
