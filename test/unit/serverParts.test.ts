import { expect } from 'chai';
import { Authenticator, hashPassword } from '../../src/server/accounts.js';
import { BufferPool, SentBytesHashing } from '../../src/server/sentBytesHash.js';
import { parseCidr, type Cidr } from '../../src/core/address.js';
import { closeSync, mkdtempSync, openSync, rmSync, writeFileSync } from 'node:fs';
import { once } from 'node:events';
import { createServer, connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sendFile } from '../../src/server/sendFile.js';

describe('Authenticator', function () {
  const account = (user: string, passwordHash: string, allowFrom: Cidr[] = []) => ({
    account: { user, passwordEnv: null, passwordHash, allowFrom },
    passwordHash,
  });

  it('accepts a repeat login from the HMAC cache and still refuses wrong passwords', async function () {
    const auth = await Authenticator.create([account('switch', await hashPassword('right'))]);
    expect(await auth.check('switch', 'right', '10.0.0.1')).to.deep.equal({ user: 'switch', onlyPath: null });
    expect(await auth.check('switch', 'right', '10.0.0.1')).to.deep.equal({ user: 'switch', onlyPath: null });
    expect(await auth.check('switch', 'wrong', '10.0.0.1')).to.equal(null);
    expect(await auth.check('nobody', 'right', '10.0.0.1')).to.equal(null);
  });

  it('checks allowFrom on cached logins too', async function () {
    const auth = await Authenticator.create([account('mgmt', await hashPassword('pw'), [parseCidr('10.1.0.0/16') as Cidr])]);
    expect(await auth.check('mgmt', 'pw', '10.1.2.3')).to.not.equal(null);
    expect(await auth.check('mgmt', 'pw', '10.2.2.3')).to.equal(null);
  });

  it('expires one-time grants', async function () {
    const auth = await Authenticator.create([]);
    const grant = auth.grant({ source: '10.0.0.9', imagePath: '/a.bin', expiresAt: 1000 });
    expect(await auth.check(grant.user, grant.password, '10.0.0.9', 999)).to.deep.equal({ user: grant.user, onlyPath: '/a.bin' });
    expect(await auth.check(grant.user, grant.password, '10.0.0.9', 1000)).to.equal(null);
  });

  it('binds a one-time grant to one address, or to the block a switch sources its FTP from', async function () {
    const auth = await Authenticator.create([]);
    const one = auth.grant({ source: '10.0.0.9', imagePath: '/a.bin', expiresAt: 1000 });
    expect(await auth.check(one.user, one.password, '::ffff:10.0.0.9', 1)).to.not.equal(null);
    expect(await auth.check(one.user, one.password, '10.0.0.10', 1)).to.equal(null);
    const block = auth.grant({ source: '10.20.0.0/24', imagePath: '/a.bin', expiresAt: 1000 });
    expect(await auth.check(block.user, block.password, '10.20.0.77', 1)).to.not.equal(null);
    expect(await auth.check(block.user, block.password, '10.20.1.77', 1)).to.equal(null);
    expect(() => auth.grant({ source: 'switch1.example.net', imagePath: '/a.bin', expiresAt: 1000 })).to.throw(/not an IPv4 or IPv6 address/);
  });
});

describe('BufferPool', function () {
  it('allocates at most its cap, reuses buffers, and serves waiters in order', async function () {
    const pool = new BufferPool(1024, 2);
    const a = pool.tryTake()!;
    const b = pool.tryTake()!;
    expect(pool.tryTake()).to.equal(null);
    const first = pool.wait();
    const second = pool.wait();
    pool.give(b);
    pool.give(a);
    expect(await first).to.equal(b);
    expect(await second).to.equal(a);
    pool.give(a);
    expect(pool.tryTake()).to.equal(a);
  });

  it('hashes shared buffers in the worker, and the worker stops cleanly', async function () {
    const pool = new BufferPool(2 * 1024 * 1024, 1);
    const hashing = new SentBytesHashing('per-transfer');
    try {
      const hash = hashing.open(10 * 1024 * 1024)!;
      const buffer = pool.tryTake()!;
      buffer.bytes.fill(1);
      await new Promise<void>((resolve) => hash.update(buffer, buffer.bytes.length, resolve));
      const { createHash } = await import('node:crypto');
      expect(await hash.digest()).to.equal(createHash('sha256').update(Buffer.alloc(2 * 1024 * 1024, 1)).digest('hex'));
    } finally {
      await hashing.stop();
    }
  });
});

describe('sendFile (the RETR data path)', function () {
  it('a disk read error ends the transfer as read-error with its errno, never as a closed connection', async function () {
    const dir = mkdtempSync(join(tmpdir(), 'swfw-sendfile-'));
    const server = createServer((s) => s.resume());
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const socket = connect((server.address() as { port: number }).port, '127.0.0.1');
    await once(socket, 'connect');
    try {
      writeFileSync(join(dir, 'f.bin'), Buffer.alloc(1024 * 1024, 1));
      const fd = openSync(join(dir, 'f.bin'), 'r');
      closeSync(fd); // every read now fails with EBADF, as a failing disk's would with EIO
      const outcome = await sendFile({ fd, offset: 0, length: 1024 * 1024, sink: socket, dataTimeoutMs: 5000, hash: null, pool: new BufferPool(1024 * 1024, 2) });
      expect(outcome).to.include({ ok: false, reason: 'read-error', bytes: 0 });
      expect((outcome as { error?: string }).error).to.match(/^EBADF/);
    } finally {
      socket.destroy();
      await new Promise((resolve) => server.close(resolve));
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
