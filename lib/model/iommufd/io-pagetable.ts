/**
 * The IOVA space of one IOAS (io_pagetable.c: struct io_pagetable): its areas, the allowed and
 * reserved IOVA ranges, the domains it is loaded into, and the rules for choosing, checking,
 * mapping, unmapping and looking up IOVAs.
 *
 * Areas live in an augmented interval tree (see ../memory/interval-tree.ts), so map, unmap,
 * lookup and automatic IOVA allocation stay O(log n) in the number of areas. Allowed and reserved
 * ranges are few (a handful per device) and are kept as sorted lists.
 */
import { U64_MAX } from '../../uapi/codec';
import { fail } from '../errno';
import { IntervalTree } from '../structures/interval-tree';
import type { IommuDomain } from './domain';
import type { IoPages } from './pinned-pages';
import { FaultInjector } from '../fault-injection';

/** IOMMU_READ / IOMMU_WRITE of conv_iommu_prot. */
export const IOMMU_READ = 1;
export const IOMMU_WRITE = 2;

const ULONG_MAX = U64_MAX;
const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);

/** The numbers IoPagetable keeps with each area in the tree (see publishTranslation). */
const TAG_PHYS_START = 0;
const TAG_FIRST_RUN_BYTES = 1;

/**
 * An inclusive IOVA interval as the io_pagetable keeps them (interval_tree_node: start, last):
 * plain bigints, unlike the API's branded IovaRange in lib/sys/addresses.ts.
 */
export interface IovaInterval {
  readonly start: bigint;
  readonly last: bigint;
}

interface Reserved extends IovaInterval {
  readonly owner: object;
}

/** A mapped IOVA range backed by a slice of an IoPages (struct iopt_area). */
export class Area {
  private domain: IommuDomain | null = null;
  /**
   * What the storage domain maps this area to, recorded when it is loaded (the IOPTEs
   * iopt_area_fill_domain writes), as physically contiguous runs of pages counted from the
   * area's first page. The first run is kept inline because most areas are one run (a single
   * page, or memory from a huge page) and GET_PA then reads nothing but this object; any further
   * runs are (first page, frame) pairs in `laterRuns`.
   */
  private firstPfn = -1;
  private firstRunPages = 0;
  private laterRuns: Float64Array | null = null;

  constructor(
    readonly iova: bigint,
    readonly last: bigint,
    readonly pages: IoPages,
    /** Bytes into the first page where the area starts. */
    readonly pageOffset: number,
    /** Page indexes into `pages` (pages_node.start / .last). */
    readonly firstIndex: number,
    readonly lastIndex: number,
    readonly prot: number,
  ) {}

  get length(): bigint {
    return this.last - this.iova + 1n;
  }

  /** The domain holding this area's frames (area->storage_domain); null until loaded. */
  get storageDomain(): IommuDomain | null {
    return this.domain;
  }

  /** iopt_area_start_byte. */
  startByte(iova: bigint, pageSize: bigint): bigint {
    return iova - this.iova + BigInt(this.pageOffset) + BigInt(this.firstIndex) * pageSize;
  }

  /** Loads the area into `domain` as its storage domain: pins its pages and records their frames. */
  load(domain: IommuDomain): void {
    this.pages.fill(this.firstIndex, this.lastIndex);
    this.hold(domain);
  }

  /** Takes the area out of its storage domain and unpins what only it held. */
  unload(): void {
    this.pages.unfill(this.firstIndex, this.lastIndex);
    this.domain = null;
    this.firstPfn = -1;
    this.firstRunPages = 0;
    this.laterRuns = null;
  }

  /**
   * Makes `domain` the storage domain of pages that are already pinned for this area (another
   * domain of the table taking over, or the halves of a split area).
   */
  hold(domain: IommuDomain): void {
    this.domain = domain;
    const pages = this.pages;
    const first = this.firstIndex;
    const last = this.lastIndex;
    let end = first;
    while (end < last && pages.frame(end + 1) === pages.frame(end) + 1) end++;
    this.firstPfn = pages.frame(first);
    this.firstRunPages = end - first + 1;
    if (end === last) {
      this.laterRuns = null;
      return;
    }
    const runs: number[] = [end + 1 - first, pages.frame(end + 1)];
    for (let i = end + 2; i <= last; i++) {
      if (pages.frame(i) !== pages.frame(i - 1) + 1) runs.push(i - first, pages.frame(i));
    }
    this.laterRuns = Float64Array.from(runs);
  }

  /** Index into laterRuns (in pairs) of the run holding `page`, which is past the first run. */
  private laterRunOf(page: number): number {
    const runs = this.laterRuns!;
    let lo = 0;
    let hi = (runs.length >> 1) - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (runs[mid * 2]! <= page) lo = mid;
      else hi = mid - 1;
    }
    return lo;
  }

  /** Frame of the area's page `page` (0 = its first page) in the storage domain. */
  frameAt(page: number): number {
    if (page < this.firstRunPages) return this.firstPfn + page;
    const r = this.laterRunOf(page);
    return this.laterRuns![r * 2 + 1]! + (page - this.laterRuns![r * 2]!);
  }

  /** How many pages from `page` to the end of the area have consecutive frames (≥ 1). */
  contiguousFrom(page: number): number {
    if (page < this.firstRunPages) return this.firstRunPages - page;
    const runs = this.laterRuns!;
    const r = this.laterRunOf(page);
    const runEnd = r * 2 + 2 < runs.length ? runs[r * 2 + 2]! : this.lastIndex - this.firstIndex + 1;
    return runEnd - page;
  }
}

/** One element of the pages list map/copy work on (struct iopt_pages_list). */
export interface PagesSlice {
  readonly pages: IoPages;
  readonly startByte: bigint;
  readonly length: bigint;
}

/** A physically contiguous piece of a translated range. */
export interface PhysSegment {
  readonly phys: bigint;
  readonly length: number;
}

export class IoPagetable {
  readonly areas = new IntervalTree<Area>({ tags: 2 });
  private allowed: IovaInterval[] = [];
  private reserved: Reserved[] = [];
  readonly domains: IommuDomain[] = [];
  /** iopt->iova_alignment: 1 for a table without domains. */
  iovaAlignment = 1n;
  disableLargePages = false;

  constructor(
    readonly pageSize: bigint,
    /** HPAGE_SIZE with CONFIG_TRANSPARENT_HUGEPAGE, else PAGE_SIZE: caps the automatic alignment. */
    private readonly maxAutoAlignment: bigint,
    private readonly faults: FaultInjector = new FaultInjector(),
  ) {
    this.pageSizeN = Number(pageSize);
  }

  /** pageSize as a number, for the arithmetic of the GET_PA path. */
  private readonly pageSizeN: number;

  get allowedRanges(): readonly IovaInterval[] {
    return this.allowed;
  }

  get reservedRanges(): readonly IovaInterval[] {
    return this.reserved;
  }

  /** Pages pinned through this table's areas, counted once per IoPages. */
  pinnedPages(): number {
    const seen = new Set<IoPages>();
    let n = 0;
    for (const { value } of this.areas) {
      if (seen.has(value.pages)) continue;
      seen.add(value.pages);
      n += value.pages.npinned;
    }
    return n;
  }

  // ---- IOVA choice ------------------------------------------------------------------------

  /**
   * iopt_alloc_iova: the lowest IOVA (never 0) inside the allowed ranges (or [PAGE_SIZE,
   * ULONG_MAX - PAGE_SIZE] when none are set) that is outside reserved ranges and areas, aligned
   * to min(roundup_pow_of_two(length), lowest set bit of `addr`) capped at HPAGE_SIZE, and
   * carrying addr's offset in its page.
   */
  allocIova(addr: bigint, length: bigint): bigint {
    const ps = this.pageSize;
    const pageOffset = addr % ps;
    if (length === 0n || length >= ULONG_MAX / 2n) fail('EOVERFLOW');
    let align = roundupPowOfTwo(length);
    if (addr !== 0n) {
      const low = addr & -addr;
      if (low < align) align = low;
    }
    if (align >= this.maxAutoAlignment) align = this.maxAutoAlignment;
    if (align < this.iovaAlignment) fail('EINVAL');

    for (const span of this.allowedSpans()) {
      // __alloc_iova_check_used on the allowed span moves its start to the aligned candidate.
      const spanStart = checkRange(span.start, span.last, length, align, pageOffset);
      if (spanStart === null) continue;
      for (const hole of this.holes(spanStart, span.last, length)) {
        const at = checkRange(hole.start, hole.last, length, align, pageOffset);
        if (at !== null) return at;
      }
    }
    fail('ENOSPC');
  }

  /** The allowed IOVA, as the used spans of the allowed tree over [PAGE_SIZE, ULONG_MAX - PAGE_SIZE]. */
  private allowedSpans(): IovaInterval[] {
    const lo = this.pageSize;
    const hi = ULONG_MAX - this.pageSize;
    if (this.allowed.length === 0) return [{ start: lo, last: hi }];
    const spans: { start: bigint; last: bigint }[] = [];
    for (const r of this.allowed) {
      const start = r.start < lo ? lo : r.start;
      const last = r.last > hi ? hi : r.last;
      if (start > last) continue;
      const prev = spans[spans.length - 1];
      // Adjacent or overlapping ranges form one span (interval_tree_span_iter).
      if (prev && start <= prev.last + 1n) {
        if (last > prev.last) prev.last = last;
      } else spans.push({ start, last });
    }
    return spans;
  }

  /**
   * Maximal holes of (reserved ∪ areas) within [lo, hi] that are at least `minSize` long,
   * ascending (interval_tree_for_each_double_span's holes, minus the ones too small to matter).
   */
  private *holes(lo: bigint, hi: bigint, minSize: bigint): Generator<IovaInterval> {
    let windowStart = lo;
    for (const r of mergeRanges(this.reserved)) {
      if (r.last < windowStart) continue;
      if (r.start > hi) break;
      if (r.start > windowStart) yield* this.areas.holesAscending(windowStart, r.start - 1n, minSize);
      if (r.last >= hi) return;
      windowStart = r.last + 1n;
    }
    yield* this.areas.holesAscending(windowStart, hi, minSize);
  }

  /** iopt_check_iova: a fixed IOVA must be aligned, not reserved and not mapped. */
  checkIova(iova: bigint, length: bigint): void {
    if (iova & (this.iovaAlignment - 1n)) fail('EINVAL');
    const last = iova + length - 1n;
    if (last > ULONG_MAX) fail('EOVERFLOW');
    if (this.reservedOverlap(iova, last)) fail('EINVAL');
    if (this.areas.firstOverlapSlot(iova, last) >= 0) fail('EEXIST');
  }

  private reservedOverlap(start: bigint, last: bigint): boolean {
    return this.reserved.some((r) => r.start <= last && r.last >= start);
  }

  // ---- loading areas into domains -----------------------------------------------------------

  private loadArea(area: Area, domain: IommuDomain): void {
    area.load(domain);
    this.publishTranslation(area);
  }

  private unloadArea(area: Area): void {
    area.unload();
    this.publishTranslation(area);
  }

  private holdArea(area: Area, domain: IommuDomain): void {
    area.hold(domain);
    this.publishTranslation(area);
  }

  /**
   * Copies into the area's tree entry what GET_PA needs for an IOVA in the area's first
   * physically contiguous run — the physical address of the area's first byte and how many bytes
   * from there that run covers — when the storage domain is the noiommu one; NaN otherwise. A
   * GET_PA there answers from the tree leaf alone; anything else takes the path through the Area.
   */
  private publishTranslation(area: Area): void {
    const domain = area.storageDomain;
    const ps = this.pageSizeN;
    const fast = domain !== null && domain.owner === 'noiommu';
    // Tags in order: TAG_PHYS_START, TAG_FIRST_RUN_BYTES.
    if (fast) this.areas.setTags(area.iova, area.frameAt(0) * ps + area.pageOffset, area.contiguousFrom(0) * ps - area.pageOffset);
    else this.areas.setTags(area.iova, NaN, NaN);
  }

  // ---- map / unmap --------------------------------------------------------------------------

  /**
   * iopt_map_pages: places the slices at `iova` (or an allocated IOVA when `iova` is null, sized
   * and aligned after the first slice's address `firstAddr`), loads them into the domains, and
   * returns the IOVA. On failure nothing is left mapped or pinned; the slices' page references
   * stay with the caller.
   */
  mapPages(slices: readonly PagesSlice[], length: bigint, iova: bigint | null, prot: number, firstAddr: bigint): bigint {
    // iopt_area_alloc for every slice comes first.
    for (let i = 0; i < slices.length; i++) this.faults.point('iommufd.area-alloc');
    if (length & (this.iovaAlignment - 1n) || length === 0n) fail('EINVAL');
    let at: bigint;
    if (iova === null) at = this.allocIova(firstAddr, length);
    else {
      this.checkIova(iova, length);
      at = iova;
    }
    const inserted: Area[] = [];
    const filled: Area[] = [];
    try {
      let cur = at;
      for (const s of slices) {
        inserted.push(this.insertArea(s, cur, prot));
        cur += s.length;
      }
      if (this.domains.length > 0) {
        for (const area of inserted) {
          this.loadArea(area, this.domains[0]!);
          filled.push(area);
        }
      }
    } catch (e) {
      for (const area of filled) {
        this.unloadArea(area);
      }
      for (const area of inserted) this.areas.remove(area.iova);
      throw e;
    }
    return at;
  }

  /** iopt_insert_area. */
  private insertArea(s: PagesSlice, iova: bigint, prot: number): Area {
    const ps = this.pageSize;
    if (prot & IOMMU_WRITE && !s.pages.writable) fail('EPERM');
    const pageOffset = s.startByte % ps;
    if (pageOffset & (this.iovaAlignment - 1n)) fail('EINVAL');
    const last = iova + s.length - 1n;
    if (last > ULONG_MAX) fail('EOVERFLOW');
    const firstIndex = s.startByte / ps;
    const lastIndex = (s.startByte + s.length - 1n) / ps;
    if (lastIndex >= BigInt(s.pages.npages)) fail('EOVERFLOW');
    const area = new Area(iova, last, s.pages, Number(pageOffset), Number(firstIndex), Number(lastIndex), prot);
    this.areas.insert(iova, last, area);
    return area;
  }

  /**
   * iopt_unmap_iova_range: removes every area inside [start, last]. An area that sticks out of
   * the range stops the walk with ENOENT (areas before it stay unmapped). Returns the bytes
   * unmapped.
   */
  unmapRange(start: bigint, last: bigint): bigint {
    let unmapped = 0n;
    let from = start;
    for (;;) {
      const slot = this.areas.firstOverlapSlot(from, last);
      if (slot < 0) break;
      const area = this.areas.valueAt(slot);
      if (area.iova < from || area.last > last) {
        const err = new UnmapError('ENOENT', unmapped);
        throw err;
      }
      this.removeArea(area);
      unmapped += area.length;
      if (area.last >= last) break;
      from = area.last + 1n;
    }
    return unmapped;
  }

  private removeArea(area: Area): void {
    // The tree entry goes next, so its translation tags need no update.
    if (area.storageDomain) area.unload();
    this.areas.remove(area.iova);
    area.pages.put();
  }

  /**
   * iopt_cut_iova (VFIO type1 compatibility): splits the areas containing each IOVA so that the
   * IOVA becomes the last byte of the left part (iopt_area_split).
   */
  cutIova(iovas: readonly bigint[]): void {
    for (const iova of iovas) {
      const area = this.areas.findValue(iova);
      if (!area) continue;
      this.splitArea(area, iova);
    }
  }

  private splitArea(area: Area, iova: bigint): void {
    if (iova === area.iova || iova === area.last) return;
    const newStart = iova + 1n;
    const align = this.iovaAlignment;
    if (newStart & (align - 1n) || area.startByte(newStart, this.pageSize) & (align - 1n)) fail('EINVAL');
    // A domain may hold the area in huge IOPTEs, which cannot be split.
    if (area.storageDomain && !this.disableLargePages) fail('EINVAL');
    const ps = this.pageSize;
    const lhsStart = area.startByte(area.iova, ps);
    const rhsStart = area.startByte(newStart, ps);
    const mk = (iovaStart: bigint, last: bigint, startByte: bigint) => {
      const a = new Area(
        iovaStart,
        last,
        area.pages,
        Number(startByte % ps),
        Number(startByte / ps),
        Number((startByte + (last - iovaStart)) / ps),
        area.prot,
      );
      return a;
    };
    const lhs = mk(area.iova, iova, lhsStart);
    const rhs = mk(newStart, area.last, rhsStart);
    this.areas.remove(area.iova);
    this.areas.insert(lhs.iova, lhs.last, lhs);
    this.areas.insert(rhs.iova, rhs.last, rhs);
    if (area.storageDomain) {
      this.holdArea(lhs, area.storageDomain);
      this.holdArea(rhs, area.storageDomain);
    }
    // The pages gain a reference for the second area; each page is still covered exactly once.
    area.pages.refs++;
  }

  /** iopt_unmap_iova. */
  unmapIova(iova: bigint, length: bigint): bigint {
    if (length === 0n) fail('EINVAL');
    const last = iova + length - 1n;
    if (last > ULONG_MAX) fail('EOVERFLOW');
    return this.unmapRange(iova, last);
  }

  /** iopt_unmap_all. */
  unmapAll(): bigint {
    return this.unmapRange(0n, ULONG_MAX);
  }

  /**
   * iopt_get_pages (IOAS_COPY source): the slices of contiguous areas covering [iova, iova +
   * length - 1], each holding a reference on its pages. ENOENT if any IOVA in it is unmapped.
   */
  getPages(iova: bigint, length: bigint): PagesSlice[] {
    if (length === 0n) fail('EINVAL');
    const lastIova = iova + length - 1n;
    if (lastIova > ULONG_MAX) fail('EOVERFLOW');
    const out: PagesSlice[] = [];
    let cur = iova;
    let area = this.areas.findValue(iova);
    while (area) {
      const last = lastIova < area.last ? lastIova : area.last;
      out.push({ pages: area.pages, startByte: area.startByte(cur, this.pageSize), length: last - cur + 1n });
      if (lastIova <= area.last) {
        for (const s of out) s.pages.refs++;
        return out;
      }
      cur = area.last + 1n;
      const next = this.areas.next(area.iova)?.value;
      area = next && next.iova === cur ? next : undefined;
    }
    fail('ENOENT');
  }

  // ---- noiommu physical address lookup ------------------------------------------------------

  /**
   * iopt_get_phys (IOMMU_IOAS_NOIOMMU_GET_PA): the physical address of `iova` and how many bytes
   * from there are physically contiguous — the rest of iova's page, then whole pages while the
   * next page is in the same area, physically adjacent and the running length is below
   * `maxLength`; finally clipped to `maxLength`. Never crosses into another area.
   */
  getPhys(iova: bigint, maxLength: bigint): { phys: bigint; length: bigint } {
    if (maxLength === 0n) fail('EINVAL');
    const iovaN = Number(iova);
    const slot = this.areas.findSlot(iova, iovaN);
    if (slot < 0) fail('ENOENT');
    // A loaded area is backed by pinned RAM, so offsets inside it fit a double exactly; below
    // 2^53 the IOVAs do too, and the area's bounds come from the tree leaf the lookup just read.
    const ps = this.pageSizeN;
    const lastN = this.areas.lastNOf(slot);
    let off: number;
    let toAreaEnd: number;
    let inPage: number;
    if (lastN <= Number.MAX_SAFE_INTEGER) {
      off = iovaN - this.areas.startNOf(slot);
      toAreaEnd = lastN - iovaN + 1;
      inPage = iovaN % ps;
    } else {
      const area = this.areas.valueAt(slot);
      off = Number(iova - area.iova);
      toAreaEnd = Number(area.last - iova) + 1;
      inPage = Number(iova % this.pageSize);
    }
    // The physical address, and how many pages from its page on are physically contiguous
    // within the area.
    let phys: number;
    let runPages: number;
    const physStart = this.areas.tagOf(slot, TAG_PHYS_START);
    const firstRunBytes = this.areas.tagOf(slot, TAG_FIRST_RUN_BYTES);
    if (off < firstRunBytes) {
      // Loaded in the noiommu domain, and inside the first run (NaN compares false otherwise).
      phys = physStart + off;
      runPages = (firstRunBytes - off + (phys % ps)) / ps;
    } else {
      const area = this.areas.valueAt(slot);
      const domain = area.storageDomain;
      if (!domain || domain.owner !== 'noiommu') fail('EOPNOTSUPP');
      const byte = off + area.pageOffset;
      const page = Math.floor(byte / ps);
      phys = area.frameAt(page) * ps + (byte - page * ps);
      runPages = area.contiguousFrom(page);
    }
    const cap = maxLength > MAX_SAFE ? Number.MAX_SAFE_INTEGER : Number(maxLength);
    let length = Math.min(ps - inPage, toAreaEnd);
    if (length < cap && toAreaEnd > 1) {
      // Whole-page steps stay inside the area while next_iova <= area.last; count how many are
      // possible, how many the cap still wants, and how many land on adjacent frames.
      const stepsInArea = Math.floor((toAreaEnd - 1) / ps);
      const stepsWanted = Math.ceil((cap - length) / ps);
      const steps = Math.min(stepsInArea, stepsWanted);
      if (steps > 0) length += Math.min(runPages - 1, steps) * ps;
    }
    if (length > cap) length = cap;
    return { phys: BigInt(phys), length: BigInt(length) };
  }

  /**
   * Checks the area tree, each loaded area's recorded translation against its pinned pages, and
   * the tags GET_PA's fast path reads; for tests.
   */
  checkInvariants(): void {
    this.areas.checkInvariants();
    const ps = this.pageSizeN;
    for (const { start, value: area } of this.areas) {
      const slot = this.areas.findSlot(start);
      const physStart = this.areas.tagOf(slot, TAG_PHYS_START);
      const firstRunBytes = this.areas.tagOf(slot, TAG_FIRST_RUN_BYTES);
      const domain = area.storageDomain;
      if (!domain) {
        if (!Number.isNaN(physStart) || !Number.isNaN(firstRunBytes))
          throw new Error(`io_pagetable: unloaded area 0x${start.toString(16)} has a translation`);
        continue;
      }
      const pages = area.lastIndex - area.firstIndex + 1;
      for (let page = 0; page < pages; page++) {
        const pfn = area.pages.frame(area.firstIndex + page);
        if (area.frameAt(page) !== pfn)
          throw new Error(`io_pagetable: area 0x${start.toString(16)} page ${page}: frame ${area.frameAt(page)}, pinned ${pfn}`);
        let run = 1;
        while (page + run < pages && area.pages.frame(area.firstIndex + page + run) === pfn + run) run++;
        if (area.contiguousFrom(page) !== run)
          throw new Error(
            `io_pagetable: area 0x${start.toString(16)} page ${page}: run of ${area.contiguousFrom(page)}, frames say ${run}`,
          );
      }
      const fast = domain.owner === 'noiommu';
      const expectStart = fast ? area.pages.frame(area.firstIndex) * ps + area.pageOffset : NaN;
      const expectRun = fast ? area.contiguousFrom(0) * ps - area.pageOffset : NaN;
      if (!Object.is(physStart, expectStart) || !Object.is(firstRunBytes, expectRun)) {
        throw new Error(
          `io_pagetable: area 0x${start.toString(16)} tags (${physStart}, ${firstRunBytes}), expected (${expectStart}, ${expectRun})`,
        );
      }
    }
  }

  /** iommu_iova_to_phys on the area's storage domain. */
  iovaToPhys(area: Area, iova: bigint): bigint {
    const ps = this.pageSize;
    const byte = iova - area.iova + BigInt(area.pageOffset);
    return BigInt(area.frameAt(Number(byte / ps))) * ps + (byte % ps);
  }

  /**
   * Device DMA through a domain of this table: the physical pieces of [iova, iova + length), or
   * the reason it faults.
   */
  translate(iova: bigint, length: number, write: boolean): PhysSegment[] | 'unmapped-iova' | 'permission' {
    const out: PhysSegment[] = [];
    const ps = this.pageSize;
    let cur = iova;
    let left = BigInt(length);
    while (left > 0n) {
      const area = this.areas.findValue(cur);
      if (!area || !area.storageDomain) return 'unmapped-iova';
      if (!(area.prot & (write ? IOMMU_WRITE : IOMMU_READ))) return 'permission';
      const inArea = area.last - cur + 1n;
      let chunk = left < inArea ? left : inArea;
      const inPage = area.startByte(cur, ps) % ps;
      if (ps - inPage < chunk) chunk = ps - inPage;
      const phys = this.iovaToPhys(area, cur);
      const prev = out[out.length - 1];
      if (prev && prev.phys + BigInt(prev.length) === phys) out[out.length - 1] = { phys: prev.phys, length: prev.length + Number(chunk) };
      else out.push({ phys, length: Number(chunk) });
      cur += chunk;
      left -= chunk;
    }
    return out;
  }

  // ---- allowed / reserved ranges ------------------------------------------------------------

  /** iopt_set_allow_iova: replaces the allowed ranges unless one hits a reserved range (EADDRINUSE). */
  setAllowedIovas(ranges: IovaInterval[]): void {
    for (const r of ranges) if (this.reservedOverlap(r.start, r.last)) fail('EADDRINUSE');
    this.allowed = [...ranges].sort((a, b) => (a.start < b.start ? -1 : a.start > b.start ? 1 : 0));
  }

  /** iopt_reserve_iova: EADDRINUSE over an area or an allowed range. */
  reserveIova(start: bigint, last: bigint, owner: object): void {
    if (this.areas.firstOverlap(start, last)) fail('EADDRINUSE');
    if (this.allowed.some((r) => r.start <= last && r.last >= start)) fail('EADDRINUSE');
    this.reserved.push({ start, last, owner });
    this.reserved.sort((a, b) => (a.start < b.start ? -1 : a.start > b.start ? 1 : 0));
  }

  /** iopt_remove_reserved_iova. */
  removeReserved(owner: object): void {
    this.reserved = this.reserved.filter((r) => r.owner !== owner);
  }

  /** IOMMU_IOAS_IOVA_RANGES: the holes of the reserved ranges over [0, ULONG_MAX]. */
  iovaRanges(): IovaInterval[] {
    const out: IovaInterval[] = [];
    let cur = 0n;
    for (const r of mergeRanges(this.reserved)) {
      if (r.start > cur) out.push({ start: cur, last: r.start - 1n });
      if (r.last >= ULONG_MAX) return out;
      if (r.last + 1n > cur) cur = r.last + 1n;
    }
    out.push({ start: cur, last: ULONG_MAX });
    return out;
  }

  /**
   * iopt_table_enforce_dev_resv_regions: reserves a device's regions for `owner`; EADDRINUSE
   * (with none of them kept) when one collides with an area or allowed range.
   */
  enforceReservedRegions(regions: readonly IovaInterval[], owner: object): void {
    this.faults.point('iommufd.resv-regions');
    try {
      for (const r of regions) this.reserveIova(r.start, r.last, owner);
    } catch (e) {
      this.removeReserved(owner);
      throw e;
    }
  }

  // ---- domains ------------------------------------------------------------------------------

  /** iopt_table_add_domain: aperture reservations, alignment, then load every area. */
  addDomain(domain: IommuDomain): void {
    const newAlign = domain.minPageSize > this.iovaAlignment ? domain.minPageSize : this.iovaAlignment;
    if (newAlign > this.pageSize) fail('EINVAL');
    if (newAlign !== this.iovaAlignment) this.checkAlignment(newAlign);
    try {
      if (domain.apertureStart !== 0n) this.reserveIova(0n, domain.apertureStart - 1n, domain);
      if (domain.apertureEnd !== ULONG_MAX) this.reserveIova(domain.apertureEnd + 1n, ULONG_MAX, domain);
    } catch (e) {
      this.removeReserved(domain);
      throw e;
    }
    const loaded: Area[] = [];
    try {
      for (const { value: area } of this.areas) {
        if (area.storageDomain) continue;
        this.loadArea(area, domain);
        loaded.push(area);
      }
    } catch (e) {
      for (const area of loaded) this.unloadArea(area);
      this.removeReserved(domain);
      throw e;
    }
    this.iovaAlignment = newAlign;
    this.domains.push(domain);
  }

  /** iopt_table_remove_domain. */
  removeDomain(domain: IommuDomain): void {
    const index = this.domains.indexOf(domain);
    if (index < 0) return;
    // Keep the array dense by moving the tail entry into the hole, as the kernel does.
    const tail = this.domains.pop()!;
    if (index < this.domains.length) this.domains[index] = tail;
    if (this.domains.length > 0) {
      const storage = this.domains[0]!;
      for (const { value: area } of this.areas) if (area.storageDomain === domain) this.holdArea(area, storage);
    } else {
      for (const { value: area } of this.areas) {
        if (area.storageDomain) this.unloadArea(area);
      }
    }
    this.removeReserved(domain);
    this.recalculateAlignment();
  }

  /** iopt_check_iova_alignment: every area must conform to a larger alignment (EADDRINUSE). */
  private checkAlignment(align: bigint): void {
    const mask = align - 1n;
    for (const { value: a } of this.areas) {
      if (a.iova & mask || a.length & mask || BigInt(a.pageOffset) & mask) fail('EADDRINUSE');
    }
  }

  /** iopt_calculate_iova_alignment. */
  private recalculateAlignment(): void {
    let align = this.disableLargePages ? this.pageSize : 1n;
    for (const d of this.domains) if (d.minPageSize > align) align = d.minPageSize;
    if (align > this.iovaAlignment) this.checkAlignment(align);
    this.iovaAlignment = align;
  }

  /** iopt_disable_large_pages (IOMMU_OPTION_HUGE_PAGES = 0). */
  disableHugePages(): void {
    if (this.disableLargePages) return;
    if (this.domains.length > 0 && this.areas.size > 0) fail('EINVAL');
    this.disableLargePages = true;
    try {
      this.recalculateAlignment();
    } catch (e) {
      this.disableLargePages = false;
      throw e;
    }
  }

  /** iopt_enable_large_pages. */
  enableHugePages(): void {
    this.disableLargePages = false;
    this.recalculateAlignment();
  }
}

/** A failed unmap that still removed `unmapped` bytes before it stopped. */
export class UnmapError extends Error {
  constructor(
    readonly code: 'ENOENT',
    readonly unmapped: bigint,
  ) {
    super(code);
    this.name = 'UnmapError';
  }
}

/** __alloc_iova_check_range: the aligned start inside [start, last] with room for `length`, or null. */
function checkRange(start: bigint, last: bigint, length: bigint, align: bigint, pageOffset: bigint): bigint | null {
  let aligned = start + align - 1n;
  if (aligned > ULONG_MAX) return null;
  aligned &= ~(align - 1n);
  aligned |= pageOffset;
  if (aligned >= last || last - aligned < length - 1n) return null;
  return aligned;
}

function roundupPowOfTwo(n: bigint): bigint {
  let p = 1n;
  while (p < n) p <<= 1n;
  return p;
}

/** Sorted ranges merged where they overlap or touch. */
function mergeRanges(ranges: readonly IovaInterval[]): IovaInterval[] {
  const out: { start: bigint; last: bigint }[] = [];
  for (const r of ranges) {
    const prev = out[out.length - 1];
    if (prev && r.start <= prev.last + 1n) {
      if (r.last > prev.last) prev.last = r.last;
    } else out.push({ start: r.start, last: r.last });
  }
  return out;
}
