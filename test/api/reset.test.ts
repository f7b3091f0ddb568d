/**
 * What VfioDevice.reset() and hotReset() say they did, on model machines shaped like the lab's:
 * edu on the root bus has no reset method, the edu behind the multi machine's root port is reset
 * through its bus (alone on it), the hot reset of that bus names the device it reset, and a
 * function with FLR (the NVMe controller's shape) is reset with it.
 */
import assert from 'node:assert/strict';
import { createModelKernel } from '../../lib/model';
import { openDevice } from '../../lib/vfio/open-device';
import { isVfioError } from '../../lib/sys/errors';
import { describeOnModel } from './support/targets';
import { labNvmeProfile } from '../model/devices/lab-nvme-machine';

describeOnModel('VfioDevice resets [model lab-multi]', () => {
  for (const profile of ['lab-multi-iommu', 'lab-multi-noiommu'] as const) {
    it(`a function alone behind a root port is reset through its bus, and its hot reset names it (${profile})`, () => {
      const kernel = createModelKernel(profile);
      using dev = openDevice('0000:01:00.0', { kernel });
      assert.equal(dev.canReset, true);
      assert.deepEqual(dev.resetMethods, ['bus']);
      assert.deepEqual(dev.reset(), { kind: 'function', method: 'bus', methods: ['bus'] });
      const hot = dev.hotReset();
      assert.equal(hot.kind, 'bus');
      assert.deepEqual(
        hot.affected?.map((d) => [d.bus, d.devfn]),
        [[1, 0]],
      );
    });

    it(`a function on the root bus has no reset method: reset() fails with EINVAL and says why (${profile})`, () => {
      const kernel = createModelKernel(profile);
      using dev = openDevice('0000:00:05.0', { kernel });
      assert.equal(dev.canReset, false);
      assert.deepEqual(dev.resetMethods, []);
      assert.throws(
        () => dev.reset(),
        (e: unknown) => isVfioError(e, 'EINVAL') && /no reset method/.test(e.hint ?? ''),
      );
      assert.throws(
        () => dev.hotReset(),
        (e: unknown) => isVfioError(e, 'ENODEV'),
      );
    });
  }

  it("a function with FLR is reset with FLR (the nvme machine's controller shape)", () => {
    const kernel = createModelKernel(labNvmeProfile('iommu'));
    using dev = openDevice('0000:00:04.0', { kernel });
    assert.deepEqual(dev.resetMethods, ['flr']);
    assert.equal(dev.reset().method, 'flr');
  });
});
