/**
 * The one place where a typed wrapper calls `kernel.ioctl`. The kernel only knows a request
 * number, and VFIO reuses numbers across kinds of fd, so the kernel cannot always name the ioctl
 * that failed; the wrapper can. Errors are wrapped (VfioError.wrap) with the exact ioctl name so
 * that the message and the environment hint (lib/sys/errors.ts defaultHint) fit the call made.
 */
import type { Kernel, Mapping } from '../sys/kernel';
import { VfioError } from '../sys/errors';
import type { IoctlRequest } from '../uapi/requests';
import { MAP_ANONYMOUS, MAP_PRIVATE, PROT_READ, PROT_WRITE } from '../sys/constants';

/** Issues `request` on `fd`; a kernel error comes back as a VfioError naming the request. */
export function invoke(kernel: Kernel, fd: number, request: IoctlRequest, arg: Uint8Array | number | null): number {
  try {
    return kernel.ioctl(fd, request.number, arg);
  } catch (e) {
    throw VfioError.wrap(e, { ioctl: request.name });
  }
}

/**
 * Runs `use` with a zeroed scratch mapping of at least `length` bytes in the (real or simulated)
 * process address space, for ioctls whose struct carries a pointer to an array (IOVA ranges, HW
 * info data, HWPT driver data). Only mmap'ed memory has an address both kernels can resolve.
 */
export function withUserMemory<T>(kernel: Kernel, length: number, use: (memory: Mapping, bytes: Uint8Array) => T): T {
  const pages = Math.max(1, Math.ceil(length / kernel.pageSize));
  const memory = kernel.mmap(-1, BigInt(pages * kernel.pageSize), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, 0n);
  try {
    if (!memory.buffer) throw new Error('anonymous mapping has no bytes');
    return use(memory, new Uint8Array(memory.buffer, 0, length));
  } finally {
    kernel.munmap(memory);
  }
}
