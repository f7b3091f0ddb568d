/**
 * IOMMU_IOAS_NOIOMMU_GET_PA (new in 7.3): the order of its checks, its length cap, and the physical
 * addresses it returns compared with /proc/self/pagemap. Sources: ioas.c
 * iommufd_ioas_noiommu_get_pa (EPERM, EOPNOTSUPP flags/reserved, EINVAL length 0, EOVERFLOW,
 * ENOENT IOAS) and io_pagetable.c iopt_get_phys (ENOENT no area, EOPNOTSUPP not a noiommu
 * domain, the contiguous-length walk that never leaves the area).
 */
import { defineCase, type ConformanceCase } from '../case';
import type { CaseContext } from '../context';
import { U64_MAX } from '../../uapi/codec';
import { detach, getPaCall, ioasAlloc, map, openAttached, pagemapPhys, unmapCall, type AttachedDevice, type PhysicalRun } from '../steps';
import type { Expected } from '../types';

/** GET_PA succeeds only on an area stored in the noiommu domain. */
const NOIOMMU_ONLY: Expected = { noiommu: 'ok', iommu: 'EOPNOTSUPP' };

/** An attached device and `pages` pages mapped at 0x100000. */
function attachedWithMapping(t: CaseContext, pages: number, hugetlb = false): AttachedDevice & { va: bigint; iova: bigint; length: bigint } {
  const dev = openAttached(t);
  const length = t.page * BigInt(pages);
  const memory = t.anonymousMemory(length, { hugetlb });
  const iova = 0x100000n;
  map(t, dev.iommufd, dev.ioasId, { userVa: memory.address, length, iova });
  return { ...dev, va: memory.address, iova, length };
}

function lookup(t: CaseContext, dev: AttachedDevice, what: string, iova: bigint, cap: bigint): PhysicalRun | undefined {
  return t.expect(what, getPaCall(t, dev.iommufd, dev.ioasId, { iova, length: cap }), NOIOMMU_ONLY);
}

export const getPaCases: ConformanceCase[] = [
  defineCase({
    id: 'get-pa.before-attach',
    title: 'GET_PA of a mapped IOVA before any device is attached is EOPNOTSUPP (no noiommu domain stores it)',
    needs: ['sys-rawio'],
    run(t) {
      const fd = t.openIommufd();
      const ioasId = ioasAlloc(t, fd);
      const memory = t.anonymousMemory(t.page);
      map(t, fd, ioasId, { userVa: memory.address, length: t.page, iova: 0x100000n });
      t.expectErrno('GET_PA 0x100000', getPaCall(t, fd, ioasId, { iova: 0x100000n, length: t.page }), 'EOPNOTSUPP');
    },
  }),
  defineCase({
    id: 'get-pa.after-attach-matches-pagemap',
    title: 'GET_PA after attach returns what /proc/self/pagemap says, page by page',
    needs: ['device', 'sys-rawio'],
    run(t) {
      const dev = attachedWithMapping(t, 4);
      for (let i = 0n; i < 4n; i++) {
        const iova = dev.iova + i * t.page;
        const run = lookup(t, dev, `GET_PA page ${i}`, iova, t.page);
        if (!run) continue;
        t.equal(run.length, t.page, `length of page ${i} with a one-page cap`);
        const expected = pagemapPhys(t, dev.va + i * t.page);
        if (expected === null) return t.fail(`pagemap says page ${i} is not present although it is pinned`);
        if (expected === expected % t.page) return t.skip('pagemap hides frame numbers (needs CAP_SYS_ADMIN)');
        t.equal(run.phys, expected, `physical address of page ${i}`);
      }
    },
  }),
  defineCase({
    id: 'get-pa.zero-length',
    title: 'GET_PA with length 0 is EINVAL',
    needs: ['device', 'sys-rawio'],
    run(t) {
      const dev = attachedWithMapping(t, 1);
      t.expectErrno('GET_PA length 0', getPaCall(t, dev.iommufd, dev.ioasId, { iova: dev.iova, length: 0n }), 'EINVAL');
    },
  }),
  defineCase({
    id: 'get-pa.nonzero-flags',
    title: 'GET_PA with non-zero flags is EOPNOTSUPP',
    needs: ['device', 'sys-rawio'],
    run(t) {
      const dev = attachedWithMapping(t, 1);
      t.expectErrno('GET_PA flags 1', getPaCall(t, dev.iommufd, dev.ioasId, { iova: dev.iova, length: t.page, flags: 1 }), 'EOPNOTSUPP');
    },
  }),
  defineCase({
    id: 'get-pa.nonzero-reserved',
    title: 'GET_PA with non-zero __reserved is EOPNOTSUPP',
    needs: ['device', 'sys-rawio'],
    run(t) {
      const dev = attachedWithMapping(t, 1);
      t.expectErrno('GET_PA __reserved 1', getPaCall(t, dev.iommufd, dev.ioasId, { iova: dev.iova, length: t.page, reserved: 1 }), 'EOPNOTSUPP');
    },
  }),
  defineCase({
    id: 'get-pa.unmapped-iova',
    title: 'GET_PA of an IOVA no area covers is ENOENT, attached or not',
    needs: ['device', 'sys-rawio'],
    run(t) {
      const dev = attachedWithMapping(t, 1);
      t.expectErrno('GET_PA just past the area', getPaCall(t, dev.iommufd, dev.ioasId, { iova: dev.iova + t.page, length: t.page }), 'ENOENT');
      t.expectErrno('GET_PA just before the area', getPaCall(t, dev.iommufd, dev.ioasId, { iova: dev.iova - 1n, length: t.page }), 'ENOENT');
    },
  }),
  defineCase({
    id: 'get-pa.missing-ioas',
    title: 'GET_PA on an id that is no IOAS (missing, or the device) is ENOENT',
    needs: ['device', 'sys-rawio'],
    run(t) {
      const dev = attachedWithMapping(t, 1);
      t.expectErrno('GET_PA on IOAS 99', getPaCall(t, dev.iommufd, 99, { iova: dev.iova, length: t.page }), 'ENOENT');
      t.expectErrno('GET_PA on the device id', getPaCall(t, dev.iommufd, dev.devId, { iova: dev.iova, length: t.page }), 'ENOENT');
      t.expectErrno('GET_PA on the HWPT id', getPaCall(t, dev.iommufd, dev.hwptId, { iova: dev.iova, length: t.page }), 'ENOENT');
    },
  }),
  defineCase({
    id: 'get-pa.iova-overflow',
    title: 'GET_PA at IOVA 2^64-1 is EOVERFLOW; 2^64-2 is looked up (ENOENT)',
    needs: ['sys-rawio'],
    run(t) {
      const fd = t.openIommufd();
      const ioasId = ioasAlloc(t, fd);
      t.expectErrno('GET_PA iova 2^64-1', getPaCall(t, fd, ioasId, { iova: U64_MAX, length: t.page }), 'EOVERFLOW');
      t.expectErrno('GET_PA iova 2^64-2', getPaCall(t, fd, ioasId, { iova: U64_MAX - 1n, length: t.page }), 'ENOENT');
    },
  }),
  defineCase({
    id: 'get-pa.check-order',
    title: 'GET_PA checks flags, then length, then IOVA overflow, then the IOAS',
    needs: ['sys-rawio'],
    run(t) {
      const fd = t.openIommufd();
      t.expectErrno('flags 1, length 0, iova 2^64-1, IOAS 99', getPaCall(t, fd, 99, { iova: U64_MAX, length: 0n, flags: 1 }), 'EOPNOTSUPP');
      t.expectErrno('length 0, iova 2^64-1, IOAS 99', getPaCall(t, fd, 99, { iova: U64_MAX, length: 0n }), 'EINVAL');
      t.expectErrno('iova 2^64-1, IOAS 99', getPaCall(t, fd, 99, { iova: U64_MAX, length: 1n }), 'EOVERFLOW');
      t.expectErrno('IOAS 99', getPaCall(t, fd, 99, { iova: 0n, length: 1n }), 'ENOENT');
    },
  }),
  defineCase({
    id: 'get-pa.unaligned-iova',
    title: 'GET_PA at an IOVA inside a page returns that byte\'s address and the rest of the run',
    needs: ['device', 'sys-rawio'],
    run(t) {
      const dev = attachedWithMapping(t, 1);
      const start = lookup(t, dev, 'GET_PA at the page start', dev.iova, t.page);
      const inner = lookup(t, dev, 'GET_PA at offset 0x123', dev.iova + 0x123n, t.page);
      if (start && inner) {
        t.equal(inner.phys, start.phys + 0x123n, 'physical address at offset 0x123');
        t.equal(inner.length, t.page - 0x123n, 'length: the rest of the page');
      }
    },
  }),
  defineCase({
    id: 'get-pa.small-cap',
    title: 'GET_PA never reports more than the cap: 1 byte, and 0x80 bytes from inside a page',
    needs: ['device', 'sys-rawio'],
    run(t) {
      const dev = attachedWithMapping(t, 2);
      const one = lookup(t, dev, 'GET_PA cap 1', dev.iova, 1n);
      if (one) t.equal(one.length, 1n, 'length with cap 1');
      const small = lookup(t, dev, 'GET_PA cap 0x80 at offset 0x10', dev.iova + 0x10n, 0x80n);
      if (small) t.equal(small.length, 0x80n, 'length with cap 0x80');
    },
  }),
  defineCase({
    id: 'get-pa.last-page-of-area',
    title: 'GET_PA in the last page of an area stops at the area\'s end whatever the cap',
    needs: ['device', 'sys-rawio'],
    run(t) {
      const dev = attachedWithMapping(t, 3);
      const lastPage = dev.iova + dev.length - t.page;
      const run = lookup(t, dev, 'GET_PA at the last page + 0x10, cap 1 MiB', lastPage + 0x10n, 0x100000n);
      if (run) t.equal(run.length, t.page - 0x10n, 'length to the end of the area');
      const lastByte = lookup(t, dev, 'GET_PA at the last byte', dev.iova + dev.length - 1n, 0x100000n);
      if (lastByte) t.equal(lastByte.length, 1n, 'length at the last byte');
    },
  }),
  defineCase({
    id: 'get-pa.huge-page-run',
    title: 'GET_PA over several pages backed by one huge page reports them as one run, capped by the area',
    needs: ['device', 'sys-rawio'],
    run(t) {
      const dev = attachedWithMapping(t, 16, true);
      const run = lookup(t, dev, 'GET_PA of 16 huge-page-backed pages', dev.iova, 1n << 40n);
      if (run) t.equal(run.length, dev.length, 'length: the whole area');
      const capped = lookup(t, dev, 'GET_PA capped at 5 pages + 1', dev.iova, 5n * t.page + 1n);
      if (capped) t.equal(capped.length, 5n * t.page + 1n, 'length with a cap inside the run');
      const fromInside = lookup(t, dev, 'GET_PA from page 3 + 0x40', dev.iova + 3n * t.page + 0x40n, 1n << 40n);
      if (run && fromInside) {
        t.equal(fromInside.phys, run.phys + 3n * t.page + 0x40n, 'physical address inside the run');
        t.equal(fromInside.length, dev.length - 3n * t.page - 0x40n, 'length to the end of the area');
      }
    },
  }),
  defineCase({
    id: 'get-pa.never-crosses-areas',
    title: 'two adjacent areas over physically contiguous memory are reported separately',
    needs: ['device', 'sys-rawio'],
    run(t) {
      const dev = openAttached(t);
      const half = t.page * 4n;
      const memory = t.anonymousMemory(half * 2n, { hugetlb: true });
      map(t, dev.iommufd, dev.ioasId, { userVa: memory.address, length: half, iova: 0x100000n });
      map(t, dev.iommufd, dev.ioasId, { userVa: memory.address + half, length: half, iova: 0x100000n + half });
      const first = lookup(t, dev, 'GET_PA of the first area, cap covering both', 0x100000n, half * 2n);
      const second = lookup(t, dev, 'GET_PA of the second area', 0x100000n + half, half);
      if (first && second) {
        t.equal(second.phys, first.phys + half, 'the second area continues the first physically');
        t.equal(first.length, half, 'the run stops at the end of the first area');
      }
    },
  }),
  defineCase({
    id: 'get-pa.after-unmap',
    title: 'GET_PA after the area is unmapped is ENOENT',
    needs: ['device', 'sys-rawio'],
    run(t) {
      const dev = attachedWithMapping(t, 1);
      lookup(t, dev, 'GET_PA while mapped', dev.iova, t.page);
      t.ok('unmap', unmapCall(t, dev.iommufd, dev.ioasId, dev.iova, dev.length));
      t.expectErrno('GET_PA after unmap', getPaCall(t, dev.iommufd, dev.ioasId, { iova: dev.iova, length: t.page }), 'ENOENT');
    },
  }),
  defineCase({
    id: 'get-pa.after-detach',
    title: 'after detach the noiommu domain is gone: GET_PA of a still-mapped IOVA is EOPNOTSUPP',
    needs: ['device', 'sys-rawio'],
    run(t) {
      const dev = attachedWithMapping(t, 1);
      detach(t, dev.deviceFd);
      t.expectErrno('GET_PA after detach', getPaCall(t, dev.iommufd, dev.ioasId, { iova: dev.iova, length: t.page }), 'EOPNOTSUPP');
    },
  }),
];
