/**
 * QEMU's edu device (hw/misc/edu.c), as the DMA and MMIO cases drive it: its BAR0 registers and
 * a DMA helper that copies between memory and the device's own 4 KiB buffer.
 */
import type { Kernel, Mapping } from '../sys/kernel';
import { pollUntil } from './drivers/driver';

export const EDU = {
  BAR0_SIZE: 1n << 20n,
  /** Reads 0x010000ed: major 1, minor 0, 0xed. */
  IDENTIFICATION: 0x00,
  IDENTIFICATION_VALUE: 0x0100_00ed,
  /** Reads back the bitwise NOT of what was written. */
  LIVENESS: 0x04,
  FACTORIAL: 0x08,
  STATUS: 0x20,
  INTERRUPT_STATUS: 0x24,
  INTERRUPT_RAISE: 0x60,
  INTERRUPT_ACK: 0x64,
  DMA_SOURCE: 0x80,
  DMA_DESTINATION: 0x88,
  DMA_COUNT: 0x90,
  DMA_COMMAND: 0x98,
  DMA_CMD_START: 0x1,
  /** Direction bit: set = device to RAM, clear = RAM to device. */
  DMA_CMD_TO_RAM: 0x2,
  DMA_CMD_RAISE_IRQ: 0x4,
  /** The device-side address of edu's DMA buffer. */
  DEVICE_BUFFER: 0x40000n,
  DEVICE_BUFFER_SIZE: 4096,
  /**
   * QEMU 7.2 checks the range off by one: a 4096-byte transfer aborts the VM. Stay below it.
   */
  MAX_SAFE_TRANSFER: 4095,
} as const;

export interface EduDma {
  readonly src: bigint;
  readonly dst: bigint;
  readonly count: number;
  readonly toRam: boolean;
}

/** Starts one transfer and waits (polling the command register) until edu clears its busy bit. */
export async function eduDma(kernel: Kernel, bar0: Mapping, dma: EduDma, timeoutMs = 10_000): Promise<void> {
  if (dma.count > EDU.MAX_SAFE_TRANSFER) throw new RangeError(`edu transfers above ${EDU.MAX_SAFE_TRANSFER} bytes crash QEMU 7.2`);
  kernel.mmioWrite(bar0, EDU.DMA_SOURCE, 64, dma.src);
  kernel.mmioWrite(bar0, EDU.DMA_DESTINATION, 64, dma.dst);
  kernel.mmioWrite(bar0, EDU.DMA_COUNT, 64, BigInt(dma.count));
  kernel.mmioWrite(bar0, EDU.DMA_COMMAND, 64, BigInt(EDU.DMA_CMD_START | (dma.toRam ? EDU.DMA_CMD_TO_RAM : 0)));
  await pollUntil(
    () => !(kernel.mmioRead(bar0, EDU.DMA_COMMAND, 64) & BigInt(EDU.DMA_CMD_START)),
    'edu DMA (command register busy)',
    timeoutMs,
  );
}
