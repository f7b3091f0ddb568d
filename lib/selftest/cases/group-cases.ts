/**
 * The legacy group interface next to the cdev: a device is used through one or the other, never
 * both (vfio/group.c vfio_device_block_group, vfio_group_fops_open), and a kernel built without
 * the group interface ("null group") has no group node at all.
 */
import { defineCase, type ConformanceCase } from '../case';
import { call } from '../calls';
import { casesOn, defineFixture, setUp } from '../fixture';
import { boundDevice, openDevice } from '../fixtures';
import { on } from '../struct-call';
import * as V from '../../uapi/vfio';

/** The device's legacy group node, opened. */
const groupNode = defineFixture({
  name: 'the group node',
  needs: ['device', 'group-interface'],
  setup: (t) => on(t, { groupFd: t.open(t.env.device!.groupPath!) }),
});
const group = casesOn(groupNode);

export const groupCases: ConformanceCase[] = [
  group.test('group.status', 'the group node opens and GET_STATUS says viable, no container', (t, f) => {
    t.equal(t.ok('VFIO_GROUP_GET_STATUS', () => call.groupStatus(f)).flags, V.VFIO_GROUP_FLAGS_VIABLE, 'group flags');
  }),
  group.test('group.cdev-bind-while-group-open', 'binding the cdev while the group node is open is EBUSY', (t) => {
    const f = setUp(openDevice, t);
    t.expectErrno('VFIO_DEVICE_BIND_IOMMUFD', () => call.bind(f), 'EBUSY');
  }),
  casesOn(boundDevice, ['group-interface']).test(
    'group.open-while-cdev-bound',
    'opening the group node while the cdev is bound is EBUSY',
    (t) => {
      t.expectErrno(`open ${t.env.device!.groupPath}`, () => t.open(t.env.device!.groupPath!), 'EBUSY');
    },
  ),
  group.expect(
    'group.device-ioctl-on-group',
    'a device ioctl sent to the group fd is ENOTTY',
    'VFIO_DEVICE_GET_INFO on the group fd',
    'ENOTTY',
    (f) => call.deviceInfo({ ...f, deviceFd: f.groupFd }),
  ),
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
