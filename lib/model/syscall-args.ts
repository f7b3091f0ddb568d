/**
 * The argument checks NativeKernel's addon makes before any syscall (native/args.cc), made the
 * same way by the model, so that a bad argument fails with the same TypeError or RangeError on
 * both kernels instead of reaching the model's kernel code as a value no syscall can carry.
 */

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
