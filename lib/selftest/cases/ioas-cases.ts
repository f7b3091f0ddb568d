/**
 * IOAS lifetime and IOVA space: allocation and the shared object-ID space, destroy, IOVA ranges
 * (before and after a device attaches), the allowed-IOVA list and automatic IOVA allocation.
 * Sources: drivers/iommu/iommufd/ioas.c, io_pagetable.c (iopt_alloc_iova, iopt_set_allow_iova),
 * main.c (iommufd_object_remove).
 */
import { defineCase, type ConformanceCase } from '../case';
import type { CaseContext } from '../context';
import { U64_MAX } from '../../uapi/codec';
import * as I from '../../uapi/iommufd';
import { buildStruct, rawIoctl } from '../raw-ioctl';
import { attach, bind, destroy, detach, ioasAlloc, iovaRangesCall, map, mapCall, openAttached, openBound } from '../steps';

/** The MSI doorbell window x86 IOMMU drivers reserve for every device (IOAPIC_RANGE_START/END). */
const X86_MSI_WINDOW = 0xfee0_0000n;

function allowIovasCall(t: CaseContext, iommufd: number, ioasId: number, ranges: { start: bigint; last: bigint }[], reserved = 0): () => void {
  return () => {
    const entry = I.IommuIovaRange.size;
    const memory = t.anonymousMemory(t.page);
    const bytes = new Uint8Array(memory.buffer!);
    ranges.forEach((r, i) => I.IommuIovaRange.encode(r, bytes, i * entry));
    rawIoctl(t.kernel, iommufd, I.IOMMU_IOAS_ALLOW_IOVAS, I.IommuIoasAllowIovas, {
      ioas_id: ioasId, num_iovas: ranges.length, allowed_iovas: ranges.length ? memory.address : 0n, __reserved: reserved,
    });
  };
}

/** A sub-range of fresh memory whose address is aligned to `align` bytes (for IOVA alignment rules). */
function alignedMemory(t: CaseContext, length: bigint, align: bigint): bigint {
  const memory = t.anonymousMemory(length + align);
  return ((memory.address + align - 1n) / align) * align;
}

export const ioasCases: ConformanceCase[] = [
  defineCase({
    id: 'ioas.alloc.lowest-free-id',
    title: 'IOAS ids come from one xarray per iommufd: lowest free from 1, reused after destroy',
    run(t) {
      const fd = t.openIommufd();
      t.equal(ioasAlloc(t, fd), 1, 'first id');
      t.equal(ioasAlloc(t, fd), 2, 'second id');
      t.equal(ioasAlloc(t, fd), 3, 'third id');
      destroy(t, fd, 2);
      t.equal(ioasAlloc(t, fd), 2, 'id after destroying 2');
      destroy(t, fd, 1);
      t.equal(ioasAlloc(t, fd), 1, 'id after destroying 1');
      t.equal(ioasAlloc(t, fd), 4, 'next id when none is free');
    },
  }),
  defineCase({
    id: 'ioas.alloc.per-iommufd-ids',
    title: 'two iommufds number their objects independently',
    run(t) {
      const a = t.openIommufd();
      const b = t.openIommufd();
      t.equal(ioasAlloc(t, a), 1, 'first id in iommufd A');
      t.equal(ioasAlloc(t, b), 1, 'first id in iommufd B');
    },
  }),
  defineCase({
    id: 'ioas.alloc.nonzero-flags',
    title: 'IOAS_ALLOC with non-zero flags is EOPNOTSUPP and allocates nothing',
    run(t) {
      const fd = t.openIommufd();
      t.expectErrno('IOAS_ALLOC flags 1', () => rawIoctl(t.kernel, fd, I.IOMMU_IOAS_ALLOC, I.IommuIoasAlloc, { flags: 1 }), 'EOPNOTSUPP');
      t.equal(ioasAlloc(t, fd), 1, 'the failed call used no id');
    },
  }),
  defineCase({
    id: 'ioas.destroy.twice',
    title: 'destroying an IOAS twice: the second is ENOENT',
    run(t) {
      const fd = t.openIommufd();
      const id = ioasAlloc(t, fd);
      destroy(t, fd, id);
      t.expectErrno('second IOMMU_DESTROY', () => rawIoctl(t.kernel, fd, I.IOMMU_DESTROY, I.IommuDestroy, { id }), 'ENOENT');
    },
  }),
  defineCase({
    id: 'ioas.destroy.missing-ids',
    title: 'destroying id 0 or 0xffffffff is ENOENT',
    run(t) {
      const fd = t.openIommufd();
      ioasAlloc(t, fd);
      for (const id of [0, 0xffff_ffff]) {
        t.expectErrno(`IOMMU_DESTROY ${id}`, () => rawIoctl(t.kernel, fd, I.IOMMU_DESTROY, I.IommuDestroy, { id }), 'ENOENT');
      }
    },
  }),
  defineCase({
    id: 'ioas.destroy.with-mappings',
    title: 'an IOAS that still has mappings can be destroyed (its areas go with it)',
    run(t) {
      const fd = t.openIommufd();
      const id = ioasAlloc(t, fd);
      const memory = t.anonymousMemory(t.page * 2n);
      map(t, fd, id, { userVa: memory.address, length: t.page * 2n, iova: 0x100000n });
      destroy(t, fd, id);
    },
  }),
  defineCase({
    id: 'ioas.destroy.attached',
    title: 'destroying an IOAS a device is attached to is EBUSY; after detach it works',
    needs: ['device'],
    run(t) {
      const dev = openAttached(t);
      t.expectErrno('IOMMU_DESTROY of the attached IOAS', () => rawIoctl(t.kernel, dev.iommufd, I.IOMMU_DESTROY, I.IommuDestroy, { id: dev.ioasId }), 'EBUSY');
      detach(t, dev.deviceFd);
      destroy(t, dev.iommufd, dev.ioasId);
    },
  }),
  defineCase({
    id: 'ioas.destroy.device-object',
    title: 'IOMMU_DESTROY of a bound device\'s id is EBUSY (VFIO holds it)',
    needs: ['device'],
    run(t) {
      const dev = openBound(t);
      t.expectErrno('IOMMU_DESTROY of the device id', () => rawIoctl(t.kernel, dev.iommufd, I.IOMMU_DESTROY, I.IommuDestroy, { id: dev.devId }), 'EBUSY');
    },
  }),
  defineCase({
    id: 'ioas.ids.shared-with-devices-and-hwpts',
    title: 'devices, IOAS and the HWPT an attach creates share one id space',
    needs: ['device'],
    run(t) {
      const deviceFd = t.openDevice();
      const iommufd = t.openIommufd();
      t.equal(bind(t, deviceFd, iommufd), 1, 'device id of the first object');
      const ioasId = ioasAlloc(t, iommufd);
      t.equal(ioasId, 2, 'IOAS id after the device');
      const hwptId = attach(t, deviceFd, ioasId);
      t.equal(hwptId, 3, 'pt_id written back by attach: the automatic HWPT');
      t.equal(ioasAlloc(t, iommufd), 4, 'next IOAS id');
      t.expectErrno('IOMMU_DESTROY of the attached automatic HWPT', () => rawIoctl(t.kernel, iommufd, I.IOMMU_DESTROY, I.IommuDestroy, { id: hwptId }), 'EBUSY');
      detach(t, deviceFd);
      // Detach drops the last reference of the automatic HWPT, which frees its id.
      t.equal(ioasAlloc(t, iommufd), 3, 'id after detach destroyed the automatic HWPT');
    },
  }),
  defineCase({
    id: 'ioas.attach.twice-same-ioas',
    title: 'attaching again to the same IOAS replaces the attachment with the same HWPT',
    needs: ['device'],
    run(t) {
      const dev = openAttached(t);
      t.equal(attach(t, dev.deviceFd, dev.ioasId), dev.hwptId, 'pt_id of the second attach');
    },
  }),
  defineCase({
    id: 'ioas.attach.replace-other-ioas',
    title: 'attaching to a second IOAS moves the device there; the first IOAS can then be destroyed',
    needs: ['device'],
    run(t) {
      const dev = openAttached(t);
      const second = ioasAlloc(t, dev.iommufd);
      attach(t, dev.deviceFd, second);
      destroy(t, dev.iommufd, dev.ioasId);
      t.expectErrno('IOMMU_DESTROY of the IOAS now attached', () => rawIoctl(t.kernel, dev.iommufd, I.IOMMU_DESTROY, I.IommuDestroy, { id: second }), 'EBUSY');
    },
  }),
  defineCase({
    id: 'ioas.iova-ranges.empty',
    title: 'an IOAS with no device has one IOVA range, 0..2^64-1, alignment 1',
    run(t) {
      const fd = t.openIommufd();
      const r = t.ok('IOAS_IOVA_RANGES', iovaRangesCall(t, fd, ioasAlloc(t, fd)));
      t.equal(r.count, 1, 'number of ranges');
      t.equal(r.ranges[0]!.start, 0n, 'start');
      t.equal(r.ranges[0]!.last, U64_MAX, 'last');
      t.equal(r.alignment, 1n, 'alignment');
    },
  }),
  defineCase({
    id: 'ioas.iova-ranges.attached',
    title: 'IOVA ranges after attach: noiommu keeps 0..2^64-1; an IOMMU reserves its aperture and the MSI window',
    needs: ['device'],
    run(t) {
      const dev = openAttached(t);
      const r = t.ok('IOAS_IOVA_RANGES', iovaRangesCall(t, dev.iommufd, dev.ioasId));
      t.note(`ranges: ${r.ranges.map((x) => `0x${x.start.toString(16)}..0x${x.last.toString(16)}`).join(', ')}; alignment ${r.alignment}`);
      t.equal(r.alignment, t.page, 'alignment is the domain\'s smallest page');
      if (t.mode === 'noiommu') {
        // The noiommu domain covers the whole 64-bit space and no reserved regions are applied.
        t.equal(r.count, 1, 'number of ranges');
        t.equal(r.ranges[0]!.start, 0n, 'start');
        t.equal(r.ranges[0]!.last, U64_MAX, 'last');
      } else {
        t.check(r.count >= 1, 'at least one range');
        const inMsi = r.ranges.some((x) => x.start <= X86_MSI_WINDOW && X86_MSI_WINDOW <= x.last);
        t.check(!inMsi, 'the x86 MSI window 0xfee00000 is reserved');
        t.check(r.ranges[r.count - 1]!.last < U64_MAX, 'the IOMMU aperture ends below 2^64-1');
      }
    },
  }),
  defineCase({
    id: 'ioas.iova-ranges.array-too-small',
    title: 'IOVA_RANGES with num_iovas 0 is EMSGSIZE and reports how many ranges exist',
    run(t) {
      const fd = t.openIommufd();
      const ioasId = ioasAlloc(t, fd);
      const buf = buildStruct(I.IommuIoasIovaRanges, { ioas_id: ioasId, num_iovas: 0, allowed_iovas: 0n });
      t.expectErrno('IOAS_IOVA_RANGES num_iovas 0', () => t.kernel.ioctl(fd, I.IOMMU_IOAS_IOVA_RANGES.number, buf), 'EMSGSIZE');
      // The struct is written back before EMSGSIZE is returned (ioas.c iommufd_ioas_iova_ranges).
      t.equal(I.IommuIoasIovaRanges.get(buf, 'num_iovas'), 1, 'num_iovas after EMSGSIZE');
      t.equal(I.IommuIoasIovaRanges.get(buf, 'out_iova_alignment'), 1n, 'out_iova_alignment after EMSGSIZE');
    },
  }),
  defineCase({
    id: 'ioas.iova-ranges.array-too-small-attached',
    title: 'with a device attached, a one-entry array gets the first range and EMSGSIZE when there are more',
    needs: ['device'],
    run(t) {
      const dev = openAttached(t);
      const all = t.ok('IOAS_IOVA_RANGES', iovaRangesCall(t, dev.iommufd, dev.ioasId));
      const one = t.expect('IOAS_IOVA_RANGES num_iovas 1', iovaRangesCall(t, dev.iommufd, dev.ioasId, 1), all.count > 1 ? 'EMSGSIZE' : 'ok');
      if (one) t.equal(one.count, 1, 'num_iovas');
      t.note(`${all.count} range(s) in mode ${t.mode}`);
    },
  }),
  defineCase({
    id: 'ioas.iova-ranges.nonzero-reserved',
    title: 'IOVA_RANGES with non-zero __reserved is EOPNOTSUPP',
    run(t) {
      const fd = t.openIommufd();
      const ioasId = ioasAlloc(t, fd);
      t.expectErrno('IOAS_IOVA_RANGES __reserved 1', () =>
        rawIoctl(t.kernel, fd, I.IOMMU_IOAS_IOVA_RANGES, I.IommuIoasIovaRanges, { ioas_id: ioasId, __reserved: 1 }), 'EOPNOTSUPP');
    },
  }),
  defineCase({
    id: 'ioas.iova-ranges.wrong-type-id',
    title: 'IOVA_RANGES on an id that is a device, not an IOAS, is ENOENT',
    needs: ['device'],
    run(t) {
      const dev = openBound(t);
      t.expectErrno('IOAS_IOVA_RANGES on the device id', iovaRangesCall(t, dev.iommufd, dev.devId), 'ENOENT');
    },
  }),
  defineCase({
    id: 'ioas.allow-iovas.start-after-last',
    title: 'ALLOW_IOVAS with start > last is EINVAL',
    run(t) {
      const fd = t.openIommufd();
      const ioasId = ioasAlloc(t, fd);
      t.expectErrno('ALLOW_IOVAS 0x2000..0x1000', allowIovasCall(t, fd, ioasId, [{ start: 0x2000n, last: 0x1000n }]), 'EINVAL');
    },
  }),
  defineCase({
    id: 'ioas.allow-iovas.start-equals-last',
    title: 'ALLOW_IOVAS with start == last (a one-byte range) is EINVAL',
    run(t) {
      const fd = t.openIommufd();
      const ioasId = ioasAlloc(t, fd);
      // iommufd_ioas_load_iovas rejects start >= last, so a single-byte range cannot be allowed.
      t.expectErrno('ALLOW_IOVAS 0x1000..0x1000', allowIovasCall(t, fd, ioasId, [{ start: 0x1000n, last: 0x1000n }]), 'EINVAL');
    },
  }),
  defineCase({
    id: 'ioas.allow-iovas.overlapping',
    title: 'ALLOW_IOVAS with two overlapping ranges is EINVAL',
    run(t) {
      const fd = t.openIommufd();
      const ioasId = ioasAlloc(t, fd);
      t.expectErrno('ALLOW_IOVAS overlapping', allowIovasCall(t, fd, ioasId, [
        { start: 0x10000n, last: 0x1ffffn }, { start: 0x18000n, last: 0x2ffffn },
      ]), 'EINVAL');
    },
  }),
  defineCase({
    id: 'ioas.allow-iovas.nonzero-reserved',
    title: 'ALLOW_IOVAS with non-zero __reserved is EOPNOTSUPP',
    run(t) {
      const fd = t.openIommufd();
      const ioasId = ioasAlloc(t, fd);
      t.expectErrno('ALLOW_IOVAS __reserved 1', allowIovasCall(t, fd, ioasId, [], 1), 'EOPNOTSUPP');
    },
  }),
  defineCase({
    id: 'ioas.allow-iovas.guides-automatic-iova',
    title: 'automatic IOVAs come from the allowed ranges; IOVA_RANGES still reports the whole space',
    run(t) {
      const fd = t.openIommufd();
      const ioasId = ioasAlloc(t, fd);
      t.ok('ALLOW_IOVAS 0x40000000..0x4fffffff', allowIovasCall(t, fd, ioasId, [{ start: 0x4000_0000n, last: 0x4fff_ffffn }]));
      const memory = t.anonymousMemory(t.page);
      const iova = map(t, fd, ioasId, { userVa: memory.address, length: t.page });
      t.equal(iova, 0x4000_0000n, 'automatic IOVA (start of the allowed range)');
      // IOVA_RANGES lists the holes of the reserved tree; allowed ranges do not change it.
      const r = t.ok('IOAS_IOVA_RANGES', iovaRangesCall(t, fd, ioasId));
      t.equal(r.count, 1, 'number of ranges');
    },
  }),
  defineCase({
    id: 'ioas.allow-iovas.fixed-map-outside',
    title: 'a fixed-IOVA map outside the allowed ranges still succeeds (allowed ranges only steer allocation)',
    run(t) {
      const fd = t.openIommufd();
      const ioasId = ioasAlloc(t, fd);
      t.ok('ALLOW_IOVAS 0x40000000..0x4fffffff', allowIovasCall(t, fd, ioasId, [{ start: 0x4000_0000n, last: 0x4fff_ffffn }]));
      const memory = t.anonymousMemory(t.page);
      // iopt_check_iova looks at reserved ranges and existing areas only, not at allowed ranges.
      t.expect('fixed map at 0x100000', mapCall(t, fd, ioasId, { userVa: memory.address, length: t.page, iova: 0x100000n }), 'ok');
    },
  }),
  defineCase({
    id: 'ioas.auto-iova.first-choices',
    title: 'automatic IOVAs: one page lands at PAGE_SIZE, the next right after, a 4-page buffer aligned to 4 pages',
    run(t) {
      const fd = t.openIommufd();
      const ioasId = ioasAlloc(t, fd);
      const a = t.anonymousMemory(t.page);
      const b = t.anonymousMemory(t.page);
      // iopt_alloc_iova never returns IOVA 0 and starts looking at PAGE_SIZE.
      t.equal(map(t, fd, ioasId, { userVa: a.address, length: t.page }), t.page, 'first one-page IOVA');
      t.equal(map(t, fd, ioasId, { userVa: b.address, length: t.page }), 2n * t.page, 'second one-page IOVA');
      // A 4-page buffer whose address is 4-page aligned asks for 4-page IOVA alignment.
      const four = 4n * t.page;
      const va = alignedMemory(t, four, four);
      t.equal(map(t, fd, ioasId, { userVa: va, length: four }), four, 'IOVA of the aligned 4-page buffer');
    },
  }),
  defineCase({
    id: 'ioas.auto-iova.keeps-sub-page-offset',
    title: 'an automatic IOVA keeps the user address\'s offset inside its page',
    run(t) {
      const fd = t.openIommufd();
      const ioasId = ioasAlloc(t, fd);
      const memory = t.anonymousMemory(t.page);
      const iova = map(t, fd, ioasId, { userVa: memory.address + 0x10n, length: 0x100n });
      t.equal(iova % t.page, 0x10n, 'IOVA offset inside the page');
      t.equal(iova, t.page + 0x10n, 'IOVA');
    },
  }),
  defineCase({
    id: 'ioas.auto-iova.reserved-near-top-enospc',
    title: 'syzbot c2f65e2801743ca64e08 regression: a hole too small near 2^64 makes automatic allocation ENOSPC, not wrap',
    run(t) {
      const fd = t.openIommufd();
      const ioasId = ioasAlloc(t, fd);
      // The original used the test-only ADD_RESERVED command to leave a small hole below 2^64; the
      // allowed-IOVA list makes the same situation from userspace: the only allowed range starts
      // 0x7ff9 bytes below the top. A 32 KiB-aligned 32 KiB buffer asks for 32 KiB IOVA
      // alignment, and aligning that start up used to overflow to a tiny IOVA.
      t.ok('ALLOW_IOVAS 0xffffffffffff8007..2^64-1', allowIovasCall(t, fd, ioasId, [{ start: 0xffff_ffff_ffff_8007n, last: U64_MAX }]));
      const length = 0x8000n;
      const va = alignedMemory(t, length, length);
      t.expectErrno('automatic map of 32 KiB', mapCall(t, fd, ioasId, { userVa: va, length }), 'ENOSPC');
    },
  }),
  defineCase({
    id: 'ioas.auto-iova.full-enospc',
    title: 'automatic allocation with no allowed hole big enough is ENOSPC',
    run(t) {
      const fd = t.openIommufd();
      const ioasId = ioasAlloc(t, fd);
      t.ok('ALLOW_IOVAS 0x100000..0x101fff', allowIovasCall(t, fd, ioasId, [{ start: 0x100000n, last: 0x101fffn }]));
      const memory = t.anonymousMemory(4n * t.page);
      t.expectErrno('automatic map of 4 pages', mapCall(t, fd, ioasId, { userVa: memory.address, length: 4n * t.page }), 'ENOSPC');
    },
  }),
];
