/**
 * A userspace driver for the copy engine (copy-engine-model.ts), written against node-vfio's
 * public API only: the same code drives the model in tests and the real hardware in production.
 * It owns a descriptor ring in a DMA buffer, copies by queueing one descriptor and ringing the
 * tail doorbell, and waits for the completion interrupt (MSI-X vector 0 where the device has
 * MSI-X, as this one does; MSI otherwise).
 */
import { DmaBuffer, type InterruptVector, type Mmio, type VfioDevice } from 'node-vfio';
import {
  CONTROL_ENABLE,
  COPY_ENGINE_ID,
  DESCRIPTOR_SIZE,
  DESC_FLAG_IRQ,
  DESC_STATUS_DONE,
  IRQ_DONE,
  IRQ_ERROR,
  REG,
  STATUS_ERROR,
} from './copy-engine-model';

const RING_ENTRIES = 16;

export class CopyEngineDriver {
  private readonly registers: Mmio;
  private readonly ring: DmaBuffer;
  private readonly interrupt: InterruptVector;
  private tail = 0;

  constructor(readonly device: VfioDevice) {
    this.registers = device.bar(0).mmap();
    const id = this.registers.read32(REG.ID);
    if (id !== COPY_ENGINE_ID) throw new Error(`copy-engine: unexpected ID 0x${id.toString(16)}`);
    device.config.enableBusMaster();
    const kind = device.irqs.info('msix').count > 0 ? 'msix' : 'msi';
    const [vector] = device.irqs.enable(kind, 1);
    if (!vector) throw new Error(`copy-engine: ${kind} gave no vector`);
    this.interrupt = vector;
    this.ring = DmaBuffer.allocate(RING_ENTRIES * DESCRIPTOR_SIZE, { space: device.dmaSpace });
    this.ring.bytes.fill(0);
    this.registers.write64(REG.RING_BASE, this.ring.dmaAddress(0));
    this.registers.write32(REG.RING_SIZE, RING_ENTRIES);
    this.registers.write32(REG.CONTROL, CONTROL_ENABLE);
  }

  /** The engine's status register (running, error). */
  status(): number {
    return this.registers.read32(REG.STATUS);
  }

  /** Copies `length` bytes between two DMA addresses and waits for the completion interrupt. */
  async copy(source: bigint, destination: bigint, length: number, timeoutMs = 5_000): Promise<void> {
    const slot = this.tail;
    const d = new DataView(this.ring.bytes.buffer, this.ring.bytes.byteOffset + slot * DESCRIPTOR_SIZE, DESCRIPTOR_SIZE);
    d.setBigUint64(0, source, true);
    d.setBigUint64(8, destination, true);
    d.setUint32(16, length, true);
    d.setUint32(20, DESC_FLAG_IRQ, true);
    d.setUint32(24, 0, true);
    this.tail = (this.tail + 1) % RING_ENTRIES;
    this.registers.write32(REG.TAIL, this.tail);
    await this.waitInterrupt(timeoutMs);
    const status = d.getUint32(24, true);
    if (status !== DESC_STATUS_DONE)
      throw new Error(`copy-engine: descriptor ${slot} finished with status ${status} (engine status 0x${this.status().toString(16)})`);
  }

  close(): void {
    this.registers.write32(REG.CONTROL, 0);
    this.interrupt.close();
    this.ring.close();
    this.registers.close();
  }

  [Symbol.dispose](): void {
    this.close();
  }

  private async waitInterrupt(timeoutMs: number): Promise<void> {
    const abort = new AbortController();
    const timer = setTimeout(() => abort.abort(), timeoutMs);
    try {
      for (;;) {
        const pending = this.registers.read32(REG.IRQ_STATUS);
        if (pending) {
          this.registers.write32(REG.IRQ_STATUS, pending);
          if (pending & IRQ_ERROR || this.status() & STATUS_ERROR) throw new Error('copy-engine: the engine halted on an error');
          if (pending & IRQ_DONE) return;
        }
        await this.interrupt.wait(abort.signal).catch((e: unknown) => {
          if (abort.signal.aborted) throw new Error(`copy-engine: no completion interrupt within ${timeoutMs} ms`);
          throw e;
        });
      }
    } finally {
      clearTimeout(timer);
    }
  }
}
