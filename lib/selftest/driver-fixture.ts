/**
 * The driver matrix's fixture, after vfio_pci_driver_test.c's FIXTURE_SETUP: the device in one
 * IOMMU mode, its driver's own DMA region and a memcpy region mapped at IOVAs of the mode's
 * aperture, an IOVA left unmapped, and the driver initialised. The kernel's test maps 1 GiB and
 * 2 MiB; here the memcpy region is what the cases copy (a few of the driver's largest copies) so
 * the whole matrix stays quick on the model and on QEMU's slow edu.
 *
 * Without an IOMMU the device is given physical addresses: GET_PA of the IOAS on a noiommu cdev,
 * /proc/self/pagemap for a noiommu group (which has no map at all; its "IOVAs" are tokens the
 * fixture looks the memory up by).
 */
import type { Mapping } from '../sys/kernel';
import * as V from '../uapi/vfio';
import { call } from './calls';
import type { CaseContext } from './context';
import {
  DriverHandle,
  type BusRun,
  type DriverDevice,
  type DriverRegion,
  type MsiKind,
  type SelftestDriverFactory,
} from './drivers/driver';
import * as P from '../uapi/pci';
import { findSelftestDriver } from './drivers';
import { setUp } from './fixture';
import { inIommuMode, type IommuModeFixture, type IommuModeRow } from './iommu-modes';
import { configRead, configWrite, eventfds, pagemapPhys, regionInfo, setIrqs } from './steps';
import { on } from './struct-call';

const MiB = 1n << 20n;
/** Copies of the driver's largest size the memcpy region holds on each side (the chunked copy). */
export const CHUNKS = 4;
/** edu clamps bus addresses to its dma_mask, 28 bits unless QEMU is told otherwise: stay below. */
const IOVA_CEILING = 1n << 28n;

const IRQ_INDEX: Record<MsiKind, number> = { msi: V.VFIO_PCI_MSI_IRQ_INDEX, msix: V.VFIO_PCI_MSIX_IRQ_INDEX };

interface Mapped {
  readonly memory: Mapping;
  readonly iova: bigint;
  readonly size: bigint;
}

class ModeDriverDevice implements DriverDevice {
  readonly device;
  readonly deviceFd: number;
  region!: DriverRegion;
  private readonly bars = new Map<number, Mapping>();
  private readonly irqs = new Map<number, { index: number; fds: number[] }>();
  /** The command register before busMaster(true), to restore. */
  private command: number | undefined;
  private readonly mapped: Mapped[] = [];

  constructor(
    readonly t: CaseContext,
    private readonly f: IommuModeFixture,
  ) {
    this.device = t.env.device!;
    this.deviceFd = f.deviceFd;
  }

  /** Anonymous memory mapped for the device at `iova` (in the noiommu group: just remembered). */
  map(iova: bigint, size: bigint): Mapped {
    const memory = this.t.anonymousMemory(size);
    if (this.f.row.dma !== 'none') {
      this.t.ok(`map ${size} bytes at IOVA 0x${iova.toString(16)}`, () => this.f.map(memory.address, iova, size));
      this.t.defer(`unmap IOVA 0x${iova.toString(16)}`, () => this.f.unmap(iova, size));
    }
    const m = { memory, iova, size };
    this.mapped.push(m);
    return m;
  }

  bar(index: number): Mapping {
    let m = this.bars.get(index);
    if (!m) {
      const info = regionInfo(this.t, this.deviceFd, V.VFIO_PCI_BAR0_REGION_INDEX + index);
      this.t.check((info.flags & V.VFIO_REGION_INFO_FLAG_MMAP) !== 0, `BAR${index} can be mmap'ed`);
      m = this.t.ok(`mmap BAR${index}`, () => this.t.mapRegion(this.deviceFd, info.size, info.offset));
      this.bars.set(index, m);
    }
    return m;
  }

  configRead(offset: number, width: 1 | 2 | 4): number {
    return configRead(this.t, this.deviceFd, offset, width);
  }

  configWrite(offset: number, width: 1 | 2 | 4, value: number): void {
    configWrite(this.t, this.deviceFd, offset, width, value);
  }

  busMaster(on: boolean): void {
    if (on) {
      this.command ??= this.configRead(P.PCI_COMMAND, 2);
      this.configWrite(P.PCI_COMMAND, 2, this.command | P.PCI_COMMAND_MASTER | P.PCI_COMMAND_MEMORY);
    } else if (this.command !== undefined) {
      this.configWrite(P.PCI_COMMAND, 2, this.command);
      this.command = undefined;
    }
  }

  busAddress(iova: bigint): BusRun {
    const t: CaseContext = this.t;
    if (t.mode === 'iommu') return { address: iova, contiguous: 1n << 64n };
    const m = this.mapped.find((r) => iova >= r.iova && iova < r.iova + r.size);
    if (!m) t.fail(`IOVA 0x${iova.toString(16)} is not mapped, and without an IOMMU it has no bus address`);
    const toPageEnd = t.page - (iova % t.page);
    if (this.f.row.dma === 'none') {
      const phys = pagemapPhys(t, m.memory.address + (iova - m.iova));
      if (phys === null || phys < t.page) t.skip('/proc/self/pagemap gives no physical address (needs CAP_SYS_ADMIN)');
      return { address: phys, contiguous: toPageEnd };
    }
    const run = t.ok('IOMMU_IOAS_NOIOMMU_GET_PA', () =>
      call.getPa(on(t, { iommufd: this.f.dmaFd, ioasId: this.f.ioasId }), { iova, length: toPageEnd }),
    );
    return { address: run.out_phys, contiguous: run.length < toPageEnd ? run.length : toPageEnd };
  }

  enableIrq(kind: MsiKind, count: number, wanted: (vector: number) => boolean): void {
    const index = IRQ_INDEX[kind];
    const fds: number[] = [];
    for (let v = 0; v < count; v++) fds.push(wanted(v) ? this.t.eventfd() : -1);
    this.t.ok(`SET_IRQS index ${index}: ${count} vector(s)`, () =>
      setIrqs(on(this.t, { deviceFd: this.deviceFd }), {
        flags: V.VFIO_IRQ_SET_DATA_EVENTFD | V.VFIO_IRQ_SET_ACTION_TRIGGER,
        index,
        start: 0,
        count,
        data: eventfds(...fds),
      }),
    );
    fds.forEach((fd, v) => {
      if (fd >= 0) this.irqs.set(v, { index, fds });
    });
  }

  disableIrq(kind: MsiKind): void {
    const index = IRQ_INDEX[kind];
    this.t.ok(`SET_IRQS index ${index}: disable`, () =>
      setIrqs(on(this.t, { deviceFd: this.deviceFd }), {
        flags: V.VFIO_IRQ_SET_DATA_NONE | V.VFIO_IRQ_SET_ACTION_TRIGGER,
        index,
        start: 0,
        count: 0,
      }),
    );
    for (const [v, irq] of [...this.irqs]) {
      if (irq.index !== index) continue;
      this.t.closeNow(irq.fds[v]!);
      this.irqs.delete(v);
    }
  }

  eventfdOf(vector: number): number {
    const irq = this.irqs.get(vector);
    if (!irq) this.t.fail(`vector ${vector} has no eventfd (the driver did not enable it)`);
    return irq.fds[vector]!;
  }
}

/** What a driver case works with. */
export interface DriverTest {
  readonly t: CaseContext;
  readonly row: IommuModeRow;
  readonly driver: DriverHandle;
  /** The driver's largest copy, as the kernel's test sizes its memcpys. */
  readonly size: number;
  /** CHUNKS × size bytes on each side of the memcpy region. */
  readonly src: bigint;
  readonly dst: bigint;
  readonly srcBytes: Uint8Array;
  readonly dstBytes: Uint8Array;
  /** An IOVA of the aperture nothing is mapped at. */
  readonly unmappedIova: bigint;
}

function alignUp(n: bigint, to: bigint): bigint {
  return ((n + to - 1n) / to) * to;
}

/** 16 MiB of the aperture for the fixture: the first range that has it, from 1 MiB up, below the edu ceiling. */
function pickBase(t: CaseContext, f: IommuModeFixture): bigint {
  const ranges = f.row.dma === 'none' ? [{ start: 0n, last: (1n << 32n) - 1n }] : f.iovaRanges();
  for (const r of ranges) {
    const base = alignUp(r.start > MiB ? r.start : MiB, 2n * MiB);
    if (base + 16n * MiB - 1n <= r.last && base + 16n * MiB <= IOVA_CEILING) return base;
  }
  t.fail(
    `no 16 MiB below 256 MiB in the IOVA ranges ${ranges.map((r) => `0x${r.start.toString(16)}-0x${r.last.toString(16)}`).join(', ')}`,
  );
}

/**
 * Sets the device up in `row`'s mode with its driver initialised, runs `body`, and removes the
 * driver again (the kernel's FIXTURE_TEARDOWN calls vfio_pci_driver_remove first); the rest is
 * released by the case's teardown. Skips when no selftest driver drives the device.
 */
export async function withDriver(t: CaseContext, row: IommuModeRow, body: (d: DriverTest) => Promise<void>): Promise<void> {
  const factory: SelftestDriverFactory | undefined = findSelftestDriver(t.env.device);
  if (!factory) t.skip(`no selftest driver drives ${t.env.device?.bdf ?? 'the device'} (built in: edu, nvme; see lib/selftest/drivers)`);
  const f = setUp(inIommuMode(row), t);
  const dev = new ModeDriverDevice(t, f);
  const base = pickBase(t, f);
  if (factory.regionSize > 0n) {
    const r = dev.map(base + 8n * MiB, alignUp(factory.regionSize, t.page));
    dev.region = { bytes: new Uint8Array(r.memory.buffer!), iova: r.iova, size: r.size };
  } else {
    dev.region = { bytes: new Uint8Array(0), iova: 0n, size: 0n };
  }
  const driver = new DriverHandle(factory, factory.create(dev), dev);
  const size = driver.driver.maxMemcpySize;
  const half = alignUp(BigInt(size * CHUNKS), t.page);
  const memcpy = dev.map(base, 2n * half);
  const bytes = new Uint8Array(memcpy.memory.buffer!);
  t.note(`${factory.name} driver in ${row.name}: memcpy region at IOVA 0x${base.toString(16)}, copies of ${size} bytes`);
  await driver.init();
  try {
    await body({
      t,
      row,
      driver,
      size,
      src: base,
      dst: base + half,
      srcBytes: bytes.subarray(0, Number(half)),
      dstBytes: bytes.subarray(Number(half), Number(2n * half)),
      unmappedIova: base + 12n * MiB,
    });
  } finally {
    if (driver.isInitialized) await driver.remove();
  }
}
