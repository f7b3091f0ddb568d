/**
 * The legacy path a pre-7.3 noiommu driver uses (and any driver on the group interface): a
 * container from /dev/vfio/vfio, the group node, SET_CONTAINER, SET_IOMMU (VFIO_NOIOMMU_IOMMU
 * without an IOMMU, TYPE1v2 with one), GET_DEVICE_FD; and the same group attached to an iommufd
 * instead of a container. Sources: vfio/group.c (set_container, get_device_fd, group open),
 * vfio/container.c (check_extension, set_iommu, attach_group, the noiommu driver's ioctl),
 * iommufd/vfio_compat.c (iommufd_vfio_compat_set_no_iommu / _ioas_create).
 */
import { defineCase, type ConformanceCase } from '../case';
import type { CaseContext } from '../context';
import * as I from '../../uapi/iommufd';
import * as V from '../../uapi/vfio';
import { call } from '../calls';
import { plainIoctl } from '../raw-ioctl';
import { on } from '../struct-call';
import type { Expected } from '../types';

function setContainerCall(t: CaseContext, groupFd: number, containerFd: number): () => void {
  return () => {
    const arg = Buffer.alloc(4);
    arg.writeInt32LE(containerFd);
    t.kernel.ioctl(groupFd, V.VFIO_GROUP_SET_CONTAINER.number, arg);
  };
}

/** VFIO_GROUP_GET_DEVICE_FD; the fd it returns belongs to the fixture. */
function getDeviceFdCall(t: CaseContext, groupFd: number, name: string): () => number {
  return () => {
    const fd = t.kernel.ioctl(groupFd, V.VFIO_GROUP_GET_DEVICE_FD.number, Buffer.from(`${name}\0`));
    t.ownFd(fd, `device fd of ${name} from the group`);
    return fd;
  };
}

function groupStatus(t: CaseContext, groupFd: number): number {
  return t.ok('VFIO_GROUP_GET_STATUS', () => call.groupStatus(on(t, { groupFd })).flags);
}

/** The IOMMU type a container takes in each mode. */
const IOMMU_TYPE = { noiommu: V.VFIO_NOIOMMU_IOMMU, iommu: V.VFIO_TYPE1v2_IOMMU } as const;

export const legacyGroupCases: ConformanceCase[] = [
  defineCase({
    id: 'legacy.container-extensions',
    title: 'an empty container: NOIOMMU extension only in noiommu mode, TYPE1v2 always, SET_IOMMU EINVAL before a group joins',
    needs: ['container'],
    run(t) {
      const fd = t.open('/dev/vfio/vfio');
      const noiommu = t.ok('CHECK_EXTENSION NOIOMMU', () => plainIoctl(t.kernel, fd, V.VFIO_CHECK_EXTENSION, V.VFIO_NOIOMMU_IOMMU));
      t.equal(noiommu, t.mode === 'noiommu' ? 1 : 0, 'VFIO_NOIOMMU_IOMMU supported');
      t.equal(
        t.ok('CHECK_EXTENSION TYPE1v2', () => plainIoctl(t.kernel, fd, V.VFIO_CHECK_EXTENSION, V.VFIO_TYPE1v2_IOMMU)),
        1,
        'TYPE1v2 supported',
      );
      t.expectErrno('SET_IOMMU with no group', () => plainIoctl(t.kernel, fd, V.VFIO_SET_IOMMU, IOMMU_TYPE[t.mode]), 'EINVAL');
    },
  }),
  defineCase({
    id: 'legacy.group-container-device',
    title: 'group + container + SET_IOMMU + GET_DEVICE_FD gives a working device fd that refuses the cdev-only ioctls',
    needs: ['device', 'group-interface', 'container'],
    run(t) {
      const device = t.env.device!;
      const container = t.open('/dev/vfio/vfio');
      const group = t.open(device.groupPath!);
      t.equal(groupStatus(t, group), V.VFIO_GROUP_FLAGS_VIABLE, 'status before SET_CONTAINER');
      t.ok('SET_CONTAINER', setContainerCall(t, group, container));
      t.equal(groupStatus(t, group), V.VFIO_GROUP_FLAGS_VIABLE | V.VFIO_GROUP_FLAGS_CONTAINER_SET, 'status after SET_CONTAINER');
      t.expectErrno('SET_CONTAINER again', setContainerCall(t, group, container), 'EINVAL');
      t.expectErrno('GET_DEVICE_FD before SET_IOMMU', getDeviceFdCall(t, group, device.bdf), 'EINVAL');
      t.ok('SET_IOMMU', () => plainIoctl(t.kernel, container, V.VFIO_SET_IOMMU, IOMMU_TYPE[t.mode]));
      t.expectErrno('SET_IOMMU twice', () => plainIoctl(t.kernel, container, V.VFIO_SET_IOMMU, IOMMU_TYPE[t.mode]), 'EINVAL');
      t.expectErrno('GET_DEVICE_FD of an unknown name', getDeviceFdCall(t, group, '0000:ff:1f.7'), 'ENODEV');
      const deviceFd = t.ok('GET_DEVICE_FD', getDeviceFdCall(t, group, device.bdf));
      const info = t.ok("GET_INFO on the group's device fd", () => call.deviceInfo(on(t, { deviceFd })));
      t.check((info.flags & V.VFIO_DEVICE_FLAGS_PCI) !== 0, 'a PCI device');
      const groupDevice = on(t, { deviceFd, iommufd: t.openIommufd() });
      // BIND_IOMMUFD is for cdev fds only; ATTACH/DETACH exist only on cdev fds and otherwise reach the driver (ENOTTY).
      t.expectErrno("BIND_IOMMUFD on the group's device fd", () => call.bind(groupDevice), 'EINVAL');
      t.expectErrno("ATTACH_IOMMUFD_PT on the group's device fd", () => call.attach(groupDevice, { pt_id: 1 }), 'ENOTTY');
      // The noiommu "IOMMU" driver of a container maps nothing: its only ioctl is CHECK_EXTENSION.
      const mapDma: Expected = { noiommu: 'ENOTTY', iommu: 'ok' };
      const memory = t.anonymousMemory(t.page);
      t.expect(
        'VFIO_IOMMU_MAP_DMA on the container',
        () => call.dmaMap(groupDevice, { vaddr: memory.address, iova: 0x100000n, size: t.page }, { fd: container }),
        mapDma,
      );
      const cdev = t.openDevice();
      t.expectErrno('binding the cdev while the group is in use', () => call.bind(groupDevice, {}, { fd: cdev }), 'EBUSY');
    },
  }),
  defineCase({
    id: 'legacy.set-container-bad-fd',
    title: 'SET_CONTAINER with a closed fd is EBADF, with a file that is neither container nor iommufd EBADFD',
    needs: ['device', 'group-interface'],
    run(t) {
      const group = t.open(t.env.device!.groupPath!);
      const efd = t.eventfd();
      t.expectErrno('SET_CONTAINER with an eventfd', setContainerCall(t, group, efd), 'EBADFD');
      t.closeNow(efd);
      t.expectErrno('SET_CONTAINER with a closed fd', setContainerCall(t, group, efd), 'EBADF');
    },
  }),
  defineCase({
    id: 'legacy.group-with-iommufd',
    title: 'a group attached to an iommufd: noiommu puts the iommufd in no-IOMMU mode, an IOMMU group gets a compat IOAS (id 1)',
    needs: ['device', 'group-interface'],
    run(t) {
      const device = t.env.device!;
      const group = t.open(device.groupPath!);
      const iommufd = t.openIommufd();
      t.ok('SET_CONTAINER with the iommufd', setContainerCall(t, group, iommufd));
      t.equal(groupStatus(t, group), V.VFIO_GROUP_FLAGS_VIABLE | V.VFIO_GROUP_FLAGS_CONTAINER_SET, 'group status');
      const compat = t.expect('VFIO_IOAS GET', () => call.vfioIoas(on(t, { iommufd }), { op: I.IOMMU_VFIO_IOAS_GET }).ioas_id, {
        noiommu: 'ENODEV',
        iommu: 'ok',
      });
      if (compat !== undefined) t.equal(compat, 1, 'the automatically created compat IOAS');
      const type1 = t.ok('CHECK_EXTENSION TYPE1v2 on the iommufd', () =>
        plainIoctl(t.kernel, iommufd, V.VFIO_CHECK_EXTENSION, V.VFIO_TYPE1v2_IOMMU),
      );
      t.equal(type1, t.mode === 'noiommu' ? 0 : 1, 'TYPE1v2 after a noiommu group joined (no_iommu_mode) or an IOMMU group');
      const deviceFd = t.ok('GET_DEVICE_FD', getDeviceFdCall(t, group, device.bdf));
      t.ok('GET_INFO', () => call.deviceInfo(on(t, { deviceFd })));
    },
  }),
];
