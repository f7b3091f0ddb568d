/**
 * IOMMU_IOAS_MAP and IOMMU_IOAS_UNMAP: flags, u64 boundaries of IOVA and length, alignment before
 * and after a device attaches, overlap, partial and total unmap.
 * Sources: ioas.c (iommufd_ioas_map, iommufd_ioas_unmap), io_pagetable.c (iopt_check_iova,
 * iopt_alloc_area_pages, iopt_unmap_iova_range), pages.c (iopt_alloc_user_pages, iopt_alloc_pages).
 */
import { defineCase, type ConformanceCase } from '../case';
import type { CaseContext } from '../context';
import { U64_MAX } from '../../uapi/codec';
import * as I from '../../uapi/iommufd';
import { rawIoctl } from '../raw-ioctl';
import { MAP_ANONYMOUS, MAP_PRIVATE, PROT_READ } from '../../sys/constants';
import { attachCall, ioasAlloc, map, MAP_RW, mapCall, openAttached, openBound, unmapAllCall, unmapCall } from '../steps';
import type { Expected } from '../types';

const TWO_63 = 1n << 63n;

/** An iommufd with one empty IOAS and one page of memory to map. */
function emptyIoas(t: CaseContext): { fd: number; ioasId: number; va: bigint } {
  const fd = t.openIommufd();
  const ioasId = ioasAlloc(t, fd);
  return { fd, ioasId, va: t.anonymousMemory(t.page * 2n).address };
}

interface IovaBoundary {
  readonly name: string;
  readonly iova: (page: bigint) => bigint;
  readonly length: (page: bigint) => bigint;
  /** Outcome with no device attached (iova_alignment 1, no reserved ranges). */
  readonly empty: Expected;
}

/** Fixed-IOVA maps at the u64 boundaries, on an IOAS no device is attached to. */
const IOVA_BOUNDARIES: IovaBoundary[] = [
  { name: 'iova-0', iova: () => 0n, length: (p) => p, empty: 'ok' },
  // With no domain the IOAS has no alignment rule (iova_alignment starts at 1).
  { name: 'iova-1', iova: () => 1n, length: (p) => p, empty: 'ok' },
  { name: 'iova-page-minus-1', iova: (p) => p - 1n, length: (p) => p, empty: 'ok' },
  { name: 'iova-2-pow-63', iova: () => TWO_63, length: (p) => p, empty: 'ok' },
  // iova + length - 1 overflows in iopt_check_iova.
  { name: 'iova-2-pow-64-minus-2', iova: () => U64_MAX - 1n, length: (p) => p, empty: 'EOVERFLOW' },
  // iommufd_ioas_map: iova >= ULONG_MAX.
  { name: 'iova-2-pow-64-minus-1', iova: () => U64_MAX, length: (p) => p, empty: 'EOVERFLOW' },
  { name: 'last-page', iova: (p) => U64_MAX - p + 1n, length: (p) => p, empty: 'ok' },
  { name: 'wrap-around', iova: (p) => U64_MAX - p + 1n, length: (p) => 2n * p, empty: 'EOVERFLOW' },
];

interface LengthBoundary {
  readonly name: string;
  readonly length: (page: bigint) => bigint;
  readonly empty: Expected;
}

const LENGTH_BOUNDARIES: LengthBoundary[] = [
  // iopt_alloc_pages: length 0 → EINVAL.
  { name: 'length-0', length: () => 0n, empty: 'EINVAL' },
  { name: 'length-1', length: () => 1n, empty: 'ok' },
  { name: 'length-page-minus-1', length: (p) => p - 1n, empty: 'ok' },
  // user_va + length overflows the address space: iopt_alloc_user_pages → EOVERFLOW.
  { name: 'length-2-pow-64-minus-2', length: () => U64_MAX - 1n, empty: 'EOVERFLOW' },
  // iommufd_ioas_map: length >= ULONG_MAX.
  { name: 'length-2-pow-64-minus-1', length: () => U64_MAX, empty: 'EOVERFLOW' },
];

export const mapUnmapCases: ConformanceCase[] = [
  ...IOVA_BOUNDARIES.map((b) => defineCase({
    id: `map.boundary.${b.name}`,
    title: `fixed map at IOVA ${b.name.replace(/-/g, ' ')} of an IOAS with no device`,
    run(t) {
      const { fd, ioasId, va } = emptyIoas(t);
      const iova = b.iova(t.page);
      const got = t.expect(`map ${b.length(t.page)} bytes at 0x${iova.toString(16)}`,
        mapCall(t, fd, ioasId, { userVa: va, length: b.length(t.page), iova }), b.empty);
      if (got !== undefined) t.equal(got, iova, 'IOVA written back');
    },
  })),
  ...LENGTH_BOUNDARIES.map((b) => defineCase({
    id: `map.boundary.${b.name}`,
    title: `fixed map with ${b.name.replace(/-/g, ' ')} of an IOAS with no device`,
    run(t) {
      const { fd, ioasId, va } = emptyIoas(t);
      t.expect(`map length 0x${b.length(t.page).toString(16)}`, mapCall(t, fd, ioasId, { userVa: va, length: b.length(t.page), iova: 0x100000n }), b.empty);
    },
  })),
  defineCase({
    id: 'map.lazy-without-domain',
    title: 'with no device attached, mapping an address range nothing backs succeeds (pages are pinned only for a domain)',
    run(t) {
      const { fd, ioasId } = emptyIoas(t);
      // iopt_map_pages only fills domains; with none, the area just records the user range.
      t.expect('map 2^63 bytes of unbacked address space', mapCall(t, fd, ioasId, { userVa: 0x10000n, length: TWO_63, iova: 0x100000n }), 'ok');
    },
  }),
  defineCase({
    id: 'map.unbacked-with-domain',
    title: 'with a device attached, mapping an address range nothing backs fails to pin: EFAULT',
    needs: ['device'],
    run(t) {
      const dev = openAttached(t);
      t.expectErrno('map one unbacked page', mapCall(t, dev.iommufd, dev.ioasId, { userVa: 0x10000n, length: t.page, iova: 0x100000n }), 'EFAULT');
    },
  }),
  defineCase({
    id: 'map.attached.alignment',
    title: 'after attach the IOAS takes the domain\'s page alignment: unaligned IOVA or length is EINVAL',
    needs: ['device'],
    run(t) {
      const dev = openAttached(t);
      const va = t.anonymousMemory(t.page * 2n).address;
      t.expectErrno('map at IOVA 0x100001', mapCall(t, dev.iommufd, dev.ioasId, { userVa: va, length: t.page, iova: 0x100001n }), 'EINVAL');
      t.expectErrno('map length PAGE-1', mapCall(t, dev.iommufd, dev.ioasId, { userVa: va, length: t.page - 1n, iova: 0x100000n }), 'EINVAL');
      t.expectErrno('map from an unaligned user address', mapCall(t, dev.iommufd, dev.ioasId, { userVa: va + 0x10n, length: t.page, iova: 0x100000n }), 'EINVAL');
      t.expect('map aligned', mapCall(t, dev.iommufd, dev.ioasId, { userVa: va, length: t.page, iova: 0x100000n }), 'ok');
    },
  }),
  defineCase({
    id: 'map.attached.high-iova',
    title: 'after attach, an IOVA at 2^63: noiommu accepts it, an IOMMU reserves what lies past its aperture (EINVAL)',
    needs: ['device'],
    run(t) {
      const dev = openAttached(t);
      const va = t.anonymousMemory(t.page).address;
      t.expect('map at 2^63', mapCall(t, dev.iommufd, dev.ioasId, { userVa: va, length: t.page, iova: TWO_63 }), { noiommu: 'ok', iommu: 'EINVAL' });
    },
  }),
  defineCase({
    id: 'map.attach-with-unaligned-area',
    title: 'attaching a device to an IOAS holding an area that is not page aligned is EADDRINUSE',
    needs: ['device'],
    run(t) {
      const dev = openBound(t);
      const ioasId = ioasAlloc(t, dev.iommufd);
      const va = t.anonymousMemory(t.page).address;
      map(t, dev.iommufd, ioasId, { userVa: va, length: 0x100n, iova: 0x100010n });
      // iopt_table_add_domain → iopt_check_iova_alignment: an existing area breaks the new alignment.
      t.expectErrno('attach', attachCall(t, dev.deviceFd, ioasId), 'EADDRINUSE');
      t.ok('unmap the unaligned area', unmapCall(t, dev.iommufd, ioasId, 0x100010n, 0x100n));
      t.expect('attach again', attachCall(t, dev.deviceFd, ioasId), 'ok');
    },
  }),
  defineCase({
    id: 'map.flags.unknown',
    title: 'IOAS_MAP with an unknown flag bit is EOPNOTSUPP',
    run(t) {
      const { fd, ioasId, va } = emptyIoas(t);
      t.expectErrno('map flags |= 1<<3', mapCall(t, fd, ioasId, { userVa: va, length: t.page, iova: 0x100000n, flags: MAP_RW | (1 << 3) }), 'EOPNOTSUPP');
    },
  }),
  defineCase({
    id: 'map.flags.no-access',
    title: 'IOAS_MAP with neither READABLE nor WRITEABLE is EINVAL',
    run(t) {
      const { fd, ioasId, va } = emptyIoas(t);
      t.expectErrno('map flags FIXED only', mapCall(t, fd, ioasId, { userVa: va, length: t.page, iova: 0x100000n, flags: 0 }), 'EINVAL');
    },
  }),
  defineCase({
    id: 'map.nonzero-reserved',
    title: 'IOAS_MAP with non-zero __reserved is EOPNOTSUPP',
    run(t) {
      const { fd, ioasId, va } = emptyIoas(t);
      t.expectErrno('map __reserved 1', () => rawIoctl(t.kernel, fd, I.IOMMU_IOAS_MAP, I.IommuIoasMap, {
        flags: MAP_RW | I.IOMMU_IOAS_MAP_FIXED_IOVA, ioas_id: ioasId, __reserved: 1, user_va: va, length: t.page, iova: 0x100000n,
      }), 'EOPNOTSUPP');
    },
  }),
  defineCase({
    id: 'map.order.flags-before-overflow',
    title: 'IOAS_MAP checks flags before IOVA overflow, and overflow before the IOAS id',
    run(t) {
      const fd = t.openIommufd();
      t.expectErrno('unknown flag, IOVA 2^64-1, no IOAS', () => rawIoctl(t.kernel, fd, I.IOMMU_IOAS_MAP, I.IommuIoasMap, {
        flags: MAP_RW | (1 << 3), ioas_id: 99, length: 4096n, iova: U64_MAX,
      }), 'EOPNOTSUPP');
      t.expectErrno('IOVA 2^64-1, no access flags, no IOAS', () => rawIoctl(t.kernel, fd, I.IOMMU_IOAS_MAP, I.IommuIoasMap, {
        flags: 0, ioas_id: 99, length: 4096n, iova: U64_MAX,
      }), 'EOVERFLOW');
      t.expectErrno('no access flags, no IOAS', () => rawIoctl(t.kernel, fd, I.IOMMU_IOAS_MAP, I.IommuIoasMap, {
        flags: 0, ioas_id: 99, length: 4096n,
      }), 'EINVAL');
    },
  }),
  defineCase({
    id: 'map.missing-ioas',
    title: 'IOAS_MAP into an id that does not exist is ENOENT',
    run(t) {
      const { fd, va } = emptyIoas(t);
      t.expectErrno('map into IOAS 99', mapCall(t, fd, 99, { userVa: va, length: t.page, iova: 0x100000n }), 'ENOENT');
    },
  }),
  defineCase({
    id: 'map.destroyed-ioas',
    title: 'IOAS_MAP into a destroyed IOAS is ENOENT',
    run(t) {
      const { fd, ioasId, va } = emptyIoas(t);
      t.ok('destroy', () => rawIoctl(t.kernel, fd, I.IOMMU_DESTROY, I.IommuDestroy, { id: ioasId }));
      t.expectErrno('map into the destroyed IOAS', mapCall(t, fd, ioasId, { userVa: va, length: t.page, iova: 0x100000n }), 'ENOENT');
    },
  }),
  defineCase({
    id: 'map.overlap',
    title: 'a fixed map overlapping an existing area is EEXIST, one just after it is fine',
    run(t) {
      const { fd, ioasId, va } = emptyIoas(t);
      map(t, fd, ioasId, { userVa: va, length: 2n * t.page, iova: 0x100000n });
      t.expectErrno('map over the second page', mapCall(t, fd, ioasId, { userVa: va, length: t.page, iova: 0x100000n + t.page }), 'EEXIST');
      t.expectErrno('map straddling the start', mapCall(t, fd, ioasId, { userVa: va, length: 2n * t.page, iova: 0x100000n - t.page }), 'EEXIST');
      t.expect('map right after the area', mapCall(t, fd, ioasId, { userVa: va, length: t.page, iova: 0x100000n + 2n * t.page }), 'ok');
    },
  }),
  defineCase({
    id: 'map.same-memory-twice',
    title: 'the same user memory can be mapped at two IOVAs',
    run(t) {
      const { fd, ioasId, va } = emptyIoas(t);
      map(t, fd, ioasId, { userVa: va, length: t.page, iova: 0x100000n });
      map(t, fd, ioasId, { userVa: va, length: t.page, iova: 0x200000n });
    },
  }),
  defineCase({
    id: 'map.read-only-memory-writeable',
    title: 'mapping read-only memory WRITEABLE into an attached IOAS fails to pin: EFAULT',
    needs: ['device'],
    run(t) {
      const dev = openAttached(t);
      // A PROT_READ mapping cannot be pinned for write.
      const ro = t.kernel.mmap(-1, t.page, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, 0n);
      t.defer('munmap read-only page', () => t.kernel.munmap(ro));
      t.expectErrno('map read-only memory WRITEABLE', mapCall(t, dev.iommufd, dev.ioasId, { userVa: ro.address, length: t.page, iova: 0x100000n }), 'EFAULT');
      t.expect('map read-only memory READABLE only', mapCall(t, dev.iommufd, dev.ioasId, {
        userVa: ro.address, length: t.page, iova: 0x200000n, flags: I.IOMMU_IOAS_MAP_READABLE,
      }), 'ok');
    },
  }),
  defineCase({
    id: 'unmap.partial-area',
    title: 'unmapping part of an area (its first page, its second page) is ENOENT and leaves it mapped',
    run(t) {
      const { fd, ioasId, va } = emptyIoas(t);
      map(t, fd, ioasId, { userVa: va, length: 2n * t.page, iova: 0x100000n });
      t.expectErrno('unmap the first page', unmapCall(t, fd, ioasId, 0x100000n, t.page), 'ENOENT');
      t.expectErrno('unmap the second page', unmapCall(t, fd, ioasId, 0x100000n + t.page, t.page), 'ENOENT');
      t.expectErrno('unmap a range starting inside', unmapCall(t, fd, ioasId, 0x100000n + t.page, 4n * t.page), 'ENOENT');
      const n = t.ok('unmap the whole area', unmapCall(t, fd, ioasId, 0x100000n, 2n * t.page));
      t.equal(n, 2n * t.page, 'bytes unmapped');
    },
  }),
  defineCase({
    id: 'unmap.nothing',
    title: 'unmapping a range with no area is ENOENT',
    run(t) {
      const { fd, ioasId, va } = emptyIoas(t);
      map(t, fd, ioasId, { userVa: va, length: t.page, iova: 0x100000n });
      t.expectErrno('unmap 0x200000', unmapCall(t, fd, ioasId, 0x200000n, t.page), 'ENOENT');
    },
  }),
  defineCase({
    id: 'unmap.covering-several-areas',
    title: 'one unmap covering two whole areas and the gap between them unmaps both',
    run(t) {
      const { fd, ioasId, va } = emptyIoas(t);
      map(t, fd, ioasId, { userVa: va, length: t.page, iova: 0x100000n });
      map(t, fd, ioasId, { userVa: va, length: 2n * t.page, iova: 0x200000n });
      const n = t.ok('unmap 0x100000..0x2fffff', unmapCall(t, fd, ioasId, 0x100000n, 0x200000n));
      t.equal(n, 3n * t.page, 'bytes unmapped');
      t.expectErrno('unmap again', unmapCall(t, fd, ioasId, 0x100000n, 0x200000n), 'ENOENT');
    },
  }),
  defineCase({
    id: 'unmap.all',
    title: 'unmap-all (iova 0, length 2^64-1) removes every area and reports the bytes',
    run(t) {
      const { fd, ioasId, va } = emptyIoas(t);
      map(t, fd, ioasId, { userVa: va, length: t.page, iova: 0x100000n });
      map(t, fd, ioasId, { userVa: va, length: 2n * t.page, iova: U64_MAX - 2n * t.page + 1n });
      t.equal(t.ok('unmap all', unmapAllCall(t, fd, ioasId)), 3n * t.page, 'bytes unmapped');
      t.expect('map at 0x100000 again', mapCall(t, fd, ioasId, { userVa: va, length: t.page, iova: 0x100000n }), 'ok');
    },
  }),
  defineCase({
    id: 'unmap.all-empty',
    title: 'unmap-all on an empty IOAS succeeds with length 0',
    run(t) {
      const { fd, ioasId } = emptyIoas(t);
      t.equal(t.ok('unmap all', unmapAllCall(t, fd, ioasId)), 0n, 'bytes unmapped');
    },
  }),
  defineCase({
    id: 'unmap.length-0',
    title: 'unmap with length 0 is EINVAL',
    run(t) {
      const { fd, ioasId } = emptyIoas(t);
      t.expectErrno('unmap length 0', unmapCall(t, fd, ioasId, 0x100000n, 0n), 'EINVAL');
    },
  }),
  defineCase({
    id: 'unmap.boundaries',
    title: 'unmap: length 2^64-1 from a non-zero IOVA, IOVA 2^64-1 and wrap-around are EOVERFLOW',
    run(t) {
      const { fd, ioasId } = emptyIoas(t);
      t.expectErrno('unmap iova 1, length 2^64-1', unmapCall(t, fd, ioasId, 1n, U64_MAX), 'EOVERFLOW');
      t.expectErrno('unmap iova 2^64-1', unmapCall(t, fd, ioasId, U64_MAX, t.page), 'EOVERFLOW');
      t.expectErrno('unmap wrapping past 2^64', unmapCall(t, fd, ioasId, U64_MAX - t.page + 1n, 2n * t.page), 'EOVERFLOW');
      t.expectErrno('unmap the empty last page', unmapCall(t, fd, ioasId, U64_MAX - t.page + 1n, t.page), 'ENOENT');
    },
  }),
  defineCase({
    id: 'unmap.missing-ioas',
    title: 'unmap (even unmap-all) of an IOAS that does not exist is ENOENT',
    run(t) {
      const fd = t.openIommufd();
      t.expectErrno('unmap all of IOAS 99', unmapAllCall(t, fd, 99), 'ENOENT');
    },
  }),
];
