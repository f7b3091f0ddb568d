/**
 * The SR-IOV extended capability (PCIe base spec 9.3.3; the register offsets of
 * include/uapi/linux/pci_regs.h PCI_SRIOV_*), laid out as QEMU's pcie_sriov_pf_init fills it:
 * InitialVFs = TotalVFs, the First VF Offset and VF Stride that place the VFs, the VF Device ID,
 * supported page sizes 0x553 and a system page size of 4 KiB; software may write VF Enable, VF
 * MSE, ARI Capable Hierarchy, NumVFs and the system page size, nothing else. A device model that
 * lists it offers VFs through DeviceModel.createVirtualFunction, which the host's SR-IOV code
 * (drivers/pci/iov.c in the model) calls when software enables them through sriov_numvfs.
 */
import { extendedCapability, type ExtendedCapabilitySpec } from './capabilities';

/**
 * The capability's registers, as offsets from the capability (PCI_SRIOV_*).
 *
 * @category Device-model SDK
 */
export const SRIOV = {
  /** SR-IOV Capabilities (32 bits; VF Migration Capable etc.). */
  CAP: 0x04,
  /** SR-IOV Control (16 bits): VF Enable, VF MSE, ARI Capable Hierarchy. */
  CTRL: 0x08,
  /** SR-IOV Status (16 bits). */
  STATUS: 0x0a,
  /** InitialVFs (16 bits, read-only). */
  INITIAL_VF: 0x0c,
  /** TotalVFs (16 bits, read-only). */
  TOTAL_VF: 0x0e,
  /** NumVFs (16 bits): how many VFs software enables. */
  NUM_VF: 0x10,
  /** Function Dependency Link (8 bits). */
  FUNC_LINK: 0x12,
  /** First VF Offset (16 bits, read-only). */
  VF_OFFSET: 0x14,
  /** VF Stride (16 bits, read-only). */
  VF_STRIDE: 0x16,
  /** VF Device ID (16 bits, read-only). */
  VF_DID: 0x1a,
  /** Supported Page Sizes (32 bits, read-only). */
  SUP_PGSIZE: 0x1c,
  /** System Page Size (32 bits): the page size VF BARs are aligned to. */
  SYS_PGSIZE: 0x20,
  /** VF BAR0 (six 32-bit VF BAR registers follow). */
  BAR: 0x24,
  /** VF Migration State Array Offset (32 bits). */
  VFM: 0x3c,
  /** Size of the capability in bytes, header included. */
  SIZEOF: 0x40,
} as const;
/**
 * The SR-IOV extended capability ID (PCI_EXT_CAP_ID_SRIOV).
 *
 * @category Device-model SDK
 */
export const PCI_EXT_CAP_ID_SRIOV = 0x10;
/**
 * SR-IOV Control: VF Enable; setting it with NumVFs > 0 makes the VFs appear.
 *
 * @category Device-model SDK
 */
export const SRIOV_CTRL_VFE = 0x01;
/**
 * SR-IOV Control: VF Memory Space Enable, the VFs' memory decode.
 *
 * @category Device-model SDK
 */
export const SRIOV_CTRL_MSE = 0x08;
/**
 * SR-IOV Control: ARI Capable Hierarchy, set by the host when the port above supports ARI.
 *
 * @category Device-model SDK
 */
export const SRIOV_CTRL_ARI = 0x10;
const QEMU_SUPPORTED_PAGE_SIZES = 0x553;

/**
 * What `sriovCapability` takes: how many VFs, where they sit, what they report.
 *
 * @category Device-model SDK
 */
export interface SriovCapabilitySpec {
  /** TotalVFs (and InitialVFs): 1..65535. */
  readonly totalVfs: number;
  /** First VF Offset: VF n sits at the PF's routing ID + offset + n × stride. */
  readonly vfOffset: number;
  /** VF Stride: the routing-ID distance between consecutive VFs (non-zero when there are several). */
  readonly vfStride: number;
  /** The Device ID every VF reports (its Vendor ID is the PF's). */
  readonly vfDeviceId: number;
  /** The BARs every VF has, as the capability's VF BAR registers declare them (sized like BARs). */
  readonly vfBars?: readonly {
    /** The VF BAR index, 0..5 (a 64-bit BAR takes this register and the next). */
    readonly index: number;
    /** Size of the BAR of each VF, a power of two. */
    readonly size: bigint;
    /** 32- or 64-bit memory BAR (VFs have no I/O BARs). */
    readonly type: 'memory32' | 'memory64';
    /** Whether the BAR is marked prefetchable. Default false. */
    readonly prefetchable?: boolean;
  }[];
  /** Capability offset in extended config space (default: the next free). */
  readonly at?: number;
}

/**
 * The SR-IOV extended capability for a PF model, as an ExtendedCapabilitySpec to list in the
 * definition's capabilities (RangeError for out-of-range fields).
 *
 * @example
 * ```ts
 * capabilities: [pcieCapability(), sriovCapability({ totalVfs: 4, vfOffset: 1, vfStride: 1, vfDeviceId: 0x11e9 })],
 * ```
 *
 * @category Device-model SDK
 */
export function sriovCapability(o: SriovCapabilitySpec): ExtendedCapabilitySpec {
  for (const [name, value, max] of [
    ['totalVfs', o.totalVfs, 0xffff],
    ['vfOffset', o.vfOffset, 0xffff],
    ['vfStride', o.vfStride, 0xffff],
    ['vfDeviceId', o.vfDeviceId, 0xffff],
  ] as const) {
    if (!Number.isInteger(value) || value < 0 || value > max) throw new RangeError(`sriovCapability: ${name} ${value} is not 0..${max}`);
  }
  if (o.totalVfs < 1) throw new RangeError('sriovCapability: totalVfs must be at least 1');
  if (o.totalVfs > 1 && o.vfStride === 0) throw new RangeError('sriovCapability: several VFs need a non-zero vfStride');
  // data and writeMask start after the 4-byte header.
  const data = new Uint8Array(SRIOV.SIZEOF - 4);
  const mask = new Uint8Array(SRIOV.SIZEOF - 4);
  const v = new DataView(data.buffer),
    m = new DataView(mask.buffer);
  const at = (reg: number) => reg - 4;
  v.setUint16(at(SRIOV.INITIAL_VF), o.totalVfs, true);
  v.setUint16(at(SRIOV.TOTAL_VF), o.totalVfs, true);
  v.setUint16(at(SRIOV.VF_OFFSET), o.vfOffset, true);
  v.setUint16(at(SRIOV.VF_STRIDE), o.vfStride, true);
  v.setUint16(at(SRIOV.VF_DID), o.vfDeviceId, true);
  v.setUint32(at(SRIOV.SUP_PGSIZE), QEMU_SUPPORTED_PAGE_SIZES, true);
  v.setUint32(at(SRIOV.SYS_PGSIZE), 0x1, true);
  m.setUint16(at(SRIOV.CTRL), SRIOV_CTRL_VFE | SRIOV_CTRL_MSE | SRIOV_CTRL_ARI, true);
  m.setUint16(at(SRIOV.NUM_VF), 0xffff, true);
  m.setUint32(at(SRIOV.SYS_PGSIZE), QEMU_SUPPORTED_PAGE_SIZES, true);
  for (const bar of o.vfBars ?? []) {
    const is64 = bar.type === 'memory64';
    if (!Number.isInteger(bar.index) || bar.index < 0 || bar.index > (is64 ? 4 : 5))
      throw new RangeError(`sriovCapability: VF BAR index ${bar.index} is not 0..${is64 ? 4 : 5}`);
    if (bar.size < 16n || (bar.size & (bar.size - 1n)) !== 0n || (!is64 && bar.size > 1n << 31n))
      throw new RangeError(`sriovCapability: VF BAR ${bar.index} size ${bar.size} is not a power of two of at least 16 bytes`);
    const reg = at(SRIOV.BAR + 4 * bar.index);
    const mask = ~(bar.size - 1n) & ((1n << 64n) - 1n);
    v.setUint32(reg, (is64 ? 0x4 : 0) | (bar.prefetchable ? 0x8 : 0), true);
    m.setUint32(reg, Number(mask & 0xffff_fff0n), true);
    if (is64) m.setUint32(reg + 4, Number(mask >> 32n), true);
  }
  return extendedCapability({ id: PCI_EXT_CAP_ID_SRIOV, version: 1, data, writeMask: mask, ...(o.at === undefined ? {} : { at: o.at }) });
}
