/**
 * Every driver's parsers against the recorded transcripts in fixtures/transcripts/. The
 * transcripts and their expected readings (expected.json) were written from the formats in
 * SWITCH-CLI-REFERENCE.md without looking at the parsers, so this checks the parsers against
 * the switches' formats, not against themselves.
 */
import { expect } from 'chai';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { PROJECT_ROOT } from '../../src/config/loader.js';
import { DIALECTS, SwitchOutputError, type SwitchHashAlgorithm } from '../../src/switches/index.js';
import { HASH_UNSUPPORTED, type Dialect } from '../../src/switches/dialect.js';
import { parseCiscoCopy, parseCiscoDirFree, parseCiscoShowVersion } from '../../src/switches/dialects/cisco.js';
import { parseNxosCopy, parseNxosDirFree, parseNxosShowVersion } from '../../src/switches/dialects/nxos.js';
import { parseEosCopy, parseEosShowVersion } from '../../src/switches/dialects/eos.js';
import { parseJunosCopy, parseJunosShowVersion, parseJunosStorageFree } from '../../src/switches/dialects/junos.js';
import { parseComwareCopy, parseComwareDirFree, parseComwareVersion } from '../../src/switches/dialects/comware.js';
import { parseOs10Download, parseOs10DfFree, parseOs10Version } from '../../src/switches/dialects/dellOs10.js';

const DIR = join(PROJECT_ROOT, 'fixtures', 'transcripts');
const transcript = (key: string) => readFileSync(join(DIR, key), 'utf8');

interface Expected {
  kind: 'version' | 'free' | 'copy' | 'hash' | 'status' | 'invalid';
  model?: string;
  version?: string;
  freeBytes?: number;
  ok?: boolean;
  bytes?: number | null;
  algorithm?: SwitchHashAlgorithm;
  digest?: string | null;
  unsupported?: boolean;
  parseError?: boolean;
  state?: string;
}
const expected = JSON.parse(readFileSync(join(DIR, 'expected.json'), 'utf8')) as Record<string, Expected>;
const catalog = JSON.parse(readFileSync(join(PROJECT_ROOT, 'fixtures', 'images', 'catalog.json'), 'utf8')) as { images: { file: string; platform: string }[] };
/** The file each driver's transcripts hash: its platform's fixture image, by base name. */
const fileOf = (driver: string) => catalog.images.find((i) => i.platform === driver)!.file.split('/').pop()!;

/** The parsers of each driver, by what they read. */
const PARSERS: Record<string, { version(t: string): { model: string; version: string }; free(t: string): number | null; copy(t: string): { ok: boolean; bytes: number | null } }> = {
  'cisco-ios': { version: parseCiscoShowVersion, free: (t) => parseCiscoDirFree(t), copy: parseCiscoCopy },
  'cisco-ios-xe': { version: parseCiscoShowVersion, free: (t) => parseCiscoDirFree(t), copy: parseCiscoCopy },
  'cisco-nxos': { version: parseNxosShowVersion, free: parseNxosDirFree, copy: parseNxosCopy },
  'arista-eos': { version: parseEosShowVersion, free: (t) => parseCiscoDirFree(t), copy: parseEosCopy },
  'juniper-junos': { version: parseJunosShowVersion, free: parseJunosStorageFree, copy: parseJunosCopy },
  comware: { version: parseComwareVersion, free: parseComwareDirFree, copy: parseComwareCopy },
  'dell-os10': { version: parseOs10Version, free: parseOs10DfFree, copy: parseOs10Download },
};

describe('switch dialects against recorded transcripts', function () {
  it('every driver has transcripts, and every transcript an expected reading', function () {
    const drivers = new Set(Object.keys(expected).map((k) => k.split('/')[0]));
    expect([...drivers].sort()).to.deep.equal(Object.keys(DIALECTS).sort());
  });

  for (const [key, want] of Object.entries(expected)) {
    const driver = key.split('/')[0]!;
    const dialect: Dialect = DIALECTS[driver]!;
    const parsers = PARSERS[driver]!;
    it(`${key}: ${want.kind}`, function () {
      const text = transcript(key);
      switch (want.kind) {
        case 'version':
          expect(parsers.version(text)).to.deep.equal({ model: want.model, version: want.version });
          break;
        case 'free':
          expect(parsers.free(text)).to.equal(want.freeBytes);
          break;
        case 'copy': {
          const outcome = parsers.copy(text);
          expect(outcome.ok, JSON.stringify(outcome)).to.equal(want.ok);
          if (want.ok && want.bytes !== undefined && want.bytes !== null) expect(outcome.bytes).to.equal(want.bytes);
          // A copy's message never carries the one-time password the transcripts use.
          expect(JSON.stringify(outcome)).to.not.include('Vb3nQz8_xKp2LwRd');
          break;
        }
        case 'hash': {
          const algorithm = want.algorithm!;
          if (want.parseError) {
            expect(() => dialect.parseHash(text, algorithm, fileOf(driver))).to.throw(SwitchOutputError, /hex digits|no hex digest|digest line/);
          } else if (want.unsupported) {
            expect(dialect.parseHash(text, algorithm, fileOf(driver))).to.equal(HASH_UNSUPPORTED);
          } else {
            expect(dialect.parseHash(text, algorithm, fileOf(driver))).to.equal(want.digest ?? null);
          }
          break;
        }
        case 'status': {
          const status = dialect.background!.parseStatus(text);
          expect(status.state).to.equal(want.state);
          if (want.bytes !== undefined) expect(status.bytes).to.equal(want.bytes);
          break;
        }
        case 'invalid':
          // A refusal of the command itself: the hash parser says "unsupported", never a digest or "missing".
          if (dialect.hashAlgorithms.length) expect(dialect.parseHash(text, dialect.hashAlgorithms[0]!, fileOf(driver))).to.equal(HASH_UNSUPPORTED);
          break;
      }
    });
  }
});

describe('switch dialects: commands and questions', function () {
  const url = { host: '192.0.2.10', port: 21, user: 'sw-1', password: 'Vb3nQz8_xKp2LwRd', path: '/cisco/x.bin' };
  const answer = (d: Dialect, question: string) => d.pullCommand(url, 'x.bin', null).questions.find((q) => q.match.test(question));

  it('Cisco: every copy question is answered, the erase never with Enter', function () {
    const d = DIALECTS['cisco-ios-xe']!;
    expect(d.pullCommand(url, 'x.bin', null).command).to.equal('copy ftp://sw-1:Vb3nQz8_xKp2LwRd@192.0.2.10/cisco/x.bin flash:x.bin');
    expect(d.pullCommand({ ...url, port: 2121 }, 'x.bin', null).command).to.include('@192.0.2.10:2121/cisco/x.bin');
    expect(answer(d, 'Address or name of remote host [192.0.2.10]? ')).to.include({ answer: '192.0.2.10' });
    expect(answer(d, 'Source filename [cisco/x.bin]? ')).to.include({ answer: 'cisco/x.bin' });
    expect(answer(d, 'Destination filename [x.bin]? ')).to.include({ answer: 'x.bin' });
    expect(answer(d, 'Erase flash: before copying? [confirm]')).to.include({ answer: 'n', enter: false });
    expect(answer(d, 'Erasing the flash filesystem will remove all files! Continue? [confirm]')).to.include({ answer: 'n', enter: false });
    expect(answer(d, 'Do you want to over write? [confirm]')).to.include({ answer: '' });
    expect(d.hashAlgorithms).to.deep.equal(['sha512', 'md5']);
  });

  it('NX-OS: user in the URL, password at its prompt, vrf management by default', function () {
    const d = DIALECTS['cisco-nxos']!;
    expect(d.pullCommand(url, 'x.bin', 'management').command).to.equal('copy ftp://sw-1@192.0.2.10/cisco/x.bin bootflash:x.bin vrf management');
    expect(d.defaultVrf).to.equal('management');
    expect(answer(d, 'Password:')).to.include({ answer: url.password, secret: true });
    expect(answer(d, "Enter vrf (If no input, current vrf 'default' is considered):")).to.include({ answer: 'default' });
    expect(answer(d, 'Do you want to overwrite (y/n)?[n] ')).to.include({ answer: 'y' });
  });

  it('Junos: %2F makes the path absolute; the image goes to /var/tmp', function () {
    const d = DIALECTS['juniper-junos']!;
    expect(d.pullCommand(url, 'x.bin', null).command).to.equal('file copy ftp://sw-1:Vb3nQz8_xKp2LwRd@192.0.2.10/%2Fcisco/x.bin /var/tmp/x.bin');
    expect(d.hashCommand('x.bin', 'sha256')).to.equal('file checksum sha-256 /var/tmp/x.bin');
  });

  it('Comware: vpn-instance for a VRF, its [Y/N] questions answered', function () {
    const d = DIALECTS['comware']!;
    expect(d.pullCommand(url, 'x.bin', 'mgmt').command).to.equal('copy ftp://sw-1:Vb3nQz8_xKp2LwRd@192.0.2.10/cisco/x.bin flash:/x.bin vpn-instance mgmt');
    expect(answer(d, 'Copy ftp://sw-1:Vb3nQz8_xKp2LwRd@192.0.2.10/cisco/x.bin to flash:/x.bin? [Y/N]:')).to.include({ answer: 'Y' });
    expect(answer(d, 'The file flash:/x.bin exists. Overwrite it? [Y/N]:')).to.include({ answer: 'Y' });
    expect(d.spaceNeeded!(100, 'S5130EI-CMW710-R3506P10.ipe')).to.equal(200);
  });

  it('EOS: the VRF is set around the copy with cli vrf', function () {
    const d = DIALECTS['arista-eos']!;
    expect(d.pullCommand(url, 'x.bin', 'management')).to.deep.include({ before: ['cli vrf management'], after: ['cli vrf default'] });
  });

  it('Dell OS10: image download, then show image status; the image lives in /var/os10-image', function () {
    const d = DIALECTS['dell-os10']!;
    expect(d.pullCommand(url, 'x.bin', null).command).to.equal('image download ftp://sw-1:Vb3nQz8_xKp2LwRd@192.0.2.10/cisco/x.bin');
    expect(d.background!.statusCommand).to.equal('show image status');
    expect(d.hashCommand('x.bin', 'sha256')).to.equal('system "sha256sum /var/os10-image/x.bin"');
    expect(d.inventoryCommands).to.include('system "df -k /var/os10-image"');
  });
});

describe('switch dialects: output a hostile tester found (each once judged wrong)', function () {
  const sha512 = 'cb5810285e549ea9d80264a8bb169bba6a0efb41386c0888f1d9b91d707b72d2587d16f09b87a060e26bd84f08d48291373f7aae496a0b0fb208891e24351e11';
  const xe = DIALECTS['cisco-ios-xe']!;

  it('a digest of another file, or one followed by an error, concludes nothing', function () {
    expect(() => xe.parseHash(`....Done!\n\nverify /sha512 (flash:other.bin) = ${sha512}\n`, 'sha512', 'x.bin')).to.throw(SwitchOutputError, /of flash:other\.bin, not x\.bin/);
    expect(() => xe.parseHash(`verify /sha512 (flash:x.bin) = ${sha512}\n%Error reading flash:x.bin (I/O error)\n`, 'sha512', 'x.bin')).to.throw(SwitchOutputError, /an error follows the digest/);
    expect(() => DIALECTS['juniper-junos']!.parseHash(`SHA256 (/var/tmp/other.tgz) = ${'a'.repeat(64)}\n`, 'sha256', 'x.tgz')).to.throw(SwitchOutputError, /not x\.tgz/);
    expect(() => DIALECTS['dell-os10']!.parseHash(`${'a'.repeat(64)}  /var/os10-image/other.bin\n`, 'sha256', 'x.bin')).to.throw(SwitchOutputError, /not x\.bin/);
    expect(xe.parseHash(`verify /sha512 (flash:x.bin) = ${sha512.toUpperCase()}\n`, 'sha512', 'x.bin')).to.equal(sha512);
  });

  it("EOS: curl's progress meter before Copy completed successfully is no error", function () {
    const out = '  % Total    % Received % Xferd  Average Speed   Time    Time     Time  Current\n                                 Dload  Upload   Total   Spent    Left  Speed\n100  977k  100  977k    0     0  2048k      0 --:--:-- --:--:-- --:--:-- 2048k\nCopy completed successfully.\n';
    expect(parseEosCopy(out).ok).to.equal(true);
    expect(parseEosCopy('% Error copying ftp://*:*@h/x to flash:x (Access denied: 530)\n').ok).to.equal(false);
  });

  it("Comware 5's %Copy file … Done. is a success", function () {
    expect(parseComwareCopy('%Copy file ftp://h/x.bin to flash:/x.bin...Done.\n').ok).to.equal(true);
  });

  it("Junos: libfetch's failures without an error: line fail the copy", function () {
    for (const why of ["Can't open data connection", 'Connection closed; transfer aborted', 'File unavailable (e.g., file not found, no access)', 'Insufficient storage space in system', 'Unknown host', 'Host is down', 'Network is unreachable']) {
      expect(parseJunosCopy(`fetch: /var/tmp/...transferring.file.........kz6JYz: ${why}\n`).ok, why).to.equal(false);
    }
    expect(parseJunosCopy('/var/tmp//...transferring.file.........100% of  384 kB 2816 kBps\n').ok).to.equal(true);
  });

  it('NX-OS: only the final "Copy complete." is done; a failed save after "now saving to disk" is not', function () {
    const saving = '***** Transfer of file Completed Successfully *****\nCopy complete, now saving to disk (please wait)...\n';
    expect(parseNxosCopy(`${saving}Write of bootflash:x.bin failed: device full\n`).ok).to.equal(false);
    expect(parseNxosCopy(saving).ok).to.equal(false);
    expect(parseNxosCopy(`${saving}Copy complete.\n`).ok).to.equal(true);
  });

  it('Junos: a full /var (negative Avail) has no room, not the room of another filesystem', function () {
    const out = 'Filesystem              Size       Used      Avail  Capacity   Mounted on\n/dev/gpt/junos          1.3G       570M       640M       47%  /.mount\n/dev/gpt/var            1.7G       1.8G      -100M      105%  /.mount/var\n';
    expect(parseJunosStorageFree(out)).to.equal(0);
  });

  it("old IOS's Verifying checksum... invalid fails the copy", function () {
    expect(parseCiscoCopy('Loading x.bin !!!!!\nVerifying checksum...  invalid (expected 0x1234, got 0xF5DB)\n[OK - 1000000 bytes]\n\n1000000 bytes copied in 12.345 secs\n').ok).to.equal(false);
    expect(parseCiscoCopy('Loading x.bin !!!!!\nVerifying checksum...  OK (0xF5DB)\n[OK - 1000000 bytes]\n\n1000000 bytes copied in 12.345 secs\n').ok).to.equal(true);
  });
});
