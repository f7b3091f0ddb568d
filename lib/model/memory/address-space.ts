/**
 * The simulated process's virtual address space: its mappings (VMAs), where mmap places them, and
 * the kernel-side accessors that resolve user addresses (copy_from_user/copy_to_user and
 * pin_user_pages for iommufd).
 *
 * Placement follows Linux x86-64 with the default top-down layout: each new mapping goes into the
 * highest free hole below mmap_base (a seeded random base around 0x7fxx_xxxx_x000). Private
 * anonymous mappings whose length is a multiple of 2 MiB are 2 MiB aligned (THP alignment), and
 * hugetlb mappings are aligned to their huge page size, so the low bits of addresses — which
 * decide the IOVA alignment iommufd picks — match what a real process gets.
 *
 * Anonymous memory gets its frames at mmap time (as if touched): the model cannot see stores into
 * an ArrayBuffer to fault pages in lazily.
 */
import type { Mapping, MmapPlacement, UserVa } from '../../sys/kernel';
import { MAP_FIXED, MAP_HUGETLB, MAP_HUGE_SHIFT, MAP_LOCKED, MAP_PRIVATE, MAP_SHARED, PROT_READ, PROT_WRITE } from '../../sys/constants';
import { fail } from '../errno';
import type { MmapBacking, ModelMapping, OpenFile } from '../open-file';
import { IntervalTree } from '../structures/interval-tree';
import type { LockedMemory } from './locked-memory';
import { MAX_LFS_FILESIZE, type MemfdFile, type MemfdWindow } from './memfd';
import type { HugePageSize } from '../../sys/constants';
import { HUGE_PAGE_BYTES, OutOfFrames, PhysicalMemory } from './physical-memory';
import { Prng } from './prng';
import { detach } from './transfer';
import type { FaultInjector } from '../fault-injection';

/** Highest user address + 1 on x86-64 with 4-level paging (TASK_SIZE). */
export const TASK_SIZE = 0x7fff_ffff_f000n;
/** vm.mmap_min_addr default. */
const MMAP_MIN_ADDR = 0x10000n;
const PMD_SIZE = 2n << 20n;

/** What backs a mapping. */
export type VmaKind = 'anonymous' | 'memfd' | 'frames' | 'mmio';

/** One mapping of the process. */
export class Vma implements ModelMapping {
  readonly address: UserVa;
  readonly length: bigint;
  readonly buffer: ArrayBuffer | null;
  readonly backing: MmapBacking | { readonly kind: 'anonymous' };
  /** Frame of each base page (empty for mmio). */
  readonly pfns: readonly number[];
  locked = false;
  unmapped = false;

  constructor(
    start: bigint,
    length: bigint,
    buffer: ArrayBuffer | null,
    backing: MmapBacking | { readonly kind: 'anonymous' },
    pfns: readonly number[],
    readonly kind: VmaKind,
    readonly prot: number,
    readonly flags: number,
    /** The file mapped (memfd, device), which the mapping keeps a reference to. */
    readonly file: OpenFile | null,
    /** For MAP_SHARED memfd mappings: the shared window. */
    readonly window: MemfdWindow | null,
    /** Page-table granule: huge page size for hugetlb mappings, else the base page size. */
    readonly granule: number,
  ) {
    this.address = start;
    this.length = length;
    this.buffer = buffer;
    this.backing = backing;
    this.pfns = pfns;
  }

  get end(): bigint {
    return this.address + this.length;
  }

  /** Whether pages are file/shmem pages (pagemap bit 61) rather than private anonymous ones. */
  get fileBacked(): boolean {
    return this.kind === 'memfd' || this.kind === 'frames' || (this.kind === 'anonymous' && (this.flags & MAP_SHARED) !== 0);
  }
}

/** Hooks into the rest of the kernel the address space needs. */
export interface AddressSpaceHost {
  /** Takes / drops a reference on a file that a mapping keeps open. */
  holdFile(file: OpenFile): void;
  dropFile(file: OpenFile): void;
  /** CAP_IPC_LOCK. */
  readonly ipcLock: boolean;
  /** The kernel's fault injector (the mm.mmap site). */
  readonly faults: FaultInjector;
}

export class AddressSpace {
  private readonly vmas = new IntervalTree<Vma>();
  /** mmap_base: top of the top-down mmap area. */
  readonly mmapBase: bigint;
  private readonly pageSize: number;
  private readonly pageShift: bigint;

  constructor(
    readonly memory: PhysicalMemory,
    readonly locked: LockedMemory,
    private readonly host: AddressSpaceHost,
    seed: number,
  ) {
    this.pageSize = memory.pageSize;
    this.pageShift = BigInt(memory.pageShift);
    // 24 bits of page-granular randomisation below the stack gap, like ASLR on x86-64.
    const rnd = BigInt(new Prng(seed ^ 0x6d6d6170).below(1 << 24));
    this.mmapBase = 0x7fff_0000_0000n - (rnd << this.pageShift);
  }

  /** Number of live mappings. */
  get count(): number {
    return this.vmas.size;
  }

  /** The mapping containing `va`. */
  find(va: bigint): Vma | undefined {
    return this.vmas.findValue(va);
  }

  /** The lowest mapping that starts above `va` (for a va outside any mapping). */
  nextAbove(va: bigint): Vma | undefined {
    return this.vmas.firstOverlap(va + 1n, TASK_SIZE)?.value;
  }

  mappings(): Vma[] {
    return [...this.vmas].map((n) => n.value);
  }

  /**
   * mmap(NULL, length, prot, flags, fd, offset). `file` is the open file for fd ≥ 0 (null with
   * MAP_ANONYMOUS); its mmap operation supplies the backing. Throws KernelError.
   */
  mmap(
    length: bigint,
    prot: number,
    flags: number,
    file: OpenFile | null,
    offset: bigint,
    fileMmap: (() => MmapBacking) | null,
    placement?: MmapPlacement,
  ): Vma {
    const type = flags & (MAP_SHARED | MAP_PRIVATE);
    if (length <= 0n) fail('EINVAL');
    if (type !== MAP_SHARED && type !== MAP_PRIVATE) fail('EINVAL');
    if (flags & MAP_FIXED) fail('EINVAL', 'the model has no address hint, so MAP_FIXED cannot be honoured');
    if (offset < 0n || offset % BigInt(this.pageSize) !== 0n) fail('EINVAL');
    this.host.faults.point('mm.mmap'); // vm_area_alloc (lib/model/faults.ts)

    let hugePage: HugePageSize | null = null;
    if (flags & MAP_HUGETLB) {
      if (file) fail('EINVAL', 'MAP_HUGETLB is for anonymous mappings; map a hugetlbfs memfd instead');
      const log2 = (flags >> MAP_HUGE_SHIFT) & 0x3f;
      if (log2 === 0 || log2 === 21) hugePage = '2M';
      else if (log2 === 30) hugePage = '1G';
      else fail('EINVAL');
    }
    const memfd = file && file.kind === 'memfd' ? (file as MemfdFile) : null;
    if (memfd?.hugePage) hugePage = memfd.hugePage;
    const granule = hugePage ? HUGE_PAGE_BYTES[hugePage] : this.pageSize;
    // The kernel rounds the length up to whole pages (huge pages for hugetlb).
    const len = roundUp(length, BigInt(granule));
    if (len > TASK_SIZE) fail('ENOMEM');
    if (memfd && offset % BigInt(granule) !== 0n) fail('EINVAL');

    if (flags & MAP_LOCKED) {
      if (!this.host.ipcLock && this.locked.limitIsZero) fail('EPERM');
      if (!this.host.ipcLock && this.locked.mmLockedPages + Number(len >> this.pageShift) > this.locked.limitPages) fail('EAGAIN');
    }

    const thpAligned = !file && type === MAP_PRIVATE && !hugePage && len % PMD_SIZE === 0n;
    const start = placement ? this.placeInReservation(len, placement, granule) : this.placeTopDown(len, BigInt(granule), thpAligned);
    // file_mmap_ok: a regular file's mapping cannot reach past the largest file offset.
    if (memfd && offset + len > MAX_LFS_FILESIZE) fail('EOVERFLOW');
    const pages = Number(len >> this.pageShift);
    let vma: Vma;
    if (!file) {
      vma = this.mapAnonymous(start, len, pages, prot, flags, hugePage, granule);
    } else if (memfd) {
      const firstPage = Number(offset >> this.pageShift);
      if (type === MAP_SHARED) {
        const { window, pfns } = memfd.mapWindow(firstPage, pages);
        for (const pfn of pfns) this.memory.get(pfn);
        vma = new Vma(
          start,
          len,
          window.buffer,
          { kind: 'frames', pfns: pfns.map(BigInt), pageSize: granule },
          pfns,
          'memfd',
          prot,
          flags,
          file,
          window,
          granule,
        );
      } else {
        // A private mapping gets its own copy of the file's current bytes (copy-on-write, with
        // every page already written).
        vma = this.mapAnonymous(start, len, pages, prot, flags, hugePage, granule);
        const snapshot = new Uint8Array(pages * this.pageSize);
        memfd.pread(snapshot, offset, { fd: -1 });
        new Uint8Array(vma.buffer!).set(snapshot);
      }
      if (vma.kind === 'memfd') this.host.holdFile(file);
    } else {
      const backing = fileMmap!();
      if (backing.kind === 'mmio') {
        vma = new Vma(start, len, null, backing, [], 'mmio', prot, flags, file, null, granule);
      } else {
        const pfns = backing.pfns.map((p) => Number(p));
        if (pfns.length * backing.pageSize < Number(len)) fail('EINVAL', 'file backing is shorter than the mapping');
        const perFrame = backing.pageSize / this.pageSize;
        const small: number[] = [];
        for (const p of pfns) for (let i = 0; i < perFrame; i++) small.push(p + i);
        small.length = pages;
        const buffer = new ArrayBuffer(pages * this.pageSize);
        const view = new Uint8Array(buffer);
        small.forEach((pfn, i) => {
          const at = this.memory.locate(pfn);
          if (at) view.set(new Uint8Array(at.buffer, at.offset, this.pageSize), i * this.pageSize);
          this.memory.get(pfn);
          this.memory.bind(pfn, buffer, i * this.pageSize);
        });
        vma = new Vma(start, len, buffer, backing, small, 'frames', prot, flags, file, null, granule);
      }
      this.host.holdFile(file);
    }
    this.vmas.insert(vma.address, vma.end - 1n, vma);
    if (flags & MAP_LOCKED) this.lock(vma);
    return vma;
  }

  private mapAnonymous(
    start: bigint,
    len: bigint,
    pages: number,
    prot: number,
    flags: number,
    hugePage: HugePageSize | null,
    granule: number,
  ): Vma {
    let pfns: number[];
    try {
      if (hugePage) {
        pfns = [];
        const count = Number(len / BigInt(granule));
        try {
          // One by one: a 1 GiB page is 262144 frames, more than a spread call's arguments may be.
          for (let i = 0; i < count; i++) for (const pfn of this.memory.allocateHugePage(hugePage)) pfns.push(pfn);
        } catch (e) {
          for (const pfn of pfns) this.memory.put(pfn);
          throw e;
        }
      } else pfns = this.memory.allocateFrames(pages);
    } catch (e) {
      if (e instanceof OutOfFrames) fail('ENOMEM', e.message);
      throw e;
    }
    const buffer = new ArrayBuffer(pages * this.pageSize);
    pfns.forEach((pfn, i) => this.memory.bind(pfn, buffer, i * this.pageSize));
    return new Vma(start, len, buffer, { kind: 'anonymous' }, pfns, 'anonymous', prot, flags, null, null, granule);
  }

  /**
   * Top-down placement (vm_unmapped_area with the topdown flag): the highest hole below mmap_base
   * that fits, aligned to `align`. With `thp`, the THP rule of __thp_get_unmapped_area: find room
   * for length + 2 MiB, then use the 2 MiB aligned start inside it.
   */
  /**
   * The native addon's placement (native/memory.cc MmapPlaced): a reservation of len + align bytes
   * placed top-down like any mapping, the mapping at the first address in it that is `skew` past a
   * multiple of `align`. A hugetlb mapping's MAP_FIXED address must be huge-page aligned (EINVAL).
   */
  private placeInReservation(len: bigint, placement: MmapPlacement, granule: number): bigint {
    const base = this.findTopDown(len + placement.align, BigInt(this.pageSize));
    if (base === null) fail('ENOMEM');
    const at = base + ((placement.skew - base) & (placement.align - 1n));
    if (at % BigInt(granule) !== 0n) fail('EINVAL', 'a hugetlb mapping must start on a huge page boundary');
    return at;
  }

  private placeTopDown(len: bigint, align: bigint, thp: boolean): bigint {
    if (thp) {
      const padded = this.findTopDown(len + PMD_SIZE, BigInt(this.pageSize));
      if (padded !== null) {
        const offSub = (0n - padded) & (PMD_SIZE - 1n);
        return offSub === 0n ? padded + PMD_SIZE : padded + offSub;
      }
    }
    const at = this.findTopDown(len, align);
    if (at === null) fail('ENOMEM');
    return at;
  }

  private findTopDown(len: bigint, align: bigint): bigint | null {
    for (const hole of this.vmas.holesDescending(MMAP_MIN_ADDR, this.mmapBase - 1n, len)) {
      const addr = (hole.last + 1n - len) & ~(align - 1n);
      if (addr >= hole.start) return addr;
    }
    return null;
  }

  /**
   * munmap(2) of a whole mapping. Frames nobody else holds are freed; frames still pinned (or
   * owned by a memfd) keep their bytes in a parked copy. The mapping's ArrayBuffer is detached.
   * Unmapping a mapping twice is a no-op, as munmap of an unmapped range is on Linux.
   */
  munmap(mapping: Mapping): void {
    const vma = this.vmaOf(mapping);
    if (!vma) return;
    this.vmas.remove(vma.address);
    vma.unmapped = true;
    if (vma.locked) this.locked.unchargeMm(Number(vma.length >> this.pageShift));
    if (vma.kind === 'memfd') {
      const memfd = vma.file as MemfdFile;
      memfd.unmapWindow(vma.window!, vma.pfns);
      for (const pfn of vma.pfns) this.memory.put(pfn);
    } else if (vma.buffer) {
      const stillHeld = vma.pfns.some((pfn) => this.memory.refCount(pfn) > 1);
      const parked = stillHeld ? detach(vma.buffer) : null;
      if (!parked) detach(vma.buffer);
      vma.pfns.forEach((pfn, i) => {
        if (parked && this.memory.refCount(pfn) > 1 && this.memory.locate(pfn)?.buffer === vma.buffer) {
          this.memory.bind(pfn, parked, i * this.pageSize);
        }
        this.memory.put(pfn);
      });
    }
    if (vma.file) this.host.dropFile(vma.file);
  }

  /**
   * Whether the byte at `offset` in `vma` is in a page of a shared memfd mapping past the file's
   * end: a fault there raises SIGBUS (shmem_fault), which the kernel's own accesses see as EFAULT.
   * Stores straight into the mapping's ArrayBuffer cannot be caught; the model's accessors,
   * copy_{from,to}_user and pinning check this.
   */
  beyondEof(vma: Vma, offset: bigint): boolean {
    if (vma.kind !== 'memfd') return false;
    const memfd = vma.file as MemfdFile;
    return memfd.pageBeyondEof(vma.window!.firstPage + Number(offset >> this.pageShift));
  }

  /** The live VMA behind a Mapping object handed out by mmap. */
  vmaOf(mapping: Mapping): Vma | undefined {
    const vma = this.vmas.findValue(mapping.address);
    return vma && vma === mapping ? vma : undefined;
  }

  /** mlock(2) of a whole mapping (do_mlock). */
  mlock(mapping: Mapping): void {
    const vma = this.vmaOf(mapping);
    if (!vma) fail('ENOMEM');
    if (!this.host.ipcLock && this.locked.limitIsZero) fail('EPERM');
    if (vma.locked) return;
    const pages = Number(vma.length >> this.pageShift);
    if (!this.host.ipcLock && this.locked.mmLockedPages + pages > this.locked.limitPages) fail('ENOMEM');
    if (vma.kind === 'mmio') fail('ENOMEM');
    this.lock(vma);
  }

  private lock(vma: Vma): void {
    vma.locked = true;
    this.locked.mmLockedPages += Number(vma.length >> this.pageShift);
  }

  /**
   * pin_user_pages(FOLL_LONGTERM [| FOLL_WRITE]) of `npages` pages from page-aligned `va`: a
   * reference on each frame, or EFAULT (nothing held) when a page is not mapped, is I/O memory,
   * or is not writable and `write` is asked.
   */
  pinPages(va: bigint, npages: number, write: boolean): number[] {
    const out: number[] = [];
    let addr = va;
    const ps = BigInt(this.pageSize);
    try {
      while (out.length < npages) {
        const vma = this.find(addr);
        if (!vma || vma.kind === 'mmio' || !(vma.prot & PROT_READ) || (write && !(vma.prot & PROT_WRITE))) fail('EFAULT');
        const first = Number((addr - vma.address) >> this.pageShift);
        const n = Math.min(npages - out.length, vma.pfns.length - first);
        if (this.beyondEof(vma, addr - vma.address + BigInt(n - 1) * ps))
          fail('EFAULT', 'SIGBUS: a page of the shared memfd mapping is past the end of the file');
        for (let i = 0; i < n; i++) {
          const pfn = vma.pfns[first + i]!;
          this.memory.get(pfn);
          out.push(pfn);
        }
        addr += BigInt(n) * ps;
      }
    } catch (e) {
      for (const pfn of out) this.memory.put(pfn);
      throw e;
    }
    return out;
  }

  /** copy_from_user: EFAULT unless every byte is in a readable RAM mapping. */
  readUser(va: bigint, length: number): Uint8Array {
    const out = new Uint8Array(length);
    this.walkUser(va, length, PROT_READ, (view, pos) => out.set(view, pos));
    return out;
  }

  /** copy_to_user: EFAULT unless every byte is in a writable RAM mapping. */
  writeUser(va: bigint, bytes: Uint8Array): void {
    this.walkUser(va, bytes.length, PROT_WRITE, (view, pos) => view.set(bytes.subarray(pos, pos + view.length)));
  }

  private walkUser(va: bigint, length: number, need: number, each: (view: Uint8Array, pos: number) => void): void {
    const pieces: [Uint8Array, number][] = [];
    let pos = 0;
    let addr = va;
    while (pos < length) {
      const vma = this.find(addr);
      if (!vma || !vma.buffer || !(vma.prot & need)) fail('EFAULT');
      const off = Number(addr - vma.address);
      const n = Math.min(Number(vma.length) - off, length - pos);
      if (this.beyondEof(vma, BigInt(off + n - 1))) fail('EFAULT', 'SIGBUS: the shared memfd mapping is past the end of the file there');
      pieces.push([new Uint8Array(vma.buffer, off, n), pos]);
      pos += n;
      addr += BigInt(n);
    }
    for (const [view, p] of pieces) each(view, p);
  }
}

function roundUp(n: bigint, to: bigint): bigint {
  return ((n + to - 1n) / to) * to;
}
