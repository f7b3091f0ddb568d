/**
 * `vfio trace show`: a trace as an strace-like listing, one line per call
 * (`IOMMU_IOAS_MAP{flags=FIXED_IOVA|READABLE|WRITEABLE, ioas_id=2, ...} = 0`), filtered by fd,
 * ioctl or region, and a summary (calls per ioctl, errors, bytes DMA-mapped, interrupts).
 */
import type { TraceField, TraceFields, TraceRecord } from './schema';
import { fieldText } from './schema';
import type { TraceFile } from './trace-file';

/**
 * Which records `listTrace` keeps (all of them when empty).
 *
 * @category Tracing
 */
export interface ListingFilter {
  /** Only calls on this fd. */
  readonly fd?: number;
  /** Request name, or a part of one, case-insensitive (MAP matches IOMMU_IOAS_MAP and VFIO_IOMMU_MAP_DMA). */
  readonly ioctl?: string;
  /** Region index (0-5 BARs, 7 config): preads/pwrites into it and MMIO on its mappings. */
  readonly region?: number;
}

/** Fields that every struct carries and a reader never needs to see. */
const HIDDEN = new Set(['size', 'argsz', '$size']);

function value(v: TraceField): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return `[${v.map(value).join(', ')}]`;
  if (typeof v === 'object') {
    const o = v as TraceFields;
    if (typeof o.hex === 'string' && typeof o.length === 'number') {
      const shown = o.hex.length > 32 ? `${o.hex.slice(0, 32)}…` : o.hex;
      return `<${o.length} bytes${o.hex.length / 2 < o.length ? `, ${o.hex.length / 2} kept` : ''}: ${shown}>`;
    }
    return fields(o);
  }
  return typeof v === 'string' && !/^(0x|m\d+\+)/.test(v) && /[\s,{}]/.test(v) ? JSON.stringify(v) : String(v);
}

function fields(f: TraceFields, skip: ReadonlySet<string> = HIDDEN): string {
  return `{${Object.entries(f)
    .filter(([k]) => !skip.has(k))
    .map(([k, v]) => `${k}=${value(v)}`)
    .join(', ')}}`;
}

/** Output fields that the call changed (what the kernel answered). */
function changed(args: TraceFields | undefined, out: TraceFields | undefined): TraceFields {
  const diff: Record<string, TraceField> = {};
  for (const [k, v] of Object.entries(out ?? {})) {
    if (HIDDEN.has(k)) continue;
    if (JSON.stringify(args?.[k]) !== JSON.stringify(v)) diff[k] = v;
  }
  return diff;
}

/**
 * One record as a line.
 *
 * @category Tracing
 */
export function formatRecord(r: TraceRecord): string {
  const time = `${(r.t / 1e6).toFixed(6)}`;
  const fd = r.fd === undefined ? '' : `${r.fd}`;
  let call: string;
  switch (r.call) {
    case 'ioctl':
      call = `ioctl(${fd}, ${r.req}${r.args && Object.keys(r.args).length ? fields(r.args) : ''})`;
      break;
    default: {
      const parts = [fd, r.path === undefined ? '' : JSON.stringify(r.path), r.args ? fields(r.args).slice(1, -1) : ''].filter(
        (p) => p !== '',
      );
      call = `${r.call}(${parts.join(', ')})`;
    }
  }
  const result = r.err ? ` = -1 ${r.err}` : r.ret === undefined ? '' : ` = ${value(r.ret)}`;
  const out = r.err ? {} : changed(r.args, r.out);
  const outText = Object.keys(out).length ? ` → ${fields(out)}` : '';
  return `${String(r.i).padStart(6)} ${time.padStart(12)} ${call}${result}${outText}`;
}

/** Tracks which region every offset and mapping belongs to, from the kernel's REGION_INFO answers. */
class RegionMap {
  private readonly regions: { fd: number; index: number; start: bigint; end: bigint }[] = [];
  private readonly mapRegion = new Map<string, number>();

  learn(r: TraceRecord): void {
    if (r.call === 'ioctl' && r.req === 'VFIO_DEVICE_GET_REGION_INFO' && !r.err && r.out && r.fd !== undefined) {
      // The answer lists what the kernel changed; the rest is as passed (schema.ts).
      const field = (name: string) => r.out![name] ?? r.args?.[name];
      const start = BigInt(fieldText(field('offset')));
      this.regions.push({ fd: r.fd, index: Number(field('index')), start, end: start + BigInt(fieldText(field('size'))) });
    }
    if (r.call === 'mmap' && !r.err && typeof r.ret === 'string' && r.fd !== undefined && r.args) {
      const index = this.regionOf(r.fd, BigInt(fieldText(r.args.offset)));
      if (index !== undefined) this.mapRegion.set(r.ret, index);
    }
  }

  regionOf(fd: number, offset: bigint): number | undefined {
    return this.regions.find((g) => g.fd === fd && offset >= g.start && offset < g.end)?.index;
  }

  recordRegion(r: TraceRecord): number | undefined {
    if ((r.call === 'pread' || r.call === 'pwrite') && r.fd !== undefined && r.args)
      return this.regionOf(r.fd, BigInt(fieldText(r.args.offset)));
    if ((r.call === 'mmio-read' || r.call === 'mmio-write' || r.call === 'mmap') && r.args) {
      return r.call === 'mmap' && r.fd !== undefined
        ? this.regionOf(r.fd, BigInt(fieldText(r.args.offset)))
        : this.mapRegion.get(fieldText(r.args.map));
    }
    return undefined;
  }
}

/**
 * The records that pass `filter`, one strace-like line each (formatRecord), after a header line.
 *
 * @category Tracing
 */
export function listTrace(trace: TraceFile, filter: ListingFilter = {}): string[] {
  const regions = new RegionMap();
  const lines: string[] = [];
  const wanted = filter.ioctl?.toLowerCase();
  for (const r of trace.records) {
    regions.learn(r);
    if (filter.fd !== undefined && r.fd !== filter.fd) continue;
    if (wanted !== undefined && !(r.call === 'ioctl' && r.req!.toLowerCase().includes(wanted))) continue;
    if (filter.region !== undefined && regions.recordRegion(r) !== filter.region) continue;
    lines.push(formatRecord(r));
  }
  return lines;
}

/**
 * What a trace did, in numbers: `vfio trace show --summary`.
 *
 * @category Tracing
 */
export interface TraceSummary {
  /** Records in the trace. */
  readonly calls: number;
  /** Calls per ioctl request name, and per other call. */
  readonly perCall: Readonly<Record<string, number>>;
  /** Failed calls per errno name. */
  readonly errors: Readonly<Record<string, number>>;
  /** Bytes mapped for DMA by successful IOAS_MAP / IOAS_MAP_FILE / VFIO_IOMMU_MAP_DMA. */
  readonly dmaMappedBytes: bigint;
  /** Interrupts seen: the sum of eventfd counters read, and completed waits. */
  readonly interrupts: bigint;
  /** Waits for an eventfd that ended. */
  readonly waits: number;
  /** MMIO loads and stores recorded. */
  readonly mmioAccesses: number;
}

/**
 * Counts calls, errors, DMA-mapped bytes and interrupts.
 *
 * @category Tracing
 */
export function summarizeTrace(trace: TraceFile): TraceSummary {
  const perCall: Record<string, number> = {};
  const errors: Record<string, number> = {};
  let dma = 0n;
  let interrupts = 0n;
  let waits = 0;
  let mmio = 0;
  for (const r of trace.records) {
    const key = r.call === 'ioctl' ? r.req! : r.call;
    perCall[key] = (perCall[key] ?? 0) + 1;
    if (r.err) errors[r.err] = (errors[r.err] ?? 0) + 1;
    if (r.err) continue;
    if (r.call === 'ioctl' && (r.req === 'IOMMU_IOAS_MAP' || r.req === 'IOMMU_IOAS_MAP_FILE') && r.args)
      dma += BigInt(fieldText(r.args.length));
    if (r.call === 'ioctl' && r.req === 'VFIO_IOMMU_MAP_DMA' && r.args) dma += BigInt(fieldText(r.args.size));
    if (r.call === 'eventfd-read' && typeof r.ret === 'string') interrupts += BigInt(r.ret);
    if (r.call === 'wait') waits++;
    if (r.call === 'mmio-read' || r.call === 'mmio-write') mmio++;
  }
  return { calls: trace.records.length, perCall, errors, dmaMappedBytes: dma, interrupts, waits, mmioAccesses: mmio };
}

/**
 * A summary as lines for a terminal.
 *
 * @category Tracing
 */
export function formatSummary(s: TraceSummary): string[] {
  const lines = [
    `${s.calls} calls, ${Object.values(s.errors).reduce((a, b) => a + b, 0)} errors, ${s.dmaMappedBytes} bytes DMA-mapped, ${s.interrupts} interrupts (${s.waits} waits), ${s.mmioAccesses} MMIO accesses`,
  ];
  const width = Math.max(0, ...Object.keys(s.perCall).map((k) => k.length));
  for (const [k, n] of Object.entries(s.perCall).sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0])))
    lines.push(`  ${k.padEnd(width)}  ${n}`);
  if (Object.keys(s.errors).length) {
    lines.push('errors:');
    for (const [k, n] of Object.entries(s.errors).sort()) lines.push(`  ${k}  ${n}`);
  }
  return lines;
}
