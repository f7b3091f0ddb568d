import assert from 'node:assert/strict';
import { createModelKernel, profiles, type Profile, type ProfileName } from '../../lib/model';
import { PciDevice, normalizeBdf } from '../../lib/pci/pci-device';
import { openDevice } from '../../lib/vfio/open-device';
import { EDU_DEVICE, EDU_VENDOR } from './support/edu';
import { describeOnModel } from './support/targets';

const EDU = '0000:00:03.0';

function unbound(name: ProfileName, overrides: Partial<Profile> = {}): Profile {
  const base = profiles[name];
  return { ...base, ...overrides, name: `${name}+unbound`, pci: base.pci.map((d) => ({ ...d, driver: null })) };
}

describeOnModel('PciDevice: discovery and binding through sysfs [model]', () => {
  it('normalises PCI addresses and rejects anything else', () => {
    assert.equal(normalizeBdf('00:03.0'), '0000:00:03.0');
    assert.equal(normalizeBdf(' 0000:0A:1f.7 '), '0000:0a:1f.7');
    for (const bad of ['0000:00:03', '00:03.8', 'edu', '0000:00:03.0/']) assert.throws(() => normalizeBdf(bad), TypeError);
  });

  it('lists devices by vendor, device, class and driver', () => {
    const kernel = createModelKernel('linux-7.3-noiommu');
    const bdfs = (f: Parameters<typeof PciDevice.list>[0]) => PciDevice.list(f, kernel).map((d) => d.bdf);
    assert.deepEqual(bdfs({}), [EDU]);
    assert.deepEqual(bdfs({ vendorId: EDU_VENDOR, deviceId: EDU_DEVICE }), [EDU]);
    assert.deepEqual(bdfs({ vendorId: 0x8086 }), []);
    assert.deepEqual(bdfs({ baseClass: 0x00 }), [EDU], 'edu is class 0x00ff00');
    assert.deepEqual(bdfs({ baseClass: 0x00, subclass: 0xff }), [EDU]);
    assert.deepEqual(bdfs({ baseClass: 0x00, subclass: 0xff, progIf: 0x00 }), [EDU]);
    assert.deepEqual(bdfs({ baseClass: 0x02 }), []);
    assert.deepEqual(bdfs({ subclass: 0x08 }), []);
    assert.deepEqual(bdfs({ driver: 'vfio-pci' }), [EDU]);
    assert.deepEqual(bdfs({ driver: null }), []);
  });

  it('reads identity, driver, IOMMU group and cdev of a device', () => {
    const noiommu = PciDevice.get('00:03.0', createModelKernel('linux-7.3-noiommu'));
    assert.equal(noiommu.bdf, EDU);
    assert.equal(noiommu.vendorId, EDU_VENDOR);
    assert.equal(noiommu.deviceId, EDU_DEVICE);
    assert.equal(noiommu.classCode, 0x00ff00);
    assert.equal(noiommu.driver, 'vfio-pci');
    assert.equal(noiommu.hasIommu, false);
    assert.equal(noiommu.cdevPath(), '/dev/vfio/devices/noiommu-vfio0');
    const iommu = PciDevice.get(EDU, createModelKernel('linux-7.3-iommu'));
    assert.equal(iommu.hasIommu, true);
    assert.equal(iommu.iommuGroup, 3);
    assert.equal(iommu.cdevPath(), '/dev/vfio/devices/vfio0');
    assert.equal(PciDevice.get(EDU, createModelKernel('linux-6.x-legacy-noiommu')).cdevPath(), null, 'no noiommu cdev before 7.3');
    assert.throws(() => PciDevice.get('0000:00:09.0', createModelKernel('linux-7.3-noiommu')), /no PCI device/);
  });

  it('reports the noiommu module parameter', () => {
    assert.equal(PciDevice.noiommuMode(createModelKernel('linux-7.3-noiommu')), 'enabled');
    assert.equal(PciDevice.noiommuMode(createModelKernel('linux-7.3-iommu')), 'disabled');
  });

  it('binds an IOMMU-backed device to vfio-pci and gives it back on unbind', () => {
    const kernel = createModelKernel(unbound('linux-7.3-iommu'));
    const edu = PciDevice.get(EDU, kernel);
    assert.equal(edu.driver, null);
    assert.equal(edu.cdevPath(), null);
    edu.bindVfio();
    assert.equal(edu.driver, 'vfio-pci');
    assert.equal(edu.previousDriver, null);
    assert.equal(edu.cdevPath(), '/dev/vfio/devices/vfio0');
    assert.equal(PciDevice.noiommuMode(kernel), 'disabled', 'an IOMMU-backed device needs no noiommu mode');
    {
      using dev = openDevice(EDU, { kernel });
      assert.equal(dev.config.vendorId, EDU_VENDOR);
    }
    edu.unbind({ restore: true });
    assert.equal(edu.driver, null, 'restored to what it had: no driver');
    assert.equal(kernel.readFile(`${edu.path}/driver_override`).toString().trim(), '(null)');
  });

  it('binds a device without an IOMMU only with unsafeNoiommu, switching noiommu mode on', () => {
    const kernel = createModelKernel(unbound('linux-7.3-noiommu', { noiommu: false }));
    const edu = PciDevice.get(EDU, kernel);
    assert.throws(() => edu.bindVfio(), /refusing/);
    edu.bindVfio({ unsafeNoiommu: true });
    assert.equal(PciDevice.noiommuMode(kernel), 'enabled');
    assert.equal(edu.driver, 'vfio-pci');
    assert.equal(edu.cdevPath(), '/dev/vfio/devices/noiommu-vfio0');
    using dev = openDevice(EDU, { kernel });
    assert.equal(dev.backend.noiommu, true);
  });

  it('binding an already bound device is a no-op; unbind without restore leaves it unbound', () => {
    const kernel = createModelKernel('linux-7.3-noiommu');
    const edu = PciDevice.get(EDU, kernel);
    edu.bindVfio();
    assert.equal(edu.driver, 'vfio-pci');
    edu.unbind();
    assert.equal(edu.driver, null);
    assert.equal(edu.vfioCdevs().length, 0);
  });
});
