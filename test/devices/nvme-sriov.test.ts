/**
 * The model of the lab's sriov machine against QEMU 7.2's controllers there: the PF in its NVM
 * subsystem, its resources, a secondary controller brought online and offline by
 * Virtualization Management, and Namespace Attachment (nvme-sriov-observations.ts), as the lab
 * recorded it, both modes.
 */
import assert from 'node:assert/strict';
import { labModelKernel } from '../../tools/fuzz/lab-model';
import { SRIOV_PF } from './nvme-copy-observations';
import { observeSriovControllers, recordedSriovControllers } from './nvme-sriov-observations';

describe("NVMe model = QEMU 7.2's controllers on the lab's sriov machine: subsystem, resources, secondary controllers", function () {
  this.timeout(60_000);
  for (const mode of ['noiommu', 'iommu'] as const) {
    it(`${mode}: Identify, Virtualization Management, a VF's controller and Namespace Attachment answer as the lab recorded`, async () => {
      const recorded = recordedSriovControllers();
      assert.ok(recorded.length > 110, 'the fixture holds the recording');
      assert.deepEqual(await observeSriovControllers(labModelKernel(mode, SRIOV_PF, 'group', 'sriov')), recorded);
    });
  }
});
