/**
 * Differential fuzzing on the real kernel: each seed's program runs on Linux 7.3 in the lab and
 * on the model of the same machine, inside the guest, so a difference is shrunk right here by
 * re-running both sides. The real kernel's traces go to the results directory
 * (fuzz/lab-traces-<mode>-<kernel build>.json, the format test/reliability/lab-traces keeps) with a summary.
 *
 * NODE_VFIO_FUZZ_SEEDS seeds from NODE_VFIO_FUZZ_FIRST_SEED (default 1), programs of
 * NODE_VFIO_FUZZ_LENGTH operations (generator default) — `node scripts/fuzz.mjs --lab` sets them.
 * The default, 20 seeds, takes 10-20 s per mode on the TCG lab (up to 4 s a seed with the emulated
 * VT-d when the host is busy: QEMU traps every IOTLB invalidation).
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { nativeKernel } from '../../lib/sys/native-kernel';
import { runProgram } from '../../tools/fuzz/program-runner';
import { runCampaign, formatCampaign } from '../../tools/fuzz/campaign';
import { labModelKernel } from '../../tools/fuzz/lab-model';
import type { LabTraceFile } from '../../tools/fuzz/corpus';
import { envNumber, requireLab, type LabEnvironment } from './lab-environment';

describe('lab: differential fuzzing against the real kernel', function () {
  let lab: LabEnvironment;

  before(function () {
    lab = requireLab(this);
  });

  it('answers every fuzz program exactly as the model does', function () {
    const count = envNumber('NODE_VFIO_FUZZ_SEEDS', 20);
    const first = envNumber('NODE_VFIO_FUZZ_FIRST_SEED', 1);
    const length = process.env.NODE_VFIO_FUZZ_LENGTH ? envNumber('NODE_VFIO_FUZZ_LENGTH', 40) : undefined;
    this.timeout(0);
    const kernel = nativeKernel();
    const release = fs.readFileSync('/proc/sys/kernel/osrelease', 'utf8').trim();
    const seeds = Array.from({ length: count }, (_, i) => first + i);
    const started = Date.now();
    const result = runCampaign({
      seeds,
      pageSize: kernel.pageSize,
      ...(length !== undefined ? { length } : {}),
      reference: { label: `Linux ${release}`, run: (p) => runProgram(kernel, p, { bdf: lab.bdf }) },
      model: { label: 'model', run: (p) => runProgram(labModelKernel(lab.mode, lab.bdf, lab.kernel), p, { bdf: lab.bdf }) },
    });
    const seconds = (Date.now() - started) / 1000;
    const dir = path.join(lab.resultsDir, 'fuzz');
    fs.mkdirSync(dir, { recursive: true });
    const file: LabTraceFile = {
      format: 1,
      kernelRelease: release,
      mode: lab.mode,
      labKernel: lab.kernel,
      bdf: lab.bdf,
      pageSize: kernel.pageSize,
      recordedAt: new Date().toISOString(),
      runs: result.recorded,
    };
    fs.writeFileSync(path.join(dir, `lab-traces-${lab.mode}-${lab.kernel}.json`), JSON.stringify(file));
    const report = formatCampaign(result, [`Linux ${release}`, 'model']);
    const summary = {
      mode: lab.mode,
      kernel: lab.kernel,
      release,
      seeds: count,
      firstSeed: first,
      seconds,
      divergences: result.divergences.map((d) => ({
        seed: d.program.seed,
        index: d.difference.index,
        what: d.difference.what,
        shrunk: d.shrunk.ops,
      })),
      violations: result.violations.map((v) => ({
        seed: v.seed,
        kernel: v.kernel,
        rules: v.violations.map((x) => x.rule),
        shrunk: v.shrunk.program.ops,
      })),
    };
    fs.writeFileSync(path.join(dir, `summary-${lab.mode}-${lab.kernel}.json`), JSON.stringify(summary, null, 2));
    fs.writeFileSync(path.join(dir, `report-${lab.mode}-${lab.kernel}.txt`), report);
    console.log(
      `      ${count} seeds on ${lab.mode} in ${seconds.toFixed(1)} s: ${result.divergences.length} divergences, ${result.violations.length} invariant violations`,
    );
    assert.equal(report, '', `the model and Linux ${release} disagree:\n${report}`);
  });
});
