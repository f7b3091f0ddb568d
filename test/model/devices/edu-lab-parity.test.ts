/**
 * The model against recorded real-kernel behaviour: edu-observations.ts run in the QEMU lab
 * (Linux 7.3, QEMU 7.2 edu, q35, dma_mask=0xffffffffffffffff, edu bound to vfio-pci by the lab's
 * init) produced fixtures/edu-lab-7.3-<mode>.txt; the model must produce the same lines.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { createModelKernel } from '../../../lib/model';
import { observeEdu } from './edu-observations';

function recorded(mode: 'noiommu' | 'iommu'): string[] {
  const file = path.resolve(__dirname, '../../../../test/model/devices/fixtures', `edu-lab-7.3-${mode}.txt`);
  return fs
    .readFileSync(file, 'utf8')
    .split('\n')
    .filter((l) => l && !l.startsWith('#'));
}

describe('edu behind vfio-pci: model = recorded Linux 7.3 + QEMU 7.2 lab', () => {
  for (const [mode, profile] of [
    ['noiommu', 'linux-7.3-noiommu'],
    ['iommu', 'linux-7.3-iommu'],
  ] as const) {
    it(`${mode}: every observation matches the lab's`, async () => {
      const model = await observeEdu(createModelKernel(profile));
      const lab = recorded(mode);
      const diff = lab.filter((l, i) => model[i] !== l).map((l) => `lab:   ${l}\nmodel: ${model[lab.indexOf(l)]}`);
      assert.equal(model.length, lab.length, 'the same number of observations');
      assert.deepEqual(diff, [], diff.join('\n'));
    });
  }
});
