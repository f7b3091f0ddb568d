/**
 * A BAR (or part of one) mapped into the process. Device registers must be accessed at their
 * exact width, so every access goes through the kernel's exact-width load/store
 * (`kernel.mmioRead`/`mmioWrite`) rather than through a typed array, which the engine may split or
 * merge.
 */
import type { Mapping } from './sys/kernel';
import { Resource } from './resource';
import type { Kernel } from './sys/kernel';

/** A mapped BAR range (`region.mmap()`); offsets are relative to the start of the mapping. */
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

  /** 8-bit load. */
  read8(offset: number): number {
    this.assertOpen('Mmio.read8');
    return this.kernel.mmioRead(this.mapping, offset, 8);
  }

  /** 16-bit load (offset 2-byte aligned). */
  read16(offset: number): number {
    this.assertOpen('Mmio.read16');
    return this.kernel.mmioRead(this.mapping, offset, 16);
  }

  /** 32-bit load (offset 4-byte aligned). */
  read32(offset: number): number {
    this.assertOpen('Mmio.read32');
    return this.kernel.mmioRead(this.mapping, offset, 32);
  }

  /** 64-bit load (offset 8-byte aligned). */
  read64(offset: number): bigint {
    this.assertOpen('Mmio.read64');
    return this.kernel.mmioRead(this.mapping, offset, 64);
  }

  /** 8-bit store. */
  write8(offset: number, value: number): void {
    this.assertOpen('Mmio.write8');
    this.kernel.mmioWrite(this.mapping, offset, 8, value);
  }

  /** 16-bit store. */
  write16(offset: number, value: number): void {
    this.assertOpen('Mmio.write16');
    this.kernel.mmioWrite(this.mapping, offset, 16, value);
  }

  /** 32-bit store. */
  write32(offset: number, value: number): void {
    this.assertOpen('Mmio.write32');
    this.kernel.mmioWrite(this.mapping, offset, 32, value);
  }

  /** 64-bit store. */
  write64(offset: number, value: bigint): void {
    this.assertOpen('Mmio.write64');
    this.kernel.mmioWrite(this.mapping, offset, 64, value);
  }

  protected release(): void {
    this.kernel.munmap(this.mapping);
  }
}
