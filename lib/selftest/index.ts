/**
 * The conformance suite as a library: what `vfio selftest` runs. Discovers the environment on the
 * given kernel (real or model), runs the selected cases, streams a TAP 13 report ending with the
 * kselftest totals line, and returns the totals with kselftest's exit code.
 */
import type { Kernel } from '../sys/kernel';
import { allCases } from './cases';
import type { ConformanceCase } from './case';
import { describeEnvironment, discoverEnvironment, type DiscoverOptions } from './environment';
import { kselftestExitCode, TapWriter, type Totals } from './report';
import { runCase } from './runner';
import type { CaseResult } from './types';

export { allCases, findCase } from './cases';
export type { ConformanceCase, Need, KnownCommandNeed } from './case';
export { CaseContext } from './context';
export type { AnonymousMemoryOptions } from './context';
export type { DeviceFacts, ProbedFacts, UnprobedFacts } from './device-facts';
export type { CommandProbe } from './iommufd-commands';
export { discoverEnvironment, describeEnvironment } from './environment';
export type { Environment, DeviceUnderTest, DiscoverOptions } from './environment';
export { runCase, runCases, missingNeed } from './runner';
export { formatTap, kselftestTotals, kselftestExitCode, TapWriter, totals } from './report';
export type { Totals } from './report';
export type { CaseResult, CaseStatus, Mode, Expected, Outcome, PerMode } from './types';
export type { ErrnoName } from '../sys/constants';
export {
  findSelftestDriver,
  loadSelftestDriverModule,
  pollUntil,
  registerSelftestDriver,
  selftestDrivers,
  unregisterSelftestDriver,
} from './drivers';
export type { BusRun, DriverDevice, DriverRegion, MsiKind, SelftestDriver, SelftestDriverFactory } from './drivers';

/**
 * What to run the conformance suite on and how to report it: the kernel, the device and mode (as
 * for discoverEnvironment), which cases, and where the TAP lines go.
 *
 * @category Conformance suite
 */
export interface SelftestOptions extends DiscoverOptions {
  /** The kernel the cases run against: the native one or the model. */
  readonly kernel: Kernel;
  /** Which cases to run: a predicate, or a pattern matched against ids (default: all). */
  readonly select?: RegExp | ((c: ConformanceCase) => boolean);
  /** Receives the TAP report line by line (default: nothing is written). */
  readonly write?: (line: string) => void;
  /** Also print each case's log lines as TAP diagnostics, not only a failed case's. */
  readonly verbose?: boolean;
}

/**
 * What a run of the conformance suite produced: every case's result, the totals and the exit code
 * `vfio selftest` ends with.
 *
 * @category Conformance suite
 */
export interface SelftestReport {
  /** One result per selected case, in the order they ran. */
  readonly results: readonly CaseResult[];
  /** How many cases passed, failed and were skipped. */
  readonly totals: Totals;
  /** 0 all passed (skips allowed), 1 a failure, 4 everything skipped (kselftest's KSFT_SKIP). */
  readonly exitCode: number;
}

/**
 * Discovers the environment on the given kernel, runs the selected cases one after another while
 * streaming the TAP report, and resolves with their results, totals and kselftest exit code.
 *
 * @category Conformance suite
 */
export async function selftest(options: SelftestOptions): Promise<SelftestReport> {
  const env = discoverEnvironment(options.kernel, options);
  const select = options.select;
  const cases = allCases.filter((c) => select === undefined || (select instanceof RegExp ? select.test(c.id) : select(c)));
  const tap = new TapWriter(options.write ?? (() => undefined));
  tap.begin(cases.length, [describeEnvironment(env)]);
  const results: CaseResult[] = [];
  for (const c of cases) {
    const r = await runCase(env, c);
    results.push(r);
    tap.result(r, options.verbose);
  }
  const totals = tap.end();
  return { results, totals, exitCode: kselftestExitCode(totals) };
}
