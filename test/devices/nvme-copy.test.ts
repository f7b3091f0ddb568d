/**
 * The model of the lab's sriov machine against QEMU 7.2's controller there: NVMe Copy through an
 * nvme-ns namespace's limits (nvme-copy-observations.ts), as the lab recorded it, both modes.
 */
import assert from 'node:assert/strict';
import { labModelKernel } from '../../tools/fuzz/lab-model';
import { observeSriovCopy, recordedSriovCopy, SRIOV_PF } from './nvme-copy-observations';

describe("NVMe model = QEMU 7.2's controller on the lab's sriov machine: Copy", function () {
  this.timeout(60_000);
  for (const mode of ['noiommu', 'iommu'] as const) {
    it(`${mode}: copies, refuses and accounts ranges as the lab recorded`, async () => {
      const recorded = recordedSriovCopy();
      assert.ok(recorded.length > 10, 'the fixture holds the recording');
      assert.deepEqual(await observeSriovCopy(labModelKernel(mode, SRIOV_PF, 'group', 'sriov')), recorded);
    });
  }
});
