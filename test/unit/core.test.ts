import { expect } from 'chai';
import { parsePortRange } from '../../src/core/portRange.js';
import { canonicalAddress, cidrContains, parseCidr, type Cidr } from '../../src/core/address.js';
import { toVirtualPath } from '../../src/server/jail.js';
import { FtpReplyError } from '../../src/core/errors.js';
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
