/**
 * A selftest driver for the copy engine (copy-engine-model.ts): how the author of a device model
 * written on the SDK lets `vfio selftest` run the kernel's driver matrix (vfio_pci_driver_test) on
 * their device in every IOMMU mode — on the model in CI, and on the hardware with
 * `vfio selftest <bdf> --driver dist/examples/dma-copy/copy-engine-selftest-driver.js`. The module
 * exports `selftestDriver`; `registerSelftestDriver` takes the same object in-process.
 *
 * memcpy_start queues one descriptor per piece of each copy (a piece ends where the bus address
 * stops being contiguous: at a page boundary without an IOMMU) without the interrupt flag and
 * refills the ring as the engine's HEAD moves on; memcpy_wait waits until COMPLETED has counted
 * them all and reports a halted engine. send_msi copies one byte of the driver's scratch page
 * with the interrupt flag set, which the engine signals on MSI-X vector 0.
 */
import { pollUntil, type DriverDevice, type SelftestDriver, type SelftestDriverFactory } from 'node-vfio/selftest';
import {
  CONTROL_ENABLE,
  COPY_ENGINE_DEVICE_ID,
  COPY_ENGINE_ID,
  COPY_ENGINE_VENDOR_ID,
  DESCRIPTOR_SIZE,
  DESC_FLAG_IRQ,
  IRQ_DONE,
  REG,
  STATUS_ERROR,
} from './copy-engine-model';

const PAGE = 4096;
const RING = 64;
/** Page 0: the ring; page 1: send_msi's scratch bytes. */
const SCRATCH = PAGE;

class CopyEngineSelftestDriver implements SelftestDriver {
  readonly maxMemcpySize = 16 * 1024;
  readonly maxMemcpyCount = 256;
  readonly msi = 0;
  /** The engine completes a descriptor whose transfer faulted like any other: it cannot tell. */
  readonly reportsDmaErrors = false;
  private tail = 0;
  /** COMPLETED as the driver expects it once everything queued is done. */
  private queued = 0;
  private pending: Promise<string | null> = Promise.resolve(null);
  private readonly ring: DataView;

  constructor(private readonly dev: DriverDevice) {
    const { bytes } = dev.region;
    this.ring = new DataView(bytes.buffer, bytes.byteOffset, RING * DESCRIPTOR_SIZE);
  }

  private read32(offset: number): number {
    return this.dev.t.kernel.mmioRead(this.dev.bar(0), offset, 32);
  }

  private write32(offset: number, value: number): void {
    this.dev.t.kernel.mmioWrite(this.dev.bar(0), offset, 32, value >>> 0);
  }

  init(): Promise<void> {
    const id = this.read32(REG.ID);
    if (id !== COPY_ENGINE_ID) return Promise.reject(new Error(`copy-engine: ID register reads 0x${id.toString(16)}`));
    this.dev.busMaster(true);
    this.dev.enableIrq('msix', 1, () => true);
    this.dev.region.bytes.fill(0, 0, RING * DESCRIPTOR_SIZE);
    const base = this.dev.busAddress(this.dev.region.iova).address;
    this.write32(REG.RING_BASE, Number(base & 0xffff_ffffn));
    this.write32(REG.RING_BASE_HI, Number(base >> 32n));
    this.write32(REG.RING_SIZE, RING);
    // Enabling starts the engine at HEAD 0 with COMPLETED 0.
    this.write32(REG.CONTROL, CONTROL_ENABLE);
    this.tail = this.queued = 0;
    return Promise.resolve();
  }

  remove(): Promise<void> {
    this.write32(REG.CONTROL, 0);
    this.dev.disableIrq('msix');
    this.dev.busMaster(false);
    return Promise.resolve();
  }

  /** Queues one descriptor, first waiting for a free ring entry. */
  private async queue(source: bigint, destination: bigint, length: number, flags: number): Promise<void> {
    await pollUntil(() => (this.tail + 1) % RING !== this.read32(REG.HEAD), 'copy-engine: a free ring entry');
    const at = this.tail * DESCRIPTOR_SIZE;
    this.ring.setBigUint64(at, source, true);
    this.ring.setBigUint64(at + 8, destination, true);
    this.ring.setUint32(at + 16, length, true);
    this.ring.setUint32(at + 20, flags, true);
    this.ring.setUint32(at + 24, 0, true);
    this.tail = (this.tail + 1) % RING;
    this.queued = (this.queued + 1) >>> 0;
    this.write32(REG.TAIL, this.tail);
  }

  private async copy(src: bigint, dst: bigint, size: number, count: number): Promise<string | null> {
    for (let n = 0; n < count; n++) {
      for (let done = 0; done < size;) {
        const from = this.dev.busAddress(src + BigInt(done));
        const to = this.dev.busAddress(dst + BigInt(done));
        const piece = Number([BigInt(size - done), from.contiguous, to.contiguous].reduce((a, b) => (a < b ? a : b)));
        await this.queue(from.address, to.address, piece, 0);
        done += piece;
      }
    }
    await this.drain();
    return this.read32(REG.STATUS) & STATUS_ERROR ? 'copy-engine: the engine halted on an error' : null;
  }

  private drain(): Promise<void> {
    return pollUntil(
      () => this.read32(REG.COMPLETED) === this.queued || (this.read32(REG.STATUS) & STATUS_ERROR) !== 0,
      'copy-engine: every queued descriptor completed',
    );
  }

  memcpyStart(src: bigint, dst: bigint, size: number, count: number): void {
    this.pending = this.copy(src, dst, size, count).catch((e: unknown) => `copy-engine: ${(e as Error).message}`);
  }

  memcpyWait(): Promise<string | null> {
    return this.pending;
  }

  async sendMsi(): Promise<void> {
    const scratch = this.dev.region.iova + BigInt(SCRATCH);
    const from = this.dev.busAddress(scratch).address;
    const to = this.dev.busAddress(scratch + 64n).address;
    await this.queue(from, to, 1, DESC_FLAG_IRQ);
    await this.drain();
    this.write32(REG.IRQ_STATUS, IRQ_DONE);
  }
}

/** What `vfio selftest --driver` looks for in the module. */
export const selftestDriver: SelftestDriverFactory = {
  name: 'copy-engine',
  regionSize: BigInt(2 * PAGE),
  probe: (device) => device.vendorId === COPY_ENGINE_VENDOR_ID && device.deviceId === COPY_ENGINE_DEVICE_ID,
  create: (dev) => new CopyEngineSelftestDriver(dev),
};
