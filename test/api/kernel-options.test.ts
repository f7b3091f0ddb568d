/**
 * One convention for naming the kernel: every static opener takes `{ kernel }`, and what it
 * returns carries that kernel, so a program given a model kernel never reaches the real host
 * (the README's driver, run against an unbound edu on the model).
 */
import assert from 'node:assert/strict';
import { createModelKernel, profiles, type Profile } from '../../lib/model';
import { PciDevice } from '../../lib/pci/pci-device';
import { openDevice } from '../../lib/vfio/open-device';
import { Iommufd } from '../../lib/iommu/iommufd';
import { VfioContainer } from '../../lib/vfio/container';
import { VfioGroup } from '../../lib/vfio/group';
import { describeOnModel } from './support/targets';

const EDU = '0000:00:03.0';

function unboundEdu(): Profile {
  const base = profiles['linux-7.3-noiommu'];
  return { ...base, name: 'linux-7.3-noiommu+unbound', pci: base.pci.map((d) => ({ ...d, driver: null })) };
}

describeOnModel('{ kernel } options [model]', () => {
  it('the README driver binds, opens and maps on the kernel it was given, and nowhere else', () => {
    const kernel = createModelKernel(unboundEdu());
    const pci = PciDevice.get(EDU, { kernel });
    assert.equal(pci.kernel, kernel);
    assert.equal(pci.driver, null);
    pci.bindVfio({ unsafeNoiommu: true });
    assert.equal(PciDevice.get(EDU, { kernel }).driver, 'vfio-pci', 'bindVfio wrote the model sysfs');
    assert.equal(PciDevice.noiommuMode({ kernel }), 'enabled');
    using device = openDevice(pci.bdf, { kernel });
    assert.equal(device.kernel, kernel);
    using buffer = device.allocateDma(8192);
    assert.equal(buffer.kernel, kernel);
    assert.equal(device.iommufd?.kernel, kernel);
  });

  it('every static opener takes { kernel }, and the positional kernel still works', () => {
    const kernel = createModelKernel('linux-7.3-noiommu');
    assert.deepEqual(
      PciDevice.list({}, { kernel }).map((d) => d.bdf),
      [EDU],
    );
    assert.deepEqual(
      PciDevice.list({}, kernel).map((d) => d.bdf),
      [EDU],
    );
    assert.equal(PciDevice.get(EDU, kernel).kernel, kernel);
    using iommufd = Iommufd.open({ kernel });
    assert.equal(iommufd.kernel, kernel);
    using positional = Iommufd.open(kernel);
    assert.equal(positional.kernel, kernel);
    const legacy = createModelKernel('linux-6.x-legacy-noiommu');
    using container = VfioContainer.open({ kernel: legacy });
    assert.equal(container.kernel, legacy);
    using group = VfioGroup.open(PciDevice.get(EDU, { kernel: legacy }).iommuGroup!, { noiommu: true, kernel: legacy });
    assert.equal(group.kernel, legacy);
  });
});
