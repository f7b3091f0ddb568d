/**
 * A VFIO device region: a BAR, the ROM, the PCI config space, or a device-specific region. It
 * is read and written with pread/pwrite at its offset in the device fd, or mmap'ed (BARs that
 * allow it) for direct register access.
 */
import { MAP_SHARED, PROT_READ, PROT_WRITE } from '../sys/constants';
import * as V from '../uapi/vfio';
import { VfioError } from '../sys/errors';
import type { RegionInfo, SparseMmapArea } from '../ioctl/device-ioctls';
import { Mmio } from './mmio';
import { checkInteger, checkSize, checkU64, checkUnsigned } from '../support/arguments';

/** What a region needs from its device. */
/** @internal */
export interface RegionOwner {
  readonly kernel: import('../sys/kernel').Kernel;
  /** The device fd, after checking the device is open. */
  liveFd(operation: string): number;
  readonly description: string;
  /** Takes ownership of an Mmio, so that closing the device unmaps it. */
  ownMmio(mmio: Mmio): Mmio;
}

const REGION_NAMES: Record<number, string> = {
  [V.VFIO_PCI_ROM_REGION_INDEX]: 'ROM',
  [V.VFIO_PCI_CONFIG_REGION_INDEX]: 'config',
  [V.VFIO_PCI_VGA_REGION_INDEX]: 'VGA',
};

/**
 * A region of a VFIO device (`device.region(i)`, `device.bar(n)`).
 *
 * @category Devices
 */
export class Region {
  /** @internal Created by VfioDevice. */
  constructor(
    private readonly owner: RegionOwner,
    /** What the kernel reported about the region. */
    readonly info: RegionInfo,
  ) {}

  /** Region index. */
  get index(): number {
    return this.info.index;
  }

  /** 'BAR0'..'BAR5', 'ROM', 'config', 'VGA' or 'region N'. */
  get name(): string {
    return this.info.index <= V.VFIO_PCI_BAR5_REGION_INDEX
      ? `BAR${this.info.index}`
      : (REGION_NAMES[this.info.index] ?? `region ${this.info.index}`);
  }

  /** Bytes (0: absent). */
  get size(): bigint {
    return this.info.size;
  }

  /** The region can be read. */
  get readable(): boolean {
    return (this.info.flags & V.VFIO_REGION_INFO_FLAG_READ) !== 0;
  }

  /** The region can be written. */
  get writable(): boolean {
    return (this.info.flags & V.VFIO_REGION_INFO_FLAG_WRITE) !== 0;
  }

  /** The region (or parts of it, see `info.sparseMmap`) can be mmap'ed. */
  get mappable(): boolean {
    return (this.info.flags & V.VFIO_REGION_INFO_FLAG_MMAP) !== 0;
  }

  /** Reads `length` bytes at `offset` (pread; the kernel splits into aligned accesses). */
  read(offset: bigint | number, length: number): Buffer {
    return this.readAt(offset, checkInteger(length, 'Region.read', 'length', 0, 0xffff_ffff), 'Region.read');
  }

  /** Writes `data` at `offset`; returns the bytes written. */
  write(offset: bigint | number, data: Uint8Array): number {
    if (!(data instanceof Uint8Array)) throw new TypeError(`Region.write: data must be a Uint8Array (or Buffer)`);
    return this.writeAt(offset, data, 'Region.write');
  }

  /** Reads a byte. */
  read8(offset: number): number {
    return this.readAt(offset, 1, 'Region.read8').readUInt8(0);
  }

  /** Reads a 16-bit little-endian value with one 2-byte access. */
  read16(offset: number): number {
    return this.readAt(offset, 2, 'Region.read16').readUInt16LE(0);
  }

  /** Reads a 32-bit little-endian value with one 4-byte access. */
  read32(offset: number): number {
    return this.readAt(offset, 4, 'Region.read32').readUInt32LE(0);
  }

  /** Reads a 64-bit little-endian value (the kernel may split it into two 4-byte accesses). */
  read64(offset: number): bigint {
    return this.readAt(offset, 8, 'Region.read64').readBigUInt64LE(0);
  }

  /** Writes a byte. */
  write8(offset: number, value: number): void {
    const b = Buffer.alloc(1);
    b.writeUInt8(checkUnsigned(value, 'Region.write8', 'value', 8));
    this.writeAt(offset, b, 'Region.write8');
  }

  /** Writes a 16-bit little-endian value. */
  write16(offset: number, value: number): void {
    const b = Buffer.alloc(2);
    b.writeUInt16LE(checkUnsigned(value, 'Region.write16', 'value', 16));
    this.writeAt(offset, b, 'Region.write16');
  }

  /** Writes a 32-bit little-endian value. */
  write32(offset: number, value: number): void {
    const b = Buffer.alloc(4);
    b.writeUInt32LE(checkUnsigned(value, 'Region.write32', 'value', 32));
    this.writeAt(offset, b, 'Region.write32');
  }

  /** Writes a 64-bit little-endian value. */
  write64(offset: number, value: bigint): void {
    const b = Buffer.alloc(8);
    b.writeBigUInt64LE(checkU64(value, 'Region.write64', 'value'));
    this.writeAt(offset, b, 'Region.write64');
  }

  private readAt(offset: unknown, length: number, where: string): Buffer {
    const off = this.check(checkSize(offset, where, 'offset'), BigInt(length), 'read');
    const into = Buffer.alloc(length);
    const fd = this.owner.liveFd(where);
    const n = this.io(() => this.owner.kernel.pread(fd, into, this.info.offset + off), 'pread', off);
    return n === length ? into : into.subarray(0, n);
  }

  private writeAt(offset: unknown, data: Uint8Array, where: string): number {
    const off = this.check(checkSize(offset, where, 'offset'), BigInt(data.length), 'write');
    const fd = this.owner.liveFd(where);
    return this.io(() => this.owner.kernel.pwrite(fd, data, this.info.offset + off), 'pwrite', off);
  }

  /**
   * Maps the region (or `[offset, offset+length)` of it) for exact-width register access. With a
   * sparse-mmap capability (e.g. an MSI-X table in the BAR), the range must lie in one area.
   */
  mmap(offset: bigint | number = 0n, length?: bigint | number): Mmio {
    const off = checkSize(offset, 'Region.mmap', 'offset');
    const len = length === undefined ? this.info.size - off : checkSize(length, 'Region.mmap', 'length');
    this.check(off, len, 'mmap');
    if (len <= 0n) throw new RangeError(`mmap of ${this.name}: nothing to map (length ${len})`);
    if (!this.mappable) {
      throw VfioError.condition('ERR_VFIO_NOT_MAPPABLE', {
        check: `${this.name} of ${this.owner.description} has VFIO_REGION_INFO_FLAG_MMAP clear`,
        hint: 'use read/write (pread/pwrite) on this region instead',
      });
    }
    const areas: readonly SparseMmapArea[] | undefined = this.info.sparseMmap;
    if (areas && !areas.some((a) => off >= a.offset && off + len <= a.offset + a.size)) {
      throw VfioError.condition('ERR_VFIO_NOT_MAPPABLE', {
        check: `${this.name} range 0x${off.toString(16)}+0x${len.toString(16)} is not inside one mmap-able area`,
        hint: `mmap-able areas: ${areas.map((a) => `0x${a.offset.toString(16)}+0x${a.size.toString(16)}`).join(', ')}`,
      });
    }
    const fd = this.owner.liveFd('Region.mmap');
    const kernel = this.owner.kernel;
    let mapping;
    try {
      mapping = kernel.mmap(
        fd,
        len,
        (this.readable ? PROT_READ : 0) | (this.writable ? PROT_WRITE : 0),
        MAP_SHARED,
        this.info.offset + off,
      );
    } catch (e) {
      throw VfioError.wrap(e, { context: `mapping ${this.name} of ${this.owner.description}` });
    }
    return this.owner.ownMmio(new Mmio(kernel, mapping, `${this.name} mapping of ${this.owner.description}`, off));
  }

  private check(offset: bigint, length: bigint, what: string): bigint {
    if (offset < 0n || length < 0n || offset + length > this.info.size) {
      throw new RangeError(`${what} of ${length} bytes at 0x${offset.toString(16)} is outside ${this.name} (${this.info.size} bytes)`);
    }
    return offset;
  }

  private io(call: () => number, syscall: string, offset: bigint): number {
    try {
      return call();
    } catch (e) {
      throw VfioError.wrap(e, { context: `${syscall} at 0x${offset.toString(16)} of ${this.name} of ${this.owner.description}` });
    }
  }
}
