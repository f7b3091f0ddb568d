/**
 * Rules every correct kernel's trace obeys, checked without a second kernel. The checker replays
 * the program's effect on a shadow of the IOVA space (which areas are live in which IOAS, which
 * arena pages they pin) using only the answers in the trace, then holds each answer against the
 * iommufd rules that do not depend on the machine:
 *
 *  - nothing but kernel errors: an operation that threw anything else is a bug;
 *  - a fixed IOVA is honoured; a new area never overlaps a live one of the same IOAS;
 *  - an automatic IOVA keeps the user address's offset within the page and is aligned as
 *    iopt_alloc_iova promises (the smaller of the length rounded up to a power of two, the user
 *    address's own alignment and HPAGE_SIZE), and is never below PAGE_SIZE;
 *  - a successful unmap returns exactly the bytes of the live areas inside the range, and only
 *    fails with ENOENT when nothing is inside or an area sticks out;
 *  - NOIOMMU_GET_PA finds an area exactly where the shadow has one; the offset of the physical
 *    address within its page is the user address's; the length is one of the values the
 *    kernel's page walk can produce (iopt_get_phys): the rest of the first page, plus whole
 *    pages while inside the area, clipped to the cap;
 *  - one user page is one physical frame while it stays pinned, and two pages pinned at the same
 *    time never share a frame;
 *  - new ids are positive and never the id of a live IOAS; IOVA ranges are sorted, disjoint and
 *    come with a power-of-two alignment.
 */
import { ARENA_PAGES, parseHex, type FuzzOp, type FuzzProgram, type ObjectRef } from './program';
import type { Trace, TraceEntry } from './trace';

export interface InvariantViolation {
  /** Index of the operation whose answer breaks the rule. */
  readonly index: number;
  /** Short rule name, stable across runs (used to keep shrinking on the same failure). */
  readonly rule: string;
  readonly message: string;
}

export interface InvariantOptions {
  readonly pageSize: number;
}

/** What an area slot (a map or copy) names: the range it created. */
interface SlotRange {
  readonly ioasId: number;
  readonly iova: bigint;
  readonly last: bigint;
}

/** A live area of the IOVA space. */
interface ShadowArea extends SlotRange {
  /**
   * Where the area's first byte lives: a byte offset into the arena, or for memfd areas
   * FILE_BASE plus the file offset (one numbering for both, so a page is a page).
   */
  readonly backing: bigint;
}

const U64_MASK = (1n << 64n) - 1n;

/** Backing pages from here on are the memfd's (arena pages come first, then a gap). */
const FILE_BASE_PAGES = 2 * ARENA_PAGES;

/** The address iopt_alloc_iova aligns to: the user address (arena) or the file offset (memfd). */
function alignmentSource(backing: bigint, page: bigint): bigint {
  const fileBase = BigInt(FILE_BASE_PAGES) * page;
  return backing >= fileBase ? backing - fileBase : backing;
}

const HPAGE_SIZE = 2n << 20n;

function roundUpPow2(n: bigint): bigint {
  let p = 1n;
  while (p < n) p <<= 1n;
  return p;
}

function lowestBit(n: bigint): bigint {
  return n & -n;
}

/** Slot lookup exactly as the runner does it: past the end wraps around, an empty list has nothing. */
function at<T>(list: readonly T[], index: number): T | undefined {
  return list.length === 0 ? undefined : list[index % list.length];
}

class Shadow {
  readonly ioasIds: number[] = [];
  readonly hwptIds: number[] = [];
  readonly attachedIds: number[] = [];
  readonly deviceIds: (number | undefined)[] = [undefined, undefined];
  readonly deviceOpen: boolean[] = [false, false];
  /** Area ranges by slot (the runner's numbering), live or not. */
  readonly areaSlots: SlotRange[] = [];
  /** Live areas per IOAS id. */
  readonly live = new Map<number, ShadowArea[]>();
  /** Per arena page: how often it went from pinned to unpinned (a frame seen in one epoch may change in the next). */
  readonly pageEpoch = new Int32Array(FILE_BASE_PAGES + ARENA_PAGES + 1);
  readonly pageFrame = new Map<number, { label: string; epoch: number }>();
  readonly frameOwner = new Map<string, { page: number; epoch: number }>();

  constructor(readonly page: bigint) {}

  resolve(ref: ObjectRef): number | undefined {
    switch (ref.kind) {
      case 'ioas':
        return at(this.ioasIds, ref.slot);
      case 'hwpt':
        return at(this.hwptIds, ref.slot);
      case 'attached':
        return at(this.attachedIds, ref.slot);
      case 'device':
        return this.deviceIds[ref.device];
      case 'raw':
        return ref.id;
    }
  }

  areasOf(ioasId: number): ShadowArea[] {
    return this.live.get(ioasId) ?? [];
  }

  covering(ioasId: number, iova: bigint): ShadowArea | undefined {
    return this.areasOf(ioasId).find((a) => a.iova <= iova && iova <= a.last);
  }

  pagesOf(a: ShadowArea): [number, number] {
    return [Number(a.backing / this.page), Number((a.backing + (a.last - a.iova)) / this.page)];
  }

  pinned(page: number): boolean {
    for (const areas of this.live.values()) {
      for (const a of areas) {
        const [first, last] = this.pagesOf(a);
        if (first <= page && page <= last) return true;
      }
    }
    return false;
  }

  /** Removes areas; pages no live area pins any more start a new epoch. */
  remove(ioasId: number, gone: readonly ShadowArea[]): void {
    if (gone.length === 0) return;
    this.live.set(
      ioasId,
      this.areasOf(ioasId).filter((a) => !gone.includes(a)),
    );
    this.unpinCheck(gone);
  }

  dropIoas(ioasId: number): void {
    const gone = this.areasOf(ioasId);
    this.live.delete(ioasId);
    this.unpinCheck(gone);
  }

  private unpinCheck(gone: readonly ShadowArea[]): void {
    for (const a of gone) {
      const [first, last] = this.pagesOf(a);
      for (let p = first; p <= last && p < this.pageEpoch.length; p++) if (!this.pinned(p)) this.pageEpoch[p]!++;
    }
  }
}

/** The violations of `trace` (the run of `program`), in operation order; empty when it obeys every rule. */
export function checkInvariants(program: FuzzProgram, trace: Trace, options: InvariantOptions): InvariantViolation[] {
  const page = BigInt(options.pageSize);
  const s = new Shadow(page);
  const violations: InvariantViolation[] = [];
  const n = Math.min(program.ops.length, trace.entries.length);
  for (let i = 0; i < n; i++) {
    const op = program.ops[i]!;
    const entry = trace.entries[i]!;
    const fail = (rule: string, message: string): void => {
      violations.push({ index: i, rule, message });
    };
    if (entry.op !== op.op) {
      fail('trace-shape', `entry ${i} records ${entry.op} for a ${op.op} operation`);
      break;
    }
    if (entry.result.startsWith('throw')) fail('no-throw', `${op.op} threw instead of answering with an errno: ${entry.result}`);
    step(s, op, entry, page, fail);
  }
  if (trace.entries.length !== program.ops.length) {
    violations.push({
      index: n,
      rule: 'trace-shape',
      message: `${program.ops.length} operations but ${trace.entries.length} trace entries`,
    });
  }
  return violations;
}

function outString(entry: TraceEntry, key: string): string {
  const v = entry.out?.[key];
  if (typeof v !== 'string') throw new Error(`trace entry for ${entry.op} lacks '${key}'`);
  return v;
}

function outNumber(entry: TraceEntry, key: string): number {
  const v = entry.out?.[key];
  if (typeof v !== 'number') throw new Error(`trace entry for ${entry.op} lacks '${key}'`);
  return v;
}

function step(s: Shadow, op: FuzzOp, entry: TraceEntry, page: bigint, fail: (rule: string, message: string) => void): void {
  const ok = entry.result === 'ok';
  const newId = (id: number, what: string): void => {
    if (!(id > 0)) fail('id-positive', `${what} got id ${id}`);
    if (s.live.has(id)) fail('id-unique', `${what} got id ${id}, which a live IOAS still has`);
  };
  switch (op.op) {
    case 'ioas-alloc':
      if (ok) {
        const id = outNumber(entry, 'id');
        newId(id, 'IOMMU_IOAS_ALLOC');
        s.ioasIds.push(id);
        s.live.set(id, []);
      }
      return;
    case 'destroy': {
      const id = s.resolve(op.target);
      if (ok && id !== undefined && s.live.has(id)) s.dropIoas(id);
      return;
    }
    case 'map':
    case 'map-file':
    case 'copy': {
      if (!ok) return;
      const iova = parseHex(outString(entry, 'iova'));
      const slot = outNumber(entry, 'area');
      const created =
        op.op === 'map'
          ? mapPieces(s, op, iova, page)
          : op.op === 'map-file'
            ? mapFilePieces(s, op, iova, page)
            : copyPieces(s, op, iova, page);
      if (!created) throw new Error(`${op.op} succeeded on slots the shadow cannot resolve`);
      const { ioasId, pieces, length } = created;
      const last = iova + length - 1n;
      s.areaSlots[slot] = { ioasId, iova, last };
      const fixed = arg(entry, 'iova');
      if (fixed !== undefined && iova !== parseHex(String(fixed)))
        fail('fixed-iova', `${op.op} at fixed IOVA ${fixed} answered IOVA 0x${iova.toString(16)}`);
      if (fixed === undefined && pieces.length > 0) {
        // iopt_alloc_iova: the alignment of the first byte's user address, capped by the length
        // and HPAGE_SIZE (the arena is HPAGE-aligned, so only the offset inside it matters).
        const addr = alignmentSource(pieces[0]!.backing, page);
        const pageOffset = addr % page;
        let align = roundUpPow2(length);
        if (addr !== 0n && lowestBit(addr) < align) align = lowestBit(addr);
        if (align > HPAGE_SIZE) align = HPAGE_SIZE;
        if (iova % page !== pageOffset)
          fail('auto-iova-offset', `automatic IOVA 0x${iova.toString(16)} does not keep the user page offset 0x${pageOffset.toString(16)}`);
        if ((iova - pageOffset) % align !== 0n)
          fail('auto-iova-alignment', `automatic IOVA 0x${iova.toString(16)} is not aligned to 0x${align.toString(16)}`);
        if (iova < page)
          fail('auto-iova-zero', `automatic IOVA 0x${iova.toString(16)} lies in the first page, which iopt_alloc_iova never hands out`);
      }
      const clash = s.areasOf(ioasId).find((a) => a.iova <= last && iova <= a.last);
      if (clash)
        fail(
          'area-overlap',
          `${op.op} created [0x${iova.toString(16)}, 0x${last.toString(16)}] over the live area [0x${clash.iova.toString(16)}, 0x${clash.last.toString(16)}]`,
        );
      s.live.set(ioasId, [...s.areasOf(ioasId), ...pieces]);
      return;
    }
    case 'unmap':
    case 'unmap-span':
    case 'unmap-all':
    case 'unmap-range':
      unmapStep(s, op, entry, fail);
      return;
    case 'get-pa':
      getPaStep(s, op, entry, page, fail);
      return;
    case 'iova-ranges': {
      if (!ok) return;
      const ranges = (entry.out?.['ranges'] ?? []) as readonly (readonly string[])[];
      const alignment = parseHex(outString(entry, 'alignment'));
      // 1 while no domain is attached (iopt_init_table), the domain's smallest page size after.
      if (alignment < 1n || (alignment & (alignment - 1n)) !== 0n)
        fail('iova-alignment', `IOVA alignment 0x${alignment.toString(16)} is not a power of two`);
      let previousLast = -1n;
      for (const [start, last] of ranges) {
        const a = parseHex(start!);
        const b = parseHex(last!);
        if (a > b || a <= previousLast) fail('iova-ranges-order', `IOVA ranges are not sorted and disjoint: ${JSON.stringify(ranges)}`);
        previousLast = b;
      }
      return;
    }
    case 'device-open':
      if (ok) s.deviceOpen[op.device] = true;
      return;
    case 'device-close':
      if (entry.result !== 'skip') {
        s.deviceOpen[op.device] = false;
        s.deviceIds[op.device] = undefined;
      }
      return;
    case 'bind':
      if (ok) {
        const id = outNumber(entry, 'id');
        newId(id, 'VFIO_DEVICE_BIND_IOMMUFD');
        s.deviceIds[op.device] = id;
      }
      return;
    case 'attach':
      if (ok) s.attachedIds.push(outNumber(entry, 'pt'));
      return;
    case 'hwpt-alloc':
      if (ok) {
        const id = outNumber(entry, 'id');
        newId(id, 'IOMMU_HWPT_ALLOC');
        s.hwptIds.push(id);
      }
      return;
    case 'allow-iovas':
    case 'option':
    case 'hw-info':
    case 'detach':
    case 'irq-enable':
    case 'irq-disable':
    case 'irq-trigger':
    case 'irq-mask':
    case 'irq-info':
    case 'irq-resize':
    case 'region-info':
    case 'config-read':
    case 'config-write':
    case 'reset':
    case 'hot-reset-info':
    case 'hot-reset':
      // Device operations: the IOAS shadow is not theirs to change.
      return;
  }
}

interface Created {
  readonly ioasId: number;
  readonly length: bigint;
  /** The areas the kernel inserted: one for a map, one per source area for a copy. */
  readonly pieces: ShadowArea[];
}

function mapPieces(s: Shadow, op: Extract<FuzzOp, { op: 'map' }>, iova: bigint, page: bigint): Created | undefined {
  const ioasId = at(s.ioasIds, op.ioas);
  if (ioasId === undefined) return undefined;
  const length = BigInt(op.pages) * page + BigInt(op.lengthAdjust);
  const backing = BigInt(op.userPage) * page + BigInt(op.byteOffset);
  return { ioasId, length, pieces: [{ ioasId, iova, last: iova + length - 1n, backing }] };
}

function mapFilePieces(s: Shadow, op: Extract<FuzzOp, { op: 'map-file' }>, iova: bigint, page: bigint): Created | undefined {
  const ioasId = at(s.ioasIds, op.ioas);
  if (ioasId === undefined) return undefined;
  const length = BigInt(op.pages) * page;
  const backing = BigInt(FILE_BASE_PAGES + op.filePage) * page;
  return { ioasId, length, pieces: [{ ioasId, iova, last: iova + length - 1n, backing }] };
}

/**
 * IOAS_COPY takes the pages of the source areas that cover the range (they must be contiguous)
 * and inserts one destination area per source area, each pinning the same user pages.
 */
function copyPieces(s: Shadow, op: Extract<FuzzOp, { op: 'copy' }>, iova: bigint, page: bigint): Created | undefined {
  const src = at(s.areaSlots, op.area);
  const ioasId = at(s.ioasIds, op.dst);
  if (!src || ioasId === undefined) return undefined;
  const length = BigInt(op.pages) * page;
  const srcStart = (src.iova + BigInt(op.pageOffset) * page) & U64_MASK;
  const srcLast = srcStart + length - 1n;
  const pieces: ShadowArea[] = [];
  const sources = s
    .areasOf(src.ioasId)
    .filter((a) => a.iova <= srcLast && srcStart <= a.last)
    .sort((x, y) => (x.iova < y.iova ? -1 : 1));
  for (const a of sources) {
    const from = a.iova > srcStart ? a.iova : srcStart;
    const to = a.last < srcLast ? a.last : srcLast;
    pieces.push({ ioasId, iova: iova + (from - srcStart), last: iova + (to - srcStart), backing: a.backing + (from - a.iova) });
  }
  return { ioasId, length, pieces };
}

/** A resolved argument the runner recorded for the ioctl. */
function arg(entry: TraceEntry, key: string): string | number | undefined {
  const v = entry.args?.[key];
  return typeof v === 'string' || typeof v === 'number' ? v : undefined;
}

function unmapStep(
  s: Shadow,
  op: Extract<FuzzOp, { op: 'unmap' | 'unmap-span' | 'unmap-all' | 'unmap-range' }>,
  entry: TraceEntry,
  fail: (rule: string, message: string) => void,
): void {
  const ioasId = arg(entry, 'ioas') as number | undefined;
  const iova = arg(entry, 'iova');
  const length = arg(entry, 'length');
  if (ioasId === undefined || iova === undefined || length === undefined) return;
  const all = op.op === 'unmap-all';
  const start = parseHex(String(iova));
  // iova 0 with length 2^64-1 is the "unmap everything" form: the range is all of [0, 2^64-1].
  const last = start === 0n && parseHex(String(length)) === U64_MASK ? U64_MASK : start + parseHex(String(length)) - 1n;
  if (ioasId === undefined || !s.live.has(ioasId) || last < start) return;
  if (entry.result !== 'ok' && entry.result !== 'ENOENT') return;
  // iopt_unmap_iova_range walks the areas in IOVA order, unmapping each until one sticks out of
  // the range: that one fails the call with ENOENT, and what came before stays unmapped.
  const overlapping = s
    .areasOf(ioasId)
    .filter((a) => a.iova <= last && start <= a.last)
    .sort((x, y) => (x.iova < y.iova ? -1 : 1));
  const removed: ShadowArea[] = [];
  let sticksOut = false;
  for (const a of overlapping) {
    if (a.iova < start || a.last > last) {
      sticksOut = true;
      break;
    }
    removed.push(a);
  }
  const bytes = removed.reduce((sum, a) => sum + (a.last - a.iova + 1n), 0n);
  if (entry.result === 'ok') {
    const answered = parseHex(outString(entry, 'length'));
    if (sticksOut)
      fail('unmap-split', `unmap of [0x${start.toString(16)}, 0x${last.toString(16)}] succeeded although an area sticks out of it`);
    else if (answered !== bytes)
      fail('unmap-length', `unmap answered 0x${answered.toString(16)} bytes, the live areas inside hold 0x${bytes.toString(16)}`);
    else if (bytes === 0n && !all) fail('unmap-nothing', 'unmap of a range with no area succeeded (the kernel answers ENOENT)');
  } else if (!sticksOut && bytes !== 0n) {
    fail('unmap-enoent', `unmap answered ENOENT but the range holds 0x${bytes.toString(16)} bytes of whole areas`);
  }
  s.remove(ioasId, removed);
}

function getPaStep(
  s: Shadow,
  op: Extract<FuzzOp, { op: 'get-pa' }>,
  entry: TraceEntry,
  page: bigint,
  fail: (rule: string, message: string) => void,
): void {
  const ioasId = arg(entry, 'ioas') as number | undefined;
  const at = arg(entry, 'iova');
  if (ioasId === undefined || at === undefined) return;
  const iova = parseHex(String(at));
  const cap = parseHex(op.cap);
  const area = s.live.has(ioasId) ? s.covering(ioasId, iova) : undefined;
  if (entry.result === 'ENOENT' && area && cap !== 0n) {
    fail(
      'get-pa-missing',
      `GET_PA answered ENOENT at IOVA 0x${iova.toString(16)}, inside the live area [0x${area.iova.toString(16)}, 0x${area.last.toString(16)}]`,
    );
    return;
  }
  if (entry.result !== 'ok') return;
  if (!area) {
    fail('get-pa-phantom', `GET_PA answered at IOVA 0x${iova.toString(16)}, where no live area is`);
    return;
  }
  const byte = area.backing + (iova - area.iova);
  const offset = BigInt(entry.out?.['offset'] as number);
  if (offset !== byte % page)
    fail('get-pa-offset', `physical offset 0x${offset.toString(16)} in the page, the user address has 0x${(byte % page).toString(16)}`);
  const length = parseHex(entry.props?.['length'] as string);
  // iopt_get_phys: the rest of the first page (within the area), then one page per step while
  // the next IOVA is still inside the area, stopping once the cap is reached; clipped to the cap.
  const first = page - (iova % page) < area.last - iova + 1n ? page - (iova % page) : area.last - iova + 1n;
  const steps = (area.last - iova) / page;
  const possible = (len: bigint): boolean => {
    for (let j = 0n; j <= steps; j++) {
      const raw = first + j * page;
      if ((raw < cap ? raw : cap) === len) return true;
      if (raw >= cap) break;
    }
    return false;
  };
  if (!possible(length))
    fail(
      'get-pa-length',
      `GET_PA length 0x${length.toString(16)} at IOVA 0x${iova.toString(16)} (cap ${op.cap}, area [0x${area.iova.toString(16)}, 0x${area.last.toString(16)}]) is not one the page walk can produce`,
    );
  const userPage = Number(byte / page);
  const label = String(entry.out?.['frame'] as string | number | undefined);
  const epoch = s.pageEpoch[userPage]!;
  const seen = s.pageFrame.get(userPage);
  if (seen && seen.epoch === epoch && seen.label !== label)
    fail('frame-stable', `arena page ${userPage} moved from frame ${seen.label} to ${label} while pinned`);
  const owner = s.frameOwner.get(label);
  if (owner && owner.page !== userPage && owner.epoch === s.pageEpoch[owner.page] && s.pinned(owner.page)) {
    fail('frame-shared', `arena pages ${owner.page} and ${userPage}, both pinned, share frame ${label}`);
  }
  s.pageFrame.set(userPage, { label, epoch });
  s.frameOwner.set(label, { page: userPage, epoch });
}
