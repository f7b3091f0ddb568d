/**
 * The NVMe model against QEMU 7.2's real controller: the conformance observations
 * (nvme-conformance.ts) recorded in the lab's nvme machine must come out the same on a model
 * machine laid out like it, noiommu and IOMMU. The MSI-X lines are compared once the model's
 * vfio-pci can enable MSI-X; until then they are left out (and the test says so).
 */
import assert from 'node:assert/strict';
import { openDevice, type Kernel } from '../../lib';
import { createModelKernel } from '../../lib/model';
import { NvmeController } from '../../lib/devices/nvme';
import { conformanceDiff, INTERRUPT_PREFIX, observeNvme, recordedConformance } from './nvme-conformance';

const BDF = '0000:00:04.0';

function msixAvailable(kernel: Kernel): boolean {
  using device = openDevice(BDF, { kernel });
  try {
    device.irqs.enable('msix', 1);
    device.irqs.disable('msix');
    return true;
  } catch {
    return false;
  }
}

describe('NVMe model = QEMU 7.2 controller in the lab: conformance observations', function () {
  this.timeout(60_000);
  for (const mode of ['noiommu', 'iommu'] as const) {
    it(`${mode}: registers, enable sequences, identify, features, logs, command errors, PRP and SGL I/O, fatal status match the lab's`, async () => {
      const kernel = createModelKernel({
        base: `linux-7.3-${mode}`,
        withoutBaseDevices: true,
        devices: [{ address: BDF, model: new NvmeController() }],
      });
      const interrupts = msixAvailable(kernel);
      if (!interrupts) console.log(`      (MSI-X delivery not compared: the model's vfio-pci cannot enable MSI-X yet)`);
      const observed = await observeNvme(kernel, BDF, { interrupts });
      const lab = recordedConformance(mode).filter((l) => interrupts || !l.startsWith(INTERRUPT_PREFIX));
      const diff = conformanceDiff(lab, observed);
      assert.deepEqual(diff, [], diff.join('\n'));
      assert.ok(lab.length > 300, 'the fixture holds the whole recording');
    });
  }
});
