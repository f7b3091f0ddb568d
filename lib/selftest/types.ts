/**
 * Vocabulary of the conformance suite: the two ways a VFIO device can sit behind iommufd, the
 * outcome a case expects in each, and the result a case run produces.
 */
import type { ErrnoName } from '../sys/constants';

/**
 * How the device under test reaches memory. `noiommu`: no IOMMU, the cdev is
 * /dev/vfio/devices/noiommu-vfioN and DMA uses physical addresses (IOMMU_IOAS_NOIOMMU_GET_PA).
 * `iommu`: a real IOMMU translates; the cdev is /dev/vfio/devices/vfioN and DMA uses IOVAs.
 *
 * @category Conformance suite
 */
export type Mode = 'noiommu' | 'iommu';
export const MODES: readonly Mode[] = ['noiommu', 'iommu'];

/**
 * A value given separately for each mode, like the kernel selftests' fixture variants.
 *
 * @category Conformance suite
 */
export interface PerMode<T> {
  /** The value when the device is used without an IOMMU. */
  readonly noiommu: T;
  /** The value when an IOMMU translates the device's DMA. */
  readonly iommu: T;
}

/**
 * What one call is expected to do: succeed, or fail with this errno.
 *
 * @category Conformance suite
 */
export type Outcome = 'ok' | ErrnoName;

/**
 * An outcome that holds in both modes, or one stated per mode.
 *
 * @category Conformance suite
 */
export type Expected = Outcome | PerMode<Outcome>;

/**
 * How a case ended: passed, failed, or skipped because the environment lacks what it needs (or the
 * case skipped itself).
 *
 * @category Conformance suite
 */
export type CaseStatus = 'pass' | 'fail' | 'skip';

/**
 * The result of running one conformance case, as the TAP report prints it.
 *
 * @category Conformance suite
 */
export interface CaseResult {
  /** The case's stable dotted id. */
  readonly id: string;
  /** The case's one-line title. */
  readonly title: string;
  /** Whether the case passed, failed or was skipped. */
  readonly status: CaseStatus;
  /** Why the case was skipped, or what failed. */
  readonly reason?: string;
  /** The failure's stack, for a report's diagnostic block. */
  readonly stack?: string;
  /** Wall-clock milliseconds the case took, fixture teardown included (0 when skipped for a missing need). */
  readonly durationMs: number;
  /** Lines the case logged (what it observed), printed as TAP diagnostics. */
  readonly log: readonly string[];
}

export function outcomeFor(expected: Expected, mode: Mode): Outcome {
  return typeof expected === 'string' ? expected : expected[mode];
}

export function describeExpected(expected: Expected): string {
  if (typeof expected === 'string') return expected;
  return expected.noiommu === expected.iommu ? expected.noiommu : `noiommu: ${expected.noiommu}, iommu: ${expected.iommu}`;
}
