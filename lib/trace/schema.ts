/**
 * The trace file format: JSON Lines, one object per line. The first line is the header
 * (`{"schema":"node-vfio-trace","version":1,...}`); every other line is one call at the Kernel
 * boundary. A reader refuses a version it does not know instead of guessing (see trace-file.ts).
 *
 * Values that differ between runs are written symbolically so that replay can relate them:
 * fds stay numbers but are related through the `open`/`eventfd`/… that returned them, mappings
 * get ids (`m0`, `m1`, …) and a pointer into one is written `m3+0x10`, physical addresses keep
 * their frame (related by first appearance) and page offset.
 */

/**
 * The header's `schema`: what marks a file as a node-vfio trace.
 *
 * @category Tracing
 */
export const TRACE_SCHEMA = 'node-vfio-trace';
/**
 * The schema version this node-vfio writes, and the newest it reads. Since 2, the answer (`out`) of an ioctl with a struct lists only the fields the kernel changed; the
 * others are as in `args`. A version 1 trace (every field in `out`) reads the same way.
 *
 * @category Tracing
 */
export const TRACE_VERSION = 2;

/**
 * A decoded value: u64 fields are hex strings ("0x1000"), pointers into a mapping "m2+0x0".
 *
 * @category Tracing
 */
export type TraceField = string | number | boolean | null | readonly TraceField[] | { readonly [key: string]: TraceField };
/**
 * Named fields of a record (a struct decoded, or a call's arguments).
 *
 * @category Tracing
 */
export type TraceFields = { readonly [key: string]: TraceField };

/** A field as text: scalars as themselves, arrays and objects as JSON (never "[object Object]"). */
export function fieldText(v: TraceField | undefined): string {
  return v !== null && typeof v === 'object' ? JSON.stringify(v) : String(v);
}

/**
 * The first line of a trace: what was traced, and how.
 *
 * @category Tracing
 */
export interface TraceHeader {
  /** Always TRACE_SCHEMA. */
  readonly schema: typeof TRACE_SCHEMA;
  /** The schema version the trace was written in (TRACE_VERSION). */
  readonly version: number;
  /** Kernel.description of the traced kernel. */
  readonly kernel: string;
  /** Kernel.kind of the traced kernel: the real one, or the model. */
  readonly kind: 'native' | 'model';
  /** Page size of the traced kernel (physical addresses are related per page). */
  readonly pageSize: number;
  /** Largest number of buffer bytes kept per call (pread/pwrite data, sysfs contents). */
  readonly dataCap: number;
  /** Whether MMIO accesses were recorded (TraceOptions.mmio). */
  readonly mmio: boolean;
  /** ISO time the trace started. */
  readonly started: string;
}

/**
 * Which Kernel call a record is (`memory`: bytes the program wrote into DMA memory before an MMIO store).
 *
 * @category Tracing
 */
export type TraceCall =
  | 'open'
  | 'close'
  | 'ioctl'
  | 'pread'
  | 'pwrite'
  | 'mmap'
  | 'munmap'
  | 'mlock'
  | 'mmio-read'
  | 'mmio-write'
  | 'memfd'
  | 'ftruncate'
  | 'eventfd'
  | 'eventfd-read'
  | 'eventfd-write'
  | 'wait'
  | 'memory'
  | 'read-file'
  | 'write-file'
  | 'readdir'
  | 'readlink'
  | 'exists'
  | 'capabilities'
  | 'memlock-limit';

/**
 * One call at the Kernel boundary: every line after the header.
 *
 * @category Tracing
 */
export interface TraceRecord {
  /** Call index, from 0. */
  readonly i: number;
  /** Microseconds since the trace started, when the call returned. */
  readonly t: number;
  /** Which call. */
  readonly call: TraceCall;
  /** The fd the call was made on, as the traced kernel numbered it. */
  readonly fd?: number;
  /** The path of open, sysfs and file calls. */
  readonly path?: string;
  /** ioctl: request name (resolved with the kind of file the fd is) and number. */
  readonly req?: string;
  /** The ioctl request number. */
  readonly nr?: number;
  /** Call arguments (decoded struct fields for an ioctl; offsets, lengths, flags otherwise). */
  readonly args?: TraceFields;
  /**
   * What the kernel wrote back (decoded struct fields, bytes read, values loaded). For an ioctl
   * with a struct, only the fields it changed (since version 2): the others are as in `args`.
   */
  readonly out?: TraceFields;
  /** Return value (numbers, hex strings for 64-bit values, mapping ids). */
  readonly ret?: TraceField;
  /** errno name when the call failed. */
  readonly err?: string;
}

/** Bytes as hex, cut at `cap`: `{hex, length}` where length is the full size. */
export function bytesField(bytes: Uint8Array, cap: number): TraceFields {
  const kept = bytes.subarray(0, Math.min(cap, bytes.length));
  return { length: bytes.length, hex: Buffer.from(kept.buffer, kept.byteOffset, kept.byteLength).toString('hex') };
}

export function hex(value: bigint | number): string {
  return `0x${value.toString(16)}`;
}
