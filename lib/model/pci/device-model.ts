/**
 * What a simulated PCI function offers the host: its config space, BARs with exact-width MMIO
 * handlers, interrupt pins and MSI/MSI-X, DMA through a port the host connects, a clock, and its
 * resets. The VFIO model (lib/model/vfio) drives a PciDeviceModel exactly like vfio-pci drives a
 * struct pci_dev, and sysfs (lib/model/fs) publishes its identity. Device models implement it by
 * extending the SDK's DeviceModel (lib/model/device); the host never sees anything else.
 */
import type { PciConfigSpace } from './physical-config-space';
import type { DmaPort } from './dma';
import type { InterruptSink } from './interrupts';
import type { DeviceClock } from '../device/clock';
import type { DeviceEvent } from '../device/events';
import type { AccessWidth } from '../device/definition';

export type { DeviceEvent, DeviceEventKind } from '../device/events';

// One access-width type for both sides of the bus: the SDK's.
export type { AccessWidth };

/**
 * One implemented BAR of a function, as the host sizes and maps it.
 *
 * @category Device-model SDK
 */
export interface PciBarInfo {
  /** The BAR register, 0..5. */
  readonly index: number;
  /** Size in bytes, a power of two. */
  readonly size: bigint;
  /** Memory or I/O space. */
  readonly space: 'memory' | 'io';
  /** A 64-bit memory BAR also occupies the next BAR register. */
  readonly is64bit: boolean;
  /** The prefetchable bit of a memory BAR. */
  readonly prefetchable: boolean;
}

/**
 * What the host connects a function to.
 *
 * @category Device-model SDK
 */
export interface PciHostPort {
  /** Where the function's DMA goes: physical memory, or through the IOMMU. */
  readonly dma: DmaPort;
  /** Where its INTx level changes and MSI/MSI-X messages go. */
  readonly interrupts: InterruptSink;
  /** The machine's clock; a function connected without one keeps its own virtual clock. */
  readonly clock?: DeviceClock;
  /** Whether an IOMMU translates the function's DMA (default false: physical addresses). */
  readonly behindIommu?: boolean;
}

/**
 * The host's view of a simulated PCI function. Implement it by extending DeviceModel, which
 * also enforces the PCI rules (command-register gating, MSI/MSI-X masking, DMA checks).
 *
 * @category Device-model SDK
 */
export interface PciDeviceModel {
  /** Model name, e.g. 'edu'. */
  readonly model: string;
  /** PCI Vendor ID (16 bits). */
  readonly vendorId: number;
  /** PCI Device ID (16 bits). */
  readonly deviceId: number;
  /** Subsystem Vendor ID (16 bits), published in sysfs as subsystem_vendor. */
  readonly subsystemVendorId: number;
  /** Subsystem ID (16 bits), published in sysfs as subsystem_device. */
  readonly subsystemId: number;
  /** 24-bit class code (base class, sub-class, prog-if), e.g. 0x00ff00. */
  readonly classCode: number;
  /** Revision ID (8 bits). */
  readonly revision: number;
  /** The function's physical config space. */
  readonly config: PciConfigSpace;
  /** BAR 0..5; undefined where unimplemented (and for the upper half of a 64-bit BAR). */
  readonly bars: readonly (PciBarInfo | undefined)[];
  /**
   * True when the function can be reset on its own (FLR, PM reset, or a device-specific method);
   * false for QEMU's edu, so pci_try_reset_function fails and VFIO_DEVICE_RESET answers EINVAL.
   */
  readonly supportsFunctionReset: boolean;
  /** Interrupt pin register: 0 none, 1 INTA .. 4 INTD. */
  readonly interruptPin: number;

  /** The bus address BAR `index` decodes (what the host assigned, pci_resource_start); 0 if none. */
  barAddress(index: number): bigint;

  /** Reads a BAR at `offset` with an exact access width. */
  mmioRead(bar: number, offset: bigint, width: AccessWidth): bigint;
  /** Writes `value` to a BAR at `offset` with an exact access width. */
  mmioWrite(bar: number, offset: bigint, width: AccessWidth, value: bigint): void;

  /** Plugs the function into a machine: from now on its DMA and interrupts reach the host. */
  connect(host: PciHostPort): void;
  /** Unplugs it: pending timers are cancelled, DMA and interrupts go nowhere. */
  disconnect(): void;
  /** Function-level reset; only called when `supportsFunctionReset`. */
  functionReset(): void;
  /** A reset of the bus the function sits on (secondary bus reset): every function on it resets. */
  busReset(): void;

  /** For an SR-IOV VF: the address the PF's VF BAR `index` gives this function's BAR. */
  setVirtualFunctionBar?(index: number, address: bigint): void;
  /** An SR-IOV PF's virtual function `index`, created when VFs are enabled (undefined: none). */
  createVirtualFunction?(index: number): PciDeviceModel | undefined;

  /** Everything noteworthy the device did, oldest first. */
  readonly events: readonly DeviceEvent[];
  /** Subscribes to new events; returns an unsubscribe. */
  onEvent(listener: (e: DeviceEvent) => void): () => void;
}
