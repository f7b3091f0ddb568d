/**
 * The selftest driver abstraction, after the kernel selftests' vfio_pci_driver
 * (tools/testing/selftests/vfio/lib/include/libvfio/vfio_pci_driver.h): a small driver per device
 * type that can initialise the device, copy memory with its DMA engine (memcpy_start kicks off
 * `count` copies and returns, memcpy_wait waits for them and says whether the device reported an
 * error), make the device send one MSI, and remove itself again. The driver matrix
 * (cases/driver-cases.ts) runs the same cases over every driver in every IOMMU mode.
 *
 * A driver sees the device through a DriverDevice: its fd, its BARs, its interrupts, a DMA region
 * of its own (queues, descriptors) and the bus address of any IOVA the test hands it — the IOVA
 * itself behind an IOMMU, the physical address without one.
 */
import type { Mapping } from '../../sys/kernel';
import type { CaseContext } from '../context';
import type { DeviceUnderTest } from '../environment';

/**
 * Memory the driver may use for itself (queues, descriptors), mapped for the device.
 *
 * @category Conformance suite
 */
export interface DriverRegion {
  /** The memory, as the CPU sees it. */
  readonly bytes: Uint8Array;
  /** Where the test mapped it (an IOVA; in the noiommu modes a token the bus address is looked up by). */
  readonly iova: bigint;
  /** The region's length in bytes. */
  readonly size: bigint;
}

/**
 * The interrupt kinds a selftest driver signals with (the kernel's library supports these two).
 *
 * @category Conformance suite
 */
export type MsiKind = 'msi' | 'msix';

/**
 * Where the device reaches an IOVA: the address to program and how many bytes run on contiguously from it.
 *
 * @category Conformance suite
 */
export interface BusRun {
  /** The bus address to program into the device for the IOVA. */
  readonly address: bigint;
  /** How many bytes from that address are contiguous on the bus. */
  readonly contiguous: bigint;
}

/**
 * What a driver works with: the device in one IOMMU mode, as vfio_pci_device is to the kernel's drivers.
 *
 * @category Conformance suite
 */
export interface DriverDevice {
  /** The running case's context: the driver fails the case and opens fds through it. */
  readonly t: CaseContext;
  /** The device being driven. */
  readonly device: DeviceUnderTest;
  /** The device's open VFIO fd. */
  readonly deviceFd: number;
  /** The driver's DMA region (of the size its factory asked for). */
  readonly region: DriverRegion;
  /** BAR `index`, mmap'ed once and unmapped at teardown. */
  bar(index: number): Mapping;
  /** Reads `width` bytes of PCI config space at `offset` through the device fd. */
  configRead(offset: number, width: 1 | 2 | 4): number;
  /** Writes `width` bytes of PCI config space at `offset` through the device fd. */
  configWrite(offset: number, width: 1 | 2 | 4, value: number): void;
  /** Turns bus mastering (and memory decoding) on, or restores the command register as it was before. */
  busMaster(on: boolean): void;
  /** The bus address of `iova` (an IOVA the test mapped, or one it did not: the IOVA itself behind an IOMMU). */
  busAddress(iova: bigint): BusRun;
  /**
   * Enables `count` vectors of MSI or MSI-X through SET_IRQS, each vector for which
   * `wanted(vector)` holds with an eventfd of its own, the others with none (-1).
   */
  enableIrq(kind: MsiKind, count: number, wanted: (vector: number) => boolean): void;
  /** Disables the kind and closes its eventfds. */
  disableIrq(kind: MsiKind): void;
  /** The eventfd of a vector enabled with one; the test reads `msi`'s. */
  eventfdOf(vector: number): number;
}

/**
 * One driver bound to one device; the matrix holds it to the guarantees of vfio_pci_driver_ops.
 *
 * @category Conformance suite
 */
export interface SelftestDriver {
  /** The largest `size` memcpyStart takes. */
  readonly maxMemcpySize: number;
  /** The largest `count` memcpyStart takes. */
  readonly maxMemcpyCount: number;
  /** The vector sendMsi signals. */
  readonly msi: number;
  /**
   * Whether a transfer the IOMMU blocks shows as an error in memcpyWait. edu's DMA engine has no
   * error status (QEMU's edu ignores the result of pci_dma_read/write), and QEMU's NVMe bounces
   * unbacked data and completes the command successfully; a device that does report it (a
   * model's, or real hardware's) says true, and the matrix then requires the error.
   */
  readonly reportsDmaErrors: boolean;
  /** Initialises the device so that it can copy memory and send its MSI (vfio_pci_driver_ops.init). */
  init(): Promise<void>;
  /** Stops the device and releases what init set up (vfio_pci_driver_ops.remove). */
  remove(): Promise<void>;
  /** Starts `count` copies of [src, src + size) to [dst, dst + size), without interrupts, and returns. */
  memcpyStart(src: bigint, dst: bigint, size: number, count: number): void;
  /** Waits for the copies; null when the device reported no error, else what it reported. */
  memcpyWait(): Promise<string | null>;
  /** Makes the device send the `msi` vector once. */
  sendMsi(): Promise<void>;
}

/**
 * A driver type: which devices it drives, how much DMA memory it needs, and how to make one.
 *
 * @category Conformance suite
 */
export interface SelftestDriverFactory {
  /** The driver's name, unique among registered drivers: case messages show it and unregisterSelftestDriver takes it. */
  readonly name: string;
  /** Bytes of DMA memory the driver needs for itself (a multiple of the page size; 0 for none). */
  readonly regionSize: bigint;
  /** Whether it drives `device` (by vendor and device ID, as the kernel's probe() does). */
  probe(device: DeviceUnderTest): boolean;
  /** Makes a driver for the device (before init; the matrix calls init and remove). */
  create(device: DriverDevice): SelftestDriver;
}

/**
 * The driver as the test uses it, with the bookkeeping vfio_pci_driver.c does around the ops:
 * init and remove alternate, a memcpy is within the driver's limits, and one memcpy batch at a
 * time is in flight.
 */
export class DriverHandle {
  private initialized = false;
  private inProgress = false;

  constructor(
    readonly factory: SelftestDriverFactory,
    readonly driver: SelftestDriver,
    private readonly dev: DriverDevice,
  ) {}

  get name(): string {
    return this.factory.name;
  }

  get isInitialized(): boolean {
    return this.initialized;
  }

  /** The eventfd of the driver's MSI vector. */
  get msiEventfd(): number {
    return this.dev.eventfdOf(this.driver.msi);
  }

  async init(): Promise<void> {
    if (this.initialized) this.dev.t.fail(`${this.name}: init while initialized`);
    await this.driver.init();
    this.initialized = true;
  }

  async remove(): Promise<void> {
    if (!this.initialized) this.dev.t.fail(`${this.name}: remove while not initialized`);
    if (this.inProgress) await this.memcpyWait();
    this.initialized = false;
    await this.driver.remove();
  }

  memcpyStart(src: bigint, dst: bigint, size: number, count: number): void {
    const { t } = this.dev;
    if (!this.initialized) t.fail(`${this.name}: memcpy before init`);
    if (this.inProgress) t.fail(`${this.name}: memcpy while another is in progress`);
    if (size < 1 || size > this.driver.maxMemcpySize) t.fail(`${this.name}: memcpy of ${size} bytes (1..${this.driver.maxMemcpySize})`);
    if (count < 1 || count > this.driver.maxMemcpyCount) t.fail(`${this.name}: ${count} memcpys (1..${this.driver.maxMemcpyCount})`);
    this.inProgress = true;
    this.driver.memcpyStart(src, dst, size, count);
  }

  async memcpyWait(): Promise<string | null> {
    if (!this.inProgress) this.dev.t.fail(`${this.name}: memcpy wait without a memcpy`);
    try {
      return await this.driver.memcpyWait();
    } finally {
      this.inProgress = false;
    }
  }

  /** One copy, waited for (vfio_pci_driver_memcpy). */
  async memcpy(src: bigint, dst: bigint, size: number): Promise<string | null> {
    this.memcpyStart(src, dst, size, 1);
    return this.memcpyWait();
  }

  sendMsi(): Promise<void> {
    if (!this.initialized) this.dev.t.fail(`${this.name}: send_msi before init`);
    return this.driver.sendMsi();
  }
}

/**
 * Polls `done` (yielding to the event loop, then sleeping) until it holds or `timeoutMs` passes.
 *
 * @category Conformance suite
 */
export async function pollUntil(done: () => boolean, what: string, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (let spins = 0; !done(); spins++) {
    if (Date.now() > deadline) throw new Error(`${what}: not done after ${timeoutMs} ms`);
    // A model device finishes on a later event-loop turn; a real one (QEMU's edu: 100 ms of
    // virtual time per DMA) takes longer, so back off to sleeping after a few turns.
    await new Promise((resolve) => (spins < 20 ? setImmediate(resolve) : setTimeout(resolve, spins < 100 ? 1 : 5)));
  }
}
