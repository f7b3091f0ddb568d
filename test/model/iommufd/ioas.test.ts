import assert from 'node:assert/strict';
import { U64_MAX } from '../../../lib/uapi/codec';
import {
  IOMMU_IOAS_ALLOC,
  IOMMU_IOAS_ALLOW_IOVAS,
  IOMMU_IOAS_COPY,
  IOMMU_IOAS_IOVA_RANGES,
  IOMMU_IOAS_MAP,
  IOMMU_IOAS_MAP_FILE,
  IOMMU_IOAS_MAP_READABLE,
  IOMMU_OPTION,
  IOMMU_OPTION_HUGE_PAGES,
  IOMMU_OPTION_OP_GET,
  IOMMU_OPTION_OP_SET,
  IOMMU_OPTION_RLIMIT_MODE,
  IOMMU_VFIO_IOAS,
  IOMMU_VFIO_IOAS_GET,
  IOMMU_VFIO_IOAS_SET,
  IommuIoasAlloc,
  IommuIoasAllowIovas,
  IommuIoasCopy,
  IommuIoasIovaRanges,
  IommuIoasMap,
  IommuIoasMapFile,
  IommuIovaRange,
  IommuOption,
  IommuVfioIoas,
} from '../../../lib/uapi/iommufd';
import { profiles } from '../../../lib/model';
import { MAP_SHARED, PROT_READ, PROT_WRITE } from '../../../lib/sys/constants';
import { FIXED, Harness, MiB, RW, expectErrno } from '../harness';
import { harnessWithIoas } from './fixtures';

describe('IOAS objects and IDs', () => {
  it('iommufd_ioas_alloc_ioctl: flags → EOPNOTSUPP without using an ID', () => {
    const h = new Harness();
    expectErrno('EOPNOTSUPP', () => h.call(IOMMU_IOAS_ALLOC, IommuIoasAlloc, { flags: 1 }));
    assert.equal(h.ioasAlloc(), 1);
  });

  it('xa_alloc (XA_FLAGS_ALLOC1): IDs start at 1 and the lowest freed ID is reused first', () => {
    const h = new Harness();
    const ids = [h.ioasAlloc(), h.ioasAlloc(), h.ioasAlloc(), h.ioasAlloc()];
    assert.deepEqual(ids, [1, 2, 3, 4]);
    h.destroy(3);
    h.destroy(2);
    assert.equal(h.ioasAlloc(), 2);
    assert.equal(h.ioasAlloc(), 3);
    assert.equal(h.ioasAlloc(), 5);
  });

  it('iommufd_object_remove: unknown ID → ENOENT', () => {
    const h = new Harness();
    expectErrno('ENOENT', () => h.destroy(7));
  });

  it('iommufd_object_remove: an IOAS used by a HWPT → EBUSY; destroyable once the device detaches', () => {
    const { h, ioas } = harnessWithIoas();
    const dev = h.bind();
    h.ctx.attachDevice(dev, ioas);
    expectErrno('EBUSY', () => h.destroy(ioas));
    h.ctx.detachDevice(dev);
    h.destroy(ioas);
  });

  it('iommufd_ioas_destroy: destroying an IOAS unmaps (and unpins) everything', () => {
    const { h, ioas } = harnessWithIoas();
    const m = h.anon(2n * MiB);
    h.map(ioas, m.address, 2n * MiB);
    assert.equal(h.ctx.getIoas(ioas).iopt.areas.size, 1);
    h.destroy(ioas);
    expectErrno('ENOENT', () => h.map(ioas, m.address, 4096n));
  });
});

describe('IOMMU_IOAS_MAP / MAP_FILE (ioas.c, io_pagetable.c)', () => {
  it('iommufd_ioas_map: unknown flags or __reserved → EOPNOTSUPP', () => {
    const { h, ioas } = harnessWithIoas();
    expectErrno('EOPNOTSUPP', () =>
      h.call(IOMMU_IOAS_MAP, IommuIoasMap, { ioas_id: ioas, flags: RW | 8, user_va: 0x1000n, length: 4096n }),
    );
    expectErrno('EOPNOTSUPP', () =>
      h.call(IOMMU_IOAS_MAP, IommuIoasMap, { ioas_id: ioas, flags: RW, __reserved: 1, user_va: 0x1000n, length: 4096n }),
    );
  });

  it('iommufd_ioas_map: iova or length ≥ ULONG_MAX → EOVERFLOW; neither READ nor WRITE → EINVAL', () => {
    const { h, ioas } = harnessWithIoas();
    expectErrno('EOVERFLOW', () => h.call(IOMMU_IOAS_MAP, IommuIoasMap, { ioas_id: ioas, flags: RW, user_va: 0x1000n, length: U64_MAX }));
    expectErrno('EOVERFLOW', () =>
      h.call(IOMMU_IOAS_MAP, IommuIoasMap, { ioas_id: ioas, flags: RW | FIXED, iova: U64_MAX, user_va: 0x1000n, length: 4096n }),
    );
    expectErrno('EINVAL', () => h.call(IOMMU_IOAS_MAP, IommuIoasMap, { ioas_id: ioas, flags: 0, user_va: 0x1000n, length: 4096n }));
  });

  it('iommufd_get_ioas: a non-IOAS or unknown ID → ENOENT', () => {
    const h = new Harness();
    const dev = h.bind();
    expectErrno('ENOENT', () => h.map(dev, 0x1000n, 4096n));
    expectErrno('ENOENT', () => h.map(9, 0x1000n, 4096n));
  });

  it('iopt_alloc_user_pages: user_va + length overflows → EOVERFLOW; iopt_alloc_pages: length 0 → EINVAL', () => {
    const { h, ioas } = harnessWithIoas();
    expectErrno('EOVERFLOW', () =>
      h.call(IOMMU_IOAS_MAP, IommuIoasMap, { ioas_id: ioas, flags: RW, user_va: U64_MAX - 10n, length: 4096n }),
    );
    expectErrno('EINVAL', () => h.call(IOMMU_IOAS_MAP, IommuIoasMap, { ioas_id: ioas, flags: RW, user_va: 0x1000n, length: 0n }));
  });

  it('iopt_map_user_pages: without a domain nothing is pinned, so an unmapped user_va is accepted', () => {
    const { h, ioas } = harnessWithIoas();
    const iova = h.map(ioas, 0x10_0000n, 4096n);
    assert.equal(iova, 0x1000n);
    assert.equal(h.kernel.locked.pinnedPages, 0);
    // Attaching a device loads the domain, pins, and fails on the bad address.
    const dev = h.bind();
    expectErrno('EFAULT', () => h.ctx.attachDevice(dev, ioas));
    assert.equal(h.ctx.objects.size, 2, 'the failed auto-domain left no HWPT behind');
  });

  it('iopt_area_fill_domains: with a domain, map pins at once and a bad user_va → EFAULT', () => {
    const { h, ioas } = harnessWithIoas();
    h.ctx.attachDevice(h.bind(), ioas);
    expectErrno('EFAULT', () => h.map(ioas, 0x10_0000n, 4096n));
    assert.equal(h.ctx.getIoas(ioas).iopt.areas.size, 0);
    const m = h.anon(8192n);
    h.map(ioas, m.address, 8192n);
    assert.equal(h.kernel.locked.pinnedPages, 2);
  });

  it('iopt_check_iova: fixed IOVA over an existing area → EEXIST', () => {
    const { h, ioas } = harnessWithIoas();
    const m = h.anon(1n * MiB);
    h.map(ioas, m.address, 8192n, 0x10000n);
    expectErrno('EEXIST', () => h.map(ioas, m.address, 4096n, 0x11000n));
    expectErrno('EEXIST', () => h.map(ioas, m.address, 8192n, 0xf000n));
    h.map(ioas, m.address, 4096n, 0x12000n);
  });

  it('iopt_check_iova: with a domain (iova_alignment 4096) an unaligned fixed IOVA → EINVAL', () => {
    const { h, ioas } = harnessWithIoas();
    h.ctx.attachDevice(h.bind(), ioas);
    const m = h.anon(1n * MiB);
    expectErrno('EINVAL', () => h.map(ioas, m.address, 4096n, 0x10800n));
    // ...and an unaligned length.
    expectErrno('EINVAL', () => h.map(ioas, m.address, 2048n, 0x10000n));
  });

  it('iopt_insert_area: a user_va offset in the page that breaks iova_alignment → EINVAL', () => {
    const { h, ioas } = harnessWithIoas();
    h.ctx.attachDevice(h.bind(), ioas);
    const m = h.anon(1n * MiB);
    expectErrno('EINVAL', () => h.map(ioas, m.address + 0x800n, 4096n, 0x10000n));
  });

  it('without a domain (iova_alignment 1) byte-granular maps are allowed', () => {
    const { h, ioas } = harnessWithIoas();
    const m = h.anon(1n * MiB);
    assert.equal(h.map(ioas, m.address + 0x10n, 0x100n, 0x2010n), 0x2010n);
    // ...but attaching a domain then fails: iopt_check_iova_alignment → EADDRINUSE.
    expectErrno('EADDRINUSE', () => h.ctx.attachDevice(h.bind(), ioas));
  });

  it('iommufd_ioas_map_file: maps a memfd; pinning a file that is not shmem → EINVAL at attach', () => {
    const { h, ioas } = harnessWithIoas();
    const mfd = h.kernel.memfdCreate('dma', 0);
    h.kernel.ftruncate(mfd, 2n * MiB);
    const r = h.call(IOMMU_IOAS_MAP_FILE, IommuIoasMapFile, { ioas_id: ioas, flags: RW, fd: mfd, start: 0n, length: 2n * MiB });
    assert.equal(r.iova, 2n * MiB, 'file offset 0 imposes no alignment limit below HPAGE_SIZE');
    const efd = h.kernel.eventfd(0, 0);
    h.call(IOMMU_IOAS_MAP_FILE, IommuIoasMapFile, { ioas_id: ioas, flags: RW | FIXED, fd: efd, start: 0n, length: 4096n, iova: 0x1000n });
    expectErrno('EINVAL', () => h.ctx.attachDevice(h.bind(), ioas));
  });

  it('iopt_map_file_pages: bad fd → EBADF; length 0 → EINVAL', () => {
    const { h, ioas } = harnessWithIoas();
    expectErrno('EBADF', () => h.call(IOMMU_IOAS_MAP_FILE, IommuIoasMapFile, { ioas_id: ioas, flags: RW, fd: 99, length: 4096n }));
    expectErrno('EINVAL', () => h.call(IOMMU_IOAS_MAP_FILE, IommuIoasMapFile, { ioas_id: ioas, flags: RW, fd: 99, length: 0n }));
  });

  it('memfd_pin_folios: a range past the end of the memfd → EINVAL when pinned', () => {
    const { h, ioas } = harnessWithIoas();
    h.ctx.attachDevice(h.bind(), ioas);
    const mfd = h.kernel.memfdCreate('dma', 0);
    h.kernel.ftruncate(mfd, 4096n);
    expectErrno('EINVAL', () => h.call(IOMMU_IOAS_MAP_FILE, IommuIoasMapFile, { ioas_id: ioas, flags: RW, fd: mfd, length: 8192n }));
    h.call(IOMMU_IOAS_MAP_FILE, IommuIoasMapFile, { ioas_id: ioas, flags: RW, fd: mfd, length: 4096n });
  });
});

describe('IOMMU_IOAS_UNMAP (iopt_unmap_iova_range)', () => {
  it('unmaps whole areas and reports the bytes', () => {
    const { h, ioas } = harnessWithIoas();
    const m = h.anon(1n * MiB);
    h.map(ioas, m.address, 8192n, 0x10000n);
    h.map(ioas, m.address, 4096n, 0x20000n);
    assert.equal(h.unmap(ioas, 0x10000n, 0x20000n), 0x3000n);
  });

  it('a range that cuts an area → ENOENT (areas before it are already gone)', () => {
    const { h, ioas } = harnessWithIoas();
    const m = h.anon(1n * MiB);
    h.map(ioas, m.address, 4096n, 0x10000n);
    h.map(ioas, m.address, 8192n, 0x11000n);
    expectErrno('ENOENT', () => h.unmap(ioas, 0x10000n, 0x2000n));
    assert.equal(h.ctx.getIoas(ioas).iopt.areas.size, 1);
  });

  it('iommufd_ioas_unmap: nothing mapped in the range → ENOENT; length 0 → EINVAL; overflow → EOVERFLOW', () => {
    const { h, ioas } = harnessWithIoas();
    expectErrno('ENOENT', () => h.unmap(ioas, 0x10000n, 0x1000n));
    expectErrno('EINVAL', () => h.unmap(ioas, 0x10000n, 0n));
    expectErrno('EOVERFLOW', () => h.unmap(ioas, U64_MAX - 10n, 0x1000n));
    expectErrno('EOVERFLOW', () => h.unmap(ioas, U64_MAX, 1n));
  });

  it('iopt_unmap_all: iova 0 and length U64_MAX unmaps everything, and succeeds on an empty IOAS', () => {
    const { h, ioas } = harnessWithIoas();
    assert.equal(h.unmap(ioas, 0n, U64_MAX), 0n);
    const m = h.anon(1n * MiB);
    h.map(ioas, m.address, 8192n, 0x10000n);
    h.map(ioas, m.address, 4096n, 0x90000n);
    assert.equal(h.unmap(ioas, 0n, U64_MAX), 0x3000n);
  });

  it('unpinning on unmap returns the pages to RLIMIT_MEMLOCK accounting', () => {
    const { h, ioas } = harnessWithIoas('unprivileged');
    h.ctx.attachDevice(h.bind(), ioas);
    const m = h.anon(1n * MiB);
    h.map(ioas, m.address, 1n * MiB, 0x100000n);
    assert.equal(h.kernel.locked.userLockedPages, 256);
    h.unmap(ioas, 0x100000n, 1n * MiB);
    assert.equal(h.kernel.locked.userLockedPages, 0);
  });
});

describe('IOMMU_IOAS_COPY (iopt_get_pages + iopt_map_pages)', () => {
  it('copies a range into another IOAS sharing the pinned pages (no double accounting)', () => {
    const h = new Harness('unprivileged');
    const a = h.ioasAlloc();
    const b = h.ioasAlloc();
    h.ctx.attachDevice(h.bind('0000:00:03.0'), a);
    h.ctx.attachDevice(h.bind('0000:00:04.0'), b);
    const m = h.anon(1n * MiB);
    h.map(a, m.address, 64n * 1024n, 0x100000n);
    const r = h.call(IOMMU_IOAS_COPY, IommuIoasCopy, {
      dst_ioas_id: b,
      src_ioas_id: a,
      flags: RW | FIXED,
      length: 0x4000n,
      src_iova: 0x104000n,
      dst_iova: 0x40000n,
    });
    assert.equal(r.dst_iova, 0x40000n);
    assert.equal(h.kernel.locked.userLockedPages, 16);
    // The copy keeps its pages pinned after the source is unmapped.
    h.unmap(a, 0x100000n, 64n * 1024n);
    assert.equal(h.kernel.locked.userLockedPages, 4);
  });

  it('iopt_get_pages: a source hole → ENOENT; length 0 → EINVAL', () => {
    const h = new Harness();
    const a = h.ioasAlloc();
    const m = h.anon(1n * MiB);
    h.map(a, m.address, 0x1000n, 0x100000n);
    h.map(a, m.address, 0x1000n, 0x102000n);
    expectErrno('ENOENT', () =>
      h.call(IOMMU_IOAS_COPY, IommuIoasCopy, { dst_ioas_id: a, src_ioas_id: a, flags: RW, length: 0x3000n, src_iova: 0x100000n }),
    );
    expectErrno('EINVAL', () =>
      h.call(IOMMU_IOAS_COPY, IommuIoasCopy, { dst_ioas_id: a, src_ioas_id: a, flags: RW, length: 0n, src_iova: 0x100000n }),
    );
  });

  it('iopt_insert_area: copying read-only pages as writable → EPERM', () => {
    const h = new Harness();
    const a = h.ioasAlloc();
    const m = h.anon(1n * MiB);
    h.map(a, m.address, 0x1000n, 0x100000n, IOMMU_IOAS_MAP_READABLE);
    expectErrno('EPERM', () =>
      h.call(IOMMU_IOAS_COPY, IommuIoasCopy, { dst_ioas_id: a, src_ioas_id: a, flags: RW, length: 0x1000n, src_iova: 0x100000n }),
    );
  });

  it('copies across contiguous areas into one destination range', () => {
    const h = new Harness();
    const a = h.ioasAlloc();
    const m = h.anon(1n * MiB);
    h.map(a, m.address, 0x1000n, 0x100000n);
    h.map(a, m.address + 0x5000n, 0x2000n, 0x101000n);
    const r = h.call(IOMMU_IOAS_COPY, IommuIoasCopy, {
      dst_ioas_id: a,
      src_ioas_id: a,
      flags: RW | FIXED,
      length: 0x3000n,
      src_iova: 0x100000n,
      dst_iova: 0x200000n,
    });
    assert.equal(r.dst_iova, 0x200000n);
    assert.equal(h.ctx.getIoas(a).iopt.areas.size, 4);
  });
});

describe('IOMMU_IOAS_IOVA_RANGES / ALLOW_IOVAS', () => {
  it('iommufd_ioas_iova_ranges: noiommu reserves nothing: one range 0..U64_MAX, alignment 1 then 4096', () => {
    const { h, ioas } = harnessWithIoas();
    const out = h.anon(4096n);
    let r = h.call(IOMMU_IOAS_IOVA_RANGES, IommuIoasIovaRanges, { ioas_id: ioas, num_iovas: 4, allowed_iovas: out.address });
    assert.equal(r.num_iovas, 1);
    assert.equal(r.out_iova_alignment, 1n);
    assert.deepEqual(IommuIovaRange.decode(new Uint8Array(out.buffer!)), { start: 0n, last: U64_MAX });
    h.ctx.attachDevice(h.bind(), ioas);
    r = h.call(IOMMU_IOAS_IOVA_RANGES, IommuIoasIovaRanges, { ioas_id: ioas, num_iovas: 4, allowed_iovas: out.address });
    assert.equal(r.num_iovas, 1);
    assert.equal(r.out_iova_alignment, 4096n);
  });

  it('VT-d: the MSI window and the aperture beyond 2^39 are reserved once a device attaches', () => {
    const { h, ioas } = harnessWithIoas('linux-7.3-iommu');
    h.ctx.attachDevice(h.bind('0000:00:03.0', 3), ioas);
    const out = h.anon(4096n);
    const r = h.call(IOMMU_IOAS_IOVA_RANGES, IommuIoasIovaRanges, { ioas_id: ioas, num_iovas: 4, allowed_iovas: out.address });
    assert.equal(r.num_iovas, 2);
    const buf = new Uint8Array(out.buffer!);
    assert.deepEqual(IommuIovaRange.decode(buf, 0), { start: 0n, last: 0xfedf_ffffn });
    assert.deepEqual(IommuIovaRange.decode(buf, 16), { start: 0xfef0_0000n, last: (1n << 39n) - 1n });
  });

  it('iommufd_ioas_iova_ranges: too small an array → EMSGSIZE with num_iovas set to the count', () => {
    const { h, ioas } = harnessWithIoas('linux-7.3-iommu');
    h.ctx.attachDevice(h.bind('0000:00:03.0', 3), ioas);
    const buf = IommuIoasIovaRanges.encode({ size: IommuIoasIovaRanges.size, ioas_id: ioas, num_iovas: 0 });
    expectErrno('EMSGSIZE', () => h.kernel.ioctl(h.fd, IOMMU_IOAS_IOVA_RANGES.number, buf));
    assert.equal(IommuIoasIovaRanges.decode(buf).num_iovas, 2);
  });

  it('copy_to_user of the ranges into unmapped memory → EFAULT; __reserved → EOPNOTSUPP', () => {
    const { h, ioas } = harnessWithIoas();
    expectErrno('EFAULT', () =>
      h.call(IOMMU_IOAS_IOVA_RANGES, IommuIoasIovaRanges, { ioas_id: ioas, num_iovas: 1, allowed_iovas: 0x1000n }),
    );
    expectErrno('EOPNOTSUPP', () => h.call(IOMMU_IOAS_IOVA_RANGES, IommuIoasIovaRanges, { ioas_id: ioas, __reserved: 1 }));
  });

  it('iommufd_ioas_load_iovas: start ≥ last or overlapping ranges → EINVAL', () => {
    const { h, ioas } = harnessWithIoas();
    const mem = h.anon(4096n);
    const buf = new Uint8Array(mem.buffer!);
    const allow = (ranges: [bigint, bigint][]) => {
      ranges.forEach(([start, last], i) => IommuIovaRange.encode({ start, last }, buf, i * 16));
      return h.call(IOMMU_IOAS_ALLOW_IOVAS, IommuIoasAllowIovas, { ioas_id: ioas, num_iovas: ranges.length, allowed_iovas: mem.address });
    };
    expectErrno('EINVAL', () => allow([[0x2000n, 0x2000n]]));
    expectErrno('EINVAL', () =>
      allow([
        [0x1000n, 0x5fffn],
        [0x5000n, 0x8fffn],
      ]),
    );
    allow([[0x10_0000n, 0x1f_ffffn]]);
    // Automatic IOVAs now come from the allowed range only.
    const m = h.anon(4096n);
    assert.equal(h.map(ioas, m.address, 4096n), 0x10_0000n);
  });

  it('iopt_set_allow_iova: an allowed range over a reserved one → EADDRINUSE', () => {
    const { h, ioas } = harnessWithIoas('linux-7.3-iommu');
    h.ctx.attachDevice(h.bind('0000:00:03.0', 3), ioas);
    const mem = h.anon(4096n);
    IommuIovaRange.encode({ start: 0xfe00_0000n, last: 0xfeff_ffffn }, new Uint8Array(mem.buffer!));
    expectErrno('EADDRINUSE', () =>
      h.call(IOMMU_IOAS_ALLOW_IOVAS, IommuIoasAllowIovas, { ioas_id: ioas, num_iovas: 1, allowed_iovas: mem.address }),
    );
  });
});

describe('IOMMU_OPTION and IOMMU_VFIO_IOAS', () => {
  it('iommufd_option_rlimit_mode: GET reports user mode; SET needs CAP_SYS_RESOURCE and an empty context', () => {
    const h = new Harness();
    assert.equal(h.call(IOMMU_OPTION, IommuOption, { option_id: IOMMU_OPTION_RLIMIT_MODE, op: IOMMU_OPTION_OP_GET }).val64, 0n);
    h.call(IOMMU_OPTION, IommuOption, { option_id: IOMMU_OPTION_RLIMIT_MODE, op: IOMMU_OPTION_OP_SET, val64: 1n });
    assert.equal(h.call(IOMMU_OPTION, IommuOption, { option_id: IOMMU_OPTION_RLIMIT_MODE, op: IOMMU_OPTION_OP_GET }).val64, 1n);
    expectErrno('EINVAL', () =>
      h.call(IOMMU_OPTION, IommuOption, { option_id: IOMMU_OPTION_RLIMIT_MODE, op: IOMMU_OPTION_OP_SET, val64: 2n }),
    );
    expectErrno('EOPNOTSUPP', () =>
      h.call(IOMMU_OPTION, IommuOption, { option_id: IOMMU_OPTION_RLIMIT_MODE, op: IOMMU_OPTION_OP_GET, object_id: 1 }),
    );
    h.ioasAlloc();
    expectErrno('EBUSY', () =>
      h.call(IOMMU_OPTION, IommuOption, { option_id: IOMMU_OPTION_RLIMIT_MODE, op: IOMMU_OPTION_OP_SET, val64: 0n }),
    );
    const u = new Harness('unprivileged');
    expectErrno('EPERM', () =>
      u.call(IOMMU_OPTION, IommuOption, { option_id: IOMMU_OPTION_RLIMIT_MODE, op: IOMMU_OPTION_OP_SET, val64: 1n }),
    );
  });

  it('iommufd_ioas_option_huge_pages: GET/SET on an IOAS; unknown option or op → EOPNOTSUPP', () => {
    const { h, ioas } = harnessWithIoas();
    assert.equal(
      h.call(IOMMU_OPTION, IommuOption, { option_id: IOMMU_OPTION_HUGE_PAGES, op: IOMMU_OPTION_OP_GET, object_id: ioas }).val64,
      1n,
    );
    h.call(IOMMU_OPTION, IommuOption, { option_id: IOMMU_OPTION_HUGE_PAGES, op: IOMMU_OPTION_OP_SET, object_id: ioas, val64: 0n });
    assert.equal(
      h.call(IOMMU_OPTION, IommuOption, { option_id: IOMMU_OPTION_HUGE_PAGES, op: IOMMU_OPTION_OP_GET, object_id: ioas }).val64,
      0n,
    );
    expectErrno('EOPNOTSUPP', () => h.call(IOMMU_OPTION, IommuOption, { option_id: 7, op: IOMMU_OPTION_OP_GET }));
    expectErrno('EOPNOTSUPP', () => h.call(IOMMU_OPTION, IommuOption, { option_id: IOMMU_OPTION_HUGE_PAGES, op: 5, object_id: ioas }));
    expectErrno('ENOENT', () =>
      h.call(IOMMU_OPTION, IommuOption, { option_id: IOMMU_OPTION_HUGE_PAGES, op: IOMMU_OPTION_OP_GET, object_id: 99 }),
    );
  });

  it('iopt_disable_large_pages: refused (EINVAL) while a domain holds mappings', () => {
    const { h, ioas } = harnessWithIoas();
    h.ctx.attachDevice(h.bind(), ioas);
    const m = h.anon(4096n);
    h.map(ioas, m.address, 4096n);
    expectErrno('EINVAL', () =>
      h.call(IOMMU_OPTION, IommuOption, { option_id: IOMMU_OPTION_HUGE_PAGES, op: IOMMU_OPTION_OP_SET, object_id: ioas, val64: 0n }),
    );
  });

  it('iommufd_vfio_ioas: GET without a compat IOAS → ENODEV; SET then GET returns it', () => {
    const h = new Harness();
    expectErrno('ENODEV', () => h.call(IOMMU_VFIO_IOAS, IommuVfioIoas, { op: IOMMU_VFIO_IOAS_GET }));
    const ioas = h.ioasAlloc();
    h.call(IOMMU_VFIO_IOAS, IommuVfioIoas, { op: IOMMU_VFIO_IOAS_SET, ioas_id: ioas });
    assert.equal(h.call(IOMMU_VFIO_IOAS, IommuVfioIoas, { op: IOMMU_VFIO_IOAS_GET }).ioas_id, ioas);
    expectErrno('EOPNOTSUPP', () => h.call(IOMMU_VFIO_IOAS, IommuVfioIoas, { op: 9 }));
    h.destroy(ioas);
    expectErrno('ENODEV', () => h.call(IOMMU_VFIO_IOAS, IommuVfioIoas, { op: IOMMU_VFIO_IOAS_GET }));
  });

  it('profiles: the 6.x legacy kernel has no IOMMU_IOAS_MAP_FILE either (added in 6.13)', () => {
    const h = new Harness('linux-6.x-legacy-noiommu');
    assert.equal(profiles['linux-6.x-legacy-noiommu'].kernel.minor, 12);
    expectErrno('ENOTTY', () => h.call(IOMMU_IOAS_MAP_FILE, IommuIoasMapFile, { flags: RW, length: 4096n }));
  });
});

describe('pinned memory and the bytes behind it', () => {
  it('a memfd mapped MAP_SHARED and IOAS-mapped: device writes show in the mapping, in pread, and survive munmap', () => {
    const { h, ioas } = harnessWithIoas();
    h.ctx.attachDevice(h.bind(), ioas);
    const mfd = h.kernel.memfdCreate('dma', 0);
    h.kernel.ftruncate(mfd, 64n * 1024n);
    const m = h.kernel.mmap(mfd, 64n * 1024n, PROT_READ | PROT_WRITE, MAP_SHARED, 0n);
    const iova = h.map(ioas, m.address, 64n * 1024n);
    const { phys } = h.getPa(ioas, iova + 0x2000n, 1n);
    h.kernel.memory.dmaWrite(phys, Uint8Array.of(0xde, 0xad));
    assert.deepEqual([...new Uint8Array(m.buffer!, 0x2000, 2)], [0xde, 0xad]);
    h.kernel.munmap(m);
    h.kernel.memory.dmaWrite(phys + 2n, Uint8Array.of(0xbe));
    const out = Buffer.alloc(3);
    h.kernel.pread(mfd, out, 0x2000n);
    assert.deepEqual([...out], [0xde, 0xad, 0xbe]);
  });

  it('frames stay pinned after munmap of anonymous memory until the IOAS unmaps them', () => {
    const { h, ioas } = harnessWithIoas();
    h.ctx.attachDevice(h.bind(), ioas);
    const m = h.anon(8192n);
    const iova = h.map(ioas, m.address, 8192n);
    new Uint8Array(m.buffer!)[5] = 9;
    const { phys } = h.getPa(ioas, iova, 1n);
    h.kernel.munmap(m);
    assert.equal(h.kernel.memory.dmaRead(phys + 5n, 1)[0], 9);
    h.unmap(ioas, iova, 8192n);
    assert.throws(() => h.kernel.memory.dmaRead(phys, 1), /no RAM frame/);
  });
});
