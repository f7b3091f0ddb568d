/**
 * Walking a command's scatter-gather list (NVMe 1.4 §4.4) into the bus-address runs of its data,
 * as QEMU 7.2 does for I/O commands: a single Data Block descriptor in the command, or a chain of
 * (Last) Segment descriptors whose segments hold Data Block descriptors, a segment ending in a
 * Data Block being the last; no bit buckets, no excess length (SGLS bit 0 only). Descriptors are 16 bytes: address, length, type in the high
 * nibble of byte 15.
 */
import type { DataRun, PrpContext } from './prp';
import { DNR, STATUS } from './status';

const DATA_BLOCK = 0x0,
  SEGMENT = 0x2,
  LAST_SEGMENT = 0x3;
const INVALID_SGL_SEGMENT_DESCRIPTOR = 0x000d;
const INVALID_NUMBER_OF_SGL_DESCRIPTORS = 0x000e;
const DATA_SGL_LENGTH_INVALID = 0x000f;
const SGL_DESCRIPTOR_TYPE_INVALID = 0x0011;
const U64 = (1n << 64n) - 1n;

interface Descriptor {
  readonly address: bigint;
  readonly length: number;
  readonly type: number;
}

function decode(v: DataView, at: number): Descriptor {
  return { address: v.getBigUint64(at, true), length: v.getUint32(at + 8, true), type: v.getUint8(at + 15) >>> 4 };
}

/** The descriptor in the command's data pointer is PRP1 (address) and PRP2 (length, type). */
export function walkSgl(ctx: PrpContext, prp1: bigint, prp2: bigint, length: number): DataRun[] | number {
  const runs: DataRun[] = [];
  let remaining = length;
  const data = (descriptors: readonly Descriptor[]): number | undefined => {
    for (const d of descriptors) {
      if (d.type === SEGMENT || d.type === LAST_SEGMENT) return INVALID_NUMBER_OF_SGL_DESCRIPTORS | DNR;
      if (d.type !== DATA_BLOCK) return SGL_DESCRIPTOR_TYPE_INVALID | DNR;
      if (d.length === 0) continue;
      if (remaining === 0) return DATA_SGL_LENGTH_INVALID | DNR;
      if (U64 - d.address < BigInt(d.length)) return DATA_SGL_LENGTH_INVALID | DNR;
      const n = Math.min(remaining, d.length);
      if (ctx.isOwnRegisterSpace(d.address)) return STATUS.DATA_TRANSFER_ERROR;
      runs.push({ address: d.address, length: n });
      remaining -= n;
    }
    return undefined;
  };
  let current: Descriptor = { address: prp1, length: Number(prp2 & 0xffff_ffffn), type: Number((prp2 >> 60n) & 0xfn) };
  if (current.type === DATA_BLOCK) {
    const failed = data([current]);
    if (failed !== undefined) return failed;
  } else {
    for (;;) {
      if (current.type !== SEGMENT && current.type !== LAST_SEGMENT) return INVALID_SGL_SEGMENT_DESCRIPTOR | DNR;
      if (current.length === 0 || current.length & 0xf) return INVALID_SGL_SEGMENT_DESCRIPTOR | DNR;
      if (U64 - current.address < BigInt(current.length)) return DATA_SGL_LENGTH_INVALID | DNR;
      const bytes = ctx.readHost(current.address, current.length);
      if (!bytes) return STATUS.DATA_TRANSFER_ERROR;
      const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
      const segment: Descriptor[] = [];
      for (let at = 0; at < current.length; at += 16) segment.push(decode(v, at));
      const last = segment[segment.length - 1]!;
      if (last.type === DATA_BLOCK) {
        const failed = data(segment);
        if (failed !== undefined) return failed;
        break;
      }
      if (current.type === LAST_SEGMENT) return INVALID_SGL_SEGMENT_DESCRIPTOR | DNR;
      const failed = data(segment.slice(0, -1));
      if (failed !== undefined) return failed;
      current = last;
    }
  }
  if (remaining) return DATA_SGL_LENGTH_INVALID | DNR;
  return runs;
}
