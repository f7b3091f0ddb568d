/**
 * Processes and unix sockets on the model: spawnProcess gives a process of its own (fds, mm,
 * credentials) on the same machine; SOCK_SEQPACKET sockets pass open files between processes
 * (SCM_RIGHTS) and report who connected (SO_PEERCRED), with the errnos Linux gives.
 */
import assert from 'node:assert/strict';
import { createModelKernel } from '../../lib/model';
import { O_RDWR } from '../../lib/sys/constants';
import { isVfioError } from '../../lib/sys/errors';
import { UnixSocket } from '../../lib/sys/unix-socket';
import { Iommufd } from '../../lib/iommu/iommufd';
import { VfioDevice } from '../../lib/vfio/device';
import { PciDevice } from '../../lib/pci/pci-device';
import { PhysicalAddressLookup } from '../../lib/ioctl';
import type { ProcessCredentials } from '../../lib/model/profile';

const USER: ProcessCredentials = {
  uid: 1000,
  gid: 100,
  capabilities: { sysRawio: false, sysAdmin: false, ipcLock: false, sysResource: false },
  memlockLimit: 8n << 20n,
  deviceNodeAccess: false,
};
const errno = (code: string) => (e: unknown) => isVfioError(e, code as never);

describe('model: processes and unix sockets', () => {
  it('a spawned process has its own fds and credentials on the same machine', () => {
    const root = createModelKernel('linux-7.3-noiommu');
    const user = root.spawnProcess(USER);
    assert.notEqual(user.pid, root.pid);
    assert.equal(user.capabilities().sysRawio, false);
    assert.equal(root.capabilities().sysRawio, true);
    assert.deepEqual(user.readdir('/sys/bus/pci/devices'), root.readdir('/sys/bus/pci/devices'));
    const efd = root.eventfd(0, 0);
    assert.throws(() => user.eventfdRead(efd), errno('EBADF'), 'fds are per process');
    assert.equal(user.eventfd(0, 0), 3, 'its fd table starts at 3');
    assert.throws(() => user.open('/dev/iommu', O_RDWR), errno('EACCES'));
  });

  it('SCM_RIGHTS passes the open file; SO_PEERCRED reports the connecting process', async () => {
    const root = createModelKernel('linux-7.3-noiommu');
    const user = root.spawnProcess(USER);
    const server = UnixSocket.listen('/run/s', { kernel: root });
    const client = UnixSocket.connect('/run/s', { kernel: user });
    const conn = await server.accept();
    assert.deepEqual(conn.peer(), { pid: user.pid, uid: 1000, gid: 100 });
    assert.deepEqual(client.peer(), { pid: root.pid, uid: 0, gid: 0 });
    const efd = root.eventfd(0, 0);
    conn.send(Buffer.from('x'), [efd]);
    root.close(efd); // in flight, the file stays alive
    const m = await client.receive();
    assert.equal(m.data.toString(), 'x');
    assert.equal(m.fds.length, 1);
    user.eventfdWrite(m.fds[0]!, 5n);
    assert.equal(user.eventfdRead(m.fds[0]!), 5n);
    user.close(m.fds[0]!);
    assert.throws(() => UnixSocket.listen('/run/s', { kernel: user }), errno('EADDRINUSE'));
    conn.close();
    assert.throws(() => client.send(Buffer.from('y')), errno('EPIPE'));
    assert.equal((await client.receive()).data.length, 0, 'end of stream');
    client.close();
    server.close();
    assert.throws(() => UnixSocket.connect('/run/s', { kernel: user }), errno('ECONNREFUSED'));
    UnixSocket.unlink('/run/s', { kernel: root });
    assert.throws(() => UnixSocket.connect('/run/s', { kernel: user }), errno('ENOENT'));
    assert.throws(() => UnixSocket.unlink('/run/s', { kernel: root }), errno('ENOENT'));
    assert.equal(root.openFdCount + user.openFdCount, 0);
    assert.equal(root.liveFileCount, 0, 'nothing in flight or held');
  });

  it('a full queue is EAGAIN, a long message is truncated, fds past RLIMIT_NOFILE are dropped (MSG_CTRUNC)', async () => {
    const root = createModelKernel('linux-7.3-noiommu');
    const user = root.spawnProcess({ ...USER, openFilesLimit: 5 });
    const [a, b] = UnixSocket.pair({ kernel: root });
    let n = 0;
    assert.throws(() => {
      for (; n < 10_000; n++) a.send(Buffer.alloc(1000));
    }, errno('EAGAIN'));
    assert.ok(n > 100 && n < 1000, `queued ${n}`);
    for (let i = 0; i < n; i++) await b.receive(2000);
    a.send(Buffer.alloc(100, 7));
    const m = await b.receive(10);
    assert.equal(m.data.length, 10);
    assert.equal(m.truncated, true);
    a.close();
    b.close();
    // Into a process with room for two more fds.
    const [x, y] = UnixSocket.pair({ kernel: root });
    const efds = [root.eventfd(0, 0), root.eventfd(0, 0), root.eventfd(0, 0)];
    const srv = UnixSocket.listen('/run/t', { kernel: root });
    const cli = UnixSocket.connect('/run/t', { kernel: user });
    const conn = await srv.accept();
    conn.send(Buffer.from('z'), efds);
    const got = await cli.receive();
    assert.equal(got.fds.length, 1, 'RLIMIT_NOFILE 5: fd 3 is the socket, only fd 4 was free');
    assert.equal(got.truncated, true);
    for (const fd of got.fds) user.close(fd);
    for (const fd of efds) root.close(fd);
    for (const s of [x, y, srv, cli, conn]) s.close();
    assert.equal(root.liveFileCount, 0, 'the dropped fds did not leak their files');
  });

  it('GET_PA checks CAP_SYS_RAWIO of the caller at each call: root opened the iommufd, the user is refused (EPERM)', async () => {
    const root = createModelKernel('linux-7.3-noiommu');
    const user = root.spawnProcess(USER);
    const cdev = PciDevice.get('0000:00:03.0', { kernel: root }).cdevPath()!;
    const iommufd = root.open('/dev/iommu', O_RDWR);
    const device = root.open(cdev, O_RDWR);
    const srv = UnixSocket.listen('/run/g', { kernel: root });
    const cli = UnixSocket.connect('/run/g', { kernel: user });
    const conn = await srv.accept();
    conn.send(Buffer.from('fds'), [iommufd, device]);
    const m = await cli.receive();
    const dev = VfioDevice.adopt(m.fds[1]!, { iommufd: Iommufd.adopt(m.fds[0]!, { kernel: user }), bdf: '0000:00:03.0' });
    assert.throws(
      () => dev.allocateDma(4096),
      (e: unknown) => isVfioError(e, 'EPERM') && /CAP_SYS_RAWIO/.test(String(e)),
    );
    // The same open file, the same IOAS, asked by root: answered.
    const mem = user.mmap(-1, 4096n, 3, 0x22, 0n);
    const mapping = dev.ioas!.map(mem);
    const lookup = new PhysicalAddressLookup();
    const run = lookup.lookup(root, iommufd, dev.ioas!.id, mapping.iova, 4096n);
    assert.equal(run.length, 4096n);
    assert.throws(() => lookup.lookup(user, m.fds[0]!, dev.ioas!.id, mapping.iova, 4096n), errno('EPERM'));
    for (const s of [srv, cli, conn]) s.close();
    dev.close();
  });

  it('a peer that closes with our message unread: ECONNRESET once, then its reply, then EOF (as Linux)', async () => {
    const root = createModelKernel('linux-7.3-noiommu');
    const user = root.spawnProcess(USER);
    const listener = UnixSocket.listen('/run/r', { kernel: root });
    const client = UnixSocket.connect('/run/r', { kernel: user });
    const server = await listener.accept();
    client.send(Buffer.from('never read'));
    const waiting = client.receive();
    server.send(Buffer.from('reply'));
    server.close();
    await assert.rejects(waiting, errno('ECONNRESET'));
    assert.equal((await client.receive()).data.toString(), 'reply');
    assert.equal((await client.receive()).data.length, 0);
    client.close();
    listener.close();
    assert.equal(root.liveFileCount, 0);
  });
});
