/**
 * A BAR (or part of one) mapped into the process.
 *
 * Device registers must be accessed at their exact width: a 64-bit register read as two 32-bit
 * halves, or a 32-bit one as four bytes, is a different bus transaction that many devices answer
 * differently (edu returns all-ones). Two routes give that guarantee:
 *
 * - Direct: when the kernel hands out the mapping's bytes (`Mapping.buffer`, native read-write
 *   mappings), an aligned element access through a Uint8/16/32Array or BigUint64Array is one load
 *   or store of the element's width in every V8 tier: typed-array elements are loaded and stored
 *   with a single machine access of the element type, never split or merged, and V8 does not
 *   eliminate or hoist typed-array loads (test/native/mmio-direct.test.ts polls a register that a
 *   worker changes; the edu register suites prove the width on the real device in the lab). This is
 *   a driver's hot path, so it costs a bounds check and a load, no call into the addon.
 * - Through the kernel: everything else (a simulated BAR, whose accesses trap into the device
 *   model; read-only mappings; unaligned, out-of-range or closed accesses, which then fail with
 *   the kernel's own RangeError or the closed error) goes through `kernel.mmioRead`/`mmioWrite`.
 */
import type { Mapping } from '../sys/kernel';
import { Resource } from '../support/resource';
import type { Kernel } from '../sys/kernel';
import { PROT_READ, PROT_WRITE } from '../sys/constants';

const U64_MAX = (1n << 64n) - 1n;

/**
 * A mapped BAR range (`region.mmap()`); offsets are relative to the start of the mapping.
 *
 * @category Devices
 */
export class Mmio extends Resource {
  // Always typed arrays (empty when access must go through the kernel), so the hot path has one
  // shape and one check: an index below `length`. Detaching the buffer at munmap empties them.
  private u8: Uint8Array;
  private u16: Uint16Array;
  private u32: Uint32Array;
  private u64: BigUint64Array;

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
    const direct = directBuffer(mapping);
    const bytes = direct?.byteLength ?? 0;
    this.u8 = direct ? new Uint8Array(direct, 0, bytes) : new Uint8Array(0);
    this.u16 = direct ? new Uint16Array(direct, 0, Math.floor(bytes / 2)) : new Uint16Array(0);
    this.u32 = direct ? new Uint32Array(direct, 0, Math.floor(bytes / 4)) : new Uint32Array(0);
    this.u64 = direct ? new BigUint64Array(direct, 0, Math.floor(bytes / 8)) : new BigUint64Array(0);
  }

  /** Length of the mapping in bytes. */
  get length(): bigint {
    return this.mapping.length;
  }

  /** Whether accesses go straight to the mapping (true) or through the kernel's accessors. */
  get direct(): boolean {
    return this.u8.length > 0;
  }

  /** 8-bit load. */
  read8(offset: number): number {
    const view = this.u8;
    if (offset >>> 0 === offset && offset < view.length) return view[offset]!;
    this.assertOpen('Mmio.read8');
    return this.kernel.mmioRead(this.mapping, offset, 8);
  }

  /** 16-bit load (offset 2-byte aligned). */
  read16(offset: number): number {
    const view = this.u16;
    const index = offset >>> 1;
    if (index * 2 === offset && index < view.length) return view[index]!;
    this.assertOpen('Mmio.read16');
    return this.kernel.mmioRead(this.mapping, offset, 16);
  }

  /** 32-bit load (offset 4-byte aligned). */
  read32(offset: number): number {
    const view = this.u32;
    const index = offset >>> 2;
    if (index * 4 === offset && index < view.length) return view[index]!;
    this.assertOpen('Mmio.read32');
    return this.kernel.mmioRead(this.mapping, offset, 32);
  }

  /** 64-bit load (offset 8-byte aligned). */
  read64(offset: number): bigint {
    const view = this.u64;
    const index = offset >>> 3;
    if (index * 8 === offset && index < view.length) return view[index]!;
    this.assertOpen('Mmio.read64');
    return this.kernel.mmioRead(this.mapping, offset, 64);
  }

  /** 8-bit store. */
  write8(offset: number, value: number): void {
    const view = this.u8;
    if (offset >>> 0 === offset && offset < view.length && (value & 0xff) === value) {
      view[offset] = value;
      return;
    }
    this.assertOpen('Mmio.write8');
    this.kernel.mmioWrite(this.mapping, offset, 8, value);
  }

  /** 16-bit store. */
  write16(offset: number, value: number): void {
    const view = this.u16;
    const index = offset >>> 1;
    if (index * 2 === offset && index < view.length && (value & 0xffff) === value) {
      view[index] = value;
      return;
    }
    this.assertOpen('Mmio.write16');
    this.kernel.mmioWrite(this.mapping, offset, 16, value);
  }

  /** 32-bit store. */
  write32(offset: number, value: number): void {
    const view = this.u32;
    const index = offset >>> 2;
    if (index * 4 === offset && index < view.length && value >>> 0 === value) {
      view[index] = value;
      return;
    }
    this.assertOpen('Mmio.write32');
    this.kernel.mmioWrite(this.mapping, offset, 32, value);
  }

  /** 64-bit store. */
  write64(offset: number, value: bigint): void {
    const view = this.u64;
    const index = offset >>> 3;
    if (index * 8 === offset && index < view.length && typeof value === 'bigint' && value >= 0n && value <= U64_MAX) {
      view[index] = value;
      return;
    }
    this.assertOpen('Mmio.write64');
    this.kernel.mmioWrite(this.mapping, offset, 64, value);
  }

  protected release(): void {
    this.dropViews();
    this.kernel.munmap(this.mapping);
  }

  protected override markReleased(): void {
    // Closed without unmapping (the owner was released by the kernel): the bytes may still be
    // mapped, so only the views' emptiness keeps later accesses off the direct path.
    this.dropViews();
    super.markReleased();
  }

  private dropViews(): void {
    this.u8 = new Uint8Array(0);
    this.u16 = new Uint16Array(0);
    this.u32 = new Uint32Array(0);
    this.u64 = new BigUint64Array(0);
  }
}

/** The buffer to access directly, if the kernel gives one that is safe to load from and store to. */
function directBuffer(mapping: Mapping): ArrayBuffer | null {
  const buffer = mapping.buffer;
  if (buffer === null || (mapping.prot & (PROT_READ | PROT_WRITE)) !== (PROT_READ | PROT_WRITE)) return null;
  return buffer;
}
