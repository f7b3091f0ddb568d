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
import { call } from '../calls';
import { casesOn, extendFixture } from '../fixture';
import { ioas, iommufd } from '../fixtures';
import { map } from '../steps';

/** An IOAS with one page mapped at 0x100000 (no device: a process without CAP_SYS_RAWIO may open none). */
const ioasWithMapping = extendFixture(ioas, 'an IOAS with one mapped page', (f) => {
  const memory = f.t.anonymousMemory(f.t.page);
  map(f.t, f.iommufd, f.ioasId, { userVa: memory.address, length: f.t.page, iova: 0x100000n });
  return f;
});
const unprivileged = ['without-sys-rawio'] as const;

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
  casesOn(ioasWithMapping, unprivileged).test(
    'privileges.iommufd-usable',
    'without CAP_SYS_RAWIO /dev/iommu still opens, IOAS allocation and mapping work',
    () => undefined,
  ),
  casesOn(ioasWithMapping, unprivileged).test(
    'privileges.get-pa',
    'without CAP_SYS_RAWIO GET_PA is EPERM, even with arguments that would fail other checks',
    (t, f) => {
      t.expectErrno('GET_PA of a mapped IOVA', () => call.getPa(f, { iova: 0x100000n, length: t.page }), 'EPERM');
      t.expectErrno(
        'GET_PA with flags 1, length 0, IOVA 2^64-1, IOAS 99',
        () => call.getPa(f, { ioas_id: 99, iova: U64_MAX, length: 0n, flags: 1 }),
        'EPERM',
      );
    },
  ),
  casesOn(iommufd, unprivileged).test(
    'privileges.get-pa-size-checked-first',
    'without CAP_SYS_RAWIO a GET_PA with a short size is still EINVAL: the generic size check runs before the command',
    (t, f) => {
      const short = I.IommuIoasNoiommuGetPa.endOf('out_phys') - 1;
      t.expectErrno(`GET_PA size ${short}`, () => call.getPa(f, { length: 4096n }, { declaredSize: short }), 'EINVAL');
      t.expectErrno('GET_PA with a non-zero tail', () => call.getPa(f, { length: 4096n }, { tail: [1, 0, 0, 0, 0, 0, 0, 0] }), 'E2BIG');
    },
  ),
];
