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
export type { ConformanceCase, Need } from './case';
export { discoverEnvironment, describeEnvironment } from './environment';
export type { Environment, DeviceUnderTest, DiscoverOptions } from './environment';
export { runCase, runCases, missingNeed } from './runner';
export { formatTap, kselftestTotals, kselftestExitCode, TapWriter, totals } from './report';
export type { Totals } from './report';
export type { CaseResult, CaseStatus, Mode, Expected, Outcome } from './types';
export {
  findSelftestDriver,
  loadSelftestDriverModule,
  pollUntil,
  registerSelftestDriver,
  selftestDrivers,
  unregisterSelftestDriver,
} from './drivers';
export type { BusRun, DriverDevice, DriverRegion, MsiKind, SelftestDriver, SelftestDriverFactory } from './drivers';

export interface SelftestOptions extends DiscoverOptions {
  readonly kernel: Kernel;
  /** Which cases to run: a predicate, or a pattern matched against ids (default: all). */
  readonly select?: RegExp | ((c: ConformanceCase) => boolean);
  /** Receives the TAP report line by line (default: nothing is written). */
  readonly write?: (line: string) => void;
  /** Also print each case's log lines as TAP diagnostics, not only a failed case's. */
  readonly verbose?: boolean;
}

export interface SelftestReport {
  readonly results: readonly CaseResult[];
  readonly totals: Totals;
  /** 0 all passed (skips allowed), 1 a failure, 4 everything skipped (kselftest's KSFT_SKIP). */
  readonly exitCode: number;
}

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
