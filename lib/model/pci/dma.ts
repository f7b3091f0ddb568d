/**
 * How a simulated device reaches memory: the host hands each function a DmaPort. On a noiommu host
 * the port resolves bus addresses as physical addresses of the model's memory; behind an IOMMU it
 * translates IOVAs through the attached iommufd domain. A transaction the port cannot complete
 * (no live memory there, no mapping for the IOVA, a write to a read-only mapping) raises a
 * DmaFault; the device model decides what the hardware does about it (QEMU: reads return zeros,
 * writes are dropped) and records the fault where tests can see it.
 */

/**
 * Why a device DMA did not complete.
 *
 * @category Device-model SDK
 */
export type DmaFaultReason =
  /** No memory backs this physical address (noiommu), or nothing is there at all. */
  | 'no-memory'
  /** The IOMMU has no translation for this IOVA (a DMAR fault on real hardware). */
  | 'unmapped-iova'
  /** The IOMMU translation does not permit this direction. */
  | 'permission'
  /** The device is not attached to any domain: the IOMMU blocks all its DMA. */
  | 'blocked';

/**
 * A device DMA that did not complete, thrown by a DmaPort; DeviceDma turns it into the
 * hardware's behaviour and an event.
 *
 * @category Device-model SDK
 */
export class DmaFault extends Error {
  constructor(
    /** Why it did not complete. */
    readonly reason: DmaFaultReason,
    /** The bus address (physical or IOVA) of the transaction. */
    readonly address: bigint,
    /** Bytes the transaction covered. */
    readonly length: number,
    /** Device read (from memory) or write (to memory). */
    readonly direction: 'read' | 'write',
    detail?: string,
  ) {
    super(`DMA ${direction} of ${length} bytes at 0x${address.toString(16)} faulted: ${reason}${detail ? ` (${detail})` : ''}`);
    this.name = 'DmaFault';
  }
}

/**
 * The path from a function to memory that the host connects (see PciHostPort).
 *
 * @category Device-model SDK
 */
export interface DmaPort {
  /** Reads `length` bytes at bus address `address` (device reads host memory). */
  read(address: bigint, length: number): Uint8Array;
  /** Writes `data` at bus address `address` (device writes host memory). */
  write(address: bigint, data: Uint8Array): void;
}

/**
 * A port for a function nobody has connected: every access faults.
 *
 * @category Device-model SDK
 */
export const DISCONNECTED_DMA: DmaPort = {
  read(address, length) {
    throw new DmaFault('blocked', address, length, 'read', 'device not connected to a host');
  },
  write(address, data) {
    throw new DmaFault('blocked', address, data.length, 'write', 'device not connected to a host');
  },
};
