/**
 * How a device model describes itself: its identity (the IDs and class of the config header), its
 * BARs, its capabilities (from the builders in capabilities.ts), its INTx pin and DMA reach.
 * DeviceModel checks a definition when it is constructed and turns it into the function's
 * physical config space, which vfio-pci then virtualises exactly as it does a real device's.
 */
import type { CapabilityBuilder } from './capabilities';

/**
 * Access width in bits.
 *
 * @category Device-model SDK
 */
export type AccessWidth = 8 | 16 | 32 | 64;

/**
 * The IDs and class a device reports in its config header, as `lspci -nn` shows them.
 *
 * @category Device-model SDK
 */
export interface DeviceIdentity {
  /** PCI Vendor ID (16 bits), e.g. 0x1234 for QEMU's devices. */
  readonly vendorId: number;
  /** PCI Device ID (16 bits); with the vendor ID what drivers match on. */
  readonly deviceId: number;
  /** Default: vendorId. */
  readonly subsystemVendorId?: number;
  /** Default: deviceId. */
  readonly subsystemId?: number;
  /** 24-bit class code (base class, sub-class, prog-if), e.g. 0x010802 for an NVMe controller. */
  readonly classCode: number;
  /** Default 0. */
  readonly revision?: number;
}

/**
 * What a BAR decodes: 32- or 64-bit memory space, or I/O ports.
 *
 * @category Device-model SDK
 */
export type BarType = 'memory32' | 'memory64' | 'io';

/**
 * One BAR of a device model: its register, size, kind and contents.
 *
 * @category Device-model SDK
 */
export interface BarDeclaration {
  /** BAR register 0..5; a 64-bit BAR also takes the next register. */
  readonly index: number;
  /** Size in bytes: a power of two, at least 16 for memory and 4 for I/O (at most 256). */
  readonly size: bigint;
  /** Memory (32/64-bit) or I/O. */
  readonly type: BarType;
  /** Memory BARs only. Default false. */
  readonly prefetchable?: boolean;
  /**
   * The bus address the BAR decodes, as firmware assigned it (aligned to the size). Default: the
   * machine's firmware assigns one when the device is placed.
   */
  readonly address?: bigint;
  /**
   * True for a BAR that is plain memory (device RAM, a frame buffer): every width reads and
   * writes the bytes, little endian. Otherwise the device installs an MMIO handler with
   * `DeviceModel.handleMmio`.
   */
  readonly ram?: boolean;
}

/**
 * Register accesses to a BAR. Offsets are from the start of the BAR; values are the low `width`
 * bits (a read's result is masked to the width). Accesses the handler does not accept (see
 * `widths`, `unaligned`) never reach it: they are guest errors in the event log and read as
 * `invalidRead` (QEMU: a decode error reads 0) and write nothing.
 *
 * @category Device-model SDK
 */
export interface MmioHandler {
  /** A load of `width` bits at `offset`; the result is masked to the width. */
  read(offset: number, width: AccessWidth): bigint;
  /** A store of `value` (`width` bits) at `offset`. */
  write(offset: number, width: AccessWidth, value: bigint): void;
  /** Widths the region decodes. Default: all of 8, 16, 32, 64. */
  readonly widths?: readonly AccessWidth[];
  /** Whether accesses that are not naturally aligned are decoded. Default false. */
  readonly unaligned?: boolean;
  /** What an access the region does not decode reads as. Default 'zeros'. */
  readonly invalidRead?: 'zeros' | 'ones';
}

/**
 * The legacy interrupt pin the device reports (PCI_INTERRUPT_PIN), or 'none' for no INTx.
 *
 * @category Device-model SDK
 */
export type InterruptPin = 'INTA' | 'INTB' | 'INTC' | 'INTD' | 'none';

/**
 * Everything a DeviceModel subclass declares about itself, passed to its constructor.
 *
 * @category Device-model SDK
 */
export interface DeviceDefinition {
  /** The model's name, used in messages and the event log, e.g. 'copy-engine'. */
  readonly model: string;
  /** The IDs and class code of the config header. */
  readonly identity: DeviceIdentity;
  /** Default 'INTA'. */
  readonly interruptPin?: InterruptPin;
  /** The device's BARs; default none. */
  readonly bars?: readonly BarDeclaration[];
  /** Standard and extended capabilities, in list order. */
  readonly capabilities?: readonly CapabilityBuilder[];
  /**
   * The addresses the device can generate on the bus (its DMA mask). DMA beyond it is a guest
   * error; the device drops the address bits it does not have. Default: 64 bits.
   */
  readonly dmaMask?: bigint;
  /**
   * The function is an SR-IOV VF (returned by a PF's createVirtualFunction): as the PCIe spec
   * wants, its Vendor and Device ID registers read 0xffff (the host takes the IDs from `identity`,
   * as Linux takes them from the PF) and its BAR registers read 0 — the PF's VF BARs place it, and
   * the host tells the model where (setVirtualFunctionBar).
   */
  readonly virtualFunction?: boolean;
}
