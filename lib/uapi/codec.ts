/**
 * One declarative description of C structs and one codec for them.
 *
 * A struct is written as an ordered list of named fields; offsets, padding and size follow the
 * x86-64 / aarch64 Linux ABI (natural alignment, `__aligned_u64`), so no code anywhere else does
 * offset arithmetic. Both kernels (native and model) and the typed API use these descriptions, so
 * the bytes the model decodes are exactly the bytes the real kernel would receive.
 *
 * u64/s64 fields are bigint, narrower fields are number. Encoding range-checks every value and
 * throws a RangeError naming the struct and field instead of truncating.
 */

export interface ScalarType<T extends number | bigint> {
  readonly kind: 'u8' | 'u16' | 'u32' | 'u64' | 's32' | 's64';
  readonly size: 1 | 2 | 4 | 8;
  readonly align: 1 | 2 | 4 | 8;
  /** Phantom marker for the decoded JS type. */
  readonly _t?: T;
}

export interface ArrayType<T extends number | bigint> {
  readonly kind: 'array';
  readonly element: ScalarType<T>;
  readonly count: number;
  readonly size: number;
  readonly align: 1 | 2 | 4 | 8;
  readonly _t?: T[];
}

export type FieldType = ScalarType<number> | ScalarType<bigint> | ArrayType<number> | ArrayType<bigint>;

export const u8: ScalarType<number> = { kind: 'u8', size: 1, align: 1 };
export const u16: ScalarType<number> = { kind: 'u16', size: 2, align: 2 };
export const u32: ScalarType<number> = { kind: 'u32', size: 4, align: 4 };
export const s32: ScalarType<number> = { kind: 's32', size: 4, align: 4 };
export const u64: ScalarType<bigint> = { kind: 'u64', size: 8, align: 8 };
export const s64: ScalarType<bigint> = { kind: 's64', size: 8, align: 8 };

export function array<T extends number | bigint>(element: ScalarType<T>, count: number): ArrayType<T> {
  return { kind: 'array', element, count, size: element.size * count, align: element.align };
}

type Decoded<F> = F extends ScalarType<infer T> ? T : F extends ArrayType<infer T> ? T[] : never;

/** The JS object a struct decodes to. */
export type StructValue<S extends Record<string, FieldType>> = { [K in keyof S]: Decoded<S[K]> };

export interface FieldLayout {
  readonly name: string;
  readonly type: FieldType;
  readonly offset: number;
}

export const U64_MAX = (1n << 64n) - 1n;
const RANGES: Record<ScalarType<number | bigint>['kind'], [bigint, bigint]> = {
  u8: [0n, 0xffn],
  u16: [0n, 0xffffn],
  u32: [0n, 0xffff_ffffn],
  s32: [-(1n << 31n), (1n << 31n) - 1n],
  u64: [0n, U64_MAX],
  s64: [-(1n << 63n), (1n << 63n) - 1n],
};

export class StructType<S extends Record<string, FieldType>> {
  /** sizeof(struct), including tail padding. */
  readonly size: number;
  readonly align: number;
  readonly fields: readonly FieldLayout[];
  private readonly byName: Map<string, FieldLayout>;

  constructor(readonly name: string, spec: S) {
    let offset = 0;
    let align = 1;
    const fields: FieldLayout[] = [];
    for (const [fieldName, type] of Object.entries(spec)) {
      offset = alignUp(offset, type.align);
      fields.push({ name: fieldName, type, offset });
      offset += type.size;
      align = Math.max(align, type.align);
    }
    this.fields = fields;
    this.align = align;
    this.size = alignUp(offset, align);
    this.byName = new Map(fields.map((f) => [f.name, f]));
  }

  /** Byte offset of a field (offsetof). */
  offsetOf(field: keyof S & string): number {
    return this.field(field).offset;
  }

  /** Offset of the end of a field: the minimum `size`/`argsz` a kernel accepts is often this. */
  endOf(field: keyof S & string): number {
    const f = this.field(field);
    return f.offset + f.type.size;
  }

  field(field: string): FieldLayout {
    const f = this.byName.get(field);
    if (!f) throw new Error(`struct ${this.name} has no field ${field}`);
    return f;
  }

  /**
   * Packs `values` into a new zeroed buffer of `size` bytes (default sizeof) or into `into` at
   * `offset`. Missing fields are zero.
   */
  encode(values: Partial<StructValue<S>>, into?: Uint8Array, offset = 0): Buffer {
    const buf = into ? toBuffer(into) : Buffer.alloc(this.size);
    if (!into) offset = 0;
    if (offset < 0 || offset + this.size > buf.length) {
      // A caller may deliberately pass a shorter buffer (to test size rules); fields that do not
      // fit are simply not written, but a field that is given a value must fit.
    }
    for (const f of this.fields) {
      const v = (values as Record<string, unknown>)[f.name];
      if (v === undefined) continue;
      if (offset + f.offset + f.type.size > buf.length) {
        throw new RangeError(`${this.name}.${f.name} does not fit in a ${buf.length - offset}-byte buffer`);
      }
      writeField(buf, offset + f.offset, f.type, v, this.name, f.name);
    }
    return buf;
  }

  /**
   * Unpacks the struct at `offset`. Fields past the end of a short buffer decode as zero, the way a
   * kernel treats a user struct shorter than its own (copy_struct_from_user zero-fills).
   */
  decode(buf: Uint8Array, offset = 0): StructValue<S> {
    const b = toBuffer(buf);
    const out: Record<string, unknown> = {};
    for (const f of this.fields) {
      out[f.name] = readField(b, offset + f.offset, f.type);
    }
    return out as StructValue<S>;
  }

  /** Reads one field. */
  get<K extends keyof S & string>(buf: Uint8Array, field: K, offset = 0): Decoded<S[K]> {
    const f = this.field(field);
    return readField(toBuffer(buf), offset + f.offset, f.type) as Decoded<S[K]>;
  }

  /** Writes one field, range-checked. */
  set<K extends keyof S & string>(buf: Uint8Array, field: K, value: Decoded<S[K]>, offset = 0): void {
    const f = this.field(field);
    const b = toBuffer(buf);
    if (offset + f.offset + f.type.size > b.length) {
      throw new RangeError(`${this.name}.${field} does not fit in a ${b.length - offset}-byte buffer`);
    }
    writeField(b, offset + f.offset, f.type, value, this.name, field);
  }
}

export function struct<S extends Record<string, FieldType>>(name: string, spec: S): StructType<S> {
  return new StructType(name, spec);
}

export function alignUp(n: number, a: number): number {
  return Math.ceil(n / a) * a;
}

/** A Buffer view over any Uint8Array without copying. */
export function toBuffer(b: Uint8Array): Buffer {
  return Buffer.isBuffer(b) ? b : Buffer.from(b.buffer, b.byteOffset, b.byteLength);
}

function checkRange(kind: ScalarType<number | bigint>['kind'], v: unknown, structName: string, field: string): bigint {
  let big: bigint;
  if (typeof v === 'bigint') big = v;
  else if (typeof v === 'number') {
    if (!Number.isInteger(v)) throw new RangeError(`${structName}.${field}: ${v} is not an integer`);
    if (kind === 'u64' || kind === 's64') {
      if (!Number.isSafeInteger(v)) throw new RangeError(`${structName}.${field}: ${v} is not a safe integer; pass a bigint`);
    }
    big = BigInt(v);
  } else {
    throw new TypeError(`${structName}.${field}: expected ${kind === 'u64' || kind === 's64' ? 'bigint' : 'number'}, got ${typeof v}`);
  }
  const [lo, hi] = RANGES[kind];
  if (big < lo || big > hi) {
    throw new RangeError(`${structName}.${field}: ${big} is out of range for ${kind} (${lo}..${hi})`);
  }
  return big;
}

function writeScalar(buf: Buffer, at: number, type: ScalarType<number | bigint>, v: unknown, s: string, f: string): void {
  const big = checkRange(type.kind, v, s, f);
  switch (type.kind) {
    case 'u8': buf.writeUInt8(Number(big), at); break;
    case 'u16': buf.writeUInt16LE(Number(big), at); break;
    case 'u32': buf.writeUInt32LE(Number(big), at); break;
    case 's32': buf.writeInt32LE(Number(big), at); break;
    case 'u64': buf.writeBigUInt64LE(big, at); break;
    case 's64': buf.writeBigInt64LE(big, at); break;
  }
}

function writeField(buf: Buffer, at: number, type: FieldType, v: unknown, s: string, f: string): void {
  if (type.kind === 'array') {
    if (!Array.isArray(v)) throw new TypeError(`${s}.${f}: expected an array`);
    if (v.length > type.count) throw new RangeError(`${s}.${f}: ${v.length} elements do not fit in ${type.count}`);
    v.forEach((e, i) => writeScalar(buf, at + i * type.element.size, type.element, e, s, `${f}[${i}]`));
    return;
  }
  writeScalar(buf, at, type, v, s, f);
}

function readScalar(buf: Buffer, at: number, type: ScalarType<number | bigint>): number | bigint {
  const avail = buf.length - at;
  if (avail < type.size) {
    // Short buffer: decode what is there, zero past the end.
    if (avail <= 0) return type.size === 8 ? 0n : 0;
    const tmp = Buffer.alloc(8);
    buf.copy(tmp, 0, at, buf.length);
    return readScalar(tmp, 0, type);
  }
  switch (type.kind) {
    case 'u8': return buf.readUInt8(at);
    case 'u16': return buf.readUInt16LE(at);
    case 'u32': return buf.readUInt32LE(at);
    case 's32': return buf.readInt32LE(at);
    case 'u64': return buf.readBigUInt64LE(at);
    case 's64': return buf.readBigInt64LE(at);
  }
}

function readField(buf: Buffer, at: number, type: FieldType): unknown {
  if (type.kind === 'array') {
    const out: (number | bigint)[] = [];
    for (let i = 0; i < type.count; i++) out.push(readScalar(buf, at + i * type.element.size, type.element));
    return out;
  }
  return readScalar(buf, at, type);
}
