/**
 * The conformance suite on the model: every case of lib/selftest on every model profile (the
 * 6.x one too), exactly as the lab runs them on the real kernel, then on every further vfio-pci
 * function of those profiles and on the lab's nvme machine.
 */
import { allCases } from '../../lib/selftest/cases';
import { describeEnvironment, type Environment } from '../../lib/selftest/environment';
import { runCase } from '../../lib/selftest/runner';
import { settle } from './mocha-adapter';
import { modelEnvironment, modelTargets, moreModelTargets } from './model-profiles';

for (const target of modelTargets()) {
  describe(`conformance on the model: ${target.profile}`, function () {
    let env: Environment;

    before(function () {
      env = modelEnvironment(target.profile);
      console.log(`      ${describeEnvironment(env)}`);
    });

    for (const c of allCases) {
      it(`${c.id}: ${c.title}`, async function () {
        settle(this, await runCase(env, c));
      });
    }
  });
}

for (const target of moreModelTargets()) {
  describe(`conformance on the model: ${target.name}`, function () {
    let env: Environment;

    before(function () {
      env = target.environment();
      console.log(`      ${describeEnvironment(env)}`);
    });

    for (const c of allCases) {
      it(`${c.id}: ${c.title}`, async function () {
        settle(this, await runCase(env, c));
      });
    }
  });
}
