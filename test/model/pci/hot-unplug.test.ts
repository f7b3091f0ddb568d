/** The hot-unplug cases (test/devices/hot-unplug-cases.ts) on the model of the lab's hotplug machine. */
import { createModelKernel } from '../../../lib/model';
import { labHotplugProfile } from '../../../tools/fuzz/lab-hotplug-machine';
import { hotUnplugCases } from '../../devices/hot-unplug-cases';

for (const mode of ['noiommu', 'iommu'] as const) {
  describe(`model: hot-unplug on the lab hotplug machine (${mode})`, () => {
    let next = 0;
    hotUnplugCases(() => {
      // Each case boots its own machine and, as in the lab, takes a function of its own.
      const kernel = createModelKernel(labHotplugProfile(mode));
      const bdf = `0000:0${(next++ % 3) + 1}:00.0`;
      return Promise.resolve({
        kernel,
        bdf,
        unplug: () => kernel.hotUnplug(bdf),
        restore: () => Promise.resolve(),
        settleMs: 50,
      });
    });
  });
}
