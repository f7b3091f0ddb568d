/**
 * The physically contiguous segments of an IOVA range in one flat table: (iova, phys, length)
 * per segment in a BigUint64Array. A GET_PA walk over a scattered buffer has thousands of
 * answers; the addon's run walk writes them (joined) into the walk's scratch table, and this table
 * is an exact copy of it, so the walk makes no object or bigint per answer (bench/api-segments).
 */
import type { Iova, PhysAddr, PhysicalSegment } from '../sys/addresses';

/**
 * Physically contiguous segments, in IOVA order, adjacent answers joined. Read a segment with
 * `iova(i)`, `phys(i)` and `length(i)`, or all of them as objects with `toArray()`.
 *
 * @category Ioctl results
 */
export class PhysicalSegmentTable {
  /** @internal Built by a GET_PA walk (Ioas.segmentTable): `entries` holds exactly the table's (iova, phys, length) triples. */
  constructor(private readonly entries: BigUint64Array) {
    if (entries.length % 3 !== 0) throw new RangeError('a segment table holds (iova, phys, length) triples');
    this.size = entries.length / 3;
  }

  private readonly size: number;

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

  private check(i: number): number {
    if (!Number.isInteger(i) || i < 0 || i >= this.size) throw new RangeError(`segment ${i} is not in the table (it has ${this.size})`);
    return i;
  }
}
