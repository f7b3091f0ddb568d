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

/** s_maxbytes of shmem and hugetlbfs on a 64-bit kernel: the largest loff_t. */
export const MAX_LFS_FILESIZE = (1n << 63n) - 1n;

/** A MAP_SHARED window onto the file: its bytes live in `buffer` while it is mapped. */
export interface MemfdWindow {
  readonly firstPage: number;
  readonly pages: number;
  readonly buffer: ArrayBuffer;
  users: number;
}

export class MemfdFile implements OpenFile {
  readonly kind = 'memfd';
  /**
   * Page frame of each allocated 4 KiB page of the file, by page index. Sparse, as the page cache
   * is: a file can be MAX_LFS_FILESIZE long, and only pages that were touched cost anything.
   */
  private frames = new Map<number, number>();
  private size = 0n;
  private readonly windows = new Map<string, MemfdWindow>();
  /** The live shared window each mapped page belongs to. */
  private readonly heldBy = new Map<number, MemfdWindow>();
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

  /** Number of pages of the file that have a frame (what shmem has allocated). */
  get allocatedPages(): number {
    return this.frames.size;
  }

  /** ftruncate(2): inode_newsize_ok, then the pages past the new end are dropped. */
  truncate(length: bigint): void {
    if (length < 0n) fail('EINVAL');
    if (length > MAX_LFS_FILESIZE) fail('EFBIG');
    if (this.hugePage && length % BigInt(this.granule) !== 0n) fail('EINVAL', 'hugetlbfs sizes are whole huge pages');
    const ps = BigInt(this.memory.pageSize);
    const keep = Number((length + ps - 1n) / ps);
    for (const [index, pfn] of this.frames) {
      if (index < keep) continue;
      this.memory.put(pfn);
      this.frames.delete(index);
    }
    this.size = length;
  }

  /** Whether page `page` of the file starts at or past its end (shmem_fault answers SIGBUS there). */
  pageBeyondEof(page: number): boolean {
    return BigInt(page) * BigInt(this.memory.pageSize) >= this.size;
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
        if (this.frames.has(g)) continue;
        const pfns = this.hugePage ? this.memory.allocateHugePage(this.hugePage) : this.memory.allocateFrames(1);
        const parked = new ArrayBuffer(per * ps);
        pfns.forEach((pfn, i) => {
          this.memory.bind(pfn, parked, i * ps);
          this.frames.set(g + i, pfn);
          fresh.push(g + i);
        });
      }
    } catch (e) {
      if (!(e instanceof OutOfFrames)) throw e;
      for (const index of fresh) {
        this.memory.put(this.frames.get(index)!);
        this.frames.delete(index);
      }
      fail('ENOMEM', e.message);
    }
    return Array.from({ length: count }, (_, i) => this.frames.get(first + i)!);
  }

  /** Frame of page `index`, or -1 when none was allocated. */
  frameAt(index: number): number {
    return this.frames.get(index) ?? -1;
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
      if (this.heldBy.has(i)) {
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
    for (let i = firstPage; i < firstPage + pages; i++) this.heldBy.set(i, window);
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
      if (this.heldBy.get(i) === window) this.heldBy.delete(i);
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
    this.eachPage(offset, n, (pfn, inPage, pos, chunk) => {
      if (pfn < 0) into.fill(0, pos, pos + chunk);
      else {
        const loc = this.memory.locate(pfn)!;
        into.set(new Uint8Array(loc.buffer, loc.offset + inPage, chunk), pos);
      }
    });
    return n;
  }

  pwrite(from: Uint8Array, offset: bigint, _ctx: SyscallContext): number {
    if (offset < 0n) fail('EINVAL');
    // hugetlbfs has no write(2).
    if (this.hugePage) fail('EINVAL');
    if (from.length === 0) return 0;
    // generic_write_check_limits (rw_verify_area already refused a range ending past loff_t).
    if (offset >= MAX_LFS_FILESIZE) fail('EFBIG');
    const length = from.length;
    const ps = BigInt(this.memory.pageSize);
    const first = Number(offset / ps);
    const last = Number((offset + BigInt(length) - 1n) / ps);
    this.populate(first, last - first + 1);
    const end = offset + BigInt(length);
    if (end > this.size) this.size = end;
    this.eachPage(offset, length, (pfn, inPage, pos, chunk) => {
      const loc = this.memory.locate(pfn)!;
      new Uint8Array(loc.buffer, loc.offset + inPage, chunk).set(from.subarray(pos, pos + chunk));
    });
    return length;
  }

  /** Walks `length` bytes from file offset `offset` page by page (offsets past 2^53 stay exact). */
  private eachPage(offset: bigint, length: number, each: (pfn: number, inPage: number, pos: number, chunk: number) => void): void {
    const ps = this.memory.pageSize;
    let page = Number(offset / BigInt(ps));
    let inPage = Number(offset % BigInt(ps));
    for (let pos = 0; pos < length; page++, inPage = 0) {
      const chunk = Math.min(ps - inPage, length - pos);
      each(this.frameAt(page), inPage, pos, chunk);
      pos += chunk;
    }
  }

  /** The last fd closed: the file gives up its pages (mappings and pins keep their own references). */
  release(): void {
    if (this.released) return;
    this.released = true;
    for (const pfn of this.frames.values()) this.memory.put(pfn);
    this.frames = new Map();
  }
}
