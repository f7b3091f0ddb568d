/**
 * A set of disjoint, inclusive intervals [start, last] over u64 (bigint), kept in a B+ tree
 * ordered by start and augmented with the widest hole between neighbours in each subtree.
 *
 * The kernel keeps IOAS areas, process mappings and reserved ranges in interval trees and maple
 * trees and finds free space in them without walking every entry; the model needs the same
 * asymptotics (point lookup, overlap query, insert, remove and "first hole of at least N bytes"
 * all O(log n)) so that a driver with 100k mappings costs what it costs on Linux.
 *
 * Layout: the nodes are not JavaScript objects. Every node of one kind lives in a few pooled
 * typed arrays, indexed by node id (struct of arrays). With 100k intervals an object-per-node
 * tree spreads one lookup over a dozen heap objects (node, key array, its backing store, child
 * array, entry, boxed bigints), each a cache and TLB miss at random access; here a lookup reads
 * the inner levels (a small, dense pool that stays cached) and then one leaf's 2×fanout doubles,
 * which share a page. Keys are compared as doubles: Number() of a u64 is monotonic, so unequal
 * doubles already order the bigints, and only equal ones (possible above 2^53) fall back to the
 * exact bigints kept beside them.
 *
 * A leaf holds up to fanout-1 entries; inner nodes hold up to fanout-1 children with the start
 * of each child's first entry as separator. Leaves are chained both ways for ordered walks.
 * Removal merges a node that falls under a quarter full into a neighbour when both fit in one,
 * and drops nodes that become empty, so entries stay densely packed under insert/remove churn.
 */

export interface IntervalNode<T> {
  readonly start: bigint;
  readonly last: bigint;
  readonly value: T;
}

/** A hole between intervals (or between an interval and the edge of the searched window). */
export interface Gap {
  readonly start: bigint;
  readonly last: bigint;
}

export interface IntervalTreeOptions {
  /** Slots per node (entries per leaf, children per inner node); small values make deep trees for tests. */
  readonly fanout?: number;
  /**
   * Numbers stored with each interval in its leaf (0 to 4; NaN until set with setTag), for a hot
   * lookup that must answer from the leaf without touching the value object.
   */
  readonly tags?: number;
}

const DEFAULT_FANOUT = 32;
const NONE = -1;
/** Level of leaves; inner nodes have level ≥ 1 (their children have level - 1). */
const LEAF = 0;

/** Where a split should leave the entries, given where the insert that overflowed landed. */
type SplitBias = 'even' | 'append' | 'prepend';

/** A copy of a pool array with room for `size` elements. */
function grownF64(old: Float64Array, size: number): Float64Array<ArrayBuffer> {
  const next = new Float64Array(size);
  next.set(old);
  return next;
}

function grownI32(old: Int32Array, size: number): Int32Array<ArrayBuffer> {
  const next = new Int32Array(size);
  next.set(old);
  return next;
}

function grownU8(old: Uint8Array, size: number): Uint8Array<ArrayBuffer> {
  const next = new Uint8Array(size);
  next.set(old);
  return next;
}

export class IntervalTree<T> {
  private readonly fanout: number;
  private readonly tagCount: number;
  /** Doubles per leaf in `bounds`: fanout starts, then fanout records. */
  private readonly region: number;
  /** Doubles per entry record (its last, then its tags). */
  private readonly record: number;

  // ---- leaf pool: leaf id l owns slots [l*fanout, (l+1)*fanout) -------------------------------
  /**
   * Per leaf one region of doubles: the starts of its entries (what bisection reads), then one
   * record per entry of its last and its tags (what a found entry needs, together in a cache
   * line) — a lookup reads a few lines of one region, mostly in one page.
   */
  private bounds = new Float64Array(0);
  /** Exact starts and lasts per slot, for ties between doubles and for answers. */
  private starts: bigint[] = [];
  private lasts: bigint[] = [];
  private values: (T | undefined)[] = [];
  private leafCount = new Int32Array(0);
  private leafParent = new Int32Array(0);
  private leafNext = new Int32Array(0);
  private leafPrev = new Int32Array(0);
  private leafGap: bigint[] = [];
  private leafGapDirty = new Uint8Array(0);
  private leafCapacity = 0;
  private leafHigh = 0;
  private freeLeaves: number[] = [];

  // ---- inner pool: inner id p owns slots [p*fanout, (p+1)*fanout) -----------------------------
  /** Start of each child's first entry, as a double and exactly. */
  private innerKeys = new Float64Array(0);
  private innerStarts: bigint[] = [];
  /** Last of each child's last entry, exactly and as a double, for the holes between children. */
  private innerLasts: bigint[] = [];
  private innerLastKeys = new Float64Array(0);
  private innerChild = new Int32Array(0);
  private innerCount = new Int32Array(0);
  private innerParent = new Int32Array(0);
  private innerGap: bigint[] = [];
  private innerGapDirty = new Uint8Array(0);
  private innerCapacity = 0;
  private innerHigh = 0;
  private freeInners: number[] = [];

  private root = NONE;
  /** Level of the root: 0 when it is a leaf. */
  private height = 0;
  private count = 0;

  constructor(options: IntervalTreeOptions = {}) {
    const fanout = options.fanout ?? DEFAULT_FANOUT;
    if (!Number.isInteger(fanout) || fanout < 4) throw new RangeError(`interval tree fanout ${fanout} is below 4`);
    this.fanout = fanout;
    const tags = options.tags ?? 0;
    if (!Number.isInteger(tags) || tags < 0 || tags > 4) throw new RangeError(`interval tree tag count ${tags} is not 0 to 4`);
    this.tagCount = tags;
    this.record = 1 + tags;
    this.region = fanout * (1 + this.record);
  }

  get size(): number {
    return this.count;
  }

  clear(): void {
    this.bounds = new Float64Array(0);
    this.starts = [];
    this.lasts = [];
    this.values = [];
    this.leafCount = new Int32Array(0);
    this.leafParent = new Int32Array(0);
    this.leafNext = new Int32Array(0);
    this.leafPrev = new Int32Array(0);
    this.leafGap = [];
    this.leafGapDirty = new Uint8Array(0);
    this.leafCapacity = 0;
    this.leafHigh = 0;
    this.freeLeaves = [];
    this.innerKeys = new Float64Array(0);
    this.innerStarts = [];
    this.innerLasts = [];
    this.innerLastKeys = new Float64Array(0);
    this.innerChild = new Int32Array(0);
    this.innerCount = new Int32Array(0);
    this.innerParent = new Int32Array(0);
    this.innerGap = [];
    this.innerGapDirty = new Uint8Array(0);
    this.innerCapacity = 0;
    this.innerHigh = 0;
    this.freeInners = [];
    this.root = NONE;
    this.height = 0;
    this.count = 0;
  }

  // ---- node pools ---------------------------------------------------------------------------

  private allocLeaf(): number {
    const reused = this.freeLeaves.pop();
    const id = reused ?? this.leafHigh++;
    if (id >= this.leafCapacity) this.growLeaves();
    this.leafCount[id] = 0;
    this.leafParent[id] = NONE;
    this.leafNext[id] = NONE;
    this.leafPrev[id] = NONE;
    this.leafGap[id] = -1n;
    this.leafGapDirty[id] = 1;
    return id;
  }

  private growLeaves(): void {
    const f = this.fanout;
    const cap = Math.max(4, this.leafCapacity * 2);
    this.bounds = grownF64(this.bounds, cap * this.region);
    this.leafCount = grownI32(this.leafCount, cap);
    this.leafParent = grownI32(this.leafParent, cap);
    this.leafNext = grownI32(this.leafNext, cap);
    this.leafPrev = grownI32(this.leafPrev, cap);
    this.leafGapDirty = grownU8(this.leafGapDirty, cap);
    // Filled, not just lengthened, so the arrays keep fast packed elements.
    for (let s = this.leafCapacity * f; s < cap * f; s++) {
      this.starts.push(0n);
      this.lasts.push(0n);
      this.values.push(undefined);
    }
    for (let l = this.leafCapacity; l < cap; l++) this.leafGap.push(-1n);
    this.leafCapacity = cap;
  }

  private freeLeaf(id: number): void {
    this.leafCount[id] = 0;
    this.freeLeaves.push(id);
  }

  private allocInner(): number {
    const reused = this.freeInners.pop();
    const id = reused ?? this.innerHigh++;
    if (id >= this.innerCapacity) this.growInners();
    this.innerCount[id] = 0;
    this.innerParent[id] = NONE;
    this.innerGap[id] = -1n;
    this.innerGapDirty[id] = 1;
    return id;
  }

  private growInners(): void {
    const f = this.fanout;
    const cap = Math.max(4, this.innerCapacity * 2);
    this.innerKeys = grownF64(this.innerKeys, cap * f);
    this.innerLastKeys = grownF64(this.innerLastKeys, cap * f);
    this.innerChild = grownI32(this.innerChild, cap * f);
    this.innerCount = grownI32(this.innerCount, cap);
    this.innerParent = grownI32(this.innerParent, cap);
    this.innerGapDirty = grownU8(this.innerGapDirty, cap);
    for (let s = this.innerCapacity * f; s < cap * f; s++) {
      this.innerStarts.push(0n);
      this.innerLasts.push(0n);
    }
    for (let p = this.innerCapacity; p < cap; p++) this.innerGap.push(-1n);
    this.innerCapacity = cap;
  }

  private freeInner(id: number): void {
    this.innerCount[id] = 0;
    this.freeInners.push(id);
  }

  // ---- generic node accessors (level 0 = leaf) -----------------------------------------------

  private countOf(level: number, id: number): number {
    return level === LEAF ? this.leafCount[id]! : this.innerCount[id]!;
  }

  private parentOf(level: number, id: number): number {
    return level === LEAF ? this.leafParent[id]! : this.innerParent[id]!;
  }

  private setParent(level: number, id: number, parent: number): void {
    if (level === LEAF) this.leafParent[id] = parent;
    else this.innerParent[id] = parent;
  }

  /** Start of the first entry of a subtree, as a double and exactly. */
  private minStartN(level: number, id: number): number {
    return level === LEAF ? this.bounds[id * this.region]! : this.innerKeys[id * this.fanout]!;
  }

  private minStart(level: number, id: number): bigint {
    return level === LEAF ? this.starts[id * this.fanout]! : this.innerStarts[id * this.fanout]!;
  }

  /** The rightmost leaf of a subtree. */
  private lastLeafOf(level: number, id: number): number {
    const f = this.fanout;
    for (let h = level; h > LEAF; h--) id = this.innerChild[id * f + this.innerCount[id]! - 1]!;
    return id;
  }

  private maxStart(level: number, id: number): bigint {
    const leaf = this.lastLeafOf(level, id);
    return this.starts[leaf * this.fanout + this.leafCount[leaf]! - 1]!;
  }

  private setInnerLast(slot: number, last: bigint): void {
    this.innerLasts[slot] = last;
    this.innerLastKeys[slot] = Number(last);
  }

  private maxLast(level: number, id: number): bigint {
    const f = this.fanout;
    return level === LEAF ? this.lasts[id * f + this.leafCount[id]! - 1]! : this.innerLasts[id * f + this.innerCount[id]! - 1]!;
  }

  private indexInParent(parent: number, child: number): number {
    const f = this.fanout;
    const base = parent * f;
    const n = this.innerCount[parent]!;
    for (let i = 0; i < n; i++) if (this.innerChild[base + i] === child) return i;
    throw new Error('interval tree: child missing from its parent');
  }

  private nodeAt(slot: number): IntervalNode<T> {
    return { start: this.starts[slot]!, last: this.lasts[slot]!, value: this.values[slot] as T };
  }

  // ---- lookups ------------------------------------------------------------------------------

  /** Index of the last child of inner node `p` whose first start is ≤ key, or -1. */
  private innerUpper(p: number, key: bigint, keyN: number): number {
    const keys = this.innerKeys;
    const base = p * this.fanout;
    if (keys[base]! > keyN) return -1;
    let lo = 0;
    let hi = this.innerCount[p]! - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (keys[base + mid]! <= keyN) lo = mid;
      else hi = mid - 1;
    }
    // Doubles tie above 2^53: step back over keys that are really larger.
    while (lo >= 0 && keys[base + lo] === keyN && this.innerStarts[base + lo]! > key) lo--;
    return lo;
  }

  /** Index of the last entry of leaf `l` whose start is ≤ key, or -1. */
  private leafUpper(l: number, key: bigint, keyN: number): number {
    const bounds = this.bounds;
    const f = this.fanout;
    const base = l * this.region;
    let lo = 0;
    let hi = this.leafCount[l]! - 1;
    if (hi < 0 || bounds[base]! > keyN) return -1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (bounds[base + mid]! <= keyN) lo = mid;
      else hi = mid - 1;
    }
    while (lo >= 0 && bounds[base + lo] === keyN && this.starts[l * f + lo]! > key) lo--;
    return lo;
  }

  /** The leaf whose key range covers `key` (the leftmost leaf when key precedes everything). */
  private descend(key: bigint, keyN: number): number {
    const f = this.fanout;
    let id = this.root;
    for (let h = this.height; h > LEAF; h--) {
      const i = this.innerUpper(id, key, keyN);
      id = this.innerChild[id * f + (i < 0 ? 0 : i)]!;
    }
    return id;
  }

  /** Whether last of `slot` ≥ point, comparing doubles first. */
  private lastAtLeast(leaf: number, i: number, point: bigint, pointN: number): boolean {
    const lastN = this.bounds[leaf * this.region + this.fanout + i * this.record]!;
    return pointN < lastN || (pointN === lastN && point <= this.lasts[leaf * this.fanout + i]!);
  }

  /**
   * The slot of the interval containing `point` (`pointN` is Number(point), for a caller that
   * has it already), or -1: a handle for valueAt, startNOf, lastNOf and tagOf, valid until the
   * tree is next changed. The hot path of a lookup that needs the bounds
   * as well as the value reads them from the leaf it already has in cache.
   */
  findSlot(point: bigint, pointN: number = Number(point)): number {
    if (this.root === NONE) return NONE;
    const leaf = this.descend(point, pointN);
    const i = this.leafUpper(leaf, point, pointN);
    if (i < 0 || !this.lastAtLeast(leaf, i, point, pointN)) return NONE;
    return leaf * this.fanout + i;
  }

  /** The value at a slot from findSlot. */
  valueAt(slot: number): T {
    return this.values[slot] as T;
  }

  /** Where a slot's start is in `bounds`. */
  private startIndex(slot: number): number {
    const f = this.fanout;
    const leaf = Math.floor(slot / f);
    return leaf * this.region + (slot - leaf * f);
  }

  /** Where a slot's record (its last, then its tags) starts in `bounds`. */
  private recordIndex(slot: number): number {
    const f = this.fanout;
    const leaf = Math.floor(slot / f);
    return leaf * this.region + f + (slot - leaf * f) * this.record;
  }

  /** Start and last of the interval at a slot, as doubles (exact up to 2^53). */
  startNOf(slot: number): number {
    return this.bounds[this.startIndex(slot)]!;
  }

  lastNOf(slot: number): number {
    return this.bounds[this.recordIndex(slot)]!;
  }

  /** Tag `k` of the interval at a slot. */
  tagOf(slot: number, k: number): number {
    return this.bounds[this.recordIndex(slot) + 1 + k]!;
  }

  /**
   * Sets the tags of the interval that starts at `start`, from tag 0 on; returns whether there
   * is one.
   */
  setTags(start: bigint, ...tags: number[]): boolean {
    if (tags.length > this.tagCount) throw new RangeError(`interval tree has ${this.tagCount} tags, not ${tags.length}`);
    if (this.root === NONE) return false;
    const startN = Number(start);
    const leaf = this.descend(start, startN);
    const i = this.leafUpper(leaf, start, startN);
    if (i < 0 || this.starts[leaf * this.fanout + i] !== start) return false;
    const at = leaf * this.region + this.fanout + i * this.record + 1;
    for (let k = 0; k < tags.length; k++) this.bounds[at + k] = tags[k]!;
    return true;
  }

  /** Sets tag `k` of the interval that starts at `start`; returns whether there is one. */
  setTag(start: bigint, k: number, value: number): boolean {
    if (k < 0 || k >= this.tagCount) throw new RangeError(`interval tree has no tag ${k}`);
    if (this.root === NONE) return false;
    const startN = Number(start);
    const leaf = this.descend(start, startN);
    const i = this.leafUpper(leaf, start, startN);
    if (i < 0 || this.starts[leaf * this.fanout + i] !== start) return false;
    this.bounds[leaf * this.region + this.fanout + i * this.record + 1 + k] = value;
    return true;
  }

  /** The interval containing `point`. */
  find(point: bigint): IntervalNode<T> | undefined {
    const slot = this.findSlot(point);
    return slot === NONE ? undefined : this.nodeAt(slot);
  }

  /** The value of the interval containing `point` (find without building a node). */
  findValue(point: bigint): T | undefined {
    const slot = this.findSlot(point);
    return slot === NONE ? undefined : this.values[slot];
  }

  /** The slot after (leaf, i) in key order, following the leaf chain; -1 at the end. */
  private slotAfter(leaf: number, i: number): number {
    if (i + 1 < this.leafCount[leaf]!) return leaf * this.fanout + i + 1;
    const next = this.leafNext[leaf]!;
    return next === NONE ? NONE : next * this.fanout;
  }

  /** The slot of the lowest interval intersecting [start, last], or -1 (see findSlot). */
  firstOverlapSlot(start: bigint, last: bigint): number {
    if (this.root === NONE) return NONE;
    const f = this.fanout;
    const startN = Number(start);
    const leaf = this.descend(start, startN);
    const i = this.leafUpper(leaf, start, startN);
    // The interval containing `start` overlaps; otherwise the next one does if it starts by `last`.
    if (i >= 0 && this.lastAtLeast(leaf, i, start, startN)) return leaf * f + i;
    const slot = i < 0 ? leaf * f : this.slotAfter(leaf, i);
    if (slot === NONE) return NONE;
    const nextStartN = this.bounds[this.startIndex(slot)]!;
    const lastN = Number(last);
    if (nextStartN < lastN || (nextStartN === lastN && this.starts[slot]! <= last)) return slot;
    return NONE;
  }

  /** The lowest interval intersecting [start, last] (interval_tree_iter_first). */
  firstOverlap(start: bigint, last: bigint): IntervalNode<T> | undefined {
    const slot = this.firstOverlapSlot(start, last);
    return slot === NONE ? undefined : this.nodeAt(slot);
  }

  /** The highest interval intersecting [start, last]. */
  lastOverlap(start: bigint, last: bigint): IntervalNode<T> | undefined {
    if (this.root === NONE) return undefined;
    const lastN = Number(last);
    const leaf = this.descend(last, lastN);
    const i = this.leafUpper(leaf, last, lastN);
    if (i < 0) return undefined;
    const slot = leaf * this.fanout + i;
    return this.lasts[slot]! >= start ? this.nodeAt(slot) : undefined;
  }

  /** The interval following the one that starts at `start` (or the first one after `start`). */
  next(start: bigint): IntervalNode<T> | undefined {
    if (this.root === NONE) return undefined;
    const startN = Number(start);
    const leaf = this.descend(start, startN);
    const i = this.leafUpper(leaf, start, startN);
    const slot = i < 0 ? leaf * this.fanout : this.slotAfter(leaf, i);
    return slot === NONE ? undefined : this.nodeAt(slot);
  }

  /** The interval preceding the one that starts at `start`. */
  prev(start: bigint): IntervalNode<T> | undefined {
    if (this.root === NONE) return undefined;
    const f = this.fanout;
    const leaf = this.descend(start, Number(start));
    let i = this.leafUpper(leaf, start, Number(start));
    if (i >= 0 && this.starts[leaf * f + i] === start) i--;
    if (i >= 0) return this.nodeAt(leaf * f + i);
    const p = this.leafPrev[leaf]!;
    return p === NONE ? undefined : this.nodeAt(p * f + this.leafCount[p]! - 1);
  }

  private firstLeaf(): number {
    let id = this.root;
    for (let h = this.height; h > LEAF; h--) id = this.innerChild[id * this.fanout]!;
    return id;
  }

  first(): IntervalNode<T> | undefined {
    return this.root === NONE ? undefined : this.nodeAt(this.firstLeaf() * this.fanout);
  }

  lastNode(): IntervalNode<T> | undefined {
    if (this.root === NONE) return undefined;
    const leaf = this.lastLeafOf(this.height, this.root);
    return this.nodeAt(leaf * this.fanout + this.leafCount[leaf]! - 1);
  }

  /** All intervals intersecting [start, last], ascending. */
  *overlapping(start: bigint, last: bigint): Generator<IntervalNode<T>> {
    let n = this.firstOverlap(start, last);
    while (n && n.start <= last) {
      yield n;
      n = this.next(n.start);
    }
  }

  /** Every interval, ascending. Callers may remove entries while iterating. */
  *[Symbol.iterator](): Generator<IntervalNode<T>> {
    const f = this.fanout;
    // One leaf's remaining entries are copied before they are yielded; the walk then resumes by
    // key after the last of them, since the caller may have removed entries (freeing leaves).
    let resumeAfter: bigint | null = null;
    for (;;) {
      if (this.root === NONE) return;
      let leaf: number;
      let from: number;
      if (resumeAfter === null) {
        leaf = this.firstLeaf();
        from = 0;
      } else {
        const keyN = Number(resumeAfter);
        leaf = this.descend(resumeAfter, keyN);
        from = this.leafUpper(leaf, resumeAfter, keyN) + 1;
        if (from >= this.leafCount[leaf]!) {
          leaf = this.leafNext[leaf]!;
          from = 0;
          if (leaf === NONE) return;
        }
      }
      const batch: IntervalNode<T>[] = [];
      for (let i = from; i < this.leafCount[leaf]!; i++) batch.push(this.nodeAt(leaf * f + i));
      yield* batch;
      resumeAfter = batch[batch.length - 1]!.start;
    }
  }

  // ---- updates ------------------------------------------------------------------------------

  /** Adds [start, last]. The caller guarantees it overlaps nothing already in the set. */
  insert(start: bigint, last: bigint, value: T): void {
    if (last < start) throw new RangeError(`interval [${start}, ${last}] is empty`);
    const f = this.fanout;
    if (this.root === NONE) {
      this.root = this.allocLeaf();
      this.height = LEAF;
    }
    const startN = Number(start);
    const leaf = this.descend(start, startN);
    const at = this.leafUpper(leaf, start, startN);
    if (at >= 0 && this.starts[leaf * f + at] === start) throw new Error(`interval tree: duplicate start ${start}`);
    const pos = at + 1;
    const n = this.leafCount[leaf]!;
    const base = leaf * f;
    const b = leaf * this.region;
    const w = this.record;
    this.bounds.copyWithin(b + pos + 1, b + pos, b + n);
    this.bounds.copyWithin(b + f + (pos + 1) * w, b + f + pos * w, b + f + n * w);
    for (let s = base + n; s > base + pos; s--) {
      this.starts[s] = this.starts[s - 1]!;
      this.lasts[s] = this.lasts[s - 1]!;
      this.values[s] = this.values[s - 1];
    }
    this.bounds[b + pos] = startN;
    this.bounds[b + f + pos * w] = Number(last);
    for (let k = 1; k < w; k++) this.bounds[b + f + pos * w + k] = NaN;
    this.starts[base + pos] = start;
    this.lasts[base + pos] = last;
    this.values[base + pos] = value;
    this.leafCount[leaf] = n + 1;
    this.count++;
    this.touch(LEAF, leaf, pos === 0, pos === n);
    if (n + 1 === f) {
      // Sequential inserts at either end of the key space fill nodes instead of leaving halves.
      const bias: SplitBias =
        pos === n && this.leafNext[leaf] === NONE ? 'append' : pos === 0 && this.leafPrev[leaf] === NONE ? 'prepend' : 'even';
      this.split(LEAF, leaf, pos, bias);
    }
  }

  /** How many entries a full node keeps when the overflowing entry landed at `pos`. */
  private keepOnSplit(n: number, pos: number, bias: SplitBias): number {
    if (bias === 'append' && pos === n - 1) return n - 1;
    if (bias === 'prepend' && pos <= 1) return 1;
    return n >> 1;
  }

  /** Splits a full node in two and inserts the right part into the parent (growing the root). */
  private split(level: number, id: number, pos: number, bias: SplitBias): void {
    const f = this.fanout;
    const n = this.countOf(level, id);
    const keep = this.keepOnSplit(n, pos, bias);
    const moved = n - keep;
    let right: number;
    if (level === LEAF) {
      right = this.allocLeaf();
      const b = id * this.region;
      const rb = right * this.region;
      const w = this.record;
      this.bounds.copyWithin(rb, b + keep, b + n);
      this.bounds.copyWithin(rb + f, b + f + keep * w, b + f + n * w);
      for (let i = 0; i < moved; i++) {
        const from = id * f + keep + i;
        const to = right * f + i;
        this.starts[to] = this.starts[from]!;
        this.lasts[to] = this.lasts[from]!;
        this.values[to] = this.values[from];
        this.values[from] = undefined;
      }
      const next = this.leafNext[id]!;
      this.leafNext[right] = next;
      if (next !== NONE) this.leafPrev[next] = right;
      this.leafPrev[right] = id;
      this.leafNext[id] = right;
      this.leafCount[id] = keep;
      this.leafCount[right] = moved;
      this.leafGapDirty[id] = 1;
    } else {
      right = this.allocInner();
      this.innerKeys.copyWithin(right * f, id * f + keep, id * f + n);
      this.innerLastKeys.copyWithin(right * f, id * f + keep, id * f + n);
      this.innerChild.copyWithin(right * f, id * f + keep, id * f + n);
      for (let i = 0; i < moved; i++) {
        this.innerStarts[right * f + i] = this.innerStarts[id * f + keep + i]!;
        this.innerLasts[right * f + i] = this.innerLasts[id * f + keep + i]!;
        this.setParent(level - 1, this.innerChild[right * f + i]!, right);
      }
      this.innerCount[id] = keep;
      this.innerCount[right] = moved;
      this.innerGapDirty[id] = 1;
    }
    let parent = this.parentOf(level, id);
    if (parent === NONE) {
      parent = this.allocInner();
      this.innerChild[parent * f] = id;
      this.innerKeys[parent * f] = this.minStartN(level, id);
      this.innerStarts[parent * f] = this.minStart(level, id);
      this.innerCount[parent] = 1;
      this.setParent(level, id, parent);
      this.root = parent;
      this.height = level + 1;
    }
    const i = this.indexInParent(parent, id) + 1;
    const pn = this.innerCount[parent]!;
    const pb = parent * f;
    this.innerKeys.copyWithin(pb + i + 1, pb + i, pb + pn);
    this.innerLastKeys.copyWithin(pb + i + 1, pb + i, pb + pn);
    this.innerChild.copyWithin(pb + i + 1, pb + i, pb + pn);
    for (let s = pb + pn; s > pb + i; s--) {
      this.innerStarts[s] = this.innerStarts[s - 1]!;
      this.innerLasts[s] = this.innerLasts[s - 1]!;
    }
    this.innerKeys[pb + i] = this.minStartN(level, right);
    this.innerStarts[pb + i] = this.minStart(level, right);
    this.innerChild[pb + i] = right;
    this.innerCount[parent] = pn + 1;
    this.setParent(level, right, parent);
    // The two halves end where they end now; the parent as a whole still ends where it did.
    this.setInnerLast(pb + i - 1, this.maxLast(level, id));
    this.setInnerLast(pb + i, this.maxLast(level, right));
    this.touch(level + 1, parent, false, false);
    if (pn + 1 === f) this.split(level + 1, parent, i, bias);
  }

  /**
   * After a node changed: mark the hole summaries stale up to the root and, when its first start
   * or its last end changed, refresh what the nodes above record of it.
   */
  private touch(level: number, id: number, firstChanged: boolean, lastChanged: boolean): void {
    const f = this.fanout;
    if (level === LEAF) this.leafGapDirty[id] = 1;
    else this.innerGapDirty[id] = 1;
    let refreshFirst = firstChanged;
    let refreshLast = lastChanged;
    let child = id;
    let childLevel = level;
    for (let p = this.parentOf(level, id); p !== NONE; child = p, childLevel++, p = this.innerParent[p]!) {
      this.innerGapDirty[p] = 1;
      if (!refreshFirst && !refreshLast) continue;
      const i = this.indexInParent(p, child);
      if (refreshFirst) {
        this.innerKeys[p * f + i] = this.minStartN(childLevel, child);
        this.innerStarts[p * f + i] = this.minStart(childLevel, child);
        refreshFirst = i === 0;
      }
      if (refreshLast) {
        this.setInnerLast(p * f + i, this.maxLast(childLevel, child));
        refreshLast = i === this.innerCount[p]! - 1;
      }
    }
  }

  /** Removes the interval that starts at `start`; returns whether one was there. */
  remove(start: bigint): boolean {
    if (this.root === NONE) return false;
    const f = this.fanout;
    const startN = Number(start);
    const leaf = this.descend(start, startN);
    const pos = this.leafUpper(leaf, start, startN);
    if (pos < 0 || this.starts[leaf * f + pos] !== start) return false;
    const n = this.leafCount[leaf]!;
    const base = leaf * f;
    const b = leaf * this.region;
    const w = this.record;
    this.bounds.copyWithin(b + pos, b + pos + 1, b + n);
    this.bounds.copyWithin(b + f + pos * w, b + f + (pos + 1) * w, b + f + n * w);
    for (let s = base + pos; s < base + n - 1; s++) {
      this.starts[s] = this.starts[s + 1]!;
      this.lasts[s] = this.lasts[s + 1]!;
      this.values[s] = this.values[s + 1];
    }
    // Let go of the value so the garbage collector can.
    this.values[base + n - 1] = undefined;
    this.leafCount[leaf] = n - 1;
    this.count--;
    if (n - 1 === 0) this.detach(LEAF, leaf);
    else {
      this.touch(LEAF, leaf, pos === 0, pos === n - 1);
      this.rebalance(LEAF, leaf);
    }
    return true;
  }

  /**
   * After a node lost an entry: when it is under a quarter full and fits together with a
   * neighbour under the same parent (leaving room for more inserts), merges the two. Without this,
   * churn at spread-out keys (map/unmap between long-lived areas) would keep splitting nodes and
   * never join them, leaving the entries thinly spread over ever more leaves.
   */
  private rebalance(level: number, id: number): void {
    const f = this.fanout;
    const n = this.countOf(level, id);
    const parent = this.parentOf(level, id);
    if (parent === NONE || n >= f >> 2) return;
    const pn = this.innerCount[parent]!;
    if (pn < 2) return;
    const i = this.indexInParent(parent, id);
    const sibling = this.innerChild[parent * f + (i > 0 ? i - 1 : i + 1)]!;
    const left = i > 0 ? sibling : id;
    const right = i > 0 ? id : sibling;
    if (this.countOf(level, left) + this.countOf(level, right) > f - 1 - (f >> 2)) return;
    this.merge(level, left, right);
  }

  /** Moves every entry (or child) of `right` to the end of its left neighbour, then drops `right`. */
  private merge(level: number, left: number, right: number): void {
    const f = this.fanout;
    const ln = this.countOf(level, left);
    const rn = this.countOf(level, right);
    if (level === LEAF) {
      const lb = left * this.region;
      const rb = right * this.region;
      const w = this.record;
      this.bounds.copyWithin(lb + ln, rb, rb + rn);
      this.bounds.copyWithin(lb + f + ln * w, rb + f, rb + f + rn * w);
      for (let i = 0; i < rn; i++) {
        const from = right * f + i;
        const to = left * f + ln + i;
        this.starts[to] = this.starts[from]!;
        this.lasts[to] = this.lasts[from]!;
        this.values[to] = this.values[from];
        this.values[from] = undefined;
      }
      this.leafCount[left] = ln + rn;
      this.leafCount[right] = 0;
    } else {
      this.innerKeys.copyWithin(left * f + ln, right * f, right * f + rn);
      this.innerLastKeys.copyWithin(left * f + ln, right * f, right * f + rn);
      this.innerChild.copyWithin(left * f + ln, right * f, right * f + rn);
      for (let i = 0; i < rn; i++) {
        this.innerStarts[left * f + ln + i] = this.innerStarts[right * f + i]!;
        this.innerLasts[left * f + ln + i] = this.innerLasts[right * f + i]!;
        this.setParent(level - 1, this.innerChild[left * f + ln + i]!, left);
      }
      this.innerCount[left] = ln + rn;
      this.innerCount[right] = 0;
    }
    this.touch(level, left, false, true);
    this.detach(level, right);
  }

  /** Takes an empty node out of the tree (and parents that become empty); shrinks the root. */
  private detach(level: number, id: number): void {
    const f = this.fanout;
    const parent = this.parentOf(level, id);
    if (level === LEAF) {
      const prev = this.leafPrev[id]!;
      const next = this.leafNext[id]!;
      if (prev !== NONE) this.leafNext[prev] = next;
      if (next !== NONE) this.leafPrev[next] = prev;
      this.freeLeaf(id);
    } else this.freeInner(id);
    if (parent === NONE) {
      this.root = NONE;
      this.height = LEAF;
      return;
    }
    const i = this.indexInParent(parent, id);
    const pn = this.innerCount[parent]!;
    const pb = parent * f;
    this.innerKeys.copyWithin(pb + i, pb + i + 1, pb + pn);
    this.innerLastKeys.copyWithin(pb + i, pb + i + 1, pb + pn);
    this.innerChild.copyWithin(pb + i, pb + i + 1, pb + pn);
    for (let s = pb + i; s < pb + pn - 1; s++) {
      this.innerStarts[s] = this.innerStarts[s + 1]!;
      this.innerLasts[s] = this.innerLasts[s + 1]!;
    }
    this.innerCount[parent] = pn - 1;
    if (pn - 1 === 0) {
      this.detach(level + 1, parent);
      return;
    }
    this.touch(level + 1, parent, i === 0, i === pn - 1);
    this.rebalance(level + 1, parent);
    // A root with a single child is replaced by that child.
    while (this.height > LEAF && this.innerCount[this.root] === 1) {
      const old = this.root;
      this.root = this.innerChild[old * f]!;
      this.height--;
      this.setParent(this.height, this.root, NONE);
      this.freeInner(old);
    }
  }

  // ---- holes --------------------------------------------------------------------------------

  /** Widest hole between neighbouring intervals inside a subtree, recomputing stale summaries. */
  private gapOf(level: number, id: number): bigint {
    const f = this.fanout;
    if (level === LEAF) {
      if (!this.leafGapDirty[id]) return this.leafGap[id]!;
      // In doubles where both ends are below 2^53 (exact there), in bigints otherwise.
      let gapN = -1;
      let gap = -1n;
      const base = id * f;
      const b = id * this.region;
      for (let i = 1; i < this.leafCount[id]!; i++) {
        const startN = this.bounds[b + i]!;
        const prevLastN = this.bounds[b + f + (i - 1) * this.record]!;
        if (startN <= Number.MAX_SAFE_INTEGER && prevLastN <= Number.MAX_SAFE_INTEGER) {
          if (startN - prevLastN - 1 > gapN) gapN = startN - prevLastN - 1;
        } else {
          const g = this.starts[base + i]! - this.lasts[base + i - 1]! - 1n;
          if (g > gap) gap = g;
        }
      }
      if (BigInt(gapN) > gap) gap = BigInt(gapN);
      this.leafGap[id] = gap;
      this.leafGapDirty[id] = 0;
      return gap;
    }
    if (!this.innerGapDirty[id]) return this.innerGap[id]!;
    let gap = -1n;
    let betweenN = -1;
    const base = id * f;
    for (let i = 0; i < this.innerCount[id]!; i++) {
      const g = this.gapOf(level - 1, this.innerChild[base + i]!);
      if (g > gap) gap = g;
      if (i === 0) continue;
      // The hole between two children, in doubles where exact (as for leaves).
      const startN = this.innerKeys[base + i]!;
      const prevLastN = this.innerLastKeys[base + i - 1]!;
      if (startN <= Number.MAX_SAFE_INTEGER && prevLastN <= Number.MAX_SAFE_INTEGER) {
        if (startN - prevLastN - 1 > betweenN) betweenN = startN - prevLastN - 1;
      } else {
        const between = this.innerStarts[base + i]! - this.innerLasts[base + i - 1]! - 1n;
        if (between > gap) gap = between;
      }
    }
    if (BigInt(betweenN) > gap) gap = BigInt(betweenN);
    this.innerGap[id] = gap;
    this.innerGapDirty[id] = 0;
    return gap;
  }

  /**
   * Holes inside the window [lo, hi] that are at least `minSize` long, lowest first. Each hole is
   * maximal (bounded by intervals or by the window). Skips whole subtrees whose holes are all
   * narrower than `minSize`, so finding the first fitting hole costs O(log n) however many
   * intervals precede it.
   */
  *holesAscending(lo: bigint, hi: bigint, minSize: bigint): Generator<Gap> {
    if (lo > hi) return;
    let cur = lo;
    let n = this.firstOverlap(lo, hi);
    if (n && n.start <= lo) {
      if (n.last >= hi) return;
      cur = n.last + 1n;
      n = this.next(n.start);
    }
    const leadEnd = n && n.start <= hi ? n.start - 1n : hi;
    if (leadEnd - cur + 1n >= minSize) yield { start: cur, last: leadEnd };
    if (!n || n.start > hi) return;
    let from = n.start;
    for (;;) {
      const pair = this.firstWideGapAfter(from, minSize);
      if (!pair) {
        const top = this.lastNode()!;
        if (top.last < hi && top.start >= from && hi - top.last >= minSize) yield { start: top.last + 1n, last: hi };
        return;
      }
      const gapStart = pair.predLast + 1n;
      if (gapStart > hi) return;
      const gapLast = pair.start - 1n < hi ? pair.start - 1n : hi;
      if (gapLast - gapStart + 1n >= minSize) yield { start: gapStart, last: gapLast };
      if (pair.start > hi) return;
      from = pair.start;
    }
  }

  /**
   * The first interval b with b.start > from whose hole before it (from its predecessor's end)
   * is at least minSize; returns b's start and the predecessor's last.
   */
  private firstWideGapAfter(from: bigint, minSize: bigint): { start: bigint; predLast: bigint } | null {
    const f = this.fanout;
    const search = (level: number, id: number, predLast: bigint | null): { start: bigint; predLast: bigint } | null => {
      if (this.maxStart(level, id) <= from) return null;
      let best = this.gapOf(level, id);
      const first = this.minStart(level, id);
      if (predLast !== null && first - predLast - 1n > best) best = first - predLast - 1n;
      if (best < minSize) return null;
      const base = id * f;
      if (level === LEAF) {
        for (let i = 0; i < this.leafCount[id]!; i++) {
          const pl = i > 0 ? this.lasts[base + i - 1]! : predLast;
          const s = this.starts[base + i]!;
          if (s > from && pl !== null && s - pl - 1n >= minSize) return { start: s, predLast: pl };
        }
        return null;
      }
      let pl = predLast;
      for (let i = 0; i < this.innerCount[id]!; i++) {
        const child = this.innerChild[base + i]!;
        const r = search(level - 1, child, pl);
        if (r) return r;
        pl = this.innerLasts[base + i]!;
      }
      return null;
    };
    return this.root === NONE ? null : search(this.height, this.root, null);
  }

  /**
   * Holes inside [lo, hi] at least `minSize` long, highest first (for top-down allocation, like
   * the kernel's unmapped_area_topdown).
   */
  *holesDescending(lo: bigint, hi: bigint, minSize: bigint): Generator<Gap> {
    if (lo > hi) return;
    let cur = hi;
    let n = this.lastOverlap(lo, hi);
    if (n && n.last >= hi) {
      if (n.start <= lo) return;
      cur = n.start - 1n;
      n = this.prev(n.start);
    }
    const trailStart = n && n.last >= lo ? n.last + 1n : lo;
    if (cur - trailStart + 1n >= minSize) yield { start: trailStart, last: cur };
    if (!n || n.last < lo) return;
    let from = n.start;
    for (;;) {
      const pair = this.lastWideGapBefore(from, minSize);
      if (!pair) {
        const bottom = this.first()!;
        if (bottom.start > lo && bottom.start <= from && bottom.start - lo >= minSize) yield { start: lo, last: bottom.start - 1n };
        return;
      }
      const gapLast = pair.succStart - 1n;
      if (gapLast < lo) return;
      const gapStart = pair.last + 1n > lo ? pair.last + 1n : lo;
      if (gapLast - gapStart + 1n >= minSize) yield { start: gapStart, last: gapLast };
      if (pair.last < lo) return;
      from = pair.start;
    }
  }

  /** The last interval a with a.start < from whose hole after it is at least minSize. */
  private lastWideGapBefore(from: bigint, minSize: bigint): { start: bigint; last: bigint; succStart: bigint } | null {
    const f = this.fanout;
    const search = (level: number, id: number, succStart: bigint | null): { start: bigint; last: bigint; succStart: bigint } | null => {
      if (this.minStart(level, id) >= from) return null;
      let best = this.gapOf(level, id);
      const top = this.maxLast(level, id);
      if (succStart !== null && succStart - top - 1n > best) best = succStart - top - 1n;
      if (best < minSize) return null;
      const base = id * f;
      if (level === LEAF) {
        const n = this.leafCount[id]!;
        for (let i = n - 1; i >= 0; i--) {
          const ss = i < n - 1 ? this.starts[base + i + 1]! : succStart;
          const s = this.starts[base + i]!;
          const l = this.lasts[base + i]!;
          if (s < from && ss !== null && ss - l - 1n >= minSize) return { start: s, last: l, succStart: ss };
        }
        return null;
      }
      let ss = succStart;
      for (let i = this.innerCount[id]! - 1; i >= 0; i--) {
        const child = this.innerChild[base + i]!;
        const r = search(level - 1, child, ss);
        if (r) return r;
        ss = this.innerStarts[base + i]!;
      }
      return null;
    };
    return this.root === NONE ? null : search(this.height, this.root, null);
  }

  // ---- checking -----------------------------------------------------------------------------

  /** Levels below the root, and how many leaves and inner nodes the tree is made of. */
  shape(): { height: number; leaves: number; innerNodes: number } {
    let leaves = 0;
    let innerNodes = 0;
    const walk = (level: number, id: number): void => {
      if (level === LEAF) {
        leaves++;
        return;
      }
      innerNodes++;
      for (let i = 0; i < this.innerCount[id]!; i++) walk(level - 1, this.innerChild[id * this.fanout + i]!);
    };
    if (this.root !== NONE) walk(this.height, this.root);
    return { height: this.height, leaves, innerNodes };
  }

  /**
   * Checks ordering, the leaf chain, separator keys (double and exact), parents, node fill,
   * uniform depth and hole summaries; for tests.
   */
  checkInvariants(): void {
    const f = this.fanout;
    let count = 0;
    let prevLast: bigint | null = null;
    const leavesInOrder: number[] = [];
    const walk = (level: number, id: number, parent: number): void => {
      const n = this.countOf(level, id);
      if (n === 0) throw new Error('interval tree: empty node in the tree');
      if (n >= f) throw new Error('interval tree: overfull node');
      if (this.parentOf(level, id) !== parent) throw new Error('interval tree: wrong parent pointer');
      const stale = level === LEAF ? this.leafGapDirty[id] : this.innerGapDirty[id];
      if (level === LEAF) {
        leavesInOrder.push(id);
        for (let i = 0; i < n; i++) {
          const s = this.starts[id * f + i]!;
          const l = this.lasts[id * f + i]!;
          if (this.bounds[id * this.region + i] !== Number(s) || this.bounds[id * this.region + f + i * this.record] !== Number(l))
            throw new Error('interval tree: stale leaf key');
          if (l < s) throw new Error('interval tree: empty interval');
          if (prevLast !== null && prevLast >= s) throw new Error('interval tree: overlapping or unordered intervals');
          prevLast = l;
          count++;
        }
      } else {
        for (let i = 0; i < n; i++) {
          const child = this.innerChild[id * f + i]!;
          if (
            this.innerStarts[id * f + i] !== this.minStart(level - 1, child) ||
            this.innerKeys[id * f + i] !== Number(this.innerStarts[id * f + i]!)
          ) {
            throw new Error('interval tree: stale separator key');
          }
          const leaf = this.lastLeafOf(level - 1, child);
          const childLast = this.lasts[leaf * f + this.leafCount[leaf]! - 1]!;
          if (this.innerLasts[id * f + i] !== childLast || this.innerLastKeys[id * f + i] !== Number(childLast))
            throw new Error('interval tree: stale last of a child');
          walk(level - 1, child, id);
        }
      }
      if (!stale) {
        const cached = this.gapOf(level, id);
        if (level === LEAF) this.leafGapDirty[id] = 1;
        else this.innerGapDirty[id] = 1;
        if (this.gapOf(level, id) !== cached) throw new Error('interval tree: stale hole summary');
      }
    };
    if (this.root !== NONE) walk(this.height, this.root, NONE);
    if (count !== this.count) throw new Error('interval tree: size mismatch');
    // Walking down visits every leaf at the same depth (level 0); the chain must list them in order.
    leavesInOrder.forEach((leaf, i) => {
      if (this.leafPrev[leaf] !== (i > 0 ? leavesInOrder[i - 1] : NONE)) throw new Error('interval tree: broken leaf chain (prev)');
      if (this.leafNext[leaf] !== (i + 1 < leavesInOrder.length ? leavesInOrder[i + 1] : NONE))
        throw new Error('interval tree: broken leaf chain (next)');
    });
  }
}
