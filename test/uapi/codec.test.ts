import assert from 'node:assert/strict';
import { U64_MAX, array, struct, u16, u32, u64, u8 } from '../../lib/uapi/codec';
import { IommuIoasMap, IommuHwInfo, IommuOption, IOMMU_IOAS_NOIOMMU_GET_PA } from '../../lib/uapi/iommufd';
import { VfioRegionInfo, VFIO_DEVICE_GET_INFO, VFIO_IOMMU_GET_INFO } from '../../lib/uapi/vfio';
import { ioctlName } from '../../lib/uapi/requests';

describe('uapi codec', () => {
  const T = struct('test_struct', { a: u32, b: u64, c: u16, d: array(u8, 3) });

  it('lays out fields with natural alignment and tail padding', () => {
    assert.equal(T.offsetOf('a'), 0);
    assert.equal(T.offsetOf('b'), 8);
    assert.equal(T.offsetOf('c'), 16);
    assert.equal(T.offsetOf('d'), 18);
    assert.equal(T.size, 24);
  });

  it('round-trips boundary values', () => {
    for (const [a, b] of [
      [0, 0n],
      [0xffff_ffff, U64_MAX],
      [1, 1n << 63n],
    ] as const) {
      const buf = T.encode({ a, b, c: 0xffff, d: [1, 2, 255] });
      assert.deepEqual(T.decode(buf), { a, b, c: 0xffff, d: [1, 2, 255] });
    }
  });

  it('rejects out-of-range values with a RangeError naming struct and field', () => {
    assert.throws(() => T.encode({ a: -1 }), { name: 'RangeError', message: /test_struct\.a/ });
    assert.throws(() => T.encode({ a: 2 ** 32 }), { name: 'RangeError', message: /test_struct\.a/ });
    assert.throws(() => T.encode({ b: -1n }), { name: 'RangeError', message: /test_struct\.b/ });
    assert.throws(() => T.encode({ b: 1n << 64n }), { name: 'RangeError', message: /test_struct\.b/ });
    assert.throws(() => T.encode({ a: 1.5 }), { name: 'RangeError', message: /test_struct\.a/ });
    assert.throws(() => T.encode({ d: [1, 2, 3, 4] }), { name: 'RangeError', message: /test_struct\.d/ });
  });

  it('decodes a short buffer as zero past its end, like copy_struct_from_user', () => {
    const full = IommuIoasMap.encode({ size: 40, flags: 7, ioas_id: 3, user_va: 0x1000n, length: 0x2000n, iova: 0x3000n });
    const short = full.subarray(0, 24);
    const v = IommuIoasMap.decode(short);
    assert.equal(v.ioas_id, 3);
    assert.equal(v.length, 0n);
    assert.equal(v.iova, 0n);
  });

  it('knows the real sizes of a few kernel structs', () => {
    assert.equal(IommuIoasMap.size, 40);
    assert.equal(IommuHwInfo.size, 40);
    assert.equal(IommuOption.size, 24);
    assert.equal(VfioRegionInfo.size, 32);
  });

  it('names ioctl numbers, exactly when the kind of fd is known', () => {
    assert.equal(IOMMU_IOAS_NOIOMMU_GET_PA.number, 0x3b95);
    assert.equal(ioctlName(VFIO_DEVICE_GET_INFO.number, 'vfio-device'), 'VFIO_DEVICE_GET_INFO');
    assert.equal(VFIO_DEVICE_GET_INFO.number, 0x3b6b);
    assert.match(ioctlName(VFIO_IOMMU_GET_INFO.number), /VFIO_IOMMU_GET_INFO/);
  });
});
