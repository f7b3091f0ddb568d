import assert from 'node:assert/strict';
import { StructMemory, s32, struct, u16, u32, u64, u8, wholeBufferOf } from '../../lib/uapi/codec';
import { IommuIoasNoiommuGetPa } from '../../lib/uapi/iommufd';
import { VfioRegionInfo } from '../../lib/uapi/vfio';

describe('uapi codec: reusable struct memory', () => {
  it('slots index the u32 and u64 views at exactly the fields the codec lays out', () => {
    const memory = new StructMemory(VfioRegionInfo);
    memory.u32[VfioRegionInfo.slot32('index')] = 7;
    memory.u32[VfioRegionInfo.slot32('cap_offset')] = 0xffff_ffff;
    memory.u64[VfioRegionInfo.slot64('size')] = 0x1234_5678_9abc_def0n;
    memory.u64[VfioRegionInfo.slot64('offset')] = 1n << 63n;
    assert.deepEqual(VfioRegionInfo.decode(memory.bytes), {
      argsz: 0, flags: 0, index: 7, cap_offset: 0xffff_ffff, size: 0x1234_5678_9abc_def0n, offset: 1n << 63n,
    });
    assert.equal(memory.bytes.length, VfioRegionInfo.size);
  });

  it('slots refuse a field of another type', () => {
    assert.throws(() => IommuIoasNoiommuGetPa.slot32('iova'), { name: 'TypeError', message: /iova is u64, not u32/ });
    assert.throws(() => IommuIoasNoiommuGetPa.slot64('ioas_id'), { name: 'TypeError', message: /ioas_id is u32, not u64/ });
    assert.throws(() => IommuIoasNoiommuGetPa.slot64('nope' as 'iova'), /has no field nope/);
  });

  it('check() throws exactly what encode() would, and passes what encode() accepts', () => {
    const T = struct('checked', { a: u8, b: u16, c: u32, d: s32, e: u64 });
    const cases: ['a' | 'b' | 'c' | 'd' | 'e', number | bigint][] = [
      ['a', 256], ['b', -1], ['c', 2 ** 32], ['c', 1.5], ['d', 2 ** 31], ['e', -1n], ['e', 1n << 64n], ['e', 1.5], ['e', 2 ** 53],
    ];
    for (const [field, value] of cases) {
      let expected: unknown;
      try {
        T.encode({ [field]: value });
      } catch (e) {
        expected = e;
      }
      assert.ok(expected instanceof Error, `encode accepts ${field}=${value}`);
      assert.throws(() => T.check(field, value as never), { name: expected.name, message: expected.message });
    }
    for (const [field, value] of [['a', 255], ['d', -(2 ** 31)], ['c', 0xffff_ffff], ['c', 3n], ['e', (1n << 64n) - 1n], ['e', 5]] as const) {
      T.check(field, value as never);
    }
  });

  it('names the ArrayBuffer its bytes fill, and only when they fill all of it', () => {
    const whole = new StructMemory(IommuIoasNoiommuGetPa);
    assert.equal(wholeBufferOf(whole.bytes), whole.bytes.buffer);
    // 28 bytes in a 32-byte buffer: the view, not the buffer, is the struct.
    const partial = new StructMemory(VfioRegionInfo, 28 + 8);
    assert.equal(partial.bytes.length, 36);
    assert.equal(wholeBufferOf(partial.bytes), undefined);
    assert.equal(wholeBufferOf(new Uint8Array(new ArrayBuffer(8))), undefined);
    // The mark is hidden: the bytes compare and print like any Uint8Array.
    assert.deepEqual(Object.keys(whole.bytes).length, whole.bytes.length);
    assert.deepStrictEqual(whole.bytes, new Uint8Array(whole.bytes.length));
  });

  it('refuses less memory than the struct needs', () => {
    assert.throws(() => new StructMemory(VfioRegionInfo, 16), { name: 'RangeError', message: /vfio_region_info needs at least 32 bytes, got 16/ });
    assert.throws(() => new StructMemory(VfioRegionInfo, 40.5), RangeError);
  });
});
