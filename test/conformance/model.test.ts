/**
 * The conformance suite on the model: every case of lib/selftest on every model profile of
 * Linux 7.3, exactly as the lab runs them on the real kernel. Cases listed in
 * lib/selftest/known-model-gaps.ts (the lab passes them, the model does not yet) are left to
 * `npm run test:gaps`.
 */
import { allCases } from '../../lib/selftest/cases';
import { describeEnvironment, type Environment } from '../../lib/selftest/environment';
import { isKnownModelGap } from '../../lib/selftest/known-model-gaps';
import { runCase } from '../../lib/selftest/runner';
import { settle } from './mocha-adapter';
import { modelEnvironment, modelTargets } from './model-profiles';

for (const target of modelTargets()) {
  describe(`conformance on the model: ${target.profile}`, function () {
    let env: Environment;

    before(function () {
      if (target.excluded) {
        console.log(`    skipped: ${target.excluded}`);
        this.skip();
      }
      env = modelEnvironment(target.profile);
      console.log(`      ${describeEnvironment(env)}`);
      const gaps = allCases.filter((c) => isKnownModelGap(c.id, target.profile)).map((c) => c.id);
      if (gaps.length) console.log(`      left to npm run test:gaps (known model gaps): ${gaps.join(', ')}`);
    });

    for (const c of allCases) {
      if (isKnownModelGap(c.id, target.profile)) continue;
      it(`${c.id}: ${c.title}`, async function () {
        settle(this, await runCase(env, c));
      });
    }
  });
}
