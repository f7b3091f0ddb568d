/**
 * The NVM command set as QEMU 7.2 executes it on a namespace: Read, Write, Flush, Write Zeroes,
 * Dataset Management (deallocate, which the lab's drive ignores: QEMU's default discard=ignore),
 * Compare and Verify, with QEMU's checks in its order (namespace ID, opcode, fused, MDTS, LBA
 * range, data pointer: PRPs or SGLs), and Copy with source range format 0 (the only one a
 * namespace without protection information takes).
 */
import { dataPointerType, fusedOperation, type Command, type Completion } from './command';
import type { CommandContext } from './context';
import { BROADCAST_NSID, nsidValid, type Namespace } from './namespace';
import { DNR, STATUS } from './status';

export const NVM = {
  FLUSH: 0x00,
  WRITE: 0x01,
  READ: 0x02,
  COMPARE: 0x05,
  WRITE_ZEROES: 0x08,
  DSM: 0x09,
  VERIFY: 0x0c,
  COPY: 0x19,
} as const;

const SUPPORTED = new Set<number>([NVM.WRITE, NVM.READ, NVM.COMPARE, NVM.WRITE_ZEROES, NVM.DSM, NVM.VERIFY, NVM.COPY]);
/** Compare Failure (media and data integrity errors), which may be retried. */
const COMPARE_FAILURE = 0x0285;
/** Dataset Management attribute: deallocate. */
const DSM_DEALLOCATE = 1 << 2;
/** A command that reached the storage and succeeded there (see Completion.viaStorage). */
const STORED: Completion = { status: STATUS.SUCCESS, viaStorage: true };

export function executeIo(ctx: CommandContext, c: Command, commandsEnabled: boolean): Completion {
  if (!nsidValid(c.nsid, ctx.maxNamespaces)) return { status: STATUS.INVALID_NSID | DNR };
  if (c.opcode === NVM.FLUSH && commandsEnabled) return flush(ctx, c);
  const ns = ctx.namespace(c.nsid);
  if (!ns) return { status: STATUS.INVALID_FIELD | DNR };
  if (!commandsEnabled || !SUPPORTED.has(c.opcode)) return { status: STATUS.INVALID_OPCODE | DNR };
  if (fusedOperation(c)) return { status: STATUS.INVALID_FIELD };
  switch (c.opcode) {
    case NVM.READ:
      return read(ctx, ns, c);
    case NVM.WRITE:
      return write(ctx, ns, c, false);
    case NVM.WRITE_ZEROES:
      return write(ctx, ns, c, true);
    case NVM.COMPARE:
      return compare(ctx, ns, c);
    case NVM.DSM:
      return datasetManagement(ctx, ns, c);
    case NVM.VERIFY:
      return verify(ctx, ns, c);
    case NVM.COPY:
      return copy(ctx, ns, c);
    default:
      return { status: STATUS.INVALID_FIELD | DNR };
  }
}

interface Extent {
  slba: bigint;
  blocks: number;
  bytes: number;
  offset: number;
}

function extent(ns: Namespace, c: Command): Extent {
  const slba = (BigInt(c.cdw11) << 32n) | BigInt(c.cdw10);
  const blocks = (c.cdw12 & 0xffff) + 1;
  return { slba, blocks, bytes: blocks * ns.blockSize, offset: Number(slba) * ns.blockSize };
}

function mdtsExceeded(ctx: CommandContext, bytes: number): boolean {
  return ctx.mdts !== 0 && bytes > ctx.pageSize * 2 ** ctx.mdts;
}

function runs(ctx: CommandContext, c: Command, bytes: number) {
  switch (dataPointerType(c)) {
    case 0:
      return ctx.dataRuns(c, bytes);
    case 1:
    case 2:
      return ctx.sglRuns(c, bytes);
    default:
      return STATUS.INVALID_FIELD;
  }
}

function read(ctx: CommandContext, ns: Namespace, c: Command): Completion {
  const e = extent(ns, c);
  if (mdtsExceeded(ctx, e.bytes)) return { status: STATUS.INVALID_FIELD | DNR };
  if (!ns.inRange(e.slba, e.blocks)) return { status: STATUS.LBA_OUT_OF_RANGE | DNR };
  const data = runs(ctx, c, e.bytes);
  if (typeof data === 'number') return { status: data | DNR };
  ns.readCommands++;
  ns.unitsRead += e.bytes / 512;
  ctx.writeRuns(data, ns.storage.read(e.offset, e.bytes));
  return STORED;
}

function write(ctx: CommandContext, ns: Namespace, c: Command, zeroes: boolean): Completion {
  const e = extent(ns, c);
  if (!zeroes && mdtsExceeded(ctx, e.bytes)) return { status: STATUS.INVALID_FIELD | DNR };
  if (!ns.inRange(e.slba, e.blocks)) return { status: STATUS.LBA_OUT_OF_RANGE | DNR };
  if (zeroes) {
    ns.storage.zero(e.offset, e.bytes);
    return STORED;
  }
  const data = runs(ctx, c, e.bytes);
  if (typeof data === 'number') return { status: data | DNR };
  const bytes = ctx.readRuns(data, e.bytes);
  ns.writeCommands++;
  ns.unitsWritten += e.bytes / 512;
  ns.storage.write(e.offset, bytes);
  return STORED;
}

function compare(ctx: CommandContext, ns: Namespace, c: Command): Completion {
  const e = extent(ns, c);
  if (mdtsExceeded(ctx, e.bytes)) return { status: STATUS.INVALID_FIELD | DNR };
  if (!ns.inRange(e.slba, e.blocks)) return { status: STATUS.LBA_OUT_OF_RANGE | DNR };
  const data = runs(ctx, c, e.bytes);
  if (typeof data === 'number') return { status: data | DNR };
  const host = ctx.readRuns(data, e.bytes);
  const stored = ns.storage.read(e.offset, e.bytes);
  // The data is compared once the storage has handed the blocks back.
  for (let i = 0; i < stored.length; i++) if (stored[i] !== host[i]) return { status: COMPARE_FAILURE, viaStorage: true };
  return STORED;
}

function verify(ctx: CommandContext, ns: Namespace, c: Command): Completion {
  const e = extent(ns, c);
  // VSL, like MDTS, in pages (QEMU's default 7).
  if (e.bytes > ctx.pageSize * 2 ** 7) return { status: STATUS.INVALID_FIELD | DNR };
  if (!ns.inRange(e.slba, e.blocks)) return { status: STATUS.LBA_OUT_OF_RANGE | DNR };
  // The blocks are read (and dropped) all the same.
  return STORED;
}

function datasetManagement(ctx: CommandContext, ns: Namespace, c: Command): Completion {
  if (!(c.cdw11 & DSM_DEALLOCATE)) return { status: STATUS.SUCCESS };
  const ranges = (c.cdw10 & 0xff) + 1;
  const data = runs(ctx, c, ranges * 16);
  if (typeof data === 'number') return { status: data | DNR };
  const list = ctx.readRuns(data, ranges * 16);
  const v = new DataView(list.buffer, list.byteOffset, list.byteLength);
  const limit = dsmRangeSizeLimit(ctx);
  let discarded = false;
  for (let i = 0; i < ranges; i++) {
    const blocks = v.getUint32(i * 16 + 4, true);
    const slba = v.getBigUint64(i * 16 + 8, true);
    // Ranges longer than DMRSL or outside the namespace are skipped, not failed.
    if (blocks > limit || !ns.inRange(slba, blocks)) continue;
    // A discard the drive ignores still goes to its block layer.
    discarded = true;
    if (ctx.discard) ns.storage.zero(Number(slba) * ns.blockSize, blocks * ns.blockSize);
  }
  // With every range skipped, QEMU ends the command before it leaves the fetch.
  return discarded ? STORED : { status: STATUS.SUCCESS };
}

/**
 * DMRSL: the largest Dataset Management range in blocks — the block layer's largest request
 * (2^31 - 512 bytes, in 512-byte sectors) over the smallest block size.
 */
export function dsmRangeSizeLimit(ctx: Pick<CommandContext, 'namespace' | 'maxNamespaces'>): number {
  let limit = 0xffff_ffff;
  for (let i = 1; i <= ctx.maxNamespaces; i++) {
    const ns = ctx.namespace(i);
    if (ns) limit = Math.min(limit, Math.floor(0x7fff_fe00 / ns.blockSize));
  }
  return limit;
}

/** QEMU's OCFS: source range formats 0 and 1. */
const COPY_FORMATS = 0x3;
const COPY_RANGE_BYTES = 32;
const COMMAND_SIZE_LIMIT = 0x0183;
const INVALID_FORMAT = 0x010a;

/**
 * Copy: checks of the command first (with their own status codes), then each source range in
 * turn — its length against MSSRL, its bounds, then the destination's — read and written before
 * the next; a range that fails leaves the ranges before it copied and says in dword 0 how many
 * there were.
 */
function copy(ctx: CommandContext, ns: Namespace, c: Command): Completion {
  const ranges = (c.cdw12 & 0xff) + 1;
  const format = (c.cdw12 >>> 8) & 0xf;
  if (!(COPY_FORMATS & (1 << format))) return { status: STATUS.INVALID_FIELD | DNR };
  if (ranges > ns.copyLimits.msrc + 1) return { status: COMMAND_SIZE_LIMIT | DNR };
  // Format 1 carries protection information, which no namespace here has.
  if (format !== 0) return { status: INVALID_FORMAT | DNR };
  const data = runs(ctx, c, ranges * COPY_RANGE_BYTES);
  if (typeof data === 'number') return { status: data | DNR };
  const list = ctx.readRuns(data, ranges * COPY_RANGE_BYTES);
  const v = new DataView(list.buffer, list.byteOffset, list.byteLength);
  let destination = (BigInt(c.cdw11) << 32n) | BigInt(c.cdw10);
  for (let i = 0; i < ranges; i++) {
    const slba = v.getBigUint64(i * COPY_RANGE_BYTES + 8, true);
    const blocks = v.getUint16(i * COPY_RANGE_BYTES + 16, true) + 1;
    // QEMU finds a range's Command Size Limit or LBA Out of Range while the copy runs, as an
    // I/O error, which it reports as an Internal Device Error whatever the range's status was.
    const failed: Completion = { status: STATUS.INTERNAL_DEVICE_ERROR, result: i, viaStorage: true };
    if (blocks > ns.copyLimits.mssrl || !ns.inRange(slba, blocks)) return failed;
    const bytes = ns.storage.read(Number(slba) * ns.blockSize, blocks * ns.blockSize);
    if (!ns.inRange(destination, blocks)) return failed;
    ns.storage.write(Number(destination) * ns.blockSize, bytes);
    destination += BigInt(blocks);
  }
  // One read and one write command in the SMART counters, with no data units (QEMU accounts a copy so).
  ns.readCommands++;
  ns.writeCommands++;
  return STORED;
}

function flush(ctx: CommandContext, c: Command): Completion {
  if (c.nsid === BROADCAST_NSID) {
    let flushed = false;
    for (let i = 1; i <= ctx.maxNamespaces; i++) {
      const ns = ctx.namespace(i);
      if (!ns) continue;
      ns.storage.flush();
      flushed = true;
    }
    return flushed ? STORED : { status: STATUS.SUCCESS };
  }
  const ns = ctx.namespace(c.nsid);
  if (!ns) return { status: STATUS.INVALID_FIELD | DNR };
  ns.storage.flush();
  return STORED;
}
