import assert from 'node:assert/strict';
import { createModelKernel, profiles } from '../../../lib/model';
import { O_RDWR } from '../../../lib/sys/constants';
import {
  VFIO_CHECK_EXTENSION,
  VFIO_DMA_CC_IOMMU,
  VFIO_DMA_MAP_FLAG_READ,
  VFIO_DMA_MAP_FLAG_WRITE,
  VFIO_DMA_UNMAP_FLAG_ALL,
  VFIO_GET_API_VERSION,
  VFIO_IOMMU_GET_INFO,
  VFIO_IOMMU_INFO_CAPS,
  VFIO_IOMMU_INFO_PGSIZES,
  VFIO_IOMMU_MAP_DMA,
  VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE,
  VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL,
  VFIO_IOMMU_UNMAP_DMA,
  VFIO_NOIOMMU_IOMMU,
  VFIO_SET_IOMMU,
  VFIO_TYPE1_IOMMU,
  VFIO_TYPE1v2_IOMMU,
  VfioIommuType1DmaMap,
  VfioIommuType1DmaUnmap,
  VfioIommuType1Info,
  VfioIovaRange,
} from '../../../lib/uapi/vfio';
import { U64_MAX } from '../../../lib/uapi/codec';
import { Harness, MiB, expectErrno } from '../harness';

const RW = VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE;

function compat() {
  const h = new Harness();
  h.ctx.compatIoasCreate();
  const ioas = h.ctx.compatIoasId();
  const mapDma = (vaddr: bigint, iova: bigint, size: bigint, flags = RW) =>
    h.kernel.ioctl(
      h.fd,
      VFIO_IOMMU_MAP_DMA.number,
      VfioIommuType1DmaMap.encode({ argsz: VfioIommuType1DmaMap.size, flags, vaddr, iova, size }),
    );
  const unmapDma = (iova: bigint, size: bigint, flags = 0) => {
    const buf = VfioIommuType1DmaUnmap.encode({ argsz: VfioIommuType1DmaUnmap.size, flags, iova, size });
    h.kernel.ioctl(h.fd, VFIO_IOMMU_UNMAP_DMA.number, buf);
    return VfioIommuType1DmaUnmap.get(buf, 'size');
  };
  return { h, ioas, mapDma, unmapDma };
}

describe('VFIO type1 compatibility on iommufd (vfio_compat.c)', () => {
  it('iommufd_vfio_ioctl: API version 0; type1/type1v2/unmap-all extensions; SET_IOMMU needs a compat IOAS', () => {
    const h = new Harness();
    assert.equal(h.kernel.ioctl(h.fd, VFIO_GET_API_VERSION.number, null), 0);
    assert.equal(h.kernel.ioctl(h.fd, VFIO_CHECK_EXTENSION.number, VFIO_TYPE1v2_IOMMU), 1);
    assert.equal(h.kernel.ioctl(h.fd, VFIO_CHECK_EXTENSION.number, 10), 0);
    expectErrno('ENODEV', () => h.kernel.ioctl(h.fd, VFIO_SET_IOMMU.number, VFIO_TYPE1v2_IOMMU));
    expectErrno('EINVAL', () => h.kernel.ioctl(h.fd, VFIO_SET_IOMMU.number, 7));
    h.ctx.compatIoasCreate();
    assert.equal(h.kernel.ioctl(h.fd, VFIO_SET_IOMMU.number, VFIO_TYPE1v2_IOMMU), 0);
  });

  it('iommufd_vfio_cc_iommu: VFIO_DMA_CC_IOMMU is 1 until a domain that does not enforce coherency is loaded', () => {
    const h = new Harness();
    expectErrno('ENODEV', () => h.kernel.ioctl(h.fd, VFIO_CHECK_EXTENSION.number, VFIO_DMA_CC_IOMMU));
    h.ctx.compatIoasCreate();
    assert.equal(h.kernel.ioctl(h.fd, VFIO_CHECK_EXTENSION.number, VFIO_DMA_CC_IOMMU), 1);
    h.ctx.attachDevice(h.bind(), h.ctx.compatIoasId());
    assert.equal(h.kernel.ioctl(h.fd, VFIO_CHECK_EXTENSION.number, VFIO_DMA_CC_IOMMU), 0);
  });

  it('iommufd_vfio_set_iommu: noiommu mode accepts only VFIO_NOIOMMU_IOMMU (and type1 extensions read 0)', () => {
    const h = new Harness();
    h.ctx.compatSetNoIommu();
    assert.equal(h.kernel.ioctl(h.fd, VFIO_CHECK_EXTENSION.number, VFIO_TYPE1v2_IOMMU), 0);
    assert.equal(h.kernel.ioctl(h.fd, VFIO_SET_IOMMU.number, VFIO_NOIOMMU_IOMMU), 0);
    expectErrno('EINVAL', () => h.kernel.ioctl(h.fd, VFIO_SET_IOMMU.number, VFIO_TYPE1v2_IOMMU));
    expectErrno('EINVAL', () => h.ctx.compatIoasCreate());
  });

  it('iommufd_vfio_map_dma / unmap_dma: fixed IOVA maps on the compat IOAS; UNMAP reports the size', () => {
    const { h, ioas, mapDma, unmapDma } = compat();
    const m = h.anon(1n * MiB);
    mapDma(m.address, 0x10_0000n, 64n * 1024n);
    assert.equal(h.ctx.getIoas(ioas).iopt.areas.size, 1);
    expectErrno('EEXIST', () => mapDma(m.address, 0x10_0000n, 4096n));
    expectErrno('EINVAL', () => mapDma(m.address, 0x20_0000n, 4096n, 0x10));
    assert.equal(unmapDma(0x10_0000n, 64n * 1024n), 64n * 1024n);
  });

  it('iommufd_vfio_unmap_dma: VFIO_DMA_UNMAP_FLAG_ALL needs iova and size 0; a cut through a mapping → ENOENT', () => {
    const { h, mapDma, unmapDma } = compat();
    const m = h.anon(1n * MiB);
    mapDma(m.address, 0x10_0000n, 0x2000n);
    expectErrno('ENOENT', () => unmapDma(0x10_0000n, 0x1000n));
    expectErrno('EINVAL', () => unmapDma(0x10_0000n, 0x1000n, VFIO_DMA_UNMAP_FLAG_ALL));
    assert.equal(unmapDma(0n, 0n, VFIO_DMA_UNMAP_FLAG_ALL), 0x2000n);
  });

  it('type1 (not v2) disables huge pages so unmap may cut mappings (iopt_cut_iova)', () => {
    const { h, mapDma, unmapDma } = compat();
    assert.equal(h.kernel.ioctl(h.fd, VFIO_SET_IOMMU.number, VFIO_TYPE1_IOMMU), 0);
    const m = h.anon(1n * MiB);
    mapDma(m.address, 0x10_0000n, 0x4000n);
    assert.equal(unmapDma(0x10_1000n, 0x1000n), 0x1000n);
    assert.equal(h.ctx.getIoas(h.ctx.compatIoasId()).iopt.areas.size, 2);
  });

  it('iommufd_vfio_iommu_get_info: page sizes, DMA_AVAIL and IOVA_RANGE caps, argsz raised when too small', () => {
    const { h } = compat();
    const small = VfioIommuType1Info.encode({ argsz: VfioIommuType1Info.size });
    h.kernel.ioctl(h.fd, VFIO_IOMMU_GET_INFO.number, small);
    const info = VfioIommuType1Info.decode(small);
    assert.equal(info.flags, VFIO_IOMMU_INFO_PGSIZES | VFIO_IOMMU_INFO_CAPS);
    assert.equal(info.cap_offset, 0);
    assert.equal(info.iova_pgsizes, (U64_MAX & ~0xfffn) | 0x1000n);
    const full = Buffer.alloc(info.argsz);
    VfioIommuType1Info.encode({ argsz: info.argsz }, full);
    h.kernel.ioctl(h.fd, VFIO_IOMMU_GET_INFO.number, full);
    assert.equal(VfioIommuType1Info.get(full, 'cap_offset'), VfioIommuType1Info.size);
    const first = VfioIommuType1Info.size;
    assert.equal(full.readUInt16LE(first), VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL);
    const next = full.readUInt32LE(first + 4);
    assert.equal(full.readUInt16LE(next), VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE);
    assert.equal(full.readUInt32LE(next + 8), 1);
    assert.deepEqual(VfioIovaRange.decode(full, next + 16), { start: 0n, end: U64_MAX });
  });

  it('/dev/vfio/vfio comes from iommufd with IOMMUFD_VFIO_CONTAINER and uses mm (VFIO) RLIMIT accounting', () => {
    const base = profiles['linux-7.3-noiommu'];
    const k = createModelKernel({ ...base, config: { ...base.config, VFIO_CONTAINER: false, IOMMUFD_VFIO_CONTAINER: true } });
    const fd = k.open('/dev/vfio/vfio', O_RDWR);
    assert.equal(k.iommufdOf(fd).accountMode, 'mm');
    assert.equal(k.ioctl(fd, VFIO_GET_API_VERSION.number, null), 0);
  });
});
