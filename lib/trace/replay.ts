/**
 * Re-runs a recorded session against a kernel (usually the model) and reports the first call
 * whose answer differs. What legitimately differs between runs is related, never compared
 * blindly nor ignored:
 * - fds: each recorded fd stands for the replay fd that the same open/eventfd/… returned;
 * - process addresses: a pointer recorded as `m3+0x10` is passed and checked as the replay's own
 *   mapping m3 plus 0x10;
 * - physical addresses (GET_PA, pagemap, a noiommu DMA address stored into a register): the page
 *   offset must be equal and frames must correspond one to one, in order of first appearance;
 * - timing: a polled register (a run of reads at one offset returning one value, then another)
 *   may take more or fewer reads, also where the program waited for an interrupt between them (a
 *   device that finished sooner here reads the later value at the earlier read); an eventfd may
 *   have counted several interrupts as one; an interrupt may arrive before or after the eventfd
 *   read that found it on the traced kernel (replay then waits for it, bounded, or counts it for
 *   the wait and read the trace has next).
 */
import type { Kernel, Mapping, MmioWidth } from '../sys/kernel';
import { VfioError } from '../sys/errors';
import {
  decodeStruct,
  encodeStruct,
  isFdField,
  isPhysicalField,
  isPointerField,
  requestLayout,
  scalarOf,
  type FieldCodec,
} from './ioctl-layouts';
import { bytesField, hex, type TraceField, type TraceFields, type TraceRecord, fieldText } from './schema';
import type { TraceFile } from './trace-file';
import { formatRecord } from './trace-listing';

/**
 * Bounds on how long replay waits for what the trace says happened.
 *
 * @category Tracing
 */
export interface ReplayOptions {
  /** How long a recorded wait may take on the replay kernel before it counts as a divergence. Default 5000 ms. */
  readonly waitTimeoutMs?: number;
  /** Most reads a recorded poll may take on the replay kernel. Default 100000. */
  readonly maxPollReads?: number;
  /**
   * The replay machine's device clock, in manual mode (`new ModelClock('manual')` given to
   * `createModelKernel`): replay then moves it to each record's timestamp before replaying it, so
   * the devices have done just what the real ones had done by then (a factorial finished before the
   * program read its status, a DMA still running). Without it the model's clock runs by itself.
   */
  readonly clock?: ReplayClock;
}

/**
 * What replay needs of a device clock: moving it forward (ModelClock in manual mode).
 *
 * @category Tracing
 */
export interface ReplayClock {
  /** Moves time forward by `microseconds`, running the device work that falls due. */
  advance(microseconds: number): void;
}

/**
 * The first recorded call whose answer on the replay kernel was not what the trace says.
 *
 * @category Tracing
 */
export interface Divergence {
  /** Index of the recorded call that diverged. */
  readonly index: number;
  /** The record of that call. */
  readonly recorded: TraceRecord;
  /** What came back on the replay kernel, in the trace's notation. */
  readonly replayed: string;
  /** What differs, in words. */
  readonly what: string;
  /** The calls before it, formatted, for context. */
  readonly context: readonly string[];
}

/**
 * How far replay got, and where it diverged.
 *
 * @category Tracing
 */
export interface ReplayResult {
  /** Recorded calls replayed (all of them when there is no divergence). */
  readonly replayed: number;
  /** The first divergence, or null for none. */
  readonly divergence: Divergence | null;
}

class Diverged extends Error {
  constructor(
    readonly what: string,
    readonly replayed: string,
  ) {
    super(what);
  }
}

interface Outcome {
  readonly ret?: TraceField;
  readonly err?: string;
}

const PAGEMAP_PFN_MASK = (1n << 55n) - 1n;

function errName(e: unknown): string {
  if (e instanceof VfioError) return e.code;
  if (e instanceof Error) return e.name;
  return 'throw';
}

function show(o: Outcome): string {
  return o.err ? `-1 ${o.err}` : o.ret === undefined ? 'ok' : JSON.stringify(o.ret);
}

function bigOf(v: TraceField | undefined, what: string): bigint {
  if (typeof v === 'number') return BigInt(v);
  if (typeof v === 'string' && /^0x[0-9a-f]+$/i.test(v)) return BigInt(v);
  throw new Diverged(`the trace's ${what} is not a number (${JSON.stringify(v)})`, '');
}

function numOf(v: TraceField | undefined, what: string): number {
  return Number(bigOf(v, what));
}

class Replayer {
  private readonly fds = new Map<number, number>();
  private readonly paths = new Map<number, string>();
  /** Recorded fds the trace has closed: a wait on one that ended ECANCELED was cancelled by that close. */
  private readonly closed = new Set<number>();
  /**
   * Per replay eventfd: how many more interrupts the replay kernel has delivered than the trace
   * had read at this point. Interrupts that come earlier, or closer together, on the replay kernel
   * are read there in fewer reads than the trace has; what is left over stands for the trace's
   * later reads (and their waits) until it is used up.
   */
  private readonly interruptsAhead = new Map<number, bigint>();
  private readonly maps = new Map<string, { readonly mapping: Mapping; readonly id: string; readonly recordedAddress?: bigint }>();
  /**
   * IOVAs the kernel chose (IOAS_MAP without FIXED_IOVA) that differ between the runs because the
   * process addresses they were chosen for had another alignment: recorded range → replay base,
   * newest last. An IOVA the program later passes or stores is translated through them.
   */
  private readonly iovaRanges: { readonly recorded: bigint; readonly replay: bigint; readonly length: bigint }[] = [];
  private readonly recordedFrames = new Map<bigint, bigint>();
  private readonly replayFrames = new Map<bigint, bigint>();
  /**
   * Which recorded user mapping a related frame belongs to, for frames related through GET_PA:
   * once that memory is neither mapped in the process nor in an IOAS, both kernels may hand its
   * frames out again, and a later buffer's frame may relate anew (the traced kernel reused one).
   */
  private readonly frameOwners = new Map<bigint, string>();
  /** The recorded IOAS ranges and the user mapping behind each (IOMMU_IOAS_MAP's user_va). */
  private ioasRanges: { iova: bigint; length: bigint; owner: string }[] = [];
  private readonly munmapped = new Set<string>();
  private readonly recordedPage: bigint;
  private readonly replayPage: bigint;

  constructor(
    private readonly trace: TraceFile,
    private readonly kernel: Kernel,
    private readonly options: Required<Omit<ReplayOptions, 'clock'>> & Pick<ReplayOptions, 'clock'>,
  ) {
    this.recordedPage = BigInt(trace.header.pageSize);
    this.replayPage = BigInt(kernel.pageSize);
  }

  async run(): Promise<ReplayResult> {
    const records = this.trace.records;
    const clock = this.options.clock;
    let clockUs = 0;
    let k = 0;
    while (k < records.length) {
      const r = records[k]!;
      // The device side catches up to when the recorded call returned (waits are recorded as they end).
      if (clock && r.t > clockUs) {
        clock.advance(r.t - clockUs);
        clockUs = r.t;
      }
      try {
        k += await this.step(records, k);
      } catch (e) {
        if (!(e instanceof Diverged)) throw e;
        const context = records.slice(Math.max(0, k - 3), k).map(formatRecord);
        return { replayed: k, divergence: { index: r.i, recorded: r, replayed: e.replayed, what: e.what, context } };
      }
    }
    this.cleanUp();
    return { replayed: records.length, divergence: null };
  }

  /** Closes what the trace left open, so replaying never leaks fds on the replay kernel. */
  private cleanUp(): void {
    for (const { mapping } of this.maps.values()) {
      try {
        this.kernel.munmap(mapping);
      } catch {
        /* already gone with its fd */
      }
    }
    for (const fd of this.fds.values()) {
      try {
        this.kernel.close(fd);
      } catch {
        /* closed by the program already */
      }
    }
  }

  private fd(recorded: number | undefined): number {
    if (recorded === undefined) throw new Diverged('the record has no fd', '');
    if (recorded < 0) return recorded;
    const fd = this.fds.get(recorded);
    if (fd === undefined) throw new Diverged(`fd ${recorded} was not opened by any earlier call in the trace`, '');
    return fd;
  }

  private mapping(id: TraceField | undefined): Mapping {
    const m = this.maps.get(fieldText(id));
    if (!m) throw new Diverged(`mapping ${fieldText(id)} was not made by any earlier call in the trace`, '');
    return m.mapping;
  }

  /** `m3+0x10` → the replay's m3 + 0x10; a plain hex address passes unchanged. */
  private address(v: TraceField): bigint {
    const s = fieldText(v);
    const match = /^(m\d+)\+(0x[0-9a-f]+)$/i.exec(s);
    if (!match) return bigOf(v, 'address');
    return this.mapping(match[1]).address + BigInt(match[2]!);
  }

  private symbolic(address: bigint): string {
    for (const { mapping, id } of this.maps.values()) {
      if (address >= mapping.address && address < mapping.address + mapping.length) return `${id}+${hex(address - mapping.address)}`;
    }
    return hex(address);
  }

  /** Relates a recorded frame to a replay frame; false when either is already related otherwise. */
  private relateFrame(recorded: bigint, replay: bigint, owner?: string): boolean {
    const a = this.recordedFrames.get(recorded);
    const b = this.replayFrames.get(replay);
    if (a === undefined && b === undefined) {
      this.recordedFrames.set(recorded, replay);
      this.replayFrames.set(replay, recorded);
      if (owner !== undefined) this.frameOwners.set(recorded, owner);
      return true;
    }
    return a === replay && b === recorded;
  }

  /** The memory of a recorded user mapping is free on both kernels: its frames relate no more. */
  private releaseFrames(owner: string): void {
    if (!this.munmapped.has(owner) || this.ioasRanges.some((r) => r.owner === owner)) return;
    for (const [recorded, o] of this.frameOwners) {
      if (o !== owner) continue;
      const replay = this.recordedFrames.get(recorded);
      this.recordedFrames.delete(recorded);
      if (replay !== undefined) this.replayFrames.delete(replay);
      this.frameOwners.delete(recorded);
    }
    this.munmapped.delete(owner);
  }

  /** IOMMU_IOAS_MAP and _UNMAP as recorded: which IOVA ranges hold which mapping's memory. */
  private noteIoasRanges(r: TraceRecord): void {
    if (r.ret !== 0) return;
    const args = r.args ?? {};
    const out = r.out ?? {};
    if (r.req === 'IOMMU_IOAS_MAP') {
      const owner = /^(m\d+)\+/.exec(fieldText(args.user_va))?.[1];
      if (owner === undefined) return;
      this.ioasRanges.push({ iova: BigInt(fieldText(out.iova ?? args.iova)), length: BigInt(fieldText(args.length)), owner });
    } else if (r.req === 'IOMMU_IOAS_UNMAP') {
      const from = BigInt(fieldText(args.iova));
      const length = BigInt(fieldText(out.length ?? args.length));
      const all = from === 0n && BigInt(fieldText(args.length)) === (1n << 64n) - 1n;
      const gone = this.ioasRanges.filter((x) => all || (x.iova >= from && x.iova + x.length <= from + length));
      this.ioasRanges = this.ioasRanges.filter((x) => !gone.includes(x));
      for (const owner of new Set(gone.map((x) => x.owner))) this.releaseFrames(owner);
    }
  }

  private samePhysical(recorded: bigint, replay: bigint): boolean {
    if (recorded % this.recordedPage !== replay % this.replayPage) return false;
    return this.relateFrame(recorded / this.recordedPage, replay / this.replayPage);
  }

  /** A recorded IOVA inside a range the kernel chose differently on the replay kernel becomes the replay's. */
  private translateIova(value: bigint): bigint {
    for (let k = this.iovaRanges.length - 1; k >= 0; k--) {
      const r = this.iovaRanges[k]!;
      if (value >= r.recorded && value < r.recorded + r.length) return r.replay + (value - r.recorded);
    }
    return value;
  }

  /** A recorded pointer field (`m1+0x0`) as the address it had on the traced kernel, when the trace says. */
  private recordedAddress(v: TraceField | undefined): bigint | undefined {
    const match = /^(m\d+)\+(0x[0-9a-f]+)$/i.exec(fieldText(v));
    const base = match ? this.maps.get(match[1]!)?.recordedAddress : undefined;
    return base === undefined ? undefined : base + BigInt(match![2]!);
  }

  /** A stored 64-bit value that is a recorded IOVA or physical address becomes the replay's. */
  private translateAddress(value: bigint): bigint {
    const iova = this.translateIova(value);
    return iova !== value ? iova : this.translatePhysical(value);
  }

  /** A value stored into a register that is a recorded physical address becomes the replay's. */
  private translatePhysical(value: bigint): bigint {
    const frame = this.recordedFrames.get(value / this.recordedPage);
    return frame === undefined ? value : frame * this.replayPage + (value % this.recordedPage);
  }

  private readonly codec: FieldCodec = {
    encode: (field, v) => (typeof v === 'bigint' ? (isPointerField(field) ? this.symbolic(v) : hex(v)) : v),
    decode: (field, v) => (isPointerField(field) ? this.address(v) : scalarOf(v)),
  };

  private expectOutcome(r: TraceRecord, got: Outcome): void {
    if ((r.err ?? null) !== (got.err ?? null)) throw new Diverged(r.err ? `expected ${r.err}` : `failed with ${got.err}`, show(got));
    if (got.err) return;
    if (r.ret !== undefined && JSON.stringify(r.ret) !== JSON.stringify(got.ret))
      throw new Diverged(`returned ${show(got)} instead of ${show({ ret: r.ret })}`, show(got));
  }

  private attempt<T>(fn: () => T): { value?: T; err?: string } {
    try {
      return { value: fn() };
    } catch (e) {
      return { err: errName(e) };
    }
  }

  /** Checks an fd-returning call and relates the two fds. */
  private relateFd(r: TraceRecord, got: { value?: number; err?: string }, path?: string): void {
    this.expectOutcome({ ...r, ret: undefined }, { err: got.err });
    if (got.err || typeof r.ret !== 'number') return;
    this.fds.set(r.ret, got.value!);
    this.closed.delete(r.ret);
    if (path !== undefined) this.paths.set(got.value!, path);
  }

  private data(field: TraceField | undefined, what: string): Uint8Array {
    const f = field as TraceFields | undefined;
    if (!f || typeof f.hex !== 'string' || typeof f.length !== 'number') throw new Diverged(`the trace has no ${what}`, '');
    if (f.hex.length / 2 < f.length)
      throw new Diverged(
        `cannot replay: the trace kept only ${f.hex.length / 2} of the ${f.length} bytes of ${what} (raise the data cap when recording)`,
        '',
      );
    return Buffer.from(f.hex, 'hex');
  }

  private compareData(recorded: TraceField | undefined, got: Uint8Array, what: string): void {
    const expected = JSON.stringify(recorded);
    const actual = bytesField(got, this.trace.header.dataCap);
    if (expected !== JSON.stringify(actual)) throw new Diverged(`${what} differs`, JSON.stringify(actual));
  }

  /** Replays the call at `k` (and, for a poll, the run it starts); returns how many records it used. */
  private async step(records: readonly TraceRecord[], k: number): Promise<number> {
    const r = records[k]!;
    const kernel = this.kernel;
    switch (r.call) {
      case 'open': {
        const got = this.attempt(() => kernel.open(r.path!, numOf(r.args?.flags, 'flags')));
        this.relateFd(r, got, r.path);
        return 1;
      }
      case 'close': {
        const fd = this.fd(r.fd);
        const got = this.attempt(() => kernel.close(fd));
        this.expectOutcome(r, got);
        if (!got.err) {
          this.fds.delete(r.fd!);
          this.closed.add(r.fd!);
          this.interruptsAhead.delete(fd);
        }
        return 1;
      }
      case 'ioctl':
        this.ioctl(r);
        return 1;
      case 'pread': {
        const fd = this.fd(r.fd);
        const into = new Uint8Array(numOf(r.args?.length, 'length'));
        const got = this.attempt(() => kernel.pread(fd, into, bigOf(r.args?.offset, 'offset')));
        this.expectOutcome(r, { ret: got.value, err: got.err });
        if (got.err) return 1;
        const bytes = into.subarray(0, got.value);
        if (this.paths.get(fd) === '/proc/self/pagemap') this.comparePagemap(r, bytes);
        else this.compareData(r.out?.data, bytes, 'the data read');
        return 1;
      }
      case 'pwrite': {
        const fd = this.fd(r.fd);
        const from = this.data(r.args?.data, 'the data written');
        const got = this.attempt(() => kernel.pwrite(fd, from, bigOf(r.args?.offset, 'offset')));
        this.expectOutcome(r, { ret: got.value, err: got.err });
        return 1;
      }
      case 'mmap': {
        const fd = r.fd === undefined || r.fd < 0 ? -1 : this.fd(r.fd);
        const a = r.args ?? {};
        const got = this.attempt(() =>
          kernel.mmap(
            fd,
            bigOf(a.length, 'length'),
            numOf(a.prot, 'prot'),
            numOf(a.flags, 'flags'),
            bigOf(a.offset, 'offset'),
            a.align === undefined ? undefined : { align: bigOf(a.align, 'align'), skew: bigOf(a.skew, 'skew') },
          ),
        );
        this.expectOutcome({ ...r, ret: undefined }, { err: got.err });
        if (!got.err && typeof r.ret === 'string') {
          const recorded = r.out?.address;
          this.maps.set(r.ret, {
            mapping: got.value!,
            id: r.ret,
            ...(typeof recorded === 'string' ? { recordedAddress: BigInt(recorded) } : {}),
          });
        }
        return 1;
      }
      case 'munmap': {
        const id = fieldText(r.args?.map);
        const m = this.mapping(id);
        const got = this.attempt(() => kernel.munmap(m));
        this.expectOutcome(r, got);
        if (!got.err) {
          this.maps.delete(id);
          this.munmapped.add(id);
          this.releaseFrames(id);
        }
        return 1;
      }
      case 'mlock': {
        const m = this.mapping(r.args?.map);
        this.expectOutcome(
          r,
          this.attempt(() => kernel.mlock(m)),
        );
        return 1;
      }
      case 'mmio-read':
        return this.mmioRead(records, k);
      case 'mmio-write': {
        const a = r.args ?? {};
        const m = this.mapping(a.map);
        const width = numOf(a.width, 'width') as MmioWidth;
        const raw = bigOf(a.value, 'value');
        // Drivers store 64-bit addresses as two 32-bit halves too (NVMe's ASQ/ACQ): a 32-bit value
        // that is a recorded IOVA or physical address below 4 GiB becomes the replay's, when that fits.
        const translated = width === 64 || width === 32 ? this.translateAddress(raw) : raw;
        const value = width === 64 ? translated : Number(translated <= 0xffff_ffffn ? translated : raw);
        this.expectOutcome(
          r,
          this.attempt(() => kernel.mmioWrite(m, numOf(a.offset, 'offset'), width, value)),
        );
        return 1;
      }
      case 'memory': {
        const m = this.mapping(r.args?.map);
        if (!m.buffer) throw new Diverged(`mapping ${fieldText(r.args?.map)} has no bytes to write on this kernel`, '');
        if (typeof r.args?.omitted === 'number' && r.args.omitted > 0)
          throw new Diverged(
            `cannot replay: the trace left out ${r.args.omitted} of the bytes the program wrote into ${fieldText(r.args.map)} (the data cap is ${this.trace.header.dataCap}; record with a larger one, NODE_VFIO_TRACE_DATA_CAP)`,
            '',
          );
        const bytes = new Uint8Array(m.buffer);
        for (const w of (r.args?.writes ?? []) as readonly (readonly [string, string])[]) {
          const at = Number(BigInt(w[0]));
          const data = Buffer.from(w[1], 'hex');
          // IOVAs and physical addresses the program stored (descriptors) become the replay's own.
          for (let o = 0; o + 8 <= data.length && (at + o) % 8 === 0; o += 8)
            data.writeBigUInt64LE(this.translateAddress(data.readBigUInt64LE(o)), o);
          bytes.set(data, at);
        }
        return 1;
      }
      case 'memfd': {
        const got = this.attempt(() => kernel.memfdCreate(fieldText(r.args?.name), numOf(r.args?.flags, 'flags')));
        this.relateFd(r, got);
        return 1;
      }
      case 'ftruncate': {
        const fd = this.fd(r.fd);
        this.expectOutcome(
          r,
          this.attempt(() => kernel.ftruncate(fd, bigOf(r.args?.length, 'length'))),
        );
        return 1;
      }
      case 'eventfd': {
        const got = this.attempt(() => kernel.eventfd(numOf(r.args?.initval, 'initval'), numOf(r.args?.flags, 'flags')));
        this.relateFd(r, got);
        return 1;
      }
      case 'eventfd-read': {
        const fd = this.fd(r.fd);
        const recorded = r.err ? 0n : bigOf(r.ret, 'counter');
        const ahead = this.interruptsAhead.get(fd) ?? 0n;
        // Interrupts the replay kernel delivered already, read in an earlier read: they stand for this one.
        if (recorded > 0n && ahead > 0n) {
          this.setAhead(fd, ahead > recorded ? ahead - recorded : 0n);
          return 1;
        }
        let got = this.attempt(() => kernel.eventfdRead(fd));
        if (recorded > 0n && got.err === 'EAGAIN') {
          // The interrupt the program found already there comes later here: wait for it, bounded.
          const signal = AbortSignal.timeout(this.options.waitTimeoutMs);
          try {
            await kernel.waitReadable(fd, signal);
          } catch {
            throw new Diverged(`no event within ${this.options.waitTimeoutMs} ms where the trace read ${fieldText(r.ret)}`, '-1 EAGAIN');
          }
          got = this.attempt(() => kernel.eventfdRead(fd));
        }
        // The interrupt the program had still to wait for came earlier here: timing.
        if (r.err === 'EAGAIN' && !got.err) {
          this.setAhead(fd, ahead + got.value!);
          return 1;
        }
        this.expectOutcome({ ...r, ret: undefined }, { err: got.err });
        // Interrupts that arrive close together are counted as one read or several: timing. Fewer
        // here than recorded is forgiven (the next interrupt is waited for again); more is kept.
        if (!got.err && got.value! > recorded) this.setAhead(fd, got.value! - recorded);
        return 1;
      }
      case 'eventfd-write': {
        const fd = this.fd(r.fd);
        this.expectOutcome(
          r,
          this.attempt(() => kernel.eventfdWrite(fd, bigOf(r.args?.value, 'value'))),
        );
        return 1;
      }
      case 'wait': {
        // A wait is recorded when it ends: one still pending when its fd was closed ends ECANCELED after the close.
        if (r.err === 'ECANCELED' && r.fd !== undefined && this.closed.has(r.fd) && !this.fds.has(r.fd)) return 1;
        const fd = this.fd(r.fd);
        // The interrupt this wait ended with was read already (see eventfd-read).
        if (!r.err && (this.interruptsAhead.get(fd) ?? 0n) > 0n) return 1;
        const signal = AbortSignal.timeout(this.options.waitTimeoutMs);
        let err: string | undefined;
        try {
          await kernel.waitReadable(fd, signal);
        } catch (e) {
          err = signal.aborted && !r.err ? `no event within ${this.options.waitTimeoutMs} ms` : errName(e);
        }
        this.expectOutcome(r, { err });
        return 1;
      }
      case 'read-file': {
        const got = this.attempt(() => kernel.readFile(r.path!));
        this.expectOutcome(r, { err: got.err });
        if (!got.err) this.compareData(r.out?.data, got.value!, `the contents of ${r.path}`);
        return 1;
      }
      case 'write-file': {
        const data = this.data(r.args?.data, `the data written to ${r.path}`);
        this.expectOutcome(
          r,
          this.attempt(() => kernel.writeFile(r.path!, data)),
        );
        return 1;
      }
      case 'readdir': {
        const got = this.attempt(() => kernel.readdir(r.path!));
        // Directory order is the file system's, not the kernel interface's: compared as a set.
        const sorted = (v: TraceField | undefined) => JSON.stringify(Array.isArray(v) ? [...(v as string[])].sort() : v);
        if (!got.err && !r.err && sorted(r.ret) !== sorted(got.value)) throw new Diverged(`lists other entries`, JSON.stringify(got.value));
        this.expectOutcome({ ...r, ret: undefined }, { err: got.err });
        return 1;
      }
      case 'readlink': {
        const got = this.attempt(() => kernel.readlink(r.path!));
        this.expectOutcome(r, { ret: got.value, err: got.err });
        return 1;
      }
      case 'exists':
        this.expectOutcome(r, { ret: kernel.exists(r.path!) });
        return 1;
      case 'capabilities': {
        const c = kernel.capabilities();
        this.expectOutcome(r, { ret: { sysRawio: c.sysRawio, sysAdmin: c.sysAdmin, ipcLock: c.ipcLock } });
        return 1;
      }
      case 'memlock-limit':
        this.expectOutcome(r, { ret: hex(kernel.memlockLimit()) });
        return 1;
    }
  }

  private setAhead(fd: number, count: bigint): void {
    if (count > 0n) this.interruptsAhead.set(fd, count);
    else this.interruptsAhead.delete(fd);
  }

  private comparePagemap(r: TraceRecord, bytes: Uint8Array): void {
    const recorded = this.data(r.out?.data, 'the pagemap entries read');
    if (recorded.length !== bytes.length) throw new Diverged(`read ${bytes.length} pagemap bytes instead of ${recorded.length}`, '');
    const a = new DataView(recorded.buffer, recorded.byteOffset, recorded.byteLength);
    const b = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    for (let off = 0; off + 8 <= bytes.length; off += 8) {
      const x = a.getBigUint64(off, true);
      const y = b.getBigUint64(off, true);
      const flagsDiffer = (x & ~PAGEMAP_PFN_MASK) !== (y & ~PAGEMAP_PFN_MASK);
      const px = x & PAGEMAP_PFN_MASK;
      const py = y & PAGEMAP_PFN_MASK;
      if (flagsDiffer || (px === 0n) !== (py === 0n) || (px !== 0n && !this.relateFrame(px, py))) {
        throw new Diverged(`pagemap entry ${off / 8}: ${hex(y)} does not correspond to the recorded ${hex(x)}`, hex(y));
      }
    }
  }

  private mmioRead(records: readonly TraceRecord[], k: number): number {
    const r = records[k]!;
    const a = r.args ?? {};
    const m = this.mapping(a.map);
    const offset = numOf(a.offset, 'offset');
    const width = numOf(a.width, 'width') as MmioWidth;
    // A poll: the same register read again and again with one value until it changes once.
    let end = k + 1;
    while (end < records.length) {
      const n = records[end]!;
      if (n.call !== 'mmio-read' || n.args?.map !== a.map || n.args?.offset !== a.offset || n.args?.width !== a.width || n.err) break;
      end++;
    }
    const run = records.slice(k, end);
    const polled = run.length >= 2 && run.slice(0, -1).every((x) => x.ret === r.ret) && !r.err;
    const read = (): Outcome => {
      const got = this.attempt(() => this.kernel.mmioRead(m, offset, width));
      return got.err ? { err: got.err } : { ret: hex(got.value!) };
    };
    if (!polled) {
      const got = read();
      // The device got there sooner here: a register the program read, found unchanged, waited for
      // an interrupt and read again already reads what it read after the wait.
      if (!got.err && got.ret !== r.ret && got.ret === valueAfterWait(records, k)) return 1;
      this.expectOutcome(r, got);
      return 1;
    }
    const final = run[run.length - 1]!;
    for (let n = 0; n < this.options.maxPollReads; n++) {
      const got = read();
      if (got.err) throw new Diverged(`the polled register read failed with ${got.err}`, show(got));
      if (got.ret === final.ret) return run.length;
      if (got.ret !== r.ret)
        throw new Diverged(
          `the polled register read ${fieldText(got.ret)}, neither the recorded ${fieldText(r.ret)} nor the final ${fieldText(final.ret)}`,
          show(got),
        );
    }
    throw new Diverged(
      `the polled register still read ${fieldText(r.ret)} after ${this.options.maxPollReads} reads (recorded: ${fieldText(final.ret)} after ${run.length - 1})`,
      fieldText(r.ret),
    );
  }

  private ioctl(r: TraceRecord): void {
    const fd = this.fd(r.fd);
    const args = r.args ?? {};
    const layout = requestLayout(r.req!);
    let arg: Uint8Array | number | null;
    if (typeof args.value === 'number') arg = args.value;
    else if (typeof args.container_fd === 'number') {
      const pointee = Buffer.alloc(4);
      pointee.writeInt32LE(this.fd(args.container_fd), 0);
      arg = pointee;
    } else if (typeof args.name === 'string') arg = Buffer.from(`${args.name}\0`, 'utf8');
    else if (Object.keys(args).length === 0) arg = null;
    else arg = this.structArg(r, layout, args);
    const got = this.attempt(() => this.kernel.ioctl(fd, r.nr!, arg));
    if (r.req === 'VFIO_GROUP_GET_DEVICE_FD') {
      this.relateFd(r, got);
      return;
    }
    this.expectOutcome(r, { ret: got.value, err: got.err });
    if (got.err || !(arg instanceof Uint8Array) || !r.out || typeof args.container_fd === 'number') return;
    this.compareOut(r, layout, arg);
    this.noteIoasRanges(r);
  }

  private structArg(r: TraceRecord, layout: ReturnType<typeof requestLayout>, args: TraceFields): Uint8Array {
    if (!layout) return this.data(args.bytes, `the argument of ${r.req}`);
    const size = numOf(args.$size, '$size');
    const bytes = new Uint8Array(new ArrayBuffer(Math.ceil(size / 8) * 8), 0, size);
    const translated: Record<string, TraceField> = {};
    const chosen = kernelChosenIova(r);
    for (const [name, v] of Object.entries(args)) {
      if (isFdField(layout.struct.name, name) && typeof v === 'number' && v >= 0) translated[name] = this.fd(v);
      else if (isIovaField(name) && !chosen && typeof v === 'string' && /^0x[0-9a-f]+$/i.test(v))
        translated[name] = hex(this.translateIova(BigInt(v)));
      else translated[name] = v;
    }
    encodeStruct(layout, translated, bytes, this.codec);
    const tail = bytes.subarray(layout.struct.size);
    if (Array.isArray(args.$fds)) {
      const dv = new DataView(tail.buffer, tail.byteOffset, tail.byteLength);
      (args.$fds as number[]).forEach((v, n) => dv.setInt32(n * 4, v >= 0 ? this.fd(v) : v, true));
    } else if (args.$tail !== undefined) {
      tail.set(this.data(args.$tail, `the data after ${layout.struct.name}`));
    }
    return bytes;
  }

  /**
   * The IOVA IOAS_MAP chose: iopt_alloc_iova aligns it to the smaller of the length (rounded up to
   * a power of two) and the lowest set bit of the process address, at most a huge page. When the
   * two runs' addresses give the same alignment (and no earlier choice differed) the kernel's
   * choice must be the same, compared as any field (false). Otherwise each must have its own
   * alignment, and the two are related for what the program does with the IOVA later.
   */
  private relateChosenIova(r: TraceRecord, recorded: bigint, replay: bigint): boolean {
    const args = r.args ?? {};
    const length = bigOf(args.length, 'length');
    const recordedVa = this.recordedAddress(args.user_va);
    if (recordedVa === undefined) return false;
    const replayVa = this.address(args.user_va!);
    const alignRecorded = autoIovaAlignment(length, recordedVa);
    const alignReplay = autoIovaAlignment(length, replayVa);
    if (alignRecorded === alignReplay && this.iovaRanges.length === 0) return false;
    if (recorded % alignRecorded !== 0n || replay % alignReplay !== 0n)
      throw new Diverged(
        `${r.req} chose iova=${hex(replay)} (recorded ${hex(recorded)}): not aligned to ${hex(alignReplay)} (recorded ${hex(alignRecorded)}), as the process address asks`,
        hex(replay),
      );
    if (recorded !== replay) this.iovaRanges.push({ recorded, replay, length });
    return true;
  }

  /**
   * GET_PA's answer is the physical run at the IOVA, whose length is where the two machines' page
   * allocators happened to leave a frame contiguous: any whole number of pages up to what was asked
   * is an answer; the pages both runs cover correspond one to one. Takes length and out_phys off
   * `names` once related.
   */
  private relatePhysicalRun(r: TraceRecord, got: Record<string, TraceField>, names: Set<string>): void {
    // Version 2 traces list only the fields the kernel changed; the others are what was passed.
    const recorded = { ...(r.args ?? {}), ...r.out! };
    const asked = BigInt(fieldText(r.args?.length));
    const want = { phys: BigInt(fieldText(recorded.out_phys)), length: BigInt(fieldText(recorded.length)) };
    const have = { phys: BigInt(fieldText(got.out_phys)), length: BigInt(fieldText(got.length)) };
    const whole = (n: bigint, page: bigint) => n > 0n && n <= asked && n % page === 0n;
    if (!whole(want.length, this.recordedPage) || !whole(have.length, this.replayPage)) return; // compared as fields below
    const pages = (want.length < have.length ? want.length : have.length) / this.recordedPage;
    const iova = BigInt(fieldText(r.args?.iova));
    const owner = this.ioasRanges.find((x) => iova >= x.iova && iova < x.iova + x.length)?.owner;
    for (let k = 0n; k < pages; k++) {
      const a = want.phys + k * this.recordedPage;
      const b = have.phys + k * this.replayPage;
      if (a % this.recordedPage !== b % this.replayPage || !this.relateFrame(a / this.recordedPage, b / this.replayPage, owner))
        throw new Diverged(
          `${r.req} answered out_phys=${hex(have.phys)}, whose page ${k} does not correspond to the recorded run at ${hex(want.phys)} (page offset or frame)`,
          hex(have.phys),
        );
    }
    names.delete('length');
    names.delete('out_phys');
  }

  private compareOut(r: TraceRecord, layout: ReturnType<typeof requestLayout>, arg: Uint8Array): void {
    const recorded = r.out!;
    if (!layout) {
      this.compareData(recorded.bytes, arg, `what ${r.req} wrote back`);
      return;
    }
    const args = r.args ?? {};
    const got: Record<string, TraceField> = { ...decodeStruct(layout, arg, this.codec) };
    // Every field is compared: one the answer does not list (trace version 2 lists only what the
    // kernel changed) must still be what the call was passed.
    const names = new Set([...Object.keys(args), ...Object.keys(recorded)]);
    if (r.req === 'IOMMU_IOAS_NOIOMMU_GET_PA') this.relatePhysicalRun(r, got, names);
    for (const name of names) {
      if (name.startsWith('$')) continue;
      let want = name in recorded ? recorded[name] : args[name];
      const have = got[name];
      if (isIovaField(name) && typeof want === 'string' && typeof have === 'string' && /^0x[0-9a-f]+$/i.test(want)) {
        if (name === 'iova' && kernelChosenIova(r) && name in recorded) {
          if (this.relateChosenIova(r, BigInt(want), BigInt(have))) continue;
        } else want = hex(this.translateIova(BigInt(want)));
      }
      if (isPhysicalField(name) && typeof want === 'string' && typeof have === 'string') {
        if (!this.samePhysical(BigInt(want), BigInt(have)))
          throw new Diverged(`${r.req}.${name}=${have} does not correspond to the recorded ${want} (page offset or frame)`, have);
        continue;
      }
      if (isFdField(layout.struct.name, name)) continue; // an fd the caller passed in: related on the way in
      if (JSON.stringify(want) !== JSON.stringify(have))
        throw new Diverged(`${r.req} answered ${name}=${JSON.stringify(have)} instead of ${JSON.stringify(want)}`, JSON.stringify(got));
    }
    const tail = recorded.$tail ?? (args.$fds === undefined ? args.$tail : undefined);
    if (tail !== undefined && arg.length > layout.struct.size)
      this.compareData(tail, arg.subarray(layout.struct.size), `the data ${r.req} wrote after ${layout.struct.name}`);
  }
}

/** Struct fields that hold an IOVA. */
/**
 * What the register read at `k` read next after the program waited for an interrupt (an eventfd
 * read or wait), when nothing but those waits and reads of that register with its value came in
 * between; undefined otherwise.
 */
function valueAfterWait(records: readonly TraceRecord[], k: number): TraceField | undefined {
  const r = records[k]!;
  if (r.err) return undefined;
  let waited = false;
  for (let n = k + 1; n < records.length; n++) {
    const x = records[n]!;
    if (x.call === 'eventfd-read' || x.call === 'wait') {
      waited = true;
      continue;
    }
    const sameRegister =
      x.call === 'mmio-read' && x.args?.map === r.args?.map && x.args?.offset === r.args?.offset && x.args?.width === r.args?.width;
    if (!sameRegister || x.err) return undefined;
    if (x.ret === r.ret) continue;
    return waited ? x.ret : undefined;
  }
  return undefined;
}

function isIovaField(name: string): boolean {
  return name === 'iova' || name === 'src_iova' || name === 'dst_iova';
}

/** An IOAS_MAP whose IOVA the kernel picks (no FIXED_IOVA). */
function kernelChosenIova(r: TraceRecord): boolean {
  return r.req === 'IOMMU_IOAS_MAP' && typeof r.args?.flags === 'string' && !r.args.flags.split('|').includes('FIXED_IOVA');
}

const HPAGE = 2n * 1024n * 1024n;

/** iopt_alloc_iova's alignment for a mapping of `length` bytes at process address `va` (CONFIG_TRANSPARENT_HUGEPAGE caps it at 2 MiB). */
function autoIovaAlignment(length: bigint, va: bigint): bigint {
  let align = 1n;
  while (align < length) align <<= 1n;
  if (va !== 0n) {
    const low = va & -va;
    if (low < align) align = low;
  }
  return align >= HPAGE ? HPAGE : align;
}

/**
 * Replays `trace` on `kernel`; resolves with the first divergence, or none.
 *
 * @category Tracing
 */
export async function replayTrace(trace: TraceFile, kernel: Kernel, options: ReplayOptions = {}): Promise<ReplayResult> {
  const full = {
    waitTimeoutMs: options.waitTimeoutMs ?? 5000,
    maxPollReads: options.maxPollReads ?? 100_000,
    ...(options.clock ? { clock: options.clock } : {}),
  };
  return new Replayer(trace, kernel, full).run();
}

/**
 * A divergence as lines for a terminal.
 *
 * @category Tracing
 */
export function formatDivergence(d: Divergence): string[] {
  return [
    `first divergence at call ${d.index}: ${d.what}`,
    ...d.context.map((c) => `  before: ${c.trimStart()}`),
    `  recorded: ${formatRecord(d.recorded).trimStart()}`,
    `  replayed: ${d.replayed || '(nothing came back)'}`,
  ];
}
