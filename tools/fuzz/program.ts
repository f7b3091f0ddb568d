/**
 * A fuzz program: a list of well-formed operations over the iommufd and VFIO device ioctls, as
 * plain JSON data so it can be written next to a trace, read back, shrunk and replayed on any
 * kernel.
 *
 * Operations never carry kernel-chosen values (object ids, IOVAs). They name earlier results by
 * SLOT instead: "the 2nd IOAS this run allocated", "the 5th area it mapped". The runner resolves a
 * slot to whatever that kernel returned, so the same program means the same thing on the model
 * and on real Linux, and any subsequence (what the shrinker tries) is still a valid program: a
 * slot number past the ones filled so far wraps around to an existing one, and only a reference
 * to a kind of result nothing produced yet makes the operation a recorded 'skip'.
 *
 * Sizes are in pages of the fuzz arena (one user-memory region aligned to 2 MiB, so automatic
 * IOVAs, which keep the alignment of the user address, come out the same on every kernel) or of
 * the fuzz memfd (for IOMMU_IOAS_MAP_FILE, whose IOVAs keep the alignment of the file offset).
 * Fixed IOVAs and caps are hexadecimal strings: JSON has no 64-bit integers.
 */

/** An object id, by where it came from. */
export type ObjectRef =
  /** The id of the slot-th IOAS allocated (even if destroyed since: stale ids are interesting). */
  | { readonly kind: 'ioas'; readonly slot: number }
  /** The id of the slot-th HWPT from hwpt-alloc. */
  | { readonly kind: 'hwpt'; readonly slot: number }
  /** The page-table id the slot-th successful attach reported (the auto-created HWPT for an IOAS). */
  | { readonly kind: 'attached'; readonly slot: number }
  /** The iommufd device id of device fd `device` (0 or 1) from its last bind. */
  | { readonly kind: 'device'; readonly device: number }
  /** A literal id, for ids nobody allocated. */
  | { readonly kind: 'raw'; readonly id: number };

export type IrqKindName = 'intx' | 'msi' | 'msix';

/**
 * A fixed IOVA relative to an earlier area: its first IOVA plus `pages` pages (negative: below it).
 * Makes areas that touch, overlap or nest, which absolute IOVAs rarely hit.
 */
export interface NearArea {
  readonly area: number;
  readonly pages: number;
}

export type FuzzOp =
  | { readonly op: 'ioas-alloc' }
  | { readonly op: 'destroy'; readonly target: ObjectRef }
  | {
      readonly op: 'map';
      readonly ioas: number;
      /** First arena page of the user memory. */
      readonly userPage: number;
      readonly pages: number;
      /** Bytes added to the user address (sub-page starts; 0 normally). */
      readonly byteOffset: number;
      /** Bytes added to the length (a length that is not a page multiple, or 0: -pages*pageSize). */
      readonly lengthAdjust: number;
      /** A fixed IOVA (hex); or one relative to an area (`near`); with neither, the kernel's choice. */
      readonly iova?: string;
      readonly near?: NearArea;
      readonly readable: boolean;
      readonly writable: boolean;
    }
  | {
      /** IOMMU_IOAS_MAP_FILE of the fuzz memfd (ARENA_PAGES pages long). */
      readonly op: 'map-file';
      readonly ioas: number;
      readonly filePage: number;
      readonly pages: number;
      readonly iova?: string;
      readonly near?: NearArea;
      readonly writable: boolean;
    }
  | {
      readonly op: 'copy';
      /** Source: an area slot; the copy starts `pageOffset` pages into it and spans `pages`. */
      readonly area: number;
      readonly pageOffset: number;
      readonly pages: number;
      /** Destination IOAS slot. */
      readonly dst: number;
      readonly iova?: string;
      readonly near?: NearArea;
      readonly writable: boolean;
    }
  /** Unmaps [area.iova + startPages pages, area end + endPages pages) of the area's IOAS. */
  | { readonly op: 'unmap'; readonly area: number; readonly startPages: number; readonly endPages: number }
  /** Unmaps from the start of area `from` to the end of area `to` (both must live in one IOAS to make sense). */
  | { readonly op: 'unmap-span'; readonly from: number; readonly to: number }
  /** IOMMU_IOAS_UNMAP with iova 0, length 2^64-1: everything. */
  | { readonly op: 'unmap-all'; readonly ioas: number }
  /** A literal range (hex). */
  | { readonly op: 'unmap-range'; readonly ioas: number; readonly iova: string; readonly length: string }
  | {
      readonly op: 'get-pa';
      readonly area: number;
      /** Byte offset into the area (may point past its end). */
      readonly offset: number;
      /** The length cap (hex, 0 is allowed: EINVAL). */
      readonly cap: string;
    }
  | { readonly op: 'iova-ranges'; readonly ioas: number }
  | { readonly op: 'allow-iovas'; readonly ioas: number; readonly ranges: readonly { readonly start: string; readonly last: string }[] }
  /** IOMMU_OPTION: huge-pages of an IOAS, or the context's rlimit-mode; `set` absent only reads. */
  | { readonly op: 'option'; readonly option: 'huge-pages' | 'rlimit-mode'; readonly ioas: number; readonly set?: number }
  | { readonly op: 'hw-info'; readonly device: number }
  | { readonly op: 'device-open'; readonly device: number }
  | { readonly op: 'device-close'; readonly device: number }
  | { readonly op: 'bind'; readonly device: number }
  | { readonly op: 'attach'; readonly device: number; readonly target: ObjectRef }
  | { readonly op: 'detach'; readonly device: number }
  | { readonly op: 'hwpt-alloc'; readonly device: number; readonly pt: ObjectRef; readonly flags: number }
  | { readonly op: 'irq-enable'; readonly device: number; readonly kind: IrqKindName; readonly count: number }
  | { readonly op: 'irq-disable'; readonly device: number; readonly kind: IrqKindName }
  /** Software trigger (loopback) of one vector, then reads how often its eventfd fired. */
  | { readonly op: 'irq-trigger'; readonly device: number; readonly kind: IrqKindName; readonly vector: number }
  | { readonly op: 'irq-mask'; readonly device: number; readonly kind: IrqKindName; readonly unmask: boolean }
  /** VFIO_DEVICE_GET_IRQ_INFO of an index: its flags and vector count. */
  | { readonly op: 'irq-info'; readonly device: number; readonly kind: IrqKindName }
  /**
   * SET_IRQS trigger with eventfds on [start, start+count) of an index already enabled: new
   * eventfds grow it (or rewire vectors), `release` passes fd -1 for each, de-assigning them.
   */
  | {
      readonly op: 'irq-resize';
      readonly device: number;
      readonly kind: IrqKindName;
      readonly start: number;
      readonly count: number;
      readonly release: boolean;
    }
  /** pread of `width` bytes at `offset` of the config region. */
  | { readonly op: 'config-read'; readonly device: number; readonly offset: number; readonly width: number }
  /** pwrite of `value` (`width` bytes, little endian) at `offset` of the config region; `readBack` reads it again (BAR sizing). */
  | {
      readonly op: 'config-write';
      readonly device: number;
      readonly offset: number;
      readonly width: number;
      readonly value: number;
      readonly readBack: boolean;
    }
  /** VFIO_DEVICE_GET_REGION_INFO of an index (past the last one too), with the argsz retry for a capability chain. */
  | { readonly op: 'region-info'; readonly device: number; readonly index: number }
  /** VFIO_DEVICE_RESET. */
  | { readonly op: 'reset'; readonly device: number }
  | { readonly op: 'hot-reset-info'; readonly device: number }
  /** VFIO_DEVICE_PCI_HOT_RESET with no group fds (the cdev's iommufd ownership decides). */
  | { readonly op: 'hot-reset'; readonly device: number };

export type FuzzOpName = FuzzOp['op'];

export interface FuzzProgram {
  /** The generator seed (absent for hand-written or shrunk programs that no seed reproduces). */
  readonly seed?: number;
  readonly ops: readonly FuzzOp[];
}

/** Pages in the fuzz arena, and its alignment (the largest alignment iopt_alloc_iova keeps: HPAGE_SIZE). */
export const ARENA_PAGES = 1024;
export const ARENA_ALIGNMENT = 2n << 20n;

export function hex(value: bigint): string {
  return `0x${value.toString(16)}`;
}

export function parseHex(text: string): bigint {
  return BigInt(text);
}

/** A one-line rendering of an op, for reports. */
export function describeOp(op: FuzzOp): string {
  const { op: name, ...rest } = op;
  const args = Object.entries(rest).map(([k, v]) => `${k}=${typeof v === 'object' ? JSON.stringify(v) : String(v)}`);
  return `${name}${args.length ? ' ' + args.join(' ') : ''}`;
}

/** Smaller slot numbers (0 first) for one reference field. */
function smallerSlots(value: number): number[] {
  return Array.from({ length: Math.min(value, 4) }, (_, i) => i);
}

/**
 * Simpler versions of an operation, for the shrinker: lower slot numbers (after ops were removed,
 * a lower slot often names the same result more directly), and the kernel's own IOVA instead of a
 * fixed one.
 */
export function simplerOps(op: FuzzOp): FuzzOp[] {
  const out: FuzzOp[] = [];
  const record = op as unknown as Record<string, unknown>;
  for (const key of ['ioas', 'area', 'dst', 'from', 'to'] as const) {
    const v = record[key];
    if (typeof v === 'number') for (const smaller of smallerSlots(v)) out.push({ ...op, [key]: smaller } as FuzzOp);
  }
  for (const key of ['target', 'pt'] as const) {
    const ref = record[key] as ObjectRef | undefined;
    if (ref && 'slot' in ref) for (const smaller of smallerSlots(ref.slot)) out.push({ ...op, [key]: { ...ref, slot: smaller } } as FuzzOp);
  }
  const near = record['near'] as NearArea | undefined;
  if (near) for (const smaller of smallerSlots(near.area)) out.push({ ...op, near: { ...near, area: smaller } } as FuzzOp);
  if ('iova' in op || 'near' in op) {
    const { iova: _iova, near: _near, ...auto } = op as FuzzOp & { iova?: string; near?: NearArea };
    if (op.op === 'map' || op.op === 'map-file' || op.op === 'copy') out.push(auto as FuzzOp);
  }
  return out;
}
