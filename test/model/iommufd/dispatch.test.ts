import assert from 'node:assert/strict';
import { profiles } from '../../../lib/model';
import { IO } from '../../../lib/uapi/requests';
import { U64_MAX } from '../../../lib/uapi/codec';
import {
  IOMMU_HW_QUEUE_ALLOC,
  IOMMU_HWPT_GET_DIRTY_BITMAP,
  IOMMU_HWPT_INVALIDATE,
  IOMMU_HWPT_SET_DIRTY_TRACKING,
  IOMMU_IOAS_ALLOC,
  IOMMU_IOAS_CHANGE_PROCESS,
  IOMMU_IOAS_MAP,
  IOMMU_IOAS_NOIOMMU_GET_PA,
  IOMMU_IOAS_UNMAP,
  IOMMU_VDEVICE_ALLOC,
  IOMMU_VEVENTQ_ALLOC,
  IOMMU_VIOMMU_ALLOC,
  IommuHwQueueAlloc,
  IommuHwptGetDirtyBitmap,
  IommuHwptInvalidate,
  IommuHwptSetDirtyTracking,
  IommuIoasAlloc,
  IommuIoasChangeProcess,
  IommuIoasMap,
  IommuIoasNoiommuGetPa,
  IommuIoasUnmap,
  IommuVdeviceAlloc,
  IommuVeventqAlloc,
  IommuViommuAlloc,
} from '../../../lib/uapi/iommufd';
import { VFIO_CHECK_EXTENSION, VFIO_GET_API_VERSION, VFIO_TYPE1v2_IOMMU, VFIO_NOIOMMU_IOMMU } from '../../../lib/uapi/vfio';
import { Harness, expectErrno } from '../harness';
import { harnessWithIoas } from './fixtures';

describe('iommufd_fops_ioctl: dispatch and size rules', () => {
  it('iommufd_fops_ioctl: size below the op minimum (offsetofend of the last field) → EINVAL', () => {
    const h = new Harness();
    const buf = IommuIoasAlloc.encode({ size: IommuIoasAlloc.endOf('out_ioas_id') - 1 });
    expectErrno('EINVAL', () => h.kernel.ioctl(h.fd, IOMMU_IOAS_ALLOC.number, buf));
  });

  it('copy_struct_from_user: a larger struct with a zero tail is accepted', () => {
    const h = new Harness();
    const buf = Buffer.alloc(IommuIoasAlloc.size + 8);
    buf.writeUInt32LE(buf.length, 0);
    h.kernel.ioctl(h.fd, IOMMU_IOAS_ALLOC.number, buf);
    assert.equal(IommuIoasAlloc.decode(buf).out_ioas_id, 1);
  });

  it('copy_struct_from_user: a larger struct with a non-zero tail → E2BIG, and no ID is used', () => {
    const h = new Harness();
    const buf = Buffer.alloc(IommuIoasAlloc.size + 8);
    buf.writeUInt32LE(buf.length, 0);
    buf[buf.length - 1] = 1;
    expectErrno('E2BIG', () => h.kernel.ioctl(h.fd, IOMMU_IOAS_ALLOC.number, buf));
    assert.equal(h.ioasAlloc(), 1);
  });

  it('iommufd_ucmd_respond: copies back only min(size, sizeof) bytes', () => {
    const h = new Harness();
    const m = h.anon(1n << 20n);
    // A struct that ends right after `iova` is the minimum; the kernel writes iova back in it.
    const buf = IommuIoasMap.encode({ size: IommuIoasMap.size, flags: 6, ioas_id: h.ioasAlloc(), user_va: m.address, length: 4096n });
    h.kernel.ioctl(h.fd, IOMMU_IOAS_MAP.number, buf);
    assert.notEqual(IommuIoasMap.decode(buf).iova, 0n);
  });

  it('get_user(size): an argument shorter than the size word → EFAULT; a non-buffer argument → EFAULT', () => {
    const h = new Harness();
    expectErrno('EFAULT', () => h.kernel.ioctl(h.fd, IOMMU_IOAS_ALLOC.number, Buffer.alloc(2)));
    expectErrno('EFAULT', () => h.kernel.ioctl(h.fd, IOMMU_IOAS_ALLOC.number, null));
    expectErrno('EFAULT', () => h.kernel.ioctl(h.fd, IOMMU_IOAS_ALLOC.number, 0));
  });

  it('copy_struct_from_user: a declared size larger than the buffer → EFAULT', () => {
    const h = new Harness();
    const buf = IommuIoasUnmap.encode({ size: 64 });
    expectErrno('EFAULT', () => h.kernel.ioctl(h.fd, IOMMU_IOAS_UNMAP.number, buf));
  });

  it('iommufd_fops_ioctl: the right number with other type or direction bits → ENOTTY (-ENOIOCTLCMD)', () => {
    const h = new Harness();
    const wrongType = IO(0x3c, 0x81);
    expectErrno('ENOTTY', () => h.kernel.ioctl(h.fd, wrongType, IommuIoasAlloc.encode({ size: IommuIoasAlloc.size })));
    const withDir = IOMMU_IOAS_ALLOC.number | (1 << 30) | (12 << 16);
    expectErrno('ENOTTY', () => h.kernel.ioctl(h.fd, withDir, IommuIoasAlloc.encode({ size: IommuIoasAlloc.size })));
  });

  it('iommufd_vfio_ioctl: numbers outside the table fall to the VFIO compat ioctls, else ENOTTY', () => {
    const h = new Harness();
    assert.equal(h.kernel.ioctl(h.fd, VFIO_GET_API_VERSION.number, null), 0);
    assert.equal(h.kernel.ioctl(h.fd, VFIO_CHECK_EXTENSION.number, VFIO_TYPE1v2_IOMMU), 1);
    assert.equal(h.kernel.ioctl(h.fd, VFIO_CHECK_EXTENSION.number, VFIO_NOIOMMU_IOMMU), 1);
    expectErrno('ENOTTY', () => h.kernel.ioctl(h.fd, IO(0x3b, 0x7f), Buffer.alloc(16)));
    expectErrno('ENOTTY', () => h.kernel.ioctl(h.fd, IO(0x3b, 0xa0), Buffer.alloc(16)));
  });

  it('a kernel older than 7.3 has no IOMMU_IOAS_NOIOMMU_GET_PA: ENOTTY, with a hint naming 7.3', () => {
    const h = new Harness('linux-6.x-legacy-noiommu');
    try {
      h.kernel.ioctl(
        h.fd,
        IOMMU_IOAS_NOIOMMU_GET_PA.number,
        IommuIoasNoiommuGetPa.encode({ size: IommuIoasNoiommuGetPa.size, length: 4096n }),
      );
      assert.fail('succeeded');
    } catch (e) {
      assert.equal((e as { code: string }).code, 'ENOTTY');
      assert.equal((e as { ioctl: string }).ioctl, 'IOMMU_IOAS_NOIOMMU_GET_PA');
      assert.match((e as { hint: string }).hint, /7\.3/);
    }
  });

  it('iommufd_ioas_noiommu_get_pa stub: 7.3 without CONFIG_IOMMUFD_NOIOMMU answers EOPNOTSUPP', () => {
    const base = profiles['linux-7.3-iommu'];
    const { h, ioas } = harnessWithIoas({ ...base, config: { ...base.config, VFIO_NOIOMMU: false } });
    expectErrno('EOPNOTSUPP', () => h.getPa(ioas, 0x1000n, 4096n));
  });
});

describe('iommufd ops the modelled hardware cannot do (dirty tracking, invalidation, vIOMMU)', () => {
  it('iommufd_hwpt_set_dirty_tracking / get_dirty_bitmap: argument checks, then no dirty ops → EOPNOTSUPP', () => {
    const { h, ioas } = harnessWithIoas();
    const dev = h.bind();
    const hwpt = h.ctx.attachDevice(dev, ioas);
    expectErrno('EOPNOTSUPP', () => h.call(IOMMU_HWPT_SET_DIRTY_TRACKING, IommuHwptSetDirtyTracking, { hwpt_id: hwpt, flags: 2 }));
    expectErrno('ENOENT', () => h.call(IOMMU_HWPT_SET_DIRTY_TRACKING, IommuHwptSetDirtyTracking, { hwpt_id: ioas, flags: 1 }));
    expectErrno('EOPNOTSUPP', () => h.call(IOMMU_HWPT_SET_DIRTY_TRACKING, IommuHwptSetDirtyTracking, { hwpt_id: hwpt, flags: 1 }));
    const bitmap = (v: Partial<Parameters<typeof IommuHwptGetDirtyBitmap.encode>[0]>) =>
      h.call(IOMMU_HWPT_GET_DIRTY_BITMAP, IommuHwptGetDirtyBitmap, { hwpt_id: hwpt, ...v });
    expectErrno('EOVERFLOW', () => bitmap({ iova: 0x1000n, length: 0n, page_size: 4096n }));
    expectErrno('EINVAL', () => bitmap({ iova: 0x800n, length: 0x1000n, page_size: 4096n }));
    expectErrno('EINVAL', () => bitmap({ iova: 0x1000n, length: 0x1000n, page_size: 0n }));
    expectErrno('EOPNOTSUPP', () => bitmap({ iova: 0x1000n, length: 0x1000n, page_size: 4096n }));
  });

  it('iommufd_hwpt_invalidate: a paging HWPT takes no invalidations → EINVAL, with entry_num answered 0', () => {
    const { h, ioas } = harnessWithIoas();
    const hwpt = h.ctx.attachDevice(h.bind(), ioas);
    const buf = IommuHwptInvalidate.encode({ size: IommuHwptInvalidate.size, hwpt_id: hwpt, entry_num: 0 });
    expectErrno('EINVAL', () => h.kernel.ioctl(h.fd, IOMMU_HWPT_INVALIDATE.number, buf));
    IommuHwptInvalidate.set(buf, 'entry_num', 3);
    expectErrno('EINVAL', () => h.kernel.ioctl(h.fd, IOMMU_HWPT_INVALIDATE.number, buf));
    assert.equal(IommuHwptInvalidate.get(buf, 'entry_num'), 0);
  });

  it('vIOMMU family: VIOMMU_ALLOC → EOPNOTSUPP; VDEVICE/VEVENTQ/HW_QUEUE find no vIOMMU → ENOENT after their own checks', () => {
    const h = new Harness('linux-7.3-iommu');
    const dev = h.bind('0000:00:03.0', 1);
    expectErrno('EOPNOTSUPP', () => h.call(IOMMU_VIOMMU_ALLOC, IommuViommuAlloc, { dev_id: dev, type: 0 }));
    expectErrno('EOPNOTSUPP', () => h.call(IOMMU_VIOMMU_ALLOC, IommuViommuAlloc, { dev_id: dev, type: 1 }));
    expectErrno('ENOENT', () => h.call(IOMMU_VIOMMU_ALLOC, IommuViommuAlloc, { dev_id: 40, type: 1 }));
    expectErrno('ENOENT', () => h.call(IOMMU_VDEVICE_ALLOC, IommuVdeviceAlloc, { viommu_id: dev, dev_id: dev }));
    expectErrno('EINVAL', () => h.call(IOMMU_VEVENTQ_ALLOC, IommuVeventqAlloc, { type: 1, veventq_depth: 0 }));
    expectErrno('ENOENT', () => h.call(IOMMU_VEVENTQ_ALLOC, IommuVeventqAlloc, { type: 1, veventq_depth: 8 }));
    expectErrno('EOVERFLOW', () => h.call(IOMMU_HW_QUEUE_ALLOC, IommuHwQueueAlloc, { type: 1, length: 16n, nesting_parent_iova: U64_MAX }));
    expectErrno('ENOENT', () => h.call(IOMMU_HW_QUEUE_ALLOC, IommuHwQueueAlloc, { type: 1, length: 16n }));
  });

  it('iommufd_ioas_change_process: only file-backed areas can change process (EINVAL otherwise)', () => {
    const { h, ioas } = harnessWithIoas();
    h.call(IOMMU_IOAS_CHANGE_PROCESS, IommuIoasChangeProcess, {});
    h.map(ioas, 0x10_0000n, 4096n);
    expectErrno('EINVAL', () => h.call(IOMMU_IOAS_CHANGE_PROCESS, IommuIoasChangeProcess, {}));
    expectErrno('EOPNOTSUPP', () => h.call(IOMMU_IOAS_CHANGE_PROCESS, IommuIoasChangeProcess, { __reserved: 1 }));
  });
});
