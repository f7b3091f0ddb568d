/** The NVMe driver's platform-fault cases (test/devices/nvme-platform-fault-cases.ts) on the model of the lab's nvme-port machine. */
import { createModelKernel } from '../../../lib/model';
import { labNvmePortProfile } from '../../../tools/fuzz/lab-nvme-port-machine';
import { nvmePlatformFaultCases } from '../../devices/nvme-platform-fault-cases';

for (const mode of ['noiommu', 'iommu'] as const) {
  describe(`model: the NVMe driver against AER errors and a hot-unplug (lab nvme-port machine, ${mode})`, function () {
    this.timeout(30_000);
    nvmePlatformFaultCases(() => {
      const kernel = createModelKernel(labNvmePortProfile(mode));
      return Promise.resolve({
        kernel,
        bdf: '0000:01:00.0',
        rootPort: '0000:00:05.0',
        unplug: () => kernel.hotUnplug('0000:01:00.0'),
        settleMs: 2000,
      });
    });
  });
}
