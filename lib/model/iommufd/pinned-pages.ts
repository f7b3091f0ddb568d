/**
 * The pages behind one or more IOAS areas (io_pagetable.h: struct iopt_pages): a page-aligned
 * range of user memory (IOMMU_IOAS_MAP) or of a memfd (IOMMU_IOAS_MAP_FILE), shared by the areas
 * IOMMU_IOAS_COPY makes from it, so nothing is pinned or charged twice.
 *
 * Pages are pinned only while some area over them is loaded into a domain (an IOAS with no device
 * attached pins nothing — IOAS_MAP then only records the range, and a bad user address fails at
 * attach). Each page counts the filled areas over it; the first pins it (pin_user_pages /
 * memfd_pin_folios), the last unpins it. Newly pinned pages are charged to RLIMIT_MEMLOCK after
 * pinning (pfn_reader_update_pinned): in "user" mode to user->locked_vm, in "mm" mode to
 * mm->locked_vm, not at all for a CAP_IPC_LOCK process.
 */
import { fail } from '../errno';
import type { AddressSpace } from '../memory/address-space';
import type { LockedMemory } from '../memory/locked-memory';
import { MemfdFile } from '../memory/memfd';
import type { PhysicalMemory } from '../memory/physical-memory';
import type { OpenFile } from '../open-file';
import type { FaultInjector } from '../fault-injection';

/** IOPT_PAGES_ACCOUNT_{NONE,USER,MM}. */
const EMPTY: number[] = [];

export type AccountMode = 'none' | 'user' | 'mm';

export type PagesSource =
  | { readonly kind: 'user'; readonly uptr: bigint }
  | { readonly kind: 'file'; readonly file: OpenFile; readonly start: bigint }
  /**
   * I/O memory of a VM_PFNMAP vma that vfio_iommu_type1 follows (vaddr_get_pfns →
   * follow_fault_pfn): the PFNs are the BAR's, not RAM; is_invalid_reserved_pfn holds for them,
   * so they are neither pinned (no page reference) nor charged to RLIMIT_MEMLOCK.
   */
  | { readonly kind: 'pfnmap'; readonly pfns: readonly number[] };

/** What pinning needs from the rest of the kernel. */
export interface PinEnvironment {
  readonly faults: FaultInjector;
  readonly space: AddressSpace;
  readonly memory: PhysicalMemory;
  readonly locked: LockedMemory;
  holdFile(file: OpenFile): void;
  dropFile(file: OpenFile): void;
}

export class IoPages {
  /** kref: areas (and in-flight copies) using these pages. */
  refs = 1;
  /**
   * Pinned frame per page (-1 while unpinned) and the filled areas covering each page. Allocated
   * on the first fill: an IOAS without domains may record huge ranges it never pins.
   */
  // Plain (packed small-integer) arrays: a typed array per area costs an ArrayBuffer each, which
  // dominates memory and GC time for IOASes with 100k one-page areas.
  private pfns: number[] = EMPTY;
  private pinCount: number[] = EMPTY;
  private pinnedCount = 0;
  private readonly env: PinEnvironment;
  constructor(
    env: PinEnvironment,
    readonly source: PagesSource,
    readonly npages: number,
    readonly writable: boolean,
    public accountMode: AccountMode,
  ) {
    // The address space and accounting of the process that mapped, fixed now as iopt_alloc_pages
    // fixes source_mm and source_user: pinning later (at attach) or unpinning at another
    // process's close must reach the mapper's memory, whoever makes the call.
    this.env = {
      faults: env.faults,
      memory: env.memory,
      space: env.space,
      locked: env.locked,
      holdFile: (f) => env.holdFile(f),
      dropFile: (f) => env.dropFile(f),
    };
    // kzalloc in iopt_alloc_pages.
    env.faults.point('iommufd.pages-alloc');
    if (source.kind === 'file') env.holdFile(source.file);
  }

  /** pages->npinned. */
  get npinned(): number {
    return this.pinnedCount;
  }

  /** Frame of page `index` (must be pinned). */
  frame(index: number): number {
    return this.pfns[index]!;
  }

  isPinned(index: number): boolean {
    return (this.pfns[index] ?? -1) >= 0;
  }

  /**
   * Loads pages [first, last] for a newly filled area: pins the ones nobody pinned yet, then
   * charges them. EFAULT/EINVAL/ENOMEM leave everything as it was.
   */
  fill(first: number, last: number): void {
    if (this.pfns.length === 0) {
      // More pages than the machine has frames can never all be pinned: the walk would fault on
      // unmapped user memory, or run out of memory populating a file.
      if (this.source.kind !== 'pfnmap' && this.npages > this.env.memory.frameCount)
        fail(this.source.kind === 'user' ? 'EFAULT' : 'ENOMEM');
      this.pfns = new Array<number>(this.npages).fill(-1);
      this.pinCount = new Array<number>(this.npages).fill(0);
    }
    const fresh: number[] = [];
    try {
      let i = first;
      while (i <= last) {
        if (this.pinCount[i]! > 0) {
          i++;
          continue;
        }
        let j = i;
        while (j + 1 <= last && this.pinCount[j + 1] === 0) j++;
        const pfns = this.pinRange(i, j - i + 1);
        pfns.forEach((pfn, k) => {
          this.pfns[i + k] = pfn;
          fresh.push(i + k);
        });
        i = j + 1;
      }
      if (fresh.length > 0 && this.source.kind !== 'pfnmap') this.charge(fresh.length);
    } catch (e) {
      for (const idx of fresh) {
        if (this.source.kind !== 'pfnmap') this.env.memory.put(this.pfns[idx]!);
        this.pfns[idx] = -1;
      }
      throw e;
    }
    for (let i = first; i <= last; i++) this.pinCount[i]!++;
    this.pinnedCount += fresh.length;
  }

  /** Undoes fill for one area: pages no filled area covers any more are unpinned and uncharged. */
  unfill(first: number, last: number): void {
    let released = 0;
    for (let i = first; i <= last; i++) {
      if (--this.pinCount[i]! === 0) {
        if (this.source.kind !== 'pfnmap') this.env.memory.put(this.pfns[i]!);
        this.pfns[i] = -1;
        released++;
      }
    }
    if (released) {
      this.pinnedCount -= released;
      if (this.source.kind !== 'pfnmap') this.uncharge(released);
    }
  }

  private pinRange(index: number, count: number): number[] {
    // pfn_reader_user_pin.
    this.env.faults.point('iommufd.pages-pin');
    const ps = BigInt(this.env.memory.pageSize);
    if (this.source.kind === 'pfnmap') return this.source.pfns.slice(index, index + count);
    if (this.source.kind === 'user') {
      return this.env.space.pinPages(this.source.uptr + BigInt(index) * ps, count, this.writable);
    }
    // memfd_pin_folios: only shmem/hugetlbfs files, and not past the end of the file.
    const file = this.source.file;
    if (!(file instanceof MemfdFile)) fail('EINVAL', 'only memfd (shmem or hugetlbfs) files can be pinned');
    const start = this.source.start + BigInt(index) * ps;
    const end = start + BigInt(count) * ps - 1n;
    if (end >= file.byteSize) fail('EINVAL', 'range past the end of the memfd');
    const firstPage = Number(start / ps);
    const pfns = file.populate(firstPage, count);
    for (const pfn of pfns) this.env.memory.get(pfn);
    return pfns;
  }

  private charge(pages: number): void {
    // pfn_reader_user_update_pinned (fault injection, lib/model/faults.ts).
    this.env.faults.point('iommufd.pages-account');
    const locked = this.env.locked;
    if (this.accountMode === 'user' && !locked.chargeUser(pages)) fail('ENOMEM', 'RLIMIT_MEMLOCK exceeded (user->locked_vm)');
    if (this.accountMode === 'mm' && !locked.chargeMm(pages)) fail('ENOMEM', 'RLIMIT_MEMLOCK exceeded (mm->locked_vm)');
    locked.pinnedPages += pages;
  }

  private uncharge(pages: number): void {
    const locked = this.env.locked;
    if (this.accountMode === 'user') locked.unchargeUser(pages);
    if (this.accountMode === 'mm') locked.unchargeMm(pages);
    locked.pinnedPages -= pages;
  }

  /** iopt_put_pages: the last reference lets the file go. */
  put(): void {
    if (--this.refs > 0) return;
    if (this.pinnedCount !== 0) throw new Error('model: iopt_pages released while pinned');
    if (this.source.kind === 'file') this.env.dropFile(this.source.file);
  }
}
