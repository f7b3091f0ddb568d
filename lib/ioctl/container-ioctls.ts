/**
 * One wrapper per VFIO container-fd ioctl (/dev/vfio/vfio, or iommufd's container emulation).
 * Integer-argument ioctls pass the number itself, not a pointer.
 */
import type { Kernel, UserVa } from '../sys/kernel';
import * as V from '../uapi/vfio';
import type { Iova } from '../sys/addresses';
import { invoke } from './invoke';
import { readCapabilityChain, type InfoCapability } from './capability-chain';

/**
 * VFIO_GET_API_VERSION (always VFIO_API_VERSION, 0, on Linux).
 *
 * @category Ioctl results
 */
export function getApiVersion(kernel: Kernel, fd: number): number {
  return invoke(kernel, fd, V.VFIO_GET_API_VERSION, null);
}

/**
 * VFIO_CHECK_EXTENSION: does the container support this IOMMU type or extension?
 *
 * @category Ioctl results
 */
export function checkExtension(kernel: Kernel, fd: number, extension: number): boolean {
  return invoke(kernel, fd, V.VFIO_CHECK_EXTENSION, extension) > 0;
}

/**
 * VFIO_SET_IOMMU: selects the IOMMU model (VFIO_TYPE1v2_IOMMU, VFIO_NOIOMMU_IOMMU, ...).
 *
 * @category Ioctl results
 */
export function setIommu(kernel: Kernel, fd: number, iommuType: number): void {
  invoke(kernel, fd, V.VFIO_SET_IOMMU, iommuType);
}

/**
 * What VFIO_IOMMU_GET_INFO reports about a type1 container.
 *
 * @category Ioctl results
 */
export interface Type1Info {
  /** VFIO_IOMMU_INFO_* flags. */
  readonly flags: number;
  /** Bitmap of supported IOMMU page sizes. */
  readonly iovaPageSizes: bigint;
  /** The usable IOVA ranges (inclusive end), when the kernel reports them. */
  readonly iovaRanges: {
    /** First usable IOVA. */
    start: Iova;
    /** Last usable IOVA (inclusive, as VFIO reports it). */
    end: Iova;
  }[];
  /** The raw capability chain. */
  readonly capabilities: InfoCapability[];
}

/**
 * VFIO_IOMMU_GET_INFO (type1), retried with the argsz the kernel asks for.
 *
 * @category Ioctl results
 */
export function iommuGetInfo(kernel: Kernel, fd: number): Type1Info {
  let size = V.VfioIommuType1Info.size;
  for (let attempt = 0; attempt < 4; attempt++) {
    const buf = Buffer.alloc(size);
    V.VfioIommuType1Info.encode({ argsz: size }, buf);
    invoke(kernel, fd, V.VFIO_IOMMU_GET_INFO, buf);
    const v = V.VfioIommuType1Info.decode(buf);
    if (v.argsz > size) {
      size = v.argsz;
      continue;
    }
    const caps = (v.flags & V.VFIO_IOMMU_INFO_CAPS) !== 0 && v.cap_offset !== 0 ? readCapabilityChain(buf, v.cap_offset) : [];
    const iovaRanges: Type1Info['iovaRanges'] = [];
    for (const cap of caps) {
      if (cap.id !== V.VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE) continue;
      const head = V.VfioIommuType1InfoCapIovaRange.decode(cap.bytes);
      for (let i = 0; i < head.nr_iovas; i++) {
        const at = V.VfioIommuType1InfoCapIovaRange.size + i * V.VfioIovaRange.size;
        if (at + V.VfioIovaRange.size > cap.bytes.length) break;
        const r = V.VfioIovaRange.decode(cap.bytes, at);
        iovaRanges.push({ start: r.start as Iova, end: r.end as Iova });
      }
    }
    return { flags: v.flags, iovaPageSizes: v.iova_pgsizes, iovaRanges, capabilities: caps };
  }
  throw new Error('VFIO_IOMMU_GET_INFO: the kernel kept raising argsz');
}

export interface DmaMapArgs {
  readonly vaddr: UserVa;
  readonly iova: Iova;
  readonly size: bigint;
  readonly readable: boolean;
  readonly writable: boolean;
}

/**
 * VFIO_IOMMU_MAP_DMA (type1 containers; a noiommu container has no DMA mapping ioctls).
 *
 * @category Ioctl results
 */
export function iommuMapDma(kernel: Kernel, fd: number, args: DmaMapArgs): void {
  const buf = V.VfioIommuType1DmaMap.encode({
    argsz: V.VfioIommuType1DmaMap.size,
    flags: (args.readable ? V.VFIO_DMA_MAP_FLAG_READ : 0) | (args.writable ? V.VFIO_DMA_MAP_FLAG_WRITE : 0),
    vaddr: args.vaddr,
    iova: args.iova,
    size: args.size,
  });
  invoke(kernel, fd, V.VFIO_IOMMU_MAP_DMA, buf);
}

/**
 * VFIO_IOMMU_UNMAP_DMA: returns the bytes unmapped. Without a range, unmaps all (VFIO_DMA_UNMAP_FLAG_ALL).
 *
 * @category Ioctl results
 */
export function iommuUnmapDma(kernel: Kernel, fd: number, range?: { iova: Iova; size: bigint }): bigint {
  const buf = V.VfioIommuType1DmaUnmap.encode({
    argsz: V.VfioIommuType1DmaUnmap.size,
    flags: range ? 0 : V.VFIO_DMA_UNMAP_FLAG_ALL,
    iova: range?.iova ?? 0n,
    size: range?.size ?? 0n,
  });
  invoke(kernel, fd, V.VFIO_IOMMU_UNMAP_DMA, buf);
  return V.VfioIommuType1DmaUnmap.get(buf, 'size');
}
