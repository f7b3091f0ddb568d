/**
 * Typed PCI configuration space of a VFIO device (its config region). vfio-pci virtualises
 * parts of it (BARs, MSI/MSI-X control, some command bits); reads and writes go through the
 * kernel's rules, so a driver sees what the device would accept.
 */
import * as P from '../uapi/pci';
import type { Region } from './region';
import { checkInteger, checkUnsigned } from '../support/arguments';

/**
 * A capability found in the standard list.
 *
 * @category PCI
 */
export interface PciCapability {
  /** PCI_CAP_ID_* (standard) or PCI_EXT_CAP_ID_* (extended). */
  readonly id: number;
  /** Offset of the capability in config space. */
  readonly offset: number;
}

/**
 * A PCIe extended capability (config space from 0x100).
 *
 * @category PCI
 */
export interface ExtendedCapability extends PciCapability {
  /** Capability structure version. */
  readonly version: number;
}

/**
 * The MSI capability, decoded from its message control register.
 *
 * @category PCI
 */
export interface MsiCapability {
  /** Offset of the capability in config space. */
  readonly offset: number;
  /** MSI enable bit (vfio-pci sets it when MSI is enabled through VFIO_DEVICE_SET_IRQS). */
  readonly enabled: boolean;
  /** Vectors the device can request (1..32, a power of two). */
  readonly maxVectors: number;
  /** The device can send 64-bit message addresses. */
  readonly is64Bit: boolean;
  /** The device implements per-vector mask bits. */
  readonly perVectorMasking: boolean;
}

/**
 * The MSI-X capability, decoded.
 *
 * @category PCI
 */
export interface MsixCapability {
  /** Offset of the capability in config space. */
  readonly offset: number;
  /** MSI-X enable bit. */
  readonly enabled: boolean;
  /** Function mask bit: every vector is masked. */
  readonly functionMasked: boolean;
  /** Number of vectors in the table. */
  readonly tableSize: number;
  /** BAR index and offset of the vector table. */
  readonly tableBar: number;
  /** Offset of the vector table in its BAR. */
  readonly tableOffset: number;
  /** BAR index and offset of the pending-bit array. */
  readonly pbaBar: number;
  /** Offset of the pending-bit array in its BAR. */
  readonly pbaOffset: number;
}

/** A standard list is at most 48 entries of 4 bytes after the header; more means a loop. */
const MAX_STANDARD_CAPS = 48;
const MAX_EXTENDED_CAPS = (P.PCI_CFG_SPACE_EXP_SIZE - P.PCI_CFG_SPACE_SIZE) / 8;

/**
 * The PCI configuration space of a VFIO device (`device.config`): raw accessors, the standard
 * header fields, command-register helpers and the capability lists.
 *
 * @category PCI
 */
export class ConfigSpace {
  /** @internal Created by VfioDevice over its config region. */
  constructor(private readonly region: Region) {}

  /** Size of config space as the kernel exposes it (256, or 4096 for PCIe). */
  get size(): bigint {
    return this.region.size;
  }

  /** Reads a byte of config space. */
  read8(offset: number): number {
    return this.region.read8(checkOffset(offset, 'ConfigSpace.read8'));
  }

  /** Reads a 16-bit little-endian word of config space. */
  read16(offset: number): number {
    return this.region.read16(checkOffset(offset, 'ConfigSpace.read16'));
  }

  /** Reads a 32-bit little-endian dword of config space. */
  read32(offset: number): number {
    return this.region.read32(checkOffset(offset, 'ConfigSpace.read32'));
  }

  /** Writes a byte of config space (vfio-pci applies its virtualisation rules). */
  write8(offset: number, value: number): void {
    this.region.write8(checkOffset(offset, 'ConfigSpace.write8'), checkUnsigned(value, 'ConfigSpace.write8', 'value', 8));
  }

  /** Writes a 16-bit word of config space. */
  write16(offset: number, value: number): void {
    this.region.write16(checkOffset(offset, 'ConfigSpace.write16'), checkUnsigned(value, 'ConfigSpace.write16', 'value', 16));
  }

  /** Writes a 32-bit dword of config space. */
  write32(offset: number, value: number): void {
    this.region.write32(checkOffset(offset, 'ConfigSpace.write32'), checkUnsigned(value, 'ConfigSpace.write32', 'value', 32));
  }

  /** PCI vendor ID. */
  get vendorId(): number {
    return this.read16(P.PCI_VENDOR_ID);
  }

  /** PCI device ID. */
  get deviceId(): number {
    return this.read16(P.PCI_DEVICE_ID);
  }

  /** Revision ID. */
  get revision(): number {
    return this.read8(P.PCI_REVISION_ID);
  }

  /** The 24-bit class code: base class, subclass, programming interface. */
  get classCode(): number {
    return this.read32(P.PCI_CLASS_REVISION) >>> 8;
  }

  /** Header layout (0: endpoint, 1: bridge), without the multi-function bit. */
  get headerType(): number {
    return this.read8(P.PCI_HEADER_TYPE) & 0x7f;
  }

  /** Subsystem vendor ID. */
  get subsystemVendorId(): number {
    return this.read16(P.PCI_SUBSYSTEM_VENDOR_ID);
  }

  /** Subsystem ID. */
  get subsystemId(): number {
    return this.read16(P.PCI_SUBSYSTEM_ID);
  }

  /** INTx pin (0: none, 1..4: INTA..INTD). */
  get interruptPin(): number {
    return this.read8(P.PCI_INTERRUPT_PIN);
  }

  /** The command register (PCI_COMMAND_*); assigning writes it. */
  get command(): number {
    return this.read16(P.PCI_COMMAND);
  }

  /** Writes the command register. */
  set command(value: number) {
    this.write16(P.PCI_COMMAND, value);
  }

  /** The status register (PCI_STATUS_*). */
  get status(): number {
    return this.read16(P.PCI_STATUS);
  }

  /** Sets or clears command-register bits (read-modify-write); returns the new value. */
  updateCommand(set: number, clear = 0): number {
    checkUnsigned(set, 'ConfigSpace.updateCommand', 'set', 16);
    checkUnsigned(clear, 'ConfigSpace.updateCommand', 'clear', 16);
    const value = (this.command | set) & ~clear & 0xffff;
    this.command = value;
    return this.command;
  }

  /** Lets the device master the bus (issue DMA and MSI writes). */
  enableBusMaster(): void {
    this.updateCommand(P.PCI_COMMAND_MASTER);
  }

  /** Stops the device from mastering the bus. */
  disableBusMaster(): void {
    this.updateCommand(0, P.PCI_COMMAND_MASTER);
  }

  /** Enables decoding of memory BARs. */
  enableMemory(): void {
    this.updateCommand(P.PCI_COMMAND_MEMORY);
  }

  /** Enables decoding of I/O BARs. */
  enableIo(): void {
    this.updateCommand(P.PCI_COMMAND_IO);
  }

  /** Stops the device asserting INTx (e.g. while it uses MSI). */
  disableIntx(): void {
    this.updateCommand(P.PCI_COMMAND_INTX_DISABLE);
  }

  /** Lets the device assert INTx again. */
  enableIntx(): void {
    this.updateCommand(0, P.PCI_COMMAND_INTX_DISABLE);
  }

  /** The standard capability list, in list order. */
  capabilities(): PciCapability[] {
    const caps: PciCapability[] = [];
    if ((this.status & P.PCI_STATUS_CAP_LIST) === 0) return caps;
    let offset = this.read8(P.PCI_CAPABILITY_LIST) & ~3;
    while (offset >= P.PCI_STD_HEADER_SIZEOF && caps.length < MAX_STANDARD_CAPS) {
      const id = this.read8(offset + P.PCI_CAP_LIST_ID);
      if (id === 0xff) break;
      caps.push({ id, offset });
      offset = this.read8(offset + P.PCI_CAP_LIST_NEXT) & ~3;
    }
    return caps;
  }

  /** The extended capability list (PCIe, config space beyond 256 bytes). */
  extendedCapabilities(): ExtendedCapability[] {
    const caps: ExtendedCapability[] = [];
    if (this.size <= BigInt(P.PCI_CFG_SPACE_SIZE)) return caps;
    let offset = P.PCI_CFG_SPACE_SIZE;
    while (offset >= P.PCI_CFG_SPACE_SIZE && caps.length < MAX_EXTENDED_CAPS) {
      const header = this.read32(offset);
      if (header === 0 || header === 0xffffffff) break;
      caps.push({ id: header & 0xffff, version: (header >>> 16) & 0xf, offset });
      offset = (header >>> 20) & 0xffc;
    }
    return caps;
  }

  /** The first standard capability with this id. */
  findCapability(id: number): PciCapability | undefined {
    return this.capabilities().find((c) => c.id === id);
  }

  /** The first extended capability with this id. */
  findExtendedCapability(id: number): ExtendedCapability | undefined {
    return this.extendedCapabilities().find((c) => c.id === id);
  }

  /** The MSI capability, decoded. */
  msi(): MsiCapability | undefined {
    const cap = this.findCapability(P.PCI_CAP_ID_MSI);
    if (!cap) return undefined;
    const flags = this.read16(cap.offset + P.PCI_MSI_FLAGS);
    return {
      offset: cap.offset,
      enabled: (flags & P.PCI_MSI_FLAGS_ENABLE) !== 0,
      maxVectors: 1 << ((flags & P.PCI_MSI_FLAGS_QMASK) >> 1),
      is64Bit: (flags & P.PCI_MSI_FLAGS_64BIT) !== 0,
      perVectorMasking: (flags & P.PCI_MSI_FLAGS_MASKBIT) !== 0,
    };
  }

  /** The MSI-X capability, decoded. */
  msix(): MsixCapability | undefined {
    const cap = this.findCapability(P.PCI_CAP_ID_MSIX);
    if (!cap) return undefined;
    const flags = this.read16(cap.offset + P.PCI_MSIX_FLAGS);
    const table = this.read32(cap.offset + P.PCI_MSIX_TABLE);
    const pba = this.read32(cap.offset + P.PCI_MSIX_PBA);
    return {
      offset: cap.offset,
      enabled: (flags & P.PCI_MSIX_FLAGS_ENABLE) !== 0,
      functionMasked: (flags & P.PCI_MSIX_FLAGS_MASKALL) !== 0,
      tableSize: (flags & P.PCI_MSIX_FLAGS_QSIZE) + 1,
      tableBar: table & P.PCI_MSIX_TABLE_BIR,
      tableOffset: (table & P.PCI_MSIX_TABLE_OFFSET) >>> 0,
      pbaBar: pba & P.PCI_MSIX_TABLE_BIR,
      pbaOffset: (pba & P.PCI_MSIX_TABLE_OFFSET) >>> 0,
    };
  }
}

/** A config-space offset: an integer inside the 4 KiB of PCIe config space (the region checks its own size). */
function checkOffset(offset: unknown, where: string): number {
  return checkInteger(offset, where, 'offset', 0, 0xfff);
}
