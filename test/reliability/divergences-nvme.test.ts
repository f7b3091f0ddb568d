/**
 * Divergences the differential fuzzer found on the lab's nvme machine (real Linux 7.3 + QEMU 7.2,
 * IOMMU mode), kept as regression cases on the model of that machine.
 */
import assert from 'node:assert/strict';
import { createModelKernel } from '../../lib/model';
import { openDevice } from '../../lib/vfio/open-device';
import { labNvmeProfile } from '../../tools/fuzz/lab-nvme-machine';

describe('divergences found on the nvme machine', () => {
  for (const mode of ['iommu', 'noiommu'] as const) {
    it(`Device Control of QEMU's NVMe controller ignores writes: a 1 written at 0x88 reads back 0 (${mode}; fuzz seed 1)`, () => {
      using dev = openDevice('0000:00:04.0', { kernel: createModelKernel(labNvmeProfile(mode)) });
      const config = dev.region(7);
      config.write(0x88n, Buffer.from([1, 0]));
      assert.equal(config.read(0x88n, 2).readUInt16LE(), 0);
    });

    it(`VFIO_DEVICE_RESET keeps MSI-X enabled: the PCI core restores its state after the FLR (${mode}; fuzz seed 11)`, () => {
      using dev = openDevice('0000:00:04.0', { kernel: createModelKernel(labNvmeProfile(mode)) });
      const config = dev.region(7);
      const [vector] = dev.irqs.enable('msix', 1);
      assert.equal(config.read(0x43n, 1)[0], 0x80, 'MSI-X enable bit set by SET_IRQS');
      dev.reset();
      assert.equal(config.read(0x43n, 1)[0], 0x80, 'and still set after the reset');
      vector!.trigger();
      return vector!.wait().then((n) => assert.equal(n, 1n));
    });
  }
});
