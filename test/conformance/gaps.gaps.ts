/**
 * `npm run test:gaps`: only the cases in lib/selftest/known-model-gaps.ts, on the profiles they
 * are listed for. The real kernel passes them in the lab; here they fail until the model is
 * fixed, and then this run tells which entries can be removed from the list.
 */
import { findCase } from '../../lib/selftest/cases';
import { KNOWN_MODEL_GAPS } from '../../lib/selftest/known-model-gaps';
import { runCase } from '../../lib/selftest/runner';
import { settle } from './mocha-adapter';
import { modelEnvironment, modelTargets } from './model-profiles';

describe('known model gaps (the lab passes these; the model does not yet)', function () {
  const entries = Object.entries(KNOWN_MODEL_GAPS);
  it('lists only cases that exist', function () {
    const unknown = entries.map(([id]) => id).filter((id) => !findCase(id));
    if (unknown.length) throw new Error(`known-model-gaps.ts names cases that do not exist: ${unknown.join(', ')}`);
  });

  for (const target of modelTargets().filter((t) => !t.excluded)) {
    const ids = entries.filter(([, ps]) => ps.includes('*') || ps.includes(target.profile)).map(([id]) => id);
    if (ids.length === 0) continue;
    describe(target.profile, function () {
      const env = () => modelEnvironment(target.profile);
      for (const id of ids) {
        it(id, async function () {
          const c = findCase(id);
          if (!c) throw new Error(`no case ${id}`);
          const r = await runCase(env(), c);
          // The real kernel passes these, so on the model anything but a pass is the gap itself.
          if (r.status === 'skip') throw new Error(`skipped on the model, passed in the lab: ${r.reason}`);
          settle(this, r);
        });
      }
    });
  }
});
