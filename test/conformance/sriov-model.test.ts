/**
 * The SR-IOV VF-token cases (lib/selftest/cases/sriov-cases.ts, from the kernel's
 * vfio_pci_sriov_uapi_test and the rules of vfio_pci_core_match_token_uuid) on the model of the
 * lab's sriov machine in both modes, and the cases for a function that is neither PF nor VF on
 * the model of the lab's nvme machine: every case must run there (a skip fails the test). On the
 * null-group build of the sriov machine (CONFIG_VFIO_GROUP=n, the lab's nullgroup kernel) the cdev
 * and sysfs cases must run and every group-path case must skip, saying the kernel has no groups.
 */
import assert from 'node:assert/strict';
import { createModelKernel, type Profile } from '../../lib/model';
import { sriovCases } from '../../lib/selftest/cases/sriov-cases';
import { discoverEnvironment } from '../../lib/selftest/environment';
import { runCase } from '../../lib/selftest/runner';
import { labSriovProfile } from '../model/devices/lab-sriov-machine';
import { labNvmeProfile } from '../model/devices/lab-nvme-machine';
import { labProfile } from '../../tools/fuzz/lab-model';
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

for (const mode of ['noiommu', 'iommu'] as const) {
  describe(`SR-IOV VF tokens on the model: lab-sriov-${mode}, null-group kernel`, function () {
    for (const c of sriovCases.filter((c) => !plainFunction(c.id))) {
      const group = c.id.startsWith('sriov.group.');
      it(`${c.id}: ${group ? 'skips: no group interface' : c.title}`, async function () {
        const env = discoverEnvironment(createModelKernel(labProfile(mode, '0000:00:04.0', 'nullgroup', 'sriov')));
        const result = await runCase(env, c);
        if (group) {
          assert.equal(result.status, 'skip', `${c.id} must skip without groups, got ${result.status}`);
          assert.match((result.status === 'skip' ? result.reason : undefined) ?? '', /no group interface/);
          return;
        }
        assert.notEqual(result.status, 'skip', `${c.id} skipped: ${result.status === 'skip' ? result.reason : ''}`);
        settle(this, result);
      });
    }
  });
}
