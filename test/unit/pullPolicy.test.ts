import { expect } from 'chai';
import { backoffDelay, classifyFailure, FtpReplyFailure, LocalFailure, PassiveHostRefused, ShortTransferError } from '../../src/client/retry.js';
import { parseFtpUrl } from '../../src/client/url.js';
import { Puller, PullUsageError } from '../../src/client/pull.js';

describe('pull retry policy', function () {
  it('retries 421, 425, 426, 450 (RFC 959 4yz) and fails at once on 530 and 550', function () {
    for (const code of [421, 425, 426, 450]) expect(classifyFailure(new FtpReplyFailure(code, `${code} x`)).kind, String(code)).to.equal('transient');
    for (const code of [530, 550, 553, 500]) expect(classifyFailure(new FtpReplyFailure(code, `${code} x`)).kind, String(code)).to.equal('permanent');
    expect(classifyFailure(new FtpReplyFailure(550, '550 x')).replyCode).to.equal(550);
  });

  it('retries socket errors, timeouts and short transfers; not a refused PASV host or a local failure', function () {
    const reset = Object.assign(new Error('read ECONNRESET (data socket)'), { code: 'ECONNRESET' });
    expect(classifyFailure(reset).kind).to.equal('transient');
    expect(classifyFailure(Object.assign(new Error('refused'), { code: 'ECONNREFUSED' })).kind).to.equal('transient');
    expect(classifyFailure(new Error('Timeout (data socket)')).kind).to.equal('transient');
    expect(classifyFailure(new ShortTransferError(5, 10)).kind).to.equal('transient');
    expect(classifyFailure(new PassiveHostRefused('10.0.0.9', '127.0.0.1')).kind).to.equal('permanent');
    expect(classifyFailure(new LocalFailure('disk full', null)).kind).to.equal('local');
    // Every certificate verification failure is permanent: trust does not come with a retry.
    for (const code of ['UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY', 'CERT_HAS_EXPIRED', 'CERT_NOT_YET_VALID', 'DEPTH_ZERO_SELF_SIGNED_CERT', 'SELF_SIGNED_CERT_IN_CHAIN', 'ERR_TLS_CERT_ALTNAME_INVALID', 'HOSTNAME_MISMATCH', 'INVALID_PURPOSE']) {
      expect(classifyFailure(Object.assign(new Error(code), { code })).kind, code).to.equal('permanent');
    }
    expect(classifyFailure(Object.assign(new Error('self-signed'), { code: 'DEPTH_ZERO_SELF_SIGNED_CERT' })).kind).to.equal('permanent');
  });

  it('backs off exponentially with equal jitter, capped', function () {
    const policy = { baseMs: 100, maxMs: 1000 };
    expect(backoffDelay(1, policy, () => 0)).to.equal(50);
    expect(backoffDelay(1, policy, () => 0.999999)).to.equal(100);
    expect(backoffDelay(2, policy, () => 0)).to.equal(100);
    expect(backoffDelay(3, policy, () => 0.5)).to.equal(300);
    expect(backoffDelay(10, policy, () => 0)).to.equal(500);
    expect(backoffDelay(10, policy, () => 0.999999)).to.equal(1000);
    expect(backoffDelay(1000, policy, () => 0.5)).to.equal(750);
    for (let i = 1; i < 8; i++) {
      const delay = backoffDelay(i, policy);
      expect(delay).to.be.within(Math.min(1000, 100 * 2 ** (i - 1)) / 2, Math.min(1000, 100 * 2 ** (i - 1)));
    }
  });
});

describe('pull hashing modes', function () {
  it("'none' (a switch's own copy) is refused for a pull that has a reference to verify", function () {
    const target = parseFtpUrl('ftp://switch@127.0.0.1:2121/cisco/image.bin');
    if ('problem' in target) throw new Error(target.problem);
    const reference = { digests: { sha256: 'a'.repeat(64) }, size: null };
    expect(() => new Puller({ target, password: 'x', out: '/dev/null', reference, hashing: 'none' })).to.throw(PullUsageError, /hashing "none" needs reference null/);
    expect(() => new Puller({ target, password: 'x', out: '/dev/null', reference: null, hashing: 'none' })).to.not.throw();
  });
});

describe('pull URL', function () {
  it('parses user, host, port and path', function () {
    expect(parseFtpUrl('ftp://switch@127.0.0.1:2121/cisco/c9300.bin')).to.deep.equal({
      host: '127.0.0.1',
      port: 2121,
      user: 'switch',
      urlPassword: null,
      path: '/cisco/c9300.bin',
      absolute: false,
      directories: ['cisco'],
      file: 'c9300.bin',
      display: 'ftp://switch@127.0.0.1:2121/cisco/c9300.bin',
    });
  });

  it('reads the path as RFC 1738 does: relative to the login directory; %2F or // make it absolute', function () {
    const walk = (url: string) => {
      const t = parseFtpUrl(url);
      if ('problem' in t) throw new Error(t.problem);
      return [t.absolute, t.directories, t.file];
    };
    expect(walk('ftp://h/cisco/img.bin')).to.deep.equal([false, ['cisco'], 'img.bin']);
    expect(walk('ftp://h/img.bin')).to.deep.equal([false, [], 'img.bin']);
    expect(walk('ftp://h/%2Fsrv/ftp/cisco/img.bin')).to.deep.equal([true, ['srv', 'ftp', 'cisco'], 'img.bin']);
    expect(walk('ftp://h//srv/img.bin')).to.deep.equal([true, ['srv'], 'img.bin']);
    expect(walk('ftp://h/%2Fimg.bin')).to.deep.equal([true, [], 'img.bin']);
    // A %2F inside a later segment stays part of that segment's name.
    expect(walk('ftp://h/a%2Fb/img.bin')).to.deep.equal([false, ['a/b'], 'img.bin']);
    expect(parseFtpUrl('ftp://h/cisco//img.bin')).to.have.property('problem');
  });

  it('defaults to port 21 and anonymous, decodes escapes, drops ;type=i', function () {
    const target = parseFtpUrl('ftp://host.example/dir%20x/a%2Bb.bin;type=i');
    expect(target).to.include({ port: 21, user: 'anonymous', path: '/dir x/a+b.bin' });
  });

  it('keeps a URL password but never shows it', function () {
    const target = parseFtpUrl('ftp://switch:s%40cret@127.0.0.1:21/a.bin');
    if ('problem' in target) throw new Error(target.problem);
    expect(target.urlPassword).to.equal('s@cret');
    expect(target.display).to.equal('ftp://switch@127.0.0.1/a.bin');
    expect(target.display).not.to.include('cret');
  });

  it('accepts IPv6 hosts', function () {
    expect(parseFtpUrl('ftp://u@[::1]:2121/a.bin')).to.include({ host: '::1', display: 'ftp://u@[::1]:2121/a.bin' });
  });

  it('refuses other schemes, missing paths, directories and CR/LF injection', function () {
    for (const bad of ['http://h/a.bin', 'ftps://h/a.bin', 'ftp://h', 'ftp://h/', 'ftp://h/dir/', 'ftp://h/a%0d%0aDELE%20x', 'ftp://h/a?x=1', 'not a url']) {
      expect(parseFtpUrl(bad), bad).to.have.property('problem');
    }
  });
});
