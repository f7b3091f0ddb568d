/**
 * The one place where a typed wrapper calls `kernel.ioctl`. The kernel only knows a request
 * number, and VFIO reuses numbers across kinds of fd, so the kernel cannot always name the ioctl
 * that failed; the wrapper can. Errors are rebuilt with the exact ioctl name so that the message
 * and the environment hint (lib/sys/errors.ts defaultHint) fit the call that was made.
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
    throw nameRequest(e, request);
  }
}

function nameRequest(e: unknown, request: IoctlRequest): unknown {
  if (!(e instanceof VfioError) || e.ioctl === request.name) return e;
  const details = { errno: e.errno, syscall: e.syscall || 'ioctl', ioctl: request.name } as const;
  const rebuilt = new VfioError(e.path === undefined ? details : { ...details, path: e.path });
  rebuilt.stack = `${rebuilt.name}: ${rebuilt.message}\n${(e.stack ?? '').split('\n').slice(1).join('\n')}`;
  return rebuilt;
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
