import assert from 'node:assert/strict';
import { Parser, type FinalResults } from 'tap-parser';
import { runCli } from '../../lib/cli/main';
import { allCases } from '../../lib/selftest/cases';

async function vfio(...argv: string[]): Promise<{ code: number; out: string; err: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const code = await runCli(argv, { stdout: (l) => out.push(l), stderr: (l) => err.push(l) });
  return { code, out: out.join('\n'), err: err.join('\n') };
}

function parseTap(text: string): Promise<FinalResults> {
  return new Promise((resolve) => {
    const p = new Parser((results) => resolve(results));
    p.end(text + '\n');
  });
}

describe('vfio selftest', function () {
  this.timeout(120_000);

  for (const profile of ['linux-7.3-noiommu', 'linux-7.3-iommu', 'linux-7.3-noiommu-nullgroup']) {
    it(`--tap on the ${profile} model is valid TAP 13 that a TAP parser reads as passing`, async () => {
      const r = await vfio('selftest', `--model=${profile}`, '--tap');
      assert.equal(
        r.code,
        0,
        r.out
          .split('\n')
          .filter((l) => l.startsWith('not ok'))
          .join('\n'),
      );
      assert.match(r.out, /^TAP version 13\n/);
      const results = await parseTap(r.out);
      assert.equal(results.ok, true);
      assert.equal(results.count, allCases.length);
      assert.equal(results.fail, 0);
      assert.ok(results.pass > allCases.length / 2, `most cases run on ${profile} (${results.pass} passed, ${results.skip} skipped)`);
      assert.match(r.out, /# Totals: pass:\d+ fail:0 xfail:0 xpass:0 skip:\d+ error:0/);
    });
  }

  it("includes the 19 cases of the kernel's vfio_iommufd_noiommu_test, all passing on the noiommu model", async () => {
    const r = await vfio('selftest', '--model', '--filter=^seed\\.');
    assert.equal(r.code, 0, r.out);
    const ran = r.out.split('\n').filter((l) => /^(ok {2}|skip|FAIL) seed\./.test(l));
    assert.equal(ran.length, 18);
    assert.ok(
      ran.every((l) => l.startsWith('ok')),
      r.out,
    );
  });

  it('--list names every case without running any', async () => {
    const r = await vfio('selftest', '--list', '--model');
    assert.equal(r.code, 0);
    assert.equal(r.out.split('\n').length, allCases.length);
  });

  it('without CAP_SYS_RAWIO the device cases are skipped with the reason, and the privilege cases run', async () => {
    const r = await vfio('selftest', '--model=unprivileged', '--tap');
    const results = await parseTap(r.out);
    assert.equal(results.fail, 0, r.out);
    assert.match(r.out, /# SKIP .*CAP_SYS_RAWIO/);
  });

  it('a filter that matches nothing, or is not a regular expression, is a usage error', async () => {
    assert.equal((await vfio('selftest', '--model', '--filter=^no-such-case$')).code, 2);
    assert.equal((await vfio('selftest', '--model', '--filter=(')).code, 2);
  });

  it('an unknown device address fails clearly', async () => {
    const r = await vfio('selftest', '0000:7f:00.0', '--model');
    assert.notEqual(r.code, 0);
    assert.match(r.err, /0000:7f:00\.0/);
  });
});

describe('vfio selftest takes only PCI addresses [model]', function () {
  this.timeout(60_000);

  it('refuses a path where the address belongs (it would become part of sysfs paths) as a usage error', async () => {
    for (const bad of ['../../../../tmp', '0000:00:03.0/../../..', 'edu']) {
      const r = await vfio('selftest', bad, '--model');
      assert.equal(r.code, 2, `${bad}: ${r.err}`);
      assert.match(r.err, /is not a PCI address/);
      assert.doesNotMatch(r.err, /internal error/);
    }
  });

  it('a device without a VFIO cdev is ERR_VFIO_NO_CDEV with exit status 1, not an internal error', async () => {
    const r = await vfio('selftest', '0000:7f:00.0', '--model');
    assert.equal(r.code, 1, r.err);
    assert.match(r.err, /ERR_VFIO_NO_CDEV/);
    assert.match(r.err, /hint: bind it to vfio-pci/);
  });

  it('the legacy noiommu profile (a vfio-dev entry without a dev attribute) is not mistaken for a cdev in IOMMU mode', async () => {
    const r = await vfio('selftest', '--model=linux-6.x-legacy-noiommu', '--filter=^sysfs\\.');
    assert.match(r.out, /mode noiommu/);
    assert.match(r.out, /no VFIO device/);
    assert.doesNotMatch(r.out, /^FAIL/m);
  });

  it('the whole suite on the 6.12 profile has no failure: commands newer than the kernel skip, naming the command', async () => {
    const r = await vfio('selftest', '--model=linux-6.x-legacy-noiommu');
    assert.equal(
      r.code,
      0,
      r.out
        .split('\n')
        .filter((l) => l.startsWith('FAIL'))
        .join('\n'),
    );
    assert.match(r.out, /# Totals: pass:\d+ fail:0 /);
    assert.match(r.out, /^skip map-file\.memfd: needs IOMMU_IOAS_MAP_FILE, which this kernel does not know/m);
  });

  it('takes several BDFs: the suite runs with each as the device under test, results named by device', async () => {
    const bdfs = ['0000:00:05.0', '0000:01:00.0'];
    const r = await vfio('selftest', '--model=lab-multi-iommu', '--tap', '--filter=^pci-device\\.config-space', ...bdfs);
    const results = await parseTap(r.out);
    assert.equal(r.code, 0, r.out);
    assert.equal(results.count, 2, 'one case on each of two devices');
    assert.equal(results.pass, 2);
    for (const bdf of bdfs) assert.match(r.out, new RegExp(`^ok \\d+ ${bdf}:pci-device\\.config-space-read-write`, 'm'));
  });

  it("with several BDFs, the parallel init sets up exactly those functions, in each device's run", async () => {
    const bdfs = ['0000:00:05.0', '0000:01:00.0'];
    const r = await vfio('selftest', '--model=lab-multi-iommu', '--verbose', '--filter=^parallel-init\\.iommufd$', ...bdfs);
    assert.equal(r.code, 0, r.out);
    const units = r.out.split('\n').filter((l) => /\/dev\/vfio\/devices\/vfio\d \(/.test(l));
    assert.equal(units.length, 4, `two units in each of two runs:\n${r.out}`);
    assert.ok(!r.out.includes('0000:00:05.1'), 'the function not given stays out');
  });

  it('refuses the same BDF twice and a BDF that is not a PCI address', async () => {
    const twice = await vfio('selftest', '--model=lab-multi-iommu', '0000:00:05.0', '0000:00:05.0');
    assert.equal(twice.code, 2, twice.err);
    assert.match(twice.err, /given twice/);
    const bad = await vfio('selftest', '--model=lab-multi-iommu', '0000:00:05.0', 'nonsense');
    assert.equal(bad.code, 2, bad.err);
    assert.match(bad.err, /'nonsense' is not a PCI address/);
  });

  it('--driver loads a selftest driver module; a module without selftestDriver is a usage error', async () => {
    const bad = await vfio('selftest', '--model', `--driver=${__filename}`, '--list');
    assert.equal(bad.code, 2, bad.err);
    assert.match(bad.err, /--driver: .* exports no selftestDriver/);
    const missing = await vfio('selftest', '--model', '--driver=/nonexistent/driver.js', '--list');
    assert.equal(missing.code, 2, missing.err);
    assert.match(missing.err, /--driver: Cannot find module/);
  });

  it("runs the driver matrix on the model's edu in every mode of the profile (--filter=^driver\\.)", async () => {
    const r = await vfio('selftest', '--model=linux-7.3-iommu', '--filter=^driver\\.');
    assert.equal(r.code, 0, r.out);
    const passed = r.out.split('\n').filter((l) => /^ok +driver\./.test(l));
    assert.equal(passed.length, 35, r.out);
  });
});
