/**
 * The selftest driver for QEMU's edu (hw/misc/edu.c, 1234:11e8), on the edu DMA helper the other
 * edu cases use (../edu-driver.ts). A memcpy is edu's two transfers per piece, RAM → its 4 KiB
 * buffer → RAM, polled on the command register with the completion interrupt off (the ops
 * guarantee no interrupt during a memcpy). A piece is at most 4095 bytes: QEMU 7.2's range check
 * is off by one and a 4096-byte transfer aborts the VM (hw_error); without an IOMMU a piece also
 * stops at a page boundary, where the physical address jumps. send_msi raises an interrupt by
 * hand (register 0x60), which edu delivers as its one MSI.
 *
 * edu cannot tell a blocked transfer: it ignores what pci_dma_read/write answer, so memcpy_wait
 * reports no error for an unmapped IOVA (as the kernel's test allows). The bus address is clamped
 * to edu's dma_mask, which QEMU defaults to 28 bits; the lab passes dma_mask=0xffffffffffffffff,
 * and the matrix keeps its IOVAs below 256 MiB either way.
 */
import { EDU, eduDma } from '../edu-driver';
import { isEdu } from '../environment';
import type { DriverDevice, SelftestDriver, SelftestDriverFactory } from './driver';

/** QEMU's edu DMA timer takes 100 ms of virtual time per transfer: a storm of 8 copies is 1.6 s there. */
const MAX_COUNT = 8;

class EduSelftestDriver implements SelftestDriver {
  readonly maxMemcpySize = EDU.MAX_SAFE_TRANSFER;
  readonly maxMemcpyCount = MAX_COUNT;
  readonly msi = 0;
  readonly reportsDmaErrors = false;
  private pending: Promise<string | null> = Promise.resolve(null);

  constructor(private readonly dev: DriverDevice) {}

  private get bar0() {
    return this.dev.bar(0);
  }

  async init(): Promise<void> {
    const { t } = this.dev;
    const id = t.kernel.mmioRead(this.bar0, EDU.IDENTIFICATION, 32);
    if (id !== EDU.IDENTIFICATION_VALUE) t.fail(`edu: identification register reads 0x${id.toString(16)}, not 0x010000ed`);
    // Bus mastering for the DMA engine and for the MSI write itself.
    this.dev.busMaster(true);
    this.dev.enableIrq('msi', 1, () => true);
    return Promise.resolve();
  }

  async remove(): Promise<void> {
    this.dev.disableIrq('msi');
    this.dev.busMaster(false);
    return Promise.resolve();
  }

  memcpyStart(src: bigint, dst: bigint, size: number, count: number): void {
    this.pending = this.copy(src, dst, size, count).then(
      () => null,
      (e: unknown) => `edu: ${(e as Error).message}`,
    );
  }

  memcpyWait(): Promise<string | null> {
    return this.pending;
  }

  async sendMsi(): Promise<void> {
    const { kernel } = this.dev.t;
    kernel.mmioWrite(this.bar0, EDU.INTERRUPT_RAISE, 32, 0x1);
    // MSI is edge-triggered: the message went out with the raise; clear the status for the next one.
    kernel.mmioWrite(this.bar0, EDU.INTERRUPT_ACK, 32, 0x1);
    return Promise.resolve();
  }

  private async copy(src: bigint, dst: bigint, size: number, count: number): Promise<void> {
    const { kernel } = this.dev.t;
    for (let n = 0; n < count; n++) {
      for (let done = 0; done < size;) {
        const from = this.dev.busAddress(src + BigInt(done));
        const to = this.dev.busAddress(dst + BigInt(done));
        const piece = Number(
          [BigInt(size - done), BigInt(EDU.MAX_SAFE_TRANSFER), from.contiguous, to.contiguous].reduce((a, b) => (a < b ? a : b)),
        );
        // A count of 0 aborts QEMU 7.2 as surely as 4096 does.
        if (piece < 1) throw new RangeError(`a transfer of ${piece} bytes at 0x${from.address.toString(16)}`);
        await eduDma(kernel, this.bar0, { src: from.address, dst: EDU.DEVICE_BUFFER, count: piece, toRam: false });
        await eduDma(kernel, this.bar0, { src: EDU.DEVICE_BUFFER, dst: to.address, count: piece, toRam: true });
        done += piece;
      }
    }
  }
}

export const eduSelftestDriver: SelftestDriverFactory = {
  name: 'edu',
  regionSize: 0n,
  probe: (device) => isEdu(device),
  create: (dev) => new EduSelftestDriver(dev),
};
