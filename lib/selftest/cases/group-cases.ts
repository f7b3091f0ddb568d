/**
 * The legacy group interface next to the cdev: a device is used through one or the other, never
 * both (vfio/group.c vfio_device_block_group, vfio_group_fops_open), and a kernel built without
 * the group interface ("null group") has no group node at all.
 */
import { defineCase, type ConformanceCase } from '../case';
import * as V from '../../uapi/vfio';
import { rawIoctl } from '../raw-ioctl';
import { openBound } from '../steps';

export const groupCases: ConformanceCase[] = [
  defineCase({
    id: 'group.status',
    title: 'the group node opens and GET_STATUS says viable, no container',
    needs: ['device', 'group-interface'],
    run(t) {
      const fd = t.open(t.env.device!.groupPath!);
      const status = t.ok('VFIO_GROUP_GET_STATUS', () => rawIoctl(t.kernel, fd, V.VFIO_GROUP_GET_STATUS, V.VfioGroupStatus, {}).out);
      t.equal(status.flags, V.VFIO_GROUP_FLAGS_VIABLE, 'group flags');
    },
  }),
  defineCase({
    id: 'group.cdev-bind-while-group-open',
    title: 'binding the cdev while the group node is open is EBUSY',
    needs: ['device', 'group-interface'],
    run(t) {
      t.open(t.env.device!.groupPath!);
      const deviceFd = t.openDevice();
      const iommufd = t.openIommufd();
      t.expectErrno('VFIO_DEVICE_BIND_IOMMUFD', () =>
        rawIoctl(t.kernel, deviceFd, V.VFIO_DEVICE_BIND_IOMMUFD, V.VfioDeviceBindIommufd, { iommufd }), 'EBUSY');
    },
  }),
  defineCase({
    id: 'group.open-while-cdev-bound',
    title: 'opening the group node while the cdev is bound is EBUSY',
    needs: ['device', 'group-interface'],
    run(t) {
      openBound(t);
      t.expectErrno(`open ${t.env.device!.groupPath}`, () => t.open(t.env.device!.groupPath!), 'EBUSY');
    },
  }),
  defineCase({
    id: 'group.device-ioctl-on-group',
    title: 'a device ioctl sent to the group fd is ENOTTY',
    needs: ['device', 'group-interface'],
    run(t) {
      const fd = t.open(t.env.device!.groupPath!);
      t.expectErrno('VFIO_DEVICE_GET_INFO on the group fd', () => rawIoctl(t.kernel, fd, V.VFIO_DEVICE_GET_INFO, V.VfioDeviceInfo, {}), 'ENOTTY');
    },
  }),
  defineCase({
    id: 'group.null-group',
    title: 'without the group interface there is no group node and no container, only the cdev',
    needs: ['device', 'no-group-interface'],
    run(t) {
      t.check(!t.env.hasContainer, '/dev/vfio/vfio does not exist');
      t.check(t.kernel.exists(t.env.device!.cdevPath), `${t.env.device!.cdevPath} exists`);
      const nodes = t.kernel.exists('/dev/vfio') ? t.kernel.readdir('/dev/vfio').filter((n) => n !== 'devices') : [];
      t.equal(nodes.join(','), '', 'entries of /dev/vfio besides devices/');
    },
  }),
];
