/**
 * NativeKernel: the Kernel interface over real Linux syscalls, through the addon in native/.
 *
 * The addon reports a failed syscall as an errno and the syscall's name; this class knows what
 * the fd is (the path it was opened by and its kind) and turns that into a VfioError naming the
 * exact ioctl and the path. Filesystem calls (sysfs, /proc) go through node:fs.
 */
import { wrapNewKernel } from './kernel-wrapper';
import fs from 'node:fs';
import os from 'node:os';
import { markAsUntransferable } from 'node:worker_threads';
import { loadAddon, isAddonErrnoError, type NativeAddon } from './addon';
import { ERRNO, O_CLOEXEC, PROT_READ, PROT_WRITE } from './constants';
import { VfioError, type VfioErrorDetails } from './errors';
import type { Capabilities, Kernel, Mapping, MmapPlacement, MmioWidth, UserVa } from './kernel';
import type { SocketCalls } from './socket-calls';
import { ioctlName, type FileKind } from '../uapi/requests';
import { wholeBufferOf } from '../uapi/codec';
// The request tables register their names with ioctlName when loaded.
import '../uapi/iommufd';
import { VFIO_GROUP_GET_DEVICE_FD } from '../uapi/vfio';

const VFIO_GROUP_GET_DEVICE_FD_NUMBER = VFIO_GROUP_GET_DEVICE_FD.number;

export type { FileKind };

/**
 * What the kernel tracks about an fd it handed out: how it was opened, for error messages.
 *
 * @category Kernel
 */
export type NativeFileKind = FileKind | 'eventfd' | 'memfd' | 'file';

interface OpenFd {
  readonly path: string;
  readonly kind: NativeFileKind;
}

/**
 * The kind of file a path names, so ioctl errors can name the request exactly.
 *
 * @category Kernel
 */
export function fileKindOfPath(path: string): NativeFileKind {
  if (path === '/dev/iommu') return 'iommufd';
  if (path === '/dev/vfio/vfio') return 'vfio-container';
  if (path.startsWith('/dev/vfio/devices/')) return 'vfio-device';
  if (/^\/dev\/vfio\/(noiommu-)?\d+$/.test(path)) return 'vfio-group';
  return 'file';
}

const CAP_IPC_LOCK = 14n;
const CAP_SYS_RAWIO = 17n;
const CAP_SYS_ADMIN = 21n;
const U64_MAX = (1n << 64n) - 1n;

/**
 * A mapping made by NativeKernel. `handle` names it in the addon's registry (MMIO accessors);
 * `lifetime` is the object whose finalizer unmaps a forgotten mapping: its ArrayBuffer, or an
 * External when V8 cannot make a buffer that large (above 4 GiB in Node 20). `buffer` is that
 * same ArrayBuffer for read-write mappings and null otherwise, because a store into read-only
 * memory through a typed array would kill the process instead of throwing.
 *
 * @category Kernel
 */
export class NativeMapping implements Mapping {
  readonly buffer: ArrayBuffer | null;

  constructor(
    readonly address: UserVa,
    readonly length: bigint,
    readonly prot: number,
    /** @internal */ readonly handle: number,
    /** @internal */ readonly lifetime: object,
  ) {
    const readWrite = (prot & (PROT_READ | PROT_WRITE)) === (PROT_READ | PROT_WRITE);
    this.buffer = readWrite && lifetime instanceof ArrayBuffer ? lifetime : null;
  }
}

/**
 * The Kernel of the real host: every call is the system call itself, through the native addon.
 * Usually reached through `nativeKernel()`, the process's one instance, so that the fds it tracks
 * (for error messages and for ending waits on close) are the same everywhere.
 *
 * @category Kernel
 */
export class NativeKernel implements Kernel {
  readonly kind = 'native' as const;
  readonly description: string;
  readonly pageSize: number;
  private readonly addon: NativeAddon;
  private readonly fds = new Map<number, OpenFd>();
  private nextWaitToken = 1;
  /** AF_UNIX SOCK_SEQPACKET sockets with SCM_RIGHTS and SO_PEERCRED (native/sockets.cc). */
  readonly sockets: SocketCalls;

  constructor(addon: NativeAddon = loadAddon()) {
    this.addon = addon;
    this.pageSize = addon.pageSize();
    this.description = `native (Linux ${os.release()}, ${os.arch()})`;
    this.sockets = this.socketCalls(addon);
  }

  private socketCalls(addon: NativeAddon): SocketCalls {
    const socketAt = (path: string, body: (fd: number) => void): number => {
      const fd = this.call(() => addon.unixSocket(), { path });
      try {
        this.call(() => body(fd), { path });
      } catch (e) {
        addon.close(fd);
        throw e;
      }
      return fd;
    };
    return {
      socketPair: () => this.call(() => addon.unixSocketPair(), { path: 'socketpair' }),
      listen: (path, backlog) => socketAt(path, (fd) => addon.unixListen(fd, path, backlog)),
      connect: (path) => socketAt(path, (fd) => addon.unixConnect(fd, path)),
      accept: (fd) => this.call(() => addon.unixAccept(fd), {}),
      send: (fd, data, fds) => this.call(() => addon.sendFds(fd, data, fds), {}),
      receive: (fd, into) => this.call(() => addon.recvFds(fd, into), {}),
      peerCredentials: (fd) => this.call(() => addon.peerCredentials(fd), {}),
      unlink: (path) => {
        try {
          fs.unlinkSync(path);
        } catch (e) {
          const code = (e as NodeJS.ErrnoException).code;
          const errno = code !== undefined ? ERRNO[code as keyof typeof ERRNO] : undefined;
          if (errno === undefined) throw e;
          throw new VfioError({ errno, syscall: 'unlink', path });
        }
      },
    };
  }

  /** Path and kind of an fd this kernel opened, if it did. */
  fileOf(fd: number):
    | {
        /** The path it was opened at ('anon_inode:[eventfd]', 'memfd:<name>' for fds without one). */
        readonly path: string;
        /** What kind of file it is, which decides how ioctl requests are named in errors. */
        readonly kind: NativeFileKind;
      }
    | undefined {
    return this.fds.get(fd);
  }

  open(path: string, flags: number): number {
    // Close-on-exec always: a VFIO or iommufd fd inherited by a child process would keep the
    // device and its DMA mappings alive behind the parent's back.
    const fd = this.call(() => this.addon.open(path, flags | O_CLOEXEC, 0o666), { path });
    this.fds.set(fd, { path, kind: fileKindOfPath(path) });
    return fd;
  }

  close(fd: number): void {
    const file = this.fds.get(fd);
    // Linux releases the number even when close fails (EBADF aside), so forget it either way.
    this.fds.delete(fd);
    this.call(() => this.addon.close(fd), { path: file?.path });
  }

  // Every typed-API call ends here, so the successful path only makes the call: what the fd is
  // (for the error's ioctl name and path) is looked up when the call fails or opened a device.
  ioctl(fd: number, request: number, arg: Uint8Array | number | null): number {
    let result: number;
    try {
      // A struct that fills its ArrayBuffer goes as the ArrayBuffer (see wholeBufferOf).
      result = this.addon.ioctl(fd, request, arg instanceof Uint8Array ? (wholeBufferOf(arg) ?? arg) : arg);
    } catch (e) {
      throw this.translateIoctl(e, fd, request);
    }
    if (request === VFIO_GROUP_GET_DEVICE_FD_NUMBER) this.noteGroupDevice(fd, result, arg);
    return result;
  }

  ioctlRuns(
    fd: number,
    request: number,
    command: Uint8Array,
    offsets: Uint32Array,
    start: bigint,
    length: bigint,
    out: BigUint64Array,
  ): number {
    try {
      return this.addon.ioctlRuns(fd, request, command, offsets, start, length, out);
    } catch (e) {
      throw this.translateIoctl(e, fd, request);
    }
  }

  private translateIoctl(e: unknown, fd: number, request: number): unknown {
    const file = this.fds.get(fd);
    return this.translate(e, { ioctl: ioctlName(request, isFileKind(file?.kind) ? file.kind : undefined), path: file?.path });
  }

  /** Remembers the device fd a group handed out, named after the group and the device. */
  private noteGroupDevice(groupFd: number, deviceFd: number, arg: Uint8Array | number | null): void {
    const file = this.fds.get(groupFd);
    if (file?.kind !== 'vfio-group' || !(arg instanceof Uint8Array)) return;
    const end = arg.indexOf(0);
    const device = Buffer.from(arg.buffer, arg.byteOffset, end < 0 ? arg.length : end).toString('utf8');
    this.fds.set(deviceFd, { path: `${file.path} device ${device}`, kind: 'vfio-device' });
  }

  pread(fd: number, into: Uint8Array, offset: bigint): number {
    return this.call(() => this.addon.pread(fd, into, offset), { path: this.fds.get(fd)?.path });
  }

  pwrite(fd: number, from: Uint8Array, offset: bigint): number {
    return this.call(() => this.addon.pwrite(fd, from, offset), { path: this.fds.get(fd)?.path });
  }

  mmap(fd: number, length: bigint, prot: number, flags: number, offset: bigint, placement?: MmapPlacement): NativeMapping {
    const path = fd >= 0 ? this.fds.get(fd)?.path : undefined;
    const m = this.call(
      () =>
        placement === undefined
          ? this.addon.mmap(fd, length, prot, flags, offset)
          : this.addon.mmap(fd, length, prot, flags, offset, placement.align, placement.skew),
      { path },
    );
    // Moving the bytes to another thread would let them outlive the munmap done here.
    if (m.buffer !== null) markAsUntransferable(m.buffer);
    return new NativeMapping(m.address as UserVa, length, prot, m.handle, m.lifetime);
  }

  munmap(mapping: Mapping): void {
    const m = nativeMapping(mapping);
    this.call(() => this.addon.munmap(m.handle, m.lifetime), {});
  }

  mlock(mapping: Mapping): void {
    const m = nativeMapping(mapping);
    this.call(() => this.addon.mlock(m.handle), {});
  }

  mmioRead(mapping: Mapping, offset: number, width: 8 | 16 | 32): number;
  mmioRead(mapping: Mapping, offset: number, width: 64): bigint;
  mmioRead(mapping: Mapping, offset: number, width: MmioWidth): number | bigint;
  // The MMIO accessors are a driver's hot path: no closure per call, and the errno translation
  // (only EACCES can happen here) stays out of the successful path.
  mmioRead(mapping: Mapping, offset: number, width: MmioWidth): number | bigint {
    const h = nativeMapping(mapping).handle;
    try {
      switch (width) {
        case 32:
          return this.addon.read32(h, offset);
        case 8:
          return this.addon.read8(h, offset);
        case 16:
          return this.addon.read16(h, offset);
        case 64:
          return this.addon.read64(h, offset);
        default:
          throw new RangeError(`MMIO width must be 8, 16, 32 or 64, got ${String(width)}`);
      }
    } catch (e) {
      throw this.translate(e, {});
    }
  }

  mmioWrite(mapping: Mapping, offset: number, width: MmioWidth, value: number | bigint): void {
    const h = nativeMapping(mapping).handle;
    try {
      switch (width) {
        case 32:
          return this.addon.write32(h, offset, narrow(value, width));
        case 8:
          return this.addon.write8(h, offset, narrow(value, width));
        case 16:
          return this.addon.write16(h, offset, narrow(value, width));
        case 64:
          return this.addon.write64(h, offset, typeof value === 'bigint' ? value : BigInt(value));
        default:
          throw new RangeError(`MMIO width must be 8, 16, 32 or 64, got ${String(width)}`);
      }
    } catch (e) {
      throw this.translate(e, {});
    }
  }

  memfdCreate(name: string, flags: number): number {
    const fd = this.call(() => this.addon.memfdCreate(name, flags), { path: `memfd:${name}` });
    this.fds.set(fd, { path: `memfd:${name}`, kind: 'memfd' });
    return fd;
  }

  ftruncate(fd: number, length: bigint): void {
    this.call(() => this.addon.ftruncate(fd, length), { path: this.fds.get(fd)?.path });
  }

  eventfd(initval: number, flags: number): number {
    const fd = this.call(() => this.addon.eventfd(initval, flags), { path: 'anon_inode:[eventfd]' });
    this.fds.set(fd, { path: 'anon_inode:[eventfd]', kind: 'eventfd' });
    return fd;
  }

  eventfdRead(fd: number): bigint {
    return this.call(() => this.addon.eventfdRead(fd), { path: this.fds.get(fd)?.path });
  }

  eventfdWrite(fd: number, value: bigint): void {
    this.call(() => this.addon.eventfdWrite(fd, value), { path: this.fds.get(fd)?.path });
  }

  waitReadable(fd: number, signal?: AbortSignal): Promise<void> {
    const path = this.fds.get(fd)?.path;
    const failure = (errno: number) => {
      const d: VfioErrorDetails = { errno, syscall: 'poll' };
      if (path !== undefined) d.path = path;
      return new VfioError(d);
    };
    if (signal?.aborted) return Promise.reject(failure(ERRNO.ECANCELED));
    const token = this.nextWaitToken++;
    const onAbort = () => this.addon.cancelWait(fd, token);
    return new Promise<void>((resolve, reject) => {
      try {
        this.addon.waitReadable(fd, token, (errno) => {
          signal?.removeEventListener('abort', onAbort);
          if (errno === 0) resolve();
          else reject(failure(errno));
        });
      } catch (e) {
        reject(this.translate(e, { path }));
        return;
      }
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  readFile(path: string): Buffer {
    return fsCall(() => fs.readFileSync(path), 'open', path);
  }

  writeFile(path: string, data: string | Uint8Array): void {
    // No O_CREAT: the files written are sysfs attributes, which exist or are an error. One write
    // call, because sysfs acts on each write separately.
    fsCall(
      () => {
        const fd = fs.openSync(path, fs.constants.O_WRONLY | fs.constants.O_TRUNC);
        try {
          const bytes = typeof data === 'string' ? Buffer.from(data) : data;
          const written = fs.writeSync(fd, bytes);
          if (written !== bytes.length)
            throw VfioError.of('EIO', { syscall: 'write', path, context: `short write (${written} of ${bytes.length} bytes)` });
        } finally {
          fs.closeSync(fd);
        }
      },
      'write',
      path,
    );
  }

  readdir(path: string): string[] {
    return fsCall(() => fs.readdirSync(path).sort(), 'scandir', path);
  }

  readlink(path: string): string {
    return fsCall(() => fs.readlinkSync(path), 'readlink', path);
  }

  exists(path: string): boolean {
    return fs.existsSync(path);
  }

  capabilities(): Capabilities {
    const status = this.readFile('/proc/self/status').toString('utf8');
    const hex = /^CapEff:\s*([0-9a-f]+)$/m.exec(status)?.[1];
    if (hex === undefined) throw VfioError.of('EIO', { syscall: 'read', path: '/proc/self/status', context: 'no CapEff line' });
    const caps = BigInt(`0x${hex}`);
    const has = (bit: bigint) => ((caps >> bit) & 1n) === 1n;
    return { sysRawio: has(CAP_SYS_RAWIO), sysAdmin: has(CAP_SYS_ADMIN), ipcLock: has(CAP_IPC_LOCK) };
  }

  memlockLimit(): bigint {
    const limits = this.readFile('/proc/self/limits').toString('utf8');
    const soft = /^Max locked memory\s+(\S+)/m.exec(limits)?.[1];
    if (soft === undefined)
      throw VfioError.of('EIO', { syscall: 'read', path: '/proc/self/limits', context: 'no "Max locked memory" line' });
    return soft === 'unlimited' ? U64_MAX : BigInt(soft);
  }

  /** Runs an addon call, turning its errno error into a VfioError with what is known here. */
  private call<T>(fn: () => T, details: Pick<VfioErrorDetails, 'path' | 'ioctl'>): T {
    try {
      return fn();
    } catch (e) {
      throw this.translate(e, details);
    }
  }

  private translate(e: unknown, details: Pick<VfioErrorDetails, 'path' | 'ioctl'>): unknown {
    if (!isAddonErrnoError(e)) return e;
    const d: VfioErrorDetails = { errno: e.errno, syscall: e.syscall };
    if (details.ioctl !== undefined) d.ioctl = details.ioctl;
    if (details.path !== undefined) d.path = details.path;
    return new VfioError(d);
  }
}

function isFileKind(kind: NativeFileKind | undefined): kind is FileKind {
  return kind === 'iommufd' || kind === 'vfio-container' || kind === 'vfio-group' || kind === 'vfio-device';
}

function nativeMapping(mapping: Mapping): NativeMapping {
  if (mapping instanceof NativeMapping) return mapping;
  throw new TypeError('the mapping was not made by NativeKernel.mmap');
}

/** A number for the 8/16/32-bit stores (the addon range-checks it against the width). */
function narrow(value: number | bigint, width: 8 | 16 | 32): number {
  if (typeof value === 'number') return value;
  const n = Number(value);
  if (BigInt(n) !== value) throw new RangeError(`value ${value} does not fit in ${width} bits`);
  return n;
}

function fsCall<T>(fn: () => T, syscall: string, path: string): T {
  try {
    return fn();
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    if (err instanceof VfioError || typeof err?.code !== 'string') throw e;
    const errno = (ERRNO as Record<string, number>)[err.code] ?? (typeof err.errno === 'number' ? -err.errno : ERRNO.EIO);
    throw new VfioError({ errno, syscall: err.syscall ?? syscall, path });
  }
}

let singleton: NativeKernel | undefined;

/**
 * The NativeKernel of this thread, created (and the addon loaded) on first use.
 *
 * @category Kernel
 */
export function nativeKernel(): NativeKernel {
  singleton ??= wrapNewKernel(new NativeKernel());
  return singleton;
}
