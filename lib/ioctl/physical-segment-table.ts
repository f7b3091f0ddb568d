/**
 * The physically contiguous segments of an IOVA range in one flat table: (iova, phys, length)
 * per segment in a BigUint64Array. A GET_PA walk over a scattered buffer has thousands of
 * answers; the addon's run walk writes them (joined) straight into this table, so the walk makes
 * no object or bigint per answer and costs what the same walk costs in C (bench/api-segments).
 */
import type { Iova, PhysAddr, PhysicalSegment } from '../sys/addresses';

/**
 * Physically contiguous segments, in IOVA order, adjacent answers joined. Read a segment with
 * `iova(i)`, `phys(i)` and `length(i)`, or all of them as objects with `toArray()`.
 *
 * @category Ioctl results
 */
export class PhysicalSegmentTable {
  private entries: BigUint64Array;
  private size = 0;

  /** @internal Built by a GET_PA walk (Ioas.segmentTable); `capacity`: segments to make room for at first. */
  constructor(capacity = 16) {
    this.entries = new BigUint64Array(3 * Math.max(1, capacity));
  }

  /** Segments in the table. */
  get count(): number {
    return this.size;
  }

  /** IOVA of segment `i`'s first byte. */
  iova(i: number): Iova {
    return this.entries[3 * this.check(i)]! as Iova;
  }

  /** Physical address of segment `i`'s first byte. */
  phys(i: number): PhysAddr {
    return this.entries[3 * this.check(i) + 1]! as PhysAddr;
  }

  /** Bytes in segment `i`. */
  length(i: number): bigint {
    return this.entries[3 * this.check(i) + 2]!;
  }

  /** Every segment as an object, in order. */
  toArray(): PhysicalSegment[] {
    const out = new Array<PhysicalSegment>(this.size);
    const e = this.entries;
    for (let i = 0; i < this.size; i++) out[i] = { iova: e[3 * i]! as Iova, phys: e[3 * i + 1]! as PhysAddr, length: e[3 * i + 2]! };
    return out;
  }

  /** @internal Room for `segments` more after the last, as the (iova, phys, length) view a walk fills. */
  room(segments: number): BigUint64Array {
    const needed = 3 * (this.size + segments);
    if (needed > this.entries.length) {
      const bigger = new BigUint64Array(Math.max(needed, 2 * this.entries.length));
      bigger.set(this.entries.subarray(0, 3 * this.size));
      this.entries = bigger;
    }
    return this.entries.subarray(3 * this.size, needed);
  }

  /**
   * @internal Keeps the first `segments` a walk wrote into room(). A walk joins the answers of
   * one batch; the first of a batch may continue the last of the one before, and is joined here.
   */
  commit(segments: number): void {
    if (segments === 0) return;
    const e = this.entries;
    const at = 3 * this.size;
    if (this.size > 0 && e[at + 1] === e[at - 2]! + e[at - 1]!) {
      e[at - 1] = e[at - 1]! + e[at + 2]!;
      e.copyWithin(at, at + 3, at + 3 * segments);
      segments--;
    }
    this.size += segments;
  }

  /** @internal After the walk: gives back the room it did not use. */
  trim(): void {
    if (this.entries.length > 2 * 3 * this.size) this.entries = this.entries.slice(0, 3 * Math.max(1, this.size));
  }

  private check(i: number): number {
    if (!Number.isInteger(i) || i < 0 || i >= this.size) throw new RangeError(`segment ${i} is not in the table (it has ${this.size})`);
    return i;
  }
}
