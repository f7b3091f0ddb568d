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

/** An address in the process's (real or simulated) virtual address space. */
export type UserVa = bigint & { readonly __brand?: 'UserVa' };

export type MmioWidth = 8 | 16 | 32 | 64;

/** A live memory mapping owned by the caller until `munmap`. */
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

export interface Capabilities {
  /** CAP_SYS_RAWIO: needed to open a noiommu device and for IOMMU_IOAS_NOIOMMU_GET_PA. */
  readonly sysRawio: boolean;
  /** CAP_SYS_ADMIN: needed to see frame numbers in /proc/self/pagemap. */
  readonly sysAdmin: boolean;
  /** CAP_IPC_LOCK: lifts RLIMIT_MEMLOCK for pinning. */
  readonly ipcLock: boolean;
}

export interface Kernel {
  /** 'native' or 'model' (with its profile name in `description`). */
  readonly kind: 'native' | 'model';
  readonly description: string;
  /** The page size of the (simulated) machine. */
  readonly pageSize: number;

  open(path: string, flags: number): number;
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
   * u64 per step. Stops when the range is done, `out` is full, or an answer reaches 0 bytes or
   * past the range; returns the steps made. A kernel without it gets the same loop over `ioctl`
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
  pread(fd: number, into: Uint8Array, offset: bigint): number;
  pwrite(fd: number, from: Uint8Array, offset: bigint): number;

  /** mmap(NULL, length, prot, flags, fd, offset); fd -1 with MAP_ANONYMOUS. */
  mmap(fd: number, length: bigint, prot: number, flags: number, offset: bigint): Mapping;
  munmap(mapping: Mapping): void;
  mlock(mapping: Mapping): void;
  /** Exact-width load/store at `offset` of a mapping (bounds- and alignment-checked: RangeError). */
  mmioRead(mapping: Mapping, offset: number, width: 8 | 16 | 32): number;
  mmioRead(mapping: Mapping, offset: number, width: 64): bigint;
  mmioRead(mapping: Mapping, offset: number, width: MmioWidth): number | bigint;
  mmioWrite(mapping: Mapping, offset: number, width: MmioWidth, value: number | bigint): void;

  memfdCreate(name: string, flags: number): number;
  ftruncate(fd: number, length: bigint): void;

  eventfd(initval: number, flags: number): number;
  /** Reads the eventfd counter (EAGAIN if zero and the fd is non-blocking). */
  eventfdRead(fd: number): bigint;
  eventfdWrite(fd: number, value: bigint): void;
  /**
   * Resolves when `fd` is readable, without blocking the event loop (libuv poll on the native
   * side). Rejects with ECANCELED if the fd is closed or `signal` aborts.
   */
  waitReadable(fd: number, signal?: AbortSignal): Promise<void>;

  readFile(path: string): Buffer;
  writeFile(path: string, data: string | Uint8Array): void;
  readdir(path: string): string[];
  readlink(path: string): string;
  exists(path: string): boolean;

  capabilities(): Capabilities;
  /** RLIMIT_MEMLOCK soft limit in bytes (2^64-1 for unlimited). */
  memlockLimit(): bigint;
}
