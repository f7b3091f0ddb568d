import assert from 'node:assert/strict';
import { createModelKernel, profiles } from '../../lib/model';
import { EventFdFile } from '../../lib/model/eventfd';
import type { OpenFile } from '../../lib/model/open-file';
import { EFD_NONBLOCK, O_RDONLY, O_RDWR, O_WRONLY } from '../../lib/sys/constants';
import { VfioError } from '../../lib/sys/errors';
import { IOMMU_IOAS_ALLOC } from '../../lib/uapi/iommufd';
import { expectErrno } from './harness';

describe('ModelKernel: fd table and files', () => {
  it('alloc_fd: hands out the lowest free fd from 3 and reuses closed ones', () => {
    const k = createModelKernel('linux-7.3-noiommu');
    const a = k.open('/dev/iommu', O_RDWR);
    const b = k.open('/dev/iommu', O_RDWR);
    assert.deepEqual([a, b], [3, 4]);
    k.close(a);
    assert.equal(k.open('/dev/iommu', O_RDWR), 3);
  });

  it('close: EBADF for an fd that is not open; release runs when the last reference goes', () => {
    const k = createModelKernel('linux-7.3-noiommu');
    expectErrno('EBADF', () => k.close(42));
    let released = 0;
    const file: OpenFile = { kind: 'test', release: () => released++ };
    const fd = k.installFile(file, '/test');
    k.holdFile(file);
    k.close(fd);
    assert.equal(released, 0, 'a hold keeps the file open');
    k.dropFile(file);
    assert.equal(released, 1);
  });

  it('open: ENOENT for a missing path, with the path in the error', () => {
    const k = createModelKernel('linux-7.3-noiommu');
    try {
      k.open('/dev/vfio/nothing', O_RDWR);
      assert.fail('open succeeded');
    } catch (e) {
      assert.ok(e instanceof VfioError);
      assert.equal(e.code, 'ENOENT');
      assert.equal(e.syscall, 'open');
      assert.equal(e.path, '/dev/vfio/nothing');
    }
  });

  it('kernfs_fop_open: EACCES writing a read-only attribute, even as root', () => {
    const k = createModelKernel('linux-7.3-noiommu');
    k.vfs.add('/sys/test/ro', { type: 'attr', read: () => 'x\n' });
    expectErrno('EACCES', () => k.open('/sys/test/ro', O_WRONLY));
    expectErrno('EACCES', () => k.writeFile('/sys/test/ro', '1'));
    assert.equal(k.readFile('/sys/test/ro').toString(), 'x\n');
  });

  it('generic_permission: a non-root process cannot write a root-owned 0644 attribute', () => {
    const k = createModelKernel('unprivileged');
    let stored = '';
    k.vfs.add('/sys/test/rw', {
      type: 'attr',
      read: () => stored,
      write: (b) => {
        stored = b.toString();
      },
    });
    expectErrno('EACCES', () => k.writeFile('/sys/test/rw', '1'));
    const root = createModelKernel('linux-7.3-noiommu');
    root.vfs.add('/sys/test/rw', {
      type: 'attr',
      read: () => stored,
      write: (b) => {
        stored = b.toString();
      },
    });
    root.writeFile('/sys/test/rw', 'hello');
    assert.equal(stored, 'hello');
  });

  it('attribute fds work with pread/pwrite at offsets', () => {
    const k = createModelKernel('linux-7.3-noiommu');
    let stored = 'abcdef';
    k.vfs.add('/sys/test/rw', {
      type: 'attr',
      read: () => stored,
      write: (b) => {
        stored = b.toString();
      },
    });
    const fd = k.open('/sys/test/rw', O_RDWR);
    const buf = Buffer.alloc(3);
    assert.equal(k.pread(fd, buf, 2n), 3);
    assert.equal(buf.toString(), 'cde');
    assert.equal(k.pread(fd, buf, 10n), 0);
    k.pwrite(fd, Buffer.from('xyz'), 0n);
    assert.equal(stored, 'xyz');
  });

  it('read/write on an fd opened for the other direction: EBADF', () => {
    const k = createModelKernel('linux-7.3-noiommu');
    k.vfs.add('/sys/test/rw', { type: 'attr', read: () => 'a', write: () => undefined });
    const ro = k.open('/sys/test/rw', O_RDONLY);
    const wo = k.open('/sys/test/rw', O_WRONLY);
    expectErrno('EBADF', () => k.pwrite(ro, Buffer.from('1'), 0n));
    expectErrno('EBADF', () => k.pread(wo, Buffer.alloc(1), 0n));
  });

  it('missing file operations answer the Linux errno: ioctl ENOTTY, mmap ENODEV, read EINVAL', () => {
    const k = createModelKernel('linux-7.3-noiommu');
    const fd = k.installFile({ kind: 'bare' }, '/bare');
    expectErrno('ENOTTY', () => k.ioctl(fd, IOMMU_IOAS_ALLOC.number, Buffer.alloc(12)));
    expectErrno('ENODEV', () => k.mmap(fd, 4096n, 1, 1, 0n));
    expectErrno('EINVAL', () => k.pread(fd, Buffer.alloc(8), 0n));
    expectErrno('EINVAL', () => k.pwrite(fd, Buffer.alloc(8), 0n));
  });

  it('readdir, readlink, exists follow the VFS', () => {
    const k = createModelKernel('linux-7.3-noiommu');
    k.vfs.add('/sys/bus/pci/devices/0000:00:09.0/vendor', { type: 'attr', read: () => '0x1234\n' });
    k.vfs.add('/sys/bus/pci/devices/0000:00:09.0/iommu_group', { type: 'link', target: () => '../../../kernel/iommu_groups/0' });
    assert.deepEqual(k.readdir('/sys/bus/pci/devices/0000:00:09.0'), ['vendor', 'iommu_group']);
    assert.equal(k.readlink('/sys/bus/pci/devices/0000:00:09.0/iommu_group'), '../../../kernel/iommu_groups/0');
    expectErrno('EINVAL', () => k.readlink('/sys/bus/pci/devices/0000:00:09.0/vendor'));
    expectErrno('ENOTDIR', () => k.readdir('/sys/bus/pci/devices/0000:00:09.0/vendor'));
    assert.equal(k.exists('/sys/bus/pci/devices/0000:00:09.0/vendor'), true);
    assert.equal(k.exists('/sys/bus/pci/devices/0000:00:04.0'), false);
  });

  it('/dev/iommu exists only with CONFIG_IOMMUFD', () => {
    const k = createModelKernel({ ...profiles['linux-7.3-noiommu'], config: { ...profiles['linux-7.3-noiommu'].config, IOMMUFD: false } });
    expectErrno('ENOENT', () => k.open('/dev/iommu', O_RDWR));
  });

  it('iommufd_ctx_from_fd: EBADF for a closed fd, EBADFD for a non-iommufd fd', () => {
    const k = createModelKernel('linux-7.3-noiommu');
    assert.throws(() => k.iommufdOf(9), { code: 'EBADF' });
    const efd = k.eventfd(0, 0);
    assert.throws(() => k.iommufdOf(efd), { code: 'EBADFD' });
  });

  it('capabilities and RLIMIT_MEMLOCK come from the profile', () => {
    assert.deepEqual(createModelKernel('unprivileged').capabilities(), { sysRawio: false, sysAdmin: false, ipcLock: false });
    assert.deepEqual(createModelKernel('linux-7.3-noiommu').capabilities(), { sysRawio: true, sysAdmin: true, ipcLock: true });
    assert.equal(createModelKernel('unprivileged').memlockLimit(), 8n << 20n);
  });
});

describe('ModelKernel: eventfd and waiting', () => {
  it('eventfd_read: takes the whole count; EAGAIN when zero', () => {
    const k = createModelKernel('linux-7.3-noiommu');
    const fd = k.eventfd(2, EFD_NONBLOCK);
    k.eventfdWrite(fd, 3n);
    assert.equal(k.eventfdRead(fd), 5n);
    expectErrno('EAGAIN', () => k.eventfdRead(fd));
    expectErrno('EINVAL', () => k.eventfd(0, 0x8));
  });

  it('waitReadable resolves when a device signals the eventfd', async () => {
    const k = createModelKernel('linux-7.3-noiommu');
    const fd = k.eventfd(0, EFD_NONBLOCK);
    const file = k.fileOf(fd) as EventFdFile;
    const waiting = k.waitReadable(fd);
    setTimeout(() => file.signal(), 1);
    await waiting;
    assert.equal(k.eventfdRead(fd), 1n);
  });

  it('waitReadable rejects with ECANCELED when the fd is closed or the signal aborts', async () => {
    const k = createModelKernel('linux-7.3-noiommu');
    const fd = k.eventfd(0, EFD_NONBLOCK);
    const closed = k.waitReadable(fd);
    k.close(fd);
    await assert.rejects(closed, { code: 'ECANCELED' });
    const fd2 = k.eventfd(0, EFD_NONBLOCK);
    const ac = new AbortController();
    const aborted = k.waitReadable(fd2, ac.signal);
    ac.abort();
    await assert.rejects(aborted, { code: 'ECANCELED' });
    await assert.rejects(k.waitReadable(77), { code: 'EBADF' });
  });
});
