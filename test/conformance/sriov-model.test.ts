/**
 * The SR-IOV VF-token cases (lib/selftest/cases/sriov-cases.ts, from the kernel's
 * vfio_pci_sriov_uapi_test and the rules of vfio_pci_core_match_token_uuid) on the model of the
 * lab's sriov machine in both modes, and the cases for a function that is neither PF nor VF on
 * the model of the lab's nvme machine: every case must run there (a skip fails the test).
 */
import assert from 'node:assert/strict';
import { createModelKernel, type Profile } from '../../lib/model';
import { sriovCases } from '../../lib/selftest/cases/sriov-cases';
import { discoverEnvironment } from '../../lib/selftest/environment';
import { runCase } from '../../lib/selftest/runner';
import { labSriovProfile } from '../model/devices/lab-sriov-machine';
import { labNvmeProfile } from '../model/devices/lab-nvme-machine';
import { settle } from './mocha-adapter';

const plainFunction = (id: string) => id.endsWith('.token-on-plain-function');

const targets: { name: string; profile: () => Profile; cases: typeof sriovCases }[] = [];
for (const mode of ['noiommu', 'iommu'] as const) {
  targets.push({ name: `lab-sriov-${mode}`, profile: () => labSriovProfile(mode), cases: sriovCases.filter((c) => !plainFunction(c.id)) });
  targets.push({ name: `lab-nvme-${mode}`, profile: () => labNvmeProfile(mode), cases: sriovCases.filter((c) => plainFunction(c.id)) });
}

for (const target of targets) {
  describe(`SR-IOV VF tokens on the model: ${target.name}`, function () {
    for (const c of target.cases) {
      it(`${c.id}: ${c.title}`, async function () {
        // A fresh machine per case: VF creation and the token's state start from boot.
        const env = discoverEnvironment(createModelKernel(target.profile()));
        const result = await runCase(env, c);
        assert.notEqual(result.status, 'skip', `${c.id} skipped on ${target.name}: ${result.status === 'skip' ? result.reason : ''}`);
        settle(this, result);
      });
    }
  });
}
