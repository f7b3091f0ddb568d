/**
 * The model against recorded real-kernel behaviour on the lab's nvme and multi machines:
 * pci-observations.ts run in the QEMU lab (Linux 7.3, QEMU 7.2 q35; record-pci-observations.ts)
 * produced fixtures/<machine>-lab-7.3-<mode>.txt, one block of lines per function bound to
 * vfio-pci, in bus order. The model machine describing the same hardware must produce the very
 * same lines: sysfs identity and topology (IOMMU groups, cdevs), region and IRQ infos with their
 * capability chains, the virtualised config space, BAR sizing, the MSI-X SET_IRQS script with
 * every errno, INTx unmask through an eventfd, function, bus and hot resets.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { createModelKernel, type Profile } from '../../../lib/model';
import type { Kernel } from '../../../lib/sys/kernel';
import { observePciFunction } from './pci-observations';
import { labNvmeProfile } from './lab-nvme-machine';

type Mode = 'noiommu' | 'iommu';

function recorded(machine: string, mode: Mode): string[] {
  const file = path.resolve(__dirname, '../../../../test/model/devices/fixtures', `${machine}-lab-7.3-${mode}.txt`);
  return fs
    .readFileSync(file, 'utf8')
    .split('\n')
    .filter((l) => l && !l.startsWith('#'));
}

/** What record-pci-observations.ts prints, for every function bound to vfio-pci in bus order. */
function observeMachine(k: Kernel): string[] {
  const lines: string[] = [];
  for (const bdf of k
    .readdir('/sys/bus/pci/drivers/vfio-pci')
    .filter((n) => /^[0-9a-f]{4}:/.test(n))
    .sort()) {
    const cdev = k.readdir(`/sys/bus/pci/devices/${bdf}/vfio-dev`)[0]!;
    for (const line of observePciFunction(k, { bdf, cdev })) lines.push(`${bdf} ${line}`);
  }
  return lines;
}

function compare(model: string[], lab: string[], skip: (line: string) => boolean = () => false): void {
  const keep = (ls: string[]) => ls.filter((l) => !skip(l));
  const m = keep(model);
  const l = keep(lab);
  const diff = l.map((line, i) => (m[i] === line ? '' : `lab:   ${line}\nmodel: ${m[i]}`)).filter(Boolean);
  assert.deepEqual(diff, [], diff.join('\n'));
  assert.equal(m.length, l.length, 'the same number of observations');
}

describe('lab multi machine (two edu functions in one slot, one behind a PCIe root port): model = recorded Linux 7.3 + QEMU 7.2', () => {
  for (const mode of ['noiommu', 'iommu'] as const) {
    it(`${mode}: every observation of every function matches the lab's`, () => {
      compare(observeMachine(createModelKernel(`lab-multi-${mode}`)), recorded('multi', mode));
    });
  }
});

describe('lab nvme machine (MSI-X, PCIe, FLR): model = recorded Linux 7.3 + QEMU 7.2', () => {
  for (const mode of ['noiommu', 'iommu'] as const) {
    it(`${mode}: every observation of the NVMe controller (QEMU 7.2's, lib/devices/nvme) matches the lab's`, () => {
      const profile: Profile = labNvmeProfile(mode);
      compare(observeMachine(createModelKernel(profile)), recorded('nvme', mode), () => false);
    });
  }
});
