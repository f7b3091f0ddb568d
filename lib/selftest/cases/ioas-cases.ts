/**
 * IOAS lifetime and IOVA space: allocation and the shared object-ID space, destroy, IOVA ranges
 * (before and after a device attaches), the allowed-IOVA list and automatic IOVA allocation.
 * Sources: drivers/iommu/iommufd/ioas.c, io_pagetable.c (iopt_alloc_iova, iopt_set_allow_iova),
 * main.c (iommufd_object_remove).
 */
import type { ConformanceCase } from '../case';
import type { CaseContext } from '../context';
import { U64_MAX } from '../../uapi/codec';
import * as I from '../../uapi/iommufd';
import { call, MAP_RW } from '../calls';
import { casesOn } from '../fixture';
import { attachedDevice, boundDevice, ioas, iommufd, openDevice, type IoasFixture } from '../fixtures';
import { buildStruct } from '../raw-ioctl';
import { attach, bind, destroy, detach, ioasAlloc, iovaRanges, map } from '../steps';

/** The MSI doorbell window x86 IOMMU drivers reserve for every device (IOAPIC_RANGE_START/END). */
const X86_MSI_WINDOW = 0xfee0_0000n;

function allowIovas(f: IoasFixture, ranges: { start: bigint; last: bigint }[], reserved = 0): void {
  const entry = I.IommuIovaRange.size;
  const memory = f.t.anonymousMemory(f.t.page);
  const bytes = new Uint8Array(memory.buffer!);
  ranges.forEach((r, i) => I.IommuIovaRange.encode(r, bytes, i * entry));
  call.allowIovas(f, { num_iovas: ranges.length, allowed_iovas: ranges.length ? memory.address : 0n, __reserved: reserved });
}

/** A sub-range of fresh memory whose address is aligned to `align` bytes (for IOVA alignment rules). */
function alignedMemory(t: CaseContext, length: bigint, align: bigint): bigint {
  const memory = t.anonymousMemory(length + align);
  return ((memory.address + align - 1n) / align) * align;
}

const onIommufd = casesOn(iommufd);
const onIoas = casesOn(ioas);
const bound = casesOn(boundDevice);
const attached = casesOn(attachedDevice);

export const ioasCases: ConformanceCase[] = [
  onIommufd.test(
    'ioas.alloc.lowest-free-id',
    'IOAS ids come from one xarray per iommufd: lowest free from 1, reused after destroy',
    (t, { iommufd: fd }) => {
      t.equal(ioasAlloc(t, fd), 1, 'first id');
      t.equal(ioasAlloc(t, fd), 2, 'second id');
      t.equal(ioasAlloc(t, fd), 3, 'third id');
      destroy(t, fd, 2);
      t.equal(ioasAlloc(t, fd), 2, 'id after destroying 2');
      destroy(t, fd, 1);
      t.equal(ioasAlloc(t, fd), 1, 'id after destroying 1');
      t.equal(ioasAlloc(t, fd), 4, 'next id when none is free');
    },
  ),
  onIommufd.test('ioas.alloc.per-iommufd-ids', 'two iommufds number their objects independently', (t, { iommufd: a }) => {
    const b = t.openIommufd();
    t.equal(ioasAlloc(t, a), 1, 'first id in iommufd A');
    t.equal(ioasAlloc(t, b), 1, 'first id in iommufd B');
  }),
  onIommufd.test('ioas.alloc.nonzero-flags', 'IOAS_ALLOC with non-zero flags is EOPNOTSUPP and allocates nothing', (t, f) => {
    t.expectErrno('IOAS_ALLOC flags 1', () => call.ioasAlloc(f, { flags: 1 }), 'EOPNOTSUPP');
    t.equal(ioasAlloc(t, f.iommufd), 1, 'the failed call used no id');
  }),
  onIoas.test('ioas.destroy.twice', 'destroying an IOAS twice: the second is ENOENT', (t, f) => {
    destroy(t, f.iommufd, f.ioasId);
    t.expectErrno('second IOMMU_DESTROY', () => call.destroy(f, { id: f.ioasId }), 'ENOENT');
  }),
  onIoas.test('ioas.destroy.missing-ids', 'destroying id 0 or 0xffffffff is ENOENT', (t, f) => {
    for (const id of [0, 0xffff_ffff]) t.expectErrno(`IOMMU_DESTROY ${id}`, () => call.destroy(f, { id }), 'ENOENT');
  }),
  onIoas.test('ioas.destroy.with-mappings', 'an IOAS that still has mappings can be destroyed (its areas go with it)', (t, f) => {
    const memory = t.anonymousMemory(t.page * 2n);
    map(t, f.iommufd, f.ioasId, { userVa: memory.address, length: t.page * 2n, iova: 0x100000n });
    destroy(t, f.iommufd, f.ioasId);
  }),
  attached.test('ioas.destroy.attached', 'destroying an IOAS a device is attached to is EBUSY; after detach it works', (t, f) => {
    t.expectErrno('IOMMU_DESTROY of the attached IOAS', () => call.destroy(f, { id: f.ioasId }), 'EBUSY');
    detach(t, f.deviceFd);
    destroy(t, f.iommufd, f.ioasId);
  }),
  bound.expect(
    'ioas.destroy.device-object',
    "IOMMU_DESTROY of a bound device's id is EBUSY (VFIO holds it)",
    'IOMMU_DESTROY of the device id',
    'EBUSY',
    (f) => call.destroy(f, { id: f.devId }),
  ),
  casesOn(openDevice).test(
    'ioas.ids.shared-with-devices-and-hwpts',
    'devices, IOAS and the HWPT an attach creates share one id space',
    (t, f) => {
      t.equal(bind(t, f.deviceFd, f.iommufd), 1, 'device id of the first object');
      const ioasId = ioasAlloc(t, f.iommufd);
      t.equal(ioasId, 2, 'IOAS id after the device');
      const hwptId = attach(t, f.deviceFd, ioasId);
      t.equal(hwptId, 3, 'pt_id written back by attach: the automatic HWPT');
      t.equal(ioasAlloc(t, f.iommufd), 4, 'next IOAS id');
      t.expectErrno('IOMMU_DESTROY of the attached automatic HWPT', () => call.destroy(f, { id: hwptId }), 'EBUSY');
      detach(t, f.deviceFd);
      // Detach drops the last reference of the automatic HWPT, which frees its id.
      t.equal(ioasAlloc(t, f.iommufd), 3, 'id after detach destroyed the automatic HWPT');
    },
  ),
  attached.test('ioas.attach.twice-same-ioas', 'attaching again to the same IOAS replaces the attachment with the same HWPT', (t, f) => {
    t.equal(attach(t, f.deviceFd, f.ioasId), f.hwptId, 'pt_id of the second attach');
  }),
  attached.test(
    'ioas.attach.replace-other-ioas',
    'attaching to a second IOAS moves the device there; the first IOAS can then be destroyed',
    (t, f) => {
      const second = ioasAlloc(t, f.iommufd);
      attach(t, f.deviceFd, second);
      destroy(t, f.iommufd, f.ioasId);
      t.expectErrno('IOMMU_DESTROY of the IOAS now attached', () => call.destroy(f, { id: second }), 'EBUSY');
    },
  ),
  onIoas.test('ioas.iova-ranges.empty', 'an IOAS with no device has one IOVA range, 0..2^64-1, alignment 1', (t, f) => {
    const r = t.ok('IOAS_IOVA_RANGES', () => iovaRanges(f));
    t.equal(r.count, 1, 'number of ranges');
    t.equal(r.ranges[0]!.start, 0n, 'start');
    t.equal(r.ranges[0]!.last, U64_MAX, 'last');
    t.equal(r.alignment, 1n, 'alignment');
  }),
  attached.test(
    'ioas.iova-ranges.attached',
    'IOVA ranges after attach: noiommu keeps 0..2^64-1; an IOMMU reserves its aperture and the MSI window',
    (t, f) => {
      const r = t.ok('IOAS_IOVA_RANGES', () => iovaRanges(f));
      t.note(`ranges: ${r.ranges.map((x) => `0x${x.start.toString(16)}..0x${x.last.toString(16)}`).join(', ')}; alignment ${r.alignment}`);
      t.equal(r.alignment, t.page, "alignment is the domain's smallest page");
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
  ),
  onIoas.test('ioas.iova-ranges.array-too-small', 'IOVA_RANGES with num_iovas 0 is EMSGSIZE and reports how many ranges exist', (t, f) => {
    const buf = buildStruct(I.IommuIoasIovaRanges, { ioas_id: f.ioasId, num_iovas: 0, allowed_iovas: 0n });
    t.expectErrno('IOAS_IOVA_RANGES num_iovas 0', () => t.kernel.ioctl(f.iommufd, I.IOMMU_IOAS_IOVA_RANGES.number, buf), 'EMSGSIZE');
    // The struct is written back before EMSGSIZE is returned (ioas.c iommufd_ioas_iova_ranges).
    t.equal(I.IommuIoasIovaRanges.get(buf, 'num_iovas'), 1, 'num_iovas after EMSGSIZE');
    t.equal(I.IommuIoasIovaRanges.get(buf, 'out_iova_alignment'), 1n, 'out_iova_alignment after EMSGSIZE');
  }),
  attached.test(
    'ioas.iova-ranges.array-too-small-attached',
    'with a device attached, a one-entry array gets the first range and EMSGSIZE when there are more',
    (t, f) => {
      const all = t.ok('IOAS_IOVA_RANGES', () => iovaRanges(f));
      const one = t.expect('IOAS_IOVA_RANGES num_iovas 1', () => iovaRanges(f, 1), all.count > 1 ? 'EMSGSIZE' : 'ok');
      if (one) t.equal(one.count, 1, 'num_iovas');
      t.note(`${all.count} range(s) in mode ${t.mode}`);
    },
  ),
  onIoas.expect(
    'ioas.iova-ranges.nonzero-reserved',
    'IOVA_RANGES with non-zero __reserved is EOPNOTSUPP',
    'IOAS_IOVA_RANGES __reserved 1',
    'EOPNOTSUPP',
    (f) => call.iovaRanges(f, { __reserved: 1 }),
  ),
  bound.expect(
    'ioas.iova-ranges.wrong-type-id',
    'IOVA_RANGES on an id that is a device, not an IOAS, is ENOENT',
    'IOAS_IOVA_RANGES on the device id',
    'ENOENT',
    (f) => iovaRanges({ ...f, ioasId: f.devId }),
  ),
  onIoas.expect(
    'ioas.allow-iovas.start-after-last',
    'ALLOW_IOVAS with start > last is EINVAL',
    'ALLOW_IOVAS 0x2000..0x1000',
    'EINVAL',
    (f) => allowIovas(f, [{ start: 0x2000n, last: 0x1000n }]),
  ),
  // iommufd_ioas_load_iovas rejects start >= last, so a single-byte range cannot be allowed.
  onIoas.expect(
    'ioas.allow-iovas.start-equals-last',
    'ALLOW_IOVAS with start == last (a one-byte range) is EINVAL',
    'ALLOW_IOVAS 0x1000..0x1000',
    'EINVAL',
    (f) => allowIovas(f, [{ start: 0x1000n, last: 0x1000n }]),
  ),
  onIoas.expect(
    'ioas.allow-iovas.overlapping',
    'ALLOW_IOVAS with two overlapping ranges is EINVAL',
    'ALLOW_IOVAS overlapping',
    'EINVAL',
    (f) =>
      allowIovas(f, [
        { start: 0x10000n, last: 0x1ffffn },
        { start: 0x18000n, last: 0x2ffffn },
      ]),
  ),
  onIoas.expect(
    'ioas.allow-iovas.nonzero-reserved',
    'ALLOW_IOVAS with non-zero __reserved is EOPNOTSUPP',
    'ALLOW_IOVAS __reserved 1',
    'EOPNOTSUPP',
    (f) => allowIovas(f, [], 1),
  ),
  onIoas.test(
    'ioas.allow-iovas.guides-automatic-iova',
    'automatic IOVAs come from the allowed ranges; IOVA_RANGES still reports the whole space',
    (t, f) => {
      t.ok('ALLOW_IOVAS 0x40000000..0x4fffffff', () => allowIovas(f, [{ start: 0x4000_0000n, last: 0x4fff_ffffn }]));
      const memory = t.anonymousMemory(t.page);
      t.equal(
        map(t, f.iommufd, f.ioasId, { userVa: memory.address, length: t.page }),
        0x4000_0000n,
        'automatic IOVA (start of the allowed range)',
      );
      // IOVA_RANGES lists the holes of the reserved tree; allowed ranges do not change it.
      t.equal(t.ok('IOAS_IOVA_RANGES', () => iovaRanges(f)).count, 1, 'number of ranges');
    },
  ),
  onIoas.test(
    'ioas.allow-iovas.fixed-map-outside',
    'a fixed-IOVA map outside the allowed ranges still succeeds (allowed ranges only steer allocation)',
    (t, f) => {
      t.ok('ALLOW_IOVAS 0x40000000..0x4fffffff', () => allowIovas(f, [{ start: 0x4000_0000n, last: 0x4fff_ffffn }]));
      const memory = t.anonymousMemory(t.page);
      // iopt_check_iova looks at reserved ranges and existing areas only, not at allowed ranges.
      t.expect('fixed map at 0x100000', () => call.map(f, { user_va: memory.address, length: t.page, iova: 0x100000n }), 'ok');
    },
  ),
  onIoas.test(
    'ioas.auto-iova.first-choices',
    'automatic IOVAs: one page lands at PAGE_SIZE, the next right after, a 4-page buffer aligned to 4 pages',
    (t, f) => {
      const a = t.anonymousMemory(t.page);
      const b = t.anonymousMemory(t.page);
      // iopt_alloc_iova never returns IOVA 0 and starts looking at PAGE_SIZE.
      t.equal(map(t, f.iommufd, f.ioasId, { userVa: a.address, length: t.page }), t.page, 'first one-page IOVA');
      t.equal(map(t, f.iommufd, f.ioasId, { userVa: b.address, length: t.page }), 2n * t.page, 'second one-page IOVA');
      // A 4-page buffer whose address is 4-page aligned asks for 4-page IOVA alignment.
      const four = 4n * t.page;
      t.equal(
        map(t, f.iommufd, f.ioasId, { userVa: alignedMemory(t, four, four), length: four }),
        four,
        'IOVA of the aligned 4-page buffer',
      );
    },
  ),
  onIoas.test('ioas.auto-iova.keeps-sub-page-offset', "an automatic IOVA keeps the user address's offset inside its page", (t, f) => {
    const memory = t.anonymousMemory(t.page);
    const iova = map(t, f.iommufd, f.ioasId, { userVa: memory.address + 0x10n, length: 0x100n });
    t.equal(iova % t.page, 0x10n, 'IOVA offset inside the page');
    t.equal(iova, t.page + 0x10n, 'IOVA');
  }),
  onIoas.test(
    'ioas.auto-iova.reserved-near-top-enospc',
    'syzbot c2f65e2801743ca64e08 regression: a hole too small near 2^64 makes automatic allocation ENOSPC, not wrap',
    (t, f) => {
      // The original used the test-only ADD_RESERVED command to leave a small hole below 2^64; the
      // allowed-IOVA list makes the same situation from userspace: the only allowed range starts
      // 0x7ff9 bytes below the top. A 32 KiB-aligned 32 KiB buffer asks for 32 KiB IOVA
      // alignment, and aligning that start up used to overflow to a tiny IOVA.
      t.ok('ALLOW_IOVAS 0xffffffffffff8007..2^64-1', () => allowIovas(f, [{ start: 0xffff_ffff_ffff_8007n, last: U64_MAX }]));
      const length = 0x8000n;
      const va = alignedMemory(t, length, length);
      t.expectErrno('automatic map of 32 KiB', () => call.map(f, { flags: MAP_RW, user_va: va, length }), 'ENOSPC');
    },
  ),
  onIoas.test('ioas.auto-iova.full-enospc', 'automatic allocation with no allowed hole big enough is ENOSPC', (t, f) => {
    t.ok('ALLOW_IOVAS 0x100000..0x101fff', () => allowIovas(f, [{ start: 0x100000n, last: 0x101fffn }]));
    const memory = t.anonymousMemory(4n * t.page);
    t.expectErrno('automatic map of 4 pages', () => call.map(f, { flags: MAP_RW, user_va: memory.address, length: 4n * t.page }), 'ENOSPC');
  }),
];
