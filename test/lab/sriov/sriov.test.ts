/**
 * The SR-IOV VF-token cases (lib/selftest/cases/sriov-cases.ts) on the real kernel, on the lab's
 * sriov machine (QEMU 7.2's NVMe controller with sriov_max_vfs=2 at 00:04.0, bound to vfio-pci):
 * the same cases test/conformance/sriov-model.test.ts runs on the model of that machine.
 */
import { nativeKernel } from '../../../lib/sys/native-kernel';
import { sriovCases } from '../../../lib/selftest/cases/sriov-cases';
import { describeEnvironment, discoverEnvironment, type Environment } from '../../../lib/selftest/environment';
import { runCase } from '../../../lib/selftest/runner';
import { requireLab } from '../lab-environment';
import { settle } from '../../conformance/mocha-adapter';

const PF = '0000:00:04.0';

describe('SR-IOV VF tokens on the real kernel (lab sriov machine)', function () {
  this.timeout(120_000);
  let env: Environment;

  before(function () {
    const lab = requireLab(this);
    env = discoverEnvironment(nativeKernel(), { bdf: PF, mode: lab.mode });
    console.log(`      ${describeEnvironment(env)}`);
  });

  for (const c of sriovCases) {
    it(`${c.id}: ${c.title}`, async function () {
      settle(this, await runCase(env, c));
    });
  }
});
