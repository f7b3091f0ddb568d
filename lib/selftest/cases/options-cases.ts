/**
 * IOMMU_OPTION (the rlimit accounting mode of an iommufd, huge pages per IOAS), IOMMU_VFIO_IOAS
 * (which IOAS the legacy container ioctls act on) and those legacy ioctls answered by an iommufd,
 * plus IOMMU_IOAS_MAP_FILE. Sources: main.c iommufd_option, ioas.c iommufd_option_rlimit_mode /
 * iommufd_ioas_option / iommufd_ioas_map_file, io_pagetable.c iopt_disable_large_pages /
 * iopt_calculate_iova_alignment / iopt_cut_iova, vfio_compat.c.
 */
import { defineCase, type ConformanceCase } from '../case';
import type { CaseContext } from '../context';
import { U64_MAX } from '../../uapi/codec';
import * as I from '../../uapi/iommufd';
import * as V from '../../uapi/vfio';
import { isVfioError } from '../../sys/errors';
import { rawIoctl } from '../raw-ioctl';
import { destroy, ioasAlloc, iovaRangesCall, map, MAP_RW, mapCall, openAttached, unmapCall } from '../steps';

function optionCall(t: CaseContext, fd: number, values: Parameters<typeof I.IommuOption.encode>[0]): () => bigint {
  return () => rawIoctl(t.kernel, fd, I.IOMMU_OPTION, I.IommuOption, values).out.val64;
}

const GET = I.IOMMU_OPTION_OP_GET;
const SET = I.IOMMU_OPTION_OP_SET;
const RLIMIT = I.IOMMU_OPTION_RLIMIT_MODE;
const HUGE = I.IOMMU_OPTION_HUGE_PAGES;

function vfioIoasCall(t: CaseContext, fd: number, op: number, ioasId = 0): () => number {
  return () => rawIoctl(t.kernel, fd, I.IOMMU_VFIO_IOAS, I.IommuVfioIoas, { op, ioas_id: ioasId }).out.ioas_id;
}

function dmaMapCall(t: CaseContext, fd: number, vaddr: bigint, iova: bigint, size: bigint, flags = V.VFIO_DMA_MAP_FLAG_READ | V.VFIO_DMA_MAP_FLAG_WRITE): () => void {
  return () => { rawIoctl(t.kernel, fd, V.VFIO_IOMMU_MAP_DMA, V.VfioIommuType1DmaMap, { flags, vaddr, iova, size }); };
}

function dmaUnmapCall(t: CaseContext, fd: number, iova: bigint, size: bigint, flags = 0): () => bigint {
  return () => rawIoctl(t.kernel, fd, V.VFIO_IOMMU_UNMAP_DMA, V.VfioIommuType1DmaUnmap, { flags, iova, size }).out.size;
}

function mapFileCall(t: CaseContext, fd: number, values: Parameters<typeof I.IommuIoasMapFile.encode>[0]): () => bigint {
  return () => rawIoctl(t.kernel, fd, I.IOMMU_IOAS_MAP_FILE, I.IommuIoasMapFile, values).out.iova;
}

export const optionCases: ConformanceCase[] = [
  defineCase({
    id: 'option.rlimit-mode',
    title: 'RLIMIT_MODE: 0 (per user) on /dev/iommu; settable to 1 while the iommufd is empty, EBUSY once it holds an object',
    run(t) {
      const fd = t.openIommufd();
      t.equal(t.ok('get', optionCall(t, fd, { option_id: RLIMIT, op: GET })), 0n, 'initial mode');
      try {
        optionCall(t, fd, { option_id: RLIMIT, op: SET, val64: 1n })();
      } catch (e) {
        // iommufd_option_rlimit_mode: SET needs CAP_SYS_RESOURCE.
        if (isVfioError(e, 'EPERM')) t.skip('setting RLIMIT_MODE needs CAP_SYS_RESOURCE, which this process lacks');
        throw e;
      }
      t.equal(t.ok('get', optionCall(t, fd, { option_id: RLIMIT, op: GET })), 1n, 'mode after set');
      t.expectErrno('set 2', optionCall(t, fd, { option_id: RLIMIT, op: SET, val64: 2n }), 'EINVAL');
      ioasAlloc(t, fd);
      t.expectErrno('set 0 with an IOAS present', optionCall(t, fd, { option_id: RLIMIT, op: SET, val64: 0n }), 'EBUSY');
    },
  }),
  defineCase({
    id: 'option.bad-input',
    title: 'IOMMU_OPTION: unknown option, unknown op, non-zero __reserved or an object id for RLIMIT_MODE are EOPNOTSUPP',
    run(t) {
      const fd = t.openIommufd();
      t.expectErrno('option 2', optionCall(t, fd, { option_id: 2, op: GET }), 'EOPNOTSUPP');
      t.expectErrno('op 2', optionCall(t, fd, { option_id: RLIMIT, op: 2 }), 'EOPNOTSUPP');
      t.expectErrno('__reserved 1', optionCall(t, fd, { option_id: RLIMIT, op: GET, __reserved: 1 }), 'EOPNOTSUPP');
      t.expectErrno('RLIMIT_MODE with object_id 1', optionCall(t, fd, { option_id: RLIMIT, op: GET, object_id: 1 }), 'EOPNOTSUPP');
    },
  }),
  defineCase({
    id: 'option.huge-pages',
    title: 'HUGE_PAGES per IOAS: on by default; off makes the IOAS page aligned even without a device; back on restores alignment 1',
    run(t) {
      const fd = t.openIommufd();
      const ioasId = ioasAlloc(t, fd);
      t.equal(t.ok('get', optionCall(t, fd, { option_id: HUGE, op: GET, object_id: ioasId })), 1n, 'default');
      t.ok('set 0', optionCall(t, fd, { option_id: HUGE, op: SET, object_id: ioasId, val64: 0n }));
      t.equal(t.ok('get', optionCall(t, fd, { option_id: HUGE, op: GET, object_id: ioasId })), 0n, 'after set 0');
      t.equal(t.ok('IOVA_RANGES', iovaRangesCall(t, fd, ioasId)).alignment, t.page, 'alignment with huge pages off');
      const va = t.anonymousMemory(t.page).address;
      t.expectErrno('map at an unaligned IOVA', mapCall(t, fd, ioasId, { userVa: va, length: t.page, iova: 0x100010n }), 'EINVAL');
      t.ok('set 1', optionCall(t, fd, { option_id: HUGE, op: SET, object_id: ioasId, val64: 1n }));
      t.equal(t.ok('IOVA_RANGES', iovaRangesCall(t, fd, ioasId)).alignment, 1n, 'alignment with huge pages on again');
      t.expectErrno('set 2', optionCall(t, fd, { option_id: HUGE, op: SET, object_id: ioasId, val64: 2n }), 'EINVAL');
      t.expectErrno('get on IOAS 99', optionCall(t, fd, { option_id: HUGE, op: GET, object_id: 99 }), 'ENOENT');
    },
  }),
  defineCase({
    id: 'option.huge-pages-off-with-unaligned-area',
    title: 'turning huge pages off while the IOAS holds an unaligned area is EADDRINUSE',
    run(t) {
      const fd = t.openIommufd();
      const ioasId = ioasAlloc(t, fd);
      const va = t.anonymousMemory(t.page).address;
      map(t, fd, ioasId, { userVa: va, length: 0x100n, iova: 0x100010n });
      t.expectErrno('set 0', optionCall(t, fd, { option_id: HUGE, op: SET, object_id: ioasId, val64: 0n }), 'EADDRINUSE');
    },
  }),
  defineCase({
    id: 'option.huge-pages-off-after-attach',
    title: 'turning huge pages off once an attached IOAS has mappings is EINVAL; before mapping it works',
    needs: ['device'],
    run(t) {
      const dev = openAttached(t);
      t.ok('set 0 with nothing mapped', optionCall(t, dev.iommufd, { option_id: HUGE, op: SET, object_id: dev.ioasId, val64: 0n }));
      t.ok('set 1', optionCall(t, dev.iommufd, { option_id: HUGE, op: SET, object_id: dev.ioasId, val64: 1n }));
      const va = t.anonymousMemory(t.page).address;
      map(t, dev.iommufd, dev.ioasId, { userVa: va, length: t.page, iova: 0x100000n });
      t.expectErrno('set 0 with a mapping', optionCall(t, dev.iommufd, { option_id: HUGE, op: SET, object_id: dev.ioasId, val64: 0n }), 'EINVAL');
    },
  }),
  defineCase({
    id: 'vfio-ioas.get-set-clear',
    title: 'IOMMU_VFIO_IOAS: GET is ENODEV until SET; CLEAR and destroying the IOAS both unset it',
    run(t) {
      const fd = t.openIommufd();
      const a = ioasAlloc(t, fd);
      t.expectErrno('GET with none set', vfioIoasCall(t, fd, I.IOMMU_VFIO_IOAS_GET), 'ENODEV');
      t.ok('SET', vfioIoasCall(t, fd, I.IOMMU_VFIO_IOAS_SET, a));
      t.equal(t.ok('GET', vfioIoasCall(t, fd, I.IOMMU_VFIO_IOAS_GET)), a, 'the compat IOAS');
      t.ok('CLEAR', vfioIoasCall(t, fd, I.IOMMU_VFIO_IOAS_CLEAR));
      t.expectErrno('GET after CLEAR', vfioIoasCall(t, fd, I.IOMMU_VFIO_IOAS_GET), 'ENODEV');
      t.ok('SET again', vfioIoasCall(t, fd, I.IOMMU_VFIO_IOAS_SET, a));
      destroy(t, fd, a);
      t.expectErrno('GET after destroying it', vfioIoasCall(t, fd, I.IOMMU_VFIO_IOAS_GET), 'ENODEV');
      t.expectErrno('SET a missing IOAS', vfioIoasCall(t, fd, I.IOMMU_VFIO_IOAS_SET, 99), 'ENOENT');
      t.expectErrno('op 3', vfioIoasCall(t, fd, 3), 'EOPNOTSUPP');
    },
  }),
  defineCase({
    id: 'vfio-compat.map-unmap-dma',
    title: 'legacy MAP_DMA/UNMAP_DMA on an iommufd act on the compat IOAS; a partial UNMAP_DMA is ENOENT',
    run(t) {
      const fd = t.openIommufd();
      const ioasId = ioasAlloc(t, fd);
      const memory = t.anonymousMemory(4n * t.page);
      t.expectErrno('MAP_DMA without a compat IOAS', dmaMapCall(t, fd, memory.address, 0x100000n, 4n * t.page), 'ENODEV');
      t.ok('VFIO_IOAS SET', vfioIoasCall(t, fd, I.IOMMU_VFIO_IOAS_SET, ioasId));
      t.ok('MAP_DMA 4 pages at 0x100000', dmaMapCall(t, fd, memory.address, 0x100000n, 4n * t.page));
      t.expectErrno('IOAS_MAP over it', mapCall(t, fd, ioasId, { userVa: memory.address, length: t.page, iova: 0x100000n }), 'EEXIST');
      t.expectErrno('UNMAP_DMA of the middle', dmaUnmapCall(t, fd, 0x100000n + t.page, 2n * t.page), 'ENOENT');
      t.expectErrno('MAP_DMA flags 1<<2 (VADDR)', dmaMapCall(t, fd, memory.address, 0x200000n, t.page, V.VFIO_DMA_MAP_FLAG_VADDR), 'EINVAL');
      t.expectErrno('UNMAP_DMA ALL with a non-zero size', dmaUnmapCall(t, fd, 0n, t.page, V.VFIO_DMA_UNMAP_FLAG_ALL), 'EINVAL');
      t.equal(t.ok('UNMAP_DMA ALL', dmaUnmapCall(t, fd, 0n, 0n, V.VFIO_DMA_UNMAP_FLAG_ALL)), 4n * t.page, 'size unmapped');
    },
  }),
  defineCase({
    id: 'vfio-compat.unmap-cuts-without-huge-pages',
    title: 'with huge pages off, a legacy UNMAP_DMA of part of a mapping cuts the area instead of failing',
    run(t) {
      const fd = t.openIommufd();
      const ioasId = ioasAlloc(t, fd);
      t.ok('huge pages off', optionCall(t, fd, { option_id: HUGE, op: SET, object_id: ioasId, val64: 0n }));
      t.ok('VFIO_IOAS SET', vfioIoasCall(t, fd, I.IOMMU_VFIO_IOAS_SET, ioasId));
      const memory = t.anonymousMemory(4n * t.page);
      t.ok('MAP_DMA 4 pages at 0x100000', dmaMapCall(t, fd, memory.address, 0x100000n, 4n * t.page));
      t.equal(t.ok('UNMAP_DMA of the middle 2 pages', dmaUnmapCall(t, fd, 0x100000n + t.page, 2n * t.page)), 2n * t.page, 'size unmapped');
      // The cuts left two one-page areas, each of which can now be unmapped on its own.
      t.equal(t.ok('IOAS_UNMAP of the first page', unmapCall(t, fd, ioasId, 0x100000n, t.page)), t.page, 'first page');
      t.equal(t.ok('IOAS_UNMAP of the last page', unmapCall(t, fd, ioasId, 0x100000n + 3n * t.page, t.page)), t.page, 'last page');
    },
  }),
  defineCase({
    id: 'vfio-compat.iommu-get-info',
    title: 'legacy IOMMU_GET_INFO on an iommufd reports the page sizes and raises argsz for its capabilities',
    run(t) {
      const fd = t.openIommufd();
      t.ok('VFIO_IOAS SET', vfioIoasCall(t, fd, I.IOMMU_VFIO_IOAS_SET, ioasAlloc(t, fd)));
      const info = t.ok('VFIO_IOMMU_GET_INFO', () => rawIoctl(t.kernel, fd, V.VFIO_IOMMU_GET_INFO, V.VfioIommuType1Info, {}).out);
      t.check((info.flags & V.VFIO_IOMMU_INFO_PGSIZES) !== 0, 'PGSIZES flag');
      t.check((info.flags & V.VFIO_IOMMU_INFO_CAPS) !== 0, 'CAPS flag');
      t.check((info.iova_pgsizes & BigInt(t.pageSize)) !== 0n, `the page size is among iova_pgsizes (0x${info.iova_pgsizes.toString(16)})`);
      t.check(info.argsz > V.VfioIommuType1Info.size, `argsz raised for the capabilities (${info.argsz})`);
      t.equal(info.cap_offset, 0, 'cap_offset when the capabilities did not fit');
      t.expectErrno('argsz 11', () => rawIoctl(t.kernel, fd, V.VFIO_IOMMU_GET_INFO, V.VfioIommuType1Info, {}, { declaredSize: 11 }), 'EINVAL');
    },
  }),
  defineCase({
    id: 'map-file.memfd',
    title: 'IOAS_MAP_FILE maps a memfd range; bad fd EBADF, length 0 EINVAL, unknown flag EOPNOTSUPP, start overflow EOVERFLOW',
    run(t) {
      const fd = t.openIommufd();
      const ioasId = ioasAlloc(t, fd);
      const memfd = t.memfd('conformance', 4n * t.page);
      const fixed = MAP_RW | I.IOMMU_IOAS_MAP_FIXED_IOVA;
      t.equal(t.ok('MAP_FILE 2 pages from offset 1 page', mapFileCall(t, fd, { flags: fixed, ioas_id: ioasId, fd: memfd, start: t.page, length: 2n * t.page, iova: 0x100000n })), 0x100000n, 'IOVA');
      t.expectErrno('MAP_FILE fd -1', mapFileCall(t, fd, { flags: fixed, ioas_id: ioasId, fd: -1, start: 0n, length: t.page, iova: 0x200000n }), 'EBADF');
      t.expectErrno('MAP_FILE length 0', mapFileCall(t, fd, { flags: fixed, ioas_id: ioasId, fd: memfd, start: 0n, length: 0n, iova: 0x200000n }), 'EINVAL');
      t.expectErrno('MAP_FILE flags |= 1<<3', mapFileCall(t, fd, { flags: fixed | (1 << 3), ioas_id: ioasId, fd: memfd, start: 0n, length: t.page, iova: 0x200000n }), 'EOPNOTSUPP');
      t.expectErrno('MAP_FILE start + length wraps', mapFileCall(t, fd, { flags: fixed, ioas_id: ioasId, fd: memfd, start: U64_MAX - 1n, length: t.page, iova: 0x200000n }), 'EOVERFLOW');
      t.equal(t.ok('unmap', unmapCall(t, fd, ioasId, 0x100000n, 2n * t.page)), 2n * t.page, 'bytes unmapped');
    },
  }),
];
