/**
 * Starting points shared by the iommufd model tests.
 */
import type { Profile, ProfileName } from '../../../lib/model';
import { Harness } from '../harness';

/** A booted model kernel with /dev/iommu open (see Harness) and one IOAS allocated in it. */
export function harnessWithIoas(profile?: ProfileName | Profile): { h: Harness; ioas: number } {
  const h = new Harness(profile);
  return { h, ioas: h.ioasAlloc() };
}
