/**
 * What CAP_SYS_RAWIO guards: opening a noiommu device (cdev or group) and
 * IOMMU_IOAS_NOIOMMU_GET_PA, whose capability check comes before every other check. These cases
 * run in a process without the capability (the lab starts one with setpriv; the model has an
 * unprivileged profile). Sources: vfio/device_cdev.c vfio_device_fops_cdev_open, vfio/group.c
 * vfio_group_fops_open, iommufd/ioas.c iommufd_ioas_noiommu_get_pa.
 */
import { defineCase, type ConformanceCase } from '../case';
import { U64_MAX } from '../../uapi/codec';
import * as I from '../../uapi/iommufd';
import { buildStruct } from '../raw-ioctl';
import { getPaCall, ioasAlloc, map } from '../steps';

export const privilegeCases: ConformanceCase[] = [
  defineCase({
    id: 'privileges.cdev-open',
    title: 'without CAP_SYS_RAWIO a noiommu cdev cannot be opened (EPERM); an IOMMU-backed one can',
    needs: ['without-sys-rawio'],
    run(t) {
      const device = t.env.device;
      if (!device) return t.skip('no VFIO device in this environment');
      t.expect(`open ${device.cdevPath}`, () => t.open(device.cdevPath), { noiommu: 'EPERM', iommu: 'ok' });
    },
  }),
  defineCase({
    id: 'privileges.group-open',
    title: 'without CAP_SYS_RAWIO a noiommu group node cannot be opened (EPERM)',
    needs: ['without-sys-rawio', 'group-interface'],
    run(t) {
      const group = t.env.device!.groupPath!;
      t.expect(`open ${group}`, () => t.open(group), { noiommu: 'EPERM', iommu: 'ok' });
    },
  }),
  defineCase({
    id: 'privileges.iommufd-usable',
    title: 'without CAP_SYS_RAWIO /dev/iommu still opens, IOAS allocation and mapping work',
    needs: ['without-sys-rawio'],
    run(t) {
      const fd = t.openIommufd();
      const ioasId = ioasAlloc(t, fd);
      const memory = t.anonymousMemory(t.page);
      map(t, fd, ioasId, { userVa: memory.address, length: t.page, iova: 0x100000n });
    },
  }),
  defineCase({
    id: 'privileges.get-pa',
    title: 'without CAP_SYS_RAWIO GET_PA is EPERM, even with arguments that would fail other checks',
    needs: ['without-sys-rawio'],
    run(t) {
      const fd = t.openIommufd();
      const ioasId = ioasAlloc(t, fd);
      const memory = t.anonymousMemory(t.page);
      map(t, fd, ioasId, { userVa: memory.address, length: t.page, iova: 0x100000n });
      t.expectErrno('GET_PA of a mapped IOVA', getPaCall(t, fd, ioasId, { iova: 0x100000n, length: t.page }), 'EPERM');
      t.expectErrno('GET_PA with flags 1, length 0, IOVA 2^64-1, IOAS 99', getPaCall(t, fd, 99, { iova: U64_MAX, length: 0n, flags: 1 }), 'EPERM');
    },
  }),
  defineCase({
    id: 'privileges.get-pa-size-checked-first',
    title: 'without CAP_SYS_RAWIO a GET_PA with a short size is still EINVAL: the generic size check runs before the command',
    needs: ['without-sys-rawio'],
    run(t) {
      const fd = t.openIommufd();
      const short = I.IommuIoasNoiommuGetPa.endOf('out_phys') - 1;
      t.expectErrno(`GET_PA size ${short}`, () => t.kernel.ioctl(fd, I.IOMMU_IOAS_NOIOMMU_GET_PA.number,
        buildStruct(I.IommuIoasNoiommuGetPa, { length: 4096n }, { declaredSize: short })), 'EINVAL');
      t.expectErrno('GET_PA with a non-zero tail', () => t.kernel.ioctl(fd, I.IOMMU_IOAS_NOIOMMU_GET_PA.number,
        buildStruct(I.IommuIoasNoiommuGetPa, { length: 4096n }, { tail: [1, 0, 0, 0, 0, 0, 0, 0] })), 'E2BIG');
    },
  }),
];
