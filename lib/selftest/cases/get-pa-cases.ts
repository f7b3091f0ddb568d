/**
 * IOMMU_IOAS_NOIOMMU_GET_PA (new in 7.3): the order of its checks, its length cap, and the physical
 * addresses it returns compared with /proc/self/pagemap. Sources: ioas.c
 * iommufd_ioas_noiommu_get_pa (EPERM, EOPNOTSUPP flags/reserved, EINVAL length 0, EOVERFLOW,
 * ENOENT IOAS) and io_pagetable.c iopt_get_phys (ENOENT no area, EOPNOTSUPP not a noiommu
 * domain, the contiguous-length walk that never leaves the area).
 */
import { knowsCommand, type ConformanceCase } from '../case';
import * as I from '../../uapi/iommufd';
import { U64_MAX } from '../../uapi/codec';
import { call } from '../calls';
import { casesOn } from '../fixture';
import { attachedDevice, ioas, iommufd, mappedBuffer, type IoasFixture } from '../fixtures';
import { detach, map, pagemapPhys } from '../steps';
import type { Expected } from '../types';

/** GET_PA succeeds only on an area stored in the noiommu domain. */
const NOIOMMU_ONLY: Expected = { noiommu: 'ok', iommu: 'EOPNOTSUPP' };

/** GET_PA at `iova` with a cap of `length`, expecting what a noiommu domain answers. */
function lookup(f: IoasFixture, what: string, iova: bigint, length: bigint) {
  return f.t.expect(what, () => call.getPa(f, { iova, length }), NOIOMMU_ONLY);
}

// Every case needs CAP_SYS_RAWIO (checked per call) and a kernel with the command (7.3 on).
const rawio = ['sys-rawio', knowsCommand(I.IOMMU_IOAS_NOIOMMU_GET_PA)] as const;
const onePage = casesOn(mappedBuffer({ pages: 1 }), rawio);
const onIoas = casesOn(ioas, rawio);

export const getPaCases: ConformanceCase[] = [
  onIoas.test(
    'get-pa.before-attach',
    'GET_PA of a mapped IOVA before any device is attached is EOPNOTSUPP (no noiommu domain stores it)',
    (t, f) => {
      const memory = t.anonymousMemory(t.page);
      map(t, f.iommufd, f.ioasId, { userVa: memory.address, length: t.page, iova: 0x100000n });
      t.expectErrno('GET_PA 0x100000', () => call.getPa(f, { iova: 0x100000n, length: t.page }), 'EOPNOTSUPP');
    },
  ),
  casesOn(mappedBuffer({ pages: 4 }), rawio).test(
    'get-pa.after-attach-matches-pagemap',
    'GET_PA after attach returns what /proc/self/pagemap says, page by page',
    (t, f) => {
      for (let i = 0n; i < 4n; i++) {
        const run = lookup(f, `GET_PA page ${i}`, f.iova + i * t.page, t.page);
        if (!run) continue;
        t.equal(run.length, t.page, `length of page ${i} with a one-page cap`);
        const expected = pagemapPhys(t, f.userVa + i * t.page);
        if (expected === null) return t.fail(`pagemap says page ${i} is not present although it is pinned`);
        if (expected === expected % t.page) return t.skip('pagemap hides frame numbers (needs CAP_SYS_ADMIN)');
        t.equal(run.out_phys, expected, `physical address of page ${i}`);
      }
    },
  ),
  onePage.expect('get-pa.zero-length', 'GET_PA with length 0 is EINVAL', 'GET_PA length 0', 'EINVAL', (f) => call.getPa(f, { length: 0n })),
  onePage.expect('get-pa.nonzero-flags', 'GET_PA with non-zero flags is EOPNOTSUPP', 'GET_PA flags 1', 'EOPNOTSUPP', (f) =>
    call.getPa(f, { flags: 1 }),
  ),
  onePage.expect('get-pa.nonzero-reserved', 'GET_PA with non-zero __reserved is EOPNOTSUPP', 'GET_PA __reserved 1', 'EOPNOTSUPP', (f) =>
    call.getPa(f, { __reserved: 1 }),
  ),
  onePage.test('get-pa.unmapped-iova', 'GET_PA of an IOVA no area covers is ENOENT, attached or not', (t, f) => {
    t.expectErrno('GET_PA just past the area', () => call.getPa(f, { iova: f.iova + t.page }), 'ENOENT');
    t.expectErrno('GET_PA just before the area', () => call.getPa(f, { iova: f.iova - 1n }), 'ENOENT');
  }),
  onePage.test('get-pa.missing-ioas', 'GET_PA on an id that is no IOAS (missing, or the device) is ENOENT', (t, f) => {
    t.expectErrno('GET_PA on IOAS 99', () => call.getPa(f, { ioas_id: 99 }), 'ENOENT');
    t.expectErrno('GET_PA on the device id', () => call.getPa(f, { ioas_id: f.devId }), 'ENOENT');
    t.expectErrno('GET_PA on the HWPT id', () => call.getPa(f, { ioas_id: f.hwptId }), 'ENOENT');
  }),
  onIoas.test('get-pa.iova-overflow', 'GET_PA at IOVA 2^64-1 is EOVERFLOW; 2^64-2 is looked up (ENOENT)', (t, f) => {
    t.expectErrno('GET_PA iova 2^64-1', () => call.getPa(f, { iova: U64_MAX, length: t.page }), 'EOVERFLOW');
    t.expectErrno('GET_PA iova 2^64-2', () => call.getPa(f, { iova: U64_MAX - 1n, length: t.page }), 'ENOENT');
  }),
  casesOn(iommufd, rawio).test('get-pa.check-order', 'GET_PA checks flags, then length, then IOVA overflow, then the IOAS', (t, f) => {
    t.expectErrno(
      'flags 1, length 0, iova 2^64-1, IOAS 99',
      () => call.getPa(f, { ioas_id: 99, iova: U64_MAX, length: 0n, flags: 1 }),
      'EOPNOTSUPP',
    );
    t.expectErrno('length 0, iova 2^64-1, IOAS 99', () => call.getPa(f, { ioas_id: 99, iova: U64_MAX, length: 0n }), 'EINVAL');
    t.expectErrno('iova 2^64-1, IOAS 99', () => call.getPa(f, { ioas_id: 99, iova: U64_MAX, length: 1n }), 'EOVERFLOW');
    t.expectErrno('IOAS 99', () => call.getPa(f, { ioas_id: 99, iova: 0n, length: 1n }), 'ENOENT');
  }),
  onePage.test('get-pa.unaligned-iova', "GET_PA at an IOVA inside a page returns that byte's address and the rest of the run", (t, f) => {
    const start = lookup(f, 'GET_PA at the page start', f.iova, t.page);
    const inner = lookup(f, 'GET_PA at offset 0x123', f.iova + 0x123n, t.page);
    if (start && inner) {
      t.equal(inner.out_phys, start.out_phys + 0x123n, 'physical address at offset 0x123');
      t.equal(inner.length, t.page - 0x123n, 'length: the rest of the page');
    }
  }),
  casesOn(mappedBuffer({ pages: 2 }), rawio).test(
    'get-pa.small-cap',
    'GET_PA never reports more than the cap: 1 byte, and 0x80 bytes from inside a page',
    (t, f) => {
      const one = lookup(f, 'GET_PA cap 1', f.iova, 1n);
      if (one) t.equal(one.length, 1n, 'length with cap 1');
      const small = lookup(f, 'GET_PA cap 0x80 at offset 0x10', f.iova + 0x10n, 0x80n);
      if (small) t.equal(small.length, 0x80n, 'length with cap 0x80');
    },
  ),
  casesOn(mappedBuffer({ pages: 3 }), rawio).test(
    'get-pa.last-page-of-area',
    "GET_PA in the last page of an area stops at the area's end whatever the cap",
    (t, f) => {
      const lastPage = f.iova + f.length - t.page;
      const run = lookup(f, 'GET_PA at the last page + 0x10, cap 1 MiB', lastPage + 0x10n, 0x100000n);
      if (run) t.equal(run.length, t.page - 0x10n, 'length to the end of the area');
      const lastByte = lookup(f, 'GET_PA at the last byte', f.iova + f.length - 1n, 0x100000n);
      if (lastByte) t.equal(lastByte.length, 1n, 'length at the last byte');
    },
  ),
  casesOn(mappedBuffer({ pages: 16, hugetlb: true }), rawio).test(
    'get-pa.huge-page-run',
    'GET_PA over several pages backed by one huge page reports them as one run, capped by the area',
    (t, f) => {
      const run = lookup(f, 'GET_PA of 16 huge-page-backed pages', f.iova, 1n << 40n);
      if (run) t.equal(run.length, f.length, 'length: the whole area');
      const capped = lookup(f, 'GET_PA capped at 5 pages + 1', f.iova, 5n * t.page + 1n);
      if (capped) t.equal(capped.length, 5n * t.page + 1n, 'length with a cap inside the run');
      const fromInside = lookup(f, 'GET_PA from page 3 + 0x40', f.iova + 3n * t.page + 0x40n, 1n << 40n);
      if (run && fromInside) {
        t.equal(fromInside.out_phys, run.out_phys + 3n * t.page + 0x40n, 'physical address inside the run');
        t.equal(fromInside.length, f.length - 3n * t.page - 0x40n, 'length to the end of the area');
      }
    },
  ),
  casesOn(attachedDevice, rawio).test(
    'get-pa.never-crosses-areas',
    'two adjacent areas over physically contiguous memory are reported separately',
    (t, f) => {
      const half = t.page * 4n;
      const memory = t.anonymousMemory(half * 2n, { hugetlb: true });
      map(t, f.iommufd, f.ioasId, { userVa: memory.address, length: half, iova: 0x100000n });
      map(t, f.iommufd, f.ioasId, { userVa: memory.address + half, length: half, iova: 0x100000n + half });
      const first = lookup(f, 'GET_PA of the first area, cap covering both', 0x100000n, half * 2n);
      const second = lookup(f, 'GET_PA of the second area', 0x100000n + half, half);
      if (first && second) {
        t.equal(second.out_phys, first.out_phys + half, 'the second area continues the first physically');
        t.equal(first.length, half, 'the run stops at the end of the first area');
      }
    },
  ),
  onePage.test('get-pa.after-unmap', 'GET_PA after the area is unmapped is ENOENT', (t, f) => {
    lookup(f, 'GET_PA while mapped', f.iova, t.page);
    t.ok('unmap', () => call.unmap(f));
    t.expectErrno('GET_PA after unmap', () => call.getPa(f, { length: t.page }), 'ENOENT');
  }),
  onePage.test('get-pa.after-detach', 'after detach the noiommu domain is gone: GET_PA of a still-mapped IOVA is EOPNOTSUPP', (t, f) => {
    detach(t, f.deviceFd);
    t.expectErrno('GET_PA after detach', () => call.getPa(f, { length: t.page }), 'EOPNOTSUPP');
  }),
];
