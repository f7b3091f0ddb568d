/** The hot-unplug cases (test/devices/hot-unplug-cases.ts) on the model of the lab's multi machine. */
import { createModelKernel } from '../../../lib/model';
import { hotUnplugCases } from '../../devices/hot-unplug-cases';

const BEHIND_ROOT_PORT = '0000:01:00.0';

for (const mode of ['noiommu', 'iommu'] as const) {
  describe(`model: hot-unplug on the lab multi machine (${mode})`, () => {
    hotUnplugCases(() => {
      const kernel = createModelKernel(`lab-multi-${mode}`);
      return Promise.resolve({
        kernel,
        bdf: BEHIND_ROOT_PORT,
        unplug: () => kernel.hotUnplug(BEHIND_ROOT_PORT),
        // Every case boots its own machine.
        restore: () => Promise.resolve(),
        settleMs: 50,
      });
    });
  });
}
