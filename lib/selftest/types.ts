/**
 * Vocabulary of the conformance suite: the two ways a VFIO device can sit behind iommufd, the
 * outcome a case expects in each, and the result a case run produces.
 */
import type { ErrnoName } from '../sys/constants';

/**
 * How the device under test reaches memory. `noiommu`: no IOMMU, the cdev is
 * /dev/vfio/devices/noiommu-vfioN and DMA uses physical addresses (IOMMU_IOAS_NOIOMMU_GET_PA).
 * `iommu`: a real IOMMU translates; the cdev is /dev/vfio/devices/vfioN and DMA uses IOVAs.
 */
export type Mode = 'noiommu' | 'iommu';
export const MODES: readonly Mode[] = ['noiommu', 'iommu'];

/** A value given separately for each mode, like the kernel selftests' fixture variants. */
export interface PerMode<T> {
  readonly noiommu: T;
  readonly iommu: T;
}

/** What one call is expected to do: succeed, or fail with this errno. */
export type Outcome = 'ok' | ErrnoName;

/** An outcome that holds in both modes, or one stated per mode. */
export type Expected = Outcome | PerMode<Outcome>;

export type CaseStatus = 'pass' | 'fail' | 'skip';

export interface CaseResult {
  readonly id: string;
  readonly title: string;
  readonly status: CaseStatus;
  /** Why the case was skipped, or what failed. */
  readonly reason?: string;
  /** The failure's stack, for a report's diagnostic block. */
  readonly stack?: string;
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
