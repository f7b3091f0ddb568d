/**
 * HWPT_ALLOC and GET_HW_INFO on the device under test. A noiommu device gets the software-only
 * noiommu domain only with flags 0 and no driver data (hwpt_noiommu.c) and has no IOMMU to
 * describe (GET_HW_INFO: EOPNOTSUPP); with an IOMMU the driver decides. Sources:
 * hw_pagetable.c iommufd_hwpt_alloc / iommufd_hwpt_paging_alloc, device.c iommufd_get_hw_info.
 */
import type { ConformanceCase } from '../case';
import * as I from '../../uapi/iommufd';
import { call } from '../calls';
import { casesOn } from '../fixture';
import { boundDevice, boundWithIoas } from '../fixtures';
import { attach, destroy, detach } from '../steps';

const withIoas = casesOn(boundWithIoas);
const bound = casesOn(boundDevice);

export const hwptCases: ConformanceCase[] = [
  withIoas.test('hwpt.alloc.plain', 'HWPT_ALLOC with flags 0 gives a HWPT the device can attach to; it is busy while attached', (t, f) => {
    const hwptId = t.ok('HWPT_ALLOC flags 0', () => call.hwptAlloc(f).out_hwpt_id);
    t.check(hwptId > f.ioasId, `the HWPT got a new id (${hwptId})`);
    t.equal(attach(t, f.deviceFd, hwptId), hwptId, 'pt_id written back by attaching to the HWPT');
    t.expectErrno('IOMMU_DESTROY of the attached HWPT', () => call.destroy(f, { id: hwptId }), 'EBUSY');
    t.expectErrno('IOMMU_DESTROY of its IOAS', () => call.destroy(f, { id: f.ioasId }), 'EBUSY');
    detach(t, f.deviceFd);
    destroy(t, f.iommufd, hwptId);
    destroy(t, f.iommufd, f.ioasId);
  }),
  withIoas.expect(
    'hwpt.alloc.nest-parent',
    'HWPT_ALLOC with NEST_PARENT: noiommu refuses any flag (EOPNOTSUPP)',
    'HWPT_ALLOC NEST_PARENT',
    'EOPNOTSUPP',
    (f) => call.hwptAlloc(f, { flags: I.IOMMU_HWPT_ALLOC_NEST_PARENT }),
  ),
  withIoas.expect(
    'hwpt.alloc.dirty-tracking',
    'HWPT_ALLOC with DIRTY_TRACKING on an IOMMU without dirty tracking is EOPNOTSUPP',
    'HWPT_ALLOC DIRTY_TRACKING',
    'EOPNOTSUPP',
    (f) => call.hwptAlloc(f, { flags: I.IOMMU_HWPT_ALLOC_DIRTY_TRACKING }),
  ),
  withIoas.expect(
    'hwpt.alloc.unknown-flag',
    'HWPT_ALLOC with an unknown flag bit is EOPNOTSUPP',
    'HWPT_ALLOC flags 1<<4',
    'EOPNOTSUPP',
    (f) => call.hwptAlloc(f, { flags: 1 << 4 }),
  ),
  withIoas.expect(
    'hwpt.alloc.nonzero-reserved',
    'HWPT_ALLOC with non-zero __reserved is EOPNOTSUPP',
    'HWPT_ALLOC __reserved 1',
    'EOPNOTSUPP',
    (f) => call.hwptAlloc(f, { __reserved: 1 }),
  ),
  withIoas.test('hwpt.alloc.data-mismatch', 'HWPT_ALLOC with data_len but type NONE, or a type but no data_len, is EINVAL', (t, f) => {
    t.expectErrno(
      'HWPT_ALLOC type NONE, data_len 8',
      () => call.hwptAlloc(f, { data_type: I.IOMMU_HWPT_DATA_NONE, data_len: 8 }),
      'EINVAL',
    );
    t.expectErrno(
      'HWPT_ALLOC type VTD_S1, data_len 0',
      () => call.hwptAlloc(f, { data_type: I.IOMMU_HWPT_DATA_VTD_S1, data_len: 0 }),
      'EINVAL',
    );
  }),
  withIoas.test(
    'hwpt.alloc.driver-data',
    'HWPT_ALLOC on an IOAS with driver data (VT-d stage 1) is EOPNOTSUPP (noiommu, and VT-d paging domains)',
    (t, f) => {
      const memory = t.anonymousMemory(t.page);
      t.expectErrno(
        'HWPT_ALLOC VTD_S1 data on an IOAS',
        () =>
          call.hwptAlloc(f, {
            data_type: I.IOMMU_HWPT_DATA_VTD_S1,
            data_len: I.IommuHwptVtdS1.size,
            data_uptr: memory.address,
          }),
        'EOPNOTSUPP',
      );
    },
  ),
  withIoas.test('hwpt.alloc.missing-device', 'HWPT_ALLOC for a device id that does not exist is ENOENT', (t, f) => {
    t.expectErrno('HWPT_ALLOC dev_id 99', () => call.hwptAlloc(f, { dev_id: 99 }), 'ENOENT');
    t.expectErrno('HWPT_ALLOC dev_id = the IOAS', () => call.hwptAlloc(f, { dev_id: f.ioasId }), 'ENOENT');
  }),
  withIoas.test('hwpt.alloc.bad-pt', 'HWPT_ALLOC on a pt_id that does not exist, or is the device, is EINVAL (not ENOENT)', (t, f) => {
    // iommufd_hwpt_alloc turns a failed lookup of pt_id into EINVAL.
    t.expectErrno('HWPT_ALLOC pt_id 99', () => call.hwptAlloc(f, { pt_id: 99 }), 'EINVAL');
    t.expectErrno('HWPT_ALLOC pt_id = the device', () => call.hwptAlloc(f, { pt_id: f.devId }), 'EINVAL');
  }),
  bound.expect(
    'hwpt.attach.device-id',
    'attaching a device to an id that is a device (not an IOAS or HWPT) is EINVAL',
    'attach to the device id',
    'EINVAL',
    (f) => call.attach(f, { pt_id: f.devId }),
  ),
  bound.test(
    'hwpt.get-hw-info',
    'GET_HW_INFO: a noiommu device has no IOMMU to describe (EOPNOTSUPP); VT-d reports type INTEL_VTD',
    (t, f) => {
      const info = t.expect('GET_HW_INFO', () => call.hwInfo(f), { noiommu: 'EOPNOTSUPP', iommu: 'ok' });
      if (info) {
        t.note(`out_data_type ${info.out_data_type}, data_len ${info.data_len}`);
        t.equal(info.out_data_type, I.IOMMU_HW_INFO_TYPE_INTEL_VTD, 'out_data_type');
        t.equal(info.data_len, I.IommuHwInfoVtd.size, 'data_len written back');
      }
    },
  ),
  bound.test(
    'hwpt.get-hw-info.bad-input',
    'GET_HW_INFO with an unknown flag or non-zero __reserved is EOPNOTSUPP; a missing device ENOENT',
    (t, f) => {
      t.expectErrno('GET_HW_INFO flags 1<<1', () => call.hwInfo(f, { flags: 1 << 1 }), 'EOPNOTSUPP');
      t.expectErrno('GET_HW_INFO __reserved[1] = 1', () => call.hwInfo(f, { __reserved: [0, 1, 0] }), 'EOPNOTSUPP');
      t.expectErrno('GET_HW_INFO dev_id 99', () => call.hwInfo(f, { dev_id: 99 }), 'ENOENT');
    },
  ),
];
