/**
 * One wrapper per VFIO device-fd ioctl (a cdev from /dev/vfio/devices or an fd from
 * VFIO_GROUP_GET_DEVICE_FD). Info ioctls that carry a capability chain are retried transparently
 * when the kernel raises `argsz`: the first call uses the fixed struct size, and if the chain does
 * not fit the kernel succeeds with `argsz` set to the size it needs; the second call passes that.
 */
import type { Kernel } from '../sys/kernel';
import type { FieldType, ScalarType, StructView } from '../uapi/codec';
import type { IoctlRequest } from '../uapi/requests';
import * as V from '../uapi/vfio';
import { isVfioError } from '../sys/errors';
import { invoke, withUserMemory } from './invoke';
import { readCapabilityChain, type InfoCapability } from './capability-chain';

/** The VFIO info structs queryInfo handles: each starts with `argsz`. */
type InfoStruct = Record<string, FieldType> & { argsz: ScalarType<number> };

/**
 * Issues an info ioctl whose struct starts with `argsz`: first in `first`, reused memory of the
 * fixed size (no allocation when the answer fits, which is the common case), then, while the
 * kernel raises argsz for a capability chain that does not fit, in fresh memory of the size it
 * asks for. `prepare` fills in what the call asks about (the region or IRQ index). Returns the
 * view holding the answer, which may be `first`: read it before the next call. The bound on
 * attempts guards against a kernel that keeps asking for more.
 */
function queryInfo<S extends InfoStruct>(
  kernel: Kernel,
  fd: number,
  request: IoctlRequest,
  first: StructView<S>,
  prepare?: (info: StructView<S>) => void,
): StructView<S> {
  let info = first;
  for (let attempt = 0; attempt < 4; attempt++) {
    const size = info.$bytes.length;
    // Reused memory still holds the last answer; fresh memory is zero already.
    if (info === first) info.$clear();
    // Every info struct leads with argsz (InfoStruct), which TypeScript cannot see through S.
    const head: { argsz: number } = info as StructView<InfoStruct>;
    head.argsz = size;
    prepare?.(info);
    invoke(kernel, fd, request, info.$bytes);
    const asked = head.argsz;
    if (asked <= size) return info;
    info = first.$type.allocate(asked);
  }
  throw new Error(`${request.name}: the kernel kept raising argsz (last asked for ${info.$bytes.length} bytes)`);
}

/**
 * The capability chain of an info answer. Capabilities keep views of the bytes they came from,
 * so a chain found in reused memory is read from a copy (it never is in practice: a chain only
 * fits once the kernel raised argsz past the fixed struct, which means fresh memory).
 */
function capabilitiesOf(bytes: Uint8Array, reused: boolean, capOffset: number): InfoCapability[] {
  return readCapabilityChain(reused ? bytes.slice() : bytes, capOffset);
}

/**
 * What VFIO_DEVICE_GET_INFO reports.
 *
 * @category Ioctl results
 */
export interface DeviceInfo {
  /** VFIO_DEVICE_FLAGS_* (RESET, PCI, CAPS, ...). */
  readonly flags: number;
  /** Number of region indexes (9 for PCI, plus device-specific ones). */
  readonly numRegions: number;
  /** Number of IRQ indexes (5 for PCI). */
  readonly numIrqs: number;
  /** The raw capability chain. */
  readonly capabilities: InfoCapability[];
}

/**
 * VFIO_DEVICE_GET_INFO, with its capability chain.
 *
 * @category Ioctl results
 */
export function deviceGetInfo(kernel: Kernel, fd: number): DeviceInfo {
  const info = queryInfo(kernel, fd, V.VFIO_DEVICE_GET_INFO, deviceInfoMemory);
  const flags = info.flags;
  const capOffset = info.cap_offset;
  const hasCaps = (flags & V.VFIO_DEVICE_FLAGS_CAPS) !== 0 && capOffset !== 0;
  return {
    flags,
    numRegions: info.num_regions,
    numIrqs: info.num_irqs,
    capabilities: hasCaps ? capabilitiesOf(info.$bytes, info === deviceInfoMemory, capOffset) : [],
  };
}

// Reused by every call (a call reads its answer out before returning, so nothing can see it change).
const deviceInfoMemory = V.VfioDeviceInfo.allocate();

/**
 * A part of a region that may be mmap'ed.
 *
 * @category Ioctl results
 */
export interface SparseMmapArea {
  /** Offset within the region. */
  readonly offset: bigint;
  /** Bytes. */
  readonly size: bigint;
}

/**
 * What VFIO_DEVICE_GET_REGION_INFO reports, with its capability chain decoded.
 *
 * @category Ioctl results
 */
export interface RegionInfo {
  /** Region index. */
  readonly index: number;
  /** VFIO_REGION_INFO_FLAG_* (READ, WRITE, MMAP, CAPS). */
  readonly flags: number;
  /** Bytes (0: the region is absent). */
  readonly size: bigint;
  /** Offset of the region within the device fd, for pread/pwrite/mmap. */
  readonly offset: bigint;
  /** Only these parts may be mmap'ed, when present (e.g. around an MSI-X table). */
  readonly sparseMmap?: SparseMmapArea[];
  /** Device-specific region type (VFIO_REGION_INFO_CAP_TYPE). */
  readonly type?: {
    /** VFIO_REGION_TYPE_*. */
    readonly type: number;
    /** Type-specific subtype. */
    readonly subtype: number;
  };
  /** The MSI-X table in this BAR may be mmap'ed (VFIO_REGION_INFO_CAP_MSIX_MAPPABLE). */
  readonly msixMappable: boolean;
  /** The raw capability chain. */
  readonly capabilities: InfoCapability[];
}

/**
 * VFIO_DEVICE_GET_REGION_INFO, with its capability chain decoded.
 *
 * @category Ioctl results
 */
export function deviceGetRegionInfo(kernel: Kernel, fd: number, index: number): RegionInfo {
  const info = queryInfo(kernel, fd, V.VFIO_DEVICE_GET_REGION_INFO, regionInfoMemory, (r) => {
    r.index = index;
  });
  const flags = info.flags;
  const capOffset = info.cap_offset;
  const hasCaps = (flags & V.VFIO_REGION_INFO_FLAG_CAPS) !== 0 && capOffset !== 0;
  const capabilities = hasCaps ? capabilitiesOf(info.$bytes, info === regionInfoMemory, capOffset) : [];
  let sparseMmap: SparseMmapArea[] | undefined;
  let type: RegionInfo['type'];
  for (const cap of capabilities) {
    if (cap.id === V.VFIO_REGION_INFO_CAP_SPARSE_MMAP) {
      const head = V.VfioRegionInfoCapSparseMmap.decode(cap.bytes);
      sparseMmap = [];
      for (let i = 0; i < head.nr_areas; i++) {
        const at = V.VfioRegionInfoCapSparseMmap.size + i * V.VfioRegionSparseMmapArea.size;
        if (at + V.VfioRegionSparseMmapArea.size > cap.bytes.length) break;
        const area = V.VfioRegionSparseMmapArea.decode(cap.bytes, at);
        sparseMmap.push({ offset: area.offset, size: area.size });
      }
    } else if (cap.id === V.VFIO_REGION_INFO_CAP_TYPE) {
      const t = V.VfioRegionInfoCapType.decode(cap.bytes);
      type = { type: t.type, subtype: t.subtype };
    }
  }
  const region: RegionInfo = {
    index: info.index,
    flags,
    size: info.size,
    offset: info.offset,
    msixMappable: capabilities.some((c) => c.id === V.VFIO_REGION_INFO_CAP_MSIX_MAPPABLE),
    capabilities,
    ...(sparseMmap ? { sparseMmap } : {}),
    ...(type ? { type } : {}),
  };
  return region;
}

const regionInfoMemory = V.VfioRegionInfo.allocate();

/**
 * What VFIO_DEVICE_GET_IRQ_INFO reports.
 *
 * @category Ioctl results
 */
export interface IrqInfo {
  /** IRQ index (0 INTx, 1 MSI, 2 MSI-X, 3 error, 4 request). */
  readonly index: number;
  /** VFIO_IRQ_INFO_* (EVENTFD, MASKABLE, AUTOMASKED, NORESIZE). */
  readonly flags: number;
  /** How many vectors this index supports (0: not available on this device). */
  readonly count: number;
}

/**
 * VFIO_DEVICE_GET_IRQ_INFO.
 *
 * @category Ioctl results
 */
export function deviceGetIrqInfo(kernel: Kernel, fd: number, index: number): IrqInfo {
  const buf = V.VfioIrqInfo.encode({ argsz: V.VfioIrqInfo.size, index });
  invoke(kernel, fd, V.VFIO_DEVICE_GET_IRQ_INFO, buf);
  const v = V.VfioIrqInfo.decode(buf);
  return { index: v.index, flags: v.flags, count: v.count };
}

export type IrqAction = 'mask' | 'unmask' | 'trigger';
/**
 * What VFIO_DEVICE_SET_IRQS carries for each vector of [start, start+count).
 *
 * @category Ioctl results
 */
export type IrqData =
  | { readonly kind: 'none' }
  | { readonly kind: 'bool'; readonly values: readonly boolean[] }
  /** An eventfd per vector; -1 de-assigns that vector. */
  | { readonly kind: 'eventfd'; readonly fds: readonly number[] };

export interface SetIrqsArgs {
  readonly index: number;
  readonly action: IrqAction;
  readonly start: number;
  /** Number of vectors; with data 'none', count 0 and action 'trigger' disables the index. */
  readonly count: number;
  readonly data: IrqData;
}

const ACTION_FLAGS: Record<IrqAction, number> = {
  mask: V.VFIO_IRQ_SET_ACTION_MASK,
  unmask: V.VFIO_IRQ_SET_ACTION_UNMASK,
  trigger: V.VFIO_IRQ_SET_ACTION_TRIGGER,
};

/**
 * VFIO_DEVICE_SET_IRQS.
 *
 * @category Ioctl results
 */
export function deviceSetIrqs(kernel: Kernel, fd: number, args: SetIrqsArgs): void {
  const header = V.VfioIrqSet.size;
  let dataFlag: number;
  let payload: Buffer;
  switch (args.data.kind) {
    case 'none':
      dataFlag = V.VFIO_IRQ_SET_DATA_NONE;
      payload = Buffer.alloc(0);
      break;
    case 'bool':
      dataFlag = V.VFIO_IRQ_SET_DATA_BOOL;
      payload = Buffer.from(args.data.values.map((b) => (b ? 1 : 0)));
      break;
    case 'eventfd':
      dataFlag = V.VFIO_IRQ_SET_DATA_EVENTFD;
      payload = Buffer.alloc(args.data.fds.length * 4);
      args.data.fds.forEach((f, i) => payload.writeInt32LE(f, i * 4));
      break;
  }
  const buf = Buffer.alloc(header + payload.length);
  V.VfioIrqSet.encode(
    {
      argsz: buf.length,
      flags: dataFlag | ACTION_FLAGS[args.action],
      index: args.index,
      start: args.start,
      count: args.count,
    },
    buf,
  );
  payload.copy(buf, header);
  invoke(kernel, fd, V.VFIO_DEVICE_SET_IRQS, buf);
}

/**
 * VFIO_DEVICE_RESET: function-level (or other device-specific) reset.
 *
 * @category Ioctl results
 */
export function deviceReset(kernel: Kernel, fd: number): void {
  invoke(kernel, fd, V.VFIO_DEVICE_RESET, null);
}

/**
 * A device affected by a hot reset.
 *
 * @category Ioctl results
 */
export interface DependentDevice {
  /** On the group path a group id; with VFIO_PCI_HOT_RESET_FLAG_DEV_ID a device id (or -1: not owned). */
  readonly groupOrDeviceId: number;
  /** PCI segment (domain). */
  readonly segment: number;
  /** PCI bus number. */
  readonly bus: number;
  /** Device and function: device << 3 | function. */
  readonly devfn: number;
}

/**
 * What VFIO_DEVICE_GET_PCI_HOT_RESET_INFO reports.
 *
 * @category Ioctl results
 */
export interface HotResetInfo {
  /** VFIO_PCI_HOT_RESET_FLAG_DEV_ID(_OWNED): ids are iommufd device ids (cdev path). */
  readonly flags: number;
  /** Every device the reset would affect, this one included. */
  readonly devices: DependentDevice[];
}

/**
 * VFIO_DEVICE_GET_PCI_HOT_RESET_INFO: the devices a bus/slot reset would also reset. The kernel
 * answers ENOSPC with the needed count; the wrapper retries with room for that many.
 *
 * @category Ioctl results
 */
export function deviceGetPciHotResetInfo(kernel: Kernel, fd: number): HotResetInfo {
  const header = V.VfioPciHotResetInfo.size;
  const entry = V.VfioPciDependentDevice.size;
  let capacity = 4;
  for (let attempt = 0; attempt < 4; attempt++) {
    const buf = Buffer.alloc(header + capacity * entry);
    V.VfioPciHotResetInfo.encode({ argsz: buf.length }, buf);
    try {
      invoke(kernel, fd, V.VFIO_DEVICE_GET_PCI_HOT_RESET_INFO, buf);
    } catch (e) {
      const needed = V.VfioPciHotResetInfo.get(buf, 'count');
      if (isVfioError(e, 'ENOSPC') && needed > capacity) {
        capacity = needed;
        continue;
      }
      throw e;
    }
    const v = V.VfioPciHotResetInfo.decode(buf);
    const devices: DependentDevice[] = [];
    for (let i = 0; i < v.count; i++) {
      const d = V.VfioPciDependentDevice.decode(buf, header + i * entry);
      devices.push({ groupOrDeviceId: d.group_id | 0, segment: d.segment, bus: d.bus, devfn: d.devfn });
    }
    return { flags: v.flags, devices };
  }
  throw new Error('VFIO_DEVICE_GET_PCI_HOT_RESET_INFO: the kernel kept asking for more room');
}

/**
 * VFIO_DEVICE_PCI_HOT_RESET: resets the bus or slot. On the group path pass the fds of every
 * affected group; on the cdev path pass none (the kernel checks ownership through iommufd).
 *
 * @category Ioctl results
 */
export function devicePciHotReset(kernel: Kernel, fd: number, groupFds: readonly number[] = []): void {
  const header = V.VfioPciHotReset.size;
  const buf = Buffer.alloc(header + groupFds.length * 4);
  V.VfioPciHotReset.encode({ argsz: buf.length, count: groupFds.length }, buf);
  groupFds.forEach((g, i) => buf.writeInt32LE(g, header + i * 4));
  invoke(kernel, fd, V.VFIO_DEVICE_PCI_HOT_RESET, buf);
}

/**
 * VFIO_DEVICE_BIND_IOMMUFD (cdev only): binds the device to an iommufd; returns its device id there.
 * With `vfToken` (16 bytes) it sets VFIO_DEVICE_BIND_FLAG_TOKEN and points token_uuid_ptr at a copy
 * in mapped memory, as an SR-IOV VF of a vfio-pci PF requires.
 *
 * @category Ioctl results
 */
export function deviceBindIommufd(kernel: Kernel, fd: number, iommufd: number, vfToken?: Uint8Array): number {
  if (!vfToken) {
    const buf = V.VfioDeviceBindIommufd.encode({ argsz: V.VfioDeviceBindIommufd.size, iommufd });
    invoke(kernel, fd, V.VFIO_DEVICE_BIND_IOMMUFD, buf);
    return V.VfioDeviceBindIommufd.get(buf, 'out_devid');
  }
  if (vfToken.length !== VF_TOKEN_SIZE) throw new RangeError(`vfToken must be ${VF_TOKEN_SIZE} bytes, not ${vfToken.length}`);
  return withUserMemory(kernel, VF_TOKEN_SIZE, (memory, bytes) => {
    bytes.set(vfToken);
    const buf = V.VfioDeviceBindIommufd.encode({
      argsz: V.VfioDeviceBindIommufd.size,
      flags: V.VFIO_DEVICE_BIND_FLAG_TOKEN,
      iommufd,
      token_uuid_ptr: memory.address,
    });
    invoke(kernel, fd, V.VFIO_DEVICE_BIND_IOMMUFD, buf);
    return V.VfioDeviceBindIommufd.get(buf, 'out_devid');
  });
}

/**
 * A VF token is a UUID: 16 bytes.
 *
 * @category Ioctl results
 */
export const VF_TOKEN_SIZE = 16;

/**
 * VFIO_DEVICE_FEATURE(SET, PCI_VF_TOKEN) on an SR-IOV PF: the token its VFs must then be opened
 * with. The kernel offers no GET (the token may be the previous user's).
 *
 * @category Ioctl results
 */
export function deviceSetVfToken(kernel: Kernel, fd: number, vfToken: Uint8Array): void {
  if (vfToken.length !== VF_TOKEN_SIZE) throw new RangeError(`vfToken must be ${VF_TOKEN_SIZE} bytes, not ${vfToken.length}`);
  const header = V.VfioDeviceFeature.size;
  const buf = Buffer.alloc(header + VF_TOKEN_SIZE);
  V.VfioDeviceFeature.encode({ argsz: buf.length, flags: V.VFIO_DEVICE_FEATURE_SET | V.VFIO_DEVICE_FEATURE_PCI_VF_TOKEN }, buf);
  buf.set(vfToken, header);
  invoke(kernel, fd, V.VFIO_DEVICE_FEATURE, buf);
}

/**
 * VFIO_DEVICE_ATTACH_IOMMUFD_PT: attaches to an IOAS or HWPT (replacing any current one). Returns
 * the id actually attached: for an IOAS, the HWPT the kernel created or reused for it.
 *
 * @category Ioctl results
 */
export function deviceAttachIommufdPt(kernel: Kernel, fd: number, ptId: number, pasid?: number): number {
  const buf = V.VfioDeviceAttachIommufdPt.encode({
    argsz: V.VfioDeviceAttachIommufdPt.size,
    flags: pasid === undefined ? 0 : V.VFIO_DEVICE_ATTACH_PASID,
    pt_id: ptId,
    pasid: pasid ?? 0,
  });
  invoke(kernel, fd, V.VFIO_DEVICE_ATTACH_IOMMUFD_PT, buf);
  return V.VfioDeviceAttachIommufdPt.get(buf, 'pt_id');
}

/**
 * VFIO_DEVICE_DETACH_IOMMUFD_PT.
 *
 * @category Ioctl results
 */
export function deviceDetachIommufdPt(kernel: Kernel, fd: number, pasid?: number): void {
  const buf = V.VfioDeviceDetachIommufdPt.encode({
    argsz: V.VfioDeviceDetachIommufdPt.size,
    flags: pasid === undefined ? 0 : V.VFIO_DEVICE_DETACH_PASID,
    pasid: pasid ?? 0,
  });
  invoke(kernel, fd, V.VFIO_DEVICE_DETACH_IOMMUFD_PT, buf);
}
