/**
 * DMA as a device model issues it: reads and writes at bus addresses through the path the host
 * gave the function (the IOMMU's translation of the attached domain, or physical memory on a
 * noiommu host), the same path the built-in devices use. What a real function would do is kept:
 *   - without bus mastering nothing leaves the function: reads return zeros, writes vanish
 *     ('dma-blocked');
 *   - address bits beyond the device's DMA mask do not exist on its bus interface: they are
 *     dropped, and the log says so ('guest-error': the driver programmed an address the device
 *     cannot reach);
 *   - a transaction the host refuses (an IOVA with no mapping, a read-only mapping written, no
 *     domain attached, or no memory at a physical address) is a 'dma-fault' with the reason, and
 *     reads as zeros as QEMU's pci_dma_read does; on a noiommu host the event says that nothing
 *     would have stopped the real device.
 */
import { PCI_COMMAND, PCI_COMMAND_MASTER } from '../../uapi/pci';
import { DISCONNECTED_DMA, DmaFault, type DmaPort } from '../pci/dma';
import type { DeviceEvent } from './events';

/**
 * What the DMA engine needs from its function.
 *
 * @category Device-model SDK
 */
export interface DmaOwner {
  /** The function's config space bytes: bus mastering is bit 2 of the command register. */
  readonly configBytes: Uint8Array;
  /** Logs a DMA event (blocked, faulted) in the function's event log. */
  record(event: DeviceEvent): void;
}

/**
 * A device model's DMA engine (`this.dma` in a DeviceModel): reads and writes host memory
 * through the port the host connected, honouring bus mastering and the device's DMA mask, and
 * turning faults into the hardware's behaviour (reads zeros, writes dropped) plus an event.
 *
 * @example
 * ```ts
 * const bytes = this.dma.read(this.srcAddress, length); // zeros and a 'dma-fault' event if refused
 * this.dma.write(this.dstAddress, bytes);
 * ```
 *
 * @category Device-model SDK
 */
export class DeviceDma {
  /** A 64-bit mask reaches every address: no check on the hot path. */
  private readonly everyAddress: boolean;
  private port: DmaPort = DISCONNECTED_DMA;
  private behindIommu = false;

  constructor(
    private readonly owner: DmaOwner,
    /** The DMA mask: address bits the device drives; higher bits are dropped (a guest error). */
    readonly mask: bigint,
  ) {
    this.everyAddress = mask === (1n << 64n) - 1n;
  }

  /** The host connects the function's DMA path (or takes it away with DISCONNECTED_DMA). */
  attach(port: DmaPort, behindIommu: boolean): void {
    this.port = port;
    this.behindIommu = behindIommu;
  }

  private get busMasterEnabled(): boolean {
    return (this.owner.configBytes[PCI_COMMAND]! & PCI_COMMAND_MASTER) !== 0;
  }

  /** Reads `length` bytes at bus address `address` (the device reads host memory). */
  read(address: bigint, length: number): Uint8Array {
    if (!this.busMasterEnabled) {
      this.owner.record({
        kind: 'dma-blocked',
        message: `DMA read of ${length} bytes at 0x${address.toString(16)} with bus mastering disabled`,
      });
      return new Uint8Array(length);
    }
    const at = this.reachable(address, length, 'read');
    try {
      return this.port.read(at, length);
    } catch (e) {
      if (!(e instanceof DmaFault)) throw e;
      this.fault(e);
      return new Uint8Array(length);
    }
  }

  /** Writes `data` at bus address `address` (the device writes host memory). */
  write(address: bigint, data: Uint8Array): void {
    if (!this.busMasterEnabled) {
      this.owner.record({
        kind: 'dma-blocked',
        message: `DMA write of ${data.length} bytes at 0x${address.toString(16)} with bus mastering disabled`,
      });
      return;
    }
    const at = this.reachable(address, data.length, 'write');
    try {
      this.port.write(at, data);
    } catch (e) {
      if (!(e instanceof DmaFault)) throw e;
      this.fault(e);
    }
  }

  private reachable(address: bigint, length: number, direction: 'read' | 'write'): bigint {
    if (this.everyAddress) return address;
    const last = address + BigInt(length > 0 ? length - 1 : 0);
    if ((last & this.mask) === last && address >= 0n) return address;
    const dropped = address & this.mask;
    this.owner.record({
      kind: 'guest-error',
      message:
        `DMA ${direction} of ${length} bytes at 0x${address.toString(16)} is beyond the device's DMA mask 0x${this.mask.toString(16)}; ` +
        `the device drops the missing address bits and reaches 0x${dropped.toString(16)}`,
    });
    return dropped;
  }

  private fault(e: DmaFault): void {
    const unchecked = !this.behindIommu && e.reason === 'no-memory';
    const message = unchecked
      ? `${e.message}: no process memory is mapped at that physical address; on a noiommu host nothing checks device DMA, ` +
        `so real hardware would have ${e.direction === 'read' ? 'read' : 'overwritten'} whatever lies there`
      : e.message;
    this.owner.record({ kind: 'dma-fault', message, fault: e });
  }
}
