/**
 * QEMU 7.2's real NVMe controller (the lab's nvme machine): the conformance observations the
 * model is held to must still be what the real controller answers, and the example driver's CLI,
 * unchanged, must find the controller, write and read back a pattern and shut it down — in
 * noiommu mode (physical addresses) and behind the IOMMU (IOVAs). Run with
 *   npx tsc -p tsconfig.json && NODE_VFIO_LAB_ACCEL=tcg bash scripts/lab/run.sh <noiommu|iommu> --machine nvme -- \
 *     node scripts/test.mjs dist/test/lab/nvme.test.js
 * Elsewhere (and on the other lab machines) it skips.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { defaultKernel } from '../../../lib/sys/default-kernel';
import { conformanceDiff, observeNvme, recordedConformance } from '../../devices/nvme-conformance';
import { requireLab, type LabEnvironment } from '../lab-environment';
import { openDevice } from '../../../lib';
import { recoveryCase } from '../../devices/nvme-recovery-case';
import { allocationCase, allocationSummary, assertAllocationFree } from '../../devices/nvme-allocation-case';

const run = promisify(execFile);
const main = path.resolve(__dirname, '../../../examples/nvme/main.js');

describe('lab: QEMU 7.2 NVMe controller', function () {
  this.timeout(600_000);
  let lab: LabEnvironment;

  before(function () {
    lab = requireLab(this);
    if (process.env.NODE_VFIO_LAB_MACHINE !== 'nvme') {
      console.log(
        `    skipped: lab machine '${process.env.NODE_VFIO_LAB_MACHINE ?? 'edu'}' has no NVMe controller (run with --machine nvme)`,
      );
      this.skip();
    }
  });

  it('answers every conformance observation as recorded (the fixture the model is held to)', async () => {
    const observed = await observeNvme(defaultKernel(), lab.bdf, { interrupts: true });
    const diff = conformanceDiff(recordedConformance(lab.mode), observed);
    assert.deepEqual(diff, [], diff.join('\n'));
  });

  it('the example CLI drives it end to end: identify, pattern write and read back, SMART, shutdown', async () => {
    const { stdout, stderr } = await run(process.execPath, [main, lab.bdf, '--write', '--queues=2'], { timeout: 300_000 });
    const out = stdout + stderr;
    console.log(
      out
        .split('\n')
        .map((l) => `      ${l}`)
        .join('\n'),
    );
    assert.match(out, /the real kernel/);
    assert.match(out, /completions by MSI-X interrupt, 2 I\/O queue pair/);
    assert.match(out, /controller QEMU NVMe Ctrl serial nodevfio0001/);
    assert.match(out, lab.mode === 'noiommu' ? /physical addresses/ : /IOVA addresses/);
    assert.match(out, /data intact/);
    assert.match(out, /shut down \(CSTS 0x9\)/);
    assert.match(out, /all checks passed/);
  });

  it('the example CLI completes by INTx too (every queue on the pin)', async () => {
    const { stdout, stderr } = await run(process.execPath, [main, lab.bdf, '--write', '--queues=2', '--completion=intx', '--lba=8192'], {
      timeout: 300_000,
    });
    const out = stdout + stderr;
    assert.match(out, /completions by INTx interrupt, 2 I\/O queue pair/, out);
    assert.match(out, /data intact/, out);
    assert.match(out, /all checks passed/, out);
  });

  it('the I/O path allocates nothing per command (polled with a spin, 5 rounds of 4000 I/Os sampled by the heap profiler; the model runs the same case)', async () => {
    const device = openDevice(lab.bdf, { kernel: defaultKernel() });
    try {
      const report = await allocationCase(device, { spinMicroseconds: 1000 });
      console.log(`      ${allocationSummary(report)}`);
      assertAllocationFree(report);
    } finally {
      device.close();
    }
  });

  it("what the driver's recovery relies on: reset with I/O queues in place, re-init, data kept, Abort answers not aborted (the model runs the same case)", async () => {
    const device = openDevice(lab.bdf, { kernel: defaultKernel() });
    try {
      await recoveryCase(device, 12288);
    } finally {
      device.close();
    }
  });
});
