/**
 * memfd_create(2) files: anonymous shmem (or hugetlbfs with MFD_HUGETLB) whose pages can be
 * mapped by several mappings and pinned by iommufd (IOMMU_IOAS_MAP_FILE).
 *
 * Pages are allocated on first need (a mapping, a pin, a write), like shmem faulting them in.
 * While a window of the file is mapped MAP_SHARED, its frames point into that mapping's
 * ArrayBuffer, so driver writes through the mapping are the file's bytes and what a device DMAs.
 * Mapping exactly the same window again returns the same ArrayBuffer (so writes are visible
 * through both); a window that partly overlaps a live one cannot be represented by separate
 * ArrayBuffers and is refused (EINVAL, a documented limitation of the model).
 */
import { fail } from '../errno';
import type { OpenFile, SyscallContext } from '../open-file';
import type { HugePageSize } from '../../sys/constants';
import { HUGE_PAGE_BYTES, OutOfFrames, PhysicalMemory } from './physical-memory';
import { detach } from './transfer';

/** A MAP_SHARED window onto the file: its bytes live in `buffer` while it is mapped. */
export interface MemfdWindow {
  readonly firstPage: number;
  readonly pages: number;
  readonly buffer: ArrayBuffer;
  users: number;
}

export class MemfdFile implements OpenFile {
  readonly kind = 'memfd';
  /** Page frame per 4 KiB page of the file; -1 where nothing was allocated yet. */
  private frames: number[] = [];
  private size = 0n;
  private readonly windows = new Map<string, MemfdWindow>();
  private readonly heldBy: (MemfdWindow | undefined)[] = [];
  private released = false;

  constructor(
    readonly name: string,
    private readonly memory: PhysicalMemory,
    /** Huge page size for MFD_HUGETLB files, null for shmem. */
    readonly hugePage: HugePageSize | null,
  ) {}

  /** Allocation granule: the huge page for hugetlbfs, else the base page. */
  get granule(): number {
    return this.hugePage ? HUGE_PAGE_BYTES[this.hugePage] : this.memory.pageSize;
  }

  get byteSize(): bigint {
    return this.size;
  }

  get isHugetlb(): boolean {
    return this.hugePage !== null;
  }

  /** ftruncate(2). */
  truncate(length: bigint): void {
    if (length < 0n) fail('EINVAL');
    if (this.hugePage && length % BigInt(this.granule) !== 0n) fail('EINVAL', 'hugetlbfs sizes are whole huge pages');
    const ps = this.memory.pageSize;
    const keep = Number((length + BigInt(ps) - 1n) / BigInt(ps));
    for (let i = keep; i < this.frames.length; i++) {
      const pfn = this.frames[i]!;
      if (pfn >= 0) this.memory.put(pfn);
    }
    if (this.frames.length > keep) this.frames.length = keep;
    this.size = length;
  }

  /**
   * Makes sure pages [first, first+count) have frames (allocating in granules); returns their
   * frame numbers. ENOMEM when RAM or the huge page pool is exhausted (nothing kept).
   */
  populate(first: number, count: number): number[] {
    const ps = this.memory.pageSize;
    const per = this.granule / ps;
    const start = Math.floor(first / per) * per;
    const end = Math.ceil((first + count) / per) * per;
    const fresh: number[] = [];
    try {
      for (let g = start; g < end; g += per) {
        if ((this.frames[g] ?? -1) >= 0) continue;
        const pfns = this.hugePage ? this.memory.allocateHugePage(this.hugePage) : this.memory.allocateFrames(1);
        const parked = new ArrayBuffer(per * ps);
        pfns.forEach((pfn, i) => {
          this.memory.bind(pfn, parked, i * ps);
          this.frames[g + i] = pfn;
          fresh.push(pfn);
        });
      }
    } catch (e) {
      if (!(e instanceof OutOfFrames)) throw e;
      for (const pfn of fresh) {
        this.memory.put(pfn);
        this.frames[this.frames.indexOf(pfn)] = -1;
      }
      fail('ENOMEM', e.message);
    }
    for (let i = this.frames.length; i < first + count; i++) this.frames[i] = -1;
    return this.frames.slice(first, first + count);
  }

  /** Frame of page `index`, or -1 when none was allocated. */
  frameAt(index: number): number {
    return this.frames[index] ?? -1;
  }

  /**
   * Maps pages [firstPage, firstPage+pages) shared: returns the window (bytes + frames). The
   * caller holds one frame reference per page for the mapping and calls unmapWindow later.
   */
  mapWindow(firstPage: number, pages: number): { window: MemfdWindow; pfns: number[] } {
    const key = `${firstPage}:${pages}`;
    const existing = this.windows.get(key);
    const pfns = this.populate(firstPage, pages);
    if (existing) {
      existing.users++;
      return { window: existing, pfns };
    }
    for (let i = firstPage; i < firstPage + pages; i++) {
      if (this.heldBy[i]) {
        fail('EINVAL', 'the model cannot map a memfd window that partly overlaps another live shared mapping of it');
      }
    }
    const ps = this.memory.pageSize;
    const buffer = new ArrayBuffer(pages * ps);
    const view = new Uint8Array(buffer);
    pfns.forEach((pfn, i) => {
      const at = this.memory.locate(pfn)!;
      view.set(new Uint8Array(at.buffer, at.offset, ps), i * ps);
      this.memory.bind(pfn, buffer, i * ps);
    });
    const window: MemfdWindow = { firstPage, pages, buffer, users: 1 };
    this.windows.set(key, window);
    for (let i = firstPage; i < firstPage + pages; i++) this.heldBy[i] = window;
    return { window, pfns };
  }

  /**
   * The last mapping of a window went away: its bytes move to a parked buffer (zero copy) and the
   * mapping's ArrayBuffer is detached.
   */
  unmapWindow(window: MemfdWindow, frames: readonly number[]): void {
    if (--window.users > 0) return;
    this.windows.delete(`${window.firstPage}:${window.pages}`);
    for (let i = window.firstPage; i < window.firstPage + window.pages; i++) {
      if (this.heldBy[i] === window) this.heldBy[i] = undefined;
    }
    const parked = detach(window.buffer);
    const ps = this.memory.pageSize;
    frames.forEach((pfn, i) => {
      if (this.memory.isLive(pfn) && this.memory.locate(pfn)?.buffer === window.buffer) this.memory.bind(pfn, parked, i * ps);
    });
  }

  pread(into: Uint8Array, offset: bigint, _ctx: SyscallContext): number {
    if (offset < 0n) fail('EINVAL');
    if (offset >= this.size) return 0;
    const n = Number(this.size - offset < BigInt(into.length) ? this.size - offset : BigInt(into.length));
    const ps = this.memory.pageSize;
    let pos = 0;
    let at = Number(offset);
    while (pos < n) {
      const page = Math.floor(at / ps);
      const inPage = at % ps;
      const chunk = Math.min(ps - inPage, n - pos);
      const pfn = this.frameAt(page);
      if (pfn < 0) into.fill(0, pos, pos + chunk);
      else {
        const loc = this.memory.locate(pfn)!;
        into.set(new Uint8Array(loc.buffer, loc.offset + inPage, chunk), pos);
      }
      pos += chunk;
      at += chunk;
    }
    return n;
  }

  pwrite(from: Uint8Array, offset: bigint, _ctx: SyscallContext): number {
    if (offset < 0n) fail('EINVAL');
    // hugetlbfs has no write(2).
    if (this.hugePage) fail('EINVAL');
    const end = offset + BigInt(from.length);
    if (end > this.size) this.size = end;
    const ps = this.memory.pageSize;
    const first = Math.floor(Number(offset) / ps);
    const last = Math.floor((Number(end) - 1) / ps);
    if (from.length === 0) return 0;
    this.populate(first, last - first + 1);
    let pos = 0;
    let at = Number(offset);
    while (pos < from.length) {
      const page = Math.floor(at / ps);
      const inPage = at % ps;
      const chunk = Math.min(ps - inPage, from.length - pos);
      const loc = this.memory.locate(this.frameAt(page))!;
      new Uint8Array(loc.buffer, loc.offset + inPage, chunk).set(from.subarray(pos, pos + chunk));
      pos += chunk;
      at += chunk;
    }
    return from.length;
  }

  /** The last fd closed: the file gives up its pages (mappings and pins keep their own references). */
  release(): void {
    if (this.released) return;
    this.released = true;
    for (const pfn of this.frames) if (pfn >= 0) this.memory.put(pfn);
    this.frames = [];
  }
}
