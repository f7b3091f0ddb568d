/**
 * The controller registers at the start of BAR0 (NVMe 1.4 §3.1) as QEMU 7.2 keeps them: a 4 KiB
 * block of little-endian bytes that reads return as they are (any width, any alignment inside
 * the block; beyond it, where the doorbells live, reads return 0), written register by register.
 */

export const REG = {
  CAP: 0x00,
  VS: 0x08,
  INTMS: 0x0c,
  INTMC: 0x10,
  CC: 0x14,
  CSTS: 0x1c,
  NSSR: 0x20,
  AQA: 0x24,
  ASQ: 0x28,
  ACQ: 0x30,
  CMBLOC: 0x38,
  CMBSZ: 0x3c,
} as const;

/** Size of the register block; the doorbells start right after it. */
export const REGISTER_BLOCK_SIZE = 0x1000;

/** NVMe 1.4, what QEMU 7.2 reports in VS. */
export const NVME_VERSION_1_4 = 0x0001_0400;

export const CC_EN = 1 << 0;
export const CSTS_RDY = 1 << 0;
export const CSTS_CFS = 1 << 1;
export const CSTS_SHST_COMPLETE = 2 << 2;
export const CSTS_SHST_MASK = 3 << 2;

/** CC fields (NVMe 1.4 §3.1.5). */
export const cc = {
  css: (v: number) => (v >>> 4) & 0x7,
  mps: (v: number) => (v >>> 7) & 0xf,
  shn: (v: number) => (v >>> 14) & 0x3,
  iosqes: (v: number) => (v >>> 16) & 0xf,
  iocqes: (v: number) => (v >>> 20) & 0xf,
} as const;

/** CC.CSS values and the CAP.CSS bits that allow them. */
export const CSS_NVM = 0;
export const CSS_ALL_IO_SETS = 6;
export const CSS_ADMIN_ONLY = 7;

export interface Capabilities {
  /** Maximum queue entries supported, 0's based. */
  readonly mqes: number;
  /** Worst-case time to become ready, in 500 ms units. */
  readonly timeout: number;
  /** Doorbell stride: doorbells are 4 << dstrd bytes apart. */
  readonly dstrd: number;
  /** Command sets (CAP.CSS bits). */
  readonly css: number;
  readonly mpsmin: number;
  readonly mpsmax: number;
  readonly cmbSupported: boolean;
  readonly pmrSupported: boolean;
}

/** CAP as a 64-bit value: MQES 15:0, CQR 16, TO 31:24, DSTRD 35:32, CSS 44:37, MPSMIN 51:48, MPSMAX 55:52, PMRS 56, CMBS 57. */
export function capabilityRegister(c: Capabilities): bigint {
  const cqr = 1n; // physically contiguous queues required, as QEMU sets it
  return (
    BigInt(c.mqes) |
    (cqr << 16n) |
    (BigInt(c.timeout) << 24n) |
    (BigInt(c.dstrd) << 32n) |
    (BigInt(c.css) << 37n) |
    (BigInt(c.mpsmin) << 48n) |
    (BigInt(c.mpsmax) << 52n) |
    (c.pmrSupported ? 1n << 56n : 0n) |
    (c.cmbSupported ? 1n << 57n : 0n)
  );
}

/** The register block's bytes with typed accessors. */
export class RegisterFile {
  readonly bytes = new Uint8Array(REGISTER_BLOCK_SIZE);
  private readonly view = new DataView(this.bytes.buffer);

  get32(offset: number): number {
    return this.view.getUint32(offset, true);
  }
  set32(offset: number, value: number): void {
    this.view.setUint32(offset, value >>> 0, true);
  }
  get64(offset: number): bigint {
    return this.view.getBigUint64(offset, true);
  }
  set64(offset: number, value: bigint): void {
    this.view.setBigUint64(offset, BigInt.asUintN(64, value), true);
  }

  /** A read of `width` bits at `offset`: the bytes as they are, zero outside the block. */
  read(offset: number, width: number): bigint {
    const bytes = width >>> 3;
    if (offset + bytes > REGISTER_BLOCK_SIZE) return 0n;
    let value = 0n;
    for (let i = bytes - 1; i >= 0; i--) value = (value << 8n) | BigInt(this.bytes[offset + i]!);
    return value;
  }

  /** Stores the low `bytes` bytes of `value` at `offset`. */
  store(offset: number, bytes: number, value: bigint): void {
    for (let i = 0; i < bytes && offset + i < REGISTER_BLOCK_SIZE; i++) this.bytes[offset + i] = Number((value >> BigInt(8 * i)) & 0xffn);
  }

  clear(): void {
    this.bytes.fill(0);
  }
}
