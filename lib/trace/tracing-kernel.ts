/**
 * A `Kernel` that records every call it forwards to another kernel (native or model): open/close,
 * each ioctl with its request name and decoded struct in and out, pread/pwrite, mmap/munmap, MMIO
 * loads and stores, eventfds and waits, sysfs reads and writes, with timestamps and errnos.
 *
 * MMIO tracing is opt-in: a native BAR mapping normally hands its bytes to lib/vfio/mmio.ts, whose
 * typed-array accesses never cross the boundary. With `mmio: true` the tracer hands out the
 * mapping without its bytes (`buffer: null`), which is the documented signal for Mmio to go
 * through `kernel.mmioRead`/`mmioWrite`, so every access is seen at its exact width.
 */
import type { SocketCalls } from '../sys/socket-calls';
// The module's binding: the global `performance` is a lazy accessor in Node 20, run on every use (it showed in the poll loop's profile).
import { performance } from 'node:perf_hooks';
import type { Capabilities, Kernel, Mapping, MmapPlacement, MmioWidth } from '../sys/kernel';
import { VfioError } from '../sys/errors';
import type { FileKind } from '../uapi/requests';
import {
  decodeStruct,
  isPointerField,
  requestLayout,
  requestName,
  u32At,
  writeStructJson,
  type FieldCodec,
  type PointerWriter,
} from './ioctl-layouts';
import { LineEncoder } from './line-encoder';
import { VFIO_IRQ_SET_DATA_EVENTFD } from '../uapi/vfio';
import {
  bytesField,
  hex,
  TRACE_SCHEMA,
  TRACE_VERSION,
  type TraceCall,
  type TraceField,
  type TraceFields,
  type TraceRecord,
  fieldText,
} from './schema';
import { JsonlTraceWriter, type TraceSink } from './trace-writer';

/**
 * What a tracing kernel records: MMIO accesses or not, and how many bytes of each buffer.
 *
 * @category Tracing
 */
export interface TraceOptions {
  /** Record every MMIO access (forces BAR accesses through the kernel). Default false. */
  readonly mmio?: boolean;
  /** Most bytes of any buffer (pread/pwrite data, file contents) kept per call. Default 4096. */
  readonly dataCap?: number;
}

/**
 * Bytes of a buffer a trace keeps per call unless told otherwise (TraceOptions.dataCap).
 *
 * @category Tracing
 */
export const DEFAULT_DATA_CAP = 4096;

interface TracedMapping {
  readonly id: string;
  /** For memory mapped for DMA: its bytes as last recorded, to record what the program changed. */
  shadow?: Uint8Array;
  readonly inner: Mapping;
  readonly start: bigint;
  readonly end: bigint;
  /** start and end as numbers, for the hot path's search (user addresses are below 2^53). */
  readonly startNumber: number;
  readonly endNumber: number;
}

/** The kind of file behind a path, so a request number gets its one name. */
export function fileKindOf(path: string): FileKind | undefined {
  if (path === '/dev/iommu') return 'iommufd';
  if (path === '/dev/vfio/vfio') return 'vfio-container';
  if (path.startsWith('/dev/vfio/devices/')) return 'vfio-device';
  if (/^\/dev\/vfio\/(noiommu-)?\d+$/.test(path)) return 'vfio-group';
  return undefined;
}

function errName(e: unknown): string {
  if (e instanceof VfioError) return e.code;
  if (e instanceof Error) return e.name;
  return 'throw';
}

const quotedNames = new Map<string, string>();

/** A request name as JSON, once per name (names are ASCII: uapi names, or `ioctl 0x…`). */
function quotedName(req: string): string {
  let q = quotedNames.get(req);
  if (q === undefined) {
    q = JSON.stringify(req);
    if (!/^[\x20-\x7e]*$/.test(q))
      q = JSON.stringify(req).replace(/[^\x20-\x7e]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
    quotedNames.set(req, q);
  }
  return q;
}

function sameTail(a: Uint8Array, b: Uint8Array, from: number, to: number): boolean {
  for (let k = from; k < to; k++) if (a[k] !== b[k]) return false;
  return true;
}

/**
 * A Kernel that forwards every call to `inner` and records it, with its result or errno, to a TraceSink.
 *
 * @category Tracing
 */
export class TracingKernel implements Kernel {
  readonly kind: 'native' | 'model';
  readonly description: string;
  readonly pageSize: number;
  private index = 0;
  // performance.now(): a double, far cheaper per call than hrtime.bigint(), at sub-microsecond resolution.
  private readonly started = performance.now();
  private readonly kinds = new Map<number, FileKind>();
  private readonly mappings = new Map<Mapping, TracedMapping>();
  /** The values of `mappings`, as an array the hot path can search without an iterator. */
  private live: TracedMapping[] = [];
  private nextMapping = 0;
  private readonly traceMmio: boolean;
  private readonly dataCap: number;
  private readonly codec: FieldCodec = {
    encode: (field, value) => (typeof value === 'bigint' ? (isPointerField(field) ? this.symbolic(value) : hex(value)) : value),
    decode: () => {
      throw new Error('a tracing kernel only encodes');
    },
  };

  constructor(
    /** The kernel every call is forwarded to. */
    readonly inner: Kernel,
    private readonly sink: TraceSink,
    options: TraceOptions = {},
  ) {
    this.direct = sink instanceof JsonlTraceWriter ? sink : null;
    this.line = this.direct ? this.direct.lines : new LineEncoder();
    this.kind = inner.kind;
    this.description = inner.description;
    this.pageSize = inner.pageSize;
    this.traceMmio = options.mmio ?? false;
    this.dataCap = options.dataCap ?? DEFAULT_DATA_CAP;
    if (!Number.isInteger(this.dataCap) || this.dataCap < 0)
      throw new RangeError(`dataCap must be a non-negative integer, got ${options.dataCap}`);
    sink.header({
      schema: TRACE_SCHEMA,
      version: TRACE_VERSION,
      kernel: inner.description,
      kind: inner.kind,
      pageSize: inner.pageSize,
      dataCap: this.dataCap,
      mmio: this.traceMmio,
      started: new Date().toISOString(),
    });
  }

  /** Writes out the records still buffered and closes the trace file. */
  endTrace(): void {
    this.sink.end();
  }

  /** `m3+0x10` for an address inside a live mapping, plain hex otherwise. */
  private symbolic(address: bigint): string {
    for (const m of this.mappings.values()) {
      if (address >= m.start && address < m.end) return `${m.id}+${hex(address - m.start)}`;
    }
    return hex(address);
  }

  private emit(call: TraceCall, fields: Omit<TraceRecord, 'i' | 't' | 'call'>): void {
    const t = Math.round((performance.now() - this.started) * 1000);
    this.sink.record({ i: this.index++, t, call, ...fields });
  }

  /**
   * Where the hot paths write their records (see line-encoder.ts): straight into a file writer's
   * chunk, or into a line of their own that is parsed for any other sink.
   */
  private readonly line: LineEncoder;
  private readonly direct: JsonlTraceWriter | null;
  /** The bytes an ioctl was passed, kept until it returns (the kernel writes its answer over them). */
  private scratch = new Uint8Array(256);

  /** Starts a hot-path record: `{"i":…,"t":…,"call":"…"`. */
  private startLine(call: string): LineEncoder {
    const t = Math.round((performance.now() - this.started) * 1000);
    const enc = this.line;
    if (!this.direct) enc.reset();
    enc.ascii('{"i":');
    enc.int(this.index++);
    enc.ascii(',"t":');
    enc.int(t);
    enc.ascii(',"call":"');
    enc.ascii(call);
    enc.byte(0x22);
    return enc;
  }

  private endLine(): void {
    const enc = this.line;
    enc.byte(0x7d);
    if (this.direct) this.direct.lineEnded();
    else this.sink.record(JSON.parse(enc.text()) as TraceRecord);
  }

  /** A process address as the trace writes it (mapping + offset, else hex), quoted. */
  private readonly pointerJson: PointerWriter = (enc, lo, hi) => {
    enc.byte(0x22);
    if (hi < 0x20_0000 && (lo !== 0 || hi !== 0)) {
      const address = hi * 0x1_0000_0000 + lo;
      const live = this.live;
      for (let k = 0; k < live.length; k++) {
        const m = live[k]!;
        if (address >= m.startNumber && address < m.endNumber) {
          const d = address - m.startNumber;
          enc.ascii(m.id);
          enc.byte(0x2b);
          enc.hex64(d % 0x1_0000_0000, Math.floor(d / 0x1_0000_0000));
          enc.byte(0x22);
          return;
        }
      }
    }
    enc.hex64(lo, hi);
    enc.byte(0x22);
  };

  /**
   * A struct argument as structArgs records it, written into the line: the first `length` bytes
   * of `arg`. With `before` (an answer: the bytes the call was passed) only what the kernel
   * changed, the rest being as in args (TRACE_VERSION 2).
   */
  private structJson(
    req: string,
    layout: NonNullable<ReturnType<typeof requestLayout>>,
    arg: Uint8Array,
    length: number,
    before?: Uint8Array,
  ): void {
    const enc = this.line;
    let any = writeStructJson(enc, layout, arg, length, this.pointerJson, before);
    const size = layout.struct.size;
    if (length > size) {
      const tail = arg.subarray(size, length);
      const eventfds = req === 'VFIO_DEVICE_SET_IRQS' && length >= 8 && (u32At(arg, 4) & VFIO_IRQ_SET_DATA_EVENTFD) !== 0;
      if (req === 'VFIO_DEVICE_PCI_HOT_RESET' || eventfds) {
        // fds the caller passed: an answer never changes them.
        if (!before) {
          enc.ascii(any ? ',"$fds":[' : '"$fds":[');
          for (let k = 0; k + 4 <= tail.length; k += 4) {
            if (k) enc.byte(0x2c);
            enc.int(u32At(tail, k) | 0);
          }
          enc.byte(0x5d);
          any = true;
        }
      } else if (!before || !sameTail(arg, before, size, length)) {
        enc.ascii(any ? ',' : '');
        enc.ascii(`"$tail":${JSON.stringify(bytesField(tail, this.dataCap))}`);
        any = true;
      }
    }
    if (!before) {
      enc.ascii(any ? ',"$size":' : '"$size":');
      enc.int(length);
    }
    enc.byte(0x7d);
  }

  /** Runs `fn`, records it with `describe(result)`, and rethrows a failure after recording its errno. */
  private traced<T>(
    call: TraceCall,
    base: Omit<TraceRecord, 'i' | 't' | 'call' | 'ret' | 'err' | 'out'>,
    fn: () => T,
    describe: (r: T) => { ret?: TraceField; out?: TraceFields },
  ): T {
    let result: T;
    try {
      result = fn();
    } catch (e) {
      this.emit(call, { ...base, err: errName(e) });
      throw e;
    }
    this.emit(call, { ...base, ...describe(result) });
    return result;
  }

  private unwrap(mapping: Mapping): TracedMapping {
    const m = this.mappings.get(mapping);
    if (!m) throw new TypeError('mapping was not made by this tracing kernel (or is already unmapped)');
    return m;
  }

  open(path: string, flags: number): number {
    return this.traced(
      'open',
      { path, args: { flags: hex(flags) } },
      () => this.inner.open(path, flags),
      (fd) => {
        const kind = fileKindOf(path);
        if (kind) this.kinds.set(fd, kind);
        return { ret: fd };
      },
    );
  }

  close(fd: number): void {
    this.traced(
      'close',
      { fd },
      () => this.inner.close(fd),
      () => ({}),
    );
    this.kinds.delete(fd);
  }

  ioctl(fd: number, request: number, arg: Uint8Array | number | null): number {
    const kind = this.kinds.get(fd);
    const req = requestName(request, kind);
    const layout = requestLayout(req);
    if (layout && arg instanceof Uint8Array) return this.structIoctl(fd, request, arg, req, layout);
    let args: TraceFields;
    if (arg === null) args = {};
    else if (typeof arg === 'number') args = { value: arg };
    else if (req === 'VFIO_GROUP_SET_CONTAINER' && arg.length === 4)
      args = { container_fd: new DataView(arg.buffer, arg.byteOffset, 4).getInt32(0, true) };
    else if (req === 'VFIO_GROUP_GET_DEVICE_FD') args = { name: Buffer.from(arg).toString('latin1').replace(/\0.*$/s, '') };
    else args = this.structArgs(req, layout, arg);
    return this.traced(
      'ioctl',
      { fd, req, nr: request, args },
      () => this.inner.ioctl(fd, request, arg),
      (ret) => {
        if (req === 'VFIO_GROUP_GET_DEVICE_FD') this.kinds.set(ret, 'vfio-device');
        if ((req === 'IOMMU_IOAS_MAP' || req === 'VFIO_IOMMU_MAP_DMA') && arg instanceof Uint8Array)
          this.watchDma(this.pointerAddress(args.user_va ?? args.vaddr));
        if (!(arg instanceof Uint8Array) || req === 'VFIO_GROUP_GET_DEVICE_FD' || req === 'VFIO_GROUP_SET_CONTAINER') return { ret };
        return { ret, out: this.structArgs(req, layout, arg) };
      },
    );
  }

  /** An ioctl with a uapi struct: the common case, written straight into a line (see line-encoder.ts). */
  private structIoctl(
    fd: number,
    request: number,
    arg: Uint8Array,
    req: string,
    layout: NonNullable<ReturnType<typeof requestLayout>>,
  ): number {
    if (this.scratch.length < arg.length) this.scratch = new Uint8Array(arg.length * 2);
    const before = this.scratch;
    // A loop: structs are tens of bytes, less than what set() costs to start.
    for (let k = 0; k < arg.length; k++) before[k] = arg[k]!;
    let ret: number;
    try {
      ret = this.inner.ioctl(fd, request, arg);
    } catch (e) {
      this.ioctlHead(fd, request, req, layout, before, arg.length);
      this.line.ascii(',"err":');
      this.line.string(errName(e));
      this.endLine();
      throw e;
    }
    if ((req === 'IOMMU_IOAS_MAP' || req === 'VFIO_IOMMU_MAP_DMA') && this.live.some((m) => !m.shadow))
      this.watchDma(this.mappedAddress(layout, arg));
    const enc = this.ioctlHead(fd, request, req, layout, before, arg.length);
    enc.ascii(',"ret":');
    enc.int(ret);
    enc.ascii(',"out":');
    this.structJson(req, layout, arg, arg.length, before);
    this.endLine();
    return ret;
  }

  private ioctlHead(
    fd: number,
    request: number,
    req: string,
    layout: NonNullable<ReturnType<typeof requestLayout>>,
    arg: Uint8Array,
    length: number,
  ): LineEncoder {
    const enc = this.startLine('ioctl');
    enc.ascii(',"fd":');
    enc.int(fd);
    enc.ascii(',"req":');
    enc.ascii(quotedName(req));
    enc.ascii(',"nr":');
    enc.int(request);
    enc.ascii(',"args":');
    this.structJson(req, layout, arg, length);
    return enc;
  }

  /** The DMA memory an IOAS_MAP / MAP_DMA names. */
  private mappedAddress(layout: NonNullable<ReturnType<typeof requestLayout>>, arg: Uint8Array): bigint | undefined {
    const f = layout.struct.fields.find((x) => x.name === 'user_va' || x.name === 'vaddr');
    if (!f || f.offset + 8 > arg.length) return undefined;
    return BigInt(u32At(arg, f.offset)) | (BigInt(u32At(arg, f.offset + 4)) << 32n);
  }

  private structArgs(req: string, layout: ReturnType<typeof requestLayout>, arg: Uint8Array): TraceFields {
    if (!layout) return { length: arg.length, bytes: bytesField(arg, this.dataCap) };
    const fields: Record<string, TraceField> = { ...decodeStruct(layout, arg, this.codec) };
    if (arg.length > layout.struct.size) {
      const tail = arg.subarray(layout.struct.size);
      // SET_IRQS with eventfds and PCI_HOT_RESET carry fds after the header: kept as numbers so replay relates them.
      if (
        req === 'VFIO_DEVICE_PCI_HOT_RESET' ||
        (req === 'VFIO_DEVICE_SET_IRQS' && typeof fields.flags === 'string' && fields.flags.includes('DATA_EVENTFD'))
      ) {
        const dv = new DataView(tail.buffer, tail.byteOffset, tail.byteLength);
        const fds: number[] = [];
        for (let k = 0; k + 4 <= tail.length; k += 4) fds.push(dv.getInt32(k, true));
        fields.$fds = fds;
      } else {
        fields.$tail = bytesField(tail, this.dataCap);
      }
    }
    fields.$size = arg.length;
    return fields;
  }

  /** A pointer field as recorded (`m3+0x10`) back to the address, for watchDma. */
  private pointerAddress(v: TraceField | undefined): bigint | undefined {
    const match = /^(m\d+)\+0x([0-9a-f]+)$/.exec(fieldText(v));
    if (!match) return undefined;
    for (const m of this.mappings.values()) if (m.id === match[1]) return m.start + BigInt(`0x${match[2]}`);
    return undefined;
  }

  /** Memory handed to a device: from now on what the program writes into it is recorded before each MMIO store. */
  private watchDma(address: bigint | undefined): void {
    if (address === undefined) return;
    for (const m of this.mappings.values()) {
      if (address < m.start || address >= m.end || m.shadow || !m.inner.buffer) continue;
      m.shadow = new Uint8Array(m.inner.buffer.byteLength);
      this.syncMemory();
    }
  }

  /**
   * Records the bytes of DMA memory that changed since the last record, as runs of 8-byte words:
   * commands and descriptors a driver writes before ringing a doorbell, which replay must
   * write too. Bounded by dataCap per run, like every other buffer.
   */
  private syncMemory(): void {
    for (const m of this.mappings.values()) {
      const shadow = m.shadow;
      const buffer = m.inner.buffer;
      if (!shadow || !buffer || buffer.byteLength !== shadow.length) continue;
      const now = new Uint8Array(buffer);
      const writes: TraceField[] = [];
      let kept = 0;
      let omitted = 0;
      let k = 0;
      while (k < now.length) {
        if (now[k] === shadow[k]) {
          k++;
          continue;
        }
        // A run of changed 8-byte words, ending at the first word left as it was.
        const start = k & ~7;
        let end = start;
        while (end < now.length) {
          let same = true;
          for (let b = end; b < end + 8 && b < now.length; b++)
            if (now[b] !== shadow[b]) {
              same = false;
              break;
            }
          if (same) break;
          end = Math.min(end + 8, now.length);
        }
        // At most dataCap bytes per record: the rest is counted, so replay can say it cannot write them.
        const keep = Math.min(end - start, this.dataCap - kept);
        if (keep > 0) writes.push([hex(start), Buffer.from(now.subarray(start, start + keep)).toString('hex')]);
        kept += keep;
        omitted += end - start - keep;
        shadow.set(now.subarray(start, end), start);
        k = end;
      }
      if (writes.length || omitted) this.emit('memory', { args: omitted ? { map: m.id, writes, omitted } : { map: m.id, writes } });
    }
  }

  pread(fd: number, into: Uint8Array, offset: bigint): number {
    return this.traced(
      'pread',
      { fd, args: { offset: hex(offset), length: into.length } },
      () => this.inner.pread(fd, into, offset),
      (n) => ({ ret: n, out: { data: bytesField(into.subarray(0, n), this.dataCap) } }),
    );
  }

  pwrite(fd: number, from: Uint8Array, offset: bigint): number {
    return this.traced(
      'pwrite',
      { fd, args: { offset: hex(offset), data: bytesField(from, this.dataCap) } },
      () => this.inner.pwrite(fd, from, offset),
      (n) => ({ ret: n }),
    );
  }

  mmap(fd: number, length: bigint, prot: number, flags: number, offset: bigint, placement?: MmapPlacement): Mapping {
    const args = {
      length: hex(length),
      prot,
      flags: hex(flags),
      offset: hex(offset),
      ...(placement ? { align: hex(placement.align), skew: hex(placement.skew) } : {}),
    };
    let outer: Mapping | undefined;
    this.traced(
      'mmap',
      { fd, args },
      () => this.inner.mmap(fd, length, prot, flags, offset, placement),
      (inner) => {
        const id = `m${this.nextMapping++}`;
        const bar = this.kinds.get(fd) === 'vfio-device';
        const hideBytes = bar && this.traceMmio;
        const made: Mapping = {
          address: inner.address,
          length: inner.length,
          prot: inner.prot,
          // A getter: the inner buffer is detached at munmap, and this must show it.
          get buffer(): ArrayBuffer | null {
            return hideBytes ? null : inner.buffer;
          },
        };
        const end = inner.address + inner.length;
        this.mappings.set(made, { id, inner, start: inner.address, end, startNumber: Number(inner.address), endNumber: Number(end) });
        this.live = [...this.mappings.values()];
        outer = made;
        return { ret: id, out: { address: hex(inner.address), bar } };
      },
    );
    return outer!;
  }

  munmap(mapping: Mapping): void {
    const m = this.unwrap(mapping);
    this.traced(
      'munmap',
      { args: { map: m.id } },
      () => this.inner.munmap(m.inner),
      () => ({}),
    );
    this.mappings.delete(mapping);
    this.live = [...this.mappings.values()];
  }

  mlock(mapping: Mapping): void {
    const m = this.unwrap(mapping);
    this.traced(
      'mlock',
      { args: { map: m.id } },
      () => this.inner.mlock(m.inner),
      () => ({}),
    );
  }

  mmioRead(mapping: Mapping, offset: number, width: 8 | 16 | 32): number;
  mmioRead(mapping: Mapping, offset: number, width: 64): bigint;
  mmioRead(mapping: Mapping, offset: number, width: MmioWidth): number | bigint;
  mmioRead(mapping: Mapping, offset: number, width: MmioWidth): number | bigint {
    const m = this.unwrap(mapping);
    let v: number | bigint;
    try {
      v = this.inner.mmioRead(m.inner, offset, width);
    } catch (e) {
      this.mmioHead('mmio-read', m.id, offset, width);
      this.line.ascii('},"err":');
      this.line.string(errName(e));
      this.endLine();
      throw e;
    }
    const enc = this.mmioHead('mmio-read', m.id, offset, width);
    enc.ascii('},"ret":"');
    enc.hex(v);
    enc.byte(0x22);
    this.endLine();
    return v;
  }

  mmioWrite(mapping: Mapping, offset: number, width: MmioWidth, value: number | bigint): void {
    const m = this.unwrap(mapping);
    this.syncMemory();
    try {
      this.inner.mmioWrite(m.inner, offset, width, value);
    } catch (e) {
      this.mmioWriteHead(m.id, offset, width, value);
      this.line.ascii(',"err":');
      this.line.string(errName(e));
      this.endLine();
      throw e;
    }
    this.mmioWriteHead(m.id, offset, width, value);
    this.endLine();
  }

  private mmioHead(call: string, id: string, offset: number, width: number): LineEncoder {
    const enc = this.startLine(call);
    enc.ascii(',"args":{"map":"');
    enc.ascii(id);
    enc.ascii('","offset":"');
    enc.hex(offset);
    enc.ascii('","width":');
    enc.int(width);
    return enc;
  }

  private mmioWriteHead(id: string, offset: number, width: number, value: number | bigint): void {
    const enc = this.mmioHead('mmio-write', id, offset, width);
    enc.ascii(',"value":');
    if (typeof value === 'bigint' || typeof value === 'number') {
      enc.byte(0x22);
      enc.hex(value);
      enc.byte(0x22);
    } else enc.string(String(value));
    enc.byte(0x7d);
  }

  memfdCreate(name: string, flags: number): number {
    return this.traced(
      'memfd',
      { args: { name, flags: hex(flags) } },
      () => this.inner.memfdCreate(name, flags),
      (fd) => ({ ret: fd }),
    );
  }

  ftruncate(fd: number, length: bigint): void {
    this.traced(
      'ftruncate',
      { fd, args: { length: hex(length) } },
      () => this.inner.ftruncate(fd, length),
      () => ({}),
    );
  }

  eventfd(initval: number, flags: number): number {
    return this.traced(
      'eventfd',
      { args: { initval, flags: hex(flags) } },
      () => this.inner.eventfd(initval, flags),
      (fd) => ({ ret: fd }),
    );
  }

  eventfdRead(fd: number): bigint {
    return this.traced(
      'eventfd-read',
      { fd },
      () => this.inner.eventfdRead(fd),
      (v) => ({ ret: hex(v) }),
    );
  }

  eventfdWrite(fd: number, value: bigint): void {
    this.traced(
      'eventfd-write',
      { fd, args: { value: hex(value) } },
      () => this.inner.eventfdWrite(fd, value),
      () => ({}),
    );
  }

  async waitReadable(fd: number, signal?: AbortSignal): Promise<void> {
    try {
      await this.inner.waitReadable(fd, signal);
    } catch (e) {
      this.emit('wait', { fd, err: errName(e) });
      throw e;
    }
    this.emit('wait', { fd });
  }

  readFile(path: string): Buffer {
    return this.traced(
      'read-file',
      { path },
      () => this.inner.readFile(path),
      (b) => ({ out: { data: bytesField(b, this.dataCap) } }),
    );
  }

  writeFile(path: string, data: string | Uint8Array): void {
    const bytes = typeof data === 'string' ? Buffer.from(data) : data;
    this.traced(
      'write-file',
      { path, args: { data: bytesField(bytes, this.dataCap) } },
      () => this.inner.writeFile(path, data),
      () => ({}),
    );
  }

  readdir(path: string): string[] {
    return this.traced(
      'readdir',
      { path },
      () => this.inner.readdir(path),
      (names) => ({ ret: names }),
    );
  }

  readlink(path: string): string {
    return this.traced(
      'readlink',
      { path },
      () => this.inner.readlink(path),
      (target) => ({ ret: target }),
    );
  }

  exists(path: string): boolean {
    return this.traced(
      'exists',
      { path },
      () => this.inner.exists(path),
      (yes) => ({ ret: yes }),
    );
  }

  capabilities(): Capabilities {
    return this.traced(
      'capabilities',
      {},
      () => this.inner.capabilities(),
      (c) => ({ ret: { sysRawio: c.sysRawio, sysAdmin: c.sysAdmin, ipcLock: c.ipcLock } }),
    );
  }

  /**
   * The inner kernel's unix sockets, passed through untraced (the trace schema has no socket
   * records yet): a traced program can still pass fds.
   */
  get sockets(): SocketCalls | undefined {
    return this.inner.sockets;
  }

  memlockLimit(): bigint {
    return this.traced(
      'memlock-limit',
      {},
      () => this.inner.memlockLimit(),
      (v) => ({ ret: hex(v) }),
    );
  }
}

/**
 * Wraps `kernel` so every call is recorded to `sink`.
 *
 * @category Tracing
 */
export function traceKernel(kernel: Kernel, sink: TraceSink, options?: TraceOptions): TracingKernel {
  return new TracingKernel(kernel, sink, options);
}
