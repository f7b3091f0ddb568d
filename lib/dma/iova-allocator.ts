/**
 * First-fit IOVA allocation for the legacy type1 container, which (unlike iommufd) makes the
 * caller choose every IOVA. Free space is the usable ranges the container reports minus what is
 * mapped; process addresses cannot simply be reused as IOVAs because the IOMMU's input width
 * (39 bits on common VT-d) is often narrower than the process address space.
 */
import type { Iova } from '../sys/addresses';

interface Span {
  start: bigint;
  /** Inclusive. */
  last: bigint;
}

export class IovaAllocator {
  private readonly used: Span[] = [];

  /** `usable`: inclusive ranges the IOMMU accepts; `alignment`: the smallest IOMMU page size. */
  constructor(
    private readonly usable: readonly Span[],
    private readonly alignment: bigint,
  ) {}

  /** Reserves `length` bytes at the lowest aligned free IOVA (never IOVA 0). */
  allocate(length: bigint): Iova {
    for (const range of this.usable) {
      let candidate = alignUp(range.start === 0n ? this.alignment : range.start, this.alignment);
      for (;;) {
        const last = candidate + length - 1n;
        if (last > range.last) break;
        const clash = this.used.find((u) => u.start <= last && u.last >= candidate);
        if (!clash) {
          this.reserve(candidate, length);
          return candidate as Iova;
        }
        candidate = alignUp(clash.last + 1n, this.alignment);
      }
    }
    throw new RangeError(`no free IOVA range of ${length} bytes`);
  }

  /** Marks a caller-chosen range as used. */
  reserve(start: bigint, length: bigint): void {
    this.used.push({ start, last: start + length - 1n });
  }

  release(start: bigint): void {
    const i = this.used.findIndex((u) => u.start === start);
    if (i >= 0) this.used.splice(i, 1);
  }
}

function alignUp(n: bigint, a: bigint): bigint {
  return ((n + a - 1n) / a) * a;
}
