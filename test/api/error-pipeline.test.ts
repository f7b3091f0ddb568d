/**
 * One error pipeline: the model raises errnos, the syscall boundary makes them VfioErrors, and
 * every layer above adds context with VfioError.wrap, which keeps what the inner layer said.
 * Checks of the typed API that are not a failed syscall have ERR_VFIO_* codes and no syscall.
 */
import assert from 'node:assert/strict';
import { createModelKernel, profiles, type Profile } from '../../lib/model';
import { VFIO_CONDITIONS, VfioError, isVfioError } from '../../lib/sys/errors';
import { iova } from '../../lib/sys/addresses';
import { openDevice } from '../../lib/vfio/open-device';
import { VfioGroup } from '../../lib/vfio/group';
import { Iommufd } from '../../lib/iommu/iommufd';
import { PciDevice } from '../../lib/pci/pci-device';
import { describeOnModel } from './support/targets';

const EDU = '0000:00:03.0';

function caught(fn: () => unknown): VfioError {
  try {
    fn();
  } catch (e) {
    assert.ok(isVfioError(e), `expected a VfioError, got ${String(e)}`);
    return e;
  }
  assert.fail('expected the call to fail');
}

describe('VfioError.wrap', () => {
  const inner = VfioError.of('ENOENT', {
    syscall: 'ioctl',
    ioctl: 'IOMMU_IOAS_MAP',
    path: '/dev/iommu',
    context: 'mapping 4096 bytes into IOAS 2',
    detail: 'no such area',
    hint: 'the inner hint',
  });

  it('keeps code, errno, syscall, ioctl, path and detail, stacks the context and sets the inner error as cause', () => {
    const outer = VfioError.wrap(inner, { context: 'opening device X' });
    assert.ok(outer instanceof VfioError);
    assert.notEqual(outer, inner);
    assert.equal(outer.cause, inner);
    assert.deepEqual(
      [outer.code, outer.errno, outer.syscall, outer.ioctl, outer.path, outer.detail],
      [inner.code, inner.errno, inner.syscall, inner.ioctl, inner.path, inner.detail],
    );
    assert.equal(outer.context, 'opening device X: mapping 4096 bytes into IOAS 2');
    assert.match(
      outer.message,
      /^opening device X: mapping 4096 bytes into IOAS 2: ENOENT: .*IOMMU_IOAS_MAP '\/dev\/iommu': no such area \(hint: the inner hint\)$/,
    );
  });

  it('keeps the inner hint unless it is given a better one', () => {
    assert.equal((VfioError.wrap(inner, { context: 'x' }) as VfioError).hint, 'the inner hint');
    assert.equal((VfioError.wrap(inner, { hint: undefined }) as VfioError).hint, 'the inner hint');
    assert.equal((VfioError.wrap(inner, { hint: 'a better one' }) as VfioError).hint, 'a better one');
  });

  it('names the exact ioctl and infers the environment hint again for it', () => {
    const guessed = VfioError.of('ENOTTY', { syscall: 'ioctl', ioctl: 'IOMMU_IOAS_NOIOMMU_GET_PA|VFIO_OTHER', path: '/dev/iommu' });
    const named = VfioError.wrap(guessed, { ioctl: 'IOMMU_IOAS_NOIOMMU_GET_PA' }) as VfioError;
    assert.equal(named.ioctl, 'IOMMU_IOAS_NOIOMMU_GET_PA');
    assert.match(named.hint ?? '', /Linux 7\.3/);
  });

  it('passes anything that is not a VfioError through unchanged', () => {
    const plain = new RangeError('not a kernel error');
    assert.equal(VfioError.wrap(plain, { context: 'x' }), plain);
    assert.equal(VfioError.wrap(undefined, { context: 'x' }), undefined);
  });

  it('keeps a condition error a condition: its code and check, still no syscall', () => {
    const condition = VfioError.condition('ERR_VFIO_IN_USE', { check: 'IOAS 2 still has 1 device(s) attached', hint: 'detach first' });
    const outer = VfioError.wrap(condition, { context: 'closing' }) as VfioError;
    assert.deepEqual(
      [outer.code, outer.check, outer.syscall, outer.errno, outer.hint],
      ['ERR_VFIO_IN_USE', condition.check, '', 0, 'detach first'],
    );
    assert.equal(outer.cause, condition);
  });
});

describeOnModel("the model's detail reaches the user [model linux-6.x-legacy-noiommu]", () => {
  it('GET_DEVICE_FD on a group without a container says so through the typed API', () => {
    const kernel = createModelKernel('linux-6.x-legacy-noiommu');
    const groupId = PciDevice.get(EDU, kernel).iommuGroup!;
    using group = VfioGroup.open(groupId, { noiommu: true, kernel });
    const e = caught(() => group.openDevice(EDU));
    assert.equal(e.code, 'EINVAL');
    assert.equal(e.ioctl, 'VFIO_GROUP_GET_DEVICE_FD');
    assert.equal(e.detail, 'the group has no container or iommufd set');
    assert.match(e.message, /^getting 0000:00:03\.0 from VFIO group \d+: EINVAL: .*: the group has no container or iommufd set$/);
  });
});

describeOnModel('errors that are not a failed syscall [model crafted profiles]', () => {
  function unbound(base: Profile): Profile {
    return { ...base, name: `${base.name}+unbound`, pci: base.pci.map((d) => ({ ...d, driver: null })) };
  }

  it('a device not bound to vfio-pci: ERR_VFIO_NOT_BOUND, which check failed, no errno, syscall or path', () => {
    const kernel = createModelKernel(unbound(profiles['linux-7.3-noiommu']));
    const e = caught(() => openDevice(EDU, { kernel }));
    assert.equal(e.code, 'ERR_VFIO_NOT_BOUND');
    assert.equal(e.errno, 0);
    assert.equal(e.syscall, '');
    assert.equal(e.path, undefined);
    assert.equal(e.ioctl, undefined);
    assert.equal(e.check, '0000:00:03.0 is bound to no driver, not vfio-pci');
    assert.match(e.message, new RegExp(`^ERR_VFIO_NOT_BOUND: ${VFIO_CONDITIONS.ERR_VFIO_NOT_BOUND}: `));
  });

  it('noiommu mode off: bindVfio without unsafeNoiommu is ERR_VFIO_NOIOMMU_NOT_ALLOWED, with nothing written', () => {
    const kernel = createModelKernel({ ...unbound(profiles['linux-7.3-noiommu']), noiommu: false });
    const e = caught(() => PciDevice.get(EDU, kernel).bindVfio());
    assert.deepEqual([e.code, e.syscall, e.path], ['ERR_VFIO_NOIOMMU_NOT_ALLOWED', '', undefined]);
    assert.equal(PciDevice.noiommuMode(kernel), 'disabled');
  });

  it('every condition code is an ERR_VFIO_ name with a description', () => {
    for (const [code, description] of Object.entries(VFIO_CONDITIONS)) {
      assert.match(code, /^ERR_VFIO_[A-Z_]+$/);
      assert.ok(description.length > 10, code);
    }
  });
});

describeOnModel('hints fit the call that failed [model linux-7.3-noiommu]', () => {
  it('ENOENT from an ioctl on an iommufd (IOAS_UNMAP of an unmapped range) gets no "no /dev/iommu" hint', () => {
    const kernel = createModelKernel('linux-7.3-noiommu');
    using iommufd = Iommufd.open(kernel);
    const ioas = iommufd.ioas();
    const e = caught(() => ioas.unmap({ iova: iova(0x10_0000n), length: 4096n }));
    assert.deepEqual([e.code, e.ioctl, e.path], ['ENOENT', 'IOMMU_IOAS_UNMAP', '/dev/iommu']);
    assert.equal(e.hint, undefined);
  });

  it('ENOENT from the open of /dev/iommu keeps the CONFIG_IOMMUFD hint', () => {
    const kernel = createModelKernel({
      ...profiles['linux-7.3-noiommu'],
      config: { ...profiles['linux-7.3-noiommu'].config, IOMMUFD: false },
    });
    const e = caught(() => Iommufd.open(kernel));
    assert.deepEqual([e.code, e.syscall, e.path], ['ENOENT', 'open', '/dev/iommu']);
    assert.match(e.hint ?? '', /CONFIG_IOMMUFD/);
  });
});
