/**
 * Capability builders: each returns a description the device's config space is laid out from
 * (config-layout.ts). Standard capabilities go into the list at 0x40..0xff in the order given
 * (at the next free dword, as QEMU's pci_add_capability allocates, or at `at`); extended ones into
 * the PCI Express list from 0x100. The registers get the read-only, read-write and write-1-to-clear
 * bits the specification gives them, so vfio-pci's virtualisation treats them like a real device's.
 */

/**
 * MSI (PCI 3.0 §6.8.1), as QEMU's msi_init lays it out.
 *
 * @category Device-model SDK
 */
export interface MsiCapabilitySpec {
  /** Which builder made this description; the config-space layout switches on it. */
  readonly capability: 'msi';
  /** Vectors the function can use: 1, 2, 4, … 32. */
  readonly vectors: number;
  /** 64-bit message address (PCI_MSI_FLAGS_64BIT): the host may place the MSI doorbell above 4 GiB. */
  readonly is64bit: boolean;
  /** Per-vector masking (PCI_MSI_FLAGS_MASKBIT): adds the mask and pending registers. */
  readonly perVectorMask: boolean;
  /** Offset in config space chosen by the device (default: the next free dword). */
  readonly at?: number;
}

/**
 * Where an MSI-X structure lives: a memory BAR and an offset in it (8-byte aligned).
 *
 * @category Device-model SDK
 */
export interface MsixPlacement {
  /** The BAR index (0..5); it must be a memory BAR large enough for the structure. */
  readonly bar: number;
  /** Byte offset of the structure in the BAR. */
  readonly offset: number;
}

/**
 * MSI-X (PCI 3.0 §6.8.2): the capability plus a vector table and a pending-bit array in BARs.
 *
 * @category Device-model SDK
 */
export interface MsixCapabilitySpec {
  /** Which builder made this description; the config-space layout switches on it. */
  readonly capability: 'msix';
  /** Table entries, 1..2048. */
  readonly vectors: number;
  /** Where the vector table (16 bytes per vector) lives. */
  readonly table: MsixPlacement;
  /** Where the pending-bit array (one bit per vector) lives. */
  readonly pba: MsixPlacement;
  /** Offset in config space chosen by the device (default: the next free dword). */
  readonly at?: number;
}

/**
 * The PCI Express device/port type the capability reports; node-vfio models endpoints only.
 *
 * @category Device-model SDK
 */
export type PcieDeviceType = 'endpoint' | 'integrated-endpoint';

/**
 * The PCI Express capability (version 2), which also gives the function 4 KiB of config space.
 *
 * @category Device-model SDK
 */
export interface PcieCapabilitySpec {
  /** Which builder made this description; the config-space layout switches on it. */
  readonly capability: 'pcie';
  /** 'integrated-endpoint' is what QEMU makes of a PCIe device on q35's root bus. */
  readonly type: PcieDeviceType;
  /** Function-level reset (Device Capabilities bit 28): Linux then resets the function with FLR. */
  readonly flr: boolean;
  /** Max_Payload_Size supported, in bytes: 128 … 4096. */
  readonly maxPayload: number;
  /** Link speed in GT/s generations (1 = 2.5 GT/s … 5 = 32 GT/s) and width in lanes; endpoints only. */
  readonly linkSpeed: number;
  /** Link width in lanes (1, 2, 4, … 32); endpoints only. */
  readonly linkWidth: number;
  /** Offset in config space chosen by the device (default: the next free dword). */
  readonly at?: number;
}

/**
 * Power management (PCI PM 1.2).
 *
 * @category Device-model SDK
 */
export interface PmCapabilitySpec {
  /** Which builder made this description; the config-space layout switches on it. */
  readonly capability: 'pm';
  /**
   * No_Soft_Reset: the function keeps its state across D3hot→D0. When false Linux can reset the
   * function through a D3hot round trip (the PM reset method).
   */
  readonly noSoftReset: boolean;
  /** Offset in config space chosen by the device (default: the next free dword). */
  readonly at?: number;
}

/**
 * A vendor-specific capability (ID 0x09): the bytes after the length byte are the vendor's.
 *
 * @category Device-model SDK
 */
export interface VendorCapabilitySpec {
  /** Which builder made this description; the config-space layout switches on it. */
  readonly capability: 'vendor';
  /** The vendor bytes that follow the ID, next pointer and length bytes. */
  readonly data: Uint8Array;
  /** Whether software may write the data bytes. Default false (read-only). */
  readonly writable: boolean;
  /** Offset in config space chosen by the device (default: the next free dword). */
  readonly at?: number;
}

/**
 * Any PCI Express extended capability (AER, DSN, vendor-specific …) given as its register bytes.
 *
 * @category Device-model SDK
 */
export interface ExtendedCapabilitySpec {
  /** Which builder made this description; the config-space layout switches on it. */
  readonly capability: 'extended';
  /** Extended capability ID, e.g. 0x0003 for the device serial number. */
  readonly id: number;
  /** Capability version in the header (bits 19:16). */
  readonly version: number;
  /** The registers after the 4-byte header. */
  readonly data: Uint8Array;
  /** Per byte of `data`, the bits software may write (default none). */
  readonly writeMask?: Uint8Array;
  /** Offset in config space chosen by the device (default: the next free dword). */
  readonly at?: number;
}

/**
 * Any capability description a DeviceDefinition lists.
 *
 * @category Device-model SDK
 */
export type CapabilityBuilder =
  MsiCapabilitySpec | MsixCapabilitySpec | PcieCapabilitySpec | PmCapabilitySpec | VendorCapabilitySpec | ExtendedCapabilitySpec;

/**
 * MSI; defaults: 1 vector, 64-bit addresses, no per-vector masking (QEMU edu's).
 *
 * @category Device-model SDK
 */
export function msiCapability(o: { vectors?: number; is64bit?: boolean; perVectorMask?: boolean; at?: number } = {}): MsiCapabilitySpec {
  return { capability: 'msi', vectors: o.vectors ?? 1, is64bit: o.is64bit ?? true, perVectorMask: o.perVectorMask ?? false, ...at(o.at) };
}

/**
 * MSI-X with `vectors` table entries, the table and PBA at the given BAR offsets.
 *
 * @category Device-model SDK
 */
export function msixCapability(o: { vectors: number; table: MsixPlacement; pba: MsixPlacement; at?: number }): MsixCapabilitySpec {
  return { capability: 'msix', vectors: o.vectors, table: o.table, pba: o.pba, ...at(o.at) };
}

/**
 * PCI Express; defaults: an integrated endpoint, no FLR, 128-byte payloads, a x1 2.5 GT/s link.
 *
 * @category Device-model SDK
 */
export function pcieCapability(
  o: { type?: PcieDeviceType; flr?: boolean; maxPayload?: number; linkSpeed?: number; linkWidth?: number; at?: number } = {},
): PcieCapabilitySpec {
  return {
    capability: 'pcie',
    type: o.type ?? 'integrated-endpoint',
    flr: o.flr ?? false,
    maxPayload: o.maxPayload ?? 128,
    linkSpeed: o.linkSpeed ?? 1,
    linkWidth: o.linkWidth ?? 1,
    ...at(o.at),
  };
}

/**
 * Power management; default No_Soft_Reset set (no PM reset).
 *
 * @category Device-model SDK
 */
export function pmCapability(o: { noSoftReset?: boolean; at?: number } = {}): PmCapabilitySpec {
  return { capability: 'pm', noSoftReset: o.noSoftReset ?? true, ...at(o.at) };
}

/**
 * A vendor-specific capability holding `data` (read-only unless `writable`).
 *
 * @category Device-model SDK
 */
export function vendorCapability(data: Uint8Array, o: { writable?: boolean; at?: number } = {}): VendorCapabilitySpec {
  return { capability: 'vendor', data: data.slice(), writable: o.writable ?? false, ...at(o.at) };
}

/**
 * A PCI Express extended capability; needs a pcieCapability() too.
 *
 * @category Device-model SDK
 */
export function extendedCapability(o: {
  id: number;
  version?: number;
  data: Uint8Array;
  writeMask?: Uint8Array;
  at?: number;
}): ExtendedCapabilitySpec {
  return {
    capability: 'extended',
    id: o.id,
    version: o.version ?? 1,
    data: o.data.slice(),
    ...(o.writeMask ? { writeMask: o.writeMask.slice() } : {}),
    ...at(o.at),
  };
}

function at(offset: number | undefined): { at?: number } {
  return offset === undefined ? {} : { at: offset };
}
