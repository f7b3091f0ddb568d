/**
 * Lazy loading of the native addon (native/, built by node-gyp or shipped in prebuilds/).
 *
 * Nothing loads it until a native call is made, so `import 'node-vfio'` works everywhere — on
 * macOS or Windows, or on Linux without a compiler — and the model kernel stays usable. When the
 * addon cannot be loaded, the first native call throws a VfioError saying why.
 *
 * `NODE_VFIO_ADDON=/path/to/vfio.node` loads a specific build instead (the ASan build of
 * `npm run test:asan` uses this).
 */
import fs from 'node:fs';
import path from 'node:path';
import { ERRNO } from './constants';
import { VfioError } from './errors';

/** A failed syscall as the addon reports it, before lib/sys/native-kernel.ts adds path and ioctl name. */
export interface AddonErrnoError extends Error {
  readonly errno: number;
  readonly syscall: string;
}

/**
 * What mmap returns: a registry handle for the MMIO accessors, the address, and the bytes.
 * `buffer` is null when V8 cannot make an ArrayBuffer that large (above 4 GiB in Node 20); the
 * mapping is then used through its handle and address only. `lifetime` is the object whose
 * finalizer unmaps a forgotten mapping and that munmap must be given: `buffer` when there is one,
 * an opaque External otherwise.
 */
export interface AddonMapping {
  readonly handle: number;
  readonly address: bigint;
  readonly buffer: ArrayBuffer | null;
  readonly lifetime: object;
}

/** The exports of native/addon.cc. Every function throws an AddonErrnoError on syscall failure. */
export interface NativeAddon {
  pageSize(): number;
  /** Does nothing: what a call into the addon costs at the least (benchmarks time it). */
  emptyCall(): void;
  open(path: string, flags: number, mode: number): number;
  close(fd: number): void;
  /** `arg`: a struct (an ArrayBuffer, all of it, or a byte view), an integer, or null. */
  ioctl(fd: number, request: number, arg: ArrayBuffer | Uint8Array | DataView | number | null): number;
  ioctlRuns(
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
  memfdCreate(name: string, flags: number): number;
  ftruncate(fd: number, length: bigint): void;
  eventfd(initval: number, flags: number): number;
  eventfdRead(fd: number): bigint;
  eventfdWrite(fd: number, value: bigint): void;
  /** With `align` and `skew`, the address is `skew` bytes past a multiple of `align` (Kernel's MmapPlacement). */
  mmap(fd: number, length: bigint, prot: number, flags: number, offset: bigint, align?: bigint, skew?: bigint): AddonMapping;
  /** `lifetime` must be the one mmap returned for `handle` (a TypeError otherwise). */
  munmap(handle: number, lifetime: object): void;
  mlock(handle: number): void;
  read8(handle: number, offset: number): number;
  read16(handle: number, offset: number): number;
  read32(handle: number, offset: number): number;
  read64(handle: number, offset: number): bigint;
  write8(handle: number, offset: number, value: number): void;
  write16(handle: number, offset: number, value: number): void;
  write32(handle: number, offset: number, value: number): void;
  write64(handle: number, offset: number, value: bigint): void;
  /**
   * Calls `done(0)` once fd is readable, or `done(errno)` when the wait ends otherwise
   * (ECANCELED from cancelWait or close). `token` names this wait for cancelWait.
   */
  waitReadable(fd: number, token: number, done: (errno: number) => void): void;
  /** Ends the wait `token` on fd with ECANCELED; false when it was not pending. */
  cancelWait(fd: number, token: number): boolean;
  /** socket(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC). */
  unixSocket(): number;
  /** socketpair of two such sockets. */
  unixSocketPair(): [number, number];
  /** bind(path) then listen(backlog). */
  unixListen(fd: number, path: string, backlog: number): void;
  unixConnect(fd: number, path: string): void;
  /** accept4, non-blocking and close-on-exec (EAGAIN when nobody is waiting). */
  unixAccept(fd: number): number;
  /** sendmsg with the fds as SCM_RIGHTS (at most 253); returns the bytes sent. */
  sendFds(fd: number, data: Uint8Array, fds: readonly number[]): number;
  /** recvmsg with MSG_CMSG_CLOEXEC; the caller owns every fd returned, truncated or not. */
  recvFds(fd: number, into: Uint8Array): { bytes: number; fds: number[]; truncated: boolean };
  /** SO_PEERCRED of a connected socket. */
  peerCredentials(fd: number): { pid: number; uid: number; gid: number };
}

export function isAddonErrnoError(e: unknown): e is AddonErrnoError {
  return (
    e instanceof Error &&
    typeof (e as Partial<AddonErrnoError>).errno === 'number' &&
    typeof (e as Partial<AddonErrnoError>).syscall === 'string'
  );
}

export type AddonStatus =
  | { readonly available: true; readonly addon: NativeAddon; readonly source: string }
  | { readonly available: false; readonly reason: string };

let status: AddonStatus | undefined;

/** Loads the addon once (per thread) and remembers the outcome, success or the reason it failed. */
export function addonStatus(): AddonStatus {
  status ??= load();
  return status;
}

/** The addon, or a VfioError (EOPNOTSUPP, syscall 'dlopen') explaining why there is none. */
export function loadAddon(): NativeAddon {
  const s = addonStatus();
  if (s.available) return s.addon;
  throw new VfioError({
    errno: ERRNO.EOPNOTSUPP,
    syscall: 'dlopen',
    context: 'the node-vfio native addon is not available',
    hint: s.reason,
  });
}

function load(): AddonStatus {
  if (process.platform !== 'linux') {
    return { available: false, reason: `VFIO and iommufd exist only on Linux (this is ${process.platform}); use the model kernel` };
  }
  const override = process.env.NODE_VFIO_ADDON;
  try {
    if (override) {
      return { available: true, addon: require(path.resolve(override)) as NativeAddon, source: path.resolve(override) };
    }
    const root = packageRoot();
    // node-gyp-build picks build/Release (a local compile) first, then prebuilds/<platform>-<arch>.
    const nodeGypBuild = require('node-gyp-build') as { (dir: string): unknown; resolve(dir: string): string };
    const source = nodeGypBuild.resolve(root);
    return { available: true, addon: require(source) as NativeAddon, source };
  } catch (e) {
    const why = e instanceof Error ? e.message.split('\n')[0] : String(e);
    return {
      available: false,
      reason: `${why} — build it with \`npm rebuild node-vfio\` (needs python3, make and a C++ compiler)`,
    };
  }
}

/** The package directory: the nearest ancestor holding binding.gyp (dist/lib/sys → root). */
function packageRoot(): string {
  for (let dir = __dirname; ; dir = path.dirname(dir)) {
    if (fs.existsSync(path.join(dir, 'binding.gyp'))) return dir;
    if (path.dirname(dir) === dir) throw new Error(`binding.gyp not found above ${__dirname}`);
  }
}
