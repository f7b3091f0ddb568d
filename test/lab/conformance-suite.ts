/**
 * The conformance suite as a mocha suite on the real kernel in the QEMU lab, for one device of the
 * machine: every case of lib/selftest runs exactly as it runs on the model. Cases that need a
 * process without CAP_SYS_RAWIO run together in one child started through setpriv. The run's TAP
 * report is written to the lab's results directory. The edu machine's suite and the per-device
 * suites of the nvme and multi machines are both made here.
 */
import fs from 'node:fs';
import path from 'node:path';
import { nativeKernel } from '../../lib/sys/native-kernel';
import { allCases } from '../../lib/selftest/cases';
import { childArguments, parseChildOutput } from '../../lib/selftest/child';
import { describeEnvironment, discoverEnvironment, type Environment } from '../../lib/selftest/environment';
import { formatTap, totals } from '../../lib/selftest/report';
import { runCase } from '../../lib/selftest/runner';
import type { CaseResult } from '../../lib/selftest/types';
import { requireLab, type LabEnvironment } from './lab-environment';
import { findSetpriv, runNodeWithoutRawio } from './unprivileged';
import { settle } from '../conformance/mocha-adapter';

const unprivileged = allCases.filter((c) => c.needs?.includes('without-sys-rawio'));
const privileged = allCases.filter((c) => !c.needs?.includes('without-sys-rawio'));

export interface LabConformanceTarget {
  /** The device under test on this lab machine. */
  readonly bdf: (lab: LabEnvironment) => string;
  /** The TAP report's file name in the results directory. */
  readonly tapFile: (lab: LabEnvironment) => string;
}

export function describeLabConformance(title: string, target: LabConformanceTarget): void {
  describe(title, function () {
    this.timeout(120_000);
    let lab: LabEnvironment;
    let env: Environment;
    const results: CaseResult[] = [];

    before(function () {
      lab = requireLab(this);
      env = discoverEnvironment(nativeKernel(), { bdf: target.bdf(lab), mode: lab.mode });
      console.log(`      ${describeEnvironment(env)}`);
    });

    after(function () {
      if (!lab || results.length === 0) return;
      const file = path.join(lab.resultsDir, target.tapFile(lab));
      fs.writeFileSync(file, formatTap(results, [describeEnvironment(env)], true));
      const t = totals(results);
      console.log(
        `      conformance ${lab.machine} ${target.bdf(lab)} ${lab.mode}/${lab.kernel}: ${t.pass} passed, ${t.fail} failed, ${t.skip} skipped (TAP in ${file})`,
      );
    });

    for (const c of privileged) {
      it(`${c.id}: ${c.title}`, async function () {
        const r = await runCase(env, c);
        results.push(r);
        settle(this, r);
      });
    }

    describe('without CAP_SYS_RAWIO (child process via setpriv)', function () {
      const childResults = new Map<string, CaseResult>();
      let whyNot: string | null = null;

      before(function () {
        if (!lab) return;
        if (!findSetpriv()) {
          whyNot = 'setpriv (util-linux) is not installed, so no process without CAP_SYS_RAWIO can be started';
          return;
        }
        const child = path.resolve(__dirname, '../../lib/selftest/child.js');
        const args = childArguments({ caseIds: unprivileged.map((c) => c.id), bdf: target.bdf(lab), mode: lab.mode });
        const run = runNodeWithoutRawio(
          `require(${JSON.stringify(child)}).main(${JSON.stringify(args)}).catch((e) => { console.error(e); process.exit(1); })`,
          { timeout: 300_000 },
        );
        if (run.status !== 0) throw new Error(`the unprivileged child failed (status ${run.status}):\n${run.stderr}\n${run.stdout}`);
        for (const r of parseChildOutput(run.stdout)) childResults.set(r.id, r);
      });

      for (const c of unprivileged) {
        it(`${c.id}: ${c.title}`, function () {
          if (whyNot) {
            console.log(`      skipped: ${whyNot}`);
            this.skip();
          }
          const r = childResults.get(c.id);
          if (!r) throw new Error(`the child reported no result for ${c.id}`);
          results.push(r);
          settle(this, r);
        });
      }
    });
  });
}
