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

  /**
   * Range-checks a value for a scalar field exactly as `encode` does (the same RangeError or
   * TypeError naming the struct and field), for code that stores through a StructMemory view,
   * which wraps instead of checking.
   */
  check<K extends keyof S & string>(field: K, value: Decoded<S[K]>): void {
    const f = this.field(field);
    if (f.type.kind === 'array') throw new TypeError(`${this.name}.${field} is an array; check its elements one by one`);
    if (f.type.kind === 'u64' || f.type.kind === 's64') checkRange(f.type.kind, value, this.name, field);
    else checkNumber(f.type.kind, value, this.name, field);
  }

  /**
   * Index of a u32 field in a Uint32Array over the struct (StructMemory.u32): its offset in
   * 4-byte words, exact because fields are naturally aligned.
   */
  slot32(field: keyof S & string): number {
    return this.slot(field, 'u32');
  }

  /** Index of a u64 field in a BigUint64Array over the struct (StructMemory.u64). */
  slot64(field: keyof S & string): number {
    return this.slot(field, 'u64');
  }

  private slot(field: string, kind: 'u32' | 'u64'): number {
    const f = this.field(field);
    if (f.type.kind !== kind) throw new TypeError(`${this.name}.${field} is ${f.type.kind}, not ${kind}`);
    return f.offset / f.type.size;
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

/**
 * Reusable memory for one struct, for ioctls issued on a hot path (a physical-address lookup per
 * DMA descriptor, say). Encoding into a fresh Buffer costs an allocation per call, and a small
 * fresh Buffer lives on the V8 heap, so the addon has to move it off-heap before it can hand the
 * kernel a pointer; Buffer's 64-bit accessors split every bigint into halves. Here the bytes sit
 * in one ArrayBuffer (off-heap, 8-byte aligned) that is filled and read again and again through
 * u32 and u64 views, at slots looked up once by field name (StructType.slot32/slot64). The views are native-endian, which is
 * what the kernel reads; the ABIs this codec describes (x86-64, aarch64) are little-endian, as
 * the rest of the codec assumes.
 *
 * Stores through the views do not range-check (a u64 view wraps modulo 2^64), so callers check
 * values that come from their own callers and may skip values that are valid by construction
 * (an object id the kernel handed out, a struct's own size).
 */
export class StructMemory<S extends Record<string, FieldType>> {
  /** The struct's bytes; `size` long, at least sizeof(struct). */
  readonly bytes: Uint8Array;
  readonly u32: Uint32Array;
  readonly u64: BigUint64Array;

  constructor(readonly type: StructType<S>, size: number = type.size) {
    if (!Number.isInteger(size) || size < type.size) {
      throw new RangeError(`struct ${type.name} needs at least ${type.size} bytes, got ${size}`);
    }
    const memory = new ArrayBuffer(alignUp(size, 8));
    this.bytes = new Uint8Array(memory, 0, size);
    if (memory.byteLength === size) Object.defineProperty(this.bytes, 'wholeBuffer', { value: memory });
    this.u32 = new Uint32Array(memory);
    this.u64 = new BigUint64Array(memory);
  }
}

/**
 * The ArrayBuffer a byte view fills entirely, when the view was made to say so (StructMemory's
 * bytes do, as a hidden property); undefined otherwise. `view.buffer` would answer too, but V8
 * makes every read of that getter a runtime call, too slow for a per-ioctl check; a kernel that
 * would rather hand over the ArrayBuffer (NativeKernel: the addon reads one with its cheapest
 * N-API call) asks here.
 */
export function wholeBufferOf(view: Uint8Array): ArrayBuffer | undefined {
  return (view as Uint8Array & { readonly wholeBuffer?: ArrayBuffer }).wholeBuffer;
}

export function alignUp(n: number, a: number): number {
  return Math.ceil(n / a) * a;
}

/** A Buffer view over any Uint8Array without copying. */
export function toBuffer(b: Uint8Array): Buffer {
  return Buffer.isBuffer(b) ? b : Buffer.from(b.buffer, b.byteOffset, b.byteLength);
}

const NUMBER_RANGES: Record<'u8' | 'u16' | 'u32' | 's32', readonly [number, number]> = {
  u8: [0, 0xff], u16: [0, 0xffff], u32: [0, 0xffff_ffff], s32: [-(2 ** 31), 2 ** 31 - 1],
};

/** A number for a field narrower than 64 bits: checked without converting through bigint. */
function checkNumber(kind: 'u8' | 'u16' | 'u32' | 's32', v: unknown, structName: string, field: string): number {
  if (typeof v === 'number' && Number.isInteger(v)) {
    const [lo, hi] = NUMBER_RANGES[kind];
    if (v >= lo && v <= hi) return v;
  }
  // Anything unusual (a bigint, a fraction, out of range) gets the full check and its message.
  return Number(checkRange(kind, v, structName, field));
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
  switch (type.kind) {
    case 'u8': buf.writeUInt8(checkNumber('u8', v, s, f), at); break;
    case 'u16': buf.writeUInt16LE(checkNumber('u16', v, s, f), at); break;
    case 'u32': buf.writeUInt32LE(checkNumber('u32', v, s, f), at); break;
    case 's32': buf.writeInt32LE(checkNumber('s32', v, s, f), at); break;
    case 'u64': buf.writeBigUInt64LE(checkRange('u64', v, s, f), at); break;
    case 's64': buf.writeBigInt64LE(checkRange('s64', v, s, f), at); break;
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
