/**
 * The kernel's vfio_dma_mapping_test in every IOMMU mode: dma_map_unmap of a page, a whole 2 MiB
 * and a whole 1 GiB huge page at an IOVA aligned to its size (skipped, with the reason, when the
 * machine has no such huge page), and map_limit at the top of the attached aperture (unmap_range,
 * unmap_all, overflow). UNMAP's returned size is checked everywhere; a noiommu container answers
 * every DMA ioctl with ENOTTY (its driver has only CHECK_EXTENSION).
 * Sources: vfio_iommu_type1.c (vfio_dma_do_map, vfio_dma_do_unmap), vfio_compat.c
 * (iommufd_vfio_map_dma, iommufd_vfio_unmap_dma), ioas.c, vfio/container.c (the noiommu driver).
 */
import type { ConformanceCase } from '../case';
import { U64_MAX } from '../../uapi/codec';
import { casesOn, forEachVariant, type Variant } from '../fixture';
import { inIommuMode, IOMMU_MODES, modeId, type IommuModeFixture, type IommuModeRow } from '../iommu-modes';
import type { CaseContext } from '../context';

interface BufferKind extends Variant {
  /** The kernel variant's name part. */
  readonly name: 'anonymous' | 'anonymous-hugetlb-2mb' | 'anonymous-hugetlb-1gb';
  /** Null: one base page. */
  readonly hugePage: bigint | null;
}

const BUFFERS: readonly BufferKind[] = [
  { name: 'anonymous', hugePage: null },
  { name: 'anonymous-hugetlb-2mb', hugePage: 2n << 20n },
  { name: 'anonymous-hugetlb-1gb', hugePage: 1n << 30n },
];

/** The mode's answer when it has no DMA ioctls (a noiommu container); true when the case is done. */
function noDma(t: CaseContext, f: IommuModeFixture, vaddr: bigint, iova: bigint, size: bigint): boolean {
  if (f.row.dma !== 'none') return false;
  t.expectErrno('VFIO_IOMMU_MAP_DMA on a noiommu container', () => f.map(vaddr, iova, size), 'ENOTTY');
  t.expectErrno('VFIO_IOMMU_UNMAP_DMA on a noiommu container', () => f.unmap(iova, size), 'ENOTTY');
  return true;
}

/** The first IOVA aligned to `size` (and not 0) with `size` bytes usable from there. */
function alignedIova(t: CaseContext, f: IommuModeFixture, size: bigint): bigint {
  for (const r of t.ok('the usable IOVA ranges', () => f.iovaRanges())) {
    const from = r.start > size ? r.start : size;
    const iova = ((from + size - 1n) / size) * size;
    if (iova + size - 1n <= r.last) return iova;
  }
  return t.fail(`no usable IOVA range holds ${size} bytes aligned to their size`);
}

/** The last page of the last usable range, after checking the ranges are well formed. */
function lastPage(t: CaseContext, f: IommuModeFixture): bigint {
  const ranges = t.ok('the usable IOVA ranges', () => f.iovaRanges());
  t.check(ranges.length > 0, 'at least one usable IOVA range is reported');
  ranges.forEach((r, i) => {
    t.check(r.start <= r.last, `range ${i} 0x${r.start.toString(16)}..0x${r.last.toString(16)} is not empty`);
    if (i > 0) t.check(ranges[i - 1]!.last < r.start, `range ${i} starts after range ${i - 1}`);
  });
  return ranges[ranges.length - 1]!.last & ~(t.page - 1n);
}

function dmaMapUnmap(row: IommuModeRow, buffer: BufferKind): ConformanceCase {
  const what = buffer.hugePage === null ? 'a page' : `a whole ${buffer.hugePage >> 20n} MiB huge page`;
  return casesOn(inIommuMode(row)).test(
    `dma-mapping.${modeId(row)}.${buffer.name}.dma-map-unmap`,
    `${row.name}: ${what} maps at an IOVA aligned to its size, and unmapping it reports its size`,
    (t, f) => {
      const size = buffer.hugePage ?? t.page;
      const memory = t.anonymousMemory(size, buffer.hugePage === null ? {} : { hugetlb: true, hugePageSize: buffer.hugePage });
      if (noDma(t, f, memory.address, size, size)) return;
      const iova = alignedIova(t, f, size);
      t.ok(`map ${size} bytes at IOVA 0x${iova.toString(16)}`, () => f.map(memory.address, iova, size));
      t.equal(
        t.ok('unmap it', () => f.unmap(iova, size)),
        size,
        'bytes unmapped',
      );
    },
  );
}

function mapLimit(row: IommuModeRow): ConformanceCase[] {
  const limit = casesOn(inIommuMode(row));
  const prefix = `dma-mapping.${modeId(row)}.map-limit`;
  return [
    limit.test(`${prefix}.unmap-range`, `${row.name}: the last page of the aperture maps, and unmapping it reports one page`, (t, f) => {
      const memory = t.anonymousMemory(2n * t.page);
      if (noDma(t, f, memory.address, U64_MAX & ~(t.page - 1n), t.page)) return;
      const iova = lastPage(t, f);
      t.ok(`map the page at 0x${iova.toString(16)}`, () => f.map(memory.address, iova, t.page));
      t.equal(
        t.ok('unmap it', () => f.unmap(iova, t.page)),
        t.page,
        'bytes unmapped',
      );
    }),
    limit.test(`${prefix}.unmap-all`, `${row.name}: unmap-all removes the last page of the aperture and reports one page`, (t, f) => {
      const memory = t.anonymousMemory(2n * t.page);
      if (noDma(t, f, memory.address, U64_MAX & ~(t.page - 1n), t.page)) return;
      const iova = lastPage(t, f);
      t.ok(`map the page at 0x${iova.toString(16)}`, () => f.map(memory.address, iova, t.page));
      if (f.row.dma === 'type1') {
        // VFIO_DMA_UNMAP_FLAG_ALL takes no range: iova and size must be 0.
        t.expectErrno('UNMAP_DMA FLAG_ALL with a size', () => f.unmapWithFlags(iova, t.page, true), 'EINVAL');
      }
      t.equal(
        t.ok('unmap all', () => f.unmapAll()),
        t.page,
        'bytes unmapped',
      );
      t.equal(
        t.ok('unmap all again', () => f.unmapAll()),
        0n,
        'bytes unmapped from an empty space',
      );
    }),
    limit.test(
      `${prefix}.overflow`,
      `${row.name}: two pages from the last page of the IOVA space wrap past 2^64: map and unmap are EOVERFLOW`,
      (t, f) => {
        const memory = t.anonymousMemory(2n * t.page);
        const iova = U64_MAX & ~(t.page - 1n);
        if (noDma(t, f, memory.address, iova, 2n * t.page)) return;
        t.expectErrno('map two pages at the last page', () => f.map(memory.address, iova, 2n * t.page), 'EOVERFLOW');
        t.expectErrno('unmap two pages at the last page', () => f.unmap(iova, 2n * t.page), 'EOVERFLOW');
      },
    ),
  ];
}

export const dmaMappingCases: ConformanceCase[] = [
  ...BUFFERS.flatMap((buffer) => forEachVariant(IOMMU_MODES, (row) => dmaMapUnmap(row, buffer))),
  ...IOMMU_MODES.flatMap(mapLimit),
];
