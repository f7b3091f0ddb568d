/**
 * A device model written on the SDK brings its own selftest driver: the copy engine example's
 * (examples/dma-copy/copy-engine-selftest-driver.ts), loaded the way `vfio selftest --driver`
 * loads it, makes the kernel's driver matrix run on that device in every IOMMU mode its machine
 * offers — every case passes there, the others skip for the mode; without it the matrix skips.
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { createModelKernel } from '../../lib/model';
import { allCases } from '../../lib/selftest/cases';
import { findSelftestDriver, loadSelftestDriverModule, unregisterSelftestDriver } from '../../lib/selftest/drivers';
import { discoverEnvironment } from '../../lib/selftest/environment';
import { runCase } from '../../lib/selftest/runner';
import { CopyEngineModel } from '../../examples/dma-copy/copy-engine-model';

const ADDRESS = '0000:00:05.0';
const MODULE = path.resolve(__dirname, '../../examples/dma-copy/copy-engine-selftest-driver.js');
const driverCases = allCases.filter((c) => c.id.startsWith('driver.'));

function environment(base: 'linux-7.3-noiommu' | 'linux-7.3-iommu') {
  return discoverEnvironment(createModelKernel({ base, devices: [{ address: ADDRESS, model: new CopyEngineModel() }] }), { bdf: ADDRESS });
}

describe('a selftest driver for a device model written on the SDK (the copy engine example)', () => {
  it('without the driver the matrix skips the device, saying no driver drives it', async () => {
    const env = environment('linux-7.3-iommu');
    assert.equal(findSelftestDriver(env.device), undefined);
    const r = await runCase(
      env,
      driverCases.find((c) => c.id === 'driver.iommufd.memcpy-success')!,
    );
    assert.equal(r.status, 'skip');
    assert.match(r.reason ?? '', /no selftest driver drives 0000:00:05\.0/);
  });

  for (const base of ['linux-7.3-iommu', 'linux-7.3-noiommu'] as const) {
    it(`with it loaded as --driver does, the driver matrix passes in every mode of ${base}`, async function () {
      this.timeout(20_000);
      const factory = loadSelftestDriverModule(MODULE);
      try {
        const env = environment(base);
        assert.equal(findSelftestDriver(env.device)?.name, 'copy-engine');
        const results = [];
        for (const c of driverCases) results.push(await runCase(env, c));
        const failed = results.filter((r) => r.status === 'fail').map((r) => `${r.id}: ${r.reason}`);
        assert.deepEqual(failed, []);
        const passed = results.filter((r) => r.status === 'pass').map((r) => r.id);
        // iommu: the kernel's five modes × 7 cases; noiommu: 2 modes × 5 (no unmapped IOVA without an IOMMU).
        assert.equal(passed.length, base === 'linux-7.3-iommu' ? 35 : 10, passed.join(', '));
      } finally {
        unregisterSelftestDriver(factory.name);
      }
    });
  }
});
