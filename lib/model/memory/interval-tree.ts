/**
 * A set of disjoint, inclusive intervals [start, last] over u64 (bigint), kept in an AVL tree
 * ordered by start and augmented with the widest gap between neighbours in each subtree.
 *
 * The kernel keeps IOAS areas, process mappings and reserved ranges in interval trees and maple
 * trees and finds free space in them without walking every entry; the model needs the same
 * asymptotics (point lookup, overlap query, insert, remove and "first hole of at least N bytes"
 * all O(log n)) so that a driver with 100k mappings costs what it costs on Linux.
 */

export interface IntervalNode<T> {
  readonly start: bigint;
  readonly last: bigint;
  readonly value: T;
}

/**
 * Keys are u64 bigints, but comparing bigints is slow next to comparing doubles. Each node keeps
 * its bounds as doubles too; Number() of a bigint is monotonic, so unequal doubles already order
 * the bigints and only equal ones (possible above 2^53) need the exact comparison.
 */
class Node<T> implements IntervalNode<T> {
  readonly startN: number;
  readonly lastN: number;
  left: Node<T> | null = null;
  right: Node<T> | null = null;
  height = 1;
  /** Start of the leftmost interval in this subtree. */
  minStart: bigint;
  /** Start and last of the rightmost interval in this subtree. */
  maxStart: bigint;
  maxLast: bigint;
  /** Widest hole between two neighbouring intervals inside this subtree, -1 when there is none. */
  maxGap = -1n;

  constructor(readonly start: bigint, readonly last: bigint, readonly value: T) {
    this.startN = Number(start);
    this.lastN = Number(last);
    this.minStart = start;
    this.maxStart = start;
    this.maxLast = last;
  }
}

/** A hole between intervals (or between an interval and the edge of the searched window). */
export interface Gap {
  readonly start: bigint;
  readonly last: bigint;
}

/** key < node.start */
function beforeStart<T>(key: bigint, keyN: number, n: Node<T>): boolean {
  return keyN < n.startN || (keyN === n.startN && key < n.start);
}

/** key > node.start */
function afterStart<T>(key: bigint, keyN: number, n: Node<T>): boolean {
  return keyN > n.startN || (keyN === n.startN && key > n.start);
}

/** key > node.last */
function afterLast<T>(key: bigint, keyN: number, n: Node<T>): boolean {
  return keyN > n.lastN || (keyN === n.lastN && key > n.last);
}

function height<T>(n: Node<T> | null): number {
  return n ? n.height : 0;
}

function update<T>(n: Node<T>): void {
  const l = n.left;
  const r = n.right;
  n.height = Math.max(height(l), height(r)) + 1;
  n.minStart = l ? l.minStart : n.start;
  n.maxStart = r ? r.maxStart : n.start;
  n.maxLast = r ? r.maxLast : n.last;
  let gap = -1n;
  if (l) {
    if (l.maxGap > gap) gap = l.maxGap;
    const g = n.start - l.maxLast - 1n;
    if (g > gap) gap = g;
  }
  if (r) {
    if (r.maxGap > gap) gap = r.maxGap;
    const g = r.minStart - n.last - 1n;
    if (g > gap) gap = g;
  }
  n.maxGap = gap;
}

function rotateRight<T>(n: Node<T>): Node<T> {
  const l = n.left!;
  n.left = l.right;
  l.right = n;
  update(n);
  update(l);
  return l;
}

function rotateLeft<T>(n: Node<T>): Node<T> {
  const r = n.right!;
  n.right = r.left;
  r.left = n;
  update(n);
  update(r);
  return r;
}

function balance<T>(n: Node<T>): Node<T> {
  update(n);
  const bf = height(n.left) - height(n.right);
  if (bf > 1) {
    if (height(n.left!.left) < height(n.left!.right)) n.left = rotateLeft(n.left!);
    return rotateRight(n);
  }
  if (bf < -1) {
    if (height(n.right!.right) < height(n.right!.left)) n.right = rotateRight(n.right!);
    return rotateLeft(n);
  }
  return n;
}

export class IntervalTree<T> {
  private root: Node<T> | null = null;
  private count = 0;

  get size(): number {
    return this.count;
  }

  /** Adds [start, last]. The caller guarantees it overlaps nothing already in the set. */
  insert(start: bigint, last: bigint, value: T): IntervalNode<T> {
    if (last < start) throw new RangeError(`interval [${start}, ${last}] is empty`);
    const node = new Node(start, last, value);
    this.root = this.insertAt(this.root, node);
    this.count++;
    return node;
  }

  private insertAt(at: Node<T> | null, node: Node<T>): Node<T> {
    if (!at) return node;
    if (beforeStart(node.start, node.startN, at)) at.left = this.insertAt(at.left, node);
    else if (afterStart(node.start, node.startN, at)) at.right = this.insertAt(at.right, node);
    else throw new Error(`interval tree: duplicate start ${node.start}`);
    return balance(at);
  }

  /** Removes the interval that starts at `start`; returns whether one was there. */
  remove(start: bigint): boolean {
    const before = this.count;
    this.root = this.removeAt(this.root, start, Number(start));
    return this.count !== before;
  }

  private removeAt(at: Node<T> | null, start: bigint, startN: number): Node<T> | null {
    if (!at) return null;
    if (beforeStart(start, startN, at)) at.left = this.removeAt(at.left, start, startN);
    else if (afterStart(start, startN, at)) at.right = this.removeAt(at.right, start, startN);
    else {
      this.count--;
      if (!at.left) return at.right;
      if (!at.right) return at.left;
      // Replace by the smallest node of the right subtree.
      let min = at.right;
      while (min.left) min = min.left;
      const rest = this.detachMin(at.right);
      min.left = at.left;
      min.right = rest;
      return balance(min);
    }
    return balance(at);
  }

  private detachMin(at: Node<T>): Node<T> | null {
    if (!at.left) return at.right;
    at.left = this.detachMin(at.left);
    return balance(at);
  }

  clear(): void {
    this.root = null;
    this.count = 0;
  }

  /** The interval containing `point`. */
  find(point: bigint): IntervalNode<T> | undefined {
    const pn = Number(point);
    let n = this.root;
    while (n) {
      if (beforeStart(point, pn, n)) n = n.left;
      else if (afterLast(point, pn, n)) n = n.right;
      else return n;
    }
    return undefined;
  }

  /** The lowest interval intersecting [start, last] (interval_tree_iter_first). */
  firstOverlap(start: bigint, last: bigint): IntervalNode<T> | undefined {
    // Intervals are disjoint and sorted, so their ends are sorted too: find the first end ≥ start.
    const sn = Number(start);
    let n = this.root;
    let found: Node<T> | null = null;
    while (n) {
      if (!afterLast(start, sn, n)) {
        found = n;
        n = n.left;
      } else n = n.right;
    }
    return found && found.start <= last ? found : undefined;
  }

  /** The highest interval intersecting [start, last]. */
  lastOverlap(start: bigint, last: bigint): IntervalNode<T> | undefined {
    const ln = Number(last);
    let n = this.root;
    let found: Node<T> | null = null;
    while (n) {
      if (!beforeStart(last, ln, n)) {
        found = n;
        n = n.right;
      } else n = n.left;
    }
    return found && found.last >= start ? found : undefined;
  }

  /** The interval following the one that starts at `start`. */
  next(start: bigint): IntervalNode<T> | undefined {
    const sn = Number(start);
    let n = this.root;
    let found: Node<T> | null = null;
    while (n) {
      if (beforeStart(start, sn, n)) {
        found = n;
        n = n.left;
      } else n = n.right;
    }
    return found ?? undefined;
  }

  /** The interval preceding the one that starts at `start`. */
  prev(start: bigint): IntervalNode<T> | undefined {
    const sn = Number(start);
    let n = this.root;
    let found: Node<T> | null = null;
    while (n) {
      if (afterStart(start, sn, n)) {
        found = n;
        n = n.right;
      } else n = n.left;
    }
    return found ?? undefined;
  }

  first(): IntervalNode<T> | undefined {
    let n = this.root;
    if (!n) return undefined;
    while (n.left) n = n.left;
    return n;
  }

  lastNode(): IntervalNode<T> | undefined {
    let n = this.root;
    if (!n) return undefined;
    while (n.right) n = n.right;
    return n;
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
    const stack: Node<T>[] = [];
    let n = this.root;
    while (n || stack.length) {
      while (n) {
        stack.push(n);
        n = n.left;
      }
      n = stack.pop()!;
      yield n;
      n = n.right;
    }
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
    let n = this.firstOverlap(lo, hi) as Node<T> | undefined;
    if (n && n.start <= lo) {
      if (n.last >= hi) return;
      cur = n.last + 1n;
      n = this.next(n.start) as Node<T> | undefined;
    }
    // Leading hole, up to the first interval after `cur` (or the window's end).
    const leadEnd = n && n.start <= hi ? n.start - 1n : hi;
    if (leadEnd - cur + 1n >= minSize) yield { start: cur, last: leadEnd };
    if (!n || n.start > hi) return;
    let from = n.start;
    for (;;) {
      const pair = this.firstWideGapAfter(from, minSize);
      if (!pair) {
        // Trailing hole after the highest interval.
        const top = this.lastNode()!;
        if (top.last < hi && top.start >= from) {
          const size = hi - top.last;
          if (size >= minSize) yield { start: top.last + 1n, last: hi };
        }
        return;
      }
      const gapStart = pair.predLast + 1n;
      if (gapStart > hi) return;
      const gapLast = pair.node.start - 1n < hi ? pair.node.start - 1n : hi;
      if (gapLast - gapStart + 1n >= minSize) yield { start: gapStart, last: gapLast };
      if (pair.node.start > hi) return;
      from = pair.node.start;
    }
  }

  /**
   * The first interval b with b.start > from whose hole before it (from its predecessor's end)
   * is at least minSize, with that predecessor's last.
   */
  private firstWideGapAfter(from: bigint, minSize: bigint): { node: Node<T>; predLast: bigint } | null {
    const search = (n: Node<T> | null, predLast: bigint | null): { node: Node<T>; predLast: bigint } | null => {
      if (!n || n.maxStart <= from) return null;
      let best = n.maxGap;
      if (predLast !== null && n.minStart - predLast - 1n > best) best = n.minStart - predLast - 1n;
      if (best < minSize) return null;
      const inLeft = search(n.left, predLast);
      if (inLeft) return inLeft;
      const pl = n.left ? n.left.maxLast : predLast;
      if (n.start > from && pl !== null && n.start - pl - 1n >= minSize) return { node: n, predLast: pl };
      return search(n.right, n.last);
    };
    return search(this.root, null);
  }

  /**
   * Holes inside [lo, hi] at least `minSize` long, highest first (for top-down allocation, like
   * the kernel's unmapped_area_topdown).
   */
  *holesDescending(lo: bigint, hi: bigint, minSize: bigint): Generator<Gap> {
    if (lo > hi) return;
    let cur = hi;
    let n = this.lastOverlap(lo, hi) as Node<T> | undefined;
    if (n && n.last >= hi) {
      if (n.start <= lo) return;
      cur = n.start - 1n;
      n = this.prev(n.start) as Node<T> | undefined;
    }
    const trailStart = n && n.last >= lo ? n.last + 1n : lo;
    if (cur - trailStart + 1n >= minSize) yield { start: trailStart, last: cur };
    if (!n || n.last < lo) return;
    let from = n.start;
    for (;;) {
      const pair = this.lastWideGapBefore(from, minSize);
      if (!pair) {
        const bottom = this.first()!;
        if (bottom.start > lo && bottom.start <= from) {
          const size = bottom.start - lo;
          if (size >= minSize) yield { start: lo, last: bottom.start - 1n };
        }
        return;
      }
      const gapLast = pair.succStart - 1n;
      if (gapLast < lo) return;
      const gapStart = pair.node.last + 1n > lo ? pair.node.last + 1n : lo;
      if (gapLast - gapStart + 1n >= minSize) yield { start: gapStart, last: gapLast };
      if (pair.node.last < lo) return;
      from = pair.node.start;
    }
  }

  /** The last interval a with a.start < from whose hole after it is at least minSize. */
  private lastWideGapBefore(from: bigint, minSize: bigint): { node: Node<T>; succStart: bigint } | null {
    const search = (n: Node<T> | null, succStart: bigint | null): { node: Node<T>; succStart: bigint } | null => {
      if (!n || n.minStart >= from) return null;
      let best = n.maxGap;
      if (succStart !== null && succStart - n.maxLast - 1n > best) best = succStart - n.maxLast - 1n;
      if (best < minSize) return null;
      const inRight = search(n.right, succStart);
      if (inRight) return inRight;
      const ss = n.right ? n.right.minStart : succStart;
      if (n.start < from && ss !== null && ss - n.last - 1n >= minSize) return { node: n, succStart: ss };
      return search(n.left, n.start);
    };
    return search(this.root, null);
  }

  /** Checks the AVL and augmentation invariants; for tests. */
  checkInvariants(): void {
    const walk = (n: Node<T> | null): void => {
      if (!n) return;
      walk(n.left);
      walk(n.right);
      const { height: h, minStart, maxStart, maxLast, maxGap } = n;
      update(n);
      if (h !== n.height || minStart !== n.minStart || maxStart !== n.maxStart || maxLast !== n.maxLast || maxGap !== n.maxGap) {
        throw new Error(`interval tree: stale augmentation at [${n.start}, ${n.last}]`);
      }
      if (Math.abs(height(n.left) - height(n.right)) > 1) throw new Error('interval tree: unbalanced');
    };
    walk(this.root);
    let prev: IntervalNode<T> | undefined;
    for (const n of this) {
      if (prev && prev.last >= n.start) throw new Error('interval tree: overlapping intervals');
      prev = n;
    }
  }
}
