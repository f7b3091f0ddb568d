/**
 * A fuzz campaign: many seeds, each run on a reference kernel and on the model, every trace held
 * against the invariants, every difference shrunk to a reproducer. The lab test and
 * scripts/fuzz.mjs both drive this; the recorded reference traces become the corpus that the
 * model suite replays without QEMU.
 */
import { checkInvariants, type InvariantViolation } from './invariants';
import { differential, formatDivergence, formatRun, shrinkViolation, type Divergence, type TraceSource } from './differential';
import { generateProgram, type DeviceFeatures } from './generator';
import type { FuzzOp, FuzzProgram } from './program';
import type { Trace, TraceEntry } from './trace';

export interface CampaignOptions {
  readonly seeds: readonly number[];
  /** Random operations per program (generator default when absent). */
  readonly length?: number;
  readonly pageSize: number;
  /** The device's features, for programs with device operations (generator's GenerateOptions.device). */
  readonly device?: DeviceFeatures;
  /** The authority (the real kernel), or absent for a model-only campaign checked by invariants. */
  readonly reference?: { readonly label: string; readonly run: TraceSource };
  readonly model: { readonly label: string; readonly run: TraceSource };
  /** Progress, once per seed. */
  readonly onSeed?: (seed: number, outcome: 'agree' | 'diverge' | 'violation') => void;
}

export interface ViolationReport {
  readonly seed: number;
  readonly kernel: string;
  readonly violations: readonly InvariantViolation[];
  /** The shortest program still breaking the first violated rule, with its trace. */
  readonly shrunk: { readonly program: FuzzProgram; readonly trace: Trace; readonly violations: readonly InvariantViolation[] };
}

export interface RecordedRun {
  readonly seed: number;
  readonly ops: readonly FuzzOp[];
  readonly entries: readonly TraceEntry[];
}

export interface CampaignResult {
  readonly runs: number;
  readonly divergences: readonly Divergence[];
  readonly violations: readonly ViolationReport[];
  /** The reference kernel's trace per seed (the model's when there is no reference). */
  readonly recorded: readonly RecordedRun[];
}

export function runCampaign(o: CampaignOptions): CampaignResult {
  const divergences: Divergence[] = [];
  const violations: ViolationReport[] = [];
  const recorded: RecordedRun[] = [];
  for (const seed of o.seeds) {
    const program = generateProgram(seed, {
      pageSize: o.pageSize,
      ...(o.length !== undefined ? { length: o.length } : {}),
      ...(o.device ? { device: o.device } : {}),
    });
    const sides = o.reference ? [o.reference, o.model] : [o.model];
    let outcome: 'agree' | 'diverge' | 'violation' = 'agree';
    const traces: Trace[] = [];
    for (const side of sides) {
      const trace = side.run(program);
      traces.push(trace);
      const broken = checkInvariants(program, trace, { pageSize: o.pageSize });
      if (broken.length > 0) {
        outcome = 'violation';
        const s = shrinkViolation(program, side.run, broken[0]!.rule, o.pageSize);
        violations.push({
          seed,
          kernel: side.label,
          violations: broken,
          shrunk: { program: s.program, trace: s.trace, violations: s.violations },
        });
      }
    }
    recorded.push({ seed, ops: program.ops, entries: traces[0]!.entries });
    if (o.reference) {
      const d = differential(program, o.reference.run, o.model.run, { traces: { reference: traces[0]!, actual: traces[1]! } });
      if (d) {
        divergences.push(d);
        outcome = 'diverge';
      }
    }
    o.onSeed?.(seed, outcome);
  }
  return { runs: o.seeds.length, divergences, violations, recorded };
}

/** Everything that went wrong, as text (empty when nothing did). */
export function formatCampaign(result: CampaignResult, labels: readonly [string, string] = ['kernel', 'model']): string {
  const parts: string[] = [];
  for (const d of result.divergences) parts.push(`DIVERGENCE ${formatDivergence(d, labels)}`);
  for (const v of result.violations) {
    parts.push(
      [
        `INVARIANT seed ${v.seed} on ${v.kernel}: ${v.violations.map((x) => `#${x.index} ${x.rule}: ${x.message}`).join('; ')}`,
        `shortest program still breaking '${v.violations[0]!.rule}' (${v.shrunk.program.ops.length} operations):`,
        formatRun(v.shrunk.program, [{ label: v.kernel, trace: v.shrunk.trace }], v.shrunk.violations[0]?.index),
        `program JSON: ${JSON.stringify(v.shrunk.program.ops)}`,
      ].join('\n'),
    );
  }
  return parts.join('\n\n');
}
