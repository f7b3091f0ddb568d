/**
 * copy_to_user into a caller's struct whose argsz claims more than the buffer holds: Linux faults
 * on the missing bytes (EFAULT); the model must answer the same and never throw a RangeError of
 * its own from writing past the caller's Uint8Array.
 */
import assert from 'node:assert/strict';
import { KernelError } from '../../lib/model/errno';
import {
  VFIO_DEVICE_BIND_IOMMUFD,
  VFIO_DEVICE_GET_INFO,
  VFIO_DEVICE_GET_IRQ_INFO,
  VFIO_DEVICE_GET_REGION_INFO,
  VfioDeviceBindIommufd,
  VfioDeviceInfo,
  VfioIrqInfo,
  VfioRegionInfo,
} from '../../lib/uapi/vfio';
import { TestHost } from './vfio/harness';

function boundDevice() {
  const h = new TestHost();
  h.bindVfioPci();
  const dev = h.open('/dev/vfio/devices/noiommu-vfio0');
  const iommufd = h.newIommufd();
  h.ioctl(dev, VFIO_DEVICE_BIND_IOMMUFD.number, VfioDeviceBindIommufd.encode({ argsz: VfioDeviceBindIommufd.size, flags: 0, iommufd }));
  return { h, dev };
}

function expectFault(run: () => unknown): void {
  assert.throws(run, (e: unknown) => e instanceof KernelError && e.code === 'EFAULT');
}

describe('VFIO device info ioctls: argsz larger than the buffer', () => {
  const cases = [
    { name: 'VFIO_DEVICE_GET_INFO', request: VFIO_DEVICE_GET_INFO, minsz: VfioDeviceInfo.endOf('num_irqs'), argsz: VfioDeviceInfo.size },
    { name: 'VFIO_DEVICE_GET_REGION_INFO', request: VFIO_DEVICE_GET_REGION_INFO, minsz: VfioRegionInfo.endOf('offset'), argsz: 4096 },
    { name: 'VFIO_DEVICE_GET_IRQ_INFO', request: VFIO_DEVICE_GET_IRQ_INFO, minsz: VfioIrqInfo.endOf('count'), argsz: 4096 },
  ];
  for (const c of cases) {
    it(`${c.name}: a buffer of the minimum size whose argsz says ${c.argsz} answers EFAULT or succeeds within it`, () => {
      const { h, dev } = boundDevice();
      const shortBuffers = [c.minsz, c.minsz + 4];
      for (const length of shortBuffers) {
        const buf = new Uint8Array(length);
        new DataView(buf.buffer).setUint32(0, c.argsz, true);
        try {
          h.ioctl(dev, c.request.number, buf);
        } catch (e) {
          assert.ok(e instanceof KernelError, `${c.name} with a ${length}-byte buffer threw ${String(e)}`);
          assert.equal(e.code, 'EFAULT');
        }
      }
    });
  }

  it('VFIO_DEVICE_GET_INFO copies min(argsz, sizeof) bytes: EFAULT when the buffer stops at num_irqs', () => {
    const { h, dev } = boundDevice();
    const buf = new Uint8Array(VfioDeviceInfo.endOf('num_irqs'));
    new DataView(buf.buffer).setUint32(0, VfioDeviceInfo.size, true);
    expectFault(() => h.ioctl(dev, VFIO_DEVICE_GET_INFO.number, buf));
    const exact = new Uint8Array(VfioDeviceInfo.endOf('num_irqs'));
    new DataView(exact.buffer).setUint32(0, exact.length, true);
    assert.equal(h.ioctl(dev, VFIO_DEVICE_GET_INFO.number, exact), 0, 'argsz = minsz copies only minsz');
  });
});
