/**
 * The one syscall boundary. Everything above it (the typed API, drivers, the conformance suite)
 * talks to a `Kernel`; `NativeKernel` issues real syscalls through the addon, `ModelKernel`
 * (lib/model) simulates a Linux 7.3 host. Both receive the same bytes and answer the same way:
 * success returns a value, failure throws a `VfioError` carrying the errno the kernel returned.
 *
 * Addresses (`UserVa`) are real process addresses on the native side and simulated ones in the
 * model; only memory obtained from `mmap` has an address the kernel can resolve, so structs that
 * carry pointers (IOAS_MAP user_va, IOVA_RANGES allowed_iovas, ...) point into such mappings.
 */

import type { SocketCalls } from './socket-calls';

/**
 * An address in the process's (real or simulated) virtual address space.
 *
 * @category Kernel
 */
export type UserVa = bigint & {
  /** Type-only marker that keeps a UserVa from being passed where an IOVA or physical address is expected. */
  readonly __brand?: 'UserVa';
};

/**
 * The width in bits of one MMIO load or store; a device sees exactly this access size.
 *
 * @category Kernel
 */
export type MmioWidth = 8 | 16 | 32 | 64;

/**
 * A live memory mapping owned by the caller until `munmap`.
 *
 * @category Kernel
 */
export interface Mapping {
  /** Start address (page aligned). */
  readonly address: UserVa;
  /** Length in bytes as mapped. */
  readonly length: bigint;
  /** PROT_* bits it was mapped with. */
  readonly prot: number;
  /**
   * The bytes, for memory the process can touch directly: ordinary memory, and on the native side
   * a BAR too, where an aligned element of a Uint8/16/32Array or BigUint64Array over this buffer is
   * one load or store of exactly that width (see lib/vfio/mmio.ts). `null` where every access must go
   * through the exact-width `mmioRead`/`mmioWrite`: a simulated BAR, whose accesses trap into
   * the device model, and native mappings that are not read-write. Detached once unmapped: any
   * access then throws a TypeError (or, indexed, reads undefined) instead of touching freed memory.
   */
  readonly buffer: ArrayBuffer | null;
}

/**
 * Where `Kernel.mmap` places a mapping, for a caller that needs the low bits of its address (the
 * kernel's map_bar_misaligned puts a BAR one page past a 1 GiB boundary). The address is `skew`
 * bytes past a multiple of `align`. The kernel still chooses the range: mmap reserves
 * `length + align` bytes of PROT_NONE memory, maps over the chosen part of that reservation with
 * MAP_FIXED and returns the rest, all in the one call, so MAP_FIXED only ever replaces memory the
 * call itself reserved, never memory V8 or another mapping owns.
 *
 * @category Kernel
 */
export interface MmapPlacement {
  /** A power of two, at least the page size. */
  readonly align: bigint;
  /** A multiple of the page size below `align`. */
  readonly skew: bigint;
}

/**
 * The privileges of the calling process that decide what VFIO will allow it (see `Kernel.capabilities`).
 *
 * @category Kernel
 */
export interface Capabilities {
  /** CAP_SYS_RAWIO: needed to open a noiommu device and for IOMMU_IOAS_NOIOMMU_GET_PA. */
  readonly sysRawio: boolean;
  /** CAP_SYS_ADMIN: needed to see frame numbers in /proc/self/pagemap. */
  readonly sysAdmin: boolean;
  /** CAP_IPC_LOCK: lifts RLIMIT_MEMLOCK for pinning. */
  readonly ipcLock: boolean;
}

/**
 * The system calls node-vfio makes, behind one interface so the same code runs on the real host
 * (`nativeKernel()`) and on the model (`createModelKernel` from node-vfio/model). Every typed API
 * call takes the kernel it runs on in its options (`{ kernel }`), so nothing reaches the host by
 * accident. A kernel of your own (a recorder, a fault injector) can wrap either. Failures throw a VfioError with the errno the kernel returned.
 *
 * @example
 * ```ts
 * import { createModelKernel } from 'node-vfio/model';
 * const kernel = createModelKernel('linux-7.3-noiommu');
 * kernel.readdir('/sys/bus/pci/devices'); // ['0000:00:03.0'], the preset's edu device
 * ```
 *
 * @category Kernel
 */
export interface Kernel {
  /** 'native' or 'model' (with its profile name in `description`). */
  readonly kind: 'native' | 'model';
  /** Says which kernel this is, for messages: 'native (Linux …, x64)' or 'model kernel 7.3.0 (linux-7.3-noiommu)'. */
  readonly description: string;
  /** The page size of the (simulated) machine. */
  readonly pageSize: number;

  /** open(2): returns the new fd; `flags` are O_* bits (the native kernel always adds O_CLOEXEC). */
  open(path: string, flags: number): number;
  /** close(2). Closing an fd that is not open throws EBADF. */
  close(fd: number): void;
  /**
   * ioctl(fd, request, arg): `arg` is a struct buffer the kernel may read and write in place, an
   * integer argument (VFIO_CHECK_EXTENSION, VFIO_SET_IOMMU, VFIO_GROUP_GET_DEVICE_FD's string is a
   * Buffer), or null. Returns the non-negative result.
   */
  ioctl(fd: number, request: number, arg: Uint8Array | number | null): number;
  /**
   * Optional: one ioctl repeated along [start, start+length) in a single call, for commands that
   * answer for the start of a range with a value and how far it reaches (GET_PA's physical
   * address and contiguous length). `offsets` are the byte offsets in `command` of the cursor,
   * remaining-length and value fields; each step's (cursor, value, reach) goes to `out`, three
   * u64 per step, and an answer whose value continues the last step's (value + reach) extends
   * that step instead (GET_PA: adjacent answers that are one physical run). Stops when the range
   * is done, `out` is full, or an answer reaches 0 bytes or past the range; returns the steps
   * made. A kernel without it gets the same loop over `ioctl`
   * (lib/ioctl/ioctl-runs.ts): only a kernel whose per-call cost matters needs it.
   */
  ioctlRuns?(
    fd: number,
    request: number,
    command: Uint8Array,
    offsets: Uint32Array,
    start: bigint,
    length: bigint,
    out: BigUint64Array,
  ): number;
  /** pread(2) into `into` at file `offset` (a region offset for a VFIO device fd); returns the bytes read. */
  pread(fd: number, into: Uint8Array, offset: bigint): number;
  /** pwrite(2) of `from` at file `offset`; returns the bytes written. */
  pwrite(fd: number, from: Uint8Array, offset: bigint): number;

  /**
   * mmap(NULL, length, prot, flags, fd, offset); fd -1 with MAP_ANONYMOUS. MAP_FIXED and
   * MAP_FIXED_NOREPLACE are refused (RangeError): a caller that needs the address's alignment
   * passes `placement` instead, which only ever maps over memory the call reserved itself.
   */
  mmap(fd: number, length: bigint, prot: number, flags: number, offset: bigint, placement?: MmapPlacement): Mapping;
  /** munmap(2); detaches the mapping's buffer so a stale view throws instead of reading freed memory. */
  munmap(mapping: Mapping): void;
  /** mlock(2) of the whole mapping, counted against RLIMIT_MEMLOCK unless CAP_IPC_LOCK. */
  mlock(mapping: Mapping): void;
  /** Exact-width load/store at `offset` of a mapping (bounds- and alignment-checked: RangeError). */
  mmioRead(mapping: Mapping, offset: number, width: 8 | 16 | 32): number;
  /** A 64-bit load returns a bigint. */
  mmioRead(mapping: Mapping, offset: number, width: 64): bigint;
  /** For a width only known at run time. */
  mmioRead(mapping: Mapping, offset: number, width: MmioWidth): number | bigint;
  /** Exact-width store of `value` (a bigint for 64 bits) at `offset` of a mapping. */
  mmioWrite(mapping: Mapping, offset: number, width: MmioWidth, value: number | bigint): void;

  /** memfd_create(2): anonymous memory with an fd, which DMA buffers map to pin by fd (IOMMU_IOAS_MAP_FILE). */
  memfdCreate(name: string, flags: number): number;
  /** ftruncate(2): sets the size of a memfd. */
  ftruncate(fd: number, length: bigint): void;

  /** eventfd(2): the fds VFIO signals interrupts on (VFIO_DEVICE_SET_IRQS). */
  eventfd(initval: number, flags: number): number;
  /** Reads the eventfd counter (EAGAIN if zero and the fd is non-blocking). */
  eventfdRead(fd: number): bigint;
  /** Adds `value` to the eventfd counter; how interrupts are triggered by hand and INTx unmasked. */
  eventfdWrite(fd: number, value: bigint): void;
  /**
   * Resolves when `fd` is readable, without blocking the event loop (libuv poll on the native
   * side). Rejects with ECANCELED if the fd is closed or `signal` aborts.
   */
  waitReadable(fd: number, signal?: AbortSignal): Promise<void>;

  /** Reads a whole file: how sysfs attributes and /proc files are read. */
  readFile(path: string): Buffer;
  /** Writes a whole file: how sysfs attributes (driver_override, bind, unbind) are set. */
  writeFile(path: string, data: string | Uint8Array): void;
  /** The entries of a directory, without '.' and '..'. */
  readdir(path: string): string[];
  /** The target of a symlink, as stored (sysfs driver and iommu_group links are relative). */
  readlink(path: string): string;
  /** Whether the path exists; a check, never an error. */
  exists(path: string): boolean;

  /**
   * Optional: unix sockets that pass fds and report peer credentials (see lib/sys/socket-calls.ts),
   * what `UnixSocket` and the broker run on. Both the native kernel and the model have them; a
   * kernel without them cannot pass fds.
   */
  readonly sockets?: SocketCalls;

  /** The calling process's effective capabilities that VFIO checks. */
  capabilities(): Capabilities;
  /** RLIMIT_MEMLOCK soft limit in bytes (2^64-1 for unlimited). */
  memlockLimit(): bigint;
}
