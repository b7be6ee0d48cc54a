/**
 * The command table is the one gate: looped over, verb by verb, through a real server. Every verb
 * that needs a login gets 530 before it; every verb outside a one-time account's scope is refused;
 * every verb has help. The README's hostile-input table is checked against the same table.
 */
import { expect } from 'chai';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { PROJECT_ROOT } from '../../src/config/loader.js';
import { BEFORE_TLS, COMMANDS } from '../../src/server/commandTable.js';
import { startTestServer, TEST_PASSWORD, TEST_USER, type TestServer } from '../helpers/testServer.js';
import { FtpControl } from '../helpers/ftpControl.js';

const IMAGE = '/dell/OS10_10.5.6.0.bin';
/** An argument each verb accepts syntactically, so the gate, not the argument check, decides. */
const argumentFor = (verb: string): string => {
  const spec = COMMANDS.get(verb)!;
  if (spec.argument === 'none') return '';
  if (verb === 'PASS' || verb === 'USER') return 'x';
  return '/cisco/c9300-universalk9.17.09.04a.SPA.bin';
};

describe('the command table, verb by verb (the one gate)', function () {
  this.timeout(60_000);
  let server: TestServer;
  const controls: FtpControl[] = [];
  before(async () => {
    server = await startTestServer('40080-40081');
  });
  afterEach(() => controls.splice(0).forEach((c) => c.close()));
  after(() => server.stop());
  const open = async () => {
    const c = await FtpControl.connect(server.port);
    controls.push(c);
    await c.read();
    return c;
  };

  it('every verb has help text, and HELP <verb> gives it', async function () {
    const c = await open();
    for (const [verb, spec] of COMMANDS) {
      expect(spec.help.length, verb).to.be.greaterThan(8);
      const reply = await c.send(`HELP ${verb}`);
      expect(reply.code, verb).to.equal(214);
      expect(reply.text, verb).to.include(spec.help);
    }
    expect((await c.send('HELP XYZZY')).code).to.equal(501);
  });

  it('every verb that needs a login gets 530 before it', async function () {
    let checked = 0;
    for (const [verb, spec] of COMMANDS) {
      if (spec.access !== 'logged-in') continue;
      const c = await open();
      const arg = argumentFor(verb);
      const reply = await c.send(arg ? `${verb} ${arg}` : verb);
      expect(reply.code, verb).to.equal(530);
      c.close();
      checked++;
    }
    expect(checked).to.be.greaterThan(30);
  });

  it('every verb outside a one-time account\'s scope is refused (550), whatever it names', async function () {
    const access = await server.server.grantOneTimeAccess({ sourceAddress: '127.0.0.1', imagePath: IMAGE.slice(1), validForMs: 60_000 });
    try {
      let checked = 0;
      for (const [verb, spec] of COMMANDS) {
        if (spec.grant === 'any') continue;
        const c = await open();
        expect((await c.send(`USER ${access.user}`)).code).to.equal(331);
        expect((await c.send(`PASS ${access.password}`)).code).to.equal(230);
        // Another image than the granted one (or, for CWD, a directory off the way to it).
        const other = spec.grant === 'toward-image' ? '/cisco' : '/cisco/c9300-universalk9.17.09.04a.SPA.bin';
        const reply = await c.send(spec.argument === 'none' ? verb : `${verb} ${other}`);
        if (verb === 'CDUP' || verb === 'XCUP') expect(reply.code, verb).to.equal(250); // from / to /: on the way
        else expect(reply.code, `${verb}: ${reply.text}`).to.equal(550);
        c.close();
        checked++;
      }
      expect(checked).to.be.greaterThan(10);
    } finally {
      access.revoke();
    }
  });

  it("the README's hostile-input table names exactly the table's pre-login verbs and its refused write verbs", function () {
    const readme = readFileSync(join(PROJECT_ROOT, 'README.md'), 'utf8');
    const preLogin = readme.match(/^\| Any command before login \(except ([A-Z, ]+)\) \| 530 \|$/m);
    expect(preLogin, 'README row "Any command before login (except …)"').to.not.equal(null);
    const anyone = [...COMMANDS].filter(([, s]) => s.access === 'anyone').map(([v]) => v);
    expect(preLogin![1]!.split(/,\s*/).sort()).to.deep.equal(anyone.sort());
    const writes = readme.match(/^\| Write commands: ([A-Z ]+) \| 550; the repository is unchanged \|$/m);
    expect(writes, 'README row "Write commands: …"').to.not.equal(null);
    const readOnly = [...COMMANDS].filter(([, s]) => s.help.includes('refused, the repository is read-only')).map(([v]) => v);
    expect(writes![1]!.split(' ').sort()).to.deep.equal([...readOnly, 'SITE'].sort());
    const tls = readme.match(/^\| `requireTls`: any command but ([A-Z, ]+) before AUTH TLS \/ PASV, EPSV, RETR, LIST without PROT P \/ PROT C \| 530 \/ 522 \/ 536 \|$/m);
    expect(tls, 'README row "`requireTls`: any command but … before AUTH TLS"').to.not.equal(null);
    expect(tls![1]!.split(/,\s*/).sort()).to.deep.equal([...BEFORE_TLS].sort());
  });

  it('a logged-in user gets every verb past the gate (no 530 after login)', async function () {
    const c = await FtpControl.connect(server.port);
    controls.push(c);
    expect((await c.login(TEST_USER, TEST_PASSWORD)).code).to.equal(230);
    for (const verb of ['PWD', 'TYPE I', 'SYST', 'NOOP', 'STAT', 'MDTM /dell/OS10_10.5.6.0.bin', 'SIZE /dell/OS10_10.5.6.0.bin']) {
      expect((await c.send(verb)).code, verb).to.be.below(500);
    }
  });
});
