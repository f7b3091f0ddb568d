/**
 * A namespace: its blocks (kept by a NamespaceStorage) and the Identify Namespace data QEMU 7.2
 * reports for a namespace created by `-device nvme,drive=…` with the default properties — 512-byte
 * blocks in LBA format 0 of eight formats (512 and 4096 bytes, each with 0, 8, 16 or 64 bytes of
 * metadata), no protection information in use, deallocated blocks read as zeroes.
 */

/** The namespace ID that stands for every namespace. */
export const BROADCAST_NSID = 0xffff_ffff;

/** QEMU's nvme_nsid_valid: an ID a command may name (the broadcast ID included), whether or not it is in use. */
export function nsidValid(nsid: number, maxNamespaces: number): boolean {
  return nsid !== 0 && (nsid === BROADCAST_NSID || nsid <= maxNamespaces);
}

/** Where a namespace's blocks live. Offsets and lengths are in bytes. */
export interface NamespaceStorage {
  readonly size: number;
  read(offset: number, length: number): Uint8Array;
  write(offset: number, data: Uint8Array): void;
  /** Deallocates or zeroes a range: it reads as zeroes afterwards. */
  zero(offset: number, length: number): void;
  flush(): void;
}

const CHUNK = 1 << 16;

/**
 * Namespace storage in memory, allocated 64 KiB at a time on first write, so a large empty
 * namespace costs nothing (like the lab's sparse raw image).
 */
export class MemoryStorage implements NamespaceStorage {
  private readonly chunks = new Map<number, Uint8Array>();

  constructor(readonly size: number) {
    if (!Number.isSafeInteger(size) || size <= 0) throw new RangeError(`namespace size ${size} must be a positive byte count`);
  }

  read(offset: number, length: number): Uint8Array {
    const out = new Uint8Array(length);
    this.each(offset, length, (chunk, within, at, n) => {
      const c = this.chunks.get(chunk);
      if (c) out.set(c.subarray(within, within + n), at);
    });
    return out;
  }

  write(offset: number, data: Uint8Array): void {
    this.each(offset, data.length, (chunk, within, at, n) => {
      let c = this.chunks.get(chunk);
      if (!c) {
        c = new Uint8Array(CHUNK);
        this.chunks.set(chunk, c);
      }
      c.set(data.subarray(at, at + n), within);
    });
  }

  zero(offset: number, length: number): void {
    this.each(offset, length, (chunk, within, _at, n) => {
      const c = this.chunks.get(chunk);
      if (!c) return;
      if (n === CHUNK) this.chunks.delete(chunk);
      else c.fill(0, within, within + n);
    });
  }

  flush(): void {}

  private each(offset: number, length: number, f: (chunk: number, within: number, at: number, n: number) => void): void {
    let at = 0;
    while (at < length) {
      const pos = offset + at;
      const chunk = Math.floor(pos / CHUNK);
      const within = pos - chunk * CHUNK;
      const n = Math.min(CHUNK - within, length - at);
      f(chunk, within, at, n);
      at += n;
    }
  }
}

/**
 * Copy's limits, QEMU's nvme-ns properties of the same names: MSSRL, the blocks of one source
 * range; MCL, the blocks of a whole copy (reported; QEMU 7.2 does not enforce it); MSRC, the
 * source ranges, 0's based. A namespace made by the controller's drive property has them all 0,
 * so every copy fails; an nvme-ns device has 128, 128 and 127.
 */
export interface CopyLimits {
  readonly mssrl: number;
  readonly mcl: number;
  readonly msrc: number;
}

export const DRIVE_PROPERTY_COPY_LIMITS: CopyLimits = { mssrl: 0, mcl: 0, msrc: 0 };

/** The LBA formats QEMU offers: data size as a power of two, metadata bytes. */
const LBA_FORMATS: readonly { readonly ds: number; readonly ms: number }[] = [
  { ds: 9, ms: 0 },
  { ds: 9, ms: 8 },
  { ds: 9, ms: 16 },
  { ds: 9, ms: 64 },
  { ds: 12, ms: 0 },
  { ds: 12, ms: 8 },
  { ds: 12, ms: 16 },
  { ds: 12, ms: 64 },
];

export const IDENTIFY_SIZE = 4096;

export class Namespace {
  readonly blockSize = 512;
  readonly blocks: bigint;
  /** I/O counters for the SMART log: 512-byte units and commands. */
  unitsRead = 0;
  unitsWritten = 0;
  readCommands = 0;
  writeCommands = 0;
  /** Error Recovery feature: Deallocated or Unwritten Logical Block Error enable and time limit. */
  errorRecovery = 0;
  /** Attached to every controller of an NVM subsystem (an nvme-ns in a subsystem: QEMU's shared=on): NMIC bit 0. */
  shared = false;

  constructor(
    readonly nsid: number,
    readonly storage: NamespaceStorage,
    readonly copyLimits: CopyLimits = DRIVE_PROPERTY_COPY_LIMITS,
  ) {
    const { mssrl, mcl, msrc } = copyLimits;
    if (!isUint(mssrl, 0xffff) || !isUint(mcl, 0xffff_ffff) || !isUint(msrc, 0xff))
      throw new RangeError(`Namespace ${nsid}: copy limits mssrl 0..65535, mcl 0..2^32-1, msrc 0..255 (got ${mssrl}, ${mcl}, ${msrc})`);
    this.blocks = BigInt(Math.floor(storage.size / this.blockSize));
  }

  /** Identify Namespace (CNS 00h), NVMe 1.4 figure 245. */
  identify(): Uint8Array {
    const d = new Uint8Array(IDENTIFY_SIZE);
    const v = new DataView(d.buffer);
    v.setBigUint64(0, this.blocks, true); // NSZE
    v.setBigUint64(8, this.blocks, true); // NCAP
    v.setBigUint64(16, this.blocks, true); // NUSE
    d[24] = 0x04 | 0x10; // NSFEAT: DULBE supported, the optimal-performance fields are valid
    d[25] = LBA_FORMATS.length - 1; // NLBAF, 0's based
    d[26] = 0; // FLBAS: format 0
    d[27] = 0x3; // MC: metadata as extended LBA or a separate buffer
    d[28] = 0x1f; // DPC: protection types 1-3, first or last eight bytes
    d[30] = this.shared ? 1 : 0; // NMIC
    d[33] = 0x1; // DLFEAT: deallocated blocks read zeroes
    // NPDG and NPDA: QEMU's 4 KiB minimum discard granularity, in blocks, 0's based.
    const granularity = 4096 / this.blockSize - 1;
    v.setUint16(68, granularity, true);
    v.setUint16(70, granularity, true);
    v.setUint16(74, this.copyLimits.mssrl, true);
    v.setUint32(76, this.copyLimits.mcl, true);
    d[80] = this.copyLimits.msrc;
    LBA_FORMATS.forEach((f, i) => {
      v.setUint16(128 + i * 4, f.ms, true);
      d[128 + i * 4 + 2] = f.ds;
    });
    return d;
  }

  /** I/O Command Set specific Identify Namespace for the NVM command set (CNS 05h, CSI 0). */
  identifyNvm(): Uint8Array {
    return new Uint8Array(IDENTIFY_SIZE);
  }

  /** The Namespace Identification Descriptor list (CNS 03h): only the command set identifier. */
  descriptors(): Uint8Array {
    const d = new Uint8Array(IDENTIFY_SIZE);
    d[0] = 0x4; // NIDT: command set identifier
    d[1] = 0x1; // NIDL
    d[4] = 0x0; // CSI: NVM
    return d;
  }

  /** Whether blocks [slba, slba + count) lie in the namespace (no overflow). */
  inRange(slba: bigint, count: number): boolean {
    const end = slba + BigInt(count);
    return end <= this.blocks && end >= slba;
  }
}

function isUint(n: number, max: number): boolean {
  return Number.isInteger(n) && n >= 0 && n <= max;
}
