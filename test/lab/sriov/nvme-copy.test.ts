/**
 * NVMe Copy on the sriov machine's PF (test/devices/nvme-copy-observations.ts): QEMU 7.2's
 * controller, the model of that machine and the recording the model suite holds it to must agree.
 * The nvme machine's namespace (limits 0: every copy fails) is covered by the conformance lines.
 */
import assert from 'node:assert/strict';
import { nativeKernel } from '../../../lib/sys/native-kernel';
import { labModelKernel } from '../../../tools/fuzz/lab-model';
import { observeSriovCopy, recordedSriovCopy, SRIOV_PF } from '../../devices/nvme-copy-observations';
import { requireLab } from '../lab-environment';

describe('NVMe Copy on the sriov machine: QEMU 7.2 and its model', function () {
  this.timeout(120_000);
  it('copies, refuses and accounts the same ranges the same way', async function () {
    const lab = requireLab(this);
    const real = await observeSriovCopy(nativeKernel());
    console.log(`      real:\n${real.map((l) => `        ${l}`).join('\n')}`);
    assert.ok(real.includes('copy.one-range = ok 0x00000000'), 'a copy within the limits succeeds on this machine');
    assert.deepEqual(await observeSriovCopy(labModelKernel(lab.mode, SRIOV_PF, lab.kernel, 'sriov')), real);
    assert.deepEqual(recordedSriovCopy(), real, 'the recording in test/model/devices/fixtures is this run');
  });
});
