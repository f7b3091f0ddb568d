/**
 * `vfio selftest`: the conformance suite against a device on the real kernel or on the model —
 * the typed replacement for the kernel's C vfio selftests (including the 19 cases of
 * vfio_iommufd_noiommu_test). TAP 13 for CI systems with --tap, a kselftest-style summary, and
 * kselftest's exit status (0 pass, 1 a failure, 4 everything skipped).
 */
import path from 'node:path';
import { allCases } from '../../selftest/cases';
import { loadSelftestDriverModule } from '../../selftest/drivers';
import { describeEnvironment, discoverEnvironment } from '../../selftest/environment';
import { kselftestExitCode, kselftestTotals, TapWriter, totals } from '../../selftest/report';
import { runCase } from '../../selftest/runner';
import type { CaseResult } from '../../selftest/types';
import { UsageError } from '../args';
import { isBdf, normalizeBdf } from '../../pci/pci-device';
import type { Command } from '../command';

export const selftestCommand: Command = {
  name: 'selftest',
  usage: 'vfio selftest [<bdf>...] [--tap] [--filter=REGEX] [--list] [--verbose] [--driver=MODULE] [--model[=PROFILE]]',
  summary: 'run the VFIO/iommufd conformance suite against a device (or the model)',
  options: {
    tap: { description: 'print TAP version 13' },
    filter: { value: 'required', description: 'run only the cases whose id matches this regular expression' },
    list: { description: 'list the cases and exit' },
    verbose: { description: 'print what each case observed, not only for failures' },
    driver: {
      value: 'required',
      description: 'load a selftest driver for the driver matrix from this module (it exports selftestDriver; see lib/selftest/drivers)',
    },
  },
  async run({ kernel, args, stdout }) {
    const bdfs = args.positionals;
    if (new Set(bdfs).size !== bdfs.length) throw new UsageError('a PCI address is given twice');
    const filter = args.options.get('filter');
    let pattern: RegExp | undefined;
    if (typeof filter === 'string') {
      try {
        pattern = new RegExp(filter);
      } catch (e) {
        throw new UsageError(`--filter: ${(e as Error).message}`);
      }
    }
    const driver = args.options.get('driver');
    if (typeof driver === 'string') {
      try {
        loadSelftestDriverModule(path.resolve(driver));
      } catch (e) {
        throw new UsageError(`--driver: ${(e as Error).message}`);
      }
    }
    const cases = allCases.filter((c) => !pattern || pattern.test(c.id));
    if (args.options.has('list')) {
      for (const c of cases) stdout(`${c.id}  ${c.title}`);
      return 0;
    }
    if (cases.length === 0) throw new UsageError(`--filter matches no case`);
    for (const bdf of bdfs) {
      if (!isBdf(bdf)) throw new UsageError(`'${bdf}' is not a PCI address (expected domain:bus:device.function, e.g. 0000:00:03.0)`);
    }
    // Each device given is the device under test in turn (the others are its peers); none: the first bound one.
    // A device without a cdev is the caller's mistake: ERR_VFIO_NO_CDEV (exit 1, with the hint).
    // Several given: they are the functions the several-device cases (parallel init, multi.*) use.
    const peers = bdfs.length > 1 ? { devices: bdfs.map(normalizeBdf) } : {};
    const envs = bdfs.length === 0 ? [discoverEnvironment(kernel)] : bdfs.map((bdf) => discoverEnvironment(kernel, { bdf, ...peers }));
    const several = envs.length > 1;
    const verbose = args.options.has('verbose');
    const where = kernel.kind === 'model' ? `the model (${kernel.description})` : 'the real kernel';
    const header = [`node-vfio selftest on ${where}`, ...envs.map(describeEnvironment)];
    /** With several devices a result names its device: the same case runs once per device. */
    const named = (env: (typeof envs)[number], r: CaseResult): CaseResult =>
      several ? { ...r, id: `${env.device?.bdf ?? 'no-device'}:${r.id}` } : r;
    const results: CaseResult[] = [];
    if (args.options.has('tap')) {
      const tap = new TapWriter(stdout);
      tap.begin(cases.length * envs.length, header);
      for (const env of envs) {
        for (const c of cases) {
          const r = named(env, await runCase(env, c));
          results.push(r);
          tap.result(r, verbose);
        }
      }
      return kselftestExitCode(tap.end());
    }
    for (const line of header) stdout(line);
    for (const env of envs) {
      if (several) stdout(`# device under test: ${env.device?.bdf ?? 'none'}`);
      for (const c of cases) {
        const r = named(env, await runCase(env, c));
        results.push(r);
        const tag = r.status === 'pass' ? 'ok  ' : r.status === 'skip' ? 'skip' : 'FAIL';
        stdout(`${tag} ${r.id}${r.status === 'pass' ? '' : `: ${r.reason ?? ''}`}`);
        if (verbose || r.status === 'fail') for (const line of r.log) stdout(`       ${line}`);
      }
    }
    const t = totals(results);
    stdout(kselftestTotals(t));
    return kselftestExitCode(t);
  },
};
