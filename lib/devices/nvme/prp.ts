/**
 * Walking a command's PRP entries (NVMe 1.4 §4.3) into the bus-address runs of its data, with
 * QEMU 7.2's rules: PRP1 may start anywhere in a page; a transfer that needs more than two
 * pages takes PRP2 as a list (which may itself start inside a page, its last entry chaining to
 * the next list page); every other entry must be page aligned (Invalid PRP Offset); a list page
 * that cannot be read is a Data Transfer Error; a run that points at the controller's own
 * registers is a Data Transfer Error too.
 */
import { DNR, STATUS } from './status';

export interface DataRun {
  readonly address: bigint;
  readonly length: number;
}

export interface PrpContext {
  readonly pageSize: number;
  /** Reads host memory; undefined when the read failed. */
  readHost(address: bigint, length: number): Uint8Array | undefined;
  /** Whether an address falls in the controller's own BAR0. */
  isOwnRegisterSpace(address: bigint): boolean;
}

/** The most scatter-gather entries QEMU builds for one command (IOV_MAX). */
const MAX_RUNS = 1024;

export function walkPrps(ctx: PrpContext, prp1: bigint, prp2: bigint, length: number): DataRun[] | number {
  const page = ctx.pageSize;
  const pageMask = BigInt(page - 1);
  const runs: DataRun[] = [];
  const add = (address: bigint, len: number): number | undefined => {
    if (len === 0) return undefined;
    if (ctx.isOwnRegisterSpace(address)) return STATUS.DATA_TRANSFER_ERROR;
    if (runs.length + 1 > MAX_RUNS) return STATUS.INTERNAL_DEVICE_ERROR | DNR;
    const last = runs[runs.length - 1];
    // Adjacent pages form one run, as QEMU's scatter-gather list merges them.
    if (last && last.address + BigInt(last.length) === address)
      runs[runs.length - 1] = { address: last.address, length: last.length + len };
    else runs.push({ address, length: len });
    return undefined;
  };
  let remaining = length;
  const first = Math.min(remaining, page - Number(prp1 & pageMask));
  let failed = add(prp1, first);
  if (failed !== undefined) return failed;
  remaining -= first;
  if (remaining === 0) return runs;
  if (remaining <= page) {
    if (prp2 & pageMask) return STATUS.INVALID_PRP_OFFSET | DNR;
    failed = add(prp2, remaining);
    return failed ?? runs;
  }
  const maxEntries = page / 8;
  let entries = Math.floor((page - Number(prp2 & pageMask)) / 8);
  let list = readList(ctx, prp2, Math.min(maxEntries, entries));
  if (!list) return STATUS.DATA_TRANSFER_ERROR;
  let i = 0;
  while (remaining > 0) {
    let entry = list.getBigUint64(i * 8, true);
    if (i === entries - 1 && remaining > page) {
      if (entry & pageMask) return STATUS.INVALID_PRP_OFFSET | DNR;
      i = 0;
      entries = Math.min(Math.ceil(remaining / page), maxEntries);
      list = readList(ctx, entry, entries);
      if (!list) return STATUS.DATA_TRANSFER_ERROR;
      entry = list.getBigUint64(0, true);
    }
    if (entry & pageMask) return STATUS.INVALID_PRP_OFFSET | DNR;
    const len = Math.min(remaining, page);
    failed = add(entry, len);
    if (failed !== undefined) return failed;
    remaining -= len;
    i++;
  }
  return runs;
}

function readList(ctx: PrpContext, address: bigint, entries: number): DataView | undefined {
  const bytes = ctx.readHost(address, entries * 8);
  return bytes ? new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength) : undefined;
}
