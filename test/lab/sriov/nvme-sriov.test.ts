/**
 * The sriov machine's NVMe controllers (test/devices/nvme-sriov-observations.ts): QEMU 7.2's PF
 * and VFs, the model of that machine and the recording the model suite holds it to must agree.
 */
import assert from 'node:assert/strict';
import { nativeKernel } from '../../../lib/sys/native-kernel';
import { labModelKernel } from '../../../tools/fuzz/lab-model';
import { SRIOV_PF } from '../../devices/nvme-copy-observations';
import { observeSriovControllers, recordedSriovControllers } from '../../devices/nvme-sriov-observations';
import { requireLab } from '../lab-environment';

describe('NVMe SR-IOV on the sriov machine: QEMU 7.2 and its model', function () {
  this.timeout(180_000);
  it('the PF in its subsystem, its resources, a VF brought online and offline, Namespace Attachment: the same answers', async function () {
    const lab = requireLab(this);
    const real = await observeSriovControllers(nativeKernel());
    assert.ok(real.includes('vm.online = ok 0x00000000'), 'Virtualization Management brings the VF online on this machine');
    assert.ok(real.includes('ns-detach = ok 0x00000000'), 'Namespace Attachment detaches the namespace on this machine');
    assert.deepEqual(await observeSriovControllers(labModelKernel(lab.mode, SRIOV_PF, lab.kernel, 'sriov')), real);
    assert.deepEqual(recordedSriovControllers(), real, 'the recording in test/model/devices/fixtures is this run');
  });
});
