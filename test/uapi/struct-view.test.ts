import assert from 'node:assert/strict';
import { array, s32, s64, struct, u16, u32, u64, u8, wholeBufferOf } from '../../lib/uapi/codec';
import { IommuIoasNoiommuGetPa } from '../../lib/uapi/iommufd';
import { VfioRegionInfo } from '../../lib/uapi/vfio';

/** One field of every width, plus an array, at offsets the ABI pads: 0, 2, 4, 8, 16, 24, 32. */
const Every = struct('every_width', { a: u8, b: u16, c: u32, d: s32, e: u64, f: s64, g: array(u16, 3) });

describe('uapi codec: reusable struct memory', () => {
  it('view fields read and write exactly the bytes the codec lays out, at every width', () => {
    assert.deepEqual(
      Every.fields.map((f) => f.offset),
      [0, 2, 4, 8, 16, 24, 32],
    );
    assert.equal(Every.size, 40);
    const cases = [
      { a: 0, b: 0, c: 0, d: -(2 ** 31), e: 0n, f: -(1n << 63n), g: [0, 0, 0] },
      { a: 0xff, b: 0xffff, c: 0xffff_ffff, d: 2 ** 31 - 1, e: (1n << 64n) - 1n, f: (1n << 63n) - 1n, g: [0xffff, 1, 0x8000] },
      { a: 0x5a, b: 0x1234, c: 0x8765_4321, d: -2, e: 0x0123_4567_89ab_cdefn, f: -3n, g: [7, 8, 9] },
    ];
    const view = Every.allocate();
    for (const v of cases) {
      view.a = v.a;
      view.b = v.b;
      view.c = v.c;
      view.d = v.d;
      view.e = v.e;
      view.f = v.f;
      view.g = v.g;
      // Read back through an independent decoder: Buffer's little-endian readers at the offsets.
      const bytes = Buffer.from(view.$bytes.buffer, view.$bytes.byteOffset, view.$bytes.length);
      assert.equal(bytes.readUInt8(0), v.a);
      assert.equal(bytes.readUInt16LE(2), v.b);
      assert.equal(bytes.readUInt32LE(4), v.c);
      assert.equal(bytes.readInt32LE(8), v.d);
      assert.equal(bytes.readBigUInt64LE(16), v.e);
      assert.equal(bytes.readBigInt64LE(24), v.f);
      assert.deepEqual([bytes.readUInt16LE(32), bytes.readUInt16LE(34), bytes.readUInt16LE(36)], v.g);
      assert.deepEqual({ a: view.a, b: view.b, c: view.c, d: view.d, e: view.e, f: view.f, g: view.g }, v);
      assert.deepEqual(view.$read(), v);
      assert.deepEqual(Every.decode(view.$bytes), v);
      assert.deepEqual(Every.decode(Every.encode(v)), v);
    }
  });

  it("encode and decode at an offset touch only the struct's bytes", () => {
    const buf = new Uint8Array(8 + VfioRegionInfo.size + 8).fill(0xee);
    VfioRegionInfo.encode({ argsz: 0, flags: 0, index: 7, cap_offset: 0, size: 0x1234_5678_9abc_def0n, offset: 1n << 63n }, buf, 8);
    assert.deepEqual(VfioRegionInfo.decode(buf, 8), {
      argsz: 0,
      flags: 0,
      index: 7,
      cap_offset: 0,
      size: 0x1234_5678_9abc_def0n,
      offset: 1n << 63n,
    });
    assert.equal(VfioRegionInfo.get(buf, 'index', 8), 7);
    VfioRegionInfo.set(buf, 'cap_offset', 0xffff_ffff, 8);
    assert.equal(Buffer.from(buf).readUInt32LE(8 + VfioRegionInfo.offsetOf('cap_offset')), 0xffff_ffff);
    assert.deepEqual([...buf.subarray(0, 8)], new Array(8).fill(0xee));
    assert.deepEqual([...buf.subarray(8 + VfioRegionInfo.size)], new Array(8).fill(0xee));
    // A refused value leaves the caller's buffer as it was, even the fields before it.
    const before = [...buf];
    assert.throws(() => VfioRegionInfo.encode({ argsz: 1, index: -1 }, buf, 8), { name: 'RangeError', message: /vfio_region_info\.index/ });
    assert.deepEqual([...buf], before);
  });

  it("a view's setters throw exactly what encode() would, before storing anything, and accept what encode() accepts", () => {
    const T = struct('checked', { a: u8, b: u16, c: u32, d: s32, e: u64, f: s64 });
    const refused: ['a' | 'b' | 'c' | 'd' | 'e' | 'f', unknown, 'RangeError' | 'TypeError'][] = [
      ['a', 256, 'RangeError'],
      ['a', -1, 'RangeError'],
      ['b', -1, 'RangeError'],
      ['b', 0x10000, 'RangeError'],
      ['c', 2 ** 32, 'RangeError'],
      ['c', -1, 'RangeError'],
      ['c', 1.5, 'RangeError'],
      ['c', NaN, 'RangeError'],
      ['c', '1', 'TypeError'],
      ['d', 2 ** 31, 'RangeError'],
      ['d', -(2 ** 31) - 1, 'RangeError'],
      ['e', -1n, 'RangeError'],
      ['e', 1n << 64n, 'RangeError'],
      ['e', 1.5, 'RangeError'],
      ['e', 2 ** 53, 'RangeError'],
      ['e', null, 'TypeError'],
      ['f', 1n << 63n, 'RangeError'],
      ['f', -(1n << 63n) - 1n, 'RangeError'],
    ];
    const view = T.allocate();
    for (const [field, value, name] of refused) {
      let expected: unknown;
      try {
        T.encode({ [field]: value } as never);
      } catch (e) {
        expected = e;
      }
      assert.ok(expected instanceof Error && expected.name === name, `encode refuses ${field}=${String(value)} with a ${name}`);
      assert.match(expected.message, new RegExp(`^checked\\.${field}: `));
      view.$bytes.fill(0xab);
      assert.throws(
        () => {
          (view as unknown as Record<string, unknown>)[field] = value;
        },
        { name, message: expected.message },
      );
      assert.ok(
        view.$bytes.every((b) => b === 0xab),
        `a refused ${field}=${String(value)} leaves the bytes alone`,
      );
    }
    // A u32 takes a bigint in range and a u64 a safe-integer number, as encode does.
    view.c = 3n as never;
    view.e = 5 as never;
    view.a = 255;
    view.d = -(2 ** 31);
    view.f = -(1n << 63n);
    assert.deepEqual(view.$read(), { a: 255, b: 0xabab, c: 3, d: -(2 ** 31), e: 5n, f: -(1n << 63n) });
  });

  it('array fields take at most their count of checked elements and zero the rest', () => {
    const view = Every.allocate();
    view.g = [1, 2, 3];
    view.g = [4];
    assert.deepEqual(view.g, [4, 0, 0]);
    assert.throws(
      () => {
        view.g = [1, 2, 3, 4];
      },
      { name: 'RangeError', message: /every_width\.g: 4 elements do not fit in 3/ },
    );
    assert.throws(
      () => {
        view.g = [0x10000];
      },
      { name: 'RangeError', message: /every_width\.g\[0\]: 65536 is out of range for u16/ },
    );
    assert.throws(
      () => {
        view.g = 5 as never;
      },
      { name: 'TypeError', message: /every_width\.g: expected an array/ },
    );
  });

  it('a name that is not a field is refused, not silently stored', () => {
    const view = IommuIoasNoiommuGetPa.allocate();
    assert.throws(() => {
      (view as unknown as Record<string, unknown>).lenght = 1n;
    }, TypeError);
    assert.throws(() => view.$assign({ lenght: 1n } as never), {
      name: 'TypeError',
      message: /struct iommu_ioas_noiommu_get_pa has no field lenght/,
    });
    assert.throws(() => IommuIoasNoiommuGetPa.encode({ lenght: 1n } as never), { name: 'TypeError', message: /has no field lenght/ });
    assert.throws(() => IommuIoasNoiommuGetPa.get(view.$bytes, 'nope' as 'iova'), /has no field nope/);
    assert.throws(() => struct('clash', { $bytes: u32 }), /field \$bytes would clash/);
    assert.ok(view.$bytes.every((b) => b === 0));
  });

  it('is reused in place: stores go to the same bytes, and every view of a struct shares one compiled prototype', () => {
    const a = IommuIoasNoiommuGetPa.allocate();
    const b = IommuIoasNoiommuGetPa.allocate();
    const bytes = a.$bytes;
    for (let i = 0; i < 1000; i++) {
      a.iova = BigInt(i) << 12n;
      a.length = 4096n;
      a.ioas_id = i;
    }
    assert.equal(a.$bytes, bytes);
    assert.equal(a.ioas_id, 999);
    assert.equal(a.iova, 999n << 12n);
    assert.ok(
      b.$bytes.every((x) => x === 0),
      'another view has its own memory',
    );
    // The accessors live on a prototype built once per struct, not on each view.
    const proto = Object.getPrototypeOf(a) as object;
    assert.equal(Object.getPrototypeOf(b), proto);
    for (const f of IommuIoasNoiommuGetPa.fields) {
      assert.equal(Object.getOwnPropertyDescriptor(a, f.name), undefined, `${f.name} is not an own property`);
      assert.equal(typeof Object.getOwnPropertyDescriptor(proto, f.name)?.get, 'function');
    }
  });

  it('copies in the way a kernel takes a shorter struct (zero above), and copies out no more than asked', () => {
    const view = Every.allocate();
    view.$bytes.fill(0xff);
    const source = new Uint8Array(Every.size).fill(0x11);
    view.$copyFrom(source, 6);
    assert.deepEqual([...view.$bytes], [...Array<number>(6).fill(0x11), ...Array<number>(Every.size - 6).fill(0)]);
    const target = new Uint8Array(Every.size + 4).fill(0x22);
    view.e = 0x0102_0304_0506_0708n;
    view.$copyTo(target, 20);
    assert.deepEqual([...target.subarray(0, 20)], [...view.$bytes.subarray(0, 20)]);
    assert.ok(target.subarray(20).every((b) => b === 0x22));
    // More than sizeof is clipped to sizeof, both ways.
    view.$copyTo(target, 1000);
    assert.deepEqual([...target.subarray(0, Every.size)], [...view.$bytes]);
    assert.ok(target.subarray(Every.size).every((b) => b === 0x22));
  });

  it('names the ArrayBuffer its bytes fill, and only when they fill all of it', () => {
    const whole = IommuIoasNoiommuGetPa.allocate();
    assert.equal(wholeBufferOf(whole.$bytes), whole.$bytes.buffer);
    // 36 bytes in a 40-byte buffer: the view, not the buffer, is the struct.
    const partial = VfioRegionInfo.allocate(32 + 4);
    assert.equal(partial.$bytes.length, 36);
    assert.equal(wholeBufferOf(partial.$bytes), undefined);
    assert.equal(wholeBufferOf(new Uint8Array(new ArrayBuffer(8))), undefined);
    // The mark is hidden: the bytes compare and print like any Uint8Array.
    assert.deepEqual(Object.keys(whole.$bytes).length, whole.$bytes.length);
    assert.deepStrictEqual(whole.$bytes, new Uint8Array(whole.$bytes.length));
  });

  it('refuses less memory than the struct needs', () => {
    assert.throws(() => VfioRegionInfo.allocate(16), { name: 'RangeError', message: /vfio_region_info needs at least 32 bytes, got 16/ });
    assert.throws(() => VfioRegionInfo.allocate(40.5), RangeError);
  });
});
