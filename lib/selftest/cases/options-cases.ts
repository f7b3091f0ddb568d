/**
 * IOMMU_OPTION (the rlimit accounting mode of an iommufd, huge pages per IOAS), IOMMU_VFIO_IOAS
 * (which IOAS the legacy container ioctls act on) and those legacy ioctls answered by an iommufd,
 * plus IOMMU_IOAS_MAP_FILE. Sources: main.c iommufd_option, ioas.c iommufd_option_rlimit_mode /
 * iommufd_ioas_option / iommufd_ioas_map_file, io_pagetable.c iopt_disable_large_pages /
 * iopt_calculate_iova_alignment / iopt_cut_iova, vfio_compat.c.
 */
import { knowsCommand, type ConformanceCase } from '../case';
import { U64_MAX } from '../../uapi/codec';
import * as I from '../../uapi/iommufd';
import * as V from '../../uapi/vfio';
import { isVfioError } from '../../sys/errors';
import { call, MAP_RW_FIXED } from '../calls';
import { casesOn } from '../fixture';
import { attachedDevice, ioas, iommufd } from '../fixtures';
import { destroy, ioasAlloc, iovaRanges, map } from '../steps';

const GET = I.IOMMU_OPTION_OP_GET;
const SET = I.IOMMU_OPTION_OP_SET;
const RLIMIT = I.IOMMU_OPTION_RLIMIT_MODE;
const HUGE = I.IOMMU_OPTION_HUGE_PAGES;

const onIommufd = casesOn(iommufd);
const onIoas = casesOn(ioas);

export const optionCases: ConformanceCase[] = [
  onIommufd.test(
    'option.rlimit-mode',
    'RLIMIT_MODE: 0 (per user) on /dev/iommu; settable to 1 while the iommufd is empty, EBUSY once it holds an object',
    (t, f) => {
      t.equal(
        t.ok('get', () => call.option(f, { option_id: RLIMIT, op: GET }).val64),
        0n,
        'initial mode',
      );
      try {
        call.option(f, { option_id: RLIMIT, op: SET, val64: 1n });
      } catch (e) {
        // iommufd_option_rlimit_mode: SET needs CAP_SYS_RESOURCE.
        if (isVfioError(e, 'EPERM')) t.skip('setting RLIMIT_MODE needs CAP_SYS_RESOURCE, which this process lacks');
        throw e;
      }
      t.equal(
        t.ok('get', () => call.option(f, { option_id: RLIMIT, op: GET }).val64),
        1n,
        'mode after set',
      );
      t.expectErrno('set 2', () => call.option(f, { option_id: RLIMIT, op: SET, val64: 2n }), 'EINVAL');
      ioasAlloc(t, f.iommufd);
      t.expectErrno('set 0 with an IOAS present', () => call.option(f, { option_id: RLIMIT, op: SET, val64: 0n }), 'EBUSY');
    },
  ),
  onIommufd.test(
    'option.bad-input',
    'IOMMU_OPTION: unknown option, unknown op, non-zero __reserved or an object id for RLIMIT_MODE are EOPNOTSUPP',
    (t, f) => {
      t.expectErrno('option 2', () => call.option(f, { option_id: 2, op: GET }), 'EOPNOTSUPP');
      t.expectErrno('op 2', () => call.option(f, { option_id: RLIMIT, op: 2 }), 'EOPNOTSUPP');
      t.expectErrno('__reserved 1', () => call.option(f, { option_id: RLIMIT, op: GET, __reserved: 1 }), 'EOPNOTSUPP');
      t.expectErrno('RLIMIT_MODE with object_id 1', () => call.option(f, { option_id: RLIMIT, op: GET, object_id: 1 }), 'EOPNOTSUPP');
    },
  ),
  onIoas.test(
    'option.huge-pages',
    'HUGE_PAGES per IOAS: on by default; off makes the IOAS page aligned even without a device; back on restores alignment 1',
    (t, f) => {
      const huge =
        (op: number, val64 = 0n, objectId = f.ioasId) =>
        () =>
          call.option(f, { option_id: HUGE, op, object_id: objectId, val64 }).val64;
      t.equal(t.ok('get', huge(GET)), 1n, 'default');
      t.ok('set 0', huge(SET, 0n));
      t.equal(t.ok('get', huge(GET)), 0n, 'after set 0');
      t.equal(t.ok('IOVA_RANGES', () => iovaRanges(f)).alignment, t.page, 'alignment with huge pages off');
      const va = t.anonymousMemory(t.page).address;
      t.expectErrno('map at an unaligned IOVA', () => call.map(f, { user_va: va, length: t.page, iova: 0x100010n }), 'EINVAL');
      t.ok('set 1', huge(SET, 1n));
      t.equal(t.ok('IOVA_RANGES', () => iovaRanges(f)).alignment, 1n, 'alignment with huge pages on again');
      t.expectErrno('set 2', huge(SET, 2n), 'EINVAL');
      t.expectErrno('get on IOAS 99', huge(GET, 0n, 99), 'ENOENT');
    },
  ),
  onIoas.test(
    'option.huge-pages-off-with-unaligned-area',
    'turning huge pages off while the IOAS holds an unaligned area is EADDRINUSE',
    (t, f) => {
      const va = t.anonymousMemory(t.page).address;
      map(t, f.iommufd, f.ioasId, { userVa: va, length: 0x100n, iova: 0x100010n });
      t.expectErrno('set 0', () => call.option(f, { option_id: HUGE, op: SET, object_id: f.ioasId, val64: 0n }), 'EADDRINUSE');
    },
  ),
  casesOn(attachedDevice).test(
    'option.huge-pages-off-after-attach',
    'turning huge pages off once an attached IOAS has mappings is EINVAL; before mapping it works',
    (t, f) => {
      const set = (val64: bigint) => () => call.option(f, { option_id: HUGE, op: SET, object_id: f.ioasId, val64 }).val64;
      t.ok('set 0 with nothing mapped', set(0n));
      t.ok('set 1', set(1n));
      const va = t.anonymousMemory(t.page).address;
      map(t, f.iommufd, f.ioasId, { userVa: va, length: t.page, iova: 0x100000n });
      t.expectErrno('set 0 with a mapping', set(0n), 'EINVAL');
    },
  ),
  onIommufd.test(
    'vfio-ioas.get-set-clear',
    'IOMMU_VFIO_IOAS: GET is ENODEV until SET; CLEAR and destroying the IOAS both unset it',
    (t, f) => {
      const a = ioasAlloc(t, f.iommufd);
      t.expectErrno('GET with none set', () => call.vfioIoas(f, { op: I.IOMMU_VFIO_IOAS_GET }), 'ENODEV');
      t.ok('SET', () => call.vfioIoas(f, { op: I.IOMMU_VFIO_IOAS_SET, ioas_id: a }));
      t.equal(
        t.ok('GET', () => call.vfioIoas(f, { op: I.IOMMU_VFIO_IOAS_GET }).ioas_id),
        a,
        'the compat IOAS',
      );
      t.ok('CLEAR', () => call.vfioIoas(f, { op: I.IOMMU_VFIO_IOAS_CLEAR }));
      t.expectErrno('GET after CLEAR', () => call.vfioIoas(f, { op: I.IOMMU_VFIO_IOAS_GET }), 'ENODEV');
      t.ok('SET again', () => call.vfioIoas(f, { op: I.IOMMU_VFIO_IOAS_SET, ioas_id: a }));
      destroy(t, f.iommufd, a);
      t.expectErrno('GET after destroying it', () => call.vfioIoas(f, { op: I.IOMMU_VFIO_IOAS_GET }), 'ENODEV');
      t.expectErrno('SET a missing IOAS', () => call.vfioIoas(f, { op: I.IOMMU_VFIO_IOAS_SET, ioas_id: 99 }), 'ENOENT');
      t.expectErrno('op 3', () => call.vfioIoas(f, { op: 3 }), 'EOPNOTSUPP');
    },
  ),
  onIoas.test(
    'vfio-compat.map-unmap-dma',
    'legacy MAP_DMA/UNMAP_DMA on an iommufd act on the compat IOAS; a partial UNMAP_DMA is ENOENT',
    (t, f) => {
      const memory = t.anonymousMemory(4n * t.page);
      t.expectErrno(
        'MAP_DMA without a compat IOAS',
        () => call.dmaMap(f, { vaddr: memory.address, iova: 0x100000n, size: 4n * t.page }),
        'ENODEV',
      );
      t.ok('VFIO_IOAS SET', () => call.vfioIoas(f, { op: I.IOMMU_VFIO_IOAS_SET, ioas_id: f.ioasId }));
      t.ok('MAP_DMA 4 pages at 0x100000', () => call.dmaMap(f, { vaddr: memory.address, iova: 0x100000n, size: 4n * t.page }));
      t.expectErrno('IOAS_MAP over it', () => call.map(f, { user_va: memory.address, length: t.page, iova: 0x100000n }), 'EEXIST');
      t.expectErrno('UNMAP_DMA of the middle', () => call.dmaUnmap(f, { iova: 0x100000n + t.page, size: 2n * t.page }), 'ENOENT');
      t.expectErrno(
        'MAP_DMA flags 1<<2 (VADDR)',
        () => call.dmaMap(f, { vaddr: memory.address, iova: 0x200000n, size: t.page, flags: V.VFIO_DMA_MAP_FLAG_VADDR }),
        'EINVAL',
      );
      t.expectErrno(
        'UNMAP_DMA ALL with a non-zero size',
        () => call.dmaUnmap(f, { iova: 0n, size: t.page, flags: V.VFIO_DMA_UNMAP_FLAG_ALL }),
        'EINVAL',
      );
      t.equal(
        t.ok('UNMAP_DMA ALL', () => call.dmaUnmap(f, { iova: 0n, size: 0n, flags: V.VFIO_DMA_UNMAP_FLAG_ALL }).size),
        4n * t.page,
        'size unmapped',
      );
    },
  ),
  onIoas.test(
    'vfio-compat.unmap-cuts-without-huge-pages',
    'with huge pages off, a legacy UNMAP_DMA of part of a mapping cuts the area instead of failing',
    (t, f) => {
      t.ok('huge pages off', () => call.option(f, { option_id: HUGE, op: SET, object_id: f.ioasId, val64: 0n }));
      t.ok('VFIO_IOAS SET', () => call.vfioIoas(f, { op: I.IOMMU_VFIO_IOAS_SET, ioas_id: f.ioasId }));
      const memory = t.anonymousMemory(4n * t.page);
      t.ok('MAP_DMA 4 pages at 0x100000', () => call.dmaMap(f, { vaddr: memory.address, iova: 0x100000n, size: 4n * t.page }));
      t.equal(
        t.ok('UNMAP_DMA of the middle 2 pages', () => call.dmaUnmap(f, { iova: 0x100000n + t.page, size: 2n * t.page }).size),
        2n * t.page,
        'size unmapped',
      );
      // The cuts left two one-page areas, each of which can now be unmapped on its own.
      t.equal(
        t.ok('IOAS_UNMAP of the first page', () => call.unmap(f, { iova: 0x100000n, length: t.page }).length),
        t.page,
        'first page',
      );
      t.equal(
        t.ok('IOAS_UNMAP of the last page', () => call.unmap(f, { iova: 0x100000n + 3n * t.page, length: t.page }).length),
        t.page,
        'last page',
      );
    },
  ),
  onIommufd.test(
    'vfio-compat.iommu-get-info',
    'legacy IOMMU_GET_INFO on an iommufd reports the page sizes and raises argsz for its capabilities',
    (t, f) => {
      t.ok('VFIO_IOAS SET', () => call.vfioIoas(f, { op: I.IOMMU_VFIO_IOAS_SET, ioas_id: ioasAlloc(t, f.iommufd) }));
      const info = t.ok('VFIO_IOMMU_GET_INFO', () => call.iommuInfo(f));
      t.check((info.flags & V.VFIO_IOMMU_INFO_PGSIZES) !== 0, 'PGSIZES flag');
      t.check((info.flags & V.VFIO_IOMMU_INFO_CAPS) !== 0, 'CAPS flag');
      t.check((info.iova_pgsizes & BigInt(t.pageSize)) !== 0n, `the page size is among iova_pgsizes (0x${info.iova_pgsizes.toString(16)})`);
      t.check(info.argsz > V.VfioIommuType1Info.size, `argsz raised for the capabilities (${info.argsz})`);
      t.equal(info.cap_offset, 0, 'cap_offset when the capabilities did not fit');
      t.expectErrno('argsz 11', () => call.iommuInfo(f, {}, { declaredSize: 11 }), 'EINVAL');
    },
  ),
  onIoas.test(
    'map-file.memfd',
    'IOAS_MAP_FILE maps a memfd range; bad fd EBADF, length 0 EINVAL, unknown flag EOPNOTSUPP, start overflow EOVERFLOW',
    (t, f) => {
      const memfd = t.memfd('conformance', 4n * t.page);
      const at = { fd: memfd, iova: 0x200000n };
      t.equal(
        t.ok(
          'MAP_FILE 2 pages from offset 1 page',
          () => call.mapFile(f, { fd: memfd, start: t.page, length: 2n * t.page, iova: 0x100000n }).iova,
        ),
        0x100000n,
        'IOVA',
      );
      t.expectErrno('MAP_FILE fd -1', () => call.mapFile(f, { ...at, fd: -1, start: 0n, length: t.page }), 'EBADF');
      t.expectErrno('MAP_FILE length 0', () => call.mapFile(f, { ...at, start: 0n, length: 0n }), 'EINVAL');
      t.expectErrno(
        'MAP_FILE flags |= 1<<3',
        () => call.mapFile(f, { ...at, flags: MAP_RW_FIXED | (1 << 3), start: 0n, length: t.page }),
        'EOPNOTSUPP',
      );
      t.expectErrno('MAP_FILE start + length wraps', () => call.mapFile(f, { ...at, start: U64_MAX - 1n, length: t.page }), 'EOVERFLOW');
      t.equal(
        t.ok('unmap', () => call.unmap(f, { iova: 0x100000n, length: 2n * t.page }).length),
        2n * t.page,
        'bytes unmapped',
      );
    },
    [knowsCommand(I.IOMMU_IOAS_MAP_FILE)],
  ),
];
