/**
 * An I/O address space (IOMMU_IOAS_ALLOC): the IOVA → memory map that attached devices DMA
 * through. On a real IOMMU the hardware translates IOVAs; on a Linux 7.3 noiommu host nothing
 * translates, the IOAS only pins the pages and IOMMU_IOAS_NOIOMMU_GET_PA reveals the physical
 * addresses the device must be given.
 */
import type { Mapping, UserVa } from '../sys/kernel';
import { VfioError } from '../sys/errors';
import { U64_MAX } from '../uapi/codec';
import type { Resource } from '../support/resource';
import { IommufdResource } from './iommufd-resource';
import { checkBoolean, checkInteger, checkU64 } from '../support/arguments';
import type { PhysicalRun } from '../ioctl/iommufd-ioctls';
import type { PhysicalSegmentTable } from '../ioctl/physical-segment-table';
import * as io from '../ioctl/iommufd-ioctls';
import { isPinningFailure, memlockHint } from '../support/hints';
import type { IommufdHandle, PageTableTarget } from './iommufd-handle';
import type { BufferSegment, DmaAttachment, DmaMapOptions, DmaSpace } from '../dma/dma-space';
import { type Iova, type IovaRange, type PhysicalSegment } from '../sys/addresses';

/**
 * The memory to map: a mapping from `kernel.mmap`, a DmaBuffer (to share it with the devices of
 * another IOAS), or an address range in this process.
 *
 * @category IOMMU
 */
export type MapSource =
  | Mapping
  | {
      /** The buffer's address (a DmaBuffer). */
      readonly address: UserVa;
      /** The buffer's size. */
      readonly size: bigint;
    }
  | {
      /** Start address (page aligned). */
      readonly va: UserVa;
      /** Bytes (a whole number of pages). */
      readonly length: bigint;
    };

/**
 * Options of `Ioas.map`, `mapFile` and `copy`.
 *
 * @category IOMMU
 */
export interface IoasMapOptions {
  /** A fixed IOVA; by default the kernel chooses one. */
  readonly iova?: Iova;
  /** Devices may read (default true). */
  readonly readable?: boolean;
  /** Devices may write (default true). */
  readonly writable?: boolean;
}

/**
 * How devices attached to this IOAS address memory; known once a device is attached.
 *
 * @category IOMMU
 */
export type Addressing = 'physical' | 'iova' | 'unknown';

/**
 * One area mapped into an IOAS; `close()` unmaps it.
 *
 * @category IOMMU
 */
export class IoasMapping extends IommufdResource {
  constructor(
    private readonly ioas: Ioas,
    /** First IOVA of the area. */
    readonly iova: Iova,
    /** Bytes mapped. */
    readonly length: bigint,
  ) {
    const { handle, id } = ioas;
    super(handle, `IOAS ${id} mapping at IOVA 0x${iova.toString(16)}`, ioas, () =>
      io.ioasUnmap(handle.kernel, handle.file.fd, id, { iova, length }),
    );
  }

  /** Physically contiguous runs of this area (noiommu only). */
  segments(): PhysicalSegment[] {
    this.assertOpen('IoasMapping.segments');
    return this.ioas.segments(this.iova, this.length);
  }

  /** Forgets the area after the kernel already removed it (an explicit Ioas.unmap). */
  forget(): void {
    this.markReleased();
  }
}

/**
 * An I/O address space of an iommufd (`iommufd.ioas()`).
 *
 * @category IOMMU
 */
export class Ioas extends IommufdResource implements DmaSpace, PageTableTarget {
  private readonly attached = new Map<number, 'physical' | 'iova'>();
  private readonly dmaAttachments = new Set<IoasDmaAttachment>();
  /** The GET_PA struct of this IOAS, reused by every lookup (getPhysicalAddress, segments). */
  private readonly physicalLookup = new io.PhysicalAddressLookup();

  private constructor(
    handle: IommufdHandle,
    /** The object id in the iommufd. */
    readonly id: number,
  ) {
    super(handle, `IOAS ${id}`, undefined, () => io.iommuDestroy(handle.kernel, handle.file.fd, id));
  }

  /** True once IOMMU_DESTROY of this IOAS succeeded (its mappings went with it). */
  get closedInKernel(): boolean {
    return this.teardown.destroyed;
  }

  /** @internal Use `Iommufd.ioas()`. */
  static allocate(handle: IommufdHandle): Ioas {
    return new Ioas(handle, io.ioasAlloc(handle.kernel, handle.file.fd));
  }

  private get fd(): number {
    return this.handle.file.fd;
  }

  /**
   * How devices see this IOAS: 'physical' once a noiommu device is attached (give the device
   * physical addresses), 'iova' once an IOMMU-translated device is attached.
   */
  get addressing(): Addressing {
    const kinds = new Set(this.attached.values());
    if (kinds.size === 0) return 'unknown';
    return kinds.has('physical') ? 'physical' : 'iova';
  }

  /**
   * Pins and maps memory. The source must be memory the kernel can resolve (a `kernel.mmap`
   * mapping or an address range of this process). Returns the mapping; close it to unmap.
   */
  map(source: MapSource, options: IoasMapOptions = {}): IoasMapping {
    this.assertOpen('Ioas.map');
    const { va, length } = mapSourceRange(source, 'Ioas.map');
    checkMapOptions(options, 'Ioas.map');
    let at: Iova;
    try {
      at = io.ioasMap(this.kernel, this.fd, {
        ioasId: this.id,
        userVa: va,
        length,
        readable: options.readable ?? true,
        writable: options.writable ?? true,
        ...(options.iova !== undefined ? { iova: options.iova } : {}),
      });
    } catch (e) {
      throw VfioError.wrap(e, {
        context: `mapping ${length} bytes into IOAS ${this.id}`,
        ...(isPinningFailure(e) ? { hint: memlockHint(this.kernel, length) } : {}),
      });
    }
    return this.adopt(new IoasMapping(this, at, length));
  }

  /** Maps `length` bytes of a file (a memfd) from `offset` (IOMMU_IOAS_MAP_FILE). */
  mapFile(fileFd: number, offset: bigint, length: bigint, options: IoasMapOptions = {}): IoasMapping {
    this.assertOpen('Ioas.mapFile');
    checkInteger(fileFd, 'Ioas.mapFile', 'fileFd', 0, 0x7fff_ffff);
    checkU64(offset, 'Ioas.mapFile', 'offset');
    checkU64(length, 'Ioas.mapFile', 'length');
    checkMapOptions(options, 'Ioas.mapFile');
    let at: Iova;
    try {
      at = io.ioasMapFile(this.kernel, this.fd, {
        ioasId: this.id,
        fileFd,
        start: offset,
        length,
        readable: options.readable ?? true,
        writable: options.writable ?? true,
        ...(options.iova !== undefined ? { iova: options.iova } : {}),
      });
    } catch (e) {
      throw VfioError.wrap(e, {
        context: `mapping ${length} bytes of fd ${fileFd} into IOAS ${this.id}`,
        ...(isPinningFailure(e) ? { hint: memlockHint(this.kernel, length) } : {}),
      });
    }
    return this.adopt(new IoasMapping(this, at, length));
  }

  /**
   * Maps into this IOAS the pages already pinned at `from.iova` in another (or the same) IOAS of
   * the same iommufd, without pinning them again (IOMMU_IOAS_COPY).
   */
  copy(from: { readonly ioas: Ioas; readonly iova: Iova; readonly length: bigint }, options: IoasMapOptions = {}): IoasMapping {
    this.assertOpen('Ioas.copy');
    if (!(from.ioas instanceof Ioas)) throw new TypeError('Ioas.copy: from.ioas must be an Ioas');
    if (from.ioas.handle !== this.handle) throw new TypeError('Ioas.copy: both IOAS must belong to the same iommufd');
    checkU64(from.iova, 'Ioas.copy', 'from.iova');
    checkU64(from.length, 'Ioas.copy', 'from.length');
    checkMapOptions(options, 'Ioas.copy');
    const at = io.ioasCopy(this.kernel, this.fd, {
      srcIoasId: from.ioas.id,
      srcIova: from.iova,
      dstIoasId: this.id,
      length: from.length,
      readable: options.readable ?? true,
      writable: options.writable ?? true,
      ...(options.iova !== undefined ? { dstIova: options.iova } : {}),
    });
    return this.adopt(new IoasMapping(this, at, from.length));
  }

  /**
   * Unmaps every area inside [iova, iova+length) (everything without a range); returns the bytes
   * unmapped. Areas that a handle owns are forgotten by their handle; areas under a live
   * DmaBuffer are refused with EBUSY, because the buffer's users may still hand its addresses to
   * a device: close the DmaBuffer instead. A range that covers only part of a handle's area is
   * refused before the kernel acts (ERR_VFIO_PARTIAL_UNMAP): the kernel cannot split an area, and
   * it would unmap the areas before that one and then fail, leaving their handles behind.
   *
   * When the kernel fails anyway (an area that no handle owns is split, one is busy), it may have
   * unmapped the areas before the one it stopped at. Before the error is thrown, each handle of an
   * area in the range asks the kernel whether its area still exists, and is forgotten if not. So
   * no handle outlives its area, and none can later unmap an area that reused its IOVA.
   */
  unmap(range?: { readonly iova: Iova; readonly length: bigint }): bigint {
    this.assertOpen('Ioas.unmap');
    if (range !== undefined) {
      checkU64(range.iova, 'Ioas.unmap', 'range.iova');
      checkU64(range.length, 'Ioas.unmap', 'range.length');
      if (range.iova + range.length > U64_MAX + 1n)
        throw new RangeError(`Ioas.unmap: range 0x${range.iova.toString(16)}+0x${range.length.toString(16)} ends past 2^64`);
    }
    const start = range?.iova ?? 0n;
    const end = range ? range.iova + range.length : U64_MAX + 1n;
    const overlaps = (m: { iova: Iova | undefined; length: bigint }) => m.iova !== undefined && m.iova < end && m.iova + m.length > start;
    const busy = [...this.dmaAttachments].find((a) => overlaps(a));
    if (busy) {
      throw VfioError.condition('ERR_VFIO_IN_USE', {
        check: `IOVA 0x${busy.iova!.toString(16)}..+0x${busy.length.toString(16)} of IOAS ${this.id} belongs to a DmaBuffer`,
        hint: 'close the DmaBuffer to unmap it; a device may still be using its addresses',
      });
    }
    const covered = this.mappings().filter(overlaps);
    const split = covered.find((m) => m.iova < start || m.iova + m.length > end);
    if (split) {
      throw VfioError.condition('ERR_VFIO_PARTIAL_UNMAP', {
        check: `the range 0x${start.toString(16)}..0x${end.toString(16)} covers only part of ${split.description} (0x${split.length.toString(16)} bytes)`,
        hint: 'unmap whole mappings: close the mapping, or give a range that covers all of it',
      });
    }
    let unmapped: bigint;
    try {
      unmapped = io.ioasUnmap(this.kernel, this.fd, this.id, range);
    } catch (e) {
      this.resynchronise(covered);
      throw e;
    }
    for (const mapping of covered) mapping.forget();
    return unmapped;
  }

  /** The handles of this IOAS's mappings, in IOVA order. */
  private mappings(): IoasMapping[] {
    const list: IoasMapping[] = [];
    for (const child of this.ownedResources()) if (child instanceof IoasMapping && !child.closed) list.push(child);
    return list.sort((a, b) => (a.iova < b.iova ? -1 : a.iova > b.iova ? 1 : 0));
  }

  /** After a failed unmap: forgets the handles whose areas the kernel no longer holds (see unmap). */
  private resynchronise(covered: readonly IoasMapping[]): void {
    for (const mapping of covered) if (this.holdsArea(mapping) === false) mapping.forget();
  }

  /**
   * Whether the kernel still holds the area of `mapping`, asked without changing anything: an
   * IOMMU_IOAS_COPY of the area onto its own IOVA finds the area's pages and then fails with
   * EEXIST, because the IOVA is taken; once the area is gone, finding its pages fails with ENOENT.
   * Any other answer (a failure of the probe itself) is undefined: the handle is kept.
   */
  private holdsArea(mapping: IoasMapping): boolean | undefined {
    try {
      io.ioasCopy(this.kernel, this.fd, {
        srcIoasId: this.id,
        srcIova: mapping.iova,
        dstIoasId: this.id,
        dstIova: mapping.iova,
        length: mapping.length,
        readable: true,
        writable: false,
      });
    } catch (e) {
      if (e instanceof VfioError && e.code === 'EEXIST') return true;
      if (e instanceof VfioError && e.code === 'ENOENT') return false;
      return undefined;
    }
    // The IOVA was free yet the pages were found there: the copy mapped them; take it back.
    io.ioasUnmap(this.kernel, this.fd, this.id, { iova: mapping.iova, length: mapping.length });
    return undefined;
  }

  /** The IOVA ranges that may be mapped, and the required alignment. */
  ranges(): io.IovaRanges {
    this.assertOpen('Ioas.ranges');
    return io.ioasIovaRanges(this.kernel, this.fd, this.id);
  }

  /** Restricts the IOVAs this IOAS may use (IOMMU_IOAS_ALLOW_IOVAS); an empty list lifts it. */
  allowIovas(ranges: readonly IovaRange[]): void {
    this.assertOpen('Ioas.allowIovas');
    if (!Array.isArray(ranges)) throw new TypeError('Ioas.allowIovas: ranges must be an array');
    ranges.forEach((r: IovaRange, i) => {
      checkU64(r.start, 'Ioas.allowIovas', `ranges[${i}].start`);
      checkU64(r.last, 'Ioas.allowIovas', `ranges[${i}].last`, r.start);
    });
    io.ioasAllowIovas(this.kernel, this.fd, this.id, ranges);
  }

  /** IOMMU_OPTION_HUGE_PAGES of this IOAS: get, or set then get. */
  option(name: 'huge-pages', value?: boolean): boolean {
    this.assertOpen('Ioas.option');
    if (name !== 'huge-pages') throw new TypeError(`Ioas.option: name must be 'huge-pages', got ${String(name)}`);
    if (value !== undefined) checkBoolean(value, 'Ioas.option', 'value');
    if (value !== undefined) io.optionSet(this.kernel, this.fd, name, value ? 1n : 0n, this.id);
    return io.optionGet(this.kernel, this.fd, name, this.id) !== 0n;
  }

  /**
   * The physical address behind `iova` and how many bytes from there are physically contiguous,
   * at most `maxLength` (one IOMMU_IOAS_NOIOMMU_GET_PA). Linux 7.3 noiommu only.
   */
  getPhysicalAddress(at: Iova, maxLength: bigint): PhysicalRun {
    this.assertOpen('Ioas.getPhysicalAddress');
    checkU64(at, 'Ioas.getPhysicalAddress', 'iova');
    checkU64(maxLength, 'Ioas.getPhysicalAddress', 'maxLength');
    return this.physicalLookup.lookup(this.kernel, this.fd, this.id, at, maxLength);
  }

  /**
   * The physically contiguous runs of [iova, iova+length): one GET_PA per run (the kernel
   * extends each answer over adjacent pages), not one per page.
   */
  segments(at: Iova, length: bigint): PhysicalSegment[] {
    this.assertOpen('Ioas.segments');
    checkU64(at, 'Ioas.segments', 'iova');
    checkU64(length, 'Ioas.segments', 'length');
    if (at + length > U64_MAX + 1n)
      throw new RangeError(`Ioas.segments: range 0x${at.toString(16)}+0x${length.toString(16)} ends past 2^64`);
    return this.segmentTable(at, length).toArray();
  }

  /**
   * The same segments as `segments`, in a flat table rather than as objects: what to walk a
   * large scattered buffer with (no object and bigints per segment; see PhysicalSegmentTable).
   */
  segmentTable(at: Iova, length: bigint): PhysicalSegmentTable {
    this.assertOpen('Ioas.segmentTable');
    checkU64(at, 'Ioas.segmentTable', 'iova');
    checkU64(length, 'Ioas.segmentTable', 'length');
    if (at + length > U64_MAX + 1n)
      throw new RangeError(`Ioas.segmentTable: range 0x${at.toString(16)}+0x${length.toString(16)} ends past 2^64`);
    return this.physicalLookup.segmentTable(this.kernel, this.fd, this.id, at, length);
  }

  /** @internal Bytes mapped through handles of this IOAS (what attaching a first device pins). */
  mappedBytes(): bigint {
    let total = 0n;
    for (const child of this.ownedResources()) if (child instanceof IoasMapping) total += child.length;
    return total;
  }

  /** @internal Called by VfioDevice when it attaches to (or detaches from) this IOAS. */
  noteAttached(deviceId: number, addressing: 'physical' | 'iova' | null): void {
    if (addressing === null) {
      this.attached.delete(deviceId);
      return;
    }
    this.attached.set(deviceId, addressing);
    // DMA buffers mapped before the first noiommu device arrived get their physical segments
    // now, while nothing is using them yet, instead of on a later hot path.
    if (addressing === 'physical' && !this.physicalResolver) for (const a of this.dmaAttachments) a.prefetchSegments();
  }

  /**
   * @internal Where physical runs come from when this process may not ask the kernel (a device
   * received from a broker on a noiommu host: the broker answers GET_PA for it).
   */
  physicalResolver: ((iova: Iova, length: bigint) => Promise<readonly PhysicalSegment[]>) | undefined;

  /** @internal DmaSpace: maps a DmaBuffer's memory. */
  attachDma(memory: Mapping, options: DmaMapOptions, asyncLookup = false): DmaAttachment {
    const mapping = this.map(memory, options);
    const attachment = new IoasDmaAttachment(this, mapping, () => this.dmaAttachments.delete(attachment));
    this.dmaAttachments.add(attachment);
    if (this.addressing === 'physical' && !asyncLookup) {
      // A failed physical-address lookup must not leave the area mapped and its pages pinned
      // while the caller frees the memory (found by the fail-Nth sweep).
      try {
        attachment.prefetchSegments();
      } catch (e) {
        attachment.detach();
        throw e;
      }
    }
    return attachment;
  }

  /** @internal DmaSpace: takes ownership of a DmaBuffer. */
  own<T extends Resource>(resource: T): T {
    return this.adopt(resource);
  }

  override close(): void {
    if (this.closed) return;
    if (this.attached.size > 0 && !this.handle.tearingDown) {
      throw VfioError.condition('ERR_VFIO_IN_USE', {
        check: `IOAS ${this.id} still has ${this.attached.size} device(s) attached`,
        hint: 'close or detach the devices first (closing the Iommufd closes everything at once)',
      });
    }
    super.close();
  }
}

/** The address range of a map source, type-checked (a DmaBuffer, a Mapping or a { va, length }). */
function mapSourceRange(source: MapSource, where: string): { va: UserVa; length: bigint } {
  if (typeof source !== 'object' || source === null)
    throw new TypeError(`${where}: source must be a Mapping, a DmaBuffer or { va, length }`);
  const { va, length } =
    'va' in source
      ? source
      : 'length' in source
        ? { va: source.address, length: source.length }
        : { va: source.address, length: source.size };
  checkU64(va, where, 'source address');
  checkU64(length, where, 'source length');
  return { va, length };
}

function checkMapOptions(options: IoasMapOptions, where: string): void {
  if (typeof options !== 'object' || options === null) throw new TypeError(`${where}: options must be an object`);
  if (options.iova !== undefined) checkU64(options.iova, where, 'options.iova');
  if (options.readable !== undefined) checkBoolean(options.readable, where, 'options.readable');
  if (options.writable !== undefined) checkBoolean(options.writable, where, 'options.writable');
}

class IoasDmaAttachment implements DmaAttachment {
  private cached: BufferSegment[] | undefined;
  constructor(
    private readonly ioas: Ioas,
    private readonly mapping: IoasMapping,
    private readonly onDetach: () => void,
  ) {}

  get iova(): Iova {
    return this.mapping.iova;
  }

  get length(): bigint {
    return this.mapping.length;
  }

  get addressing(): 'physical' | 'iova' {
    const a = this.ioas.addressing;
    if (a === 'unknown') {
      throw VfioError.condition('ERR_VFIO_NOT_ATTACHED', {
        check: `IOAS ${this.ioas.id} has no device attached yet`,
        hint: 'attach a device to the IOAS first: only then is it known whether the device uses IOVAs or physical addresses',
      });
    }
    return a;
  }

  prefetchSegments(): void {
    if (!this.cached) this.cached = this.lookup();
  }

  physicalSegments(): BufferSegment[] {
    if (!this.cached) {
      if (this.ioas.addressing === 'iova') {
        throw VfioError.condition('ERR_VFIO_TRANSLATED', {
          check: `the devices attached to IOAS ${this.ioas.id} use IOVAs`,
          hint: 'with an IOMMU, program the device with the IOVA (dmaAddress) instead of a physical address',
        });
      }
      this.cached = this.lookup();
    }
    return this.cached;
  }

  async resolveSegments(): Promise<void> {
    if (this.cached || this.ioas.addressing !== 'physical') return;
    const resolver = this.ioas.physicalResolver;
    if (!resolver) {
      this.cached = this.lookup();
      return;
    }
    const base = this.mapping.iova;
    this.cached = (await resolver(base, this.mapping.length)).map((s) => ({ offset: s.iova - base, phys: s.phys, length: s.length }));
  }

  private lookup(): BufferSegment[] {
    if (this.ioas.physicalResolver) {
      throw VfioError.condition('ERR_VFIO_ASYNC_LOOKUP', {
        check: `IOAS ${this.ioas.id} gets its physical addresses from a broker`,
        hint: 'allocate with await device.allocateDmaAsync(size) (or DmaBuffer.allocateAsync): the broker answers GET_PA for this process',
      });
    }
    const base = this.mapping.iova;
    const table = this.ioas.segmentTable(base, this.mapping.length);
    const segments = new Array<BufferSegment>(table.count);
    for (let i = 0; i < table.count; i++) segments[i] = { offset: table.iova(i) - base, phys: table.phys(i), length: table.length(i) };
    return segments;
  }

  detach(): void {
    this.onDetach();
    this.mapping.close();
  }
}
