/**
 * The VFIO type1 container ioctls that iommufd answers itself (vfio_compat.c:
 * iommufd_vfio_ioctl) — on /dev/iommu for any request number outside the iommufd table, and on
 * /dev/vfio/vfio when iommufd provides the container (CONFIG_IOMMUFD_VFIO_CONTAINER). They act on
 * the context's compatibility IOAS. Anything else is ENOTTY (-ENOIOCTLCMD).
 */
import { U64_MAX } from '../../uapi/codec';
import {
  VFIO_API_VERSION,
  VFIO_CHECK_EXTENSION,
  VFIO_DMA_CC_IOMMU,
  VFIO_DMA_MAP_FLAG_READ,
  VFIO_DMA_MAP_FLAG_WRITE,
  VFIO_DMA_UNMAP_FLAG_ALL,
  VFIO_GET_API_VERSION,
  VFIO_IOMMU_GET_INFO,
  VFIO_IOMMU_INFO_CAPS,
  VFIO_IOMMU_INFO_PGSIZES,
  VFIO_IOMMU_MAP_DMA,
  VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE,
  VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL,
  VFIO_IOMMU_UNMAP_DMA,
  VFIO_NOIOMMU_IOMMU,
  VFIO_SET_IOMMU,
  VFIO_TYPE1_IOMMU,
  VFIO_TYPE1v2_IOMMU,
  VFIO_UNMAP_ALL,
  VfioIommuType1DmaMap,
  VfioIommuType1DmaUnmap,
  VfioIommuType1Info,
  VfioIommuType1InfoCapIovaRange,
  VfioIovaRange,
} from '../../uapi/vfio';
import { fail } from '../errno';
import type { CommandContext as IommufdContext } from './command-context';
import { IOMMU_READ, IOMMU_WRITE, UnmapError, type PagesSlice } from './io-pagetable';
import type { IoasObject } from './ioas-object';
import { IoPages, type AccountMode, type PagesSource } from './pinned-pages';
import type { Vma } from '../memory/address-space';
import { PROT_READ, PROT_WRITE } from '../../sys/constants';

/** The reserved type1 nesting number (__VFIO_RESERVED_TYPE1_NESTING_IOMMU). */
const VFIO_RESERVED_TYPE1_NESTING_IOMMU = 6;
const VFIO_UPDATE_VADDR = 10;

/** iommufd_vfio_ioctl. */
export function vfioCompatIoctl(ctx: IommufdContext, request: number, arg: Uint8Array | number | null): number {
  const value = typeof arg === 'number' ? arg : -1;
  switch (request) {
    case VFIO_GET_API_VERSION.number:
      return VFIO_API_VERSION;
    case VFIO_SET_IOMMU.number:
      return setIommu(ctx, value);
    case VFIO_CHECK_EXTENSION.number:
      return checkExtension(ctx, value);
    case VFIO_IOMMU_GET_INFO.number:
      return getInfo(ctx, userArg(arg));
    case VFIO_IOMMU_MAP_DMA.number:
      return mapDma(ctx, userArg(arg));
    case VFIO_IOMMU_UNMAP_DMA.number:
      return unmapDma(ctx, userArg(arg));
    default:
      fail('ENOTTY');
  }
}

function userArg(arg: Uint8Array | number | null): Uint8Array {
  if (!(arg instanceof Uint8Array)) fail('EFAULT');
  return arg;
}

/** get_compat_ioas (ENODEV without one). */
function compatIoas(ctx: IommufdContext): IoasObject {
  if (!ctx.vfioIoas) fail('ENODEV');
  return ctx.vfioIoas;
}

/** iommufd_vfio_check_extension. */
function checkExtension(ctx: IommufdContext, type: number): number {
  switch (type) {
    case VFIO_TYPE1_IOMMU:
    case VFIO_TYPE1v2_IOMMU:
    case VFIO_UNMAP_ALL:
      return ctx.noIommuMode ? 0 : 1;
    case VFIO_NOIOMMU_IOMMU:
      return ctx.host.profile.config.VFIO_NOIOMMU ? 1 : 0;
    case VFIO_DMA_CC_IOMMU:
      // iommufd_vfio_cc_iommu: 1 unless some HWPT of the compat IOAS does not enforce cache
      // coherency — which none does here: QEMU's VT-d has no snoop control and noiommu devices
      // have no IOMMU to ask.
      return compatIoas(ctx).hwpts.length === 0 ? 1 : 0;
    case VFIO_RESERVED_TYPE1_NESTING_IOMMU:
    case VFIO_UPDATE_VADDR:
    default:
      return 0;
  }
}

/** iommufd_vfio_set_iommu. */
function setIommu(ctx: IommufdContext, type: number): number {
  if (ctx.host.profile.config.VFIO_NOIOMMU && type === VFIO_NOIOMMU_IOMMU && ctx.noIommuMode) {
    if (!ctx.host.profile.process.capabilities.sysRawio) fail('EPERM');
    return 0;
  }
  if ((type !== VFIO_TYPE1_IOMMU && type !== VFIO_TYPE1v2_IOMMU) || ctx.noIommuMode) fail('EINVAL');
  const ioas = compatIoas(ctx);
  if (type === VFIO_TYPE1_IOMMU) ioas.iopt.disableHugePages();
  return 0;
}

/** iommufd_vfio_map_dma: always VFIO's mm accounting. */
function mapDma(ctx: IommufdContext, arg: Uint8Array): number {
  const minsz = VfioIommuType1DmaMap.endOf('size');
  if (arg.length < minsz) fail('EFAULT');
  const map = VfioIommuType1DmaMap.decode(arg);
  if (map.argsz < minsz || map.flags & ~(VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE)) fail('EINVAL');
  let prot = 0;
  if (map.flags & VFIO_DMA_MAP_FLAG_READ) prot |= IOMMU_READ;
  if (map.flags & VFIO_DMA_MAP_FLAG_WRITE) prot |= IOMMU_WRITE;
  const ioas = compatIoas(ctx);
  // iopt_map_user_pages with a fixed IOVA.
  if (map.vaddr + map.size > U64_MAX) fail('EOVERFLOW');
  const ps = BigInt(ctx.host.memory.pageSize);
  const uptrDown = map.vaddr - (map.vaddr % ps);
  const startByte = map.vaddr - uptrDown;
  if (map.size > U64_MAX - ps || map.size === 0n) fail('EINVAL');
  const npages = Number((map.size + startByte + ps - 1n) / ps);
  const mode = ctx.host.profile.process.capabilities.ipcLock ? 'none' : ctx.accountMode === 'mm' ? 'mm' : 'user';
  const write = (prot & IOMMU_WRITE) !== 0;
  const slices = (ctx.followsPfnmap ? type1Slices(ctx, uptrDown, npages, startByte, map.size, write, mode) : null) ?? [
    { pages: new IoPages(ctx.host, { kind: 'user', uptr: uptrDown }, npages, write, mode), startByte, length: map.size },
  ];
  try {
    ioas.iopt.mapPages(slices, map.size, map.iova, prot, map.vaddr);
  } catch (e) {
    for (const s of slices) s.pages.put();
    throw e;
  }
  return 0;
}

/**
 * vfio_iommu_type1's vaddr_get_pfns over a range with VM_PFNMAP vmas in it (a BAR's mmap): pages
 * of such a vma are not pinned but followed (follow_fault_pfn), and as I/O memory
 * (is_invalid_reserved_pfn) they are mapped without a page reference or RLIMIT_MEMLOCK charge; RAM
 * around them is pinned as usual. follow_fault_pfn fails with EFAULT when the vma lacks the
 * access asked for or its fault handler would raise SIGBUS (memory decoding off). Null when no
 * page of the range is I/O memory: the ordinary pinning path answers then.
 */
function type1Slices(
  ctx: IommufdContext,
  uptr: bigint,
  npages: number,
  startByte: bigint,
  length: bigint,
  write: boolean,
  mode: AccountMode,
): PagesSlice[] | null {
  const space = ctx.host.space;
  const ps = BigInt(ctx.host.memory.pageSize);
  const end = uptr + BigInt(npages) * ps;
  const runs: { start: bigint; end: bigint; vma: Vma | undefined }[] = [];
  for (let at = uptr; at < end;) {
    const vma = space.find(at);
    const runEnd = vma ? (vma.end < end ? vma.end : end) : end;
    const io = vma?.kind === 'mmio';
    const last = runs[runs.length - 1];
    if (last && !io && last.vma?.kind !== 'mmio') last.end = runEnd;
    else runs.push({ start: at, end: runEnd, vma: io ? vma : undefined });
    at = runEnd;
  }
  if (!runs.some((r) => r.vma !== undefined)) return null;
  const slices: PagesSlice[] = [];
  let left = length;
  try {
    for (const [i, r] of runs.entries()) {
      const pages = Number((r.end - r.start) / ps);
      const skip = i === 0 ? startByte : 0n;
      const take = r.end - r.start - skip < left ? r.end - r.start - skip : left;
      let source: PagesSource = { kind: 'user', uptr: r.start };
      if (r.vma) {
        const vma = r.vma;
        const backing = vma.backing;
        const needs = PROT_READ | (write ? PROT_WRITE : 0);
        if (backing.kind !== 'mmio' || backing.physAddress === undefined) fail('EFAULT', 'no PFN behind the I/O mapping');
        if ((vma.prot & needs) !== needs) fail('EFAULT', 'follow_fault_pfn: the BAR mapping lacks the access asked for');
        if (backing.faultable?.() === false) fail('EFAULT', 'follow_fault_pfn: the BAR fault raises SIGBUS (memory decoding off)');
        const first = (backing.physAddress + (r.start - vma.address)) / ps;
        source = { kind: 'pfnmap', pfns: Array.from({ length: pages }, (_, k) => Number(first) + k) };
      }
      slices.push({ pages: new IoPages(ctx.host, source, pages, write, r.vma ? 'none' : mode), startByte: skip, length: take });
      left -= take;
    }
  } catch (e) {
    for (const s of slices) s.pages.put();
    throw e;
  }
  return slices;
}

/** iommufd_vfio_unmap_dma. */
function unmapDma(ctx: IommufdContext, arg: Uint8Array): number {
  const minsz = VfioIommuType1DmaUnmap.endOf('size');
  if (arg.length < minsz) fail('EFAULT');
  const unmap = VfioIommuType1DmaUnmap.decode(arg);
  if (unmap.argsz < minsz || unmap.flags & ~VFIO_DMA_UNMAP_FLAG_ALL) fail('EINVAL');
  const ioas = compatIoas(ctx);
  let unmapped = 0n;
  let error: unknown = null;
  try {
    if (unmap.flags & VFIO_DMA_UNMAP_FLAG_ALL) {
      if (unmap.iova !== 0n || unmap.size !== 0n) fail('EINVAL');
      unmapped = ioas.iopt.unmapAll();
    } else {
      if (ioas.iopt.disableLargePages) {
        const cuts = [unmap.iova + unmap.size - 1n];
        if (unmap.iova) cuts.push(unmap.iova - 1n);
        ioas.iopt.cutIova(cuts.map((c) => c & U64_MAX));
      }
      unmapped = ioas.iopt.unmapIova(unmap.iova, unmap.size);
    }
  } catch (e) {
    if (e instanceof UnmapError) {
      unmapped = e.unmapped;
      error = e;
    } else throw e;
  }
  VfioIommuType1DmaUnmap.set(arg, 'size', unmapped);
  if (error) fail('ENOENT');
  return 0;
}

/** iommufd_vfio_iommu_get_info with its two capabilities (DMA_AVAIL, then IOVA_RANGE). */
function getInfo(ctx: IommufdContext, arg: Uint8Array): number {
  const minsz = VfioIommuType1Info.endOf('iova_pgsizes');
  if (arg.length < minsz) fail('EFAULT');
  const info = VfioIommuType1Info.decode(arg);
  if (info.argsz < minsz) fail('EINVAL');
  const copyLen = Math.min(info.argsz, VfioIommuType1Info.size);
  const ioas = compatIoas(ctx);
  const iopt = ioas.iopt;
  const ps = BigInt(ctx.host.memory.pageSize);
  // iommufd_get_pagesizes
  let bitmap = U64_MAX;
  for (const d of iopt.domains) bitmap &= d.pgsizeBitmap;
  if (bitmap & (ps - 1n)) bitmap = (bitmap & ~(ps - 1n)) | ps;
  if (iopt.iovaAlignment > bitmap) bitmap = iopt.iovaAlignment;

  const header = VfioIommuType1Info.size;
  const writeAt = (offset: number, bytes: Uint8Array) => {
    if (offset + bytes.length > arg.length) fail('EFAULT');
    arg.set(bytes, offset);
  };
  // DMA_AVAIL: { header, avail u32 } = 12 bytes, padded to 16.
  const dmaAvail = new Uint8Array(12);
  const dv = new DataView(dmaAvail.buffer);
  dv.setUint16(0, VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL, true);
  dv.setUint16(2, 1, true);
  dv.setUint32(8, 0xffff_ffff, true);
  // IOVA_RANGE: header + nr_iovas + reserved, then the ranges.
  const ranges = iopt.iovaRanges();
  const capIova = VfioIommuType1InfoCapIovaRange.size + ranges.length * VfioIovaRange.size;
  const caps: { bytes: () => Uint8Array; size: number }[] = [
    { bytes: () => dmaAvail, size: 12 },
    {
      size: capIova,
      bytes: () => {
        const out = new Uint8Array(capIova);
        VfioIommuType1InfoCapIovaRange.encode({ id: VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE, version: 1, nr_iovas: ranges.length }, out);
        ranges.forEach((r, i) =>
          VfioIovaRange.encode({ start: r.start, end: r.last }, out, VfioIommuType1InfoCapIovaRange.size + i * VfioIovaRange.size),
        );
        return out;
      },
    },
  ];
  let total = header;
  let lastCap = -1;
  for (const cap of caps) {
    const avail = info.argsz > total ? info.argsz - total : 0;
    if (avail >= cap.size) writeAt(total, cap.bytes());
    if (lastCap >= 0 && info.argsz >= total) writeAt(lastCap + 4, new Uint8Array(new Uint32Array([total]).buffer));
    lastCap = total;
    total += Math.ceil(cap.size / 8) * 8;
  }
  const out = VfioIommuType1Info.encode({
    argsz: total,
    flags: VFIO_IOMMU_INFO_PGSIZES | VFIO_IOMMU_INFO_CAPS,
    iova_pgsizes: bitmap,
    cap_offset: info.argsz >= total ? header : 0,
  });
  writeAt(0, out.subarray(0, copyLen));
  return 0;
}
