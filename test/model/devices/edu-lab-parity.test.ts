/**
 * The model against recorded real-kernel behaviour: edu-observations.ts run in the QEMU lab
 * (Linux 7.3, QEMU 7.2 edu, q35, dma_mask=0xffffffffffffffff, edu bound to vfio-pci by the lab's
 * init) produced fixtures/edu-lab-7.3-<mode>.txt; the model must produce the same lines.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { createModelKernel, profiles, type Profile } from '../../../lib/model';
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

/** A lab preset as the kernels of these fixtures were built: before CONFIG_PCI_IOV (7-line `resource`). */
function beforeIov(p: Profile): Profile {
  return { ...p, config: { ...p.config, PCI_IOV: false } };
}

describe('the lab-edu presets (the whole edu machine: nine functions) = recorded Linux 7.3 + QEMU 7.2 lab', () => {
  for (const mode of ['noiommu', 'iommu'] as const) {
    it(`lab-edu-${mode}: every observation of edu matches the lab's`, async () => {
      const model = await observeEdu(createModelKernel(beforeIov(profiles[`lab-edu-${mode}`])));
      const lab = recorded(mode);
      const diff = lab.filter((l, i) => model[i] !== l).map((l) => `lab:   ${l}\nmodel: ${model[lab.indexOf(l)]}`);
      assert.equal(model.length, lab.length, 'the same number of observations');
      assert.deepEqual(diff, [], diff.join('\n'));
    });
  }

  it('lists the nine PCI functions the lab guest lists, and with CONFIG_PCI_IOV a 13-line resource file', () => {
    const k = createModelKernel('lab-edu-noiommu');
    assert.deepEqual(k.readdir('/sys/bus/pci/devices').sort(), [
      '0000:00:00.0',
      '0000:00:01.0',
      '0000:00:02.0',
      '0000:00:03.0',
      '0000:00:04.0',
      '0000:00:05.0',
      '0000:00:1f.0',
      '0000:00:1f.2',
      '0000:00:1f.3',
    ]);
    const resource = k.readFile('/sys/bus/pci/devices/0000:00:03.0/resource').toString();
    assert.equal(resource.split('\n').filter(Boolean).length, 13);
    assert.match(resource, /^0x00000000fea00000 0x00000000feafffff 0x0000000000040200\n/);
  });
});
