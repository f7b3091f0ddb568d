/**
 * A BAR (or part of one) mapped into the process. Device registers must be accessed at their
 * exact width, so every access goes through the kernel's exact-width load/store
 * (`kernel.mmioRead`/`mmioWrite`) rather than through a typed array, which the engine may split or
 * merge.
 */
import type { Mapping } from './sys/kernel';
import { Resource } from './resource';
import type { Kernel } from './sys/kernel';

export class Mmio extends Resource {
  /** @internal Created by `Region.mmap()`. */
  constructor(
    kernel: Kernel,
    private readonly mapping: Mapping,
    description: string,
    /** Offset of this mapping within its region. */
    readonly regionOffset: bigint,
  ) {
    super(kernel, description);
    this.armSafetyNet(() => kernel.munmap(mapping));
  }

  /** Length of the mapping in bytes. */
  get length(): bigint {
    return this.mapping.length;
  }

  read8(offset: number): number {
    this.assertOpen('Mmio.read8');
    return this.kernel.mmioRead(this.mapping, offset, 8);
  }

  read16(offset: number): number {
    this.assertOpen('Mmio.read16');
    return this.kernel.mmioRead(this.mapping, offset, 16);
  }

  read32(offset: number): number {
    this.assertOpen('Mmio.read32');
    return this.kernel.mmioRead(this.mapping, offset, 32);
  }

  read64(offset: number): bigint {
    this.assertOpen('Mmio.read64');
    return this.kernel.mmioRead(this.mapping, offset, 64);
  }

  write8(offset: number, value: number): void {
    this.assertOpen('Mmio.write8');
    this.kernel.mmioWrite(this.mapping, offset, 8, value);
  }

  write16(offset: number, value: number): void {
    this.assertOpen('Mmio.write16');
    this.kernel.mmioWrite(this.mapping, offset, 16, value);
  }

  write32(offset: number, value: number): void {
    this.assertOpen('Mmio.write32');
    this.kernel.mmioWrite(this.mapping, offset, 32, value);
  }

  write64(offset: number, value: bigint): void {
    this.assertOpen('Mmio.write64');
    this.kernel.mmioWrite(this.mapping, offset, 64, value);
  }

  protected release(): void {
    this.kernel.munmap(this.mapping);
  }
}
