/** The AER cases (test/devices/aer-cases.ts) on the model of the lab's multi machine. */
import assert from 'node:assert/strict';
import { createModelKernel } from '../../../lib/model';
import { resolveProfile } from '../../../lib/model/profile';
import { aerCases } from '../../devices/aer-cases';

for (const mode of ['noiommu', 'iommu'] as const) {
  describe(`model: AER errors at a root port (lab multi machine, ${mode})`, () => {
    aerCases(() =>
      Promise.resolve({
        kernel: createModelKernel(`lab-multi-${mode}`),
        bdf: '0000:01:00.0',
        rootPort: '0000:00:06.0',
        rootBusFunction: '0000:00:05.0',
        settleMs: 1000,
      }),
    );
  });
}

describe('model: AER on a kernel without CONFIG_PCIEAER', () => {
  it('has no /dev/aer_inject and no AER counters, though the root port has its AER capability', () => {
    const lab = resolveProfile('lab-multi-noiommu');
    const kernel = createModelKernel({ ...lab, config: { ...lab.config, PCIEAER: false, PCIEAER_INJECT: false } });
    assert.equal(kernel.exists('/dev/aer_inject'), false);
    const rootPorts = kernel
      .readdir('/sys/bus/pci/devices')
      .filter((d) => kernel.readFile(`/sys/bus/pci/devices/${d}/class`).toString().startsWith('0x0604'));
    assert.deepEqual(rootPorts, ['0000:00:06.0']);
    for (const d of rootPorts) {
      assert.equal(kernel.exists(`/sys/bus/pci/devices/${d}/aer_dev_correctable`), false);
      assert.equal(kernel.readFile(`/sys/bus/pci/devices/${d}/config`).readUInt32LE(0x100) & 0xffff, 0x0001, 'AER at 0x100');
    }
  });
});
