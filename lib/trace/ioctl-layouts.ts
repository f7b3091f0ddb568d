/**
 * Which uapi struct each ioctl request carries, and how its fields read: decoded from the lib/uapi
 * layouts (never re-declared here), flags spelt with the uapi's own constant names. A trace keeps
 * the fields, not the bytes, so a reader sees `flags=FIXED_IOVA|READABLE` and replay can re-encode
 * the same struct with pointers and fds translated.
 */
import type { FieldLayout } from '../uapi/codec';
import * as iommufd from '../uapi/iommufd';
import * as vfio from '../uapi/vfio';
import { ioctlName, type FileKind } from '../uapi/requests';
import { hex, type TraceField, type TraceFields } from './schema';
import type { LineEncoder } from './line-encoder';

/** The part of a StructType the trace needs: its name, size and field layout. */
export interface StructLayout {
  readonly name: string;
  readonly size: number;
  readonly fields: readonly FieldLayout[];
}

interface RequestLayout {
  readonly struct: StructLayout;
  /** Prefix of the uapi constants naming bits of `flags` (e.g. IOMMU_IOAS_MAP_). */
  readonly flagPrefix?: string;
}

const LAYOUTS: Record<string, RequestLayout> = {
  IOMMU_DESTROY: { struct: iommufd.IommuDestroy },
  IOMMU_IOAS_ALLOC: { struct: iommufd.IommuIoasAlloc },
  IOMMU_IOAS_ALLOW_IOVAS: { struct: iommufd.IommuIoasAllowIovas },
  IOMMU_IOAS_COPY: { struct: iommufd.IommuIoasCopy, flagPrefix: 'IOMMU_IOAS_MAP_' },
  IOMMU_IOAS_IOVA_RANGES: { struct: iommufd.IommuIoasIovaRanges },
  IOMMU_IOAS_MAP: { struct: iommufd.IommuIoasMap, flagPrefix: 'IOMMU_IOAS_MAP_' },
  IOMMU_IOAS_MAP_FILE: { struct: iommufd.IommuIoasMapFile, flagPrefix: 'IOMMU_IOAS_MAP_' },
  IOMMU_IOAS_UNMAP: { struct: iommufd.IommuIoasUnmap },
  IOMMU_IOAS_NOIOMMU_GET_PA: { struct: iommufd.IommuIoasNoiommuGetPa },
  IOMMU_OPTION: { struct: iommufd.IommuOption },
  IOMMU_VFIO_IOAS: { struct: iommufd.IommuVfioIoas },
  IOMMU_HWPT_ALLOC: { struct: iommufd.IommuHwptAlloc, flagPrefix: 'IOMMU_HWPT_ALLOC_' },
  IOMMU_GET_HW_INFO: { struct: iommufd.IommuHwInfo, flagPrefix: 'IOMMU_HW_INFO_FLAG_' },
  IOMMU_HWPT_SET_DIRTY_TRACKING: { struct: iommufd.IommuHwptSetDirtyTracking },
  IOMMU_HWPT_GET_DIRTY_BITMAP: { struct: iommufd.IommuHwptGetDirtyBitmap },
  IOMMU_HWPT_INVALIDATE: { struct: iommufd.IommuHwptInvalidate },
  IOMMU_FAULT_QUEUE_ALLOC: { struct: iommufd.IommuFaultAlloc },
  IOMMU_VIOMMU_ALLOC: { struct: iommufd.IommuViommuAlloc },
  IOMMU_VDEVICE_ALLOC: { struct: iommufd.IommuVdeviceAlloc },
  IOMMU_IOAS_CHANGE_PROCESS: { struct: iommufd.IommuIoasChangeProcess },
  IOMMU_VEVENTQ_ALLOC: { struct: iommufd.IommuVeventqAlloc },
  IOMMU_HW_QUEUE_ALLOC: { struct: iommufd.IommuHwQueueAlloc },
  VFIO_GROUP_GET_STATUS: { struct: vfio.VfioGroupStatus, flagPrefix: 'VFIO_GROUP_FLAGS_' },
  VFIO_DEVICE_GET_INFO: { struct: vfio.VfioDeviceInfo, flagPrefix: 'VFIO_DEVICE_FLAGS_' },
  VFIO_DEVICE_GET_REGION_INFO: { struct: vfio.VfioRegionInfo, flagPrefix: 'VFIO_REGION_INFO_FLAG_' },
  VFIO_DEVICE_GET_IRQ_INFO: { struct: vfio.VfioIrqInfo, flagPrefix: 'VFIO_IRQ_INFO_' },
  VFIO_DEVICE_SET_IRQS: { struct: vfio.VfioIrqSet, flagPrefix: 'VFIO_IRQ_SET_' },
  VFIO_DEVICE_GET_PCI_HOT_RESET_INFO: { struct: vfio.VfioPciHotResetInfo, flagPrefix: 'VFIO_PCI_HOT_RESET_FLAG_' },
  VFIO_DEVICE_PCI_HOT_RESET: { struct: vfio.VfioPciHotReset, flagPrefix: 'VFIO_PCI_HOT_RESET_FLAG_' },
  VFIO_DEVICE_IOEVENTFD: { struct: vfio.VfioDeviceIoeventfd },
  VFIO_DEVICE_FEATURE: { struct: vfio.VfioDeviceFeature },
  VFIO_DEVICE_BIND_IOMMUFD: { struct: vfio.VfioDeviceBindIommufd, flagPrefix: 'VFIO_DEVICE_BIND_FLAG_' },
  VFIO_DEVICE_ATTACH_IOMMUFD_PT: { struct: vfio.VfioDeviceAttachIommufdPt },
  VFIO_DEVICE_DETACH_IOMMUFD_PT: { struct: vfio.VfioDeviceDetachIommufdPt },
  VFIO_IOMMU_GET_INFO: { struct: vfio.VfioIommuType1Info },
  VFIO_IOMMU_MAP_DMA: { struct: vfio.VfioIommuType1DmaMap, flagPrefix: 'VFIO_DMA_MAP_FLAG_' },
  VFIO_IOMMU_UNMAP_DMA: { struct: vfio.VfioIommuType1DmaUnmap, flagPrefix: 'VFIO_DMA_UNMAP_FLAG_' },
};

const CONSTANTS: readonly (readonly [string, unknown])[] = [...Object.entries(iommufd), ...Object.entries(vfio)];

/** Single-bit constants under a prefix, e.g. IOMMU_IOAS_MAP_ → [FIXED_IOVA=1, WRITEABLE=2, READABLE=4]. */
function flagBits(prefix: string): readonly (readonly [string, number])[] {
  const bits: [string, number][] = [];
  for (const [name, value] of CONSTANTS) {
    if (!name.startsWith(prefix) || typeof value !== 'number' || value === 0 || (value & (value - 1)) !== 0) continue;
    bits.push([name.slice(prefix.length), value]);
  }
  return bits.sort((a, b) => a[1] - b[1]);
}

const flagCache = new Map<string, readonly (readonly [string, number])[]>();

/** `FIXED_IOVA|READABLE|0x100`: bits by name, any unnamed rest in hex, "0" for none. */
export function flagNames(prefix: string, flags: number): string {
  let bits = flagCache.get(prefix);
  if (!bits) flagCache.set(prefix, (bits = flagBits(prefix)));
  const names: string[] = [];
  let rest = flags >>> 0;
  for (const [name, bit] of bits) {
    if (rest & bit) {
      names.push(name);
      rest &= ~bit >>> 0;
    }
  }
  if (rest !== 0) names.push(hex(rest));
  return names.length ? names.join('|') : '0';
}

/** Parses `flagNames` output back to the number. */
export function parseFlagNames(prefix: string, text: string): number {
  if (text === '0') return 0;
  let bits = flagCache.get(prefix);
  if (!bits) flagCache.set(prefix, (bits = flagBits(prefix)));
  let value = 0;
  for (const part of text.split('|')) {
    const named = bits.find(([name]) => name === part);
    if (named) value |= named[1];
    else if (/^0x[0-9a-f]+$/i.test(part)) value |= Number.parseInt(part.slice(2), 16);
    else throw new RangeError(`unknown flag '${part}' for ${prefix}*`);
  }
  return value >>> 0;
}

/** Every request the trace decodes a struct for. */
export function structRequestNames(): string[] {
  return Object.keys(LAYOUTS);
}

export function requestLayout(name: string): RequestLayout | undefined {
  return LAYOUTS[name];
}

/** The request's name as the fd's kind of file defines it (cached per kind, without building a key per call). */
const nameCache = new Map<FileKind | undefined, Map<number, string>>();

export function requestName(number: number, kind: FileKind | undefined): string {
  let names = nameCache.get(kind);
  if (!names) nameCache.set(kind, (names = new Map<number, string>()));
  let name = names.get(number);
  if (name === undefined) names.set(number, (name = ioctlName(number, kind)));
  return name;
}

/** Struct fields that hold a process address: written symbolically as mapping + offset. */
export function isPointerField(name: string): boolean {
  return name === 'user_va' || name === 'vaddr' || name === 'allowed_iovas' || name === 'data' || name.endsWith('_uptr');
}

/** Struct fields that hold an fd: related to the call that returned it. */
export function isFdField(struct: string, name: string): boolean {
  return name === 'iommufd' || (name === 'fd' && struct !== 'iommu_destroy');
}

/** Struct fields that hold a physical address: related by frame. */
export function isPhysicalField(name: string): boolean {
  return name === 'out_phys';
}

function view(bytes: Uint8Array): DataView {
  return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

function readScalar(dv: DataView, kind: string, offset: number): number | bigint {
  switch (kind) {
    case 'u8':
      return dv.getUint8(offset);
    case 'u16':
      return dv.getUint16(offset, true);
    case 'u32':
      return dv.getUint32(offset, true);
    case 's32':
      return dv.getInt32(offset, true);
    case 'u64':
      return dv.getBigUint64(offset, true);
    default:
      return dv.getBigInt64(offset, true);
  }
}

function writeScalar(dv: DataView, kind: string, offset: number, value: number | bigint): void {
  switch (kind) {
    case 'u8':
      dv.setUint8(offset, Number(value));
      break;
    case 'u16':
      dv.setUint16(offset, Number(value), true);
      break;
    case 'u32':
      dv.setUint32(offset, Number(value) >>> 0, true);
      break;
    case 's32':
      dv.setInt32(offset, Number(value), true);
      break;
    case 'u64':
      dv.setBigUint64(offset, BigInt(value), true);
      break;
    default:
      dv.setBigInt64(offset, BigInt(value), true);
  }
}

/** How a raw field value is written into the trace (pointers, flags) and read back for replay. */
export interface FieldCodec {
  encode(field: string, value: bigint | number): TraceField;
  decode(field: string, value: TraceField): bigint | number;
}

/**
 * The struct's fields present in `bytes` (a short buffer keeps only the fields it covers, the way
 * the kernel sees it). u64 in hex, flags by name, pointers as the codec writes them.
 */
export function decodeStruct(layout: RequestLayout, bytes: Uint8Array, codec: FieldCodec): TraceFields {
  const dv = view(bytes);
  const out: Record<string, TraceField> = {};
  for (const f of layout.struct.fields) {
    if (f.name.startsWith('__') || f.name === 'pad') continue;
    if (f.offset + f.type.size > bytes.length) break;
    if (f.type.kind === 'array') {
      const el = f.type.element;
      const items: TraceField[] = [];
      for (let k = 0; k < f.type.count; k++) {
        const v = readScalar(dv, el.kind, f.offset + k * el.size);
        items.push(typeof v === 'bigint' ? hex(v) : v);
      }
      out[f.name] = items;
      continue;
    }
    const value = readScalar(dv, f.type.kind, f.offset);
    if (f.name === 'flags' && layout.flagPrefix && typeof value === 'number') out[f.name] = flagNames(layout.flagPrefix, value);
    else out[f.name] = codec.encode(f.name, value);
  }
  return out;
}

/** Writes decoded fields back over `bytes` (fields absent from `fields` keep their bytes). */
export function encodeStruct(layout: RequestLayout, fields: TraceFields, bytes: Uint8Array, codec: FieldCodec): void {
  const dv = view(bytes);
  for (const f of layout.struct.fields) {
    const value = fields[f.name];
    if (value === undefined || f.offset + f.type.size > bytes.length) continue;
    if (f.type.kind === 'array') {
      if (!Array.isArray(value)) throw new TypeError(`${layout.struct.name}.${f.name}: expected an array`);
      const el = f.type.element;
      (value as readonly TraceField[]).forEach((v, k) => writeScalar(dv, el.kind, f.offset + k * el.size, scalarOf(v)));
      continue;
    }
    if (f.name === 'flags' && layout.flagPrefix && typeof value === 'string')
      writeScalar(dv, f.type.kind, f.offset, parseFlagNames(layout.flagPrefix, value));
    else writeScalar(dv, f.type.kind, f.offset, codec.decode(f.name, value));
  }
}

/** A plain number or hex string as a scalar. */
export function scalarOf(value: TraceField): bigint | number {
  if (typeof value === 'number') return value;
  if (typeof value === 'string' && /^-?0x[0-9a-f]+$/i.test(value)) return BigInt(value);
  throw new TypeError(`expected a number or hex string, got ${JSON.stringify(value)}`);
}

export const PLAIN_CODEC: FieldCodec = {
  encode: (_f, v) => (typeof v === 'bigint' ? hex(v) : v),
  decode: (_f, v) => scalarOf(v),
};

/** One field as the JSON writer reads it: where, what kind, and whether it is flags or a pointer. */
interface JsonField {
  readonly key: string;
  /** The key after a comma (`,"name":`), made once rather than per record. */
  readonly nextKey: string;
  /** The scalar kind as a number for a cheap switch: see KIND. */
  readonly kind: number;
  readonly offset: number;
  readonly end: number;
  /** `"name|name"` per flags value already seen (flags fields only). */
  readonly flagText: Map<number, string> | null;
  readonly count: number;
  readonly elementSize: number;
  readonly pointer: boolean;
}

const jsonWriters = new Map<RequestLayout, readonly JsonField[]>();

function jsonFields(layout: RequestLayout): readonly JsonField[] {
  let fields = jsonWriters.get(layout);
  if (fields) return fields;
  fields = layout.struct.fields
    .filter((f) => !f.name.startsWith('__') && f.name !== 'pad')
    .map((f) => ({
      key: `"${f.name}":`,
      nextKey: `,"${f.name}":`,
      kind: KIND[f.type.kind === 'array' ? f.type.element.kind : f.type.kind],
      offset: f.offset,
      end: f.offset + f.type.size,
      count: f.type.kind === 'array' ? f.type.count : -1,
      elementSize: f.type.kind === 'array' ? f.type.element.size : f.type.size,
      pointer: isPointerField(f.name),
      flagText:
        f.name === 'flags' && layout.flagPrefix !== undefined && f.type.kind !== 'u64' && f.type.kind !== 's64'
          ? new Map<number, string>()
          : null,
    }));
  jsonWriters.set(layout, fields);
  return fields;
}

const KIND = { u8: 0, u16: 1, u32: 2, s32: 3, u64: 4, s64: 5 } as const;

export function u32At(b: Uint8Array, o: number): number {
  return (b[o]! | (b[o + 1]! << 8) | (b[o + 2]! << 16) | (b[o + 3]! << 24)) >>> 0;
}

function scalarJson(enc: LineEncoder, b: Uint8Array, kind: number, o: number): void {
  switch (kind) {
    case 0:
      enc.int(b[o]!);
      return;
    case 1:
      enc.int(b[o]! | (b[o + 1]! << 8));
      return;
    case 2:
      enc.int(u32At(b, o));
      return;
    case 3:
      enc.int(u32At(b, o) | 0);
      return;
    case 4:
      enc.byte(0x22);
      enc.hex64(u32At(b, o), u32At(b, o + 4));
      enc.byte(0x22);
      return;
    default: {
      enc.byte(0x22);
      if (u32At(b, o + 4) < 0x8000_0000) enc.hex64(u32At(b, o), u32At(b, o + 4));
      else enc.hex(new DataView(b.buffer, b.byteOffset + o, 8).getBigInt64(0, true));
      enc.byte(0x22);
    }
  }
}

function sameBytes(a: Uint8Array, b: Uint8Array, from: number, to: number): boolean {
  for (let k = from; k < to; k++) if (a[k] !== b[k]) return false;
  return true;
}

/** Writes a process address (hi:lo) as the trace shows it, quoted: `"m3+0x10"` or `"0x…"`. */
export type PointerWriter = (enc: LineEncoder, lo: number, hi: number) => void;

/**
 * Writes the struct's fields in `bytes` as a JSON object without its closing brace
 * (`{"size":40,"flags":"FIXED_IOVA",…`), exactly what JSON.stringify(decodeStruct(…)) begins
 * with, into `enc`: the tracer's hot path (see line-encoder.ts). Only the first `length` bytes
 * count; with `unchangedFrom` (the bytes before the call), only the fields whose bytes differ
 * from it. Returns whether any field was written.
 */
export function writeStructJson(
  enc: LineEncoder,
  layout: RequestLayout,
  bytes: Uint8Array,
  length: number,
  pointer: PointerWriter,
  unchangedFrom?: Uint8Array,
): boolean {
  const fields = jsonFields(layout);
  enc.byte(0x7b);
  let first = true;
  for (let n = 0; n < fields.length; n++) {
    const f = fields[n]!;
    if (f.end > length) break;
    if (unchangedFrom && sameBytes(bytes, unchangedFrom, f.offset, f.end)) continue;
    enc.ascii(first ? f.key : f.nextKey);
    first = false;
    if (f.count >= 0) {
      enc.byte(0x5b);
      for (let k = 0; k < f.count; k++) {
        if (k) enc.byte(0x2c);
        scalarJson(enc, bytes, f.kind, f.offset + k * f.elementSize);
      }
      enc.byte(0x5d);
    } else if (f.flagText) {
      const raw = f.kind === 0 ? bytes[f.offset]! : f.kind === 1 ? bytes[f.offset]! | (bytes[f.offset + 1]! << 8) : u32At(bytes, f.offset);
      const value = f.kind === 3 ? raw | 0 : raw;
      const cache = f.flagText;
      let named = cache.get(value);
      if (named === undefined) {
        named = `"${flagNames(layout.flagPrefix!, value)}"`;
        if (cache.size < 1024) cache.set(value, named);
      }
      enc.ascii(named);
    } else if (f.pointer && f.kind >= 4) {
      pointer(enc, u32At(bytes, f.offset), u32At(bytes, f.offset + 4));
    } else {
      scalarJson(enc, bytes, f.kind, f.offset);
    }
  }
  return !first;
}
