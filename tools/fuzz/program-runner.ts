/**
 * Runs a fuzz program against a Kernel (the model or the real one) through the typed ioctl layer
 * and records the normalised trace. The runner owns everything it opens — the iommufd, the
 * device fds, their eventfds, the user-memory arena and the memfd — and closes all of it at the end, also
 * when an operation throws something that is not a kernel error (which it records as a bug), so
 * a thousand runs in one process leave the kernel as they found it.
 */
import type { Kernel, Mapping } from '../../lib/sys/kernel';
import { VfioError } from '../../lib/sys/errors';
import {
  EFD_CLOEXEC,
  EFD_NONBLOCK,
  MAP_ANONYMOUS,
  MAP_PRIVATE,
  MFD_CLOEXEC,
  O_CLOEXEC,
  O_RDWR,
  PROT_READ,
  PROT_WRITE,
} from '../../lib/sys/constants';
import * as V from '../../lib/uapi/vfio';
import { U64_MAX } from '../../lib/uapi/codec';
import * as iommufd from '../../lib/ioctl/iommufd-ioctls';
import * as device from '../../lib/ioctl/device-ioctls';
import { PciDevice } from '../../lib/pci/pci-device';
import type { Iova } from '../../lib/sys/addresses';
import {
  ARENA_ALIGNMENT,
  ARENA_PAGES,
  hex,
  parseHex,
  type FuzzOp,
  type FuzzProgram,
  type IrqKindName,
  type NearArea,
  type ObjectRef,
} from './program';
import { FrameLabels, type Trace, type TraceEntry, type TraceValue } from './trace';

export interface RunOptions {
  /** PCI address of the device (QEMU's edu) bound to vfio-pci. */
  readonly bdf: string;
  /** Called after every operation, with the runner's live state (for checks between operations). */
  readonly afterEach?: (index: number, entry: TraceEntry, state: RunnerState) => void;
}

/** A successful map or copy, as the runner remembers it to resolve area slots. */
export interface AreaRecord {
  readonly ioasSlot: number;
  readonly ioasId: number;
  readonly iova: bigint;
  readonly length: bigint;
}

interface DeviceSlot {
  fd: number;
  deviceId: number | undefined;
  /** Per index, the eventfd of each vector (undefined: de-assigned or never given). */
  readonly eventfds: Map<IrqKindName, (number | undefined)[]>;
  /** Where the config region starts in the device fd, once a config op asked. */
  configOffset?: bigint;
}

/** What the runner holds while a program runs. */
export interface RunnerState {
  readonly iommufd: number;
  readonly ioasIds: readonly number[];
  readonly hwptIds: readonly number[];
  readonly attachedIds: readonly number[];
  readonly areas: readonly AreaRecord[];
  /** Open device fds by slot. */
  readonly deviceFds: readonly (number | undefined)[];
}

/** IOVAs computed from an area plus an offset wrap like the kernel's u64 fields. */
function u64(value: bigint): bigint {
  return BigInt.asUintN(64, value);
}

function clampU64(value: bigint): bigint {
  return value < 0n ? 0n : value > U64_MAX ? U64_MAX : value;
}

const IRQ_INDEX: Record<IrqKindName, number> = {
  intx: V.VFIO_PCI_INTX_IRQ_INDEX,
  msi: V.VFIO_PCI_MSI_IRQ_INDEX,
  msix: V.VFIO_PCI_MSIX_IRQ_INDEX,
};
const DEVICE_SLOTS = 2;

/** Thrown inside an operation when a slot it names was never filled: the entry becomes 'skip'. */
class Skip extends Error {}

class ProgramRun implements RunnerState {
  iommufd = -1;
  readonly ioasIds: number[] = [];
  readonly hwptIds: number[] = [];
  readonly attachedIds: number[] = [];
  readonly areas: AreaRecord[] = [];
  private readonly devices: (DeviceSlot | undefined)[] = Array.from({ length: DEVICE_SLOTS }, () => undefined);
  private arena: Mapping | undefined;
  private memfd = -1;
  private arenaBase = 0n;
  private readonly frames = new FrameLabels();
  private readonly page: bigint;
  private cdevPath = '';
  private args: { [key: string]: TraceValue } | undefined;

  constructor(
    private readonly kernel: Kernel,
    private readonly bdf: string,
  ) {
    this.page = BigInt(kernel.pageSize);
  }

  get deviceFds(): (number | undefined)[] {
    return this.devices.map((d) => d?.fd);
  }

  setUp(): void {
    const cdev = PciDevice.get(this.bdf, this.kernel).cdevPath();
    if (cdev === null) throw new Error(`fuzz: ${this.bdf} has no VFIO device cdev (is it bound to vfio-pci?)`);
    this.cdevPath = cdev;
    this.iommufd = this.kernel.open('/dev/iommu', O_RDWR | O_CLOEXEC);
    const size = BigInt(ARENA_PAGES) * this.page + ARENA_ALIGNMENT;
    this.arena = this.kernel.mmap(-1, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, 0n);
    this.arenaBase = (this.arena.address + ARENA_ALIGNMENT - 1n) & ~(ARENA_ALIGNMENT - 1n);
    // Touch every page so each has its own frame before anything pins it: a read-only pin of an
    // untouched page would otherwise share the zero page on one kernel and not on another.
    this.memfd = this.kernel.memfdCreate('node-vfio-fuzz', MFD_CLOEXEC);
    this.kernel.ftruncate(this.memfd, BigInt(ARENA_PAGES) * this.page);
    const bytes = new Uint8Array(this.arena.buffer!);
    const first = Number(this.arenaBase - this.arena.address);
    for (let p = 0; p < ARENA_PAGES; p++) bytes[first + p * this.kernel.pageSize] = (p & 0xff) | 1;
  }

  tearDown(): void {
    const errors: unknown[] = [];
    const attempt = (f: () => void): void => {
      try {
        f();
      } catch (e) {
        errors.push(e);
      }
    };
    for (let d = 0; d < DEVICE_SLOTS; d++) attempt(() => this.closeDevice(d));
    if (this.iommufd >= 0) attempt(() => this.kernel.close(this.iommufd));
    this.iommufd = -1;
    if (this.memfd >= 0) attempt(() => this.kernel.close(this.memfd));
    this.memfd = -1;
    if (this.arena) attempt(() => this.kernel.munmap(this.arena!));
    this.arena = undefined;
    if (errors.length) throw new AggregateError(errors, 'fuzz runner: tearing down failed');
  }

  execute(op: FuzzOp): TraceEntry {
    this.args = undefined;
    let entry: TraceEntry;
    try {
      const out = this.dispatch(op);
      entry = out === undefined ? { op: op.op, result: 'ok' } : { op: op.op, result: 'ok', ...out };
    } catch (e) {
      if (e instanceof Skip) return { op: op.op, result: 'skip' };
      entry = {
        op: op.op,
        result: e instanceof VfioError ? e.code : `throw: ${e instanceof Error ? `${e.name}: ${e.message}` : String(e)}`,
      };
    }
    return this.args ? { ...entry, args: this.args } : entry;
  }

  /** Records the resolved arguments of the ioctl about to be issued. */
  private issue(args: { [key: string]: TraceValue }): void {
    this.args = args;
  }

  private dispatch(op: FuzzOp): Pick<TraceEntry, 'out' | 'props'> | undefined {
    const k = this.kernel;
    switch (op.op) {
      case 'ioas-alloc': {
        const id = iommufd.ioasAlloc(k, this.iommufd);
        this.ioasIds.push(id);
        return { out: { id } };
      }
      case 'destroy': {
        const id = this.resolve(op.target);
        this.issue({ id });
        iommufd.iommuDestroy(k, this.iommufd, id);
        return undefined;
      }
      case 'map': {
        const ioasId = this.slot(this.ioasIds, op.ioas);
        const arenaOffset = BigInt(op.userPage) * this.page + BigInt(op.byteOffset);
        const raw = BigInt(op.pages) * this.page + BigInt(op.lengthAdjust);
        const length = raw < 0n ? 0n : raw;
        const fixed = this.fixedIova(op);
        this.issue({
          ioas: ioasId,
          arenaOffset: hex(arenaOffset),
          length: hex(length),
          ...(fixed !== undefined ? { iova: hex(fixed) } : {}),
        });
        const at = iommufd.ioasMap(k, this.iommufd, {
          ioasId,
          userVa: this.arenaBase + arenaOffset,
          length,
          readable: op.readable,
          writable: op.writable,
          ...(fixed !== undefined ? { iova: fixed as Iova } : {}),
        });
        return { out: { iova: hex(at), area: this.addArea({ ioasSlot: op.ioas, ioasId, iova: at, length }) } };
      }
      case 'map-file': {
        const ioasId = this.slot(this.ioasIds, op.ioas);
        const start = BigInt(op.filePage) * this.page;
        const length = BigInt(op.pages) * this.page;
        const fixed = this.fixedIova(op);
        this.issue({ ioas: ioasId, fileOffset: hex(start), length: hex(length), ...(fixed !== undefined ? { iova: hex(fixed) } : {}) });
        const at = iommufd.ioasMapFile(k, this.iommufd, {
          ioasId,
          fileFd: this.memfd,
          start,
          length,
          readable: true,
          writable: op.writable,
          ...(fixed !== undefined ? { iova: fixed as Iova } : {}),
        });
        return { out: { iova: hex(at), area: this.addArea({ ioasSlot: op.ioas, ioasId, iova: at, length }) } };
      }
      case 'copy': {
        const src = this.slot(this.areas, op.area);
        const dstId = this.slot(this.ioasIds, op.dst);
        const srcIova = u64(src.iova + BigInt(op.pageOffset) * this.page);
        const length = BigInt(op.pages) * this.page;
        const fixed = this.fixedIova(op);
        this.issue({
          src: src.ioasId,
          srcIova: hex(srcIova),
          dst: dstId,
          length: hex(length),
          ...(fixed !== undefined ? { iova: hex(fixed) } : {}),
        });
        const at = iommufd.ioasCopy(k, this.iommufd, {
          srcIoasId: src.ioasId,
          srcIova: srcIova as Iova,
          dstIoasId: dstId,
          length,
          readable: true,
          writable: op.writable,
          ...(fixed !== undefined ? { dstIova: fixed as Iova } : {}),
        });
        return { out: { iova: hex(at), area: this.addArea({ ioasSlot: op.dst, ioasId: dstId, iova: at, length }) } };
      }
      case 'unmap': {
        const a = this.slot(this.areas, op.area);
        const start = clampU64(a.iova + BigInt(op.startPages) * this.page);
        const end = a.iova + a.length + BigInt(op.endPages) * this.page;
        return this.unmap(a.ioasId, start, clampU64(end - start));
      }
      case 'unmap-span': {
        const a = this.slot(this.areas, op.from);
        const b = this.slot(this.areas, op.to);
        const start = a.iova < b.iova ? a.iova : b.iova;
        const end = a.iova + a.length > b.iova + b.length ? a.iova + a.length : b.iova + b.length;
        return this.unmap(a.ioasId, start, end - start);
      }
      case 'unmap-all': {
        const ioasId = this.slot(this.ioasIds, op.ioas);
        this.issue({ ioas: ioasId, iova: '0x0', length: hex(U64_MAX) });
        return { out: { length: hex(iommufd.ioasUnmap(k, this.iommufd, ioasId)) } };
      }
      case 'unmap-range':
        return this.unmap(this.slot(this.ioasIds, op.ioas), parseHex(op.iova), parseHex(op.length));
      case 'get-pa': {
        const a = this.slot(this.areas, op.area);
        const at = u64(a.iova + BigInt(op.offset));
        this.issue({ ioas: a.ioasId, iova: hex(at), cap: op.cap });
        const run = iommufd.noiommuGetPa(k, this.iommufd, a.ioasId, at as Iova, parseHex(op.cap));
        return {
          out: { offset: Number(run.phys % this.page), frame: this.frames.label(run.phys / this.page) },
          props: { length: hex(run.length) },
        };
      }
      case 'iova-ranges': {
        const ioasId = this.slot(this.ioasIds, op.ioas);
        this.issue({ ioas: ioasId });
        const r = iommufd.ioasIovaRanges(k, this.iommufd, ioasId);
        return { out: { ranges: r.ranges.map((x) => [hex(x.start), hex(x.last)]), alignment: hex(r.alignment) } };
      }
      case 'allow-iovas':
        this.issue({ ioas: this.slot(this.ioasIds, op.ioas) });
        iommufd.ioasAllowIovas(
          k,
          this.iommufd,
          this.slot(this.ioasIds, op.ioas),
          op.ranges.map((r) => ({ start: parseHex(r.start) as Iova, last: parseHex(r.last) as Iova })),
        );
        return undefined;
      case 'option': {
        const objectId = op.option === 'huge-pages' ? this.slot(this.ioasIds, op.ioas) : 0;
        this.issue({ object: objectId, ...(op.set !== undefined ? { set: op.set } : {}) });
        if (op.set !== undefined) iommufd.optionSet(k, this.iommufd, op.option, BigInt(op.set), objectId);
        return { out: { value: hex(iommufd.optionGet(k, this.iommufd, op.option, objectId)) } };
      }
      case 'hw-info': {
        const deviceId = this.device(op.device).deviceId;
        if (deviceId === undefined) throw new Skip();
        this.issue({ device: deviceId });
        const info = iommufd.getHwInfo(k, this.iommufd, deviceId);
        return { out: { type: info.type, capabilities: hex(info.capabilities), data: Buffer.from(info.data).toString('hex') } };
      }
      case 'device-open': {
        if (this.devices[op.device]) throw new Skip();
        const fd = k.open(this.cdevPath, O_RDWR | O_CLOEXEC);
        this.devices[op.device] = { fd, deviceId: undefined, eventfds: new Map() };
        return undefined;
      }
      case 'device-close':
        if (!this.devices[op.device]) throw new Skip();
        this.closeDevice(op.device);
        return undefined;
      case 'bind': {
        const d = this.device(op.device);
        const id = device.deviceBindIommufd(k, d.fd, this.iommufd);
        d.deviceId = id;
        return { out: { id } };
      }
      case 'attach': {
        const d = this.device(op.device);
        const target = this.resolve(op.target);
        this.issue({ pt: target });
        const pt = device.deviceAttachIommufdPt(k, d.fd, target);
        this.attachedIds.push(pt);
        return { out: { pt } };
      }
      case 'detach':
        device.deviceDetachIommufdPt(k, this.device(op.device).fd);
        return undefined;
      case 'hwpt-alloc': {
        const deviceId = this.device(op.device).deviceId;
        if (deviceId === undefined) throw new Skip();
        const ptId = this.resolve(op.pt);
        this.issue({ device: deviceId, pt: ptId });
        const id = iommufd.hwptAlloc(k, this.iommufd, { deviceId, ptId, flags: op.flags });
        this.hwptIds.push(id);
        return { out: { id } };
      }
      case 'irq-enable':
        return this.irqEnable(op.device, op.kind, op.count);
      case 'irq-disable': {
        const d = this.device(op.device);
        device.deviceSetIrqs(k, d.fd, { index: IRQ_INDEX[op.kind], action: 'trigger', start: 0, count: 0, data: { kind: 'none' } });
        this.closeEventfds(d, op.kind);
        return undefined;
      }
      case 'irq-trigger': {
        const d = this.device(op.device);
        device.deviceSetIrqs(k, d.fd, { index: IRQ_INDEX[op.kind], action: 'trigger', start: op.vector, count: 1, data: { kind: 'none' } });
        return { out: { fired: this.drain(d, op.kind) } };
      }
      case 'irq-mask': {
        const d = this.device(op.device);
        device.deviceSetIrqs(k, d.fd, {
          index: IRQ_INDEX[op.kind],
          action: op.unmask ? 'unmask' : 'mask',
          start: 0,
          count: 1,
          data: { kind: 'none' },
        });
        return { out: { fired: this.drain(d, op.kind) } };
      }
      case 'irq-info': {
        const info = device.deviceGetIrqInfo(k, this.device(op.device).fd, IRQ_INDEX[op.kind]);
        return { out: { flags: info.flags, count: info.count } };
      }
      case 'irq-resize':
        return this.irqResize(op.device, op.kind, op.start, op.count, op.release);
      case 'config-read': {
        const d = this.device(op.device);
        this.issue({ offset: hex(BigInt(op.offset)), width: op.width });
        return { out: this.configRead(d, op.offset, op.width) };
      }
      case 'config-write': {
        const d = this.device(op.device);
        this.issue({ offset: hex(BigInt(op.offset)), width: op.width, value: hex(BigInt(op.value)) });
        const bytes = Buffer.alloc(op.width);
        for (let i = 0; i < op.width; i++) bytes[i] = (op.value >>> (8 * i)) & 0xff;
        const written = k.pwrite(d.fd, bytes, this.configOffset(d) + BigInt(op.offset));
        return { out: { written, ...(op.readBack ? { readBack: this.configRead(d, op.offset, op.width) } : {}) } };
      }
      case 'region-info': {
        const r = device.deviceGetRegionInfo(k, this.device(op.device).fd, op.index);
        return {
          out: {
            flags: r.flags,
            size: hex(r.size),
            offset: hex(r.offset),
            capabilities: r.capabilities.map((c) => c.id),
            ...(r.sparseMmap ? { sparse: r.sparseMmap.map((a) => [hex(a.offset), hex(a.size)]) } : {}),
            msixMappable: r.msixMappable,
          },
        };
      }
      case 'reset':
        device.deviceReset(k, this.device(op.device).fd);
        return undefined;
      case 'hot-reset-info': {
        const info = device.deviceGetPciHotResetInfo(k, this.device(op.device).fd);
        return { out: { flags: info.flags, devices: info.devices.map((x) => [x.groupOrDeviceId, x.segment, x.bus, x.devfn]) } };
      }
      case 'hot-reset':
        device.devicePciHotReset(k, this.device(op.device).fd);
        return undefined;
    }
  }

  /** The config region's offset in the device fd (VFIO_DEVICE_GET_REGION_INFO, asked once per fd). */
  private configOffset(d: DeviceSlot): bigint {
    d.configOffset ??= device.deviceGetRegionInfo(this.kernel, d.fd, V.VFIO_PCI_CONFIG_REGION_INDEX).offset;
    return d.configOffset;
  }

  /** `width` config bytes at `offset`: how many the read returned and their little-endian value. */
  private configRead(d: DeviceSlot, offset: number, width: number): { [key: string]: TraceValue } {
    const bytes = new Uint8Array(width);
    const read = this.kernel.pread(d.fd, bytes, this.configOffset(d) + BigInt(offset));
    let value = 0;
    for (let i = read - 1; i >= 0; i--) value = value * 256 + bytes[i]!;
    return { read, value: hex(BigInt(value)) };
  }

  private irqResize(slot: number, kind: IrqKindName, start: number, count: number, release: boolean): undefined {
    const d = this.device(slot);
    const fds: number[] = [];
    try {
      for (let i = 0; i < count; i++) fds.push(release ? -1 : this.kernel.eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
      device.deviceSetIrqs(this.kernel, d.fd, { index: IRQ_INDEX[kind], action: 'trigger', start, count, data: { kind: 'eventfd', fds } });
    } catch (e) {
      for (const fd of fds) if (fd >= 0) this.kernel.close(fd);
      throw e;
    }
    // Only [start, start+count) changed: the kernel let go of those vectors' old eventfds.
    const list = d.eventfds.get(kind) ?? [];
    fds.forEach((fd, i) => {
      const old = list[start + i];
      if (old !== undefined) this.kernel.close(old);
      list[start + i] = fd >= 0 ? fd : undefined;
    });
    d.eventfds.set(kind, list);
    return undefined;
  }

  /** The fixed IOVA an op asks for: literal, relative to an area (wrapping like a u64), or none. */
  private fixedIova(op: { readonly iova?: string; readonly near?: NearArea }): bigint | undefined {
    if (op.iova !== undefined) return parseHex(op.iova);
    if (op.near === undefined) return undefined;
    return u64(this.slot(this.areas, op.near.area).iova + BigInt(op.near.pages) * this.page);
  }

  private unmap(ioasId: number, iova: bigint, length: bigint): Pick<TraceEntry, 'out'> {
    this.issue({ ioas: ioasId, iova: hex(iova), length: hex(length) });
    return { out: { length: hex(iommufd.ioasUnmap(this.kernel, this.iommufd, ioasId, { iova: iova as Iova, length })) } };
  }

  private irqEnable(slot: number, kind: IrqKindName, count: number): undefined {
    const d = this.device(slot);
    const fds: number[] = [];
    try {
      for (let i = 0; i < count; i++) fds.push(this.kernel.eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
      device.deviceSetIrqs(this.kernel, d.fd, {
        index: IRQ_INDEX[kind],
        action: 'trigger',
        start: 0,
        count,
        data: { kind: 'eventfd', fds },
      });
    } catch (e) {
      for (const fd of fds) this.kernel.close(fd);
      throw e;
    }
    // The kernel now signals the new eventfds; the ones it had for this index are released.
    this.closeEventfds(d, kind);
    d.eventfds.set(kind, fds);
    return undefined;
  }

  /** How many times each eventfd of `kind` fired since the last look (one count per vector). */
  private drain(d: DeviceSlot, kind: IrqKindName): TraceValue {
    return Array.from(d.eventfds.get(kind) ?? [], (fd) => {
      if (fd === undefined) return null;
      try {
        return Number(this.kernel.eventfdRead(fd));
      } catch (e) {
        if (e instanceof VfioError && e.code === 'EAGAIN') return 0;
        throw e;
      }
    });
  }

  private closeEventfds(d: DeviceSlot, kind: IrqKindName): void {
    for (const fd of d.eventfds.get(kind) ?? []) if (fd !== undefined) this.kernel.close(fd);
    d.eventfds.delete(kind);
  }

  private closeDevice(slot: number): void {
    const d = this.devices[slot];
    if (!d) return;
    this.devices[slot] = undefined;
    try {
      this.kernel.close(d.fd);
    } finally {
      for (const kind of [...d.eventfds.keys()]) this.closeEventfds(d, kind);
    }
  }

  private addArea(a: AreaRecord): number {
    this.areas.push(a);
    return this.areas.length - 1;
  }

  private device(slot: number): DeviceSlot {
    const d = this.devices[slot];
    if (!d) throw new Skip();
    return d;
  }

  /**
   * The result a slot names. A slot past the end wraps around, so that after shrinking removed
   * the operation that filled it a reference still hits something; only an empty list skips.
   */
  private slot<T>(list: readonly T[], index: number): T {
    if (list.length === 0) throw new Skip();
    return list[index % list.length]!;
  }

  private resolve(ref: ObjectRef): number {
    switch (ref.kind) {
      case 'ioas':
        return this.slot(this.ioasIds, ref.slot);
      case 'hwpt':
        return this.slot(this.hwptIds, ref.slot);
      case 'attached':
        return this.slot(this.attachedIds, ref.slot);
      case 'device': {
        const id = this.device(ref.device).deviceId;
        if (id === undefined) throw new Skip();
        return id;
      }
      case 'raw':
        return ref.id;
    }
  }
}

/**
 * Runs `program` on `kernel` and returns its trace. Set-up failures (no device, no /dev/iommu)
 * throw; everything an operation does is recorded.
 */
export function runProgram(kernel: Kernel, program: FuzzProgram, options: RunOptions): Trace {
  const run = new ProgramRun(kernel, options.bdf);
  const entries: TraceEntry[] = [];
  try {
    run.setUp();
    program.ops.forEach((op, i) => {
      const entry = run.execute(op);
      entries.push(entry);
      options.afterEach?.(i, entry, run);
    });
  } finally {
    run.tearDown();
  }
  return { kernel: kernel.description, entries };
}
