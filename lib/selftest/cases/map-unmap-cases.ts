/**
 * IOMMU_IOAS_MAP and IOMMU_IOAS_UNMAP: flags, u64 boundaries of IOVA and length, alignment before
 * and after a device attaches, overlap, partial and total unmap.
 * Sources: ioas.c (iommufd_ioas_map, iommufd_ioas_unmap), io_pagetable.c (iopt_check_iova,
 * iopt_alloc_area_pages, iopt_unmap_iova_range), pages.c (iopt_alloc_user_pages, iopt_alloc_pages).
 */
import type { ConformanceCase } from '../case';
import { U64_MAX } from '../../uapi/codec';
import * as I from '../../uapi/iommufd';
import { MAP_ANONYMOUS, MAP_PRIVATE, PROT_READ } from '../../sys/constants';
import { call, MAP_RW, MAP_RW_FIXED } from '../calls';
import { casesOn, forEachVariant, type Variant } from '../fixture';
import { attachedDevice, boundWithIoas, ioasWithMemory, iommufd, type IoasFixture } from '../fixtures';
import { map } from '../steps';
import type { Expected } from '../types';

const TWO_63 = 1n << 63n;

/** Unmapping everything: iova 0, length 2^64-1. */
function unmapAll(f: IoasFixture): bigint {
  return call.unmap(f, { iova: 0n, length: U64_MAX }).length;
}

interface IovaBoundary extends Variant {
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

interface LengthBoundary extends Variant {
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

const empty = casesOn(ioasWithMemory);
const attached = casesOn(attachedDevice);

export const mapUnmapCases: ConformanceCase[] = [
  ...forEachVariant(IOVA_BOUNDARIES, (b) =>
    empty.test(`map.boundary.${b.name}`, `fixed map at IOVA ${b.name.replace(/-/g, ' ')} of an IOAS with no device`, (t, f) => {
      const iova = b.iova(t.page);
      const got = t.expect(
        `map ${b.length(t.page)} bytes at 0x${iova.toString(16)}`,
        () => call.map(f, { length: b.length(t.page), iova }).iova,
        b.empty,
      );
      if (got !== undefined) t.equal(got, iova, 'IOVA written back');
    }),
  ),
  ...forEachVariant(LENGTH_BOUNDARIES, (b) =>
    empty.test(`map.boundary.${b.name}`, `fixed map with ${b.name.replace(/-/g, ' ')} of an IOAS with no device`, (t, f) => {
      t.expect(`map length 0x${b.length(t.page).toString(16)}`, () => call.map(f, { length: b.length(t.page), iova: 0x100000n }), b.empty);
    }),
  ),
  // iopt_map_pages only fills domains; with none, the area just records the user range.
  empty.expect(
    'map.lazy-without-domain',
    'with no device attached, mapping an address range nothing backs succeeds (pages are pinned only for a domain)',
    'map 2^63 bytes of unbacked address space',
    'ok',
    (f) => call.map(f, { user_va: 0x10000n, length: TWO_63, iova: 0x100000n }),
  ),
  attached.test(
    'map.unbacked-with-domain',
    'with a device attached, mapping an address range nothing backs fails to pin: EFAULT',
    (t, f) => {
      t.expectErrno('map one unbacked page', () => call.map(f, { user_va: 0x10000n, length: t.page, iova: 0x100000n }), 'EFAULT');
    },
  ),
  attached.test(
    'map.attached.alignment',
    "after attach the IOAS takes the domain's page alignment: unaligned IOVA or length is EINVAL",
    (t, f) => {
      const va = t.anonymousMemory(t.page * 2n).address;
      t.expectErrno('map at IOVA 0x100001', () => call.map(f, { user_va: va, length: t.page, iova: 0x100001n }), 'EINVAL');
      t.expectErrno('map length PAGE-1', () => call.map(f, { user_va: va, length: t.page - 1n, iova: 0x100000n }), 'EINVAL');
      t.expectErrno(
        'map from an unaligned user address',
        () => call.map(f, { user_va: va + 0x10n, length: t.page, iova: 0x100000n }),
        'EINVAL',
      );
      t.expect('map aligned', () => call.map(f, { user_va: va, length: t.page, iova: 0x100000n }), 'ok');
    },
  ),
  attached.test(
    'map.attached.high-iova',
    'after attach, an IOVA at 2^63: noiommu accepts it, an IOMMU reserves what lies past its aperture (EINVAL)',
    (t, f) => {
      const va = t.anonymousMemory(t.page).address;
      t.expect('map at 2^63', () => call.map(f, { user_va: va, length: t.page, iova: TWO_63 }), { noiommu: 'ok', iommu: 'EINVAL' });
    },
  ),
  casesOn(boundWithIoas).test(
    'map.attach-with-unaligned-area',
    'attaching a device to an IOAS holding an area that is not page aligned is EADDRINUSE',
    (t, f) => {
      const va = t.anonymousMemory(t.page).address;
      map(t, f.iommufd, f.ioasId, { userVa: va, length: 0x100n, iova: 0x100010n });
      // iopt_table_add_domain → iopt_check_iova_alignment: an existing area breaks the new alignment.
      t.expectErrno('attach', () => call.attach(f, { pt_id: f.ioasId }), 'EADDRINUSE');
      t.ok('unmap the unaligned area', () => call.unmap(f, { iova: 0x100010n, length: 0x100n }));
      t.expect('attach again', () => call.attach(f, { pt_id: f.ioasId }), 'ok');
    },
  ),
  empty.expect('map.flags.unknown', 'IOAS_MAP with an unknown flag bit is EOPNOTSUPP', 'map flags |= 1<<3', 'EOPNOTSUPP', (f) =>
    call.map(f, { length: f.t.page, iova: 0x100000n, flags: MAP_RW_FIXED | (1 << 3) }),
  ),
  empty.expect('map.flags.no-access', 'IOAS_MAP with neither READABLE nor WRITEABLE is EINVAL', 'map flags FIXED only', 'EINVAL', (f) =>
    call.map(f, { length: f.t.page, iova: 0x100000n, flags: I.IOMMU_IOAS_MAP_FIXED_IOVA }),
  ),
  empty.expect('map.nonzero-reserved', 'IOAS_MAP with non-zero __reserved is EOPNOTSUPP', 'map __reserved 1', 'EOPNOTSUPP', (f) =>
    call.map(f, { __reserved: 1, length: f.t.page, iova: 0x100000n }),
  ),
  casesOn(iommufd).test(
    'map.order.flags-before-overflow',
    'IOAS_MAP checks flags before IOVA overflow, and overflow before the IOAS id',
    (t, f) => {
      t.expectErrno(
        'unknown flag, IOVA 2^64-1, no IOAS',
        () => call.map(f, { flags: MAP_RW | (1 << 3), ioas_id: 99, length: 4096n, iova: U64_MAX }),
        'EOPNOTSUPP',
      );
      t.expectErrno(
        'IOVA 2^64-1, no access flags, no IOAS',
        () => call.map(f, { flags: 0, ioas_id: 99, length: 4096n, iova: U64_MAX }),
        'EOVERFLOW',
      );
      t.expectErrno('no access flags, no IOAS', () => call.map(f, { flags: 0, ioas_id: 99, length: 4096n }), 'EINVAL');
    },
  ),
  empty.expect('map.missing-ioas', 'IOAS_MAP into an id that does not exist is ENOENT', 'map into IOAS 99', 'ENOENT', (f) =>
    call.map(f, { ioas_id: 99, length: f.t.page, iova: 0x100000n }),
  ),
  empty.test('map.destroyed-ioas', 'IOAS_MAP into a destroyed IOAS is ENOENT', (t, f) => {
    t.ok('destroy', () => call.destroy(f, { id: f.ioasId }));
    t.expectErrno('map into the destroyed IOAS', () => call.map(f, { length: t.page, iova: 0x100000n }), 'ENOENT');
  }),
  empty.test('map.overlap', 'a fixed map overlapping an existing area is EEXIST, one just after it is fine', (t, f) => {
    map(t, f.iommufd, f.ioasId, { userVa: f.userVa, length: 2n * t.page, iova: 0x100000n });
    t.expectErrno('map over the second page', () => call.map(f, { length: t.page, iova: 0x100000n + t.page }), 'EEXIST');
    t.expectErrno('map straddling the start', () => call.map(f, { length: 2n * t.page, iova: 0x100000n - t.page }), 'EEXIST');
    t.expect('map right after the area', () => call.map(f, { length: t.page, iova: 0x100000n + 2n * t.page }), 'ok');
  }),
  empty.test('map.same-memory-twice', 'the same user memory can be mapped at two IOVAs', (t, f) => {
    map(t, f.iommufd, f.ioasId, { userVa: f.userVa, length: t.page, iova: 0x100000n });
    map(t, f.iommufd, f.ioasId, { userVa: f.userVa, length: t.page, iova: 0x200000n });
  }),
  attached.test(
    'map.read-only-memory-writeable',
    'mapping read-only memory WRITEABLE into an attached IOAS fails to pin: EFAULT',
    (t, f) => {
      // A PROT_READ mapping cannot be pinned for write.
      const ro = t.kernel.mmap(-1, t.page, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, 0n);
      t.defer('munmap read-only page', () => t.kernel.munmap(ro));
      t.expectErrno(
        'map read-only memory WRITEABLE',
        () => call.map(f, { user_va: ro.address, length: t.page, iova: 0x100000n }),
        'EFAULT',
      );
      t.expect(
        'map read-only memory READABLE only',
        () =>
          call.map(f, {
            user_va: ro.address,
            length: t.page,
            iova: 0x200000n,
            flags: I.IOMMU_IOAS_MAP_READABLE | I.IOMMU_IOAS_MAP_FIXED_IOVA,
          }),
        'ok',
      );
    },
  ),
  empty.test('unmap.partial-area', 'unmapping part of an area (its first page, its second page) is ENOENT and leaves it mapped', (t, f) => {
    map(t, f.iommufd, f.ioasId, { userVa: f.userVa, length: 2n * t.page, iova: 0x100000n });
    t.expectErrno('unmap the first page', () => call.unmap(f, { iova: 0x100000n, length: t.page }), 'ENOENT');
    t.expectErrno('unmap the second page', () => call.unmap(f, { iova: 0x100000n + t.page, length: t.page }), 'ENOENT');
    t.expectErrno('unmap a range starting inside', () => call.unmap(f, { iova: 0x100000n + t.page, length: 4n * t.page }), 'ENOENT');
    t.equal(
      t.ok('unmap the whole area', () => call.unmap(f, { iova: 0x100000n, length: 2n * t.page })).length,
      2n * t.page,
      'bytes unmapped',
    );
  }),
  empty.test('unmap.nothing', 'unmapping a range with no area is ENOENT', (t, f) => {
    map(t, f.iommufd, f.ioasId, { userVa: f.userVa, length: t.page, iova: 0x100000n });
    t.expectErrno('unmap 0x200000', () => call.unmap(f, { iova: 0x200000n, length: t.page }), 'ENOENT');
  }),
  empty.test('unmap.covering-several-areas', 'one unmap covering two whole areas and the gap between them unmaps both', (t, f) => {
    map(t, f.iommufd, f.ioasId, { userVa: f.userVa, length: t.page, iova: 0x100000n });
    map(t, f.iommufd, f.ioasId, { userVa: f.userVa, length: 2n * t.page, iova: 0x200000n });
    const covering = { iova: 0x100000n, length: 0x200000n };
    t.equal(t.ok('unmap 0x100000..0x2fffff', () => call.unmap(f, covering)).length, 3n * t.page, 'bytes unmapped');
    t.expectErrno('unmap again', () => call.unmap(f, covering), 'ENOENT');
  }),
  empty.test('unmap.all', 'unmap-all (iova 0, length 2^64-1) removes every area and reports the bytes', (t, f) => {
    map(t, f.iommufd, f.ioasId, { userVa: f.userVa, length: t.page, iova: 0x100000n });
    map(t, f.iommufd, f.ioasId, { userVa: f.userVa, length: 2n * t.page, iova: U64_MAX - 2n * t.page + 1n });
    t.equal(
      t.ok('unmap all', () => unmapAll(f)),
      3n * t.page,
      'bytes unmapped',
    );
    t.expect('map at 0x100000 again', () => call.map(f, { length: t.page, iova: 0x100000n }), 'ok');
  }),
  empty.test('unmap.all-empty', 'unmap-all on an empty IOAS succeeds with length 0', (t, f) =>
    t.equal(
      t.ok('unmap all', () => unmapAll(f)),
      0n,
      'bytes unmapped',
    ),
  ),
  empty.expect('unmap.length-0', 'unmap with length 0 is EINVAL', 'unmap length 0', 'EINVAL', (f) =>
    call.unmap(f, { iova: 0x100000n, length: 0n }),
  ),
  empty.test('unmap.boundaries', 'unmap: length 2^64-1 from a non-zero IOVA, IOVA 2^64-1 and wrap-around are EOVERFLOW', (t, f) => {
    t.expectErrno('unmap iova 1, length 2^64-1', () => call.unmap(f, { iova: 1n, length: U64_MAX }), 'EOVERFLOW');
    t.expectErrno('unmap iova 2^64-1', () => call.unmap(f, { iova: U64_MAX, length: t.page }), 'EOVERFLOW');
    t.expectErrno('unmap wrapping past 2^64', () => call.unmap(f, { iova: U64_MAX - t.page + 1n, length: 2n * t.page }), 'EOVERFLOW');
    t.expectErrno('unmap the empty last page', () => call.unmap(f, { iova: U64_MAX - t.page + 1n, length: t.page }), 'ENOENT');
  }),
  casesOn(iommufd).expect(
    'unmap.missing-ioas',
    'unmap (even unmap-all) of an IOAS that does not exist is ENOENT',
    'unmap all of IOAS 99',
    'ENOENT',
    (f) => unmapAll({ ...f, ioasId: 99 }),
  ),
];
