import assert from 'node:assert/strict';
import { profiles } from '../../../lib/model';
import { IO } from '../../../lib/uapi/ioctl';
import {
  IOMMU_IOAS_ALLOC, IOMMU_IOAS_MAP, IOMMU_IOAS_NOIOMMU_GET_PA, IOMMU_IOAS_UNMAP, IommuIoasAlloc, IommuIoasMap,
  IommuIoasNoiommuGetPa, IommuIoasUnmap,
} from '../../../lib/uapi/iommufd';
import { VFIO_CHECK_EXTENSION, VFIO_GET_API_VERSION, VFIO_TYPE1v2_IOMMU, VFIO_NOIOMMU_IOMMU } from '../../../lib/uapi/vfio';
import { Harness, expectErrno } from '../harness';

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
      h.kernel.ioctl(h.fd, IOMMU_IOAS_NOIOMMU_GET_PA.number, IommuIoasNoiommuGetPa.encode({ size: IommuIoasNoiommuGetPa.size, length: 4096n }));
      assert.fail('succeeded');
    } catch (e) {
      assert.equal((e as { code: string }).code, 'ENOTTY');
      assert.equal((e as { ioctl: string }).ioctl, 'IOMMU_IOAS_NOIOMMU_GET_PA');
      assert.match((e as { hint: string }).hint, /7\.3/);
    }
  });

  it('iommufd_ioas_noiommu_get_pa stub: 7.3 without CONFIG_IOMMUFD_NOIOMMU answers EOPNOTSUPP', () => {
    const base = profiles['linux-7.3-iommu'];
    const h = new Harness({ ...base, config: { ...base.config, VFIO_NOIOMMU: false } });
    const ioas = h.ioasAlloc();
    expectErrno('EOPNOTSUPP', () => h.getPa(ioas, 0x1000n, 4096n));
  });
});
