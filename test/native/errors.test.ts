import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import { VfioError } from '../../lib/sys/errors';
import { O_RDONLY, O_RDWR } from '../../lib/sys/constants';
import { fileKindOfPath } from '../../lib/sys/native-kernel';
import { IOMMU_IOAS_ALLOC, IommuIoasAlloc } from '../../lib/uapi/iommufd';
import { VFIO_DEVICE_GET_INFO } from '../../lib/uapi/vfio';
import { kernel, linuxOnly, withFd } from './support';

describe('native kernel: errors carry errno, syscall, ioctl name and path', function () {
  linuxOnly(this);

  it('an iommufd ioctl on /dev/null fails ENOTTY naming the request and the path', () => {
    const k = kernel();
    withFd(k, k.open('/dev/null', O_RDWR), (fd) => {
      const arg = IommuIoasAlloc.encode({ size: IommuIoasAlloc.size });
      assert.throws(
        () => k.ioctl(fd, IOMMU_IOAS_ALLOC.number, arg),
        (e: unknown) => {
          assert.ok(e instanceof VfioError);
          assert.equal(e.code, 'ENOTTY');
          assert.equal(e.errno, 25);
          assert.equal(e.syscall, 'ioctl');
          assert.equal(e.ioctl, 'IOMMU_IOAS_ALLOC');
          assert.equal(e.path, '/dev/null');
          assert.match(e.message, /ENOTTY.*ioctl IOMMU_IOAS_ALLOC '\/dev\/null'/);
          return true;
        },
      );
    });
  });

  it('a VFIO request number on an unknown kind of fd lists every name it has', () => {
    const k = kernel();
    withFd(k, k.open('/dev/null', O_RDONLY), (fd) => {
      assert.throws(() => k.ioctl(fd, VFIO_DEVICE_GET_INFO.number, Buffer.from([16, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0])), {
        name: 'VfioError',
        code: 'ENOTTY',
        ioctl: 'VFIO_DEVICE_GET_INFO',
      });
      // nr 12 is VFIO_IOMMU_GET_INFO on a container and VFIO_DEVICE_GET_PCI_HOT_RESET_INFO on a device.
      assert.throws(
        () => k.ioctl(fd, 0x3b70, Buffer.from([16, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0])),
        (e: unknown) =>
          e instanceof VfioError &&
          e.ioctl!.split('|').includes('VFIO_IOMMU_GET_INFO') &&
          e.ioctl!.split('|').includes('VFIO_DEVICE_GET_PCI_HOT_RESET_INFO'),
      );
    });
  });

  it('refuses a struct whose size field claims more bytes than the buffer has, before the kernel sees it', () => {
    const k = kernel();
    withFd(k, k.open('/dev/null', O_RDONLY), (fd) => {
      const arg = Buffer.alloc(12);
      arg.writeUInt32LE(64, 0);
      assert.throws(() => k.ioctl(fd, IOMMU_IOAS_ALLOC.number, arg), { name: 'RangeError', message: /64 bytes.*12/ });
      assert.throws(() => k.ioctl(fd, IOMMU_IOAS_ALLOC.number, Buffer.alloc(2)), RangeError);
      // VFIO_GROUP_GET_DEVICE_FD takes a device name that must end inside the buffer.
      assert.throws(() => k.ioctl(fd, 0x3b6a, Buffer.from('0000:00:04.0')), { name: 'RangeError', message: /NUL/ });
      assert.throws(() => k.ioctl(fd, 0x3b6a, Buffer.from('0000:00:04.0\0')), { name: 'VfioError', code: 'ENOTTY' });
    });
  });

  it('an integer or null argument is passed through', () => {
    const k = kernel();
    withFd(k, k.open('/dev/null', O_RDONLY), (fd) => {
      assert.throws(() => k.ioctl(fd, 0x3b64, null), { code: 'ENOTTY', ioctl: 'VFIO_GET_API_VERSION' });
      assert.throws(() => k.ioctl(fd, 0x3b65, 8), { code: 'ENOTTY', ioctl: 'VFIO_CHECK_EXTENSION' });
    });
  });

  it('open of a missing path fails ENOENT with the path', () => {
    assert.throws(
      () => kernel().open('/nonexistent/node-vfio-test', O_RDWR),
      (e: unknown) => {
        assert.ok(e instanceof VfioError);
        assert.equal(e.code, 'ENOENT');
        assert.equal(e.syscall, 'open');
        assert.equal(e.path, '/nonexistent/node-vfio-test');
        return true;
      },
    );
  });

  it('a missing VFIO cdev gets the hint about binding to vfio-pci', () => {
    assert.throws(() => kernel().open('/dev/vfio/devices/vfio-nonexistent', O_RDWR), {
      name: 'VfioError',
      code: 'ENOENT',
      hint: /vfio-pci/,
    });
  });

  it('close of an fd that is not open fails EBADF', () => {
    assert.throws(() => kernel().close(1_000_000), { name: 'VfioError', code: 'EBADF', syscall: 'close' });
  });

  it('filesystem calls map Node errors to VfioError', () => {
    const k = kernel();
    assert.throws(() => k.readFile('/nonexistent/x'), { name: 'VfioError', code: 'ENOENT', path: '/nonexistent/x' });
    assert.throws(() => k.readdir('/nonexistent'), { name: 'VfioError', code: 'ENOENT' });
    assert.throws(() => k.readlink('/proc/self/status'), { name: 'VfioError', code: 'EINVAL' });
    assert.throws(() => k.writeFile('/nonexistent/x', '1'), { name: 'VfioError', code: 'ENOENT' });
    assert.equal(k.exists('/proc/self/status'), true);
    assert.equal(k.exists('/nonexistent'), false);
    assert.match(k.readlink('/proc/self/exe'), /node/);
    assert.ok(k.readdir('/proc/self').includes('status'));
  });

  it('knows the kind of file from its path', () => {
    assert.equal(fileKindOfPath('/dev/iommu'), 'iommufd');
    assert.equal(fileKindOfPath('/dev/vfio/vfio'), 'vfio-container');
    assert.equal(fileKindOfPath('/dev/vfio/devices/vfio0'), 'vfio-device');
    assert.equal(fileKindOfPath('/dev/vfio/devices/noiommu-vfio0'), 'vfio-device');
    assert.equal(fileKindOfPath('/dev/vfio/7'), 'vfio-group');
    assert.equal(fileKindOfPath('/dev/vfio/noiommu-0'), 'vfio-group');
    assert.equal(fileKindOfPath('/dev/null'), 'file');
  });

  it('reads capabilities, the memlock limit and the page size of this process', () => {
    const k = kernel();
    const caps = k.capabilities();
    // CapEff is 64 bits of hex; the three bits of interest are all in the low 32.
    const hex = /^CapEff:\s*([0-9a-f]+)$/m.exec(fs.readFileSync('/proc/self/status', 'utf8'))![1]!;
    const low = parseInt(hex.slice(-8), 16);
    assert.deepEqual(caps, { ipcLock: (low & (1 << 14)) !== 0, sysRawio: (low & (1 << 17)) !== 0, sysAdmin: (low & (1 << 21)) !== 0 });
    const ulimit = execFileSync('sh', ['-c', 'ulimit -l'], { encoding: 'utf8' }).trim();
    assert.equal(k.memlockLimit(), ulimit === 'unlimited' ? (1n << 64n) - 1n : BigInt(ulimit) * 1024n);
    assert.equal(k.pageSize, Number(execFileSync('getconf', ['PAGESIZE'], { encoding: 'utf8' })));
  });
});
