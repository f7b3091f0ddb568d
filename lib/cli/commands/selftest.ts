/**
 * `vfio selftest`: the conformance suite against a device on the real kernel or on the model —
 * the typed replacement for the kernel's C vfio selftests (including the 19 cases of
 * vfio_iommufd_noiommu_test). TAP 13 for CI systems with --tap, a kselftest-style summary, and
 * kselftest's exit status (0 pass, 1 a failure, 4 everything skipped).
 */
import { allCases } from '../../selftest/cases';
import { describeEnvironment, discoverEnvironment } from '../../selftest/environment';
import { kselftestExitCode, kselftestTotals, TapWriter, totals } from '../../selftest/report';
import { runCase } from '../../selftest/runner';
import type { CaseResult } from '../../selftest/types';
import { UsageError } from '../args';
import { isBdf } from '../../pci/pci-device';
import type { Command } from '../command';

export const selftestCommand: Command = {
  name: 'selftest',
  usage: 'vfio selftest [<bdf>] [--tap] [--filter=REGEX] [--list] [--verbose] [--model[=PROFILE]]',
  summary: 'run the VFIO/iommufd conformance suite against a device (or the model)',
  options: {
    tap: { description: 'print TAP version 13' },
    filter: { value: 'required', description: 'run only the cases whose id matches this regular expression' },
    list: { description: 'list the cases and exit' },
    verbose: { description: 'print what each case observed, not only for failures' },
  },
  async run({ kernel, args, stdout }) {
    const [bdf, ...rest] = args.positionals;
    if (rest.length > 0) throw new UsageError('at most one PCI address');
    const filter = args.options.get('filter');
    let pattern: RegExp | undefined;
    if (typeof filter === 'string') {
      try {
        pattern = new RegExp(filter);
      } catch (e) {
        throw new UsageError(`--filter: ${(e as Error).message}`);
      }
    }
    const cases = allCases.filter((c) => !pattern || pattern.test(c.id));
    if (args.options.has('list')) {
      for (const c of cases) stdout(`${c.id}  ${c.title}`);
      return 0;
    }
    if (cases.length === 0) throw new UsageError(`--filter matches no case`);
    if (bdf !== undefined && !isBdf(bdf))
      throw new UsageError(`'${bdf}' is not a PCI address (expected domain:bus:device.function, e.g. 0000:00:03.0)`);
    // A device without a cdev is the caller's mistake: ERR_VFIO_NO_CDEV (exit 1, with the hint).
    const env = discoverEnvironment(kernel, bdf === undefined ? {} : { bdf });
    const verbose = args.options.has('verbose');
    const header = [
      `node-vfio selftest on ${kernel.kind === 'model' ? `the model (${kernel.description})` : 'the real kernel'}`,
      describeEnvironment(env),
    ];
    const results: CaseResult[] = [];
    if (args.options.has('tap')) {
      const tap = new TapWriter(stdout);
      tap.begin(cases.length, header);
      for (const c of cases) {
        const r = await runCase(env, c);
        results.push(r);
        tap.result(r, verbose);
      }
      return kselftestExitCode(tap.end());
    }
    for (const line of header) stdout(line);
    for (const c of cases) {
      const r = await runCase(env, c);
      results.push(r);
      const tag = r.status === 'pass' ? 'ok  ' : r.status === 'skip' ? 'skip' : 'FAIL';
      stdout(`${tag} ${r.id}${r.status === 'pass' ? '' : `: ${r.reason ?? ''}`}`);
      if (verbose || r.status === 'fail') for (const line of r.log) stdout(`       ${line}`);
    }
    const t = totals(results);
    stdout(kselftestTotals(t));
    return kselftestExitCode(t);
  },
};
