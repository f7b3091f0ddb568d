/**
 * QEMU's edu device (hw/misc/edu.c, PCI 1234:11e8) as the API tests drive it: register offsets
 * of BAR0 and a few helpers. Described here from the device's documented behaviour. The lab and
 * the model both give edu a 64-bit DMA mask (QEMU's default is 28 bits), so any buffer works.
 */
import type { Mmio } from '../../../lib/vfio/mmio';
import type { InterruptVector } from '../../../lib/vfio/irq';

export const EDU_VENDOR = 0x1234;
export const EDU_DEVICE = 0x11e8;
export const EDU = {
  /** Identification: 0x010000ed (major 1, minor 0, 0xed). */
  ID: 0x00,
  /** Liveness check: reads back the bitwise inverse of what was written. */
  LIVENESS: 0x04,
  FACTORIAL: 0x08,
  STATUS: 0x20,
  IRQ_STATUS: 0x24,
  IRQ_RAISE: 0x60,
  IRQ_ACK: 0x64,
  DMA_SRC: 0x80,
  DMA_DST: 0x88,
  DMA_COUNT: 0x90,
  DMA_CMD: 0x98,
  /** The device's internal DMA buffer, as a DMA source/destination address (not through BAR0). */
  BUFFER: 0x40000n,
} as const;
export const EDU_ID = 0x010000ed;
export const DMA_START = 1n;
/** 0: RAM → edu buffer, set: edu buffer → RAM. */
export const DMA_TO_RAM = 2n;
export const DMA_IRQ = 4n;

/** Runs one DMA transfer and waits for its completion interrupt. */
export async function eduDma(bar: Mmio, vector: InterruptVector, from: bigint, to: bigint, count: bigint, toRam: boolean): Promise<void> {
  bar.write64(EDU.DMA_SRC, from);
  bar.write64(EDU.DMA_DST, to);
  bar.write64(EDU.DMA_COUNT, count);
  bar.write64(EDU.DMA_CMD, DMA_START | DMA_IRQ | (toRam ? DMA_TO_RAM : 0n));
  await withTimeout(vector.wait(), 5000, 'edu DMA completion interrupt');
  bar.write32(EDU.IRQ_ACK, bar.read32(EDU.IRQ_STATUS));
}

export async function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  try {
    return await Promise.race([p, timeout]);
  } finally {
    clearTimeout(timer);
  }
}
