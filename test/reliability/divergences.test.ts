/**
 * Every difference differential fuzzing found between the model and the real Linux 7.3 kernel,
 * kept as its shrunk program with the answers the real kernel gave in the lab (copied from the
 * lab run's report). The model must give the same answers; each case names the model fix.
 */
import assert from 'node:assert/strict';
import { runProgram } from '../../tools/fuzz/program-runner';
import { labModelKernel, type LabMode } from '../../tools/fuzz/lab-model';
import type { FuzzOp } from '../../tools/fuzz/program';
import { compareTraces, type TraceEntry } from '../../tools/fuzz/trace';

interface FoundDivergence {
  readonly title: string;
  readonly mode: LabMode;
  /** Where it was found: lab run, seed. */
  readonly found: string;
  readonly ops: readonly FuzzOp[];
  /** The real kernel's answers (result and compared outputs only). */
  readonly kernel: readonly Pick<TraceEntry, 'op' | 'result' | 'out'>[];
}

const CASES: readonly FoundDivergence[] = [
  {
    title:
      'MSI enabled with zero vectors fails with ERANGE from pci_alloc_irq_vectors (model said EINVAL; fixed in vfio/irqs.ts msiEnable)',
    mode: 'noiommu',
    found: 'lab noiommu, Linux 7.3.0-rc7, seed 15 of a 40-seed run',
    ops: [
      { op: 'device-open', device: 0 },
      { op: 'bind', device: 0 },
      { op: 'irq-enable', device: 0, kind: 'msi', count: 0 },
    ],
    kernel: [
      { op: 'device-open', result: 'ok' },
      { op: 'bind', result: 'ok', out: { id: 1 } },
      { op: 'irq-enable', result: 'ERANGE' },
    ],
  },
  {
    title:
      'GET_HW_INFO of a VT-d device sets IOMMU_HW_INFO_VTD_ERRATA_772415_SPR17 (model said flags 0; fixed in iommufd/commands.ts getHwInfo)',
    mode: 'iommu',
    found: 'lab iommu, Linux 7.3.0-rc7, seeds 6, 13 and 15 of a 15-seed run',
    ops: [
      { op: 'device-open', device: 0 },
      { op: 'bind', device: 0 },
      { op: 'hw-info', device: 0 },
    ],
    kernel: [
      { op: 'device-open', result: 'ok' },
      { op: 'bind', result: 'ok', out: { id: 1 } },
      { op: 'hw-info', result: 'ok', out: { type: 1, capabilities: '0x8', data: '0100000000000000860226228c00d2004a0ff00000000000' } },
    ],
  },
];

describe('fuzz: divergences found in the lab stay fixed', function () {
  for (const c of CASES) {
    it(c.title, function () {
      const model = runProgram(labModelKernel(c.mode), { ops: c.ops }, { bdf: '0000:00:03.0' });
      const difference = compareTraces({ kernel: 'Linux 7.3', entries: c.kernel as TraceEntry[] }, model);
      assert.equal(difference, null, `${c.found}: ${difference?.what}`);
    });
  }
});
