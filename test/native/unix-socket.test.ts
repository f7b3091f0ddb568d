import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { EFD_NONBLOCK } from '../../lib/sys/constants';
import { VfioError } from '../../lib/sys/errors';
import { UnixSocket } from '../../lib/sys/unix-socket';
import { Iommufd } from '../../lib/iommu/iommufd';
import { identifyFd } from '../../lib/vfio/fd-identity';
import { addon, kernel, linuxOnly } from './support';

function openFds(): number {
  return fs.readdirSync('/proc/self/fd').length;
}

describe('native: AF_UNIX sockets with SCM_RIGHTS and SO_PEERCRED', function () {
  linuxOnly(this);
  let dir: string;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vfio-sock-'));
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('passes an eventfd to the peer: the received fd is the same open file, close-on-exec', async () => {
    const server = UnixSocket.listen(path.join(dir, 's'));
    const client = UnixSocket.connect(server.path);
    const conn = await server.accept();
    const k = kernel();
    const efd = k.eventfd(0, EFD_NONBLOCK);
    try {
      client.send(Buffer.from('take it'), [efd]);
      const m = await conn.receive();
      assert.equal(m.data.toString(), 'take it');
      assert.equal(m.fds.length, 1);
      assert.equal(m.truncated, false);
      const got = m.fds[0]!;
      assert.notEqual(got, efd);
      k.eventfdWrite(efd, 5n);
      assert.equal(k.eventfdRead(got), 5n, 'one counter behind both fds');
      const flags = /^flags:\s*([0-7]+)$/m.exec(fs.readFileSync(`/proc/self/fdinfo/${got}`, 'utf8'))?.[1];
      assert.ok(flags !== undefined && (parseInt(flags, 8) & 0o2000000) !== 0, `O_CLOEXEC set (flags ${flags})`);
      k.close(got);
    } finally {
      k.close(efd);
      for (const s of [client, conn, server]) s.close();
    }
  });

  it('tells the peer who connected (SO_PEERCRED) and keeps message boundaries', async () => {
    const server = UnixSocket.listen(path.join(dir, 's'));
    const client = UnixSocket.connect(server.path);
    const conn = await server.accept();
    try {
      assert.deepEqual(conn.peer(), { pid: process.pid, uid: process.getuid!(), gid: process.getgid!() });
      client.send(Buffer.from('one'));
      client.send(Buffer.from('two'));
      assert.equal((await conn.receive()).data.toString(), 'one');
      assert.equal((await conn.receive()).data.toString(), 'two');
      client.close();
      const end = await conn.receive();
      assert.equal(end.data.length, 0, 'end of stream once the peer closed');
    } finally {
      conn.close();
      server.close();
    }
  });

  it('reports truncation and still hands over the fds that arrived', async () => {
    const [a, b] = UnixSocket.pair();
    const k = kernel();
    const efd = k.eventfd(0, 0);
    try {
      a.send(Buffer.alloc(100, 1), [efd]);
      const m = await b.receive(10);
      assert.equal(m.truncated, true);
      assert.equal(m.data.length, 10);
      assert.equal(m.fds.length, 1);
      k.close(m.fds[0]!);
    } finally {
      k.close(efd);
      a.close();
      b.close();
    }
  });

  it('refuses bad input with typed errors and leaks nothing over 2000 send/receive cycles', async () => {
    const before = openFds();
    const [a, b] = UnixSocket.pair();
    const k = kernel();
    const efd = k.eventfd(0, 0);
    assert.throws(() => a.send(Buffer.alloc(1), [-1]), RangeError);
    assert.throws(() => a.send(Buffer.alloc(1), new Array<number>(254).fill(efd)), RangeError);
    assert.throws(() => addon().sendFds(a.fd, Buffer.alloc(1), [1.5]), RangeError);
    assert.throws(
      () => UnixSocket.connect(path.join(dir, 'none')),
      (e: unknown) => e instanceof VfioError && e.code === 'ENOENT' && e.syscall === 'connect',
    );
    assert.throws(() => UnixSocket.listen('x'.repeat(200)), RangeError, 'sun_path holds 107 bytes');
    for (let i = 0; i < 2000; i++) {
      a.send(Buffer.of(i & 0xff), [efd]);
      const m = await b.receive();
      for (const fd of m.fds) k.close(fd);
    }
    k.close(efd);
    a.close();
    b.close();
    assert.throws(
      () => a.send(Buffer.alloc(1)),
      (e: unknown) => e instanceof VfioError && e.code === 'EBADF',
    );
    assert.equal(openFds(), before);
  });

  it('an fd received over the socket that is not what it was claimed to be is refused by name (real kernel)', async () => {
    const [a, b] = UnixSocket.pair();
    const k = kernel();
    const efd = k.eventfd(0, 0);
    try {
      a.send(Buffer.from('iommufd'), [efd]);
      const got = (await b.receive()).fds[0]!;
      const id = identifyFd(k, got);
      assert.deepEqual(id, { kind: 'other', path: 'anon_inode:[eventfd]' });
      assert.throws(
        () => Iommufd.adopt(got, { kernel: k }),
        (e: unknown) => e instanceof VfioError && e.code === 'ERR_VFIO_WRONG_FD' && e.message.includes('anon_inode:[eventfd]'),
      );
      const memfd = k.memfdCreate('not-a-device', 0);
      assert.equal(identifyFd(k, memfd).kind, 'other');
      k.close(memfd);
      k.eventfdWrite(got, 1n);
      assert.equal(k.eventfdRead(efd), 1n, "the refused fd was left open, still the caller's");
      k.close(got);
    } finally {
      k.close(efd);
      a.close();
      b.close();
    }
  });

  it('a receive waiting on the event loop ends with ECANCELED when the socket closes', async () => {
    const [a, b] = UnixSocket.pair();
    const waiting = b.receive();
    setTimeout(() => b.close(), 10);
    await assert.rejects(waiting, (e: unknown) => e instanceof VfioError && e.code === 'ECANCELED');
    a.close();
  });
});
