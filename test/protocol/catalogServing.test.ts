import { expect } from 'chai';
import { cpSync, mkdtempSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FIXTURE_IMAGES, startTestServer, TEST_PASSWORD, TEST_USER, type TestServer } from '../helpers/testServer.js';
import { FtpControl, parsePasv, readDataConnection } from '../helpers/ftpControl.js';
import { RecordingLogger } from '../helpers/recordingLogger.js';

const CISCO = 'cisco/c9300-universalk9.17.09.04a.SPA.bin';
const DELL = 'dell/OS10_10.5.6.0.bin';

/** Flips one byte in place, keeping the size: the drift a size check alone would miss. */
function flipByte(file: string): void {
  const bytes = readFileSync(file);
  bytes[1000] = bytes[1000]! ^ 0xff;
  writeFileSync(file, bytes);
}

describe('catalog checks while serving', function () {
  let server: TestServer | null = null;
  const controls: FtpControl[] = [];
  const retr = async (path: string) => {
    const control = await FtpControl.connect(server!.port);
    controls.push(control);
    expect((await control.login(TEST_USER, TEST_PASSWORD)).code).to.equal(230);
    const { port } = parsePasv(await control.send('PASV'));
    const data = readDataConnection(port);
    const first = await control.send(`RETR ${path}`);
    const final = first.code === 150 ? await control.read() : first;
    const bytes = await data;
    return { code: final?.code, text: final?.text ?? '', bytes };
  };
  const cleanups: Array<() => void> = [];
  afterEach(async function () {
    controls.splice(0).forEach((c) => c.close());
    await server?.stop();
    server = null;
    cleanups.splice(0).forEach((cleanup) => cleanup());
  });

  it('refuses an image that drifted before start with 550, and logs it loudly', async function () {
    const logger = new RecordingLogger();
    const repository = mkdtempSync(join(tmpdir(), 'swfw-drift-'));
    cpSync(FIXTURE_IMAGES, repository, { recursive: true });
    flipByte(join(repository, CISCO));
    cleanups.push(() => rmSync(repository, { recursive: true, force: true }));
    server = await startTestServer('40950-40954', { logger, flags: { images: repository } });
    const refused = await retr(CISCO);
    expect(refused.code).to.equal(550);
    expect(refused.text).to.include('no longer matches its catalog entry');
    expect(refused.bytes).to.have.length(0);
    expect(logger.records.some((r) => r.level === 'error' && /IMAGE DRIFTED/.test(r.message) && r.fields['file'] === CISCO)).to.equal(true);
    expect((await retr(DELL)).code).to.equal(226);
  });

  it('re-verifies an image that changes while serving: 450 meanwhile, then 226 if unchanged in content, 550 if not', async function () {
    const logger = new RecordingLogger();
    server = await startTestServer('40950-40954', { copyImages: true, logger });
    expect((await retr(DELL)).code).to.equal(226);
    // Touched, same content: re-verified, then served again.
    const touched = new Date(Date.now() + 60_000);
    utimesSync(join(server.images, DELL), touched, touched);
    expect((await retr(DELL)).code).to.equal(450);
    await server.server.imageChecksSettled();
    expect((await retr(DELL)).code).to.equal(226);
    // Rewritten with other bytes: refused for good.
    flipByte(join(server.images, CISCO));
    expect((await retr(CISCO)).code).to.equal(450);
    await server.server.imageChecksSettled();
    expect((await retr(CISCO)).code).to.equal(550);
    expect(logger.records.some((r) => /IMAGE DRIFTED while serving/.test(r.message))).to.equal(true);
  });

  it('serves images that are not in the catalog', async function () {
    server = await startTestServer('40950-40954', { copyImages: true });
    writeFileSync(join(server.images, 'uncatalogued.bin'), Buffer.alloc(5000, 1));
    const got = await retr('uncatalogued.bin');
    expect(got.code).to.equal(226);
    expect(got.bytes).to.have.length(5000);
  });
});
