/**
 * BAR memory as DMA memory on the booted model (vfio_dma_mapping_mmio_test's subject), at the
 * syscall boundary: a type1 container maps an mmap'ed BAR by following its VM_PFNMAP PFNs
 * (vfio_iommu_type1.c vaddr_get_pfns → follow_fault_pfn), without pinning or RLIMIT_MEMLOCK
 * charge, and EFAULTs where follow_fault_pfn does (the mapping lacks the access asked for, the
 * BAR's fault would raise SIGBUS); iommufd — native or as the compat container — pins pages and
 * answers EFAULT (pin_user_pages refuses VM_IO|VM_PFNMAP).
 */
import assert from 'node:assert/strict';
import { createModelKernel, type ModelKernel } from '../../../lib/model';
import {
  VfioIommuType1DmaMap,
  VfioIommuType1DmaUnmap,
  VFIO_DMA_MAP_FLAG_READ,
  VFIO_DMA_MAP_FLAG_WRITE,
  VFIO_GROUP_GET_DEVICE_FD,
  VFIO_GROUP_SET_CONTAINER,
  VFIO_IOMMU_MAP_DMA,
  VFIO_IOMMU_UNMAP_DMA,
  VFIO_SET_IOMMU,
  VFIO_TYPE1_IOMMU,
  VFIO_TYPE1v2_IOMMU,
} from '../../../lib/uapi/vfio';
import { PCI_COMMAND, PCI_COMMAND_MASTER, PCI_COMMAND_MEMORY } from '../../../lib/uapi/pci';
import { MAP_ANONYMOUS, MAP_PRIVATE, MAP_SHARED, O_RDWR, PROT_READ, PROT_WRITE } from '../../../lib/sys/constants';
import { isVfioError } from '../../../lib/sys/errors';

const BDF = '0000:00:03.0';
const BAR0_SIZE = 1n << 20n;
const CONFIG_REGION = 7n << 40n;
const IOVA = 0x10_0000n;
const RW = VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE;

function fdArg(fd: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeInt32LE(fd);
  return b;
}

function errnoOf(call: () => unknown): string {
  try {
    call();
  } catch (e) {
    if (isVfioError(e)) return e.code;
    throw e;
  }
  return 'ok';
}

/** Group 3 of linux-7.3-iommu in a container set to `type` (or the iommufd given as container), with edu's memory decoding on. */
function setUp(container: 'type1' | 'type1v2' | 'iommufd'): { k: ModelKernel; c: number; dev: number } {
  const k = createModelKernel('linux-7.3-iommu');
  const c = k.open(container === 'iommufd' ? '/dev/iommu' : '/dev/vfio/vfio', O_RDWR);
  const group = k.open('/dev/vfio/3', O_RDWR);
  k.ioctl(group, VFIO_GROUP_SET_CONTAINER.number, fdArg(c));
  k.ioctl(c, VFIO_SET_IOMMU.number, container === 'type1' ? VFIO_TYPE1_IOMMU : VFIO_TYPE1v2_IOMMU);
  const dev = k.ioctl(group, VFIO_GROUP_GET_DEVICE_FD.number, Buffer.from(`${BDF}\0`));
  setCommand(k, dev, PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER);
  return { k, c, dev };
}

function setCommand(k: ModelKernel, dev: number, value: number): void {
  const cmd = Buffer.alloc(2);
  cmd.writeUInt16LE(value);
  k.pwrite(dev, cmd, CONFIG_REGION + BigInt(PCI_COMMAND));
}

const mapDma = (k: ModelKernel, c: number, vaddr: bigint, size: bigint, flags = RW) =>
  k.ioctl(c, VFIO_IOMMU_MAP_DMA.number, VfioIommuType1DmaMap.encode({ argsz: VfioIommuType1DmaMap.size, flags, vaddr, iova: IOVA, size }));

function unmapDma(k: ModelKernel, c: number, size: bigint): bigint {
  const arg = VfioIommuType1DmaUnmap.encode({ argsz: VfioIommuType1DmaUnmap.size, iova: IOVA, size });
  k.ioctl(c, VFIO_IOMMU_UNMAP_DMA.number, arg);
  return VfioIommuType1DmaUnmap.get(arg, 'size');
}

describe('model: BAR memory as DMA memory (VM_PFNMAP) in each container', () => {
  for (const type of ['type1', 'type1v2'] as const) {
    it(`${type}: the whole BAR, one page of it and a range from its second page map without pinning or charge; UNMAP_DMA returns the size`, () => {
      const { k, c, dev } = setUp(type);
      const bar = k.mmap(dev, BAR0_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, 0n);
      const pinned = k.locked.pinnedPages;
      const mmLocked = k.locked.mmLockedPages;
      for (const size of [BAR0_SIZE, 4096n]) {
        mapDma(k, c, bar.address, size);
        assert.equal(k.locked.pinnedPages, pinned, 'I/O memory is not pinned');
        assert.equal(k.locked.mmLockedPages, mmLocked, 'nor charged to RLIMIT_MEMLOCK');
        assert.equal(unmapDma(k, c, size), size);
      }
      const tail = k.mmap(dev, BAR0_SIZE - 4096n, PROT_READ | PROT_WRITE, MAP_SHARED, 4096n);
      mapDma(k, c, tail.address, BAR0_SIZE - 4096n);
      assert.equal(unmapDma(k, c, BAR0_SIZE - 4096n), BAR0_SIZE - 4096n);
    });
  }

  it('type1v2: RAM is pinned and charged as usual, BAR pages in the same container are not', () => {
    const { k, c, dev } = setUp('type1v2');
    const bar = k.mmap(dev, BAR0_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, 0n);
    const ram = k.mmap(-1, 8192n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, 0n);
    const pinned = k.locked.pinnedPages;
    mapDma(k, c, ram.address, 8192n);
    assert.equal(k.locked.pinnedPages, pinned + 2);
    assert.equal(unmapDma(k, c, 8192n), 8192n);
    assert.equal(k.locked.pinnedPages, pinned);
    mapDma(k, c, bar.address, 8192n);
    assert.equal(k.locked.pinnedPages, pinned);
  });

  it('type1v2: EFAULT for write access to a read-only BAR mapping, and while memory decoding is off (the fault would SIGBUS)', () => {
    const { k, c, dev } = setUp('type1v2');
    const ro = k.mmap(dev, BAR0_SIZE, PROT_READ, MAP_SHARED, 0n);
    assert.equal(
      errnoOf(() => mapDma(k, c, ro.address, BAR0_SIZE)),
      'EFAULT',
    );
    mapDma(k, c, ro.address, BAR0_SIZE, VFIO_DMA_MAP_FLAG_READ);
    assert.equal(unmapDma(k, c, BAR0_SIZE), BAR0_SIZE);
    const rw = k.mmap(dev, BAR0_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, 0n);
    setCommand(k, dev, PCI_COMMAND_MASTER);
    assert.equal(
      errnoOf(() => mapDma(k, c, rw.address, BAR0_SIZE)),
      'EFAULT',
    );
    setCommand(k, dev, PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER);
    mapDma(k, c, rw.address, BAR0_SIZE);
  });

  it('iommufd as the container (iommufd_compat): EFAULT, nothing mapped', () => {
    const { k, c, dev } = setUp('iommufd');
    const bar = k.mmap(dev, BAR0_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, 0n);
    assert.equal(
      errnoOf(() => mapDma(k, c, bar.address, BAR0_SIZE)),
      'EFAULT',
    );
    assert.equal(
      errnoOf(() => unmapDma(k, c, BAR0_SIZE)),
      'ok',
    );
    assert.equal(unmapDma(k, c, BAR0_SIZE), 0n, 'nothing was mapped');
  });
});
