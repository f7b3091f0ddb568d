/**
 * sysfs.iommu-class derives its expectations from the IOMMU units the host reports: a host in
 * IOMMU mode whose units are not the lab's single dmar0 (none, another vendor's, several VT-d
 * units) gets a skip with the reason or checks of each unit, never a false failure.
 */
import assert from 'node:assert/strict';
import { createModelKernel, type ModelKernel } from '../../lib/model';
import { allCases } from '../../lib/selftest/cases';
import { discoverEnvironment } from '../../lib/selftest/environment';
import { runCase } from '../../lib/selftest/runner';

const iommuClass = allCases.find((c) => c.id === 'sysfs.iommu-class')!;

async function outcome(kernel: ModelKernel): Promise<{ status: string; reason: string | undefined }> {
  const r = await runCase(discoverEnvironment(kernel), iommuClass);
  return { status: r.status, reason: r.reason };
}

describe('sysfs.iommu-class on hosts unlike the lab [model linux-7.3-iommu]', () => {
  it('passes on the lab-like host (one dmar0)', async () => {
    assert.equal((await outcome(createModelKernel('linux-7.3-iommu'))).status, 'pass');
  });

  it('skips with the reason when the host reports no IOMMU unit', async () => {
    const kernel = createModelKernel('linux-7.3-iommu');
    kernel.vfs.remove('/sys/class/iommu/dmar0');
    const r = await outcome(kernel);
    assert.equal(r.status, 'skip');
    assert.match(r.reason ?? '', /no IOMMU unit/);
  });

  it("skips when the host's units are another vendor's", async () => {
    const kernel = createModelKernel('linux-7.3-iommu');
    kernel.vfs.remove('/sys/class/iommu/dmar0');
    kernel.vfs.add('/sys/class/iommu/ivhd0', { type: 'link', target: () => '../../devices/pci0000:00/0000:00:00.2/iommu/ivhd0' });
    const r = await outcome(kernel);
    assert.equal(r.status, 'skip');
    assert.match(r.reason ?? '', /ivhd0.*not VT-d/);
  });
});
