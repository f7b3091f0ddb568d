/**
 * The edu example switches unsafe noiommu mode on only when the user passes --unsafe-noiommu:
 * `npm start` on a real host without an IOMMU must not do it by itself.
 */
import assert from 'node:assert/strict';
import { createModelKernel, profiles, type Profile } from '../../lib/model';
import { PciDevice } from '../../lib/pci/pci-device';
import { isVfioError } from '../../lib/sys/errors';
import { eduBindOptions, parseEduOptions } from '../../examples/edu/options';

/** A host without an IOMMU, noiommu mode off, edu not bound: what a laptop without VT-d looks like. */
function hostWithoutIommu(): Profile {
  const base = profiles['linux-7.3-noiommu'];
  return { ...base, name: `${base.name}+off+unbound`, noiommu: false, pci: base.pci.map((d) => ({ ...d, driver: null })) };
}

describe('examples/edu asks before switching on unsafe noiommu mode [model]', () => {
  it('without --unsafe-noiommu the bind is refused and noiommu mode stays off', () => {
    const kernel = createModelKernel(hostWithoutIommu());
    const options = parseEduOptions(['--model']);
    assert.equal(options.unsafeNoiommu, false);
    const edu = PciDevice.get('0000:00:03.0', { kernel });
    assert.throws(
      () => edu.bindVfio(eduBindOptions(options)),
      (e: unknown) => isVfioError(e, 'ERR_VFIO_NOIOMMU_NOT_ALLOWED'),
    );
    assert.equal(PciDevice.noiommuMode({ kernel }), 'disabled');
    assert.equal(edu.driver, null);
  });

  it('with --unsafe-noiommu it switches the mode on and binds', () => {
    const kernel = createModelKernel(hostWithoutIommu());
    const edu = PciDevice.get('0000:00:03.0', { kernel });
    edu.bindVfio(eduBindOptions(parseEduOptions(['--unsafe-noiommu'])));
    assert.equal(PciDevice.noiommuMode({ kernel }), 'enabled');
    assert.equal(edu.driver, 'vfio-pci');
  });

  it('refuses unknown arguments', () => {
    assert.throws(() => parseEduOptions(['--unsafe']), /unknown argument '--unsafe'/);
  });
});
