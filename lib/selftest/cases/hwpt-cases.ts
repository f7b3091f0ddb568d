/**
 * HWPT_ALLOC and GET_HW_INFO on the device under test. A noiommu device gets the software-only
 * noiommu domain only with flags 0 and no driver data (hwpt_noiommu.c) and has no IOMMU to
 * describe (GET_HW_INFO: EOPNOTSUPP); with an IOMMU the driver decides. Sources:
 * hw_pagetable.c iommufd_hwpt_alloc / iommufd_hwpt_paging_alloc, device.c iommufd_get_hw_info.
 */
import { defineCase, type ConformanceCase } from '../case';
import type { CaseContext } from '../context';
import * as I from '../../uapi/iommufd';
import { rawIoctl } from '../raw-ioctl';
import { attach, attachCall, destroy, detach, ioasAlloc, openBound, type BoundDevice } from '../steps';

function hwptAllocCall(t: CaseContext, fd: number, values: Parameters<typeof I.IommuHwptAlloc.encode>[0]): () => number {
  return () => rawIoctl(t.kernel, fd, I.IOMMU_HWPT_ALLOC, I.IommuHwptAlloc, values).out.out_hwpt_id;
}

function boundWithIoas(t: CaseContext): BoundDevice & { ioasId: number } {
  const dev = openBound(t);
  return { ...dev, ioasId: ioasAlloc(t, dev.iommufd) };
}

function hwInfoCall(t: CaseContext, fd: number, values: Parameters<typeof I.IommuHwInfo.encode>[0]): () => { type: number; dataLen: number } {
  return () => {
    const memory = t.anonymousMemory(t.page);
    const { out } = rawIoctl(t.kernel, fd, I.IOMMU_GET_HW_INFO, I.IommuHwInfo, { data_len: 256, data_uptr: memory.address, ...values });
    return { type: out.out_data_type, dataLen: out.data_len };
  };
}

export const hwptCases: ConformanceCase[] = [
  defineCase({
    id: 'hwpt.alloc.plain',
    title: 'HWPT_ALLOC with flags 0 gives a HWPT the device can attach to; it is busy while attached',
    needs: ['device'],
    run(t) {
      const dev = boundWithIoas(t);
      const hwptId = t.ok('HWPT_ALLOC flags 0', hwptAllocCall(t, dev.iommufd, { dev_id: dev.devId, pt_id: dev.ioasId }));
      t.check(hwptId > dev.ioasId, `the HWPT got a new id (${hwptId})`);
      t.equal(attach(t, dev.deviceFd, hwptId), hwptId, 'pt_id written back by attaching to the HWPT');
      t.expectErrno('IOMMU_DESTROY of the attached HWPT', () => rawIoctl(t.kernel, dev.iommufd, I.IOMMU_DESTROY, I.IommuDestroy, { id: hwptId }), 'EBUSY');
      t.expectErrno('IOMMU_DESTROY of its IOAS', () => rawIoctl(t.kernel, dev.iommufd, I.IOMMU_DESTROY, I.IommuDestroy, { id: dev.ioasId }), 'EBUSY');
      detach(t, dev.deviceFd);
      destroy(t, dev.iommufd, hwptId);
      destroy(t, dev.iommufd, dev.ioasId);
    },
  }),
  defineCase({
    id: 'hwpt.alloc.nest-parent',
    title: 'HWPT_ALLOC with NEST_PARENT: noiommu refuses any flag (EOPNOTSUPP)',
    needs: ['device'],
    run(t) {
      const dev = boundWithIoas(t);
      t.expectErrno('HWPT_ALLOC NEST_PARENT', hwptAllocCall(t, dev.iommufd, {
        dev_id: dev.devId, pt_id: dev.ioasId, flags: I.IOMMU_HWPT_ALLOC_NEST_PARENT,
      }), 'EOPNOTSUPP');
    },
  }),
  defineCase({
    id: 'hwpt.alloc.dirty-tracking',
    title: 'HWPT_ALLOC with DIRTY_TRACKING on an IOMMU without dirty tracking is EOPNOTSUPP',
    needs: ['device'],
    run(t) {
      const dev = boundWithIoas(t);
      t.expectErrno('HWPT_ALLOC DIRTY_TRACKING', hwptAllocCall(t, dev.iommufd, {
        dev_id: dev.devId, pt_id: dev.ioasId, flags: I.IOMMU_HWPT_ALLOC_DIRTY_TRACKING,
      }), 'EOPNOTSUPP');
    },
  }),
  defineCase({
    id: 'hwpt.alloc.unknown-flag',
    title: 'HWPT_ALLOC with an unknown flag bit is EOPNOTSUPP',
    needs: ['device'],
    run(t) {
      const dev = boundWithIoas(t);
      t.expectErrno('HWPT_ALLOC flags 1<<4', hwptAllocCall(t, dev.iommufd, { dev_id: dev.devId, pt_id: dev.ioasId, flags: 1 << 4 }), 'EOPNOTSUPP');
    },
  }),
  defineCase({
    id: 'hwpt.alloc.nonzero-reserved',
    title: 'HWPT_ALLOC with non-zero __reserved is EOPNOTSUPP',
    needs: ['device'],
    run(t) {
      const dev = boundWithIoas(t);
      t.expectErrno('HWPT_ALLOC __reserved 1', hwptAllocCall(t, dev.iommufd, { dev_id: dev.devId, pt_id: dev.ioasId, __reserved: 1 }), 'EOPNOTSUPP');
    },
  }),
  defineCase({
    id: 'hwpt.alloc.data-mismatch',
    title: 'HWPT_ALLOC with data_len but type NONE, or a type but no data_len, is EINVAL',
    needs: ['device'],
    run(t) {
      const dev = boundWithIoas(t);
      t.expectErrno('HWPT_ALLOC type NONE, data_len 8', hwptAllocCall(t, dev.iommufd, {
        dev_id: dev.devId, pt_id: dev.ioasId, data_type: I.IOMMU_HWPT_DATA_NONE, data_len: 8,
      }), 'EINVAL');
      t.expectErrno('HWPT_ALLOC type VTD_S1, data_len 0', hwptAllocCall(t, dev.iommufd, {
        dev_id: dev.devId, pt_id: dev.ioasId, data_type: I.IOMMU_HWPT_DATA_VTD_S1, data_len: 0,
      }), 'EINVAL');
    },
  }),
  defineCase({
    id: 'hwpt.alloc.driver-data',
    title: 'HWPT_ALLOC on an IOAS with driver data (VT-d stage 1) is EOPNOTSUPP (noiommu, and VT-d paging domains)',
    needs: ['device'],
    run(t) {
      const dev = boundWithIoas(t);
      const memory = t.anonymousMemory(t.page);
      t.expectErrno('HWPT_ALLOC VTD_S1 data on an IOAS', hwptAllocCall(t, dev.iommufd, {
        dev_id: dev.devId, pt_id: dev.ioasId, data_type: I.IOMMU_HWPT_DATA_VTD_S1, data_len: I.IommuHwptVtdS1.size, data_uptr: memory.address,
      }), 'EOPNOTSUPP');
    },
  }),
  defineCase({
    id: 'hwpt.alloc.missing-device',
    title: 'HWPT_ALLOC for a device id that does not exist is ENOENT',
    needs: ['device'],
    run(t) {
      const dev = boundWithIoas(t);
      t.expectErrno('HWPT_ALLOC dev_id 99', hwptAllocCall(t, dev.iommufd, { dev_id: 99, pt_id: dev.ioasId }), 'ENOENT');
      t.expectErrno('HWPT_ALLOC dev_id = the IOAS', hwptAllocCall(t, dev.iommufd, { dev_id: dev.ioasId, pt_id: dev.ioasId }), 'ENOENT');
    },
  }),
  defineCase({
    id: 'hwpt.alloc.bad-pt',
    title: 'HWPT_ALLOC on a pt_id that does not exist, or is the device, is EINVAL (not ENOENT)',
    needs: ['device'],
    run(t) {
      const dev = boundWithIoas(t);
      // iommufd_hwpt_alloc turns a failed lookup of pt_id into EINVAL.
      t.expectErrno('HWPT_ALLOC pt_id 99', hwptAllocCall(t, dev.iommufd, { dev_id: dev.devId, pt_id: 99 }), 'EINVAL');
      t.expectErrno('HWPT_ALLOC pt_id = the device', hwptAllocCall(t, dev.iommufd, { dev_id: dev.devId, pt_id: dev.devId }), 'EINVAL');
    },
  }),
  defineCase({
    id: 'hwpt.attach.device-id',
    title: 'attaching a device to an id that is a device (not an IOAS or HWPT) is EINVAL',
    needs: ['device'],
    run(t) {
      const dev = openBound(t);
      t.expectErrno('attach to the device id', attachCall(t, dev.deviceFd, dev.devId), 'EINVAL');
    },
  }),
  defineCase({
    id: 'hwpt.get-hw-info',
    title: 'GET_HW_INFO: a noiommu device has no IOMMU to describe (EOPNOTSUPP); VT-d reports type INTEL_VTD',
    needs: ['device'],
    run(t) {
      const dev = openBound(t);
      const info = t.expect('GET_HW_INFO', hwInfoCall(t, dev.iommufd, { dev_id: dev.devId }), { noiommu: 'EOPNOTSUPP', iommu: 'ok' });
      if (info) {
        t.note(`out_data_type ${info.type}, data_len ${info.dataLen}`);
        t.equal(info.type, I.IOMMU_HW_INFO_TYPE_INTEL_VTD, 'out_data_type');
        t.equal(info.dataLen, I.IommuHwInfoVtd.size, 'data_len written back');
      }
    },
  }),
  defineCase({
    id: 'hwpt.get-hw-info.bad-input',
    title: 'GET_HW_INFO with an unknown flag or non-zero __reserved is EOPNOTSUPP; a missing device ENOENT',
    needs: ['device'],
    run(t) {
      const dev = openBound(t);
      t.expectErrno('GET_HW_INFO flags 1<<1', hwInfoCall(t, dev.iommufd, { dev_id: dev.devId, flags: 1 << 1 }), 'EOPNOTSUPP');
      t.expectErrno('GET_HW_INFO __reserved[1] = 1', hwInfoCall(t, dev.iommufd, { dev_id: dev.devId, __reserved: [0, 1, 0] }), 'EOPNOTSUPP');
      t.expectErrno('GET_HW_INFO dev_id 99', hwInfoCall(t, dev.iommufd, { dev_id: 99 }), 'ENOENT');
    },
  }),
];
