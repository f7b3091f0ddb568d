/**
 * The seeded generator of fuzz programs. Every program is well formed (each ioctl gets a correct
 * struct), but its arguments are chosen to reach both the paths that succeed and the error
 * paths a driver can trip: fixed IOVAs that collide, straddle the VT-d MSI window or the top of
 * the address width, unmaps that split an area, caps of one byte and of 2^64-1, stale and
 * reused object ids, replacing an attachment, interrupts enabled twice or on the wrong index.
 *
 * The generator does not see results; it keeps a rough guess of which slots exist (assuming most
 * operations succeed) only to make references likely to hit something.
 */
import { Random } from './random';
import { ARENA_PAGES, hex, type FuzzOp, type FuzzProgram, type IrqKindName, type NearArea, type ObjectRef } from './program';

export interface GenerateOptions {
  /** Random operations after the preamble (default 40). */
  readonly length?: number;
  /** Page size the byte offsets are chosen for (x86: 4096). */
  readonly pageSize?: number;
  /**
   * What the device under test has (probeDeviceFeatures): with it the generator also picks
   * MSI-X, config-space, region and reset operations fitted to the device; without it, only the
   * operations of the first fuzzer, so a seed names the program it always named.
   */
  readonly device?: DeviceFeatures;
}

/** What the generator needs to know of the device the program will run on. */
export interface DeviceFeatures {
  /** MSI-X vectors (VFIO_DEVICE_GET_IRQ_INFO of the MSI-X index; 0: none). */
  readonly msixVectors: number;
  /** Config-space offsets of the device's capabilities (the standard list). */
  readonly capabilities: readonly number[];
  /** Bytes in the config region. */
  readonly configSize: number;
}

const MAP_PAGES = [1, 1, 1, 2, 3, 4, 8, 16, 17, 64, 256, 512] as const;
const CAPS = ['0x1', '0xfff', '0x1000', '0x1001', '0x3000', '0x10000', '0x200000', '0xffffffffffffffff', '0x0'] as const;

type OpName = FuzzOp['op'];
type FirstOpName = Exclude<OpName, DeviceOpName>;
type DeviceOpName = 'irq-info' | 'irq-resize' | 'config-read' | 'config-write' | 'region-info' | 'reset' | 'hot-reset-info' | 'hot-reset';
const WEIGHTS: Readonly<Record<FirstOpName, number>> = {
  map: 20,
  'map-file': 4,
  option: 2,
  'hw-info': 1,
  'get-pa': 14,
  unmap: 8,
  'unmap-span': 2,
  'unmap-all': 2,
  'unmap-range': 1,
  copy: 6,
  'ioas-alloc': 4,
  destroy: 4,
  'iova-ranges': 4,
  'allow-iovas': 2,
  attach: 4,
  detach: 2,
  'hwpt-alloc': 2,
  'device-open': 1,
  'device-close': 1,
  bind: 1,
  'irq-enable': 3,
  'irq-disable': 2,
  'irq-trigger': 4,
  'irq-mask': 2,
};
const DEVICE_WEIGHTS: Readonly<Record<OpName, number>> = {
  ...WEIGHTS,
  'irq-enable': 5,
  'irq-trigger': 6,
  'irq-info': 2,
  'irq-resize': 4,
  'config-read': 10,
  'config-write': 6,
  'region-info': 3,
  reset: 2,
  'hot-reset-info': 1,
  'hot-reset': 1,
};

/** Standard-header offsets worth reading: ids, command/status, class, BARs, subsystem, capability pointer, interrupt line/pin. */
const HEADER_OFFSETS = [
  0x00, 0x02, 0x04, 0x06, 0x08, 0x0c, 0x0e, 0x10, 0x14, 0x18, 0x1c, 0x20, 0x24, 0x2c, 0x30, 0x34, 0x3c, 0x3d,
] as const;
const BAR_OFFSETS = [0x10, 0x14, 0x18, 0x1c, 0x20, 0x24, 0x30] as const;
/** Values written to the command register: nothing, memory, memory + bus master, + INTx disable, all ones. */
const COMMAND_VALUES = [0x0, 0x2, 0x6, 0x406, 0xffff] as const;
const CAPABILITY_VALUES = [0x0, 0x1, 0x3, 0x4000, 0x8000, 0xc000, 0xffff] as const;

class Generator {
  private ioas = 0;
  private hwpts = 0;
  private attaches = 0;
  private readonly areaPages: number[] = [];

  constructor(
    private readonly rnd: Random,
    private readonly pageSize: number,
    private readonly features?: DeviceFeatures,
  ) {}

  /** A slot index biased towards recent ones; now and then one that does not exist yet. */
  private slot(count: number): number {
    if (count === 0 || this.rnd.chance(0.03)) return count;
    if (this.rnd.chance(0.7)) return Math.max(0, count - 1 - this.rnd.below(Math.min(3, count)));
    return this.rnd.below(count);
  }

  private device(): number {
    return this.rnd.chance(0.06) ? 1 : 0;
  }

  private fixedIova(): string {
    const r = this.rnd;
    switch (r.below(9)) {
      case 0:
      case 1:
        return hex(BigInt(r.below(32)) << 20n);
      case 2:
        return hex(BigInt(r.between(1, 64)) << 12n);
      case 3:
        return hex(0xfee0_0000n - (BigInt(r.below(3)) << 12n));
      case 4:
        return hex((1n << 39n) - (BigInt(r.between(1, 4)) << 21n));
      case 5:
        return hex(r.chance(0.5) ? 1n << 39n : 1n << 48n);
      case 6:
        return hex(0xffff_ffff_ffff_f000n);
      case 7:
        return hex((BigInt(r.below(16)) << 20n) + 0x800n);
      default:
        return hex(BigInt(r.below(8)) << 21n);
    }
  }

  /** Where a new area goes: with probability p a fixed IOVA, absolute or next to an earlier area. */
  private placement(p: number): { iova?: string; near?: NearArea } {
    const r = this.rnd;
    if (!r.chance(p)) return {};
    if (this.areaPages.length > 0 && r.chance(0.5)) {
      const area = this.slot(this.areaPages.length);
      const size = this.areaPages[area] ?? 1;
      return { near: { area, pages: r.pick([size, -1, -2, 0, 1, size + 1, -size]) } };
    }
    return { iova: this.fixedIova() };
  }

  private objectRef(prefer: 'ioas' | 'any'): ObjectRef {
    const r = this.rnd;
    const x = r.below(100);
    if (prefer === 'ioas' ? x < 70 : x < 45) return { kind: 'ioas', slot: this.slot(this.ioas) };
    if (x < (prefer === 'ioas' ? 85 : 65)) return { kind: 'hwpt', slot: this.slot(this.hwpts) };
    if (x < (prefer === 'ioas' ? 92 : 82)) return { kind: 'attached', slot: this.slot(this.attaches) };
    if (x < 95) return { kind: 'device', device: this.device() };
    return { kind: 'raw', id: r.pick([0, 1, 2, 7, 99, 0xffff_ffff]) };
  }

  private irqKind(): IrqKindName {
    if (this.features && this.features.msixVectors > 0 && this.rnd.chance(0.5)) return 'msix';
    return this.rnd.chance(0.5) ? 'intx' : 'msi';
  }

  /** A vector count for an index: mostly small, now and then all of MSI-X's, one past, or none. */
  private vectorCount(kind: IrqKindName): number {
    const r = this.rnd;
    if (kind !== 'msix' || !this.features) return r.chance(0.85) ? 1 : r.pick([0, 2]);
    const n = this.features.msixVectors;
    return r.pick([1, 1, 2, 4, 0, n, n + 1, n - 1]);
  }

  private vector(kind: IrqKindName): number {
    const r = this.rnd;
    if (kind !== 'msix' || !this.features) return r.chance(0.9) ? 0 : 1;
    const n = this.features.msixVectors;
    return r.pick([0, 0, 1, 2, 3, n - 1, n]);
  }

  /** A config offset: a header field, a capability's bytes, the extended space, or the region's end. */
  private configOffset(): number {
    const r = this.rnd;
    const f = this.features!;
    const x = r.below(10);
    if (x < 4 || f.capabilities.length === 0) return r.pick(HEADER_OFFSETS);
    if (x < 8) return r.pick(f.capabilities) + r.pick([0, 1, 2, 3, 4, 6, 8, 0xa]);
    return r.pick([0xfc, 0xff, 0x100, f.configSize - 4, f.configSize - 1, f.configSize]);
  }

  private configWrite(device: number): FuzzOp {
    const r = this.rnd;
    const f = this.features!;
    const x = r.below(3);
    if (x === 0) return { op: 'config-write', device, offset: 0x04, width: 2, value: r.pick(COMMAND_VALUES), readBack: r.chance(0.5) };
    if (x === 1 || f.capabilities.length === 0) {
      return {
        op: 'config-write',
        device,
        offset: r.pick(BAR_OFFSETS),
        width: 4,
        value: r.pick([0xffff_ffff, 0xffff_ffff, 0, 0xfe00_0000]),
        readBack: r.chance(0.8),
      };
    }
    // A capability's control word (MSI/MSI-X flags, PM control, PCIe device control sit at +2, +4, +8).
    const offset = r.pick(f.capabilities) + r.pick([2, 4, 8]);
    return { op: 'config-write', device, offset, width: 2, value: r.pick(CAPABILITY_VALUES), readBack: r.chance(0.6) };
  }

  preamble(): FuzzOp[] {
    this.ioas = 1;
    this.attaches = 1;
    return [
      { op: 'ioas-alloc' },
      { op: 'device-open', device: 0 },
      { op: 'bind', device: 0 },
      { op: 'attach', device: 0, target: { kind: 'ioas', slot: 0 } },
    ];
  }

  next(): FuzzOp {
    const r = this.rnd;
    const name: OpName = this.features ? r.weighted(DEVICE_WEIGHTS) : r.weighted(WEIGHTS);
    switch (name) {
      case 'ioas-alloc':
        this.ioas++;
        return { op: 'ioas-alloc' };
      case 'destroy':
        return { op: 'destroy', target: this.objectRef('any') };
      case 'map': {
        const pages = r.pick(MAP_PAGES);
        const aligned = r.chance(0.3);
        const userPage = aligned ? r.below(ARENA_PAGES / 512) * 512 : r.below(ARENA_PAGES - pages + 1);
        const byteOffset = r.chance(0.03) ? this.pageSize / 2 : 0;
        const lengthAdjust = r.chance(0.03) ? -pages * this.pageSize : r.chance(0.03) ? this.pageSize / 2 : 0;
        this.areaPages.push(pages);
        return {
          op: 'map',
          ioas: this.slot(this.ioas),
          userPage: Math.min(userPage, ARENA_PAGES - pages),
          pages,
          byteOffset,
          lengthAdjust,
          ...this.placement(0.35),
          readable: !r.chance(0.05),
          writable: !r.chance(0.15),
        };
      }
      case 'map-file': {
        const pages = r.pick(MAP_PAGES);
        const filePage = r.chance(0.4) ? r.below(ARENA_PAGES / 512) * 512 : r.below(ARENA_PAGES - pages + 1);
        this.areaPages.push(pages);
        return {
          op: 'map-file',
          ioas: this.slot(this.ioas),
          filePage: Math.min(filePage, ARENA_PAGES - pages),
          pages,
          ...this.placement(0.3),
          writable: !r.chance(0.15),
        };
      }
      case 'option': {
        const option = r.chance(0.7) ? 'huge-pages' : 'rlimit-mode';
        return { op: 'option', option, ioas: this.slot(this.ioas), ...(r.chance(0.6) ? { set: r.pick([0, 1, 1, 2]) } : {}) };
      }
      case 'hw-info':
        return { op: 'hw-info', device: this.device() };
      case 'copy': {
        const area = this.slot(this.areaPages.length);
        const srcPages = this.areaPages[area] ?? 1;
        const pageOffset = r.chance(0.7) ? 0 : r.below(srcPages);
        const pages = r.chance(0.75) ? srcPages - pageOffset : r.between(1, srcPages + 1);
        this.areaPages.push(pages);
        return {
          op: 'copy',
          area,
          pageOffset,
          pages,
          dst: this.slot(this.ioas),
          ...this.placement(0.3),
          writable: !r.chance(0.2),
        };
      }
      case 'unmap':
        return {
          op: 'unmap',
          area: this.slot(this.areaPages.length),
          startPages: r.chance(0.75) ? 0 : r.pick([-16, -1, 1]),
          endPages: r.chance(0.75) ? 0 : r.pick([-1, 1, 16]),
        };
      case 'unmap-span':
        return { op: 'unmap-span', from: this.slot(this.areaPages.length), to: this.slot(this.areaPages.length) };
      case 'unmap-all':
        return { op: 'unmap-all', ioas: this.slot(this.ioas) };
      case 'unmap-range': {
        const iova = this.fixedIova();
        return {
          op: 'unmap-range',
          ioas: this.slot(this.ioas),
          iova,
          length: r.pick(['0x0', '0x1000', '0x200000', '0x10000000', '0xffffffffffffffff']),
        };
      }
      case 'get-pa': {
        const area = this.slot(this.areaPages.length);
        const bytes = (this.areaPages[area] ?? 1) * this.pageSize;
        const where = r.below(10);
        const offset =
          where < 3
            ? 0
            : where < 6
              ? r.below(bytes / this.pageSize) * this.pageSize
              : where < 8
                ? r.below(bytes)
                : where < 9
                  ? bytes - 1
                  : bytes;
        return { op: 'get-pa', area, offset, cap: r.pick(CAPS) };
      }
      case 'iova-ranges':
        return { op: 'iova-ranges', ioas: this.slot(this.ioas) };
      case 'allow-iovas': {
        const ranges = r.pick([
          [],
          [{ start: '0x100000', last: '0x1fffffff' }],
          [{ start: '0x0', last: '0xffffffff' }],
          [{ start: '0x1000', last: '0xfff' }],
          [
            { start: '0x200000', last: '0x3fffff' },
            { start: '0x1000000', last: '0x1ffffff' },
          ],
          [{ start: '0xfee00000', last: '0xfeefffff' }],
        ]);
        return { op: 'allow-iovas', ioas: this.slot(this.ioas), ranges };
      }
      case 'device-open':
        return { op: 'device-open', device: this.device() };
      case 'device-close':
        return { op: 'device-close', device: this.device() };
      case 'bind':
        return { op: 'bind', device: this.device() };
      case 'attach':
        this.attaches++;
        return { op: 'attach', device: this.device(), target: this.objectRef('ioas') };
      case 'detach':
        return { op: 'detach', device: this.device() };
      case 'hwpt-alloc':
        this.hwpts++;
        return { op: 'hwpt-alloc', device: this.device(), pt: this.objectRef('ioas'), flags: r.chance(0.8) ? 0 : r.pick([1, 2, 4]) };
      case 'irq-enable': {
        const device = this.device();
        const kind = this.irqKind();
        return { op: 'irq-enable', device, kind, count: this.vectorCount(kind) };
      }
      case 'irq-disable':
        return { op: 'irq-disable', device: this.device(), kind: this.irqKind() };
      case 'irq-trigger': {
        const device = this.device();
        const kind = this.irqKind();
        return { op: 'irq-trigger', device, kind, vector: this.vector(kind) };
      }
      case 'irq-mask':
        return { op: 'irq-mask', device: this.device(), kind: this.irqKind(), unmask: r.chance(0.5) };
      case 'irq-info':
        return { op: 'irq-info', device: this.device(), kind: this.irqKind() };
      case 'irq-resize': {
        const device = this.device();
        const kind = this.irqKind();
        const start = this.vector(kind);
        return { op: 'irq-resize', device, kind, start, count: r.pick([1, 1, 2, 4]), release: r.chance(0.4) };
      }
      case 'config-read':
        return { op: 'config-read', device: this.device(), offset: this.configOffset(), width: r.pick([1, 2, 4, 4, 4]) };
      case 'config-write':
        return this.configWrite(this.device());
      case 'region-info':
        return { op: 'region-info', device: this.device(), index: r.chance(0.9) ? r.below(9) : r.pick([9, 10, 0xffff_ffff]) };
      case 'reset':
        return { op: 'reset', device: this.device() };
      case 'hot-reset-info':
        return { op: 'hot-reset-info', device: this.device() };
      case 'hot-reset':
        return { op: 'hot-reset', device: this.device() };
    }
  }
}

/** The program a seed names. The same seed gives the same program everywhere. */
export function generateProgram(seed: number, options: GenerateOptions = {}): FuzzProgram {
  const rnd = new Random(seed);
  const gen = new Generator(rnd, options.pageSize ?? 4096, options.device);
  const ops: FuzzOp[] = rnd.chance(0.85) ? gen.preamble() : [];
  const length = options.length ?? 40;
  for (let i = 0; i < length; i++) ops.push(gen.next());
  return { seed, ops };
}
