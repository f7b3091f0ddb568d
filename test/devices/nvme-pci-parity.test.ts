/**
 * The NVMe model behind the model's vfio-pci against the lab's real QEMU 7.2 controller: the
 * device-agnostic PCI observations (config space, BAR, MSI-X, reset, the first registers of
 * BAR0) recorded on the lab's nvme machine (test/model/devices/fixtures/nvme-lab-7.3-<mode>.txt)
 * must come out the same on a model machine laid out like it.
 */
import assert from 'node:assert/strict';
import { labRecording } from './lab-recording';
import { createModelKernel, profiles } from '../../lib/model';
import { NvmeController } from '../../lib/devices/nvme';
import { observePciFunction } from '../model/devices/pci-observations';

const BDF = '0000:00:04.0';

/**
 * Observations the device model does not decide, left out until the model's host side has them:
 * the model's vfio-pci does not program MSI-X vectors yet (SET_IRQS for MSI-X, its eventfds and
 * the MSI-X control word it writes, the NORESIZE flag of the MSI-X IRQ info), and the model's
 * sysfs has no reset_method file.
 */
const HOST_SIDE = /^\S+ (setirqs\.|eventfd\.|msix\.ctrl\.|irq\.2 |sysfs\.reset_method )/;

function recorded(mode: 'noiommu' | 'iommu'): string[] {
  return labRecording(`nvme-lab-7.3-${mode}.txt`);
}

describe('NVMe model behind vfio-pci: model = recorded Linux 7.3 + QEMU 7.2 lab (nvme machine)', () => {
  for (const [mode, base] of [
    ['noiommu', 'linux-7.3-noiommu'],
    ['iommu', 'linux-7.3-iommu'],
  ] as const) {
    it(`${mode}: every PCI observation matches the lab's`, () => {
      // The lab's nvme machine has no edu; behind the IOMMU its controller is in group 4.
      // The lab kernels are built with CONFIG_PCI_IOV, which adds the IOV lines to sysfs `resource`.
      const kernel = createModelKernel({
        base: { ...profiles[base], config: { ...profiles[base].config, PCI_IOV: true } },
        withoutBaseDevices: true,
        devices: [{ address: BDF, model: new NvmeController(), ...(mode === 'iommu' ? { iommuGroup: 4 } : {}) }],
      });
      const cdev = kernel.readdir(`/sys/bus/pci/devices/${BDF}/vfio-dev`)[0]!;
      const model = observePciFunction(kernel, { bdf: BDF, cdev }).map((l) => `${BDF} ${l}`);
      const lab = recorded(mode).filter((l) => !HOST_SIDE.test(l));
      const observed = model.filter((l) => !HOST_SIDE.test(l));
      const key = (l: string) => l.slice(0, l.indexOf(' = '));
      const byKey = new Map(observed.map((l) => [key(l), l]));
      const diff = lab.filter((l) => byKey.get(key(l)) !== l).map((l) => `lab:   ${l}\nmodel: ${byKey.get(key(l)) ?? '(missing)'}`);
      assert.deepEqual(diff, [], diff.join('\n'));
      assert.deepEqual(observed.map(key), lab.map(key), 'the same observations in the same order');
    });
  }
});
