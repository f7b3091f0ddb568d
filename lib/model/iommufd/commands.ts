/**
 * The iommufd ioctls (main.c: iommufd_ioctl_ops and iommufd_fops_ioctl; handlers from ioas.c,
 * hw_pagetable.c, device.c, vfio_compat.c, viommu.c, eventq.c).
 *
 * Dispatch, as the kernel does it: the request's _IOC_NR selects the op; a number outside the
 * table (or one this kernel version does not have yet) goes to the VFIO compatibility ioctls,
 * which answer ENOTTY for anything they do not know. The argument's first u32 is `size`: below
 * the op's minimum (offsetofend of its last mandatory field) → EINVAL; larger than the kernel's
 * struct with a non-zero byte past it → E2BIG (copy_struct_from_user); a shorter one is
 * zero-extended. Responses copy back min(size, sizeof) bytes.
 */
import { U64_MAX, type FieldType, type StructType, type StructView } from '../../uapi/codec';
import {
  IOMMU_HW_CAP_PCI_ATS_NOT_SUPPORTED,
  IOMMU_HW_INFO_FLAG_INPUT_TYPE,
  IOMMU_HW_INFO_TYPE_DEFAULT,
  IOMMU_HW_INFO_TYPE_INTEL_VTD,
  IOMMU_HWPT_DATA_NONE,
  IOMMU_HWPT_FAULT_ID_VALID,
  IOMMU_IOAS_MAP_FIXED_IOVA,
  IOMMU_IOAS_MAP_READABLE,
  IOMMU_IOAS_MAP_WRITEABLE,
  IOMMU_OPTION_HUGE_PAGES,
  IOMMU_OPTION_OP_GET,
  IOMMU_OPTION_OP_SET,
  IOMMU_OPTION_RLIMIT_MODE,
  IOMMU_VFIO_IOAS_CLEAR,
  IOMMU_VFIO_IOAS_GET,
  IOMMU_VFIO_IOAS_SET,
  IOMMUFD_CMD,
  IOMMUFD_TYPE,
  IommuDestroy,
  IommuFaultAlloc,
  IommuHwInfo,
  IommuHwInfoVtd,
  IOMMU_HW_INFO_VTD_ERRATA_772415_SPR17,
  IommuHwptAlloc,
  IommuHwptGetDirtyBitmap,
  IommuHwptInvalidate,
  IommuHwptSetDirtyTracking,
  IommuHwQueueAlloc,
  IommuIoasAlloc,
  IommuIoasAllowIovas,
  IommuIoasChangeProcess,
  IommuIoasCopy,
  IommuIoasIovaRanges,
  IommuIoasMap,
  IommuIoasMapFile,
  IommuIoasNoiommuGetPa,
  IommuIoasUnmap,
  IommuIovaRange,
  IommuOption,
  IommuVdeviceAlloc,
  IommuVeventqAlloc,
  IommuVfioIoas,
  IommuViommuAlloc,
  IOMMU_HWPT_DIRTY_TRACKING_ENABLE,
  IOMMU_HWPT_GET_DIRTY_BITMAP_NO_CLEAR,
} from '../../uapi/iommufd';
import { fail, KernelError } from '../errno';
import { atLeast, type KernelVersion } from '../profile';
import type { CommandContext as IommufdContext } from './command-context';
import { hwptPagingAlloc } from './iommufd-device';
import { FaultQueue, FaultQueueFile } from './fault-queue';
import { IOMMU_READ, IOMMU_WRITE, UnmapError, type IovaInterval, type PagesSlice } from './io-pagetable';
import type { IoasObject } from './ioas-object';
import { IoPages, type AccountMode, type PagesSource } from './pinned-pages';
import type { IommufdObject } from './object-table';
import { vfioCompatIoctl } from './vfio-compat';

const ULONG_MAX = U64_MAX;

/** One ioctl being executed (struct iommufd_ucmd). */
interface Ucmd<S extends Record<string, FieldType>> {
  readonly ctx: IommufdContext;
  readonly op: Op<S>;
  /** The command struct, kernel-sized and zero-extended; handlers update it before respond. */
  readonly cmd: StructView<S>;
  /** The caller's argument buffer and the size it declared. */
  readonly user: Uint8Array;
  readonly userSize: number;
}

interface Op<S extends Record<string, FieldType>> {
  readonly name: string;
  readonly struct: StructType<S>;
  /** offsetofend of the op's last mandatory field. */
  readonly minSize: number;
  /** First kernel version with this op (major, minor). */
  readonly since: readonly [number, number];
  execute(u: Ucmd<S>): number;
}

/** An op with its struct type erased, as the dispatch table holds it. */
interface TableOp {
  readonly name: string;
  readonly minSize: number;
  /** sizeof the kernel's struct. */
  readonly size: number;
  readonly since: readonly [number, number];
  /** Copies in the caller's struct (zero-extended past `userSize`) and runs the handler. */
  run(ctx: IommufdContext, user: Uint8Array, userSize: number): number;
}

function op<S extends Record<string, FieldType>>(
  name: string,
  struct: StructType<S>,
  last: keyof S & string,
  since: readonly [number, number],
  execute: (u: Ucmd<S>) => number,
): TableOp {
  const typed: Op<S> = { name, struct, minSize: struct.endOf(last), since, execute };
  // The kernel's copy of the command (ucmd->cmd), one per op and reused: ioctls run one at a
  // time and a handler never keeps the struct past its return.
  const cmd = struct.allocate();
  return {
    name,
    minSize: typed.minSize,
    size: struct.size,
    since,
    run: (ctx, user, userSize) => {
      cmd.$copyFrom(user, userSize);
      return execute({ ctx, op: typed, cmd, user, userSize });
    },
  };
}

/** iommufd_ucmd_respond: copies min(user size, sizeof) bytes of the command back. */
function respond<S extends Record<string, FieldType>>(u: Ucmd<S>): void {
  u.cmd.$copyTo(u.user, u.userSize);
}

/** Copies one field of the command back to the caller's struct (a copy_to_user of &ubuffer->field). */
function respondField<S extends Record<string, FieldType>, K extends keyof S & string>(u: Ucmd<S>, field: K): void {
  u.op.struct.set(u.user, field, u.cmd[field]);
}

// ---- IOAS ---------------------------------------------------------------------------------------

/** The field map of a codec struct. */
type Fields<T> = T extends StructType<infer S> ? S : never;

function ioasAlloc(u: Ucmd<Fields<typeof IommuIoasAlloc>>): number {
  if (u.cmd.flags) fail('EOPNOTSUPP');
  const ioas = u.ctx.allocIoas();
  u.cmd.out_ioas_id = ioas.id;
  respond(u);
  u.ctx.objects.finalize(ioas);
  return 0;
}

const MAP_FLAGS = IOMMU_IOAS_MAP_FIXED_IOVA | IOMMU_IOAS_MAP_WRITEABLE | IOMMU_IOAS_MAP_READABLE;

/** conv_iommu_prot. */
function convProt(flags: number): number {
  let prot = 0;
  if (flags & IOMMU_IOAS_MAP_WRITEABLE) prot |= IOMMU_WRITE;
  if (flags & IOMMU_IOAS_MAP_READABLE) prot |= IOMMU_READ;
  return prot;
}

/** iopt_alloc_pages' accounting mode, upgraded by iopt_map_common for an "mm" context. */
function accountModeFor(u: { ctx: IommufdContext }): AccountMode {
  if (u.ctx.host.profile.process.capabilities.ipcLock) return 'none';
  return u.ctx.accountMode === 'mm' ? 'mm' : 'user';
}

/** iopt_alloc_pages: length limits and the page count. */
function pagesCount(ctx: IommufdContext, startByte: bigint, length: bigint): number {
  const ps = BigInt(ctx.host.memory.pageSize);
  if (length > ULONG_MAX - ps || length === 0n) fail('EINVAL');
  return Number((length + startByte + ps - 1n) / ps);
}

/** iopt_map_pages on a fresh single-slice list (iopt_map_common): the slice's reference moves into the area. */
function mapOne(
  ioas: IoasObject,
  pages: IoPages,
  startByte: bigint,
  length: bigint,
  iova: bigint | null,
  prot: number,
  firstAddr: bigint,
): bigint {
  try {
    return ioas.iopt.mapPages([{ pages, startByte, length }], length, iova, prot, firstAddr);
  } catch (e) {
    pages.put();
    throw e;
  }
}

/**
 * The checks iommufd_ioas_map, iommufd_ioas_map_file and iommufd_ioas_copy open with: only the
 * map flags (and a zero reserved field), every address and length below ULONG_MAX, and a
 * mapping that can at least be read or written.
 */
function checkMapRequest(flags: number, reserved: number, ...addresses: bigint[]): void {
  if (flags & ~MAP_FLAGS || reserved) fail('EOPNOTSUPP');
  if (addresses.some((a) => a >= ULONG_MAX)) fail('EOVERFLOW');
  if (!(flags & (IOMMU_IOAS_MAP_WRITEABLE | IOMMU_IOAS_MAP_READABLE))) fail('EINVAL');
}

/** The fields of IOMMU_IOAS_MAP and IOMMU_IOAS_MAP_FILE that say how to map, and the IOVA answered. */
interface MapRequest {
  readonly flags: number;
  readonly length: bigint;
  iova: bigint;
}

/**
 * What iommufd_ioas_map and iommufd_ioas_map_file share once the pages' source is known: the
 * pages with their accounting, and one area at the caller's IOVA (or one the kernel picks),
 * which is written into `c` for the response.
 */
function mapFromSource(
  u: { ctx: IommufdContext },
  ioas: IoasObject,
  c: MapRequest,
  source: PagesSource,
  startByte: bigint,
  firstAddr: bigint,
): void {
  const prot = convProt(c.flags);
  const npages = pagesCount(u.ctx, startByte, c.length);
  const pages = new IoPages(u.ctx.host, source, npages, (prot & IOMMU_WRITE) !== 0, accountModeFor(u));
  const fixed = (c.flags & IOMMU_IOAS_MAP_FIXED_IOVA) !== 0;
  c.iova = mapOne(ioas, pages, startByte, c.length, fixed ? c.iova : null, prot, firstAddr);
}

function ioasMap(u: Ucmd<MapS>): number {
  const c = u.cmd;
  checkMapRequest(c.flags, c.__reserved, c.iova, c.length);
  const ioas = u.ctx.getIoas(c.ioas_id);
  // iopt_alloc_user_pages
  if (c.user_va + c.length > ULONG_MAX) fail('EOVERFLOW');
  const ps = BigInt(u.ctx.host.memory.pageSize);
  const uptrDown = c.user_va - (c.user_va % ps);
  mapFromSource(u, ioas, c, { kind: 'user', uptr: uptrDown }, c.user_va - uptrDown, c.user_va);
  respond(u);
  return 0;
}
type MapS = Fields<typeof IommuIoasMap>;

function ioasMapFile(u: Ucmd<MapFileS>): number {
  const c = u.cmd;
  checkMapRequest(c.flags, 0, c.iova, c.length);
  const ioas = u.ctx.getIoas(c.ioas_id);
  // iopt_map_file_pages
  if (c.length === 0n) fail('EINVAL');
  if (c.start + c.length - 1n > ULONG_MAX) fail('EOVERFLOW');
  const ps = BigInt(u.ctx.host.memory.pageSize);
  const startByte = c.start % ps;
  // No dma-bufs in the model: fget the fd as a plain file.
  const file = u.ctx.host.fileOf(c.fd);
  mapFromSource(u, ioas, c, { kind: 'file', file, start: c.start - startByte }, startByte, c.start);
  respond(u);
  return 0;
}
type MapFileS = Fields<typeof IommuIoasMapFile>;

function ioasCopy(u: Ucmd<CopyS>): number {
  const c = u.cmd;
  checkMapRequest(c.flags, 0, c.length, c.src_iova, c.dst_iova);
  const src = u.ctx.getIoas(c.src_ioas_id);
  const slices: PagesSlice[] = src.iopt.getPages(c.src_iova, c.length);
  try {
    const dst = u.ctx.getIoas(c.dst_ioas_id);
    const fixed = (c.flags & IOMMU_IOAS_MAP_FIXED_IOVA) !== 0;
    const first = slices[0]!;
    const src0 = first.pages.source;
    // Only the type1 container's private context holds pfnmap pages, and no IOAS_COPY reaches it.
    const base = src0.kind === 'user' ? src0.uptr : src0.kind === 'file' ? src0.start : 0n;
    c.dst_iova = dst.iopt.mapPages(slices, c.length, fixed ? c.dst_iova : null, convProt(c.flags), first.startByte + base);
  } catch (e) {
    for (const s of slices) s.pages.put();
    throw e;
  }
  respond(u);
  return 0;
}
type CopyS = Fields<typeof IommuIoasCopy>;

function ioasUnmap(u: Ucmd<UnmapS>): number {
  const c = u.cmd;
  const ioas = u.ctx.getIoas(c.ioas_id);
  let unmapped: bigint;
  try {
    if (c.iova === 0n && c.length === U64_MAX) unmapped = ioas.iopt.unmapAll();
    else {
      if (c.iova >= ULONG_MAX || c.length >= ULONG_MAX) fail('EOVERFLOW');
      unmapped = ioas.iopt.unmapIova(c.iova, c.length);
      if (unmapped === 0n) fail('ENOENT');
    }
  } catch (e) {
    if (e instanceof UnmapError) fail(e.code, `the range cuts through a mapped area (${e.unmapped} bytes before it were unmapped)`);
    throw e;
  }
  c.length = unmapped;
  respond(u);
  return 0;
}
type UnmapS = Fields<typeof IommuIoasUnmap>;

function ioasIovaRanges(u: Ucmd<IovaRangesS>): number {
  const c = u.cmd;
  if (c.__reserved) fail('EOPNOTSUPP');
  const ioas = u.ctx.getIoas(c.ioas_id);
  const max = c.num_iovas;
  const ranges = ioas.iopt.iovaRanges();
  c.num_iovas = 0;
  c.out_iova_alignment = ioas.iopt.iovaAlignment;
  for (const r of ranges) {
    if (c.num_iovas < max) {
      const at = c.allowed_iovas + BigInt(c.num_iovas * IommuIovaRange.size);
      u.ctx.host.space.writeUser(at, IommuIovaRange.encode({ start: r.start, last: r.last }));
    }
    c.num_iovas++;
  }
  respond(u);
  if (c.num_iovas > max) fail('EMSGSIZE');
  return 0;
}
type IovaRangesS = Fields<typeof IommuIoasIovaRanges>;

function ioasAllowIovas(u: Ucmd<AllowIovasS>): number {
  const c = u.cmd;
  if (c.__reserved) fail('EOPNOTSUPP');
  const ioas = u.ctx.getIoas(c.ioas_id);
  // iommufd_ioas_load_iovas
  const loaded: IovaInterval[] = [];
  for (let i = 0; i < c.num_iovas; i++) {
    const raw = u.ctx.host.space.readUser(c.allowed_iovas + BigInt(i * IommuIovaRange.size), IommuIovaRange.size);
    const r = IommuIovaRange.decode(raw);
    if (r.start >= r.last) fail('EINVAL');
    if (loaded.some((l) => l.start <= r.last && l.last >= r.start)) fail('EINVAL');
    loaded.push({ start: r.start, last: r.last });
  }
  ioas.iopt.setAllowedIovas(loaded);
  return 0;
}
type AllowIovasS = Fields<typeof IommuIoasAllowIovas>;

function ioasNoiommuGetPa(u: Ucmd<GetPaS>): number {
  const c = u.cmd;
  // Built without CONFIG_IOMMUFD_NOIOMMU, the op is a stub answering EOPNOTSUPP.
  if (!u.ctx.hasIommufdNoiommu) fail('EOPNOTSUPP');
  if (!u.ctx.sysRawio) fail('EPERM');
  if (c.flags || c.__reserved) fail('EOPNOTSUPP');
  if (c.length === 0n) fail('EINVAL');
  if (c.iova >= ULONG_MAX) fail('EOVERFLOW');
  const ioas = u.ctx.getIoas(c.ioas_id);
  const { phys, length } = ioas.iopt.getPhys(c.iova, c.length);
  c.out_phys = phys;
  c.length = length;
  respond(u);
  return 0;
}
type GetPaS = Fields<typeof IommuIoasNoiommuGetPa>;

function destroy(u: Ucmd<DestroyS>): number {
  u.ctx.destroyObject(u.cmd.id);
  return 0;
}
type DestroyS = Fields<typeof IommuDestroy>;

// ---- options ------------------------------------------------------------------------------------

function option(u: Ucmd<OptionS>): number {
  const c = u.cmd;
  if (c.__reserved) fail('EOPNOTSUPP');
  if (c.option_id === IOMMU_OPTION_RLIMIT_MODE) {
    // iommufd_option_rlimit_mode
    if (c.object_id) fail('EOPNOTSUPP');
    if (c.op === IOMMU_OPTION_OP_GET) c.val64 = u.ctx.accountMode === 'mm' ? 1n : 0n;
    else if (c.op === IOMMU_OPTION_OP_SET) {
      if (!u.ctx.host.profile.process.capabilities.sysResource) fail('EPERM');
      if (!u.ctx.objects.isEmpty) fail('EBUSY');
      if (c.val64 === 0n) u.ctx.accountMode = 'user';
      else if (c.val64 === 1n) u.ctx.accountMode = 'mm';
      else fail('EINVAL');
    } else fail('EOPNOTSUPP');
  } else if (c.option_id === IOMMU_OPTION_HUGE_PAGES) {
    // iommufd_ioas_option
    const ioas = u.ctx.getIoas(c.object_id);
    if (c.op === IOMMU_OPTION_OP_GET) c.val64 = ioas.iopt.disableLargePages ? 0n : 1n;
    else if (c.op === IOMMU_OPTION_OP_SET) {
      if (c.val64 === 0n) ioas.iopt.disableHugePages();
      else if (c.val64 === 1n) ioas.iopt.enableHugePages();
      else fail('EINVAL');
    } else fail('EOPNOTSUPP');
  } else fail('EOPNOTSUPP');
  // Only val64 is copied back (the minimum size includes it).
  respondField(u, 'val64');
  return 0;
}
type OptionS = Fields<typeof IommuOption>;

function vfioIoas(u: Ucmd<VfioIoasS>): number {
  const c = u.cmd;
  if (c.__reserved) fail('EOPNOTSUPP');
  switch (c.op) {
    case IOMMU_VFIO_IOAS_GET:
      c.ioas_id = u.ctx.compatIoasId();
      respond(u);
      return 0;
    case IOMMU_VFIO_IOAS_SET:
      u.ctx.vfioIoas = u.ctx.getIoas(c.ioas_id);
      return 0;
    case IOMMU_VFIO_IOAS_CLEAR:
      u.ctx.vfioIoas = null;
      return 0;
    default:
      fail('EOPNOTSUPP');
  }
}
type VfioIoasS = Fields<typeof IommuVfioIoas>;

// ---- HWPT and device info -----------------------------------------------------------------------

function hwptAlloc(u: Ucmd<HwptAllocS>): number {
  const c = u.cmd;
  if (c.__reserved) fail('EOPNOTSUPP');
  if ((c.data_type === IOMMU_HWPT_DATA_NONE && c.data_len) || (c.data_type !== IOMMU_HWPT_DATA_NONE && !c.data_len)) fail('EINVAL');
  const idev = u.ctx.getDevice(c.dev_id);
  // iommufd_get_object of any type (a fault site): hwpt_alloc answers EINVAL for any failure of it.
  let pt: IommufdObject;
  try {
    pt = u.ctx.objects.get(c.pt_id);
  } catch (e) {
    if (e instanceof KernelError) fail('EINVAL');
    throw e;
  }
  if (pt.type === 'hwpt-paging') {
    // iommufd_hwpt_nested_alloc: neither the noiommu domain nor QEMU's VT-d can nest.
    fail('EOPNOTSUPP');
  }
  if (pt.type !== 'ioas') fail('EINVAL');
  const hwpt = hwptPagingAlloc(u.ctx, pt as IoasObject, idev, c.flags, false, c.data_len !== 0);
  try {
    if (c.flags & IOMMU_HWPT_FAULT_ID_VALID) {
      const fault = u.ctx.objects.get(c.fault_id, 'fault');
      hwpt.fault = fault;
      fault.users++;
    }
    c.out_hwpt_id = hwpt.id;
    respond(u);
  } catch (e) {
    u.ctx.objects.abortAndDestroy(hwpt);
    throw e;
  }
  u.ctx.objects.finalize(hwpt);
  return 0;
}
type HwptAllocS = Fields<typeof IommuHwptAlloc>;

function getHwInfo(u: Ucmd<HwInfoS>): number {
  const c = u.cmd;
  if (c.flags & ~IOMMU_HW_INFO_FLAG_INPUT_TYPE) fail('EOPNOTSUPP');
  if (c.__reserved.some((b) => b !== 0)) fail('EOPNOTSUPP');
  if (!(c.flags & IOMMU_HW_INFO_FLAG_INPUT_TYPE)) c.out_data_type = IOMMU_HW_INFO_TYPE_DEFAULT;
  const idev = u.ctx.getDevice(c.dev_id);
  const unit = idev.dev.iommu;
  if (!unit) fail('EOPNOTSUPP');
  // intel_iommu_hw_info
  if (c.out_data_type !== IOMMU_HW_INFO_TYPE_DEFAULT && c.out_data_type !== IOMMU_HW_INFO_TYPE_INTEL_VTD) fail('EOPNOTSUPP');
  // 7.3 sets the erratum flag unconditionally (seen in the lab by differential fuzzing).
  const data = IommuHwInfoVtd.encode({ flags: IOMMU_HW_INFO_VTD_ERRATA_772415_SPR17, cap_reg: unit.capReg, ecap_reg: unit.ecapReg });
  c.out_data_type = IOMMU_HW_INFO_TYPE_INTEL_VTD;
  const copy = Math.min(c.data_len, data.length);
  if (c.data_len > 0) {
    const out = new Uint8Array(c.data_len);
    out.set(data.subarray(0, copy));
    u.ctx.host.space.writeUser(c.data_uptr, out);
  }
  c.data_len = data.length;
  // No dirty tracking; the modelled devices have no ATS.
  c.out_capabilities = BigInt(IOMMU_HW_CAP_PCI_ATS_NOT_SUPPORTED);
  c.out_max_pasid_log2 = 0;
  respond(u);
  return 0;
}
type HwInfoS = Fields<typeof IommuHwInfo>;

function hwptSetDirtyTracking(u: Ucmd<SetDirtyS>): number {
  const c = u.cmd;
  if (c.flags & ~IOMMU_HWPT_DIRTY_TRACKING_ENABLE) fail('EOPNOTSUPP');
  u.ctx.getHwpt(c.hwpt_id);
  // iopt_set_dirty_tracking: no modelled domain has dirty_ops.
  fail('EOPNOTSUPP');
}
type SetDirtyS = Fields<typeof IommuHwptSetDirtyTracking>;

function hwptGetDirtyBitmap(u: Ucmd<GetDirtyS>): number {
  const c = u.cmd;
  if (c.flags & ~IOMMU_HWPT_GET_DIRTY_BITMAP_NO_CLEAR || c.__reserved) fail('EOPNOTSUPP');
  const hwpt = u.ctx.getHwpt(c.hwpt_id);
  // iommufd_check_iova_range, then the domain's (missing) dirty ops.
  const align = hwpt.ioas.iopt.iovaAlignment;
  // check_add_overflow(iova, length - 1) in u64 arithmetic.
  const sum = c.iova + ((c.length - 1n) & U64_MAX);
  if (sum > U64_MAX) fail('EOVERFLOW');
  const end = (sum + 1n) & U64_MAX;
  if (c.iova & (align - 1n) || end & (align - 1n)) fail('EINVAL');
  if (!c.page_size) fail('EINVAL');
  if (c.iova & (c.page_size - 1n) || end & (c.page_size - 1n)) fail('EINVAL');
  fail('EOPNOTSUPP');
}
type GetDirtyS = Fields<typeof IommuHwptGetDirtyBitmap>;

const INVALIDATE_ENTRY_NUM_MAX = 1 << 19;
/** eventq.c: VEVENTQ_MAX_DEPTH. */
const VEVENTQ_MAX_DEPTH = 1 << 19;

function hwptInvalidate(u: Ucmd<InvalidateS>): number {
  const c = u.cmd;
  let err: KernelError | null = null;
  try {
    if (c.__reserved) fail('EOPNOTSUPP');
    if (c.entry_num && (!c.data_uptr || !c.entry_len || c.entry_len > u.ctx.host.memory.pageSize || c.entry_num > INVALIDATE_ENTRY_NUM_MAX))
      fail('EINVAL');
    u.ctx.objects.get(c.hwpt_id);
    // Only nested HWPTs and vIOMMUs take invalidations; the model has neither.
    fail('EINVAL');
  } catch (e) {
    if (!(e instanceof KernelError)) throw e;
    err = e;
  }
  c.entry_num = 0;
  respond(u);
  throw err;
}
type InvalidateS = Fields<typeof IommuHwptInvalidate>;

/** iommufd_fault_alloc: the object plus its event fd (which holds the context open). */
function faultQueueAlloc(u: Ucmd<FaultAllocS>): number {
  if (u.cmd.flags) fail('EOPNOTSUPP');
  const ctx = u.ctx;
  const queue = new FaultQueue();
  ctx.objects.reserve(queue);
  queue.users++;
  const file = new FaultQueueFile(queue, () => {
    queue.users--;
    ctx.host.dropFile(ctx);
  });
  ctx.host.holdFile(ctx);
  const fd = ctx.host.installFile(file, 'anon_inode:[iommufd-pgfault]');
  u.cmd.out_fault_id = queue.id;
  u.cmd.out_fault_fd = fd;
  respond(u);
  ctx.objects.finalize(queue);
  return 0;
}
type FaultAllocS = Fields<typeof IommuFaultAlloc>;

function viommuAlloc(u: Ucmd<ViommuAllocS>): number {
  const c = u.cmd;
  // IOMMU_VIOMMU_TYPE_DEFAULT is 0.
  if (c.flags || c.type === 0) fail('EOPNOTSUPP');
  u.ctx.getDevice(c.dev_id);
  // Neither a noiommu device nor QEMU's VT-d offers a vIOMMU.
  fail('EOPNOTSUPP');
}
type ViommuAllocS = Fields<typeof IommuViommuAlloc>;

/**
 * iommufd_get_viommu: VIOMMU_ALLOC never succeeds on the modelled hardware, so no ID names a
 * vIOMMU — whatever object (or nothing) is there, the lookup answers ENOENT.
 */
function getViommu(_id: number): never {
  fail('ENOENT');
}

function vdeviceAlloc(u: Ucmd<VdeviceAllocS>): number {
  const c = u.cmd;
  if (c.virt_id > ULONG_MAX) fail('EINVAL');
  getViommu(c.viommu_id);
}
type VdeviceAllocS = Fields<typeof IommuVdeviceAlloc>;

function veventqAlloc(u: Ucmd<VeventqAllocS>): number {
  const c = u.cmd;
  if (c.flags || c.__reserved || c.type === 0) fail('EOPNOTSUPP');
  if (!c.veventq_depth || c.veventq_depth > VEVENTQ_MAX_DEPTH) fail('EINVAL');
  getViommu(c.viommu_id);
}
type VeventqAllocS = Fields<typeof IommuVeventqAlloc>;

function hwQueueAlloc(u: Ucmd<HwQueueAllocS>): number {
  const c = u.cmd;
  if (c.flags || c.type === 0) fail('EOPNOTSUPP');
  if (!c.length) fail('EINVAL');
  if (c.nesting_parent_iova + c.length - 1n > ULONG_MAX) fail('EOVERFLOW');
  getViommu(c.viommu_id);
}
type HwQueueAllocS = Fields<typeof IommuHwQueueAlloc>;

function ioasChangeProcess(u: Ucmd<ChangeProcessS>): number {
  if (u.cmd.__reserved) fail('EOPNOTSUPP');
  // Every area must be file-backed (IOPT_ADDRESS_FILE); the model has a single process, so the
  // change itself is a no-op once that holds.
  for (const obj of u.ctx.objects.objects()) {
    if (obj.type !== 'ioas') continue;
    for (const { value: area } of (obj as IoasObject).iopt.areas) {
      if (area.pages.source.kind !== 'file') fail('EINVAL');
    }
  }
  return 0;
}
type ChangeProcessS = Fields<typeof IommuIoasChangeProcess>;

// ---- the table ----------------------------------------------------------------------------------

const OPS = new Map<number, TableOp>([
  [IOMMUFD_CMD.DESTROY, op('IOMMU_DESTROY', IommuDestroy, 'id', [6, 2], destroy)],
  [IOMMUFD_CMD.IOAS_ALLOC, op('IOMMU_IOAS_ALLOC', IommuIoasAlloc, 'out_ioas_id', [6, 2], ioasAlloc)],
  [IOMMUFD_CMD.IOAS_ALLOW_IOVAS, op('IOMMU_IOAS_ALLOW_IOVAS', IommuIoasAllowIovas, 'allowed_iovas', [6, 2], ioasAllowIovas)],
  [IOMMUFD_CMD.IOAS_COPY, op('IOMMU_IOAS_COPY', IommuIoasCopy, 'src_iova', [6, 2], ioasCopy)],
  [IOMMUFD_CMD.IOAS_IOVA_RANGES, op('IOMMU_IOAS_IOVA_RANGES', IommuIoasIovaRanges, 'out_iova_alignment', [6, 2], ioasIovaRanges)],
  [IOMMUFD_CMD.IOAS_MAP, op('IOMMU_IOAS_MAP', IommuIoasMap, 'iova', [6, 2], ioasMap)],
  [IOMMUFD_CMD.IOAS_UNMAP, op('IOMMU_IOAS_UNMAP', IommuIoasUnmap, 'length', [6, 2], ioasUnmap)],
  [IOMMUFD_CMD.OPTION, op('IOMMU_OPTION', IommuOption, 'val64', [6, 2], option)],
  [IOMMUFD_CMD.VFIO_IOAS, op('IOMMU_VFIO_IOAS', IommuVfioIoas, '__reserved', [6, 2], vfioIoas)],
  [IOMMUFD_CMD.HWPT_ALLOC, op('IOMMU_HWPT_ALLOC', IommuHwptAlloc, '__reserved', [6, 6], hwptAlloc)],
  [IOMMUFD_CMD.GET_HW_INFO, op('IOMMU_GET_HW_INFO', IommuHwInfo, '__reserved', [6, 6], getHwInfo)],
  [
    IOMMUFD_CMD.HWPT_SET_DIRTY_TRACKING,
    op('IOMMU_HWPT_SET_DIRTY_TRACKING', IommuHwptSetDirtyTracking, '__reserved', [6, 7], hwptSetDirtyTracking),
  ],
  [IOMMUFD_CMD.HWPT_GET_DIRTY_BITMAP, op('IOMMU_HWPT_GET_DIRTY_BITMAP', IommuHwptGetDirtyBitmap, 'data', [6, 7], hwptGetDirtyBitmap)],
  [IOMMUFD_CMD.HWPT_INVALIDATE, op('IOMMU_HWPT_INVALIDATE', IommuHwptInvalidate, '__reserved', [6, 8], hwptInvalidate)],
  [IOMMUFD_CMD.FAULT_QUEUE_ALLOC, op('IOMMU_FAULT_QUEUE_ALLOC', IommuFaultAlloc, 'out_fault_fd', [6, 11], faultQueueAlloc)],
  [IOMMUFD_CMD.IOAS_MAP_FILE, op('IOMMU_IOAS_MAP_FILE', IommuIoasMapFile, 'iova', [6, 13], ioasMapFile)],
  [IOMMUFD_CMD.VIOMMU_ALLOC, op('IOMMU_VIOMMU_ALLOC', IommuViommuAlloc, 'out_viommu_id', [6, 13], viommuAlloc)],
  [IOMMUFD_CMD.VDEVICE_ALLOC, op('IOMMU_VDEVICE_ALLOC', IommuVdeviceAlloc, 'virt_id', [6, 13], vdeviceAlloc)],
  [IOMMUFD_CMD.IOAS_CHANGE_PROCESS, op('IOMMU_IOAS_CHANGE_PROCESS', IommuIoasChangeProcess, '__reserved', [6, 14], ioasChangeProcess)],
  [IOMMUFD_CMD.VEVENTQ_ALLOC, op('IOMMU_VEVENTQ_ALLOC', IommuVeventqAlloc, 'out_veventq_fd', [6, 15], veventqAlloc)],
  [IOMMUFD_CMD.HW_QUEUE_ALLOC, op('IOMMU_HW_QUEUE_ALLOC', IommuHwQueueAlloc, 'length', [6, 17], hwQueueAlloc)],
  [IOMMUFD_CMD.IOAS_NOIOMMU_GET_PA, op('IOMMU_IOAS_NOIOMMU_GET_PA', IommuIoasNoiommuGetPa, 'out_phys', [7, 3], ioasNoiommuGetPa)],
]);

const CMD_BASE = 0x80;

/** The table indexed by _IOC_NR - CMD_BASE (a hole where no op has that number). */
const OPS_BY_NR: (TableOp | undefined)[] = [];
for (const [nr, o] of OPS) OPS_BY_NR[nr - CMD_BASE] = o;

/** The highest command number a kernel version's table has (the table ends at its newest op). */
export function commandTableEnd(version: KernelVersion): number {
  let end = CMD_BASE - 1;
  for (const [nr, o] of OPS) {
    if (nr > end && atLeast(version, o.since[0], o.since[1])) end = nr;
  }
  return end;
}

/** The ioctl name of an iommufd request, for error messages. */
export function iommufdRequestName(request: number): string | undefined {
  if (((request >> 8) & 0xff) !== IOMMUFD_TYPE) return undefined;
  return OPS.get(request & 0xff)?.name;
}

/** iommufd_fops_ioctl. */
export function dispatchIoctl(ctx: IommufdContext, request: number, arg: Uint8Array | number | null): number {
  const nr = request & 0xff;
  if (nr < CMD_BASE || nr > ctx.commandTableEnd) return vfioCompatIoctl(ctx, request, arg);
  // get_user(user_size): the argument must be readable memory.
  if (!(arg instanceof Uint8Array) || arg.length < 4) fail('EFAULT');
  // The leading u32 of every iommufd struct, little-endian.
  const size = (arg[0]! | (arg[1]! << 8) | (arg[2]! << 16) | (arg[3]! << 24)) >>> 0;
  const o = OPS_BY_NR[nr - CMD_BASE];
  // A request with the right number but other type/direction/size bits: -ENOIOCTLCMD.
  if (!o || request !== ((IOMMUFD_TYPE << 8) | nr)) fail('ENOTTY');
  if (size < o.minSize) fail('EINVAL');
  // copy_struct_from_user
  const ksize = o.size;
  if (arg.length < Math.min(size, ksize)) fail('EFAULT');
  if (size > ksize) {
    if (arg.length < size) fail('EFAULT');
    for (let i = ksize; i < size; i++) if (arg[i] !== 0) fail('E2BIG');
  }
  return o.run(ctx, arg, size);
}
