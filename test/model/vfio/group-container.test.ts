/**
 * The legacy path on a noiommu host: group (drivers/vfio/group.c) and container
 * (drivers/vfio/container.c) ioctls, their order rules and errnos, and device fds from a group.
 */
import assert from 'node:assert/strict';
import {
  VfioDeviceInfo,
  VfioGroupStatus,
  VfioIommuType1DmaMap,
  VFIO_API_VERSION,
  VFIO_CHECK_EXTENSION,
  VFIO_DEVICE_BIND_IOMMUFD,
  VFIO_DEVICE_GET_INFO,
  VFIO_GET_API_VERSION,
  VFIO_GROUP_FLAGS_CONTAINER_SET,
  VFIO_GROUP_FLAGS_VIABLE,
  VFIO_GROUP_GET_DEVICE_FD,
  VFIO_GROUP_GET_STATUS,
  VFIO_GROUP_SET_CONTAINER,
  VFIO_GROUP_UNSET_CONTAINER,
  VFIO_IOMMU_GET_INFO,
  VFIO_IOMMU_MAP_DMA,
  VFIO_NOIOMMU_IOMMU,
  VFIO_SET_IOMMU,
  VFIO_TYPE1v2_IOMMU,
  VfioDeviceBindIommufd,
} from '../../../lib/uapi/vfio';
import { EDU_BDF, TestHost, expectErrno } from './harness';

const GROUP = '/dev/vfio/noiommu-0';

function fdArg(fd: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeInt32LE(fd);
  return b;
}

function status(h: TestHost, group: number): number {
  const b = VfioGroupStatus.encode({ argsz: 8 });
  h.ioctl(group, VFIO_GROUP_GET_STATUS.number, b);
  return VfioGroupStatus.get(b, 'flags');
}

function setup(opts: ConstructorParameters<typeof TestHost>[0] = {}) {
  const h = new TestHost(opts);
  h.bindVfioPci();
  return h;
}

describe('legacy VFIO group and container (noiommu)', () => {
  it('container: API version 0; VFIO_NOIOMMU_IOMMU only while noiommu mode is on; type1 only with an iommufd to run it on', () => {
    const h = setup();
    const c = h.open('/dev/vfio/vfio');
    assert.equal(h.ioctl(c, VFIO_GET_API_VERSION.number, null), VFIO_API_VERSION);
    assert.equal(h.ioctl(c, VFIO_CHECK_EXTENSION.number, VFIO_NOIOMMU_IOMMU), 1);
    assert.equal(h.ioctl(c, VFIO_CHECK_EXTENSION.number, VFIO_TYPE1v2_IOMMU), 0);
    h.write('/sys/module/vfio/parameters/enable_unsafe_noiommu_mode', 'N');
    assert.equal(h.ioctl(c, VFIO_CHECK_EXTENSION.number, VFIO_NOIOMMU_IOMMU), 0, 'vfio_noiommu_ioctl reads the parameter each time');
  });

  it('group status: viable, then container set after SET_CONTAINER (vfio_group_ioctl_get_status)', () => {
    const h = setup();
    const g = h.open(GROUP);
    assert.equal(status(h, g), VFIO_GROUP_FLAGS_VIABLE);
    const c = h.open('/dev/vfio/vfio');
    h.ioctl(g, VFIO_GROUP_SET_CONTAINER.number, fdArg(c));
    assert.equal(status(h, g), VFIO_GROUP_FLAGS_VIABLE | VFIO_GROUP_FLAGS_CONTAINER_SET);
    assert.throws(() => h.ioctl(g, VFIO_GROUP_GET_STATUS.number, VfioGroupStatus.encode({ argsz: 4 })), expectErrno('EINVAL'));
  });

  it('one open of a group at a time; CAP_SYS_RAWIO for a noiommu group', () => {
    const h = setup();
    h.open(GROUP);
    assert.throws(() => h.open(GROUP), expectErrno('EBUSY'));
    const h2 = setup({ caps: { sysRawio: false } });
    assert.throws(() => h2.open(GROUP), expectErrno('EPERM'));
  });

  it('SET_CONTAINER: EBADF for a closed fd, EBADFD for a file that is neither container nor iommufd, EINVAL when already set', () => {
    const h = setup();
    const g = h.open(GROUP);
    assert.throws(() => h.ioctl(g, VFIO_GROUP_SET_CONTAINER.number, fdArg(55)), expectErrno('EBADF'));
    assert.throws(() => h.ioctl(g, VFIO_GROUP_SET_CONTAINER.number, fdArg(h.newEventfd())), expectErrno('EBADFD'));
    const c = h.open('/dev/vfio/vfio');
    h.ioctl(g, VFIO_GROUP_SET_CONTAINER.number, fdArg(c));
    assert.throws(() => h.ioctl(g, VFIO_GROUP_SET_CONTAINER.number, fdArg(c)), expectErrno('EINVAL'));
  });

  it('SET_IOMMU needs a group first (EINVAL), only once (EINVAL); an unknown type is ENODEV', () => {
    const h = setup();
    const c = h.open('/dev/vfio/vfio');
    assert.throws(() => h.ioctl(c, VFIO_SET_IOMMU.number, VFIO_NOIOMMU_IOMMU), expectErrno('EINVAL'));
    const g = h.open(GROUP);
    h.ioctl(g, VFIO_GROUP_SET_CONTAINER.number, fdArg(c));
    assert.throws(() => h.ioctl(c, VFIO_SET_IOMMU.number, VFIO_TYPE1v2_IOMMU), expectErrno('ENODEV'));
    assert.equal(h.ioctl(c, VFIO_SET_IOMMU.number, VFIO_NOIOMMU_IOMMU), 0);
    assert.throws(() => h.ioctl(c, VFIO_SET_IOMMU.number, VFIO_NOIOMMU_IOMMU), expectErrno('EINVAL'));
  });

  it('a noiommu container has no DMA mapping: MAP_DMA and IOMMU_GET_INFO are ENOTTY (vfio_noiommu_ioctl)', () => {
    const h = setup();
    const c = h.open('/dev/vfio/vfio');
    const g = h.open(GROUP);
    h.ioctl(g, VFIO_GROUP_SET_CONTAINER.number, fdArg(c));
    assert.throws(
      () => h.ioctl(c, VFIO_IOMMU_MAP_DMA.number, VfioIommuType1DmaMap.encode({ argsz: 32 })),
      expectErrno('EINVAL'),
      'no IOMMU model yet',
    );
    h.ioctl(c, VFIO_SET_IOMMU.number, VFIO_NOIOMMU_IOMMU);
    assert.throws(() => h.ioctl(c, VFIO_IOMMU_MAP_DMA.number, VfioIommuType1DmaMap.encode({ argsz: 32 })), expectErrno('ENOTTY'));
    assert.throws(() => h.ioctl(c, VFIO_IOMMU_GET_INFO.number, Buffer.alloc(24)), expectErrno('ENOTTY'));
    assert.equal(h.ioctl(c, VFIO_CHECK_EXTENSION.number, VFIO_NOIOMMU_IOMMU), 1);
  });

  it('GET_DEVICE_FD: EINVAL before the container has an IOMMU model, ENODEV for an unknown name, then a working device fd', () => {
    const h = setup();
    const g = h.open(GROUP);
    const name = Buffer.from(`${EDU_BDF}\0`);
    assert.throws(() => h.ioctl(g, VFIO_GROUP_GET_DEVICE_FD.number, name), expectErrno('EINVAL'), 'no container');
    const c = h.open('/dev/vfio/vfio');
    h.ioctl(g, VFIO_GROUP_SET_CONTAINER.number, fdArg(c));
    assert.throws(() => h.ioctl(g, VFIO_GROUP_GET_DEVICE_FD.number, name), expectErrno('EINVAL'), 'no IOMMU model');
    h.ioctl(c, VFIO_SET_IOMMU.number, VFIO_NOIOMMU_IOMMU);
    assert.throws(() => h.ioctl(g, VFIO_GROUP_GET_DEVICE_FD.number, Buffer.from('0000:00:04.0\0')), expectErrno('ENODEV'));
    assert.throws(() => h.ioctl(g, VFIO_GROUP_GET_DEVICE_FD.number, Buffer.from(`${EDU_BDF}x\0`)), expectErrno('ENODEV'));
    assert.throws(
      () => h.ioctl(g, VFIO_GROUP_GET_DEVICE_FD.number, Buffer.from(`${EDU_BDF} vf_token=12345678-1234-1234-1234-123456789abc\0`)),
      expectErrno('EINVAL'),
    );
    const dev = h.ioctl(g, VFIO_GROUP_GET_DEVICE_FD.number, name);
    const info = VfioDeviceInfo.encode({ argsz: 24 });
    assert.equal(h.ioctl(dev, VFIO_DEVICE_GET_INFO.number, info), 0);
    assert.equal(VfioDeviceInfo.get(info, 'num_regions'), 9);
    assert.throws(
      () => h.ioctl(dev, VFIO_DEVICE_BIND_IOMMUFD.number, VfioDeviceBindIommufd.encode({ argsz: 24, iommufd: h.newIommufd() })),
      expectErrno('EINVAL'),
      'a group device fd cannot bind',
    );
    const dev2 = h.ioctl(g, VFIO_GROUP_GET_DEVICE_FD.number, name);
    assert.ok(dev2 > dev, 'the group path allows several opens');
  });

  it('UNSET_CONTAINER: EBUSY while a device fd is open, EINVAL without a container', () => {
    const h = setup();
    const g = h.open(GROUP);
    assert.throws(() => h.ioctl(g, VFIO_GROUP_UNSET_CONTAINER.number, null), expectErrno('EINVAL'));
    const c = h.open('/dev/vfio/vfio');
    h.ioctl(g, VFIO_GROUP_SET_CONTAINER.number, fdArg(c));
    h.ioctl(c, VFIO_SET_IOMMU.number, VFIO_NOIOMMU_IOMMU);
    const dev = h.ioctl(g, VFIO_GROUP_GET_DEVICE_FD.number, Buffer.from(`${EDU_BDF}\0`));
    assert.throws(() => h.ioctl(g, VFIO_GROUP_UNSET_CONTAINER.number, null), expectErrno('EBUSY'));
    h.close(dev);
    assert.equal(h.ioctl(g, VFIO_GROUP_UNSET_CONTAINER.number, null), 0);
    assert.equal(status(h, g), VFIO_GROUP_FLAGS_VIABLE);
  });

  it('the group cannot be reopened while a device fd from it keeps it open', () => {
    const h = setup();
    const g = h.open(GROUP);
    const c = h.open('/dev/vfio/vfio');
    h.ioctl(g, VFIO_GROUP_SET_CONTAINER.number, fdArg(c));
    h.ioctl(c, VFIO_SET_IOMMU.number, VFIO_NOIOMMU_IOMMU);
    const dev = h.ioctl(g, VFIO_GROUP_GET_DEVICE_FD.number, Buffer.from(`${EDU_BDF}\0`));
    h.close(g);
    assert.throws(() => h.open(GROUP), expectErrno('EBUSY'));
    h.close(dev);
    assert.doesNotThrow(() => h.open(GROUP));
  });

  it('the group fd takes an iommufd instead of a container (compat, noiommu)', () => {
    const h = setup();
    const g = h.open(GROUP);
    h.ioctl(g, VFIO_GROUP_SET_CONTAINER.number, fdArg(h.newIommufd()));
    assert.equal(status(h, g), VFIO_GROUP_FLAGS_VIABLE | VFIO_GROUP_FLAGS_CONTAINER_SET);
    const dev = h.ioctl(g, VFIO_GROUP_GET_DEVICE_FD.number, Buffer.from(`${EDU_BDF}\0`));
    assert.equal(h.ioctl(dev, VFIO_DEVICE_GET_INFO.number, VfioDeviceInfo.encode({ argsz: 24 })), 0);
  });
});
