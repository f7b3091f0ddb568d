import assert from 'node:assert/strict';
import type { NativeAddon } from '../../lib/sys/addon';
import { NativeKernel } from '../../lib/sys/native-kernel';
import { O_RDWR } from '../../lib/sys/constants';
import { VfioError } from '../../lib/sys/errors';
import { IOMMU_DESTROY } from '../../lib/uapi/iommufd';
import { VFIO_DEVICE_GET_INFO, VFIO_GROUP_GET_DEVICE_FD, VFIO_IOMMU_GET_INFO } from '../../lib/uapi/vfio';

/**
 * NativeKernel's bookkeeping of fds (path and kind, for exact ioctl names in errors), checked
 * with a stand-in addon: a host without VFIO cannot produce a group fd to ask for a device fd.
 */
function fakeAddon(): NativeAddon {
  let nextFd = 10;
  const enotty = () => Object.assign(new Error('ioctl: Inappropriate ioctl for device'), { errno: 25, syscall: 'ioctl' });
  const fake: Partial<NativeAddon> = {
    pageSize: () => 4096,
    open: () => nextFd++,
    close: () => undefined,
    ioctl: (_fd, request) => {
      if (request === VFIO_GROUP_GET_DEVICE_FD.number) return nextFd++;
      throw enotty();
    },
  };
  return fake as NativeAddon;
}

function ioctlError(k: NativeKernel, fd: number, request: number): VfioError {
  try {
    k.ioctl(fd, request, Buffer.alloc(64));
  } catch (e) {
    if (e instanceof VfioError) return e;
    throw e;
  }
  throw new Error('ioctl should have failed');
}

describe('NativeKernel fd bookkeeping', () => {
  it('names a request exactly by the kind of file the fd was opened from', () => {
    const k = new NativeKernel(fakeAddon());
    const iommufd = k.open('/dev/iommu', O_RDWR);
    const container = k.open('/dev/vfio/vfio', O_RDWR);
    const cdev = k.open('/dev/vfio/devices/vfio0', O_RDWR);
    assert.equal(ioctlError(k, iommufd, IOMMU_DESTROY.number).ioctl, 'IOMMU_DESTROY');
    // Number 0x3b70 is VFIO_IOMMU_GET_INFO on a container, VFIO_DEVICE_GET_PCI_HOT_RESET_INFO on a device.
    assert.equal(ioctlError(k, container, VFIO_IOMMU_GET_INFO.number).ioctl, 'VFIO_IOMMU_GET_INFO');
    assert.equal(ioctlError(k, cdev, VFIO_IOMMU_GET_INFO.number).ioctl, 'VFIO_DEVICE_GET_PCI_HOT_RESET_INFO');
    assert.equal(ioctlError(k, cdev, VFIO_IOMMU_GET_INFO.number).path, '/dev/vfio/devices/vfio0');
  });

  it('an fd from VFIO_GROUP_GET_DEVICE_FD is a device fd named after its group and device', () => {
    const k = new NativeKernel(fakeAddon());
    const group = k.open('/dev/vfio/noiommu-0', O_RDWR);
    const device = k.ioctl(group, VFIO_GROUP_GET_DEVICE_FD.number, Buffer.from('0000:00:04.0\0'));
    assert.deepEqual(k.fileOf(device), { path: '/dev/vfio/noiommu-0 device 0000:00:04.0', kind: 'vfio-device' });
    const e = ioctlError(k, device, VFIO_DEVICE_GET_INFO.number);
    assert.equal(e.ioctl, 'VFIO_DEVICE_GET_INFO');
    assert.equal(e.path, '/dev/vfio/noiommu-0 device 0000:00:04.0');
    k.close(device);
    assert.equal(k.fileOf(device), undefined);
  });
});
