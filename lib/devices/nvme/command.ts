/**
 * A submission queue entry (NVMe 1.4 §4.2): 64 bytes, read once from host memory and decoded
 * into the fields the commands use.
 */
export const SQE_SIZE = 64;
export const CQE_SIZE = 16;

export interface Command {
  readonly opcode: number;
  /** FUSE in bits 1:0, PSDT in bits 7:6. */
  readonly flags: number;
  readonly cid: number;
  readonly nsid: number;
  readonly prp1: bigint;
  readonly prp2: bigint;
  readonly cdw10: number;
  readonly cdw11: number;
  readonly cdw12: number;
  readonly cdw13: number;
  readonly cdw14: number;
  readonly cdw15: number;
}

export function decodeCommand(bytes: Uint8Array): Command {
  const v = new DataView(bytes.buffer, bytes.byteOffset, SQE_SIZE);
  return {
    opcode: v.getUint8(0),
    flags: v.getUint8(1),
    cid: v.getUint16(2, true),
    nsid: v.getUint32(4, true),
    prp1: v.getBigUint64(24, true),
    prp2: v.getBigUint64(32, true),
    cdw10: v.getUint32(40, true),
    cdw11: v.getUint32(44, true),
    cdw12: v.getUint32(48, true),
    cdw13: v.getUint32(52, true),
    cdw14: v.getUint32(56, true),
    cdw15: v.getUint32(60, true),
  };
}

/** PRP (0) or one of the SGL forms (1, 2). */
export function dataPointerType(c: Command): number {
  return (c.flags >>> 6) & 0x3;
}
export function fusedOperation(c: Command): number {
  return c.flags & 0x3;
}

/** What a command ends with: a status (see status.ts) and the completion's dword 0. */
export interface Completion {
  readonly status: number;
  readonly result?: number;
  /**
   * The command reached the namespace's storage, which ends it after every command fetched with
   * it that ended at once (QEMU's block layer hands a request back from its thread pool or a
   * bottom half, not inside the fetch), and of the commands that reached it together the newest
   * first (both hand back what has finished newest first).
   */
  readonly viaStorage?: boolean;
}
