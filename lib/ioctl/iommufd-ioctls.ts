/**
 * One wrapper per iommufd ioctl (include/uapi/linux/iommufd.h): pack the struct with lib/uapi,
 * issue it on an iommufd fd, unpack what the kernel wrote back. No policy lives here; the typed
 * classes (lib/iommu/iommufd.ts, lib/iommu/ioas.ts, lib/iommu/hwpt.ts) build on these.
 */
import type { Kernel, UserVa } from '../sys/kernel';
import { U64_MAX } from '../uapi/codec';
import * as U from '../uapi/iommufd';
import type { Iova, IovaRange, PhysAddr } from '../sys/addresses';
import { PhysicalSegmentTable } from './physical-segment-table';
import { invoke, withUserMemory } from './invoke';
import { ioctlRuns } from './ioctl-runs';
import { isVfioError } from '../sys/errors';

/**
 * IOMMU_DESTROY: destroys an IOAS, HWPT or other object by id.
 *
 * @category Ioctl results
 */
export function iommuDestroy(kernel: Kernel, fd: number, id: number): void {
  invoke(kernel, fd, U.IOMMU_DESTROY, U.IommuDestroy.encode({ size: U.IommuDestroy.size, id }));
}

/**
 * IOMMU_IOAS_ALLOC: a new, empty IOAS; returns its id.
 *
 * @category Ioctl results
 */
export function ioasAlloc(kernel: Kernel, fd: number): number {
  const buf = U.IommuIoasAlloc.encode({ size: U.IommuIoasAlloc.size });
  invoke(kernel, fd, U.IOMMU_IOAS_ALLOC, buf);
  return U.IommuIoasAlloc.get(buf, 'out_ioas_id');
}

/**
 * What IOMMU_IOAS_IOVA_RANGES reports.
 *
 * @category Ioctl results
 */
export interface IovaRanges {
  /** The usable IOVA ranges, inclusive. */
  readonly ranges: IovaRange[];
  /** Every IOVA and length mapped into this IOAS must be a multiple of this. */
  readonly alignment: bigint;
}

/**
 * IOMMU_IOAS_IOVA_RANGES: the IOVA ranges that may be mapped. The kernel answers EMSGSIZE with
 * the needed count when the array is too small; the wrapper asks again with room for that many,
 * so the caller never sees it (the ranges can change between calls when devices attach, hence
 * the loop).
 *
 * @category Ioctl results
 */
export function ioasIovaRanges(kernel: Kernel, fd: number, ioasId: number): IovaRanges {
  let capacity = 8;
  for (;;) {
    const entry = U.IommuIovaRange.size;
    const answer = withUserMemory(kernel, capacity * entry, (memory, bytes): IovaRanges | { retryWith: number } => {
      const buf = U.IommuIoasIovaRanges.encode({
        size: U.IommuIoasIovaRanges.size,
        ioas_id: ioasId,
        num_iovas: capacity,
        allowed_iovas: memory.address,
      });
      try {
        invoke(kernel, fd, U.IOMMU_IOAS_IOVA_RANGES, buf);
      } catch (e) {
        const needed = U.IommuIoasIovaRanges.get(buf, 'num_iovas');
        if (isVfioError(e, 'EMSGSIZE') && needed > capacity) return { retryWith: needed };
        throw e;
      }
      const count = U.IommuIoasIovaRanges.get(buf, 'num_iovas');
      const ranges: IovaRange[] = [];
      for (let i = 0; i < count; i++) {
        const r = U.IommuIovaRange.decode(bytes, i * entry);
        ranges.push({ start: r.start as Iova, last: r.last as Iova });
      }
      return { ranges, alignment: U.IommuIoasIovaRanges.get(buf, 'out_iova_alignment') };
    });
    if ('retryWith' in answer) {
      capacity = answer.retryWith;
      continue;
    }
    return answer;
  }
}

/**
 * IOMMU_IOAS_ALLOW_IOVAS: restricts automatic IOVA allocation (and fixed maps) to these ranges.
 *
 * @category Ioctl results
 */
export function ioasAllowIovas(kernel: Kernel, fd: number, ioasId: number, ranges: readonly IovaRange[]): void {
  const entry = U.IommuIovaRange.size;
  withUserMemory(kernel, Math.max(1, ranges.length) * entry, (memory, bytes) => {
    ranges.forEach((r, i) => U.IommuIovaRange.encode({ start: r.start, last: r.last }, bytes, i * entry));
    const buf = U.IommuIoasAllowIovas.encode({
      size: U.IommuIoasAllowIovas.size,
      ioas_id: ioasId,
      num_iovas: ranges.length,
      allowed_iovas: memory.address,
    });
    invoke(kernel, fd, U.IOMMU_IOAS_ALLOW_IOVAS, buf);
  });
}

export interface MapAccess {
  readonly readable: boolean;
  readonly writable: boolean;
}

/**
 * Where and how IOMMU_IOAS_MAP and IOMMU_IOAS_MAP_FILE map what they pin.
 *
 * @category Ioctl results
 */
export interface MapTarget extends MapAccess {
  readonly ioasId: number;
  readonly length: bigint;
  /** A fixed IOVA (IOMMU_IOAS_MAP_FIXED_IOVA); without it the kernel chooses one. */
  readonly iova?: Iova;
}

export interface IoasMapArgs extends MapTarget {
  readonly userVa: UserVa;
}

function accessFlags(a: MapAccess, fixed: boolean): number {
  return (
    (a.readable ? U.IOMMU_IOAS_MAP_READABLE : 0) | (a.writable ? U.IOMMU_IOAS_MAP_WRITEABLE : 0) | (fixed ? U.IOMMU_IOAS_MAP_FIXED_IOVA : 0)
  );
}

/** The fields of struct iommu_ioas_map and iommu_ioas_map_file that a MapTarget fills. */
function mapTargetFields(t: MapTarget): { flags: number; ioas_id: number; length: bigint; iova: bigint } {
  return { flags: accessFlags(t, t.iova !== undefined), ioas_id: t.ioasId, length: t.length, iova: t.iova ?? 0n };
}

/**
 * IOMMU_IOAS_MAP: pins `length` bytes at `userVa` and maps them; returns the IOVA used.
 *
 * @category Ioctl results
 */
export function ioasMap(kernel: Kernel, fd: number, args: IoasMapArgs): Iova {
  const buf = U.IommuIoasMap.encode({ size: U.IommuIoasMap.size, ...mapTargetFields(args), user_va: args.userVa });
  invoke(kernel, fd, U.IOMMU_IOAS_MAP, buf);
  return U.IommuIoasMap.get(buf, 'iova') as Iova;
}

export interface IoasMapFileArgs extends MapTarget {
  /** A memfd (or other file the kernel can pin pages of). */
  readonly fileFd: number;
  readonly start: bigint;
}

/**
 * IOMMU_IOAS_MAP_FILE: maps `length` bytes of a file from `start`; returns the IOVA used.
 *
 * @category Ioctl results
 */
export function ioasMapFile(kernel: Kernel, fd: number, args: IoasMapFileArgs): Iova {
  const buf = U.IommuIoasMapFile.encode({ size: U.IommuIoasMapFile.size, ...mapTargetFields(args), fd: args.fileFd, start: args.start });
  invoke(kernel, fd, U.IOMMU_IOAS_MAP_FILE, buf);
  return U.IommuIoasMapFile.get(buf, 'iova') as Iova;
}

export interface IoasCopyArgs extends MapAccess {
  readonly srcIoasId: number;
  readonly srcIova: Iova;
  readonly dstIoasId: number;
  readonly length: bigint;
  readonly dstIova?: Iova;
}

/**
 * IOMMU_IOAS_COPY: maps the pages already pinned at `srcIova` into another IOAS; returns the destination IOVA.
 *
 * @category Ioctl results
 */
export function ioasCopy(kernel: Kernel, fd: number, args: IoasCopyArgs): Iova {
  const buf = U.IommuIoasCopy.encode({
    size: U.IommuIoasCopy.size,
    flags: accessFlags(args, args.dstIova !== undefined),
    dst_ioas_id: args.dstIoasId,
    src_ioas_id: args.srcIoasId,
    length: args.length,
    dst_iova: args.dstIova ?? 0n,
    src_iova: args.srcIova,
  });
  invoke(kernel, fd, U.IOMMU_IOAS_COPY, buf);
  return U.IommuIoasCopy.get(buf, 'dst_iova') as Iova;
}

/**
 * IOMMU_IOAS_UNMAP: unmaps whole areas inside [iova, iova+length); returns the bytes unmapped.
 * Without a range, unmaps everything (iova 0, length 2^64-1, the kernel's "all" form).
 *
 * @category Ioctl results
 */
export function ioasUnmap(kernel: Kernel, fd: number, ioasId: number, range?: { iova: Iova; length: bigint }): bigint {
  const buf = U.IommuIoasUnmap.encode({
    size: U.IommuIoasUnmap.size,
    ioas_id: ioasId,
    iova: range?.iova ?? 0n,
    length: range?.length ?? U64_MAX,
  });
  invoke(kernel, fd, U.IOMMU_IOAS_UNMAP, buf);
  return U.IommuIoasUnmap.get(buf, 'length');
}

/**
 * The options of IOMMU_OPTION.
 *
 * @category Ioctl results
 */
export type IommuOptionName = 'rlimit-mode' | 'huge-pages';
const OPTION_IDS: Record<IommuOptionName, number> = {
  'rlimit-mode': U.IOMMU_OPTION_RLIMIT_MODE,
  'huge-pages': U.IOMMU_OPTION_HUGE_PAGES,
};

/**
 * IOMMU_OPTION get: rlimit-mode is per iommufd (objectId 0), huge-pages per IOAS.
 *
 * @category Ioctl results
 */
export function optionGet(kernel: Kernel, fd: number, option: IommuOptionName, objectId = 0): bigint {
  const buf = U.IommuOption.encode({
    size: U.IommuOption.size,
    option_id: OPTION_IDS[option],
    op: U.IOMMU_OPTION_OP_GET,
    object_id: objectId,
  });
  invoke(kernel, fd, U.IOMMU_OPTION, buf);
  return U.IommuOption.get(buf, 'val64');
}

/**
 * IOMMU_OPTION set.
 *
 * @category Ioctl results
 */
export function optionSet(kernel: Kernel, fd: number, option: IommuOptionName, value: bigint, objectId = 0): void {
  const buf = U.IommuOption.encode({
    size: U.IommuOption.size,
    option_id: OPTION_IDS[option],
    op: U.IOMMU_OPTION_OP_SET,
    object_id: objectId,
    val64: value,
  });
  invoke(kernel, fd, U.IOMMU_OPTION, buf);
}

export interface HwptAllocArgs {
  /** The bound device's id (from VFIO_DEVICE_BIND_IOMMUFD). */
  readonly deviceId: number;
  /** The IOAS (or parent HWPT, for nesting) the page table translates through. */
  readonly ptId: number;
  readonly flags?: number;
  readonly dataType?: number;
  /** Driver-specific data (e.g. iommu_hwpt_vtd_s1), passed by pointer. */
  readonly data?: Uint8Array;
  readonly faultId?: number;
}

/**
 * IOMMU_HWPT_ALLOC: a hardware page table (on noiommu, the dummy domain); returns its id.
 *
 * @category Ioctl results
 */
export function hwptAlloc(kernel: Kernel, fd: number, args: HwptAllocArgs): number {
  const data = args.data ?? new Uint8Array(0);
  return withUserMemory(kernel, data.length, (memory, bytes) => {
    bytes.set(data);
    const buf = U.IommuHwptAlloc.encode({
      size: U.IommuHwptAlloc.size,
      flags: args.flags ?? 0,
      dev_id: args.deviceId,
      pt_id: args.ptId,
      data_type: args.dataType ?? U.IOMMU_HWPT_DATA_NONE,
      data_len: data.length,
      data_uptr: data.length ? memory.address : 0n,
      fault_id: args.faultId ?? 0,
    });
    invoke(kernel, fd, U.IOMMU_HWPT_ALLOC, buf);
    return U.IommuHwptAlloc.get(buf, 'out_hwpt_id');
  });
}

/**
 * What IOMMU_GET_HW_INFO reports about the IOMMU behind a device.
 *
 * @category Ioctl results
 */
export interface HwInfo {
  /** IOMMU_HW_INFO_TYPE_* of `data`. */
  readonly type: number;
  /** The driver-specific info struct, `dataLength` bytes as the kernel filled them. */
  readonly data: Uint8Array;
  /** IOMMU_HW_CAP_* bits. */
  readonly capabilities: bigint;
  /** log2 of the number of PASIDs the device supports (0: none). */
  readonly maxPasidLog2: number;
}

/**
 * IOMMU_GET_HW_INFO: what the IOMMU behind a bound device can do (EOPNOTSUPP on noiommu).
 *
 * @category Ioctl results
 */
export function getHwInfo(kernel: Kernel, fd: number, deviceId: number, dataCapacity = 256): HwInfo {
  return withUserMemory(kernel, dataCapacity, (memory, bytes) => {
    const buf = U.IommuHwInfo.encode({
      size: U.IommuHwInfo.size,
      dev_id: deviceId,
      data_len: dataCapacity,
      data_uptr: memory.address,
    });
    invoke(kernel, fd, U.IOMMU_GET_HW_INFO, buf);
    const v = U.IommuHwInfo.decode(buf);
    return {
      type: v.out_data_type,
      data: Uint8Array.from(bytes.subarray(0, Math.min(v.data_len, dataCapacity))),
      capabilities: v.out_capabilities,
      maxPasidLog2: v.out_max_pasid_log2,
    };
  });
}

/**
 * IOMMU_HWPT_SET_DIRTY_TRACKING.
 *
 * @category Ioctl results
 */
export function hwptSetDirtyTracking(kernel: Kernel, fd: number, hwptId: number, enable: boolean): void {
  const buf = U.IommuHwptSetDirtyTracking.encode({
    size: U.IommuHwptSetDirtyTracking.size,
    hwpt_id: hwptId,
    flags: enable ? U.IOMMU_HWPT_DIRTY_TRACKING_ENABLE : 0,
  });
  invoke(kernel, fd, U.IOMMU_HWPT_SET_DIRTY_TRACKING, buf);
}

/**
 * A physically contiguous run starting at a looked-up address.
 *
 * @category Ioctl results
 */
export interface PhysicalRun {
  /** Physical address of the first byte. */
  readonly phys: PhysAddr;
  /** Physically contiguous bytes from `phys`, at most the cap that was asked for. */
  readonly length: bigint;
}

/**
 * IOMMU_IOAS_NOIOMMU_GET_PA (Linux 7.3): the physical address behind `iova` and how many bytes
 * from there are physically contiguous, up to `maxLength` (non-zero). Needs CAP_SYS_RAWIO and an
 * IOAS whose pages sit in the noiommu domain (a noiommu device attached).
 *
 * @category Ioctl results
 */
export function noiommuGetPa(kernel: Kernel, fd: number, ioasId: number, at: Iova, maxLength: bigint): PhysicalRun {
  return sharedGetPa.lookup(kernel, fd, ioasId, at, maxLength);
}

/**
 * IOMMU_IOAS_NOIOMMU_GET_PA with its struct kept from call to call: the lookup a noiommu driver
 * makes per DMA address, so a call allocates nothing but its answer (see StructType.allocate). An
 * `Ioas` keeps one; `noiommuGetPa` shares one, which is safe because a call fills the struct,
 * issues the ioctl and reads the answer out without giving control to anything else.
 *
 * @category Ioctl results
 */
export class PhysicalAddressLookup {
  private readonly cmd = U.IommuIoasNoiommuGetPa.allocate();
  private readonly runs: BigUint64Array;
  /** segmentTable's scratch table, kept between walks up to SCRATCH_KEPT_BYTES. */
  private scratch = new BigUint64Array(0);

  /** `batch`: GET_PA answers fetched per crossing into the kernel by `walk`. */
  constructor(private readonly batch = RUN_BATCH) {
    this.runs = new BigUint64Array(3 * batch);
  }

  lookup(kernel: Kernel, fd: number, ioasId: number, at: Iova, maxLength: bigint): PhysicalRun {
    const cmd = this.cmd;
    // Every field is written each time (the kernel writes length and out_phys back); the u64
    // stores come first so that an IOVA or length outside u64 fails before anything else.
    cmd.iova = at;
    cmd.length = maxLength;
    cmd.out_phys = 0n;
    cmd.size = U.IommuIoasNoiommuGetPa.size;
    cmd.flags = 0;
    cmd.ioas_id = ioasId;
    cmd.__reserved = 0;
    invoke(kernel, fd, U.IOMMU_IOAS_NOIOMMU_GET_PA, cmd.$bytes);
    return { phys: cmd.out_phys as PhysAddr, length: cmd.length };
  }

  /**
   * Every physical run of [at, at+length), in order, batch by batch as the run walk gives them
   * (adjacent answers within a batch joined, across batches not): one crossing into the kernel
   * per `batch` steps where the kernel has ioctlRuns, so a scattered buffer costs no call per page.
   */
  walk(
    kernel: Kernel,
    fd: number,
    ioasId: number,
    at: Iova,
    length: bigint,
    onRun: (iova: Iova, phys: PhysAddr, length: bigint) => void,
  ): void {
    const out = this.runs;
    this.eachBatch(kernel, fd, ioasId, at, length, (steps) => {
      for (let i = 0; i < steps * 3; i += 3) onRun(out[i]! as Iova, out[i + 1]! as PhysAddr, out[i + 2]!);
    });
  }

  /**
   * The physically contiguous segments of [at, at+length), adjacent answers joined, in a flat
   * table: the walk a DMA buffer pays once per buffer. The run walk writes straight into the
   * table, so nothing is done here per answer (a scattered buffer has thousands).
   */
  segmentTable(kernel: Kernel, fd: number, ioasId: number, at: Iova, length: bigint): PhysicalSegmentTable {
    this.prepare(ioasId);
    // The walk fills a scratch table kept from walk to walk, and the result is one copy of exactly
    // its size: a table grown by doubling, in fresh memory each walk, costs page faults and copies
    // that under the lab's emulation made the walk 1.2x the C loop.
    let scratch = this.scratch;
    let count = 0;
    const end = (at as bigint) + length;
    let cursor = at as bigint;
    while (cursor < end) {
      if (3 * (count + this.batch) > scratch.length) {
        const bigger = new BigUint64Array(Math.max(3 * (count + this.batch), 2 * scratch.length));
        bigger.set(scratch.subarray(0, 3 * count));
        scratch = bigger;
      }
      const room = scratch.subarray(3 * count, 3 * (count + this.batch));
      const steps = ioctlRuns(kernel, fd, U.IOMMU_IOAS_NOIOMMU_GET_PA, this.cmd.$bytes, GET_PA_RUN_FIELDS, cursor, end - cursor, room);
      // Where the batch stopped: the last step's end (the steps are contiguous by contract).
      if (steps > 0) cursor = room[steps * 3 - 3]! + room[steps * 3 - 1]!;
      count = joinBatch(scratch, count, steps);
      if (steps < this.batch && cursor < end) throw emptyRun(cursor);
    }
    if (scratch.byteLength <= SCRATCH_KEPT_BYTES) this.scratch = scratch;
    return new PhysicalSegmentTable(scratch.slice(0, 3 * count));
  }

  /** The fields of the GET_PA struct that stay the same along a walk. */
  private prepare(ioasId: number): void {
    const cmd = this.cmd;
    cmd.size = U.IommuIoasNoiommuGetPa.size;
    cmd.flags = 0;
    cmd.ioas_id = ioasId;
    cmd.__reserved = 0;
  }

  /** Fills `runs` batch by batch over [at, at+length) and hands each batch's answer count on. */
  private eachBatch(kernel: Kernel, fd: number, ioasId: number, at: Iova, length: bigint, onBatch: (steps: number) => void): void {
    this.prepare(ioasId);
    const cmd = this.cmd;
    const out = this.runs;
    const end = (at as bigint) + length;
    let cursor = at as bigint;
    while (cursor < end) {
      const steps = ioctlRuns(kernel, fd, U.IOMMU_IOAS_NOIOMMU_GET_PA, cmd.$bytes, GET_PA_RUN_FIELDS, cursor, end - cursor, out);
      onBatch(steps);
      // Where the batch stopped: the last answer's end (the steps are contiguous by contract).
      if (steps > 0) cursor = out[steps * 3 - 3]! + out[steps * 3 - 1]!;
      if (steps < this.batch && cursor < end) throw emptyRun(cursor);
    }
  }
}

/**
 * Keeps the `steps` segments a batch wrote after the first `count` of `table`: the run walk joins
 * within a batch, and the first of a batch may continue the last of the one before. Returns the
 * new count.
 */
function joinBatch(table: BigUint64Array, count: number, steps: number): number {
  if (steps === 0) return count;
  const at = 3 * count;
  if (count > 0 && table[at + 1] === table[at - 2]! + table[at - 1]!) {
    table[at - 1] = table[at - 1]! + table[at + 2]!;
    table.copyWithin(at, at + 3, at + 3 * steps);
    return count + steps - 1;
  }
  return count + steps;
}

/** The largest scratch table a lookup keeps between walks (a 170 MiB buffer of scattered 4 KiB pages). */
const SCRATCH_KEPT_BYTES = 1 << 20;

function emptyRun(at: bigint): Error {
  return new Error(`IOMMU_IOAS_NOIOMMU_GET_PA returned an empty run at IOVA 0x${at.toString(16)}`);
}

/** Answers fetched per crossing; a 2 MiB buffer of scattered 4 KiB pages is 512. */
const RUN_BATCH = 512;
const GET_PA_RUN_FIELDS = new Uint32Array([
  U.IommuIoasNoiommuGetPa.offsetOf('iova'),
  U.IommuIoasNoiommuGetPa.offsetOf('length'),
  U.IommuIoasNoiommuGetPa.offsetOf('out_phys'),
]);

const sharedGetPa = new PhysicalAddressLookup();

/**
 * IOMMU_IOAS_CHANGE_PROCESS: moves the pin accounting of every mapping to the calling process (after fork).
 *
 * @category Ioctl results
 */
export function ioasChangeProcess(kernel: Kernel, fd: number): void {
  invoke(kernel, fd, U.IOMMU_IOAS_CHANGE_PROCESS, U.IommuIoasChangeProcess.encode({ size: U.IommuIoasChangeProcess.size }));
}
