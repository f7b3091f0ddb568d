/**
 * The normalised record of one program run: per operation, what the kernel answered, reduced to
 * what must be identical on every correct Linux 7.3 kernel in the same mode — return code (errno
 * name), object ids, IOVAs, lengths. Physical addresses differ between machines, so a trace keeps
 * only their properties: the offset within the page, and a label per physical frame numbered in
 * order of first appearance (two answers naming the same frame get the same label on every
 * kernel, which is what IOAS_COPY and double mappings of one buffer promise). How far a physical
 * run extends depends on the machine's free memory; it is kept apart in `props`, which invariants
 * check and comparisons ignore.
 */
import type { FuzzOpName } from './program';

export type TraceValue = string | number | boolean | null | readonly TraceValue[] | { readonly [key: string]: TraceValue };

export interface TraceEntry {
  readonly op: FuzzOpName;
  /** 'ok', an errno name ('ENOENT'), 'skip' (refers to a slot no earlier operation filled), or 'throw: …' (not a kernel error: a bug). */
  readonly result: string;
  /** Values that every correct kernel reproduces exactly. */
  readonly out?: { readonly [key: string]: TraceValue };
  /** Machine-dependent values (physical run lengths): checked by invariants, never compared. */
  readonly props?: { readonly [key: string]: TraceValue };
  /**
   * The ioctl's arguments after resolving slots (ids, IOVAs, lengths). They follow from earlier
   * answers, so they are not compared; reports show them and invariants read them.
   */
  readonly args?: { readonly [key: string]: TraceValue };
}

export interface Trace {
  /** Kernel.description of the kernel that produced it, e.g. "native Linux 7.3.0-rc7" or the model profile. */
  readonly kernel: string;
  readonly entries: readonly TraceEntry[];
}

export interface TraceDifference {
  /** Index of the first operation whose entries differ. */
  readonly index: number;
  readonly expected: TraceEntry | undefined;
  readonly actual: TraceEntry | undefined;
  /** What differs, in words. */
  readonly what: string;
}

function canonical(value: TraceValue | undefined): string {
  return JSON.stringify(value ?? null);
}

/**
 * The first difference between a reference trace (usually the real kernel's) and another, or
 * null when they agree on every operation.
 */
export function compareTraces(expected: Trace, actual: Trace): TraceDifference | null {
  const n = Math.max(expected.entries.length, actual.entries.length);
  for (let i = 0; i < n; i++) {
    const e = expected.entries[i];
    const a = actual.entries[i];
    if (!e || !a)
      return { index: i, expected: e, actual: a, what: e ? 'the second trace ends early' : 'the second trace has extra entries' };
    if (e.op !== a.op) return { index: i, expected: e, actual: a, what: `different operations (${e.op} vs ${a.op})` };
    if (e.result !== a.result) return { index: i, expected: e, actual: a, what: `${e.op}: ${e.result} vs ${a.result}` };
    if (canonical(e.out) !== canonical(a.out)) {
      return { index: i, expected: e, actual: a, what: `${e.op}: output ${canonical(e.out)} vs ${canonical(a.out)}` };
    }
  }
  return null;
}

/** Numbers physical frames in order of first appearance: the same frame always gets the same label. */
export class FrameLabels {
  private readonly labels = new Map<bigint, string>();

  label(frame: bigint): string {
    let l = this.labels.get(frame);
    if (l === undefined) {
      l = `F${this.labels.size}`;
      this.labels.set(frame, l);
    }
    return l;
  }
}

/** One line per entry, for reports and for reading a trace file by eye. */
export function formatEntry(entry: TraceEntry | undefined): string {
  if (!entry) return '(none)';
  const out = entry.out ? ' ' + JSON.stringify(entry.out) : '';
  const props = entry.props ? ' props ' + JSON.stringify(entry.props) : '';
  const args = entry.args ? ' ' + JSON.stringify(entry.args) : '';
  return `${entry.op}${args} → ${entry.result}${out}${props}`;
}
