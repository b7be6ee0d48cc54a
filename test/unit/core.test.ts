import { expect } from 'chai';
import { parsePortRange } from '../../src/core/portRange.js';
import { canonicalAddress, cidrContains, parseCidr, type Cidr } from '../../src/core/address.js';
import { toVirtualPath } from '../../src/server/jail.js';
import { FtpReplyError } from '../../src/core/errors.js';
import { epsvReplyText, LineSplitter, parseEpsvReply, parsePasvReply, pasvReplyText, ReplyParser, splitCommand } from '../../src/core/ftpWire.js';
import { hashPassword, verifyPassword } from '../../src/server/accounts.js';

describe('port ranges', function () {
  it('parses MIN-MAX and single ports', function () {
    expect(parsePortRange('63006-63010')).to.deep.equal({ min: 63006, max: 63010 });
    expect(parsePortRange('40000')).to.deep.equal({ min: 40000, max: 40000 });
  });
  it('refuses reversed, privileged, too-high and malformed ranges with a reason', function () {
    expect(parsePortRange('63010-63006')).to.match(/reversed/);
    expect(parsePortRange('1000-1010')).to.match(/outside 1024-65535/);
    expect(parsePortRange('65000-65536')).to.match(/outside 1024-65535/);
    expect(parsePortRange('a-b')).to.match(/not a port range/);
  });
});

describe('FTP wire formats', function () {
  it('splits replies however the bytes arrive, multi-line ones whole (RFC 959 §4.2)', function () {
    const parser = new ReplyParser();
    const bytes = '220-swfw\r\n220-inner line\r\n 220 not the end (leading space)\r\n220 ready\r\n331 Password required\r\n2';
    const replies = [...bytes].flatMap((ch) => parser.push(ch));
    expect(replies.map((r) => r.code)).to.deep.equal([220, 331]);
    expect(replies[0]!.lines).to.have.length(4);
    expect(replies[0]!.text).to.equal('220-swfw\n220-inner line\n 220 not the end (leading space)\n220 ready');
    expect(parser.push('30 Login successful\n')).to.deep.equal([{ code: 230, lines: ['230 Login successful'], text: '230 Login successful' }]);
  });

  it('splits command lines on LF (CR dropped), and a command into its verb and its argument as sent', function () {
    const lines = new LineSplitter();
    expect(lines.push('USER sw')).to.deep.equal([]);
    expect(lines.push('itch\r\nretr /dell/my image.bin\nNOOP')).to.deep.equal(['USER switch', 'retr /dell/my image.bin']);
    expect(splitCommand('retr /dell/my image.bin')).to.deep.equal({ verb: 'RETR', argument: '/dell/my image.bin' });
    expect(splitCommand('PASV')).to.deep.equal({ verb: 'PASV', argument: '' });
    expect(splitCommand('CWD  two spaces')).to.deep.equal({ verb: 'CWD', argument: ' two spaces' });
  });

  it('a line that opens no reply is a reply of code 0, so a caller sees the break', function () {
    expect(new ReplyParser().push('SSH-2.0-OpenSSH_9.2\r\n')).to.deep.equal([{ code: 0, lines: ['SSH-2.0-OpenSSH_9.2'], text: 'SSH-2.0-OpenSSH_9.2' }]);
  });

  it('writes and reads 227 and 229 replies, and refuses what names no address or port', function () {
    expect(pasvReplyText('10.231.2.2', 63006)).to.equal('Entering Passive Mode (10,231,2,2,246,30).');
    expect(parsePasvReply(`227 ${pasvReplyText('10.231.2.2', 63006)}`)).to.deep.equal({ address: '10.231.2.2', port: 63006 });
    expect(parsePasvReply('227 =10,231,2,2,246,30')).to.deep.equal({ address: '10.231.2.2', port: 63006 });
    expect(parsePasvReply('227 Entering Passive Mode (300,1,1,1,1,1)')).to.equal(null);
    expect(parsePasvReply('200 Probe listening on port 63006')).to.equal(null);
    expect(parseEpsvReply(`229 ${epsvReplyText(63010)}`)).to.equal(63010);
    // RFC 2428 §3: the delimiter is the server's choice.
    expect(parseEpsvReply('229 Entering Extended Passive Mode (!!!63007!)')).to.equal(63007);
    expect(parseEpsvReply('229 Entering Extended Passive Mode (|||0|)')).to.equal(null);
    expect(parseEpsvReply('229 Entering Extended Passive Mode (|||70000|)')).to.equal(null);
    expect(parseEpsvReply('229 Entering Extended Passive Mode (||1|63007|)')).to.equal(null);
  });
});

describe('addresses and CIDRs', function () {
  const cidr = (text: string) => parseCidr(text) as Cidr;
  it('treats IPv4-mapped IPv6 as IPv4', function () {
    expect(canonicalAddress('::ffff:10.1.2.3')).to.equal('10.1.2.3');
    expect(cidrContains(cidr('10.1.0.0/16'), '::ffff:10.1.2.3')).to.equal(true);
  });
  it('matches prefixes exactly', function () {
    expect(cidrContains(cidr('10.1.2.0/23'), '10.1.3.255')).to.equal(true);
    expect(cidrContains(cidr('10.1.2.0/23'), '10.1.4.0')).to.equal(false);
    expect(cidrContains(cidr('192.0.2.7'), '192.0.2.7')).to.equal(true);
    expect(cidrContains(cidr('192.0.2.7'), '192.0.2.8')).to.equal(false);
    expect(cidrContains(cidr('0.0.0.0/0'), '203.0.113.9')).to.equal(true);
    expect(cidrContains(cidr('fd00::/8'), 'fd12:3456::1')).to.equal(true);
    expect(cidrContains(cidr('fd00::/8'), 'fe80::1')).to.equal(false);
    expect(cidrContains(cidr('10.0.0.0/8'), 'fd00::1')).to.equal(false);
  });
  it('rejects nonsense', function () {
    expect(parseCidr('10.0.0.0/40')).to.be.a('string');
    expect(parseCidr('example.com')).to.be.a('string');
  });
});

describe('virtual paths', function () {
  it('never climbs above the root', function () {
    expect(toVirtualPath('/', '../../etc/passwd')).to.equal('/etc/passwd');
    expect(toVirtualPath('/cisco', '..\\..\\x.bin')).to.equal('/x.bin');
    expect(toVirtualPath('/cisco', 'a.bin')).to.equal('/cisco/a.bin');
    expect(toVirtualPath('/cisco', '/dell/b.bin')).to.equal('/dell/b.bin');
  });
  it('refuses control characters such as NUL with 550', function () {
    expect(() => toVirtualPath('/', 'a\u0000.bin')).to.throw(FtpReplyError).with.property('replyCode', 550);
    expect(() => toVirtualPath('/', 'a\r\nDELE x')).to.throw(FtpReplyError);
  });
});

describe('password hashes', function () {
  it('scrypt hashes verify only the right password and differ per salt', async function () {
    const a = await hashPassword('s3cret');
    const b = await hashPassword('s3cret');
    expect(a).to.match(/^scrypt\$32768\$8\$1\$/);
    expect(a).to.not.equal(b);
    expect(await verifyPassword('s3cret', a)).to.equal(true);
    expect(await verifyPassword('s3cret!', a)).to.equal(false);
    expect(await verifyPassword('s3cret', 'scrypt$garbage')).to.equal(false);
  });
});
