import { expect } from 'chai';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { startTestServer, FIXTURE_IMAGES, type TestServer } from '../helpers/testServer.js';
import { EmulatedFleet, parseFaults } from '../../src/switches/emulator.js';
import { driverFor, SwitchConnectError, type SwitchSession } from '../../src/switches/index.js';

const IMAGE = 'cisco/c9300-universalk9.17.09.04a.SPA.bin';
const FILE = 'c9300-universalk9.17.09.04a.SPA.bin';
const catalog = JSON.parse(readFileSync(join(FIXTURE_IMAGES, 'catalog.json'), 'utf8')) as { images: { file: string; size: number; sha256: string; md5: string; sha512: string }[] };
const entry = catalog.images.find((i) => i.file === IMAGE)!;
const SSH_PORT = 47100;
const PASSWORD = 'emu-secret-1';

describe('switch emulator driven by the emulated driver', function () {
  this.timeout(60_000);
  let server: TestServer;
  let fleet: EmulatedFleet;
  const sessions: SwitchSession[] = [];
  const target = (i: number, password = PASSWORD) => ({ host: fleet.switches[i]!.address, port: SSH_PORT, username: 'admin', password, timeoutMs: 3000, pullTimeoutMs: 20_000, hostKey: { pinned: fleet.switches[i]!.hostKey } });
  const connect = async (i: number) => {
    const s = await driverFor('emulated').connect(target(i));
    sessions.push(s);
    return s;
  };
  const urlFor = async (i: number) => {
    const access = await server.server.grantOneTimeAccess({ sourceAddress: fleet.switches[i]!.address, imagePath: IMAGE, validForMs: 60_000 });
    return { access, url: `ftp://${access.user}:${encodeURIComponent(access.password)}@127.0.0.1:${server.port}${access.path}` };
  };

  before(async () => {
    server = await startTestServer('44000-44004');
    fleet = await EmulatedFleet.start({
      count: 6,
      sshPort: SSH_PORT,
      firstOctet: 101,
      password: PASSWORD,
      flashBytes: 8 * 1024 * 1024,
      faults: parseFaults('2:cut=300000,3:corrupt=1000,4:flash=500000,5:badpass,6:hang', 6),
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
    expect(() => parseFaults('3:slow=1', 2)).to.throw(/not in 1-2/);
    expect(() => parseFaults('1:melt', 2)).to.throw(/unknown kind/);
  });

  it('reports inventory, pulls from its own address with one-time credentials, and hashes its flash', async function () {
    const s = await connect(0);
    expect(await s.inventory()).to.deep.equal({ model: 'SWFW-EMU-48', version: '17.06.05', freeBytes: 8 * 1024 * 1024 });
    expect(await s.fileHash(FILE, 'sha256')).to.equal(null);
    const { url } = await urlFor(0);
    const result = await s.pull(url, FILE);
    expect(result).to.include({ ok: true, bytes: entry.size });
    expect(result.message).to.not.include('@127.0.0.1:');
    expect(await s.fileHash(FILE, 'sha256')).to.equal(entry.sha256);
    expect(await s.fileHash(FILE, 'md5')).to.equal(entry.md5);
    expect(await s.fileHash(FILE, 'sha512')).to.equal(entry.sha512);
    expect(server.transfers.at(-1)).to.include({ client: '127.0.1.101', result: 'complete', sha256: entry.sha256 });
    // Overwrite prompt answered; free space shrinks by the image.
    expect((await s.pull((await urlFor(0)).url, FILE)).ok).to.equal(true);
    expect((await s.inventory()).freeBytes).to.equal(8 * 1024 * 1024 - entry.size);
  });

  it("a grant for one switch is refused from another switch's address", async function () {
    const s = await connect(0);
    const { url } = await urlFor(3); // granted to switch 4's address, used by switch 1
    const result = await s.pull(url, 'other.bin');
    expect(result.ok).to.equal(false);
    expect(result.message).to.match(/Error opening.*530/);
    expect(result.message).to.not.match(/:[^*@/]+@127/);
  });

  it('a cut link fails the copy and leaves nothing on flash', async function () {
    const s = await connect(1);
    const result = await s.pull((await urlFor(1)).url, FILE);
    expect(result.ok).to.equal(false);
    expect(result.message).to.match(/%Error reading/);
    expect(await s.fileHash(FILE, 'sha256')).to.equal(null);
  });

  it('a corrupted byte completes the copy but the switch hash differs', async function () {
    const s = await connect(2);
    expect((await s.pull((await urlFor(2)).url, FILE)).ok).to.equal(true);
    expect(await s.fileHash(FILE, 'sha256')).to.not.equal(entry.sha256);
    expect(server.transfers.at(-1)).to.include({ client: '127.0.1.103', sha256: entry.sha256 });
  });

  it('a small flash refuses the copy', async function () {
    const s = await connect(3);
    const result = await s.pull((await urlFor(3)).url, FILE);
    expect(result.ok).to.equal(false);
    expect(result.message).to.match(/No space left on device/);
  });

  it('wrong password and a hanging SSH are connect errors of their kind', async function () {
    const err1 = await driverFor('emulated').connect(target(4)).catch((e: unknown) => e);
    expect(err1).to.be.instanceOf(SwitchConnectError);
    expect((err1 as SwitchConnectError).kind).to.equal('auth');
    const err2 = await driverFor('emulated').connect({ ...target(5), timeoutMs: 800 }).catch((e: unknown) => e);
    expect(err2).to.be.instanceOf(SwitchConnectError);
    expect((err2 as SwitchConnectError).kind).to.equal('timeout');
    await new Promise((resolve) => setTimeout(resolve, 100)); // the emulator's side of the dropped socket closes
  });

  it('gives each switch its own host key and refuses another switch\'s key before any login', async function () {
    expect(new Set(fleet.switches.map((s) => s.hostKey)).size).to.equal(fleet.switches.length);
    const attempts = fleet.authAttempts(fleet.switches[0]!.name);
    const err = await driverFor('emulated').connect({ ...target(0), hostKey: { pinned: fleet.switches[1]!.hostKey } }).catch((e: unknown) => e);
    expect(err).to.be.instanceOf(SwitchConnectError);
    expect((err as SwitchConnectError).kind).to.equal('host-key');
    expect((err as Error).message).to.equal(`host key mismatch: expected ${fleet.switches[1]!.hostKey}, got ${fleet.switches[0]!.hostKey} (${fleet.switches[0]!.address}:${SSH_PORT})`);
    expect(fleet.authAttempts(fleet.switches[0]!.name)).to.equal(attempts);
    const seen: string[] = [];
    const s = await driverFor('emulated').connect({ ...target(0), hostKey: { trustOnFirstUse: (fp) => void seen.push(fp) } });
    sessions.push(s);
    expect(seen).to.deep.equal([fleet.switches[0]!.hostKey]);
    expect(fleet.authAttempts(fleet.switches[0]!.name)).to.be.greaterThan(attempts);
  });
});
