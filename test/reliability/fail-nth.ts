/**
 * The fail-Nth sweep (after the kernel's iommufd_fail_nth selftest): a scenario — a short driver
 * session through the typed API — runs once per N = 1, 2, … with the model kernel's injector
 * (kernel.faults) failing the Nth fault site (named in lib/model/faults.ts), until a run passes
 * every site untouched. Each run must:
 *
 *  - surface the injected failure as a VfioError carrying the site's errno (no TypeError, no
 *    half-built object returned);
 *  - leave no trace of a failed step: the model's census right after the failure equals the one
 *    right before the step, and doing the step again then succeeds;
 *  - end with the kernel exactly as before the run (fds, files, mappings, frames, pins, charges,
 *    group ownership, iommufd objects, VFIO device state) and every typed-API object closed.
 */
import type { ModelKernel } from '../../lib/model';
import { FAULT_POINTS, type FaultPointName } from '../../lib/model/faults';
import { VfioError } from '../../lib/sys/errors';
import type { Resource } from '../../lib/support/resource';
import { census, censusDifference, type Census } from './census';

export interface ScenarioContext {
  readonly kernel: ModelKernel;
  readonly bdf: string;
  /** The device's cdev path. */
  readonly cdev: string;
  readonly mode: 'noiommu' | 'iommu';
  /**
   * A step that creates or changes something. If it fails, the failure must have left no trace,
   * and the step is done again (the injected fault fires once) and must then succeed.
   */
  step<T>(name: string, action: () => T): T;
  /** A step that releases something: a failure is recorded, not retried (the owner cleans up at the end). */
  teardown(name: string, action: () => void): void;
  /** A typed-API object that must be closed by the end of the run. */
  track<T extends Resource>(resource: T): T;
}

export interface Scenario {
  readonly name: string;
  run(t: ScenarioContext): void;
}

export interface Problem {
  readonly scenario: string;
  readonly nth: number;
  readonly point: FaultPointName | undefined;
  readonly what: string;
}

export interface SweepResult {
  readonly scenario: string;
  /** Runs made: one per fault point passed by the untouched run, plus that run. */
  readonly runs: number;
  /** Fault points the untouched run passes, by name. */
  readonly points: ReadonlyMap<FaultPointName, number>;
  /** Injected point → the errno the caller saw (how each failure surfaced). */
  readonly surfaced: ReadonlyMap<string, number>;
  readonly problems: readonly Problem[];
}

/** Errnos a site may legitimately surface as, besides its own (a caller that translates it). */
const TRANSLATED: Partial<Record<FaultPointName, readonly string[]>> = {
  // IOMMU_HWPT_ALLOC answers EINVAL when its pt_id lookup fails (iommufd_hwpt_alloc).
  'iommufd.object-lookup': ['EINVAL'],
};

export function sweep(
  scenario: Scenario,
  makeKernel: () => ModelKernel,
  setting: { bdf: string; cdev: string; mode: 'noiommu' | 'iommu' },
  cap = 1000,
): SweepResult {
  const problems: Problem[] = [];
  const surfaced = new Map<string, number>();
  let kernel = makeKernel();
  let baseline = census(kernel);
  let points: ReadonlyMap<FaultPointName, number> = new Map();
  let runs = 0;
  for (let nth = 1; nth <= cap; nth++) {
    runs++;
    const injector = kernel.faults;
    const found: Problem[] = [];
    const report = (what: string): void => {
      found.push({ scenario: scenario.name, nth, point: injector.firedAt, what });
    };
    const tracked: Resource[] = [];
    const expectInjected = (step: string, e: unknown): void => {
      const point = injector.firedAt;
      if (!(e instanceof VfioError)) {
        report(`step '${step}' failed with ${e instanceof Error ? `${e.name}: ${e.message}` : String(e)}, not a VfioError`);
        return;
      }
      if (!point) {
        report(`step '${step}' failed with ${e.code} although no fault was injected: ${e.message}`);
        return;
      }
      const key = `${point} → ${e.code}`;
      surfaced.set(key, (surfaced.get(key) ?? 0) + 1);
      const allowed = [FAULT_POINTS[point].errno as string, ...(TRANSLATED[point] ?? [])];
      if (!allowed.includes(e.code))
        report(`step '${step}': the fault at ${point} surfaced as ${e.code}, expected ${allowed.join(' or ')}`);
    };
    const context: ScenarioContext = {
      kernel,
      mode: setting.mode,
      bdf: setting.bdf,
      cdev: setting.cdev,
      step<T>(name: string, action: () => T): T {
        const before: Census = census(kernel);
        try {
          return action();
        } catch (e) {
          expectInjected(name, e);
          const left = censusDifference(before, census(kernel));
          if (left.length) report(`step '${name}' failed at ${injector.firedAt ?? '?'} and left a trace: ${left.join('; ')}`);
          try {
            return action();
          } catch (again) {
            report(`step '${name}' failed again after the injected fault: ${again instanceof Error ? again.message : String(again)}`);
            throw again;
          }
        }
      },
      teardown(name: string, action: () => void): void {
        try {
          action();
        } catch (e) {
          expectInjected(name, e);
        }
      },
      track<T extends Resource>(resource: T): T {
        tracked.push(resource);
        return resource;
      },
    };
    injector.failNth(nth);
    try {
      scenario.run(context);
    } catch (e) {
      if (!found.length) report(`the scenario failed: ${e instanceof Error ? `${e.name}: ${e.message}` : String(e)}`);
    }
    const fired = injector.fired;
    const seen = new Map(injector.seen);
    injector.failNth(0);
    for (const r of tracked) if (!r.closed) report(`${r.description} was left open`);
    const leaked = censusDifference(baseline, census(kernel));
    if (leaked.length) report(`the run leaked: ${leaked.join('; ')}`);
    if (found.length) {
      problems.push(...found);
      // Start the next run on a clean machine, so one leak is reported once.
      kernel = makeKernel();
      baseline = census(kernel);
    }
    if (!fired) {
      points = seen;
      break;
    }
    if (nth === cap) problems.push({ scenario: scenario.name, nth, point: undefined, what: `still injecting after ${cap} runs` });
  }
  return { scenario: scenario.name, runs, points, surfaced, problems };
}
