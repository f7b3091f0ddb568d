/**
 * The kernel's vfio_dma_mapping_mmio_test in every IOMMU mode: the device's largest mmap-able
 * read/write BAR, mapped into the device's own address space as DMA memory, whole and one page of
 * it. A type1 container follows the BAR's PFNs (vaddr_get_pfns on a VM_PFNMAP vma) and maps it;
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

function mapBarCase(row: IommuModeRow, part: 'full' | 'partial'): ConformanceCase {
  const what = part === 'full' ? 'a whole BAR' : 'one page of a BAR';
  const outcome = barMapOutcome(row);
  return casesOn(inIommuMode(row)).test(
    `mmio-dma.${modeId(row)}.map-${part}-bar`,
    `${row.name}: ${what} mapped as DMA memory: ${outcome === 'ok' ? 'maps and unmaps' : outcome}`,
    (t, f) => {
      const bar = largestBar(t, f);
      if (part === 'partial' && bar.size < 2n * t.page) t.skip(`BAR ${bar.index} is too small (0x${bar.size.toString(16)} bytes)`);
      const size = part === 'full' ? bar.size : t.page;
      const mapping = t.mapRegion(f.deviceFd, bar.size, bar.offset);
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
 * The type1 container rows are not run yet: the lab's kernel maps the BAR there (vfio_iommu_type1
 * follows the PFNs), but the model's type1 runs on iommufd's compat code, which pins pages and
 * answers EFAULT. They join once the model follows a VM_PFNMAP range for a type1 container.
 */
const MODEL_FOLLOWS_PFNMAP: ReadonlySet<IommuModeRow['name']> = new Set([]);

export const mmioDmaCases: ConformanceCase[] = (['full', 'partial'] as const).flatMap((part) =>
  IOMMU_MODES.filter((row) => barMapOutcome(row) !== 'ok' || MODEL_FOLLOWS_PFNMAP.has(row.name)).map((row) => mapBarCase(row, part)),
);
