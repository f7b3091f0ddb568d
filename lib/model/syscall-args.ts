/**
 * The argument checks NativeKernel's addon makes before any syscall (native/args.cc), made the
 * same way by the model, so that a bad argument fails with the same TypeError or RangeError on
 * both kernels instead of reaching the model's kernel code as a value no syscall can carry.
 */
import { MAP_FIXED } from '../sys/constants';
import type { MmapPlacement } from '../sys/kernel';

/** off_t / loff_t: offsets and lengths of files go to the kernel as signed 64-bit values. */
export const MAX_OFFSET = (1n << 63n) - 1n;
/** size_t and the 8-byte counter of an eventfd. */
export const MAX_U64 = (1n << 64n) - 1n;

/** An unsigned 64-bit argument no larger than `max`, as GetUnsignedBigInt takes it. */
export function checkUnsignedBigInt(name: string, value: bigint, max: bigint): void {
  if (typeof value !== 'bigint') throw new TypeError(`${name} must be a bigint`);
  if (value < 0n) throw new RangeError(`${name} must be a non-negative bigint`);
  if (value > max) throw new RangeError(`${name} must be a bigint in [0, ${max}]`);
}

/** A number argument that must be an integer in [min, max], as GetInteger takes it. */
export function checkInteger(name: string, value: number, min: number, max: number): void {
  if (typeof value !== 'number') throw new TypeError(`${name} must be a number`);
  if (!(value >= min && value <= max) || Math.trunc(value) !== value) {
    throw new RangeError(`${name} must be an integer in [${min}, ${max}]`);
  }
}

/** An fd argument (GetFd): an integer in [0, 2^31-1], or -1 where the call allows "no file". */
export function checkFd(fd: number, allowMinusOne = false): void {
  checkInteger('fd', fd, allowMinusOne ? -1 : 0, 0x7fff_ffff);
}

/** A string argument copied into a buffer of `capacity` bytes with its NUL (GetString). */
export function checkString(name: string, value: string, capacity: number): void {
  if (typeof value !== 'string') throw new TypeError(`${name} must be a string`);
  if (Buffer.byteLength(value) + 1 > capacity) throw new RangeError(`${name} must be at most ${capacity - 1} bytes of UTF-8`);
  if (value.includes('\0')) throw new RangeError(`${name} must be a string without NUL characters`);
}

/** MAP_FIXED_NOREPLACE of linux/mman.h. */
const MAP_FIXED_NOREPLACE = 0x10_0000;

/** The addon never lets the caller choose the address: MAP_FIXED could replace memory V8 owns. */
export function checkKernelChosenAddress(flags: number): void {
  if (flags & (MAP_FIXED | MAP_FIXED_NOREPLACE)) throw new RangeError('mmap: MAP_FIXED is not supported, the kernel chooses the address');
}

/** mmap's placement, checked as the addon checks it (native/memory.cc). */
export function checkPlacement(placement: MmapPlacement | undefined, pageSize: number): void {
  if (placement === undefined) return;
  checkUnsignedBigInt('align', placement.align, 1n << 62n);
  checkUnsignedBigInt('skew', placement.skew, 1n << 62n);
  const { align, skew } = placement;
  const page = BigInt(pageSize);
  if (align < page || (align & (align - 1n)) !== 0n)
    throw new RangeError('mmap: placement.align must be a power of two of at least the page size');
  if (skew >= align || skew % page !== 0n)
    throw new RangeError('mmap: placement.skew must be a multiple of the page size below placement.align');
}
