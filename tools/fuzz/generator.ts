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
}

const MAP_PAGES = [1, 1, 1, 2, 3, 4, 8, 16, 17, 64, 256, 512] as const;
const CAPS = ['0x1', '0xfff', '0x1000', '0x1001', '0x3000', '0x10000', '0x200000', '0xffffffffffffffff', '0x0'] as const;

type OpName = FuzzOp['op'];
const WEIGHTS: Readonly<Record<OpName, number>> = {
  'map': 20, 'map-file': 4, 'option': 2, 'hw-info': 1, 'get-pa': 14, 'unmap': 8, 'unmap-span': 2, 'unmap-all': 2, 'unmap-range': 1, 'copy': 6,
  'ioas-alloc': 4, 'destroy': 4, 'iova-ranges': 4, 'allow-iovas': 2,
  'attach': 4, 'detach': 2, 'hwpt-alloc': 2, 'device-open': 1, 'device-close': 1, 'bind': 1,
  'irq-enable': 3, 'irq-disable': 2, 'irq-trigger': 4, 'irq-mask': 2,
};

class Generator {
  private ioas = 0;
  private hwpts = 0;
  private attaches = 0;
  private readonly areaPages: number[] = [];

  constructor(private readonly rnd: Random, private readonly pageSize: number) {}

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
      case 0: case 1: return hex(BigInt(r.below(32)) << 20n);
      case 2: return hex(BigInt(r.between(1, 64)) << 12n);
      case 3: return hex(0xfee0_0000n - (BigInt(r.below(3)) << 12n));
      case 4: return hex((1n << 39n) - (BigInt(r.between(1, 4)) << 21n));
      case 5: return hex(r.chance(0.5) ? 1n << 39n : 1n << 48n);
      case 6: return hex(0xffff_ffff_ffff_f000n);
      case 7: return hex((BigInt(r.below(16)) << 20n) + 0x800n);
      default: return hex(BigInt(r.below(8)) << 21n);
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
    return this.rnd.chance(0.5) ? 'intx' : 'msi';
  }

  preamble(): FuzzOp[] {
    this.ioas = 1;
    this.attaches = 1;
    return [
      { op: 'ioas-alloc' }, { op: 'device-open', device: 0 }, { op: 'bind', device: 0 },
      { op: 'attach', device: 0, target: { kind: 'ioas', slot: 0 } },
    ];
  }

  next(): FuzzOp {
    const r = this.rnd;
    const name = r.weighted(WEIGHTS);
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
          op: 'map', ioas: this.slot(this.ioas), userPage: Math.min(userPage, ARENA_PAGES - pages), pages, byteOffset, lengthAdjust,
          ...this.placement(0.35),
          readable: !r.chance(0.05), writable: !r.chance(0.15),
        };
      }
      case 'map-file': {
        const pages = r.pick(MAP_PAGES);
        const filePage = r.chance(0.4) ? r.below(ARENA_PAGES / 512) * 512 : r.below(ARENA_PAGES - pages + 1);
        this.areaPages.push(pages);
        return {
          op: 'map-file', ioas: this.slot(this.ioas), filePage: Math.min(filePage, ARENA_PAGES - pages), pages,
          ...this.placement(0.3), writable: !r.chance(0.15),
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
          op: 'copy', area, pageOffset, pages, dst: this.slot(this.ioas),
          ...this.placement(0.3), writable: !r.chance(0.2),
        };
      }
      case 'unmap':
        return {
          op: 'unmap', area: this.slot(this.areaPages.length),
          startPages: r.chance(0.75) ? 0 : r.pick([-16, -1, 1]), endPages: r.chance(0.75) ? 0 : r.pick([-1, 1, 16]),
        };
      case 'unmap-span':
        return { op: 'unmap-span', from: this.slot(this.areaPages.length), to: this.slot(this.areaPages.length) };
      case 'unmap-all':
        return { op: 'unmap-all', ioas: this.slot(this.ioas) };
      case 'unmap-range': {
        const iova = this.fixedIova();
        return { op: 'unmap-range', ioas: this.slot(this.ioas), iova, length: r.pick(['0x0', '0x1000', '0x200000', '0x10000000', '0xffffffffffffffff']) };
      }
      case 'get-pa': {
        const area = this.slot(this.areaPages.length);
        const bytes = (this.areaPages[area] ?? 1) * this.pageSize;
        const where = r.below(10);
        const offset = where < 3 ? 0 : where < 6 ? r.below(bytes / this.pageSize) * this.pageSize
          : where < 8 ? r.below(bytes) : where < 9 ? bytes - 1 : bytes;
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
          [{ start: '0x200000', last: '0x3fffff' }, { start: '0x1000000', last: '0x1ffffff' }],
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
      case 'irq-enable':
        return { op: 'irq-enable', device: this.device(), kind: this.irqKind(), count: r.chance(0.85) ? 1 : r.pick([0, 2]) };
      case 'irq-disable':
        return { op: 'irq-disable', device: this.device(), kind: this.irqKind() };
      case 'irq-trigger':
        return { op: 'irq-trigger', device: this.device(), kind: this.irqKind(), vector: r.chance(0.9) ? 0 : 1 };
      case 'irq-mask':
        return { op: 'irq-mask', device: this.device(), kind: this.irqKind(), unmask: r.chance(0.5) };
    }
  }
}

/** The program a seed names. The same seed gives the same program everywhere. */
export function generateProgram(seed: number, options: GenerateOptions = {}): FuzzProgram {
  const rnd = new Random(seed);
  const gen = new Generator(rnd, options.pageSize ?? 4096);
  const ops: FuzzOp[] = rnd.chance(0.85) ? gen.preamble() : [];
  const length = options.length ?? 40;
  for (let i = 0; i < length; i++) ops.push(gen.next());
  return { seed, ops };
}
