/**
 * The SR-IOV VF-token cases (lib/selftest/cases/sriov-cases.ts, from the kernel's
 * vfio_pci_sriov_uapi_test) on the model of the lab's sriov machine, in both modes and on the
 * kernel with and without the group interface: every case must pass, none may skip.
 */
import assert from 'node:assert/strict';
import { createModelKernel } from '../../lib/model';
import { sriovCases } from '../../lib/selftest/cases/sriov-cases';
import { discoverEnvironment } from '../../lib/selftest/environment';
import { runCase } from '../../lib/selftest/runner';
import { labSriovProfile } from '../model/devices/lab-sriov-machine';
import { settle } from './mocha-adapter';

const targets = [
  { name: 'lab-sriov-noiommu', profile: () => labSriovProfile('noiommu') },
  { name: 'lab-sriov-iommu', profile: () => labSriovProfile('iommu') },
];

for (const target of targets) {
  describe(`SR-IOV VF tokens on the model: ${target.name}`, function () {
    for (const c of sriovCases) {
      it(`${c.id}: ${c.title}`, async function () {
        // A fresh machine per case: VF creation and the token's state start from boot.
        const env = discoverEnvironment(createModelKernel(target.profile()));
        const result = await runCase(env, c);
        assert.notEqual(result.status, 'skip', `${c.id} skipped on ${target.name}: ${JSON.stringify(result)}`);
        settle(this, result);
      });
    }
  });
}

