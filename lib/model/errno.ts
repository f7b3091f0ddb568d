/**
 * How the model's kernel code fails: by throwing a KernelError carrying the errno the real kernel
 * function returns at that point, and optionally a detail saying why in words. The syscall
 * boundary (ModelKernel) alone turns it into the VfioError a caller sees, adding the syscall, ioctl
 * name and path it knows there and keeping the detail — so code deep inside the model states only
 * *which* errno and why, never how the error is presented.
 */
import type { ErrnoName } from '../sys/constants';

/**
 * How model kernel code fails, the model's `return -EINVAL`: a device model or VFS node of your
 * own throws one (or calls `fail`), and the Kernel boundary turns it into the VfioError callers see.
 *
 * @example
 * ```ts
 * open: () => { throw new KernelError('EBUSY', 'the device is held by another user'); }
 * ```
 *
 * @category Model
 */
export class KernelError extends Error {
  constructor(
    /** The errno name the call fails with. */
    readonly code: ErrnoName,
    /** Why, in words; kept as the VfioError's `detail`. */
    readonly detail?: string,
  ) {
    super(detail ? `${code}: ${detail}` : code);
    this.name = 'KernelError';
  }
}

/**
 * Throws KernelError(code): `return fail('EINVAL')` reads like the kernel's `return -EINVAL`.
 *
 * @category Model
 */
export function fail(code: ErrnoName, detail?: string): never {
  throw new KernelError(code, detail);
}
