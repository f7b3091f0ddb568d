/**
 * IOMMU_IOAS_COPY: mapping the pages behind one IOAS range into another IOAS (or the same one)
 * without going back to user memory. Sources: ioas.c iommufd_ioas_copy (flag, overflow and
 * access checks, then source lookup, then destination), io_pagetable.c iopt_get_pages (the
 * range must be covered by contiguous areas: ENOENT otherwise; length 0 EINVAL).
 */
import type { ConformanceCase } from '../case';
import { U64_MAX } from '../../uapi/codec';
import * as I from '../../uapi/iommufd';
import { call, MAP_RW, MAP_RW_FIXED } from '../calls';
import { casesOn, defineFixture } from '../fixture';
import { iommufd, type IommufdFixture } from '../fixtures';
import { ioasAlloc, map } from '../steps';

interface TwoIoasFixture extends IommufdFixture {
  readonly src: number;
  readonly dst: number;
}

/** Two IOAS; the source has a 2-page area at 0x100000 and a 1-page area at 0x200000. */
const twoIoas = defineFixture<TwoIoasFixture>({
  name: 'two IOAS, the source with two areas',
  needs: [],
  setup: (t) => {
    const fd = t.openIommufd();
    const src = ioasAlloc(t, fd);
    const dst = ioasAlloc(t, fd);
    const memory = t.anonymousMemory(3n * t.page);
    map(t, fd, src, { userVa: memory.address, length: 2n * t.page, iova: 0x100000n });
    map(t, fd, src, { userVa: memory.address + 2n * t.page, length: t.page, iova: 0x200000n });
    return { t, iommufd: fd, src, dst };
  },
});

/** IOAS_COPY from the fixture's source to its destination IOAS, at a fixed IOVA unless flags say otherwise. */
function copy(
  f: TwoIoasFixture,
  c: { srcIova: bigint; length: bigint; dstIova?: bigint; flags?: number; src?: number; dst?: number },
): bigint {
  return call.copy(f, {
    src_ioas_id: c.src ?? f.src,
    dst_ioas_id: c.dst ?? f.dst,
    src_iova: c.srcIova,
    length: c.length,
    dst_iova: c.dstIova ?? 0n,
    ...(c.flags === undefined ? {} : { flags: c.flags }),
  }).dst_iova;
}

const copies = casesOn(twoIoas);

export const ioasCopyCases: ConformanceCase[] = [
  copies.test('copy.whole-area', 'IOAS_COPY of a whole area to a fixed IOVA of another IOAS creates an area there', (t, f) => {
    t.equal(
      t.ok('copy', () => copy(f, { srcIova: 0x100000n, length: 2n * t.page, dstIova: 0x400000n })),
      0x400000n,
      'dst_iova',
    );
    t.equal(
      t.ok('unmap the copy', () => call.unmap(f, { ioas_id: f.dst, iova: 0x400000n, length: 2n * t.page }).length),
      2n * t.page,
      'bytes unmapped in the destination',
    );
    t.equal(
      t.ok('unmap the source', () => call.unmap(f, { ioas_id: f.src, iova: 0x100000n, length: 2n * t.page }).length),
      2n * t.page,
      'the source area is untouched',
    );
  }),
  copies.test('copy.part-of-area', 'IOAS_COPY of one page from inside an area copies just that page', (t, f) => {
    t.ok('copy the second page', () => copy(f, { srcIova: 0x100000n + t.page, length: t.page, dstIova: 0x400000n }));
    t.equal(
      t.ok('unmap all of the destination', () => call.unmap(f, { ioas_id: f.dst, iova: 0n, length: U64_MAX }).length),
      t.page,
      'bytes in the destination',
    );
  }),
  copies.test('copy.automatic-iova', 'IOAS_COPY without FIXED_IOVA lets the destination choose (PAGE_SIZE in an empty IOAS)', (t, f) => {
    t.equal(
      t.ok('copy the 1-page area', () => copy(f, { srcIova: 0x200000n, length: t.page, flags: MAP_RW })),
      t.page,
      'dst_iova',
    );
  }),
  copies.test('copy.same-ioas', 'IOAS_COPY within one IOAS to a free IOVA works; onto itself is EEXIST', (t, f) => {
    t.expect('copy to 0x300000', () => copy(f, { dst: f.src, srcIova: 0x200000n, length: t.page, dstIova: 0x300000n }), 'ok');
    t.expectErrno('copy onto itself', () => copy(f, { dst: f.src, srcIova: 0x200000n, length: t.page, dstIova: 0x200000n }), 'EEXIST');
  }),
  casesOn(iommufd).test(
    'copy.adjacent-areas',
    'IOAS_COPY over two adjacent areas works and leaves two areas in the destination',
    (t, fd) => {
      const f = { ...fd, src: ioasAlloc(t, fd.iommufd), dst: ioasAlloc(t, fd.iommufd) };
      const memory = t.anonymousMemory(2n * t.page);
      map(t, f.iommufd, f.src, { userVa: memory.address, length: t.page, iova: 0x100000n });
      map(t, f.iommufd, f.src, { userVa: memory.address + t.page, length: t.page, iova: 0x100000n + t.page });
      t.ok('copy both', () => copy(f, { srcIova: 0x100000n, length: 2n * t.page, dstIova: 0x400000n }));
      // Each source area becomes its own destination area, so the first can go alone.
      t.equal(
        t.ok('unmap the first copied page', () => call.unmap(f, { ioas_id: f.dst, iova: 0x400000n, length: t.page }).length),
        t.page,
        'bytes unmapped',
      );
    },
  ),
  copies.test('copy.across-hole', 'IOAS_COPY of a range with a hole in it is ENOENT', (t, f) => {
    t.expectErrno('copy 0x100000..0x200fff', () => copy(f, { srcIova: 0x100000n, length: 0x101000n, dstIova: 0x400000n }), 'ENOENT');
    t.expectErrno('copy of nothing', () => copy(f, { srcIova: 0x800000n, length: t.page, dstIova: 0x400000n }), 'ENOENT');
  }),
  copies.test(
    'copy.bad-input',
    'IOAS_COPY: unknown flag EOPNOTSUPP, no access EINVAL, length 0 EINVAL, IOVA 2^64-1 EOVERFLOW, missing IOAS ENOENT, occupied destination EEXIST',
    (t, f) => {
      const base = { srcIova: 0x100000n, length: t.page, dstIova: 0x400000n };
      t.expectErrno('flags |= 1<<3', () => copy(f, { ...base, flags: MAP_RW_FIXED | (1 << 3) }), 'EOPNOTSUPP');
      t.expectErrno('no READABLE/WRITEABLE', () => copy(f, { ...base, flags: I.IOMMU_IOAS_MAP_FIXED_IOVA }), 'EINVAL');
      t.expectErrno('length 0', () => copy(f, { ...base, length: 0n }), 'EINVAL');
      t.expectErrno('src_iova 2^64-1', () => copy(f, { ...base, srcIova: U64_MAX }), 'EOVERFLOW');
      t.expectErrno('dst_iova 2^64-1', () => copy(f, { ...base, dstIova: U64_MAX }), 'EOVERFLOW');
      t.expectErrno('missing source IOAS', () => copy(f, { ...base, src: 99 }), 'ENOENT');
      t.expectErrno('missing destination IOAS', () => copy(f, { ...base, dst: 99 }), 'ENOENT');
      t.ok('copy once', () => copy(f, base));
      t.expectErrno('copy to the same destination again', () => copy(f, base), 'EEXIST');
    },
  ),
];
