/**
 * The kernel's vfio_dma_mapping_mmio_test in every IOMMU mode: the device's largest mmap-able
 * read/write BAR, mapped into the device's own address space as DMA memory: whole, one page of it,
 * and misaligned (the whole BAR, up to 1 GiB, at a VA one page past a 1 GiB boundary, so no huge
 * page can map it on either side). A type1 container follows the BAR's PFNs (vaddr_get_pfns on a VM_PFNMAP vma) and maps it;
 * iommufd, native or standing in for the container, pins pages and refuses the PFN map; a noiommu
 * container has no DMA ioctls (ENOTTY).
 * Sources: vfio_iommu_type1.c (vaddr_get_pfns, follow_fault_pfn), iommufd/pages.c (pfn_reader_user_pin).
 */
import type { ConformanceCase } from '../case';
import type { CaseContext } from '../context';
import * as V from '../../uapi/vfio';
import { casesOn } from '../fixture';
import { inIommuMode, IOMMU_MODES, modeId, type IommuModeFixture, type IommuModeRow } from '../iommu-modes';
import { regionInfo } from '../steps';
import type { Outcome } from '../types';

const PCI_STD_NUM_BARS = 6;
const NEEDED = V.VFIO_REGION_INFO_FLAG_READ | V.VFIO_REGION_INFO_FLAG_WRITE | V.VFIO_REGION_INFO_FLAG_MMAP;

/** The largest BAR that mmaps and allows read and write (their largest_mapped_bar); skips without one. */
function largestBar(t: CaseContext, f: IommuModeFixture): { offset: bigint; size: bigint; index: number } {
  let best: { offset: bigint; size: bigint; index: number } | null = null;
  for (let i = 0; i < PCI_STD_NUM_BARS; i++) {
    const info = regionInfo(t, f.deviceFd, i);
    if ((info.flags & NEEDED) === NEEDED && info.size > (best?.size ?? 0n)) best = { offset: info.offset, size: info.size, index: i };
  }
  return best ?? t.skip('the device has no mmap-able read/write BAR');
}

/** What mapping BAR memory as DMA memory does in each mode. */
function barMapOutcome(row: IommuModeRow): Outcome {
  if (row.dma === 'none') return 'ENOTTY';
  return row.name === 'vfio_type1_iommu' || row.name === 'vfio_type1v2_iommu' ? 'ok' : 'EFAULT';
}

type BarPart = 'full' | 'partial' | 'misaligned';

const WHAT: Record<BarPart, string> = {
  full: 'a whole BAR',
  partial: 'one page of a BAR',
  misaligned: "a BAR mmap'ed one page past a 1 GiB boundary",
};

/** Their map_bar_misaligned bounds the size to 1 GiB to bound the test's time. */
const SZ_1G = 1n << 30n;

function mapBarCase(row: IommuModeRow, part: BarPart): ConformanceCase {
  const outcome = barMapOutcome(row);
  return casesOn(inIommuMode(row)).test(
    `mmio-dma.${modeId(row)}.map-${part === 'misaligned' ? 'misaligned' : part}-bar`,
    `${row.name}: ${WHAT[part]} mapped as DMA memory: ${outcome === 'ok' ? 'maps and unmaps' : outcome}`,
    (t, f) => {
      const bar = largestBar(t, f);
      if (part === 'partial' && bar.size < 2n * t.page) t.skip(`BAR ${bar.index} is too small (0x${bar.size.toString(16)} bytes)`);
      // misaligned: their case mmaps the BAR (bounded to 1 GiB) at a VA one page past a 1 GiB
      // boundary (mmap_reserve + MAP_FIXED); mmap's placement does the same inside a reservation
      // of its own. vfio-pci's huge fault then cannot use a PMD or PUD, and type1's
      // follow_pfnmap_start reports one page per PFN (addr_mask), which it must still map.
      const mapped = part === 'misaligned' ? (bar.size < SZ_1G ? bar.size : SZ_1G) : bar.size;
      const size = part === 'partial' ? t.page : mapped;
      const placement = part === 'misaligned' ? { align: SZ_1G, skew: t.page } : undefined;
      const mapping = t.mapRegion(f.deviceFd, mapped, bar.offset, placement);
      if (placement) t.equal(mapping.address % placement.align, placement.skew, "the BAR mapping's offset from a 1 GiB boundary");
      // An IOVA aligned to the BAR's size, well inside every aperture (below the MSI window).
      const iova = bar.size > 0x100000n ? bar.size : 0x100000n;
      t.expect(`map ${size} bytes of BAR ${bar.index} at IOVA 0x${iova.toString(16)}`, () => f.map(mapping.address, iova, size), outcome);
      if (outcome === 'ok')
        t.equal(
          t.ok('unmap it', () => f.unmap(iova, size)),
          size,
          'bytes unmapped',
        );
    },
  );
}

/**
 * Every mode, with its answer: vfio_iommu_type1 (v1 and v2) maps BAR memory by following the
 * VM_PFNMAP vma's PFNs; iommufd, native or as the compat container, pins user pages and
 * pin_user_pages refuses a VM_IO|VM_PFNMAP vma with EFAULT; a noiommu group's container has no
 * DMA ioctls (ENOTTY) and the noiommu cdev's IOAS pins like iommufd (EFAULT).
 */
export const mmioDmaCases: ConformanceCase[] = (['full', 'partial', 'misaligned'] as const).flatMap((part) =>
  IOMMU_MODES.map((row) => mapBarCase(row, part)),
);
