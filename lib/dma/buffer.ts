/**
 * DMA buffers: page-aligned memory the program reads and writes through an ArrayBuffer and a
 * device reads and writes by DMA. A buffer is mapped into a DmaSpace (an IOAS or a legacy
 * container) at allocation; on noiommu its physical runs are looked up once, then
 * `physicalAddress(offset)` is a binary search with no syscall.
 */
import type { Mapping, UserVa } from '../sys/kernel';
import { VfioError } from '../sys/errors';
import {
  MAP_ANONYMOUS,
  MAP_HUGETLB,
  MAP_HUGE_1GB,
  MAP_HUGE_2MB,
  MAP_PRIVATE,
  PROT_READ,
  PROT_WRITE,
  type HugePageSize,
} from '../sys/constants';
import { Resource } from '../support/resource';
import { formatBytes, isPinningFailure, memlockHint } from '../support/hints';
import type { BufferSegment, DmaAttachment, DmaMapOptions, DmaSpace } from './dma-space';
import { checkBoolean, checkChoice, checkSize, checkU64 } from '../support/arguments';
import type { BusAddr, Iova, PhysAddr } from '../sys/addresses';
import type { PhysicalRun } from '../ioctl/iommufd-ioctls';

/**
 * Options of `DmaBuffer.allocate` (and `device.allocateDma`, which fills in `space`).
 *
 * @category DMA
 */
export interface DmaAllocateOptions extends DmaMapOptions {
  /** Where to map the buffer for devices: an Ioas, or what openDevice set up (`device.dmaSpace`). */
  readonly space: DmaSpace;
  /** Back the buffer with huge pages (true means 2 MiB). The size is rounded up to whole huge pages. */
  readonly hugePage?: boolean | HugePageSize;
  /** When no huge page is available: throw (default) or use ordinary pages. */
  readonly hugePageFallback?: 'error' | 'small-pages';
  /** mlock the memory (the legacy pagemap path always locks: unlocked pages may move). */
  readonly locked?: boolean;
}

const HUGE_BYTES: Record<HugePageSize, bigint> = { '2M': 2n << 20n, '1G': 1n << 30n };
const HUGE_FLAGS: Record<HugePageSize, number> = { '2M': MAP_HUGE_2MB, '1G': MAP_HUGE_1GB };

/**
 * Memory shared between the program (as an ArrayBuffer) and a device (by DMA). Allocate with
 * `device.allocateDma(size)` or `DmaBuffer.allocate(size, { space })`; give the device
 * `dmaAddress(offset)`; close it (or its owner) to unmap and free it. Keep the DmaBuffer itself
 * referenced while using its `bytes`: a dropped buffer is eventually freed by the garbage
 * collector, which detaches the ArrayBuffer (accesses then fail instead of touching freed memory).
 */
/**
 * Bytes of a buffer the device can address contiguously, and the address it uses for the first.
 *
 * @category DMA
 */
export interface BusRun {
  /** Offset of the run in the buffer. */
  readonly offset: bigint;
  /** Physical address (noiommu) or IOVA (IOMMU) of the run's first byte. */
  readonly address: BusAddr;
  /** Bytes the run covers, contiguous on the bus: one DMA descriptor can describe it. */
  readonly length: bigint;
}

export class DmaBuffer extends Resource {
  private view: Uint8Array | undefined;

  private constructor(
    private readonly memory: Mapping,
    private readonly attachment: DmaAttachment,
    /** The page size backing the buffer (a huge page size when huge pages were used). */
    readonly pageSize: bigint,
    space: DmaSpace,
  ) {
    super(space.kernel, `DMA buffer of ${formatBytes(memory.length)} at 0x${memory.address.toString(16)}`);
    const kernel = space.kernel;
    this.armSafetyNet(() => {
      try {
        attachment.detach();
      } finally {
        kernel.munmap(memory);
      }
    });
  }

  /**
   * Allocates `size` bytes (rounded up to whole pages), maps them for DMA and, on noiommu, looks
   * up their physical runs.
   */
  static allocate(size: bigint | number, options: DmaAllocateOptions): DmaBuffer {
    return DmaBuffer.create(size, options, false);
  }

  private static create(size: bigint | number, options: DmaAllocateOptions, asyncLookup: boolean): DmaBuffer {
    if (typeof options !== 'object' || options === null) throw new TypeError('DmaBuffer.allocate: options must be an object with a space');
    const { space } = options;
    if (typeof space !== 'object' || space === null || typeof space.attachDma !== 'function') {
      throw new TypeError('DmaBuffer.allocate: options.space must be a DMA space (an Ioas, or device.dmaSpace)');
    }
    const kernel = space.kernel;
    if ((typeof size === 'bigint' && size <= 0n) || (typeof size === 'number' && size <= 0)) {
      throw new RangeError(`DmaBuffer.allocate: size must be positive, got ${size}`);
    }
    const requested = checkSize(size, 'DmaBuffer.allocate', 'size', 1n);
    if (options.hugePage !== undefined && options.hugePage !== false && options.hugePage !== true)
      checkChoice(options.hugePage, 'DmaBuffer.allocate', 'options.hugePage', Object.keys(HUGE_BYTES) as HugePageSize[]);
    if (options.hugePageFallback !== undefined)
      checkChoice(options.hugePageFallback, 'DmaBuffer.allocate', 'options.hugePageFallback', ['error', 'small-pages']);
    if (options.locked !== undefined) checkBoolean(options.locked, 'DmaBuffer.allocate', 'options.locked');
    if (options.iova !== undefined) checkU64(options.iova, 'DmaBuffer.allocate', 'options.iova');
    if (options.readable !== undefined) checkBoolean(options.readable, 'DmaBuffer.allocate', 'options.readable');
    if (options.writable !== undefined) checkBoolean(options.writable, 'DmaBuffer.allocate', 'options.writable');
    const huge: HugePageSize | undefined = options.hugePage === true ? '2M' : options.hugePage || undefined;
    let pageSize = huge ? HUGE_BYTES[huge] : BigInt(kernel.pageSize);
    let memory: Mapping;
    try {
      memory = mapAnonymous(requested, pageSize, huge);
    } catch (e) {
      if (!huge || options.hugePageFallback !== 'small-pages') {
        throw VfioError.wrap(
          e,
          huge
            ? {
                context: `allocating ${formatBytes(roundUp(requested, pageSize))} of ${huge} huge pages`,
                hint: `no free ${huge} huge pages: reserve some (e.g. /sys/kernel/mm/hugepages/hugepages-${huge === '2M' ? '2048kB' : '1048576kB'}/nr_hugepages) or pass hugePageFallback: 'small-pages'`,
              }
            : { context: `allocating ${formatBytes(requested)} for DMA` },
        );
      }
      pageSize = BigInt(kernel.pageSize);
      memory = mapAnonymous(requested, pageSize, undefined);
    }
    function mapAnonymous(bytes: bigint, page: bigint, hugeSize: HugePageSize | undefined): Mapping {
      const flags = MAP_PRIVATE | MAP_ANONYMOUS | (hugeSize ? MAP_HUGETLB | HUGE_FLAGS[hugeSize] : 0);
      return kernel.mmap(-1, roundUp(bytes, page), PROT_READ | PROT_WRITE, flags, 0n);
    }
    let attachment: DmaAttachment;
    try {
      if (options.locked) {
        try {
          kernel.mlock(memory);
        } catch (e) {
          throw VfioError.wrap(e, {
            context: `locking ${formatBytes(memory.length)}`,
            ...(isPinningFailure(e) ? { hint: memlockHint(kernel, memory.length) } : {}),
          });
        }
      }
      attachment = space.attachDma(memory, options, asyncLookup);
    } catch (e) {
      kernel.munmap(memory);
      throw e;
    }
    return space.own(new DmaBuffer(memory, attachment, pageSize, space));
  }

  /**
   * `allocate`, for every space, including one whose physical addresses take a round trip to
   * another process (a device received from a broker on a noiommu host): resolves once the
   * buffer's bus addresses are known.
   */
  static async allocateAsync(size: bigint | number, options: DmaAllocateOptions): Promise<DmaBuffer> {
    const buffer = DmaBuffer.create(size, options, true);
    try {
      await buffer.attachment.resolveSegments?.();
    } catch (e) {
      buffer.close();
      throw e;
    }
    return buffer;
  }

  /** Bytes allocated (the requested size rounded up to whole pages). */
  get size(): bigint {
    return this.memory.length;
  }

  /** The buffer's address in this process. */
  get address(): UserVa {
    this.assertOpen('DmaBuffer.address');
    return this.memory.address;
  }

  /** The memory as an ArrayBuffer; detached once the buffer is closed. */
  get buffer(): ArrayBuffer {
    this.assertOpen('DmaBuffer.buffer');
    if (!this.memory.buffer) throw new Error('DMA memory has no ArrayBuffer view');
    return this.memory.buffer;
  }

  /** The whole buffer as bytes. */
  get bytes(): Uint8Array {
    this.assertOpen('DmaBuffer.bytes');
    this.view ??= new Uint8Array(this.buffer);
    return this.view;
  }

  /** The IOVA of the first byte (undefined on a legacy noiommu container, which has no IOVAs). */
  get iova(): Iova | undefined {
    this.assertOpen('DmaBuffer.iova');
    return this.attachment.iova;
  }

  /** 'physical' when devices need physical addresses (noiommu), 'iova' behind an IOMMU. */
  get addressing(): 'physical' | 'iova' {
    this.assertOpen('DmaBuffer.addressing');
    return this.attachment.addressing;
  }

  /** The physically contiguous runs of the buffer, in order (noiommu only). */
  segments(): readonly BufferSegment[] {
    this.assertOpen('DmaBuffer.segments');
    return this.attachment.physicalSegments();
  }

  /** The physical address of the byte at `offset` (noiommu only); no syscall after the first lookup. */
  physicalAddress(offset: bigint | number = 0n): PhysAddr {
    const { segment, within } = this.segmentAt(checkSize(offset, 'DmaBuffer.physicalAddress', 'offset'), 'DmaBuffer.physicalAddress');
    return (segment.phys + within) as PhysAddr;
  }

  /** The physical address at `offset` and how many bytes from there are physically contiguous. */
  physicalRun(offset: bigint | number = 0n): PhysicalRun {
    const { segment, within } = this.segmentAt(checkSize(offset, 'DmaBuffer.physicalRun', 'offset'), 'DmaBuffer.physicalRun');
    return { phys: (segment.phys + within) as PhysAddr, length: segment.length - within };
  }

  /** The address to give the device for the byte at `offset`: physical on noiommu, IOVA behind an IOMMU. */
  dmaAddress(offset: bigint | number = 0n): BusAddr {
    this.assertOpen('DmaBuffer.dmaAddress');
    const off = this.checkOffset(checkSize(offset, 'DmaBuffer.dmaAddress', 'offset'));
    if (this.attachment.addressing === 'physical') return this.physicalAddress(off) as bigint as BusAddr;
    const base = this.attachment.iova;
    if (base === undefined) throw new Error('DMA space gave neither IOVAs nor physical addresses');
    return (base + off) as BusAddr;
  }

  /**
   * The address to give the device for the byte at `offset` and how many bytes from there the
   * device may address contiguously: a physical run on noiommu, the rest of the buffer behind an
   * IOMMU (its IOVAs are contiguous). The same driver code builds descriptors in both modes.
   */
  busRun(offset: bigint | number = 0n): BusRun {
    this.assertOpen('DmaBuffer.busRun');
    const off = this.checkOffset(checkSize(offset, 'DmaBuffer.busRun', 'offset'));
    if (this.attachment.addressing === 'physical') {
      const { segment, within } = this.segmentAt(off, 'DmaBuffer.busRun');
      return { offset: off, address: (segment.phys + within) as bigint as BusAddr, length: segment.length - within };
    }
    return { offset: off, address: this.dmaAddress(off), length: this.memory.length - off };
  }

  /**
   * The bus-address runs covering `length` bytes from `offset` (default: to the end), in order:
   * what a scatter-gather list or a PRP list for that range is built from, in either mode.
   */
  busRuns(offset: bigint | number = 0n, length?: bigint | number): BusRun[] {
    this.assertOpen('DmaBuffer.busRuns');
    const start = this.checkOffset(checkSize(offset, 'DmaBuffer.busRuns', 'offset'));
    const size = length === undefined ? this.memory.length - start : checkSize(length, 'DmaBuffer.busRuns', 'length');
    if (start + size > this.memory.length) {
      throw new RangeError(`DmaBuffer.busRuns: ${size} bytes from offset ${start} pass the end of the ${this.memory.length}-byte buffer`);
    }
    const runs: BusRun[] = [];
    for (let at = start, left = size; left > 0n;) {
      const run = this.busRun(at);
      const take = run.length < left ? run.length : left;
      runs.push({ offset: at, address: run.address, length: take });
      at += take;
      left -= take;
    }
    return runs;
  }

  private checkOffset(offset: bigint): bigint {
    if (offset < 0n || offset >= this.memory.length) {
      throw new RangeError(`offset ${offset} is outside the ${this.memory.length}-byte DMA buffer`);
    }
    return offset;
  }

  private segmentAt(offset: bigint, operation: string): { segment: BufferSegment; within: bigint } {
    this.assertOpen(operation);
    this.checkOffset(offset);
    const segs = this.attachment.physicalSegments();
    let lo = 0;
    let hi = segs.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      const s = segs[mid]!;
      if (offset < s.offset) hi = mid - 1;
      else if (offset >= s.offset + s.length) lo = mid + 1;
      else return { segment: s, within: offset - s.offset };
    }
    throw VfioError.condition('ERR_VFIO_NO_SEGMENT', { check: `${operation}: no physical segment covers offset ${offset}` });
  }

  protected release(): void {
    this.view = undefined;
    try {
      this.attachment.detach();
    } finally {
      this.kernel.munmap(this.memory);
    }
  }
}

function roundUp(n: bigint, to: bigint): bigint {
  return ((n + to - 1n) / to) * to;
}
