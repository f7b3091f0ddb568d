/**
 * Differential runs: one program on a reference kernel (the real one in the lab, or a recorded
 * trace of it) and on the model; the first operation whose normalised answers differ is a model
 * bug (the kernel is the authority). A difference is shrunk to the shortest program that still
 * shows it at the same kind of operation, so the report is a reproducer, not a 60-step log.
 */
import { checkInvariants, type InvariantViolation } from './invariants';
import { describeOp, simplerOps, type FuzzOp, type FuzzProgram } from './program';
import { shrink } from './shrink';
import { compareTraces, formatEntry, type Trace, type TraceDifference } from './trace';

/** Runs a program and returns its trace (a fresh run each call). */
export type TraceSource = (program: FuzzProgram) => Trace;

export interface Divergence {
  readonly program: FuzzProgram;
  readonly difference: TraceDifference;
  /** The shortest program found that still diverges at the same kind of operation. */
  readonly shrunk: FuzzProgram;
  readonly shrunkDifference: TraceDifference;
  readonly shrunkReference: Trace;
  readonly shrunkActual: Trace;
  readonly shrinkTries: number;
}

/**
 * Compares `actual` against `reference` on `program`. Returns null when they agree, else the
 * divergence with a shrunk reproducer (shrinking re-runs both sides, so both must be live kernels).
 */
export function differential(
  program: FuzzProgram,
  reference: TraceSource,
  actual: TraceSource,
  options: { readonly maxShrinkTries?: number; readonly traces?: { readonly reference: Trace; readonly actual: Trace } } = {},
): Divergence | null {
  const maxShrinkTries = options.maxShrinkTries ?? 400;
  const difference = compareTraces(options.traces?.reference ?? reference(program), options.traces?.actual ?? actual(program));
  if (!difference) return null;
  const kind = (difference.expected ?? difference.actual)?.op;
  const diverges = (ops: readonly FuzzOp[]): TraceDifference | null => {
    const candidate = { ops };
    const d = compareTraces(reference(candidate), actual(candidate));
    return d && (d.expected ?? d.actual)?.op === kind ? d : null;
  };
  const { items, tries } = shrink(program.ops, (ops) => diverges(ops) !== null, maxShrinkTries, simplerOps);
  const shrunk: FuzzProgram = { ops: items };
  const shrunkReference = reference(shrunk);
  const shrunkActual = actual(shrunk);
  const shrunkDifference = compareTraces(shrunkReference, shrunkActual) ?? difference;
  return { program, difference, shrunk, shrunkDifference, shrunkReference, shrunkActual, shrinkTries: tries };
}

/** Shrinks an invariant violation of one kernel's run to the shortest program breaking the same rule. */
export function shrinkViolation(
  program: FuzzProgram,
  run: TraceSource,
  rule: string,
  pageSize: number,
  maxTries = 400,
): { program: FuzzProgram; trace: Trace; violations: InvariantViolation[]; tries: number } {
  const breaks = (ops: readonly FuzzOp[]): boolean => {
    const candidate = { ops };
    return checkInvariants(candidate, run(candidate), { pageSize }).some((v) => v.rule === rule);
  };
  const { items, tries } = shrink(program.ops, breaks, maxTries, simplerOps);
  const shrunk = { ops: items };
  const trace = run(shrunk);
  return { program: shrunk, trace, violations: checkInvariants(shrunk, trace, { pageSize }), tries };
}

/** A program with the answers of one or two kernels beside each operation. */
export function formatRun(
  program: FuzzProgram,
  traces: readonly { readonly label: string; readonly trace: Trace }[],
  mark?: number,
): string {
  const lines: string[] = [];
  program.ops.forEach((op, i) => {
    lines.push(`${i === mark ? '>>' : '  '} ${String(i).padStart(3)} ${describeOp(op)}`);
    for (const { label, trace } of traces) lines.push(`         ${label}: ${formatEntry(trace.entries[i])}`);
  });
  return lines.join('\n');
}

export function formatDivergence(d: Divergence, labels: readonly [string, string] = ['kernel', 'model']): string {
  return [
    `${d.program.seed !== undefined ? `seed ${d.program.seed}: ` : ''}operation ${d.difference.index} differs: ${d.difference.what}`,
    `shortest reproducer (${d.shrunk.ops.length} of ${d.program.ops.length} operations, ${d.shrinkTries} shrink runs); first difference at ${d.shrunkDifference.index}: ${d.shrunkDifference.what}`,
    formatRun(
      d.shrunk,
      [
        { label: labels[0], trace: d.shrunkReference },
        { label: labels[1], trace: d.shrunkActual },
      ],
      d.shrunkDifference.index,
    ),
    `program JSON: ${JSON.stringify(d.shrunk.ops)}`,
  ].join('\n');
}
