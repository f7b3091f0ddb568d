/**
 * On the nvme and multi lab machines: differential fuzzing with the device operations (MSI-X
 * enable/resize/trigger, config-space reads and writes, region info, resets) on every function
 * the guest bound to vfio-pci, each seed's program run on the real kernel and on the model of the
 * same machine (tools/fuzz/lab-model.ts) inside the guest, so a difference is shrunk right here.
 * The real kernel's traces go to the results directory as
 * fuzz/lab-traces-<machine>-<bdf>-<mode>-<kernel build>.json (the corpus format of
 * test/reliability/lab-traces), with a summary and a report beside them.
 * The file's name sorts last on purpose (the runner takes files in name order): the programs
 * reset functions and write their config space, and the other suites need them as booted.
 *
 * NODE_VFIO_FUZZ_SEEDS seeds (default 20) from NODE_VFIO_FUZZ_FIRST_SEED (default 1) per function.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { nativeKernel } from '../../../lib/sys/native-kernel';
import { runProgram } from '../../../tools/fuzz/program-runner';
import { runCampaign, formatCampaign } from '../../../tools/fuzz/campaign';
import { labModelKernel } from '../../../tools/fuzz/lab-model';
import { probeDeviceFeatures } from '../../../tools/fuzz/device-features';
import type { LabTraceFile } from '../../../tools/fuzz/corpus';
import { envNumber, labEnvironment, requireLab, type LabEnvironment } from '../lab-environment';

const environment = labEnvironment();
// Outside the lab the machine's functions are unknown: one suite that skips with the reason.
const functions = 'notInLab' in environment ? [null] : environment.bdfs;

for (const fn of functions) {
  describe(`lab: differential fuzzing with device operations, device ${fn ?? 'of the machine'}`, function () {
    let lab: LabEnvironment;

    before(function () {
      lab = requireLab(this);
      if (lab.machine === 'edu') {
        console.log('      skipped: the edu machine is fuzzed by test/lab/fuzz.test.ts');
        this.skip();
      }
    });

    it('answers every fuzz program exactly as the model of the machine does', function () {
      this.timeout(0);
      const bdf = fn ?? lab.bdf;
      const count = envNumber('NODE_VFIO_FUZZ_SEEDS', 20);
      const first = envNumber('NODE_VFIO_FUZZ_FIRST_SEED', 1);
      const kernel = nativeKernel();
      const model = () => labModelKernel(lab.mode, bdf, lab.kernel, lab.machine);
      const release = fs.readFileSync('/proc/sys/kernel/osrelease', 'utf8').trim();
      const device = probeDeviceFeatures(kernel, bdf);
      assert.deepEqual(probeDeviceFeatures(model(), bdf), device, "the model's device has other features than the real one");
      const started = Date.now();
      const result = runCampaign({
        seeds: Array.from({ length: count }, (_, i) => first + i),
        pageSize: kernel.pageSize,
        device,
        reference: { label: `Linux ${release}`, run: (p) => runProgram(kernel, p, { bdf }) },
        model: { label: 'model', run: (p) => runProgram(model(), p, { bdf }) },
      });
      const seconds = (Date.now() - started) / 1000;
      const dir = path.join(lab.resultsDir, 'fuzz');
      fs.mkdirSync(dir, { recursive: true });
      const name = `${lab.machine}-${bdf.replace(/[:.]/g, '-')}-${lab.mode}-${lab.kernel}`;
      const file: LabTraceFile = {
        format: 1,
        kernelRelease: release,
        mode: lab.mode,
        labKernel: lab.kernel,
        machine: lab.machine,
        bdf,
        pageSize: kernel.pageSize,
        recordedAt: new Date().toISOString(),
        runs: result.recorded,
      };
      fs.writeFileSync(path.join(dir, `lab-traces-${name}.json`), JSON.stringify(file));
      const report = formatCampaign(result, [`Linux ${release}`, 'model']);
      const summary = {
        machine: lab.machine,
        bdf,
        mode: lab.mode,
        kernel: lab.kernel,
        release,
        seeds: count,
        firstSeed: first,
        seconds,
        device,
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
      fs.writeFileSync(path.join(dir, `summary-${name}.json`), JSON.stringify(summary, null, 2));
      fs.writeFileSync(path.join(dir, `report-${name}.txt`), report);
      console.log(
        `      ${count} seeds on ${lab.machine} ${bdf} (${lab.mode}) in ${seconds.toFixed(1)} s: ${result.divergences.length} divergences, ${result.violations.length} invariant violations`,
      );
      assert.equal(report, '', `the model and Linux ${release} disagree:\n${report}`);
    });
  });
}
