/**
 * A set of disjoint, inclusive intervals [start, last] over u64 (bigint), kept in a B+ tree
 * ordered by start and augmented with the widest hole between neighbours in each subtree.
 *
 * The kernel keeps IOAS areas, process mappings and reserved ranges in interval trees and maple
 * trees and finds free space in them without walking every entry; the model needs the same
 * asymptotics (point lookup, overlap query, insert, remove and "first hole of at least N bytes"
 * all O(log n)) so that a driver with 100k mappings costs what it costs on Linux.
 *
 * Why a B+ tree: a lookup in a binary tree of 100k nodes touches ~17 scattered objects, and each
 * is a cache miss; here each level is one node whose keys sit in a Float64Array searched by
 * bisection, and there are ~4 levels. Keys are compared as doubles first: Number() of a u64 is
 * monotonic, so unequal doubles already order the bigints and only equal ones (possible above
 * 2^53) need the exact comparison.
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

class Entry<T> implements IntervalNode<T> {
  readonly startN: number;

  constructor(readonly start: bigint, readonly last: bigint, readonly value: T) {
    this.startN = Number(start);
  }
}

/** Entries (or children) per node. */
const MAX = 32;

abstract class BNode<T> {
  parent: Inner<T> | null = null;
  n = 0;
  /** Start of each entry (leaf) or of each child's first entry (inner), as doubles. */
  readonly keys = new Float64Array(MAX);
  /** Widest hole between neighbouring intervals inside the subtree; recomputed lazily. */
  gap = -1n;
  gapDirty = true;
  abstract readonly leaf: boolean;
  abstract minStart(): bigint;
  abstract maxStart(): bigint;
  abstract maxLast(): bigint;
  /** The exact start key at index i. */
  abstract keyAt(i: number): bigint;
}

class Leaf<T> extends BNode<T> {
  readonly leaf = true;
  readonly entries: Entry<T>[] = [];
  next: Leaf<T> | null = null;
  prev: Leaf<T> | null = null;

  minStart(): bigint { return this.entries[0]!.start; }
  maxStart(): bigint { return this.entries[this.n - 1]!.start; }
  maxLast(): bigint { return this.entries[this.n - 1]!.last; }
  keyAt(i: number): bigint { return this.entries[i]!.start; }
}

class Inner<T> extends BNode<T> {
  readonly leaf = false;
  readonly children: BNode<T>[] = [];

  minStart(): bigint { return this.children[0]!.minStart(); }
  maxStart(): bigint { return this.children[this.n - 1]!.maxStart(); }
  maxLast(): bigint { return this.children[this.n - 1]!.maxLast(); }
  keyAt(i: number): bigint { return this.children[i]!.minStart(); }
}

/** The largest index i with key_i ≤ key (exactly), or -1. */
function upperIndex<T>(node: BNode<T>, key: bigint, keyN: number): number {
  const keys = node.keys;
  let lo = 0;
  let hi = node.n - 1;
  if (hi < 0 || keys[0]! > keyN) return -1;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (keys[mid]! <= keyN) lo = mid;
    else hi = mid - 1;
  }
  // Doubles tie above 2^53: step back over keys that are really larger.
  while (lo >= 0 && keys[lo] === keyN && node.keyAt(lo) > key) lo--;
  return lo;
}

/** Widest hole of a subtree, recomputing stale summaries on the way. */
function gapOf<T>(node: BNode<T>): bigint {
  if (!node.gapDirty) return node.gap;
  let gap = -1n;
  if (node.leaf) {
    const e = (node as Leaf<T>).entries;
    for (let i = 1; i < node.n; i++) {
      const g = e[i]!.start - e[i - 1]!.last - 1n;
      if (g > gap) gap = g;
    }
  } else {
    const c = (node as Inner<T>).children;
    for (let i = 0; i < node.n; i++) {
      const g = gapOf(c[i]!);
      if (g > gap) gap = g;
      if (i > 0) {
        const between = c[i]!.minStart() - c[i - 1]!.maxLast() - 1n;
        if (between > gap) gap = between;
      }
    }
  }
  node.gap = gap;
  node.gapDirty = false;
  return gap;
}

export class IntervalTree<T> {
  private root: BNode<T> | null = null;
  private count = 0;

  get size(): number {
    return this.count;
  }

  clear(): void {
    this.root = null;
    this.count = 0;
  }

  // ---- lookups ------------------------------------------------------------------------------

  /** The leaf and index of the last entry with start ≤ key; index -1 when key precedes everything. */
  private locate(key: bigint, keyN: number): { leaf: Leaf<T>; index: number } | null {
    let node: BNode<T> | null = this.root;
    if (!node) return null;
    while (!node.leaf) {
      const i: number = upperIndex(node, key, keyN);
      node = (node as Inner<T>).children[i < 0 ? 0 : i]!;
    }
    return { leaf: node as Leaf<T>, index: upperIndex(node, key, keyN) };
  }

  /** The interval containing `point`. */
  find(point: bigint): IntervalNode<T> | undefined {
    const at = this.locate(point, Number(point));
    if (!at || at.index < 0) return undefined;
    const e = at.leaf.entries[at.index]!;
    return point <= e.last ? e : undefined;
  }

  /** The entry after position (leaf, index), following the leaf chain. */
  private after(leaf: Leaf<T>, index: number): Entry<T> | undefined {
    if (index + 1 < leaf.n) return leaf.entries[index + 1];
    let l = leaf.next;
    while (l && l.n === 0) l = l.next;
    return l?.entries[0];
  }

  /** The lowest interval intersecting [start, last] (interval_tree_iter_first). */
  firstOverlap(start: bigint, last: bigint): IntervalNode<T> | undefined {
    const at = this.locate(start, Number(start));
    if (!at) return undefined;
    if (at.index >= 0) {
      const e = at.leaf.entries[at.index]!;
      if (e.last >= start) return e.start <= last ? e : undefined;
    }
    const nxt = at.index < 0 ? at.leaf.entries[0] : this.after(at.leaf, at.index);
    return nxt && nxt.start <= last ? nxt : undefined;
  }

  /** The highest interval intersecting [start, last]. */
  lastOverlap(start: bigint, last: bigint): IntervalNode<T> | undefined {
    const at = this.locate(last, Number(last));
    if (!at || at.index < 0) return undefined;
    const e = at.leaf.entries[at.index]!;
    return e.last >= start ? e : undefined;
  }

  /** The interval following the one that starts at `start` (or the first one after `start`). */
  next(start: bigint): IntervalNode<T> | undefined {
    const at = this.locate(start, Number(start));
    if (!at) return undefined;
    return at.index < 0 ? at.leaf.entries[0] : this.after(at.leaf, at.index);
  }

  /** The interval preceding the one that starts at `start`. */
  prev(start: bigint): IntervalNode<T> | undefined {
    const at = this.locate(start, Number(start));
    if (!at) return undefined;
    let index = at.index;
    if (index >= 0 && at.leaf.entries[index]!.start === start) index--;
    if (index >= 0) return at.leaf.entries[index];
    let l = at.leaf.prev;
    while (l && l.n === 0) l = l.prev;
    return l ? l.entries[l.n - 1] : undefined;
  }

  first(): IntervalNode<T> | undefined {
    let node = this.root;
    if (!node) return undefined;
    while (!node.leaf) node = (node as Inner<T>).children[0]!;
    return (node as Leaf<T>).entries[0];
  }

  lastNode(): IntervalNode<T> | undefined {
    let node = this.root;
    if (!node) return undefined;
    while (!node.leaf) node = (node as Inner<T>).children[node.n - 1]!;
    return (node as Leaf<T>).entries[node.n - 1];
  }

  /** All intervals intersecting [start, last], ascending. */
  *overlapping(start: bigint, last: bigint): Generator<IntervalNode<T>> {
    let n = this.firstOverlap(start, last);
    while (n && n.start <= last) {
      yield n;
      n = this.next(n.start);
    }
  }

  /** Every interval, ascending. */
  *[Symbol.iterator](): Generator<IntervalNode<T>> {
    let node = this.root;
    if (!node) return;
    while (!node.leaf) node = (node as Inner<T>).children[0]!;
    for (let l: Leaf<T> | null = node as Leaf<T>; l; l = l.next) {
      // Copy: callers may remove entries while iterating.
      for (const e of l.entries.slice(0, l.n)) yield e;
    }
  }

  // ---- updates ------------------------------------------------------------------------------

  /** Adds [start, last]. The caller guarantees it overlaps nothing already in the set. */
  insert(start: bigint, last: bigint, value: T): IntervalNode<T> {
    if (last < start) throw new RangeError(`interval [${start}, ${last}] is empty`);
    const entry = new Entry(start, last, value);
    if (!this.root) {
      const leaf = new Leaf<T>();
      this.root = leaf;
    }
    const at = this.locate(start, entry.startN)!;
    if (at.index >= 0 && at.leaf.entries[at.index]!.start === start) throw new Error(`interval tree: duplicate start ${start}`);
    const leaf = at.leaf;
    const pos = at.index + 1;
    leaf.entries.splice(pos, 0, entry);
    leaf.keys.copyWithin(pos + 1, pos, leaf.n);
    leaf.keys[pos] = entry.startN;
    leaf.n++;
    this.count++;
    this.touch(leaf, pos === 0);
    if (leaf.n === MAX) this.split(leaf);
    return entry;
  }

  /** Splits a full node in two and inserts the right half into the parent (growing the root). */
  private split(node: BNode<T>): void {
    const half = node.n >> 1;
    let right: BNode<T>;
    if (node.leaf) {
      const l = node as Leaf<T>;
      const r = new Leaf<T>();
      r.entries.push(...l.entries.splice(half));
      r.next = l.next;
      if (r.next) r.next.prev = r;
      r.prev = l;
      l.next = r;
      right = r;
    } else {
      const l = node as Inner<T>;
      const r = new Inner<T>();
      r.children.push(...l.children.splice(half));
      for (const c of r.children) c.parent = r;
      right = r;
    }
    right.keys.set(node.keys.subarray(half, node.n));
    right.n = node.n - half;
    node.n = half;
    node.gapDirty = true;
    right.gapDirty = true;
    let parent = node.parent;
    if (!parent) {
      parent = new Inner<T>();
      parent.children.push(node);
      parent.keys[0] = Number(node.minStart());
      parent.n = 1;
      node.parent = parent;
      this.root = parent;
    }
    const i = parent.children.indexOf(node);
    parent.children.splice(i + 1, 0, right);
    parent.keys.copyWithin(i + 2, i + 1, parent.n);
    parent.keys[i + 1] = Number(right.minStart());
    parent.n++;
    right.parent = parent;
    this.touch(parent, false);
    if (parent.n === MAX) this.split(parent);
  }

  /**
   * After a node changed: mark the hole summaries stale up to the root and, when its first key
   * changed, refresh the separator keys above it.
   */
  private touch(node: BNode<T>, firstChanged: boolean): void {
    let child: BNode<T> = node;
    child.gapDirty = true;
    let refreshKey = firstChanged;
    for (let p = child.parent; p; child = p, p = p.parent) {
      p.gapDirty = true;
      if (refreshKey) {
        const i = p.children.indexOf(child);
        p.keys[i] = Number(child.minStart());
        refreshKey = i === 0;
      }
    }
  }

  /** Removes the interval that starts at `start`; returns whether one was there. */
  remove(start: bigint): boolean {
    const at = this.locate(start, Number(start));
    if (!at || at.index < 0 || at.leaf.entries[at.index]!.start !== start) return false;
    const leaf = at.leaf;
    const pos = at.index;
    leaf.entries.splice(pos, 1);
    leaf.keys.copyWithin(pos, pos + 1, leaf.n);
    leaf.n--;
    this.count--;
    if (leaf.n === 0) this.detach(leaf);
    else this.touch(leaf, pos === 0);
    return true;
  }

  /** Takes an empty node out of the tree (and parents that become empty); shrinks the root. */
  private detach(node: BNode<T>): void {
    if (node.leaf) {
      const l = node as Leaf<T>;
      if (l.prev) l.prev.next = l.next;
      if (l.next) l.next.prev = l.prev;
    }
    const parent = node.parent;
    if (!parent) {
      this.root = null;
      return;
    }
    const i = parent.children.indexOf(node);
    parent.children.splice(i, 1);
    parent.keys.copyWithin(i, i + 1, parent.n);
    parent.n--;
    if (parent.n === 0) {
      this.detach(parent);
      return;
    }
    this.touch(parent, i === 0);
    // A root with a single child is replaced by that child.
    while (this.root && !this.root.leaf && this.root.n === 1) {
      const only: BNode<T> = (this.root as Inner<T>).children[0]!;
      only.parent = null;
      this.root = only;
    }
  }

  // ---- holes --------------------------------------------------------------------------------

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
    const search = (node: BNode<T>, predLast: bigint | null): { start: bigint; predLast: bigint } | null => {
      if (node.n === 0 || node.maxStart() <= from) return null;
      let best = gapOf(node);
      if (predLast !== null && node.minStart() - predLast - 1n > best) best = node.minStart() - predLast - 1n;
      if (best < minSize) return null;
      if (node.leaf) {
        const e = (node as Leaf<T>).entries;
        for (let i = 0; i < node.n; i++) {
          const pl = i > 0 ? e[i - 1]!.last : predLast;
          if (e[i]!.start > from && pl !== null && e[i]!.start - pl - 1n >= minSize) return { start: e[i]!.start, predLast: pl };
        }
        return null;
      }
      const c = (node as Inner<T>).children;
      let pl = predLast;
      for (let i = 0; i < node.n; i++) {
        const r = search(c[i]!, pl);
        if (r) return r;
        pl = c[i]!.maxLast();
      }
      return null;
    };
    return this.root ? search(this.root, null) : null;
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
    const search = (node: BNode<T>, succStart: bigint | null): { start: bigint; last: bigint; succStart: bigint } | null => {
      if (node.n === 0 || node.minStart() >= from) return null;
      let best = gapOf(node);
      if (succStart !== null && succStart - node.maxLast() - 1n > best) best = succStart - node.maxLast() - 1n;
      if (best < minSize) return null;
      if (node.leaf) {
        const e = (node as Leaf<T>).entries;
        for (let i = node.n - 1; i >= 0; i--) {
          const ss = i < node.n - 1 ? e[i + 1]!.start : succStart;
          if (e[i]!.start < from && ss !== null && ss - e[i]!.last - 1n >= minSize) return { start: e[i]!.start, last: e[i]!.last, succStart: ss };
        }
        return null;
      }
      const c = (node as Inner<T>).children;
      let ss = succStart;
      for (let i = node.n - 1; i >= 0; i--) {
        const r = search(c[i]!, ss);
        if (r) return r;
        ss = c[i]!.minStart();
      }
      return null;
    };
    return this.root ? search(this.root, null) : null;
  }

  /** Checks ordering, the leaf chain, separator keys, parents and hole summaries; for tests. */
  checkInvariants(): void {
    let count = 0;
    let prev: Entry<T> | undefined;
    const walk = (node: BNode<T>, depth: number, depths: Set<number>): void => {
      if (node.n === 0) throw new Error('interval tree: empty node in the tree');
      if (node.n >= MAX) throw new Error('interval tree: overfull node');
      const stale = node.gapDirty;
      if (node.leaf) {
        depths.add(depth);
        const l = node as Leaf<T>;
        if (l.entries.length !== l.n) throw new Error('interval tree: leaf count mismatch');
        l.entries.forEach((e, i) => {
          if (l.keys[i] !== e.startN) throw new Error('interval tree: stale leaf key');
          if (prev && prev.last >= e.start) throw new Error('interval tree: overlapping or unordered intervals');
          prev = e;
          count++;
        });
      } else {
        const inner = node as Inner<T>;
        if (inner.children.length !== inner.n) throw new Error('interval tree: inner count mismatch');
        inner.children.forEach((c, i) => {
          if (c.parent !== inner) throw new Error('interval tree: wrong parent pointer');
          if (inner.keys[i] !== Number(c.minStart())) throw new Error('interval tree: stale separator key');
          walk(c, depth + 1, depths);
        });
      }
      if (!stale) {
        const cached = node.gap;
        node.gapDirty = true;
        if (gapOf(node) !== cached) throw new Error('interval tree: stale hole summary');
      }
    };
    if (this.root) {
      const depths = new Set<number>();
      walk(this.root, 0, depths);
      if (depths.size !== 1) throw new Error('interval tree: leaves at different depths');
    }
    if (count !== this.count) throw new Error('interval tree: size mismatch');
  }
}
