/**
 * One declarative description of C structs and one codec for them.
 *
 * A struct is written as an ordered list of named fields; offsets, padding and size follow the
 * x86-64 / aarch64 Linux ABI (natural alignment, `__aligned_u64`), so no code anywhere else does
 * offset arithmetic. Both kernels (native and model) and the typed API use these descriptions, so
 * the bytes the model decodes are exactly the bytes the real kernel would receive. The layout
 * stays plain data (`StructType.fields`: name, type, offset) for code that generates from it.
 *
 * Every access goes through accessors compiled once per struct (see `StructView`): a view of a
 * block of memory whose properties are the struct's fields, `cmd.iova` reading and
 * `cmd.length = n` writing the bytes in place. `encode`/`decode`/`get`/`set` are the same
 * accessors over a caller's buffer.
 *
 * u64/s64 fields are bigint, narrower fields are number. Every store range-checks its value and
 * throws a RangeError (or a TypeError, for a value of the wrong kind) naming the struct and field
 * instead of truncating.
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

/**
 * A struct in a block of memory, read and written field by field: each field is a property
 * (`view.iova`, `view.length = n`) whose accessors were compiled once for the struct, so an access
 * costs one DataView load or store (plus, for a store, a range check) and allocates nothing but
 * the bigint a u64 read returns. A view is not extensible: assigning a name that is not a field
 * throws a TypeError.
 *
 * The members that are not fields start with `$`, which no C identifier does.
 */
export type StructView<S extends Record<string, FieldType>> = { -readonly [K in keyof S]: Decoded<S[K]> } & {
  readonly $type: StructType<S>;
  /** The bytes the view reads and writes: at least sizeof(struct) of them. */
  readonly $bytes: Uint8Array;
  /** Zeroes the memory. */
  $clear(): void;
  /** Stores the given fields (range-checked, in field order); the others keep their value. */
  $assign(values: Partial<StructValue<S>>): void;
  /** Every field, as a plain object. */
  $read(): StructValue<S>;
  /**
   * Fills the struct with the first `length` bytes of `source` (at most sizeof) and zero above:
   * how a kernel takes in a caller's struct that may be shorter than its own.
   */
  $copyFrom(source: Uint8Array, length: number): void;
  /** Writes the first min(`length`, sizeof) bytes of the struct to `target`: a kernel's copy-out. */
  $copyTo(target: Uint8Array, length: number): void;
};

export const U64_MAX = (1n << 64n) - 1n;

export class StructType<S extends Record<string, FieldType>> {
  /** sizeof(struct), including tail padding. */
  readonly size: number;
  readonly align: number;
  readonly fields: readonly FieldLayout[];
  private readonly byName: Map<string, FieldLayout>;
  /** The constructor of this struct's views, compiled on first use. */
  private viewClass: ViewClass<S> | undefined;
  private scratch: StructView<S> | undefined;

  constructor(
    readonly name: string,
    spec: S,
  ) {
    let offset = 0;
    let align = 1;
    const fields: FieldLayout[] = [];
    for (const [fieldName, type] of Object.entries(spec)) {
      if (fieldName.startsWith('$')) throw new Error(`struct ${name}: field ${fieldName} would clash with a view's own members`);
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
   * A view of fresh zeroed memory of `size` bytes (default sizeof, never less), to be filled and
   * passed to ioctls again and again: the bytes sit alone in an 8-byte aligned ArrayBuffer, off
   * the V8 heap, so a kernel can take them without copying (see wholeBufferOf).
   */
  allocate(size: number = this.size): StructView<S> {
    if (!Number.isInteger(size) || size < this.size) {
      throw new RangeError(`struct ${this.name} needs at least ${this.size} bytes, got ${size}`);
    }
    const memory = new ArrayBuffer(alignUp(size, 8));
    const bytes = new Uint8Array(memory, 0, size);
    if (memory.byteLength === size) Object.defineProperty(bytes, 'wholeBuffer', { value: memory });
    return new (this.viewClass ??= compileView(this))(bytes);
  }

  /**
   * Packs `values` into a new zeroed buffer of sizeof bytes or into `into` at `offset`. Missing
   * fields are zero (in a new buffer) or left as they are. `into` may be shorter than the struct
   * (to test size rules); a field given a value must fit.
   */
  encode(values: Partial<StructValue<S>>, into?: Uint8Array, offset = 0): Buffer {
    const buf = into ? toBuffer(into) : Buffer.alloc(this.size);
    if (!into) offset = 0;
    const room = buf.length - offset;
    if (room < this.size) {
      this.refuseUnknown(values);
      for (const f of this.fields) {
        if ((values as Record<string, unknown>)[f.name] !== undefined && f.offset + f.type.size > room) {
          throw new RangeError(`${this.name}.${f.name} does not fit in a ${room}-byte buffer`);
        }
      }
    }
    // Through the scratch view: the caller's bytes in, the values over them, the bytes out.
    const window = buf.subarray(offset);
    const scratch = this.scratchView();
    scratch.$copyFrom(window, room);
    scratch.$assign(values);
    scratch.$copyTo(window, room);
    return buf;
  }

  /**
   * Unpacks the struct at `offset`. Fields past the end of a short buffer decode as zero, the way a
   * kernel treats a user struct shorter than its own (copy_struct_from_user zero-fills).
   */
  decode(buf: Uint8Array, offset = 0): StructValue<S> {
    const scratch = this.scratchView();
    scratch.$copyFrom(buf.subarray(Math.min(offset, buf.length)), buf.length - offset);
    return scratch.$read();
  }

  /** Reads one field (zero when a short buffer ends before it). */
  get<K extends keyof S & string>(buf: Uint8Array, field: K, offset = 0): Decoded<S[K]> {
    this.field(field);
    const scratch = this.scratchView();
    scratch.$copyFrom(buf.subarray(Math.min(offset, buf.length)), buf.length - offset);
    return scratch[field] as Decoded<S[K]>;
  }

  /** Writes one field, range-checked. */
  set<K extends keyof S & string>(buf: Uint8Array, field: K, value: Decoded<S[K]>, offset = 0): void {
    this.field(field);
    this.encode({ [field]: value } as unknown as Partial<StructValue<S>>, buf, offset);
  }

  /** Throws for a key of `values` that is not a field (a misspelt field would otherwise stay zero). */
  refuseUnknown(values: object): void {
    for (const key of Object.keys(values)) {
      if (!this.byName.has(key)) throw new TypeError(`struct ${this.name} has no field ${key}`);
    }
  }

  /**
   * The view encode/decode/get/set work through, one per struct: they copy a caller's bytes in,
   * use the accessors, and copy out, all before returning, so one view serves every call.
   */
  private scratchView(): StructView<S> {
    return (this.scratch ??= this.allocate());
  }
}

export function struct<S extends Record<string, FieldType>>(name: string, spec: S): StructType<S> {
  return new StructType(name, spec);
}

/**
 * The ArrayBuffer a byte view fills entirely, when the view was made to say so (the bytes of
 * `StructType.allocate` do, as a hidden property); undefined otherwise. `view.buffer` would answer
 * too, but V8 makes every read of that getter a runtime call, too slow for a per-ioctl check; a
 * kernel that would rather hand over the ArrayBuffer (NativeKernel: the addon reads one with its
 * cheapest N-API call) asks here.
 */
export function wholeBufferOf(view: Uint8Array): ArrayBuffer | undefined {
  return (view as Uint8Array & { readonly wholeBuffer?: ArrayBuffer }).wholeBuffer;
}

export function alignUp(n: number, a: number): number {
  return Math.ceil(n / a) * a;
}

/** A Buffer view over any Uint8Array without copying. */
function toBuffer(b: Uint8Array): Buffer {
  return Buffer.isBuffer(b) ? b : Buffer.from(b.buffer, b.byteOffset, b.byteLength);
}

// ---- the compiled accessors ---------------------------------------------------------------------

// Where a view keeps its typed arrays over the memory: symbols, so that no field name can hide
// them. Typed-array element access is what V8 compiles best (a bounds check and a load); DataView
// bigint accessors, by contrast, are calls in the Node versions this library supports. The
// elements are native-endian, which is what the kernel reads; the ABIs this codec describes
// (x86-64, aarch64) are little-endian, as the rest of the codec assumes.
const U16 = Symbol('u16 elements');
const U32 = Symbol('u32 elements');
const S32 = Symbol('s32 elements');
const U64 = Symbol('u64 elements');
const S64 = Symbol('s64 elements');

/** What every view has besides its fields. */
class ViewBase {
  declare readonly $type: StructType<Record<string, FieldType>>;
  readonly [U16]: Uint16Array;
  readonly [U32]: Uint32Array;
  readonly [S32]: Int32Array;
  readonly [U64]: BigUint64Array;
  readonly [S64]: BigInt64Array;

  /** `bytes` starts an ArrayBuffer whose length is a multiple of 8 (StructType.allocate). */
  constructor(readonly $bytes: Uint8Array) {
    const memory = $bytes.buffer;
    this[U16] = new Uint16Array(memory);
    this[U32] = new Uint32Array(memory);
    this[S32] = new Int32Array(memory);
    this[U64] = new BigUint64Array(memory);
    this[S64] = new BigInt64Array(memory);
  }

  $clear(): void {
    // The whole memory, a word at a time (its length is a multiple of 8).
    const words = this[U32];
    for (let i = 0; i < words.length; i++) words[i] = 0;
  }

  $assign(values: Record<string, unknown>): void {
    const type = this.$type;
    type.refuseUnknown(values);
    const self = this as unknown as Record<string, unknown>;
    for (const f of type.fields) {
      const v = values[f.name];
      if (v !== undefined) self[f.name] = v;
    }
  }

  $read(): Record<string, unknown> {
    const out: Record<string, unknown> = {};
    const self = this as unknown as Record<string, unknown>;
    for (const f of this.$type.fields) out[f.name] = self[f.name];
    return out;
  }

  // Byte loops rather than `set(subarray(...))`: a struct is tens of bytes, and the loop beats
  // allocating a subarray per call.
  $copyFrom(source: Uint8Array, length: number): void {
    const bytes = this.$bytes;
    const size = this.$type.size;
    const n = Math.min(length, size, source.length);
    let i = 0;
    for (; i < n; i++) bytes[i] = source[i]!;
    for (; i < size; i++) bytes[i] = 0;
  }

  $copyTo(target: Uint8Array, length: number): void {
    const bytes = this.$bytes;
    const n = Math.min(length, this.$type.size, target.length);
    for (let i = 0; i < n; i++) target[i] = bytes[i]!;
  }
}

type ViewClass<S extends Record<string, FieldType>> = new (bytes: Uint8Array) => StructView<S>;

/**
 * The view class of one struct: a subclass of ViewBase with a getter and a setter per field on
 * its prototype. Each accessor is a closure over its field's element index, so all views of a
 * struct share one hidden class and a field access at a call site is monomorphic (V8 inlines it).
 */
function compileView<S extends Record<string, FieldType>>(type: StructType<S>): ViewClass<S> {
  class View extends ViewBase {
    constructor(bytes: Uint8Array) {
      super(bytes);
      Object.preventExtensions(this);
    }
  }
  Object.defineProperty(View.prototype, '$type', { value: type });
  for (const f of type.fields) {
    Object.defineProperty(View.prototype, f.name, { ...accessorsOf(type.name, f), enumerable: true });
  }
  return View as unknown as ViewClass<S>;
}

interface Accessors {
  get(this: ViewBase): unknown;
  set(this: ViewBase, value: unknown): void;
}

function accessorsOf(structName: string, f: FieldLayout): Accessors {
  if (f.type.kind !== 'array') return scalarAccessors(f.type.kind, f.offset, structName, f.name);
  const { element, count } = f.type;
  const elements = Array.from({ length: count }, (_, i) =>
    scalarAccessors(element.kind, f.offset + i * element.size, structName, `${f.name}[${i}]`),
  );
  const zero = element.size === 8 ? 0n : 0;
  return {
    get() {
      return elements.map((e) => e.get.call(this));
    },
    set(value) {
      if (!Array.isArray(value)) throw new TypeError(`${structName}.${f.name}: expected an array`);
      if (value.length > count) throw new RangeError(`${structName}.${f.name}: ${value.length} elements do not fit in ${count}`);
      elements.forEach((e, i) => e.set.call(this, i < value.length ? value[i] : zero));
    },
  };
}

/**
 * The accessors of one scalar at byte offset `at` (naturally aligned, so an exact element index
 * of its width). A store takes the fast path when the value is already of the right kind and range
 * (one comparison, no allocation); anything else goes through the full check, which converts what
 * it can (a safe-integer number for a u64, a bigint in range for a u32) and throws for the rest.
 */
function scalarAccessors(kind: ScalarType<number | bigint>['kind'], at: number, s: string, f: string): Accessors {
  switch (kind) {
    case 'u8':
      return {
        get() {
          return this.$bytes[at];
        },
        set(v) {
          this.$bytes[at] = typeof v === 'number' && (v & 0xff) === v ? v : checkNumber('u8', v, s, f);
        },
      };
    case 'u16': {
      const i = at / 2;
      return {
        get() {
          return this[U16][i];
        },
        set(v) {
          this[U16][i] = typeof v === 'number' && (v & 0xffff) === v ? v : checkNumber('u16', v, s, f);
        },
      };
    }
    case 'u32': {
      const i = at / 4;
      return {
        get() {
          return this[U32][i];
        },
        set(v) {
          this[U32][i] = typeof v === 'number' && v >>> 0 === v ? v : checkNumber('u32', v, s, f);
        },
      };
    }
    case 's32': {
      const i = at / 4;
      return {
        get() {
          return this[S32][i];
        },
        set(v) {
          this[S32][i] = typeof v === 'number' && (v | 0) === v ? v : checkNumber('s32', v, s, f);
        },
      };
    }
    case 'u64': {
      const i = at / 8;
      return {
        get() {
          return this[U64][i];
        },
        set(v) {
          this[U64][i] = typeof v === 'bigint' && BigInt.asUintN(64, v) === v ? v : checkRange('u64', v, s, f);
        },
      };
    }
    case 's64': {
      const i = at / 8;
      return {
        get() {
          return this[S64][i];
        },
        set(v) {
          this[S64][i] = typeof v === 'bigint' && BigInt.asIntN(64, v) === v ? v : checkRange('s64', v, s, f);
        },
      };
    }
  }
}

// ---- range checks -------------------------------------------------------------------------------

const RANGES: Record<ScalarType<number | bigint>['kind'], [bigint, bigint]> = {
  u8: [0n, 0xffn],
  u16: [0n, 0xffffn],
  u32: [0n, 0xffff_ffffn],
  s32: [-(1n << 31n), (1n << 31n) - 1n],
  u64: [0n, U64_MAX],
  s64: [-(1n << 63n), (1n << 63n) - 1n],
};

/** A value for a field narrower than 64 bits, as the number to store. */
function checkNumber(kind: 'u8' | 'u16' | 'u32' | 's32', v: unknown, structName: string, field: string): number {
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
