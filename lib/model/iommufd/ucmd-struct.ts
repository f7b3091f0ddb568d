/**
 * copy_struct_from_user / copy_to_user for the model's ioctl path, driven by the lib/uapi struct
 * descriptions (field names, kinds and offsets come from the codec; nothing here knows a layout).
 *
 * The shared codec builds Buffers around every access, which is fine for the typed API but costs
 * microseconds per ioctl; the model reads and writes the caller's bytes through a DataView of the
 * whole ArrayBuffer at the argument's offset (`base`), so one view serves every argument carved
 * from the same buffer and a GET_PA round trip costs what the lookup costs. Fields past `limit`
 * (the caller's `size`) read as zero and are not written back, exactly like the kernel's
 * zero-extension and min(size, sizeof) copy-out.
 */
import type { FieldType, StructType, StructValue } from '../../uapi/codec';

interface CompiledField {
  readonly name: string;
  readonly offset: number;
  readonly size: number;
  readonly kind: FieldType['kind'];
  readonly element?: { readonly kind: string; readonly size: number };
  readonly count: number;
}

const GETTERS: Readonly<Record<string, string>> = {
  u8: 'getUint8(@)', u16: 'getUint16(@, true)', u32: 'getUint32(@, true)', s32: 'getInt32(@, true)',
  u64: 'getBigUint64(@, true)', s64: 'getBigInt64(@, true)',
};
const SETTERS: Readonly<Record<string, string>> = {
  u8: 'setUint8(@, #)', u16: 'setUint16(@, #, true)', u32: 'setUint32(@, #, true)', s32: 'setInt32(@, #, true)',
  u64: 'setBigUint64(@, #, true)', s64: 'setBigInt64(@, #, true)',
};

export class UcmdStruct<S extends Record<string, FieldType>> {
  private readonly fields: readonly CompiledField[];
  readonly size: number;
  /**
   * Straight-line readers and writers for the common case of a caller struct at least as large
   * as the kernel's, generated from the field list (one property access per field, no loops), so
   * the hot ioctls (GET_PA, MAP, UNMAP) decode in tens of nanoseconds.
   */
  private readonly decodeFull: (view: DataView, base: number) => StructValue<S>;
  private readonly encodeFull: (view: DataView, base: number, value: StructValue<S>) => void;

  constructor(readonly type: StructType<S>) {
    this.size = type.size;
    const reads: string[] = [];
    const writes: string[] = [];
    for (const f of type.fields) {
      const key = JSON.stringify(f.name);
      if (f.type.kind === 'array') {
        const el = f.type.element;
        const items = Array.from({ length: f.type.count }, (_, i) => 'v.' + GETTERS[el.kind]!.replace('@', `b + ${f.offset + i * el.size}`));
        reads.push(`${key}: [${items.join(', ')}]`);
        for (let i = 0; i < f.type.count; i++) {
          writes.push('v.' + SETTERS[el.kind]!.replace('@', `b + ${f.offset + i * el.size}`).replace('#', `o[${key}][${i}]`) + ';');
        }
      } else {
        reads.push(`${key}: v.${GETTERS[f.type.kind]!.replace('@', `b + ${f.offset}`)}`);
        const conv = f.type.size === 8 ? `BigInt(o[${key}])` : `Number(o[${key}])`;
        writes.push('v.' + SETTERS[f.type.kind]!.replace('@', `b + ${f.offset}`).replace('#', conv) + ';');
      }
    }
    // eslint-disable-next-line @typescript-eslint/no-implied-eval
    this.decodeFull = new Function('v', 'b', `return { ${reads.join(', ')} };`) as (view: DataView, base: number) => StructValue<S>;
    // eslint-disable-next-line @typescript-eslint/no-implied-eval
    this.encodeFull = new Function('v', 'b', 'o', writes.join('\n')) as (view: DataView, base: number, value: StructValue<S>) => void;
    this.fields = type.fields.map((f) => ({
      name: f.name,
      offset: f.offset,
      size: f.type.size,
      kind: f.type.kind,
      ...(f.type.kind === 'array' ? { element: { kind: f.type.element.kind, size: f.type.element.size } } : {}),
      count: f.type.kind === 'array' ? f.type.count : 1,
    }));
  }

  /** Decodes the struct at `base` in `view`, treating bytes at or past base + `limit` as zero. */
  decode(view: DataView, base: number, limit: number): StructValue<S> {
    if (limit >= this.size) return this.decodeFull(view, base);
    const out: Record<string, unknown> = {};
    for (const f of this.fields) {
      if (f.kind === 'array') {
        const arr: (number | bigint)[] = [];
        for (let i = 0; i < f.count; i++) arr.push(readScalar(view, base, f.offset + i * f.element!.size, f.element!.kind, f.element!.size, limit));
        out[f.name] = arr;
      } else out[f.name] = readScalar(view, base, f.offset, f.kind, f.size, limit);
    }
    return out as StructValue<S>;
  }

  /** Writes every field back into the struct at `base` in `view`, clipped at `limit` bytes. */
  encode(view: DataView, base: number, value: StructValue<S>, limit: number): void {
    if (limit >= this.size) {
      this.encodeFull(view, base, value);
      return;
    }
    for (const f of this.fields) {
      const v = (value as Record<string, unknown>)[f.name];
      if (f.kind === 'array') {
        (v as (number | bigint)[]).forEach((e, i) => writeScalar(view, base, f.offset + i * f.element!.size, f.element!.kind, f.element!.size, e, limit));
      } else writeScalar(view, base, f.offset, f.kind, f.size, v as number | bigint, limit);
    }
  }
}

function readScalar(view: DataView, base: number, offset: number, kind: string, size: number, limit: number): number | bigint {
  const at = base + offset;
  if (offset + size <= limit) {
    switch (kind) {
      case 'u8': return view.getUint8(at);
      case 'u16': return view.getUint16(at, true);
      case 'u32': return view.getUint32(at, true);
      case 's32': return view.getInt32(at, true);
      case 'u64': return view.getBigUint64(at, true);
      default: return view.getBigInt64(at, true);
    }
  }
  // A field cut by the caller's size: the bytes present, zero above.
  let v = 0n;
  for (let i = Math.min(size, Math.max(0, limit - offset)) - 1; i >= 0; i--) v = (v << 8n) | BigInt(view.getUint8(at + i));
  if (size === 8) return kind === 's64' ? BigInt.asIntN(64, v) : v;
  return kind === 's32' ? Number(BigInt.asIntN(32, v)) : Number(v);
}

function writeScalar(view: DataView, base: number, offset: number, kind: string, size: number, v: number | bigint, limit: number): void {
  const at = base + offset;
  if (offset + size <= limit) {
    switch (kind) {
      case 'u8': view.setUint8(at, Number(v)); return;
      case 'u16': view.setUint16(at, Number(v), true); return;
      case 'u32': view.setUint32(at, Number(v), true); return;
      case 's32': view.setInt32(at, Number(v), true); return;
      case 'u64': view.setBigUint64(at, BigInt(v), true); return;
      default: view.setBigInt64(at, BigInt(v), true); return;
    }
  }
  let x = BigInt.asUintN(size * 8, BigInt(v));
  for (let i = 0; i < size && offset + i < limit; i++) {
    view.setUint8(at + i, Number(x & 0xffn));
    x >>= 8n;
  }
}
