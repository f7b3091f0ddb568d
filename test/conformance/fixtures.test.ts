/**
 * The suite's fixture machinery on the model: fixtures set up before the case and release
 * everything after it even when it fails, fixture needs come before the case's own, variant rows
 * expand into cases row by row, and a generated call packs the struct its layout describes.
 */
import assert from 'node:assert/strict';
import { createModelKernel } from '../../lib/model';
import type { Kernel } from '../../lib/sys/kernel';
import * as I from '../../lib/uapi/iommufd';
import * as V from '../../lib/uapi/vfio';
import { call } from '../../lib/selftest/calls';
import { casesOn, defineFixture, extendFixture, forEachVariant } from '../../lib/selftest/fixture';
import { boundWithIoas, ioas, mappedBuffer } from '../../lib/selftest/fixtures';
import { discoverEnvironment, type Environment } from '../../lib/selftest/environment';
import { runCase } from '../../lib/selftest/runner';
import { TrackedKernel } from '../../lib/selftest/tracked-kernel';
import type { ConformanceCase } from '../../lib/selftest/case';

/** A model machine whose ioctl buffers are copied as they are sent. */
function recordingEnv(profile: 'linux-7.3-noiommu' | 'unprivileged' = 'linux-7.3-noiommu'): {
  env: Environment;
  sent: { request: number; bytes: Buffer }[];
} {
  const kernel: Kernel = createModelKernel(profile);
  const sent: { request: number; bytes: Buffer }[] = [];
  const ioctl = kernel.ioctl.bind(kernel);
  kernel.ioctl = (fd, request, arg) => {
    if (Buffer.isBuffer(arg)) sent.push({ request, bytes: Buffer.from(arg) });
    return ioctl(fd, request, arg);
  };
  const env = discoverEnvironment(kernel);
  // Only what the case sends: discovery's own probes (device facts, known commands) came before.
  sent.length = 0;
  return { env, sent };
}

/**
 * Runs a case and reports what was still open when the runner checked for leaks, which it only
 * reports itself for a case that passed.
 */
async function runCountingLeaks(env: Environment, c: ConformanceCase) {
  const original = TrackedKernel.prototype.releaseAll;
  let leftOpen = -1;
  TrackedKernel.prototype.releaseAll = function (this: TrackedKernel) {
    const leaked = original.call(this);
    leftOpen = leaked.fds.length + leaked.mappings.length;
    return leaked;
  };
  try {
    return { result: await runCase(env, c), leftOpen };
  } finally {
    TrackedKernel.prototype.releaseAll = original;
  }
}

describe('conformance fixtures', function () {
  it("runs a fixture's teardown and releases what its setup opened after the case fails", async function () {
    const { env } = recordingEnv();
    const order: string[] = [];
    const withTeardown = defineFixture({
      name: 'an iommufd with a teardown',
      needs: [],
      setup: (t) => {
        const iommufd = t.openIommufd();
        t.defer('the first cleanup', () => order.push('context cleanup'));
        return { t, iommufd };
      },
      teardown: () => order.push('fixture teardown'),
    });
    const { result: r, leftOpen } = await runCountingLeaks(
      env,
      casesOn(withTeardown).test('fixtures.failing', 'fails', (t) => t.fail('on purpose')),
    );
    assert.equal(r.status, 'fail');
    assert.equal(r.reason, 'on purpose');
    assert.equal(leftOpen, 0, "teardown closed the fixture's iommufd");
    assert.deepEqual(order, ['fixture teardown', 'context cleanup']);
  });

  it('releases what the base fixture opened when an extension fails half-way through setup', async function () {
    const { env } = recordingEnv();
    const broken = extendFixture(ioas, 'an IOAS whose extension fails', (f) => {
      f.t.anonymousMemory(f.t.page);
      return f.t.fail('setup failed after opening an iommufd, an IOAS and a mapping');
    });
    let ran = false;
    const { result: r, leftOpen } = await runCountingLeaks(
      env,
      casesOn(broken).test('fixtures.broken-setup', 'never runs', () => {
        ran = true;
      }),
    );
    assert.equal(ran, false);
    assert.equal(r.status, 'fail');
    assert.match(r.reason ?? '', /^setup failed/);
    assert.equal(leftOpen, 0, 'teardown closed the iommufd and unmapped the memory');
  });

  it("puts the fixture's needs before the case's, so a missing device is the reason given", async function () {
    const { env } = recordingEnv('unprivileged');
    const c = casesOn(mappedBuffer({ pages: 1 }), ['sys-rawio']).test('fixtures.needs', 'needs', () => undefined, ['edu']);
    assert.deepEqual(c.needs, ['device', 'sys-rawio', 'edu']);
    const r = await runCase(env, c);
    assert.equal(r.status, 'skip');
    assert.match(r.reason ?? '', /noiommu device needs CAP_SYS_RAWIO/);
    assert.equal(casesOn(ioas).test('fixtures.no-needs', 'none', () => undefined).needs, undefined);
  });

  it('expands variant rows into cases row by row, leaving out what a template declines', function () {
    const rows = [
      { name: 'a', size: 1 },
      { name: 'b', size: 2 },
    ];
    const cases = forEachVariant(
      rows,
      (row) => casesOn(ioas).test(`fixtures.variant.${row.name}.first`, `size ${row.size}`, () => undefined),
      (row) => (row.size > 1 ? casesOn(ioas).test(`fixtures.variant.${row.name}.second`, `size ${row.size}`, () => undefined) : null),
    );
    assert.deepEqual(
      cases.map((c) => c.id),
      ['fixtures.variant.a.first', 'fixtures.variant.b.first', 'fixtures.variant.b.second'],
    );
  });

  it("a generated call fills the struct from the fixture, lets the case override fields, and returns the kernel's errno", async function () {
    const { env, sent } = recordingEnv();
    const c = casesOn(mappedBuffer({ pages: 2 })).expect('fixtures.get-pa', 'GET_PA length 0', 'GET_PA length 0', 'EINVAL', (f) =>
      call.getPa(f, { length: 0n }),
    );
    const r = await runCase(env, c);
    assert.equal(r.status, 'pass', r.reason);
    const getPa = sent.filter((s) => s.request === I.IOMMU_IOAS_NOIOMMU_GET_PA.number);
    assert.equal(getPa.length, 1);
    const packed = I.IommuIoasNoiommuGetPa.decode(getPa[0]!.bytes);
    assert.equal(getPa[0]!.bytes.length, I.IommuIoasNoiommuGetPa.size);
    assert.equal(packed.size, I.IommuIoasNoiommuGetPa.size);
    assert.equal(packed.ioas_id, 2, "the fixture's IOAS (after the device, id 1)");
    assert.equal(packed.iova, 0x100000n, "the fixture's mapping");
    assert.equal(packed.length, 0n, 'the override');
    assert.equal(packed.flags, 0);
    assert.equal(packed.__reserved, 0);
  });

  it("a generated call honours another fixture name for a field and the layout's default options", async function () {
    const { env, sent } = recordingEnv();
    let hwpt = 0;
    const r = await runCase(
      env,
      casesOn(boundWithIoas).test('fixtures.hwpt', 'HWPT_ALLOC and attach', (t, f) => {
        hwpt = t.ok('HWPT_ALLOC', () => call.hwptAlloc(f)).out_hwpt_id;
        t.ok('attach', () => call.attach(f, { pt_id: hwpt }));
      }),
    );
    assert.equal(r.status, 'pass', r.reason);
    const alloc = I.IommuHwptAlloc.decode(sent.find((s) => s.request === I.IOMMU_HWPT_ALLOC.number)!.bytes);
    assert.deepEqual([alloc.dev_id, alloc.pt_id], [1, 2], "dev_id from devId, pt_id from the fixture's ioasId");
    const attaches = sent.filter((s) => s.request === V.VFIO_DEVICE_ATTACH_IOMMUFD_PT.number);
    const last = V.VfioDeviceAttachIommufdPt.decode(attaches.at(-1)!.bytes);
    assert.equal(last.argsz, V.VfioDeviceAttachIommufdPt.endOf('pt_id'), 'argsz up to pt_id, as the call table says');
    assert.equal(last.pt_id, hwpt);
  });
});
