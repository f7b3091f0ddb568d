/**
 * The physical configuration space of a simulated PCI function: what the host kernel reads and
 * writes with pci_read_config_* / pci_write_config_*. Hardware semantics are per bit: a byte has a
 * write mask (bits software may change), a write-1-to-clear mask (status bits) and everything
 * else is read-only. The device model reacts to writes through `onWrite` (command register, MSI
 * enable) after the bytes have changed, as a real function latches the new value first.
 *
 * This is the device's own config space, not the view a VFIO user gets: vfio-pci virtualises
 * parts of it (lib/model/vfio/config-virt.ts) on top of this.
 */
import {
  PCI_CAPABILITY_LIST,
  PCI_CAP_LIST_NEXT,
  PCI_CFG_SPACE_EXP_SIZE,
  PCI_CFG_SPACE_SIZE,
  PCI_STATUS,
  PCI_STATUS_CAP_LIST,
  PCI_STD_HEADER_SIZEOF,
} from '../../uapi/pci';

/**
 * Config space access width in bytes: config accessors read and write 1, 2 or 4 bytes.
 *
 * @category Device-model SDK
 */
export type ConfigWidth = 1 | 2 | 4;

/**
 * A function's own config space (256 bytes, or 4 KiB for PCI Express) with per-bit write and
 * write-1-to-clear masks; DeviceModel builds it from the definition and exposes it as `config`.
 *
 * @category Device-model SDK
 */
export class PciConfigSpace {
  /** The current register bytes, as the device holds them. */
  readonly bytes: Uint8Array;
  /** Bits writable by software (1 = writable). */
  readonly writeMask: Uint8Array;
  /** Bits that clear when written with 1 (RW1C). */
  readonly clearMask: Uint8Array;
  private readonly writeHooks: ((offset: number, width: ConfigWidth) => void)[] = [];
  /** Where the next standard capability goes; QEMU-style allocation from the end of the header. */
  private nextCapOffset = PCI_STD_HEADER_SIZEOF;
  private lastCapNextPointer = PCI_CAPABILITY_LIST;
  /** Where the next extended capability goes, and the header of the last one (0: none yet). */
  private nextExtCapOffset = PCI_CFG_SPACE_SIZE;
  private lastExtCap = 0;

  /** @param size 256 for conventional PCI, 4096 for PCI Express (extended config space). */
  constructor(readonly size: typeof PCI_CFG_SPACE_SIZE | typeof PCI_CFG_SPACE_EXP_SIZE) {
    this.bytes = new Uint8Array(size);
    this.writeMask = new Uint8Array(size);
    this.clearMask = new Uint8Array(size);
  }

  /** Registers a reaction to software writes (called after the bytes changed). */
  onWrite(hook: (offset: number, width: ConfigWidth) => void): void {
    this.writeHooks.push(hook);
  }

  /** The function is gone from the bus (DeviceModel.removeFromBus): software reads all ones and its writes go nowhere. */
  absent = false;

  /** Software read, as the host's config accessors do it (little endian, naturally aligned). */
  read(offset: number, width: ConfigWidth): number {
    if (this.absent) {
      this.check(offset, width);
      return width === 4 ? 0xffff_ffff : (1 << (8 * width)) - 1;
    }
    return this.getRaw(offset, width);
  }

  /** Device-side read of a register, little endian: the counterpart of setRaw for the device's own logic. */
  getRaw(offset: number, width: ConfigWidth): number {
    this.check(offset, width);
    let v = 0;
    for (let i = width - 1; i >= 0; i--) v = v * 256 + this.bytes[offset + i]!;
    return v >>> 0;
  }

  /** Software write: only writable bits change, RW1C bits clear where 1 is written. */
  write(offset: number, width: ConfigWidth, value: number): void {
    this.check(offset, width);
    if (this.absent) return;
    for (let i = 0; i < width; i++) {
      const b = (value >>> (8 * i)) & 0xff;
      const at = offset + i;
      const wm = this.writeMask[at]!;
      const cm = this.clearMask[at]!;
      let cur = this.bytes[at]!;
      cur = (cur & ~wm) | (b & wm);
      cur &= ~(b & cm);
      this.bytes[at] = cur & 0xff;
    }
    for (const hook of this.writeHooks) hook(offset, width);
  }

  /** Device-side update that ignores masks (the function's own logic, e.g. the INTx status bit). */
  setRaw(offset: number, width: ConfigWidth, value: number): void {
    this.check(offset, width);
    for (let i = 0; i < width; i++) this.bytes[offset + i] = (value >>> (8 * i)) & 0xff;
  }

  /** Sets which bits of a register software may write (1 = writable). */
  setWriteMask(offset: number, width: ConfigWidth, mask: number): void {
    for (let i = 0; i < width; i++) this.writeMask[offset + i] = (mask >>> (8 * i)) & 0xff;
  }

  /** Sets which bits of a register clear when software writes 1 (RW1C, e.g. status bits). */
  setClearMask(offset: number, width: ConfigWidth, mask: number): void {
    for (let i = 0; i < width; i++) this.clearMask[offset + i] = (mask >>> (8 * i)) & 0xff;
  }

  /** Marks a byte range as plain read/write storage (QEMU leaves unused config space writable). */
  setWritableRange(offset: number, length: number): void {
    this.writeMask.fill(0xff, offset, offset + length);
  }

  /**
   * Appends a standard capability of `length` bytes at the next dword-aligned free offset (or at
   * `at`), links it into the capability list and sets the status bit. Its bytes start read-only;
   * the caller sets write masks for the registers software may change. Returns its offset.
   */
  addCapability(id: number, length: number, at?: number): number {
    const offset = at ?? this.nextCapOffset;
    if (offset % 4 !== 0 || offset < PCI_STD_HEADER_SIZEOF || offset + length > PCI_CFG_SPACE_SIZE) {
      throw new RangeError(`capability 0x${id.toString(16)} does not fit at 0x${offset.toString(16)}`);
    }
    this.writeMask.fill(0, offset, offset + length);
    this.bytes.fill(0, offset, offset + length);
    this.bytes[offset] = id;
    this.bytes[offset + PCI_CAP_LIST_NEXT] = 0;
    this.bytes[this.lastCapNextPointer] = offset;
    this.lastCapNextPointer = offset + PCI_CAP_LIST_NEXT;
    this.nextCapOffset = Math.max(this.nextCapOffset, (offset + length + 3) & ~3);
    this.setRaw(PCI_STATUS, 2, this.getRaw(PCI_STATUS, 2) | PCI_STATUS_CAP_LIST);
    return offset;
  }

  /**
   * Appends a PCI Express extended capability of `length` bytes (header included) at the next free
   * dword from 0x100 (or at `at`), links it into the extended list and returns its offset. The
   * list starts at 0x100, so the first one must sit there. Its bytes start read-only.
   */
  addExtendedCapability(id: number, version: number, length: number, at?: number): number {
    const offset = at ?? this.nextExtCapOffset;
    const first = this.lastExtCap === 0;
    if (
      this.size !== PCI_CFG_SPACE_EXP_SIZE ||
      offset % 4 !== 0 ||
      offset < PCI_CFG_SPACE_SIZE ||
      offset + length > this.size ||
      (first && offset !== PCI_CFG_SPACE_SIZE)
    ) {
      throw new RangeError(`extended capability 0x${id.toString(16)} does not fit at 0x${offset.toString(16)}`);
    }
    this.writeMask.fill(0, offset, offset + length);
    this.bytes.fill(0, offset, offset + length);
    this.setRaw(offset, 4, ((id & 0xffff) | ((version & 0xf) << 16)) >>> 0);
    if (!first) {
      const header = this.getRaw(this.lastExtCap, 4);
      this.setRaw(this.lastExtCap, 4, ((header & 0x000f_ffff) | (offset << 20)) >>> 0);
    }
    this.lastExtCap = offset;
    this.nextExtCapOffset = Math.max(this.nextExtCapOffset, (offset + length + 3) & ~3);
    return offset;
  }

  /** Offset of the first standard capability with this ID, or 0 (pci_find_capability). */
  findCapability(id: number): number {
    if (!(this.getRaw(PCI_STATUS, 2) & PCI_STATUS_CAP_LIST)) return 0;
    let pos = this.bytes[PCI_CAPABILITY_LIST]! & ~3;
    for (let guard = 0; pos >= PCI_STD_HEADER_SIZEOF && guard < 48; guard++) {
      if (this.bytes[pos] === id) return pos;
      pos = this.bytes[pos + PCI_CAP_LIST_NEXT]! & ~3;
    }
    return 0;
  }

  private check(offset: number, width: number): void {
    if (!Number.isInteger(offset) || offset < 0 || offset + width > this.size || offset % width !== 0) {
      throw new RangeError(`config access of ${width} bytes at 0x${offset.toString(16)} is out of range or unaligned`);
    }
  }
}
