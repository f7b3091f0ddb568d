import assert from 'node:assert/strict';
import { addonStatus, type NativeAddon } from '../../lib/sys/addon';
import { IOMMU_IOAS_ALLOC } from '../../lib/uapi/iommufd';
import { VfioGroupStatus } from '../../lib/uapi/vfio';
import { kernel, linuxOnly } from './support';

// FIONREAD on a regular file (a memfd) writes the bytes left to read as an int; FIOCLEX takes no
// argument. Both work on every Linux, so the binding's argument handling is checked without VFIO.
const FIONREAD = 0x541b;
const FIOCLEX = 0x5451;
// TCGETS encodes no size either, and writes a struct termios (on a terminal): one the addon cannot size.
const TCGETS = 0x5401;
// FS_IOC_GETFLAGS = _IOR('f', 1, long): its number says it writes 8 bytes.
const FS_IOC_GETFLAGS = 0x80086601;
const SIZE = 4242;

describe('native ioctl binding: the arguments it takes', function () {
  linuxOnly(this);
  let addon: NativeAddon;
  let fd: number;

  before(() => {
    const status = addonStatus();
    if (!status.available) throw new Error(status.reason);
    addon = status.addon;
    fd = kernel().memfdCreate('ioctl-arguments', 0);
    kernel().ftruncate(fd, BigInt(SIZE));
  });
  after(() => kernel().close(fd));

  it("writes through an ArrayBuffer and through every kind of byte view, at the view's offset", () => {
    const whole = new ArrayBuffer(8);
    assert.equal(addon.ioctl(fd, FIONREAD, whole), 0);
    assert.equal(new Int32Array(whole)[0], SIZE);
    // Any TypedArray goes (the binding counts its bytes), though the addon's type names only bytes.
    const views = (backing: ArrayBuffer): (Uint8Array | DataView)[] => [
      new Uint8Array(backing, 8, 4),
      Buffer.from(backing, 8, 4),
      new DataView(backing, 8, 4),
      new Uint32Array(backing, 8, 1) as unknown as Uint8Array,
    ];
    for (const view of views(new ArrayBuffer(16))) {
      assert.equal(addon.ioctl(fd, FIONREAD, view), 0);
      const backing = new Int32Array(view.buffer);
      assert.deepEqual([backing[1], backing[2]], [0, SIZE], view.constructor.name);
    }
  });

  it('passes an integer or no argument', () => {
    assert.equal(addon.ioctl(fd, FIOCLEX, null), 0);
    assert.equal(addon.ioctl(fd, FIOCLEX, 0), 0);
  });

  it('hands a detached buffer to the kernel as no memory at all', () => {
    const buffer = new ArrayBuffer(8);
    structuredClone(buffer, { transfer: [buffer] });
    assert.equal(buffer.byteLength, 0);
    assert.throws(() => addon.ioctl(fd, FIONREAD, buffer), { errno: 14, syscall: 'ioctl' });
  });

  it('keeps its precise errors for bad arguments', () => {
    const arg = new ArrayBuffer(8);
    assert.throws(() => addon.ioctl(-1, FIONREAD, arg), { name: 'RangeError', message: /fd must be an integer/ });
    assert.throws(() => addon.ioctl('3' as unknown as number, FIONREAD, arg), { name: 'TypeError', message: /fd must be a number/ });
    assert.throws(() => addon.ioctl(fd, 1.5, arg), { name: 'RangeError', message: /request must be an integer/ });
    assert.throws(() => addon.ioctl(fd, FIONREAD, 'x' as unknown as null), { name: 'TypeError', message: /arg must be an ArrayBuffer/ });
    // A sized struct in an ArrayBuffer is checked like one in a view.
    const short = new ArrayBuffer(16);
    new Uint32Array(short)[0] = 64;
    assert.throws(() => addon.ioctl(fd, IOMMU_IOAS_ALLOC.number, short), { name: 'RangeError', message: /64 bytes.*16/ });
  });

  it('NativeKernel hands struct memory to the kernel, which writes into it', () => {
    const status = VfioGroupStatus.allocate();
    assert.equal(kernel().ioctl(fd, FIONREAD, status.$bytes), 0);
    assert.equal(status.argsz, SIZE);
    // The size check holds for struct memory too: 8 bytes that claim to be 64.
    status.argsz = 64;
    assert.throws(() => kernel().ioctl(fd, IOMMU_IOAS_ALLOC.number, status.$bytes), { name: 'RangeError', message: /64 bytes.*8/ });
  });

  it('an ioctl whose number encodes no size still needs a buffer as large as what the kernel writes', () => {
    const backing = new Uint8Array(8).fill(0xee);
    for (const small of [backing.subarray(0, 1), new DataView(backing.buffer, 4, 3), new ArrayBuffer(2)]) {
      assert.throws(() => addon.ioctl(fd, FIONREAD, small), { name: 'RangeError', message: /0x541b needs a buffer of 4 bytes/ });
    }
    assert.deepEqual([...backing], new Array(8).fill(0xee), 'nothing was written next to the views');
    assert.throws(() => kernel().ioctl(fd, FIONREAD, backing.subarray(0, 3)), RangeError);
  });

  it('refuses a buffer for a request that encodes no size and that the addon cannot size', () => {
    assert.throws(() => addon.ioctl(fd, TCGETS, new ArrayBuffer(4096)), { name: 'TypeError', message: /0x5401 encodes no argument size/ });
    assert.throws(() => kernel().ioctl(fd, TCGETS, new Uint8Array(4096)), TypeError);
    // No memory at all is still fine: the kernel sees a null pointer or a plain value.
    assert.throws(() => addon.ioctl(fd, TCGETS, null), { errno: 25, syscall: 'ioctl' });
  });

  it('refuses an integer for a request that takes a pointer, which would be a raw address', () => {
    for (const request of [FIONREAD, FS_IOC_GETFLAGS]) {
      assert.throws(() => addon.ioctl(fd, request, 4096), { name: 'TypeError', message: /takes a pointer to \d+ bytes/ });
    }
  });

  it('has an empty call for benchmarks to time', () => {
    assert.equal(addon.emptyCall(), undefined);
  });
});
