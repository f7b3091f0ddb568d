/**
 * A Kernel whose ioctls are answered by per-request handlers written in the test. It exists for
 * the unit tests of lib/ioctl: they check the exact bytes a wrapper packs and how it reacts to
 * each kernel answer (argsz raised, EMSGSIZE, ENOSPC), independently of the model. Anonymous
 * mmaps get fake addresses that handlers can resolve with `memoryAt`, the way a kernel follows a
 * user pointer inside a struct.
 */
import type { Capabilities, Kernel, Mapping, MmioWidth, UserVa } from '../../../lib/sys/kernel';
import { VfioError } from '../../../lib/sys/errors';
import type { ErrnoName } from '../../../lib/sys/constants';

export type IoctlHandler = (arg: Uint8Array | number | null, call: number) => number | void;

export class ScriptedKernel implements Kernel {
  readonly kind = 'model' as const;
  readonly description = 'scripted test kernel';
  readonly pageSize = 4096;
  readonly handlers = new Map<number, IoctlHandler>();
  readonly calls: { fd: number; request: number; bytes: Uint8Array | number | null }[] = [];
  private readonly mappings = new Map<bigint, Mapping>();
  private nextAddress = 0x7f00_0000_0000n;
  mmapCount = 0;
  munmapCount = 0;

  on(request: { number: number }, handler: IoctlHandler): this {
    this.handlers.set(request.number, handler);
    return this;
  }

  ioctl(fd: number, request: number, arg: Uint8Array | number | null): number {
    const handler = this.handlers.get(request);
    this.calls.push({ fd, request, bytes: arg instanceof Uint8Array ? Uint8Array.from(arg) : arg });
    if (!handler) throw fail('ENOTTY', 'ioctl');
    const callIndex = this.calls.filter((c) => c.request === request).length - 1;
    return handler(arg, callIndex) ?? 0;
  }

  memoryAt(address: bigint, length: number): Uint8Array {
    for (const m of this.mappings.values()) {
      if (address >= m.address && address + BigInt(length) <= m.address + m.length && m.buffer) {
        return new Uint8Array(m.buffer, Number(address - m.address), length);
      }
    }
    throw fail('EFAULT', 'ioctl');
  }

  mmap(_fd: number, length: bigint, prot: number): Mapping {
    const address = this.nextAddress as UserVa;
    this.nextAddress += length + 0x10000n;
    const mapping: Mapping = { address, length, prot, buffer: new ArrayBuffer(Number(length)) };
    this.mappings.set(address, mapping);
    this.mmapCount++;
    return mapping;
  }

  munmap(mapping: Mapping): void {
    if (!this.mappings.delete(mapping.address)) throw fail('EINVAL', 'munmap');
    this.munmapCount++;
  }

  open(): number {
    throw fail('ENOENT', 'open');
  }
  close(): void {
    /* nothing is open */
  }
  pread(): number {
    throw fail('EBADF', 'pread');
  }
  pwrite(): number {
    throw fail('EBADF', 'pwrite');
  }
  mlock(): void {
    /* always succeeds */
  }
  mmioRead(_m: Mapping, _o: number, width: 64): bigint;
  mmioRead(_m: Mapping, _o: number, width: 8 | 16 | 32): number;
  mmioRead(_m: Mapping, _o: number, width: MmioWidth): number | bigint {
    return width === 64 ? 0n : 0;
  }
  mmioWrite(): void {
    /* discarded */
  }
  memfdCreate(): number {
    throw fail('ENOSYS', 'memfd_create');
  }
  ftruncate(): void {
    throw fail('EBADF', 'ftruncate');
  }
  eventfd(): number {
    throw fail('ENOSYS', 'eventfd');
  }
  eventfdRead(): bigint {
    throw fail('EBADF', 'read');
  }
  eventfdWrite(): void {
    throw fail('EBADF', 'write');
  }
  waitReadable(): Promise<void> {
    return Promise.reject(fail('EBADF', 'poll'));
  }
  readFile(): Buffer {
    throw fail('ENOENT', 'open');
  }
  writeFile(): void {
    throw fail('ENOENT', 'open');
  }
  readdir(): string[] {
    throw fail('ENOENT', 'opendir');
  }
  readlink(): string {
    throw fail('ENOENT', 'readlink');
  }
  exists(): boolean {
    return false;
  }
  capabilities(): Capabilities {
    return { sysRawio: true, sysAdmin: true, ipcLock: true };
  }
  memlockLimit(): bigint {
    return 1n << 30n;
  }
}

export function fail(code: ErrnoName, syscall: string): VfioError {
  return VfioError.of(code, { syscall });
}
