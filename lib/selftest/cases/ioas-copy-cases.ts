/**
 * IOMMU_IOAS_COPY: mapping the pages behind one IOAS range into another IOAS (or the same one)
 * without going back to user memory. Sources: ioas.c iommufd_ioas_copy (flag, overflow and
 * access checks, then source lookup, then destination), io_pagetable.c iopt_get_pages (the
 * range must be covered by contiguous areas: ENOENT otherwise; length 0 EINVAL).
 */
import { defineCase, type ConformanceCase } from '../case';
import type { CaseContext } from '../context';
import { U64_MAX } from '../../uapi/codec';
import * as I from '../../uapi/iommufd';
import { rawIoctl } from '../raw-ioctl';
import { ioasAlloc, map, MAP_RW, unmapCall } from '../steps';

interface Copy {
  readonly src: number;
  readonly dst: number;
  readonly srcIova: bigint;
  readonly length: bigint;
  /** A fixed destination IOVA, or omitted to let the kernel choose. */
  readonly dstIova?: bigint;
  readonly flags?: number;
}

function copyCall(t: CaseContext, fd: number, c: Copy): () => bigint {
  return () => {
    let flags = c.flags ?? MAP_RW;
    if (c.dstIova !== undefined) flags |= I.IOMMU_IOAS_MAP_FIXED_IOVA;
    return rawIoctl(t.kernel, fd, I.IOMMU_IOAS_COPY, I.IommuIoasCopy, {
      flags, dst_ioas_id: c.dst, src_ioas_id: c.src, length: c.length, dst_iova: c.dstIova ?? 0n, src_iova: c.srcIova,
    }).out.dst_iova;
  };
}

/** Two IOAS; the source has a 2-page area at 0x100000 and a 1-page area at 0x200000. */
function twoIoas(t: CaseContext): { fd: number; src: number; dst: number } {
  const fd = t.openIommufd();
  const src = ioasAlloc(t, fd);
  const dst = ioasAlloc(t, fd);
  const memory = t.anonymousMemory(3n * t.page);
  map(t, fd, src, { userVa: memory.address, length: 2n * t.page, iova: 0x100000n });
  map(t, fd, src, { userVa: memory.address + 2n * t.page, length: t.page, iova: 0x200000n });
  return { fd, src, dst };
}

export const ioasCopyCases: ConformanceCase[] = [
  defineCase({
    id: 'copy.whole-area',
    title: 'IOAS_COPY of a whole area to a fixed IOVA of another IOAS creates an area there',
    run(t) {
      const { fd, src, dst } = twoIoas(t);
      t.equal(t.ok('copy', copyCall(t, fd, { src, dst, srcIova: 0x100000n, length: 2n * t.page, dstIova: 0x400000n })), 0x400000n, 'dst_iova');
      t.equal(t.ok('unmap the copy', unmapCall(t, fd, dst, 0x400000n, 2n * t.page)), 2n * t.page, 'bytes unmapped in the destination');
      t.equal(t.ok('unmap the source', unmapCall(t, fd, src, 0x100000n, 2n * t.page)), 2n * t.page, 'the source area is untouched');
    },
  }),
  defineCase({
    id: 'copy.part-of-area',
    title: 'IOAS_COPY of one page from inside an area copies just that page',
    run(t) {
      const { fd, src, dst } = twoIoas(t);
      t.ok('copy the second page', copyCall(t, fd, { src, dst, srcIova: 0x100000n + t.page, length: t.page, dstIova: 0x400000n }));
      t.equal(t.ok('unmap all of the destination', unmapCall(t, fd, dst, 0n, U64_MAX)), t.page, 'bytes in the destination');
    },
  }),
  defineCase({
    id: 'copy.automatic-iova',
    title: 'IOAS_COPY without FIXED_IOVA lets the destination choose (PAGE_SIZE in an empty IOAS)',
    run(t) {
      const { fd, src, dst } = twoIoas(t);
      t.equal(t.ok('copy the 1-page area', copyCall(t, fd, { src, dst, srcIova: 0x200000n, length: t.page })), t.page, 'dst_iova');
    },
  }),
  defineCase({
    id: 'copy.same-ioas',
    title: 'IOAS_COPY within one IOAS to a free IOVA works; onto itself is EEXIST',
    run(t) {
      const { fd, src } = twoIoas(t);
      t.expect('copy to 0x300000', copyCall(t, fd, { src, dst: src, srcIova: 0x200000n, length: t.page, dstIova: 0x300000n }), 'ok');
      t.expectErrno('copy onto itself', copyCall(t, fd, { src, dst: src, srcIova: 0x200000n, length: t.page, dstIova: 0x200000n }), 'EEXIST');
    },
  }),
  defineCase({
    id: 'copy.adjacent-areas',
    title: 'IOAS_COPY over two adjacent areas works and leaves two areas in the destination',
    run(t) {
      const fd = t.openIommufd();
      const src = ioasAlloc(t, fd);
      const dst = ioasAlloc(t, fd);
      const memory = t.anonymousMemory(2n * t.page);
      map(t, fd, src, { userVa: memory.address, length: t.page, iova: 0x100000n });
      map(t, fd, src, { userVa: memory.address + t.page, length: t.page, iova: 0x100000n + t.page });
      t.ok('copy both', copyCall(t, fd, { src, dst, srcIova: 0x100000n, length: 2n * t.page, dstIova: 0x400000n }));
      // Each source area becomes its own destination area, so the first can go alone.
      t.equal(t.ok('unmap the first copied page', unmapCall(t, fd, dst, 0x400000n, t.page)), t.page, 'bytes unmapped');
    },
  }),
  defineCase({
    id: 'copy.across-hole',
    title: 'IOAS_COPY of a range with a hole in it is ENOENT',
    run(t) {
      const { fd, src, dst } = twoIoas(t);
      t.expectErrno('copy 0x100000..0x200fff', copyCall(t, fd, { src, dst, srcIova: 0x100000n, length: 0x101000n, dstIova: 0x400000n }), 'ENOENT');
      t.expectErrno('copy of nothing', copyCall(t, fd, { src, dst, srcIova: 0x800000n, length: t.page, dstIova: 0x400000n }), 'ENOENT');
    },
  }),
  defineCase({
    id: 'copy.bad-input',
    title: 'IOAS_COPY: unknown flag EOPNOTSUPP, no access EINVAL, length 0 EINVAL, IOVA 2^64-1 EOVERFLOW, missing IOAS ENOENT, occupied destination EEXIST',
    run(t) {
      const { fd, src, dst } = twoIoas(t);
      const base = { src, dst, srcIova: 0x100000n, length: t.page, dstIova: 0x400000n };
      t.expectErrno('flags |= 1<<3', copyCall(t, fd, { ...base, flags: MAP_RW | (1 << 3) }), 'EOPNOTSUPP');
      t.expectErrno('no READABLE/WRITEABLE', copyCall(t, fd, { ...base, flags: 0 }), 'EINVAL');
      t.expectErrno('length 0', copyCall(t, fd, { ...base, length: 0n }), 'EINVAL');
      t.expectErrno('src_iova 2^64-1', copyCall(t, fd, { ...base, srcIova: U64_MAX }), 'EOVERFLOW');
      t.expectErrno('dst_iova 2^64-1', copyCall(t, fd, { ...base, dstIova: U64_MAX }), 'EOVERFLOW');
      t.expectErrno('missing source IOAS', copyCall(t, fd, { ...base, src: 99 }), 'ENOENT');
      t.expectErrno('missing destination IOAS', copyCall(t, fd, { ...base, dst: 99 }), 'ENOENT');
      t.ok('copy once', copyCall(t, fd, base));
      t.expectErrno('copy to the same destination again', copyCall(t, fd, base), 'EEXIST');
    },
  }),
];
