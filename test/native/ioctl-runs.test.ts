/**
 * The addon's run walk (ioctlRuns): its argument checks, and that a failing step reports the
 * kernel's errno through NativeKernel with the request named. The walk over a real IOAS runs in
 * the lab (test/api/physical-runs.test.ts), where a noiommu device gives GET_PA something to answer.
 */
import assert from 'node:assert/strict';
import { addonStatus, type NativeAddon } from '../../lib/sys/addon';
import { IOMMU_IOAS_NOIOMMU_GET_PA, IommuIoasNoiommuGetPa } from '../../lib/uapi/iommufd';
import { isVfioError } from '../../lib/sys/errors';
import { O_RDWR } from '../../lib/sys/constants';
import { kernel, linuxOnly } from './support';

const FIELDS = new Uint32Array([
  IommuIoasNoiommuGetPa.offsetOf('iova'),
  IommuIoasNoiommuGetPa.offsetOf('length'),
  IommuIoasNoiommuGetPa.offsetOf('out_phys'),
]);

describe('native ioctl binding: the run walk', function () {
  linuxOnly(this);
  let addon: NativeAddon;

  before(() => {
    const status = addonStatus();
    if (!status.available) throw new Error(status.reason);
    addon = status.addon;
  });

  function command(): Uint8Array {
    const cmd = IommuIoasNoiommuGetPa.allocate();
    cmd.size = IommuIoasNoiommuGetPa.size;
    return cmd.$bytes;
  }

  it('refuses offsets that are not three, or that pass the end of the struct, before any ioctl', () => {
    const out = new BigUint64Array(30);
    const req = IOMMU_IOAS_NOIOMMU_GET_PA.number;
    assert.throws(() => addon.ioctlRuns(0, req, command(), new Uint32Array(2), 0n, 4096n, out), {
      name: 'RangeError',
      message: /exactly three/,
    });
    assert.throws(() => addon.ioctlRuns(0, req, command(), new Uint32Array([16, 24, 33]), 0n, 4096n, out), {
      name: 'RangeError',
      message: /passes the end/,
    });
    assert.throws(() => addon.ioctlRuns(0, req, command(), FIELDS, -1n, 4096n, out), { name: 'RangeError', message: /start/ });
    assert.throws(() => addon.ioctlRuns(0, req, command(), FIELDS, 0n, 2n ** 64n, out), { name: 'RangeError', message: /length/ });
    assert.throws(() => addon.ioctlRuns(0, req, 'x' as unknown as Uint8Array, FIELDS, 0n, 4096n, out), {
      name: 'TypeError',
      message: /command/,
    });
    const lying = command();
    new DataView(lying.buffer).setUint32(0, 4096, true);
    assert.throws(() => addon.ioctlRuns(0, req, lying, FIELDS, 0n, 4096n, out), { name: 'RangeError', message: /says it is 4096 bytes/ });
  });

  it('a step the kernel refuses is its errno, with the request and path named by NativeKernel', () => {
    const k = kernel();
    const fd = k.open('/dev/null', O_RDWR);
    try {
      assert.throws(
        () => k.ioctlRuns!(fd, IOMMU_IOAS_NOIOMMU_GET_PA.number, command(), FIELDS, 0n, 4096n, new BigUint64Array(3)),
        (e: unknown) => isVfioError(e, 'ENOTTY') && e.ioctl === 'IOMMU_IOAS_NOIOMMU_GET_PA' && e.path === '/dev/null',
      );
    } finally {
      k.close(fd);
    }
  });

  it('an empty range or an output with no room makes no call', () => {
    const out = new BigUint64Array(3);
    assert.equal(
      addon.ioctlRuns(0x7fffffff, IOMMU_IOAS_NOIOMMU_GET_PA.number, command(), FIELDS, 0n, 0n, out),
      0,
      'a bad fd is never used',
    );
    assert.equal(addon.ioctlRuns(0x7fffffff, IOMMU_IOAS_NOIOMMU_GET_PA.number, command(), FIELDS, 0n, 4096n, new BigUint64Array(2)), 0);
  });
});
