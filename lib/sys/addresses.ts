/**
 * Branded address types. All three are plain bigints at run time; the brands exist only for the
 * type checker, so that a physical address cannot be handed to a call that expects an IOVA (the
 * classic swapped-argument bug of DMA code) and neither can be used as a process address.
 *
 * `UserVa` is the Kernel interface's own type (its brand is optional there so that both kernels
 * can produce addresses without casts); it still rejects an `Iova` or a `PhysAddr`.
 */
import { U64_MAX } from '../uapi/codec';
export type { UserVa } from './kernel';
import type { UserVa } from './kernel';

/**
 * An I/O virtual address: what a device puts on the bus, translated by the IOMMU (or not, on noiommu).
 *
 * @category Kernel
 */
export type Iova = bigint & {
  /** Type-checker-only marker; absent at run time. */
  readonly __brand: 'Iova';
};
/**
 * A host physical address, as IOMMU_IOAS_NOIOMMU_GET_PA or /proc/self/pagemap report it.
 *
 * @category Kernel
 */
export type PhysAddr = bigint & {
  /** Type-checker-only marker; absent at run time. */
  readonly __brand: 'PhysAddr';
};

function checkU64(kind: string, value: bigint | number): bigint {
  const v = typeof value === 'number' ? BigInt(value) : value;
  if (v < 0n || v > U64_MAX) throw new RangeError(`${kind} ${v} is outside 0..2^64-1`);
  return v;
}

/**
 * Marks a value as an IOVA (range-checked to u64).
 *
 * @category Kernel
 */
export function iova(value: bigint | number): Iova {
  return checkU64('IOVA', value) as Iova;
}

/**
 * Marks a value as a physical address (range-checked to u64).
 *
 * @category Kernel
 */
export function physAddr(value: bigint | number): PhysAddr {
  return checkU64('physical address', value) as PhysAddr;
}

/**
 * Marks a value as a process virtual address (range-checked to u64).
 *
 * @category Kernel
 */
export function userVa(value: bigint | number): UserVa {
  return checkU64('user address', value) as UserVa;
}

/**
 * One physically contiguous run of an IOVA range.
 *
 * @category Kernel
 */
export interface PhysicalSegment {
  /** IOVA of the run's first byte. */
  readonly iova: Iova;
  /** Physical address of the run's first byte. */
  readonly phys: PhysAddr;
  /** Bytes in the run. */
  readonly length: bigint;
}

/**
 * An inclusive IOVA range, as iommufd reports it (`last` is the last usable byte).
 *
 * @category Kernel
 */
export interface IovaRange {
  /** First IOVA of the range. */
  readonly start: Iova;
  /** Last IOVA of the range (inclusive). */
  readonly last: Iova;
}

/**
 * The address a device must be given to reach memory: the physical address on a noiommu host,
 * the IOVA behind an IOMMU. What `DmaBuffer.dmaAddress` returns, so drivers work in both modes.
 *
 * @category Kernel
 */
export type BusAddr = bigint & {
  /** Type-checker-only marker; absent at run time. */
  readonly __brand: 'BusAddr';
};
