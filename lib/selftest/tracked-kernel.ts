/**
 * A Kernel that forwards every call to another one and remembers which fds and mappings are
 * still open. The runner gives each case its own, so after the case's teardown it can tell exactly
 * what the case leaked (and close it, so one leaking case cannot break the next one).
 */
import type { Capabilities, Kernel, Mapping, MmapPlacement, MmioWidth } from '../sys/kernel';
import { VFIO_GROUP_GET_DEVICE_FD } from '../uapi/vfio';

export interface OpenHandle {
  readonly fd: number;
  /** The path it was opened by, or what created it ('eventfd', 'memfd:name', ...). */
  readonly origin: string;
}

export class TrackedKernel implements Kernel {
  readonly kind: 'native' | 'model';
  readonly description: string;
  readonly pageSize: number;
  private readonly fds = new Map<number, string>();
  private readonly mappings = new Set<Mapping>();

  constructor(private readonly inner: Kernel) {
    this.kind = inner.kind;
    this.description = inner.description;
    this.pageSize = inner.pageSize;
  }

  /** fds opened through this kernel and not closed yet. */
  openHandles(): OpenHandle[] {
    return [...this.fds].map(([fd, origin]) => ({ fd, origin }));
  }

  liveMappings(): Mapping[] {
    return [...this.mappings];
  }

  /** Records an fd the kernel created as a side effect of an ioctl (a fault queue, a group's device fd). */
  adopt(fd: number, origin: string): void {
    this.fds.set(fd, origin);
  }

  /** Closes and unmaps whatever is still open; returns what that was. */
  releaseAll(): { fds: OpenHandle[]; mappings: Mapping[] } {
    const leaked = { fds: this.openHandles(), mappings: this.liveMappings() };
    for (const m of leaked.mappings) {
      try {
        this.munmap(m);
      } catch {
        this.mappings.delete(m);
      }
    }
    for (const h of leaked.fds) {
      try {
        this.close(h.fd);
      } catch {
        this.fds.delete(h.fd);
      }
    }
    return leaked;
  }

  open(path: string, flags: number): number {
    const fd = this.inner.open(path, flags);
    this.fds.set(fd, path);
    return fd;
  }

  close(fd: number): void {
    this.inner.close(fd);
    this.fds.delete(fd);
  }

  ioctl(fd: number, request: number, arg: Uint8Array | number | null): number {
    const result = this.inner.ioctl(fd, request, arg);
    // The only VFIO/iommufd ioctl whose return value is a new fd.
    if (request === VFIO_GROUP_GET_DEVICE_FD.number && result >= 0) this.fds.set(result, `device fd from group fd ${fd}`);
    return result;
  }

  pread(fd: number, into: Uint8Array, offset: bigint): number {
    return this.inner.pread(fd, into, offset);
  }

  pwrite(fd: number, from: Uint8Array, offset: bigint): number {
    return this.inner.pwrite(fd, from, offset);
  }

  mmap(fd: number, length: bigint, prot: number, flags: number, offset: bigint, placement?: MmapPlacement): Mapping {
    const m = this.inner.mmap(fd, length, prot, flags, offset, placement);
    this.mappings.add(m);
    return m;
  }

  munmap(mapping: Mapping): void {
    this.inner.munmap(mapping);
    this.mappings.delete(mapping);
  }

  mlock(mapping: Mapping): void {
    this.inner.mlock(mapping);
  }

  mmioRead(mapping: Mapping, offset: number, width: 8 | 16 | 32): number;
  mmioRead(mapping: Mapping, offset: number, width: 64): bigint;
  mmioRead(mapping: Mapping, offset: number, width: MmioWidth): number | bigint;
  mmioRead(mapping: Mapping, offset: number, width: MmioWidth): number | bigint {
    return this.inner.mmioRead(mapping, offset, width);
  }

  mmioWrite(mapping: Mapping, offset: number, width: MmioWidth, value: number | bigint): void {
    this.inner.mmioWrite(mapping, offset, width, value);
  }

  memfdCreate(name: string, flags: number): number {
    const fd = this.inner.memfdCreate(name, flags);
    this.fds.set(fd, `memfd:${name}`);
    return fd;
  }

  ftruncate(fd: number, length: bigint): void {
    this.inner.ftruncate(fd, length);
  }

  eventfd(initval: number, flags: number): number {
    const fd = this.inner.eventfd(initval, flags);
    this.fds.set(fd, 'eventfd');
    return fd;
  }

  eventfdRead(fd: number): bigint {
    return this.inner.eventfdRead(fd);
  }

  eventfdWrite(fd: number, value: bigint): void {
    this.inner.eventfdWrite(fd, value);
  }

  waitReadable(fd: number, signal?: AbortSignal): Promise<void> {
    return this.inner.waitReadable(fd, signal);
  }

  readFile(path: string): Buffer {
    return this.inner.readFile(path);
  }

  writeFile(path: string, data: string | Uint8Array): void {
    this.inner.writeFile(path, data);
  }

  readdir(path: string): string[] {
    return this.inner.readdir(path);
  }

  readlink(path: string): string {
    return this.inner.readlink(path);
  }

  exists(path: string): boolean {
    return this.inner.exists(path);
  }

  capabilities(): Capabilities {
    return this.inner.capabilities();
  }

  memlockLimit(): bigint {
    return this.inner.memlockLimit();
  }
}
