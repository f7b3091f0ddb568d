/**
 * A userspace driver for QEMU's `edu` educational PCI device (vendor 0x1234, device 0x11e8),
 * written against node-vfio's public API only. It runs unchanged on a real kernel (noiommu or
 * IOMMU) and on the built-in model.
 *
 * The device: BAR0 is 1 MiB of registers; a 4 KiB on-device buffer at device address 0x40000; a
 * DMA engine that copies between that buffer and host memory given a DMA address (a physical
 * address without an IOMMU, an IOVA with one); a factorial unit; and one MSI vector.
 */
import type { DmaBuffer, InterruptVector, Mmio, VfioDevice } from '../../lib';

export const EDU_VENDOR_ID = 0x1234;
export const EDU_DEVICE_ID = 0x11e8;

const REG = {
  identification: 0x00,
  liveness: 0x04,
  factorial: 0x08,
  status: 0x20,
  interruptStatus: 0x24,
  interruptAck: 0x64,
  dmaSource: 0x80,
  dmaDestination: 0x88,
  dmaCount: 0x90,
  dmaCommand: 0x98,
} as const;
const STATUS_COMPUTING = 0x01;
const STATUS_IRQ_AFTER_FACTORIAL = 0x80;
const DMA_START = 0x1;
const DMA_TO_RAM = 0x2;
const DMA_IRQ = 0x4;
/** The interrupt status bits edu raises: 0x1 after a factorial, 0x100 after a DMA. */
const IRQ_FACTORIAL = 0x1;
const IRQ_DMA = 0x100;

/** Where the device's own buffer starts, in the device's address space. */
export const EDU_BUFFER_ADDRESS = 0x40000n;
/**
 * The largest transfer this driver issues. The buffer is 4096 bytes, but QEMU 7.2's range check
 * is off by one and a transfer of the full 4096 bytes aborts the whole VM, so stay one short.
 */
export const EDU_MAX_TRANSFER = 4095;

export class EduDevice {
  private readonly registers: Mmio;
  private readonly interrupt: InterruptVector;

  constructor(readonly device: VfioDevice) {
    const bar0 = device.bar(0);
    this.registers = bar0.mmap();
    // Bus mastering lets the device issue DMA; without it the DMA engine's reads and writes go nowhere.
    device.config.enableBusMaster();
    const [vector] = device.irqs.enable('msi', 1);
    if (!vector) throw new Error('edu: MSI gave no vector');
    this.interrupt = vector;
  }

  /** 0x010000ed on QEMU's edu: major 1, minor 0, and the 0xed signature. */
  identification(): number {
    return this.registers.read32(REG.identification);
  }

  /** The device answers with the bitwise NOT of what was written: a check that it is alive. */
  liveness(value: number): number {
    this.registers.write32(REG.liveness, value >>> 0);
    return this.registers.read32(REG.liveness);
  }

  /** Asks the device for n! (mod 2^32) and waits for its completion interrupt. */
  async factorial(n: number, timeoutMs = 10_000): Promise<number> {
    this.registers.write32(REG.status, STATUS_IRQ_AFTER_FACTORIAL);
    this.registers.write32(REG.factorial, n >>> 0);
    await this.waitInterrupt(IRQ_FACTORIAL, timeoutMs);
    if (this.registers.read32(REG.status) & STATUS_COMPUTING) throw new Error('edu: factorial interrupt arrived while still computing');
    return this.registers.read32(REG.factorial);
  }

  /** Copies `length` bytes from host memory at `source` (a DMA address) into the device buffer. */
  async dmaToDevice(source: bigint, deviceOffset: number, length: number, timeoutMs = 10_000): Promise<void> {
    await this.dma(source, EDU_BUFFER_ADDRESS + BigInt(deviceOffset), length, 0, timeoutMs);
  }

  /** Copies `length` bytes from the device buffer into host memory at `destination`. */
  async dmaToHost(deviceOffset: number, destination: bigint, length: number, timeoutMs = 10_000): Promise<void> {
    await this.dma(EDU_BUFFER_ADDRESS + BigInt(deviceOffset), destination, length, DMA_TO_RAM, timeoutMs);
  }

  /** The DMA address of `offset` in `buffer` as this device must be given it. */
  static dmaAddressOf(buffer: DmaBuffer, offset = 0): bigint {
    return buffer.dmaAddress(offset);
  }

  close(): void {
    this.interrupt.close();
    this.registers.close();
  }

  [Symbol.dispose](): void {
    this.close();
  }

  private async dma(source: bigint, destination: bigint, length: number, direction: number, timeoutMs: number): Promise<void> {
    if (!Number.isInteger(length) || length <= 0 || length > EDU_MAX_TRANSFER) {
      throw new RangeError(`edu: a DMA transfer is 1..${EDU_MAX_TRANSFER} bytes, got ${length}`);
    }
    if (this.registers.read32(REG.dmaCommand) & DMA_START) throw new Error('edu: the DMA engine is busy');
    this.registers.write64(REG.dmaSource, source);
    this.registers.write64(REG.dmaDestination, destination);
    this.registers.write64(REG.dmaCount, BigInt(length));
    this.registers.write32(REG.dmaCommand, DMA_START | direction | DMA_IRQ);
    await this.waitInterrupt(IRQ_DMA, timeoutMs);
    if (this.registers.read32(REG.dmaCommand) & DMA_START)
      throw new Error('edu: DMA interrupt arrived while the transfer was still running');
  }

  /** Waits for the MSI, then checks and acknowledges the expected interrupt cause. */
  private async waitInterrupt(cause: number, timeoutMs: number): Promise<void> {
    const abort = new AbortController();
    const timer = setTimeout(() => abort.abort(), timeoutMs);
    try {
      for (;;) {
        const pending = this.registers.read32(REG.interruptStatus);
        if (pending & cause) {
          this.registers.write32(REG.interruptAck, pending & cause);
          return;
        }
        try {
          await this.interrupt.wait(abort.signal);
        } catch (e) {
          if (abort.signal.aborted)
            throw new Error(
              `edu: no interrupt 0x${cause.toString(16)} within ${timeoutMs} ms (interrupt status 0x${this.registers.read32(REG.interruptStatus).toString(16)})`,
            );
          throw e;
        }
      }
    } finally {
      clearTimeout(timer);
    }
  }
}
