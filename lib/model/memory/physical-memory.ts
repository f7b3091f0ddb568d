/**
 * The simulated machine's RAM: page frames, who holds them, and where their bytes live.
 *
 * A frame has no storage of its own. Its bytes are a page-sized window into some ArrayBuffer —
 * normally the ArrayBuffer of the process mapping it belongs to — so a device model doing DMA to a
 * frame writes exactly the bytes the driver sees through its Mapping. When the mapping goes away
 * while something still holds the frame (iommufd pinned it, a memfd owns it), its bytes move to a
 * parked buffer and the frame is re-pointed there.
 *
 * Frames are reference counted (mapping + pins + file ownership); a frame whose count drops to
 * zero goes back to its pool. Which frame the allocator hands out next is decided by a seeded
 * PRNG according to the profile's fragmentation, so runs are reproducible.
 */
import type { MemoryConfig } from '../profile';
import { Prng } from './prng';
import type { HugePageSize } from '../../sys/constants';

/** What each physical frame is used for, one byte per frame. */
const FrameKind = {
  /** A free small frame (in the runs not handed out yet, or on the freed stack). */
  FREE: 0,
  /** A small frame in use. */
  SMALL: 1,
  /** Part of a huge page in use. */
  HUGE: 2,
  /** Part of a free huge page sitting in its pool. */
  POOL: 3,
  /** Not allocatable: firmware and kernel memory, or no RAM at all (the PCI hole). */
  RESERVED: 4,
} as const;

/**
 * A physical access that did not hit a live RAM frame (what a device would see as a bus error).
 *
 * @category Model
 */
export class PhysicalAccessFault extends Error {
  /** Always 'no-memory', matching DmaFault's reason for the same case. */
  readonly reason = 'no-memory' as const;

  constructor(
    /** The physical address accessed. */
    readonly address: bigint,
    /** Bytes accessed. */
    readonly length: number,
    /** Read from or write to memory. */
    readonly direction: 'read' | 'write',
  ) {
    super(`physical ${direction} of ${length} bytes at 0x${address.toString(16)}: no RAM frame in use there`);
    this.name = 'PhysicalAccessFault';
  }
}

/**
 * Thrown when the allocator has no frame left: the caller turns it into ENOMEM.
 *
 * @category Model
 */
export class OutOfFrames extends Error {
  constructor(what: string) {
    super(`model physical memory exhausted: ${what}`);
    this.name = 'OutOfFrames';
  }
}

export const HUGE_PAGE_BYTES: Readonly<Record<HugePageSize, number>> = { '2M': 2 << 20, '1G': 1 << 30 };

/**
 * A RAM range of the machine's memory map, [start, end) in bytes.
 *
 * @category Model
 */
export interface RamRange {
  readonly start: bigint;
  readonly end: bigint;
}

/** Frames below this are the firmware's and the kernel image's: never handed to user space. */
const RESERVED_LOW_BYTES = 16 << 20;

export class PhysicalMemory {
  readonly pageSize: number;
  readonly pageShift: number;
  readonly ram: readonly RamRange[];
  /** Highest frame number + 1. */
  readonly frameCount: number;

  /**
   * Where each frame's bytes are: an index into `buffers` (0 = none) and a byte offset. Buffers
   * are registered while some frame points into them, so a booted machine costs typed arrays only.
   */
  private readonly holderOf: Int32Array;
  private readonly offsets: Float64Array;
  private readonly buffers: (ArrayBuffer | undefined)[] = [undefined];
  private readonly bufferUse: number[] = [0];
  private readonly bufferIds = new WeakMap<ArrayBuffer, number>();
  private readonly freeBufferIds: number[] = [];
  private readonly refs: Uint32Array;
  private readonly kinds: Uint8Array;
  /** Frames never handed out yet: shuffled runs, consumed from index `runIndex`, `runUsed` in. */
  private readonly runStarts: Int32Array;
  private readonly runLens: Int32Array;
  private runIndex = 0;
  private runUsed = 0;
  /** Frames freed again: reused first, most recently freed first (like per-CPU page lists). */
  private freeStack: Int32Array;
  private freeTop = 0;
  private freeCount: number;
  /** Free huge pages per size: base frame numbers. */
  private readonly hugeFree: Record<HugePageSize, number[]> = { '2M': [], '1G': [] };
  private readonly hugeTotal: Record<HugePageSize, number> = { '2M': 0, '1G': 0 };
  /** For huge page frames: base frame of the huge page and its size. */
  private readonly hugeOf = new Map<number, { base: number; size: HugePageSize; live: number }>();

  constructor(config: MemoryConfig) {
    this.pageSize = config.pageSize;
    this.pageShift = Math.log2(config.pageSize);
    this.ram = machineRamLayout(config.size);
    const top = this.ram[this.ram.length - 1]!.end;
    this.frameCount = Number(top >> BigInt(this.pageShift));
    this.holderOf = new Int32Array(this.frameCount);
    this.offsets = new Float64Array(this.frameCount);
    this.refs = new Uint32Array(this.frameCount);
    this.kinds = new Uint8Array(this.frameCount);

    const prng = new Prng(config.seed ^ 0x9e3779b9);
    // Usable frame ranges, then carve the huge page pools from the top, 1G first (most aligned).
    let ranges = this.ram
      .map((r) => ({
        start: Math.max(Number(r.start >> BigInt(this.pageShift)), RESERVED_LOW_BYTES / this.pageSize),
        end: Number(r.end >> BigInt(this.pageShift)),
      }))
      .filter((r) => r.end > r.start);
    this.kinds.fill(FrameKind.RESERVED);
    for (const r of ranges) this.kinds.fill(FrameKind.FREE, r.start, r.end);
    for (const size of ['1G', '2M'] as const) {
      const pages = HUGE_PAGE_BYTES[size] / this.pageSize;
      let wanted = config.hugepages[size];
      for (let i = ranges.length - 1; i >= 0 && wanted > 0; i--) {
        const r = ranges[i]!;
        let end = Math.floor(r.end / pages) * pages;
        while (wanted > 0 && end - pages >= r.start) {
          this.hugeFree[size].push(end - pages);
          end -= pages;
          wanted--;
        }
        // What lies above the carved pool stays usable as small frames.
        const tail = { start: Math.floor(r.end / pages) * pages, end: r.end };
        ranges.splice(i, 1, { start: r.start, end }, ...(tail.end > tail.start ? [tail] : []));
      }
      if (wanted > 0) throw new RangeError(`profile asks for more ${size} huge pages than the machine has RAM for`);
      this.hugeTotal[size] = this.hugeFree[size].length;
      for (const b of this.hugeFree[size]) this.kinds.fill(FrameKind.POOL, b, b + pages);
      // Lowest addresses first out of the pool, as the kernel's free list order tends to give.
      this.hugeFree[size].reverse();
    }
    ranges = ranges.filter((r) => r.end > r.start);

    // Split the usable frames into runs whose mean length falls with fragmentation, shuffle the
    // runs, and hand each run out in ascending order. Runs are kept in typed arrays and consumed
    // lazily, so booting a machine stays cheap however fragmented it is.
    const meanRun = Math.max(1, Math.round(2 ** ((1 - config.fragmentation) * 9)));
    let total = 0;
    for (const r of ranges) total += r.end - r.start;
    const starts = new Int32Array(total);
    const lens = new Int32Array(total);
    let count = 0;
    for (const r of ranges) {
      let at = r.start;
      while (at < r.end) {
        const len = meanRun === 1 ? 1 : 1 + Math.floor(-Math.log(1 - prng.next()) * (meanRun - 1));
        const end = Math.min(r.end, at + len);
        starts[count] = at;
        lens[count] = end - at;
        count++;
        at = end;
      }
    }
    for (let i = count - 1; i > 0; i--) {
      const j = prng.below(i + 1);
      const s0 = starts[i]!;
      starts[i] = starts[j]!;
      starts[j] = s0;
      const l0 = lens[i]!;
      lens[i] = lens[j]!;
      lens[j] = l0;
    }
    this.runStarts = starts.subarray(0, count);
    this.runLens = lens.subarray(0, count);
    this.freeCount = total;
    this.freeStack = new Int32Array(1024);
  }

  /** Free small frames left. */
  get freeFrames(): number {
    return this.freeCount;
  }

  hugePagesFree(size: HugePageSize): number {
    return this.hugeFree[size].length;
  }

  hugePagesTotal(size: HugePageSize): number {
    return this.hugeTotal[size];
  }

  /** Whether `pa` is inside the machine's RAM map (allocated or not). */
  isRam(pa: bigint): boolean {
    return this.ram.some((r) => pa >= r.start && pa < r.end);
  }

  /**
   * Allocates `count` small frames with one reference each. Throws OutOfFrames (nothing taken)
   * when not enough are free.
   */
  allocateFrames(count: number): number[] {
    if (count > this.freeCount) throw new OutOfFrames(`${count} pages wanted, ${this.freeCount} free`);
    const out = new Array<number>(count);
    for (let i = 0; i < count; i++) {
      let pfn: number;
      do {
        if (this.freeTop > 0) pfn = this.freeStack[--this.freeTop]!;
        else {
          pfn = this.runStarts[this.runIndex]! + this.runUsed;
          if (++this.runUsed === this.runLens[this.runIndex]) {
            this.runIndex++;
            this.runUsed = 0;
          }
        }
        // Frames a runtime huge page reservation took stay listed; skip them.
      } while (this.kinds[pfn] !== FrameKind.FREE);
      this.kinds[pfn] = FrameKind.SMALL;
      this.refs[pfn] = 1;
      out[i] = pfn;
    }
    this.freeCount -= count;
    return out;
  }

  /**
   * Takes one huge page from its pool: returns the frame numbers of its small pages (contiguous),
   * each with one reference.
   */
  allocateHugePage(size: HugePageSize): number[] {
    const base = this.hugeFree[size].pop();
    if (base === undefined) throw new OutOfFrames(`no free ${size} huge page`);
    const pages = HUGE_PAGE_BYTES[size] / this.pageSize;
    const info = { base, size, live: pages };
    const out = new Array<number>(pages);
    for (let i = 0; i < pages; i++) {
      const pfn = base + i;
      this.kinds[pfn] = FrameKind.HUGE;
      this.refs[pfn] = 1;
      this.hugeOf.set(pfn, info);
      out[i] = pfn;
    }
    return out;
  }

  /** Adds a reference (a pin, a second mapping). */
  get(pfn: number): void {
    if (!this.isLive(pfn)) throw new Error(`model: get of free frame ${pfn}`);
    this.refs[pfn]!++;
  }

  /** Drops a reference; the last one frees the frame (and forgets where its bytes were). */
  put(pfn: number): void {
    if (this.refs[pfn] === 0) throw new Error(`model: put of unreferenced frame ${pfn}`);
    if (--this.refs[pfn]! > 0) return;
    this.unbind(pfn);
    if (this.kinds[pfn] === FrameKind.SMALL) {
      this.kinds[pfn] = FrameKind.FREE;
      this.pushFree(pfn);
      this.freeCount++;
      return;
    }
    const info = this.hugeOf.get(pfn)!;
    this.hugeOf.delete(pfn);
    this.kinds[pfn] = FrameKind.POOL;
    if (--info.live === 0) this.hugeFree[info.size].push(info.base);
  }

  /** Puts a frame on the free stack, growing it when full. */
  private pushFree(pfn: number): void {
    if (this.freeTop === this.freeStack.length) {
      const grown = new Int32Array(this.freeStack.length * 2);
      grown.set(this.freeStack);
      this.freeStack = grown;
    }
    this.freeStack[this.freeTop++] = pfn;
  }

  /**
   * Writing nr_hugepages (set_max_huge_pages): grows the pool with free, naturally aligned runs
   * of small frames (highest first) as far as they exist — a fragmented machine may give fewer
   * than asked, as on Linux — or shrinks it by giving free huge pages back as small frames.
   * Returns the new pool size.
   */
  setHugePages(size: HugePageSize, target: number): number {
    const pages = HUGE_PAGE_BYTES[size] / this.pageSize;
    let candidate = Math.floor(this.frameCount / pages) * pages - pages;
    const lowest = RESERVED_LOW_BYTES / this.pageSize;
    while (this.hugeTotal[size] < target && candidate >= lowest) {
      let free = true;
      for (let pfn = candidate + pages - 1; pfn >= candidate; pfn--) {
        if (this.kinds[pfn] !== FrameKind.FREE) {
          free = false;
          // No block containing this frame can be taken: jump below it.
          candidate = Math.floor(pfn / pages) * pages;
          break;
        }
      }
      if (free) {
        this.kinds.fill(FrameKind.POOL, candidate, candidate + pages);
        this.freeCount -= pages;
        this.hugeFree[size].push(candidate);
        this.hugeTotal[size]++;
      }
      candidate -= pages;
    }
    while (this.hugeTotal[size] > target && this.hugeFree[size].length > 0) {
      const base = this.hugeFree[size].pop()!;
      for (let pfn = base; pfn < base + pages; pfn++) {
        this.kinds[pfn] = FrameKind.FREE;
        this.pushFree(pfn);
      }
      this.freeCount += pages;
      this.hugeTotal[size]--;
    }
    return this.hugeTotal[size];
  }

  refCount(pfn: number): number {
    return this.refs[pfn] ?? 0;
  }

  isLive(pfn: number): boolean {
    const kind = pfn >= 0 && pfn < this.frameCount ? this.kinds[pfn] : FrameKind.FREE;
    return kind === FrameKind.SMALL || kind === FrameKind.HUGE;
  }

  /** Points a frame at the bytes that back it. */
  bind(pfn: number, buffer: ArrayBuffer, offset: number): void {
    let id = this.bufferIds.get(buffer);
    if (id === undefined) {
      id = this.freeBufferIds.pop() ?? this.buffers.length;
      this.buffers[id] = buffer;
      this.bufferUse[id] = 0;
      this.bufferIds.set(buffer, id);
    }
    this.unbind(pfn);
    this.holderOf[pfn] = id;
    this.bufferUse[id]!++;
    this.offsets[pfn] = offset;
  }

  private unbind(pfn: number): void {
    const old = this.holderOf[pfn]!;
    if (old === 0) return;
    this.holderOf[pfn] = 0;
    this.offsets[pfn] = 0;
    if (--this.bufferUse[old]! === 0) {
      this.bufferIds.delete(this.buffers[old]!);
      this.buffers[old] = undefined;
      this.freeBufferIds.push(old);
    }
  }

  /** Where a frame's bytes are, or undefined for a free frame. */
  locate(pfn: number): { buffer: ArrayBuffer; offset: number } | undefined {
    const buffer = this.buffers[this.holderOf[pfn] ?? 0];
    return buffer ? { buffer, offset: this.offsets[pfn]! } : undefined;
  }

  /**
   * Reads physical memory as a bus master would. Every byte must be in a live frame, otherwise
   * PhysicalAccessFault (nothing is read).
   */
  dmaRead(pa: bigint, length: number): Uint8Array {
    const out = new Uint8Array(length);
    this.walk(pa, length, 'read', (buf, off, pos, n) => out.set(new Uint8Array(buf, off, n), pos));
    return out;
  }

  /** Writes physical memory as a bus master would; all-or-nothing like dmaRead. */
  dmaWrite(pa: bigint, bytes: Uint8Array): void {
    this.walk(pa, bytes.length, 'write', (buf, off, pos, n) => new Uint8Array(buf, off, n).set(bytes.subarray(pos, pos + n)));
  }

  private walk(
    pa: bigint,
    length: number,
    direction: 'read' | 'write',
    each: (buf: ArrayBuffer, off: number, pos: number, n: number) => void,
  ): void {
    if (pa < 0n || length < 0) throw new RangeError('negative physical address or length');
    if (length === 0) return;
    const ps = this.pageSize;
    const pieces: [ArrayBuffer, number, number, number][] = [];
    let pos = 0;
    let addr = pa;
    while (pos < length) {
      const pfnBig = addr >> BigInt(this.pageShift);
      const pfn = pfnBig < BigInt(this.frameCount) ? Number(pfnBig) : -1;
      const buffer = pfn >= 0 ? this.buffers[this.holderOf[pfn]!] : undefined;
      if (!buffer || buffer.byteLength === 0) throw new PhysicalAccessFault(pa, length, direction);
      const inPage = Number(addr & BigInt(ps - 1));
      const n = Math.min(ps - inPage, length - pos);
      pieces.push([buffer, this.offsets[pfn]! + inPage, pos, n]);
      pos += n;
      addr += BigInt(n);
    }
    for (const [b, o, p, n] of pieces) each(b, o, p, n);
  }
}

/**
 * The RAM map of a q35 machine with `size` bytes: everything below 4 GiB when it fits under the
 * PCI hole (2.75 GiB), otherwise 2 GiB low and the rest from 4 GiB up — as QEMU lays it out.
 *
 * @category Model
 */
export function machineRamLayout(size: bigint): RamRange[] {
  const LOW_MAX = 0xb000_0000n;
  if (size <= LOW_MAX) return [{ start: 0n, end: size }];
  const low = 0x8000_0000n;
  return [
    { start: 0n, end: low },
    { start: 1n << 32n, end: (1n << 32n) + (size - low) },
  ];
}
