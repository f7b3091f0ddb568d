/**
 * The library's own sysfs binding on the real kernel: the guest's init bound the machine's devices
 * with shell writes; here the last of them is unbound and given back to vfio-pci through
 * PciDevice.unbind() / bindVfio(), and must come back with a working cdev. Runs after the other
 * device suites of the machine (file order), since a rebind may renumber its cdev.
 */
import assert from 'node:assert/strict';
import { nativeKernel } from '../../../lib/sys/native-kernel';
import { PciDevice } from '../../../lib/pci/pci-device';
import { openDevice } from '../../../lib/vfio/open-device';
import { isVfioError } from '../../../lib/sys/errors';
import { requireLab, type LabEnvironment } from '../lab-environment';

describe('lab: binding through the library on the real kernel', function () {
  this.timeout(120_000);
  let lab: LabEnvironment;
  before(function () {
    lab = requireLab(this);
  });

  it('unbind() leaves the device driverless; bindVfio() gives it back to vfio-pci with a cdev that opens', () => {
    const kernel = nativeKernel();
    const bdf = lab.bdfs[lab.bdfs.length - 1]!;
    const pci = PciDevice.get(bdf, { kernel });
    assert.equal(pci.driver, 'vfio-pci');
    pci.unbind();
    assert.equal(pci.driver, null, 'unbound');
    assert.equal(pci.cdevPath(), null, 'no cdev without vfio-pci');
    assert.throws(
      () => openDevice(bdf, { kernel }),
      (e: unknown) => isVfioError(e, 'ERR_VFIO_NOT_BOUND'),
    );
    pci.bindVfio({ unsafeNoiommu: lab.mode === 'noiommu' });
    assert.equal(pci.driver, 'vfio-pci');
    const cdev = pci.cdevPath();
    assert.ok(cdev, 'a cdev again');
    assert.match(cdev, lab.mode === 'noiommu' ? /\/noiommu-vfio\d+$/ : /\/vfio\d+$/);
    using device = openDevice(bdf, { kernel });
    assert.equal(device.config.vendorId, pci.vendorId);
  });

  it('unbind({ restore }) refuses a driver name that is a path, before writing anything', () => {
    const kernel = nativeKernel();
    const pci = PciDevice.get(lab.bdfs[0]!, { kernel });
    for (const bad of ['..', '.', '', '../vfio-pci']) {
      assert.throws(
        () => pci.unbind({ restore: bad }),
        (e: unknown) => e instanceof TypeError || e instanceof RangeError || isVfioError(e),
      );
    }
    assert.equal(pci.driver, 'vfio-pci', 'still bound: nothing was written');
  });
});
