/**
 * The conformance framework itself, on the model: expectations per mode, skips with reasons,
 * teardown order, leak detection, the TAP/kselftest report and the selftest entry point.
 */
import assert from 'node:assert/strict';
import { createModelKernel } from '../../lib/model';
import { defineCase, type ConformanceCase } from '../../lib/selftest/case';
import { parseChildArguments, childArguments, parseChildOutput, RESULTS_MARKER } from '../../lib/selftest/child';
import { discoverEnvironment, type Environment } from '../../lib/selftest/environment';
import { selftest } from '../../lib/selftest';
import { formatTap, kselftestExitCode } from '../../lib/selftest/report';
import { runCase } from '../../lib/selftest/runner';
import { ioasAlloc } from '../../lib/selftest/steps';
import * as I from '../../lib/uapi/iommufd';
import { rawIoctl } from '../../lib/selftest/raw-ioctl';

function env(profile: 'linux-7.3-noiommu' | 'linux-7.3-iommu' | 'unprivileged' = 'linux-7.3-noiommu'): Environment {
  return discoverEnvironment(createModelKernel(profile));
}

function probe(run: ConformanceCase['run'], needs?: ConformanceCase['needs']): ConformanceCase {
  return defineCase({ id: 'framework.probe', title: 'probe', ...(needs ? { needs } : {}), run });
}

const destroyMissing = (e: Environment) =>
  probe((t) => {
    const fd = t.openIommufd();
    t.expect(
      'destroy 99',
      () => rawIoctl(t.kernel, fd, I.IOMMU_DESTROY, I.IommuDestroy, { id: 99 }),
      e.mode === 'noiommu' ? 'ENOENT' : 'EBUSY',
    );
  });

describe('conformance framework', function () {
  it('passes when the errno matches the expectation for the mode, and fails naming both otherwise', async function () {
    const e = env('linux-7.3-noiommu');
    assert.equal((await runCase(e, destroyMissing(e))).status, 'pass');
    const wrong = probe((t) => {
      const fd = t.openIommufd();
      t.expect('destroy 99', () => rawIoctl(t.kernel, fd, I.IOMMU_DESTROY, I.IommuDestroy, { id: 99 }), {
        noiommu: 'EBUSY',
        iommu: 'ENOENT',
      });
    });
    const r = await runCase(e, wrong);
    assert.equal(r.status, 'fail');
    assert.match(r.reason ?? '', /expected EBUSY .*got ENOENT/);
  });

  it('fails a call that was expected to fail but succeeded', async function () {
    const r = await runCase(
      env(),
      probe((t) => {
        const fd = t.openIommufd();
        t.expect('IOAS_ALLOC', () => ioasAlloc(t, fd), 'EINVAL');
      }),
    );
    assert.equal(r.status, 'fail');
    assert.match(r.reason ?? '', /expected EINVAL, but it succeeded/);
  });

  it('skips with the reason when a need is missing, without running the case', async function () {
    let ran = false;
    const r = await runCase(
      env('linux-7.3-noiommu'),
      probe(() => {
        ran = true;
      }, ['without-sys-rawio']),
    );
    assert.equal(r.status, 'skip');
    assert.match(r.reason ?? '', /without CAP_SYS_RAWIO/);
    assert.equal(ran, false);
    const unpriv = await runCase(
      env('unprivileged'),
      probe(() => undefined, ['device']),
    );
    assert.match(unpriv.reason ?? '', /noiommu device needs CAP_SYS_RAWIO/);
  });

  it('tears the fixture down in reverse order, also after a failure', async function () {
    const order: string[] = [];
    const r = await runCase(
      env(),
      probe((t) => {
        t.defer('first', () => order.push('first'));
        t.defer('second', () => order.push('second'));
        t.fail('on purpose');
      }),
    );
    assert.equal(r.status, 'fail');
    assert.deepEqual(order, ['second', 'first']);
  });

  it('fails a case that leaves an fd or a mapping open, and closes them for the next case', async function () {
    const e = env();
    let leakedFd = -1;
    const r = await runCase(
      e,
      probe((t) => {
        leakedFd = t.kernel.open('/dev/iommu', 2);
      }),
    );
    assert.equal(r.status, 'fail');
    assert.match(r.reason ?? '', /left open: fd \d+ \(\/dev\/iommu\)/);
    assert.throws(() => e.kernel.close(leakedFd), { code: 'EBADF' }, 'the runner closed the leaked fd');
    const m = await runCase(
      e,
      probe((t) => {
        t.kernel.mmap(-1, 4096n, 3, 0x22, 0n);
      }),
    );
    assert.match(m.reason ?? '', /left open: mapping at 0x/);
  });

  it('writes TAP 13 with SKIP directives, a YAML block for failures and the kselftest totals line', function () {
    const tap = formatTap(
      [
        { id: 'a', title: 'passes', status: 'pass', durationMs: 1, log: [] },
        { id: 'b', title: 'skips', status: 'skip', reason: 'no device', durationMs: 0, log: [] },
        { id: 'c', title: 'fails', status: 'fail', reason: 'expected EINVAL, got ENOENT', durationMs: 2, log: ['step'] },
      ],
      ['header'],
    );
    const lines = tap.trimEnd().split('\n');
    assert.equal(lines[0], 'TAP version 13');
    assert.equal(lines[1], '# header');
    assert.equal(lines[2], '1..3');
    assert.ok(lines.includes('ok 1 a - passes'));
    assert.ok(lines.includes('ok 2 b - skips # SKIP no device'));
    assert.ok(lines.includes('not ok 3 c - fails'));
    assert.ok(lines.includes('  message: "expected EINVAL, got ENOENT"'));
    assert.ok(lines.includes('# c: step'));
    assert.equal(lines.at(-1), '# Totals: pass:1 fail:1 xfail:0 xpass:0 skip:1 error:0');
    assert.equal(kselftestExitCode({ pass: 1, fail: 1, skip: 1 }), 1);
    assert.equal(kselftestExitCode({ pass: 0, fail: 0, skip: 3 }), 4);
    assert.equal(kselftestExitCode({ pass: 2, fail: 0, skip: 3 }), 0);
  });

  it('runs a selection through selftest() and streams the report', async function () {
    const lines: string[] = [];
    const report = await selftest({
      kernel: createModelKernel('linux-7.3-iommu'),
      select: /^ioas\.destroy\./,
      write: (l) => lines.push(l),
    });
    assert.ok(report.totals.pass >= 3);
    assert.equal(report.totals.fail, 0);
    assert.equal(report.exitCode, 0);
    assert.equal(lines[0], 'TAP version 13');
    assert.match(lines[1] ?? '', /mode iommu \(cdev name vfio0\)/);
    assert.match(lines.at(-1) ?? '', /^# Totals: pass:\d+ fail:0/);
  });

  it('passes case ids and results between a parent and an unprivileged child', function () {
    const args = childArguments({ caseIds: ['a.b', 'c'], bdf: '0000:00:03.0', mode: 'noiommu' });
    assert.deepEqual(parseChildArguments(args), { caseIds: ['a.b', 'c'], bdf: '0000:00:03.0', mode: 'noiommu' });
    const results = [{ id: 'a.b', title: 't', status: 'pass' as const, durationMs: 1, log: [] }];
    assert.deepEqual(parseChildOutput(`noise\n${RESULTS_MARKER}${JSON.stringify(results)}\n`), results);
    assert.throws(() => parseChildOutput('nothing here'), /no results line/);
  });
});
