/**
 * Driver fuzzing against a device model's fault points: random fault schedules drawn from a seed
 * (which points fire, at which occurrence), each run by the caller's workload; a schedule whose
 * run breaks a rule is shrunk (shrink.ts, the differential fuzzer's delta debugging) to the
 * smallest schedule that still breaks one, and that schedule and seed are the reproduction.
 * Device- and driver-neutral: the caller supplies the points with how often a clean run passes
 * each, and the run.
 */
import { Random } from './random';
import { shrinkAsync } from './shrink';

/** One armed fault: the point and the occurrence (from the start of the run) it fires at. */
export interface ScheduledFault<Name extends string> {
  readonly point: Name;
  readonly nth: number;
}

export interface FaultFuzzOptions<Name extends string> {
  readonly seed: number;
  /** Schedules to try. */
  readonly schedules: number;
  /** Faults per schedule, at most (at least 1). */
  readonly maxFaults: number;
  /** Each point with the occurrences a clean run passes it (the range nth is drawn from). */
  readonly points: ReadonlyMap<Name, number>;
  /** Runs the workload with the schedule armed; the rules it broke (empty: robust). */
  readonly run: (schedule: readonly ScheduledFault<Name>[]) => Promise<readonly string[]>;
  /** Candidate runs the shrinker may make per failure (default 200). */
  readonly maxShrinkTries?: number;
}

export interface FaultFuzzFailure<Name extends string> {
  readonly schedule: readonly ScheduledFault<Name>[];
  /** The smallest schedule found that still breaks a rule, and what it broke. */
  readonly shrunk: readonly ScheduledFault<Name>[];
  readonly problems: readonly string[];
  readonly shrinkTries: number;
}

export interface FaultFuzzResult<Name extends string> {
  readonly schedules: number;
  readonly faultsArmed: number;
  readonly failures: readonly FaultFuzzFailure<Name>[];
}

/** A random schedule: 1..maxFaults faults on points the workload passes, each at an occurrence it reaches. */
export function randomFaultSchedule<Name extends string>(
  random: Random,
  points: ReadonlyMap<Name, number>,
  maxFaults: number,
): ScheduledFault<Name>[] {
  const names = [...points.keys()].filter((n) => (points.get(n) ?? 0) > 0);
  if (!names.length) throw new RangeError('fault fuzzing needs at least one point the workload passes');
  const count = random.between(1, Math.max(1, maxFaults));
  return Array.from({ length: count }, () => {
    const point = random.pick(names);
    return { point, nth: random.between(1, points.get(point)!) };
  });
}

export async function fuzzFaultSchedules<Name extends string>(o: FaultFuzzOptions<Name>): Promise<FaultFuzzResult<Name>> {
  const random = new Random(o.seed);
  const failures: FaultFuzzFailure<Name>[] = [];
  let faultsArmed = 0;
  for (let i = 0; i < o.schedules; i++) {
    const schedule = randomFaultSchedule(random, o.points, o.maxFaults);
    faultsArmed += schedule.length;
    const problems = await o.run(schedule);
    if (!problems.length) continue;
    let last = problems;
    const { items, tries } = await shrinkAsync(
      schedule,
      async (candidate) => {
        const p = await o.run(candidate);
        if (p.length) last = p;
        return p.length > 0;
      },
      o.maxShrinkTries ?? 200,
    );
    failures.push({ schedule, shrunk: items, problems: last, shrinkTries: tries });
  }
  return { schedules: o.schedules, faultsArmed, failures };
}
