/**
 * What a simulated PCI function offers the host: its config space, BARs with exact-width MMIO
 * handlers, interrupt pins and MSI, DMA through a port the host connects, and whether it can be
 * reset on its own. The VFIO model (lib/model/vfio) drives a PciDeviceModel exactly like
 * vfio-pci drives a struct pci_dev, and sysfs (lib/model/fs) publishes its identity.
 */
import type { PciConfigSpace } from './physical-config-space';
import type { DmaFault, DmaPort } from './dma';
import type { InterruptSink } from './interrupts';

/** Access width in bits, as the Kernel interface names it. */
export type AccessWidth = 8 | 16 | 32 | 64;

export interface PciBarInfo {
  readonly index: number;
  /** Size in bytes, a power of two. */
  readonly size: bigint;
  readonly space: 'memory' | 'io';
  /** A 64-bit memory BAR also occupies the next BAR register. */
  readonly is64bit: boolean;
  readonly prefetchable: boolean;
}

/** What the host connects a function to. */
export interface PciHostPort {
  readonly dma: DmaPort;
  readonly interrupts: InterruptSink;
}

export type DeviceEventKind =
  /** A DMA transaction the host's memory or IOMMU refused (see `fault`). */
  | 'dma-fault'
  /** DMA attempted while bus mastering is disabled: the transaction never leaves the function. */
  | 'dma-blocked'
  /** The emulated hardware stopped working (QEMU aborts the VM here; the model marks the device dead). */
  | 'hardware-error'
  /** The device ignored a guest mistake QEMU logs as LOG_GUEST_ERROR (e.g. DMA address clamped). */
  | 'guest-error';

export interface DeviceEvent {
  readonly kind: DeviceEventKind;
  readonly message: string;
  readonly fault?: DmaFault;
}

export interface PciDeviceModel {
  /** Model name, e.g. 'edu'. */
  readonly model: string;
  readonly vendorId: number;
  readonly deviceId: number;
  readonly subsystemVendorId: number;
  readonly subsystemId: number;
  /** 24-bit class code (base class, sub-class, prog-if), e.g. 0x00ff00. */
  readonly classCode: number;
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
  mmioWrite(bar: number, offset: bigint, width: AccessWidth, value: bigint): void;

  connect(host: PciHostPort): void;
  disconnect(): void;
  /** Function-level reset; only called when `supportsFunctionReset`. */
  functionReset(): void;

  /** Everything noteworthy the device did, oldest first. */
  readonly events: readonly DeviceEvent[];
  /** Subscribes to new events; returns an unsubscribe. */
  onEvent(listener: (e: DeviceEvent) => void): () => void;
}
