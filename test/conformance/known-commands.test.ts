/**
 * Cases that use a command newer than the kernel skip with the reason instead of failing: the
 * environment asks the kernel which iommufd commands it knows, one zero-size call each.
 */
import { strict as assert } from 'node:assert';
import { createModelKernel } from '../../lib/model';
import { allCases } from '../../lib/selftest/cases';
import { discoverEnvironment } from '../../lib/selftest/environment';
import { runCase } from '../../lib/selftest/runner';
import * as I from '../../lib/uapi/iommufd';
import { allIoctls } from '../../lib/uapi/requests';

describe('conformance: commands the kernel knows', function () {
  it('Linux 7.3 knows every iommufd command of the uapi tables', function () {
    const probe = discoverEnvironment(createModelKernel('linux-7.3-noiommu')).iommufdCommands;
    assert.ok(probe.probed);
    const iommufd = allIoctls()
      .filter((r) => r.file === 'iommufd')
      .map((r) => r.name);
    assert.deepEqual(
      iommufd.filter((n) => !probe.known.has(n)),
      [],
    );
  });

  it('a 6.12 kernel lacks the commands that came later (MAP_FILE, VIOMMU, GET_PA), and keeps the older ones', function () {
    const probe = discoverEnvironment(createModelKernel('linux-6.x-legacy-noiommu')).iommufdCommands;
    assert.ok(probe.probed);
    for (const later of [I.IOMMU_IOAS_MAP_FILE, I.IOMMU_VIOMMU_ALLOC, I.IOMMU_IOAS_NOIOMMU_GET_PA])
      assert.ok(!probe.known.has(later.name), later.name);
    for (const older of [I.IOMMU_IOAS_ALLOC, I.IOMMU_IOAS_MAP, I.IOMMU_HWPT_ALLOC, I.IOMMU_DESTROY])
      assert.ok(probe.known.has(older.name), older.name);
  });

  it('on the 6.12 kernel a GET_PA case is skipped naming the command; on 7.3 it runs', async function () {
    const getPa = allCases.find((c) => c.id === 'get-pa.iova-overflow')!;
    const old = await runCase(discoverEnvironment(createModelKernel('linux-6.x-legacy-noiommu')), getPa);
    assert.equal(old.status, 'skip');
    assert.match(old.reason ?? '', /IOMMU_IOAS_NOIOMMU_GET_PA.*does not know/);
    const current = await runCase(discoverEnvironment(createModelKernel('linux-7.3-noiommu')), getPa);
    assert.equal(current.status, 'pass', current.reason);
  });

  it('without /dev/iommu nothing is probed and the reason is kept', function () {
    const kernel = createModelKernel('linux-7.3-noiommu');
    const exists = kernel.exists.bind(kernel);
    kernel.exists = (path) => path !== '/dev/iommu' && exists(path);
    const probe = discoverEnvironment(kernel).iommufdCommands;
    assert.deepEqual(probe, { probed: false, reason: 'there is no /dev/iommu' });
  });
});
