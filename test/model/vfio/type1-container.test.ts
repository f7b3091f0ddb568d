/**
 * The legacy group path behind an IOMMU on the booted model kernel (linux-7.3-iommu): /dev/vfio/3
 * in a type1 container (drivers/vfio/container.c with vfio_iommu_type1; the model answers the
 * mapping ioctls with iommufd's type1 compatibility code), DMA by IOVA = process address.
 */
import assert from 'node:assert/strict';
import { createModelKernel } from '../../../lib/model';
import {
  VfioIommuType1DmaMap,
  VfioIommuType1DmaUnmap,
  VfioIommuType1Info,
  VFIO_CHECK_EXTENSION,
  VFIO_DMA_MAP_FLAG_READ,
  VFIO_DMA_MAP_FLAG_WRITE,
  VFIO_GROUP_GET_DEVICE_FD,
  VFIO_GROUP_SET_CONTAINER,
  VFIO_IOMMU_GET_INFO,
  VFIO_IOMMU_INFO_PGSIZES,
  VFIO_IOMMU_MAP_DMA,
  VFIO_IOMMU_UNMAP_DMA,
  VFIO_NOIOMMU_IOMMU,
  VFIO_SET_IOMMU,
  VFIO_TYPE1v2_IOMMU,
  VFIO_DEVICE_BIND_IOMMUFD,
  VfioDeviceBindIommufd,
} from '../../../lib/uapi/vfio';
import { PCI_COMMAND, PCI_COMMAND_MASTER, PCI_COMMAND_MEMORY } from '../../../lib/uapi/pci';
import { MAP_ANONYMOUS, MAP_PRIVATE, MAP_SHARED, O_RDWR, PROT_READ, PROT_WRITE } from '../../../lib/sys/constants';
import { isVfioError } from '../../../lib/sys/errors';
import { EDU_DMA_CMD_START, EDU_DMA_CMD_TO_RAM, EDU_REG } from '../../../lib/devices/edu';

const BDF = '0000:00:03.0';

function fdArg(fd: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeInt32LE(fd);
  return b;
}

describe('type1 container behind an IOMMU (linux-7.3-iommu)', () => {
  it('group 3 in a type1v2 container: MAP_DMA, then edu DMAs by IOVA; GET_INFO reports page sizes', async () => {
    const k = createModelKernel('linux-7.3-iommu');
    const container = k.open('/dev/vfio/vfio', O_RDWR);
    assert.equal(k.ioctl(container, VFIO_CHECK_EXTENSION.number, VFIO_TYPE1v2_IOMMU), 1);
    const group = k.open('/dev/vfio/3', O_RDWR);
    k.ioctl(group, VFIO_GROUP_SET_CONTAINER.number, fdArg(container));
    assert.equal(k.ioctl(container, VFIO_CHECK_EXTENSION.number, VFIO_NOIOMMU_IOMMU), 0, 'an IOMMU group rules out noiommu');
    k.ioctl(container, VFIO_SET_IOMMU.number, VFIO_TYPE1v2_IOMMU);
    const info = VfioIommuType1Info.encode({ argsz: VfioIommuType1Info.size });
    k.ioctl(container, VFIO_IOMMU_GET_INFO.number, info);
    assert.ok(VfioIommuType1Info.get(info, 'flags') & VFIO_IOMMU_INFO_PGSIZES);
    assert.ok(VfioIommuType1Info.get(info, 'iova_pgsizes') & 4096n);

    const buf = k.mmap(-1, 8192n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, 0n);
    // An IOVA inside VT-d's 39-bit aperture (a 47-bit process address would not fit).
    const iova = 0x1000_0000n;
    k.ioctl(
      container,
      VFIO_IOMMU_MAP_DMA.number,
      VfioIommuType1DmaMap.encode({
        argsz: VfioIommuType1DmaMap.size,
        flags: VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE,
        vaddr: buf.address,
        iova,
        size: 8192n,
      }),
    );
    const dev = k.ioctl(group, VFIO_GROUP_GET_DEVICE_FD.number, Buffer.from(`${BDF}\0`));
    const cmd = Buffer.alloc(2);
    cmd.writeUInt16LE(PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER);
    k.pwrite(dev, cmd, (7n << 40n) + BigInt(PCI_COMMAND));
    const bar = k.mmap(dev, 1n << 20n, PROT_READ | PROT_WRITE, MAP_SHARED, 0n);
    new Uint8Array(buf.buffer!).set([0xca, 0xfe, 0xba, 0xbe]);
    const run = async (src: bigint, dst: bigint, n: number, toRam: boolean) => {
      k.mmioWrite(bar, EDU_REG.DMA_SRC, 64, src);
      k.mmioWrite(bar, EDU_REG.DMA_DST, 64, dst);
      k.mmioWrite(bar, EDU_REG.DMA_COUNT, 64, BigInt(n));
      k.mmioWrite(bar, EDU_REG.DMA_CMD, 64, BigInt(EDU_DMA_CMD_START | (toRam ? EDU_DMA_CMD_TO_RAM : 0)));
      while (k.mmioRead(bar, EDU_REG.DMA_CMD, 32) & EDU_DMA_CMD_START) await new Promise((r) => setImmediate(r));
    };
    await run(iova, 0x40000n, 4, false);
    await run(0x40000n, iova + 4096n, 4, true);
    assert.deepEqual([...new Uint8Array(buf.buffer!, 4096, 4)], [0xca, 0xfe, 0xba, 0xbe]);

    const unmap = VfioIommuType1DmaUnmap.encode({ argsz: VfioIommuType1DmaUnmap.size, iova, size: 8192n });
    k.ioctl(container, VFIO_IOMMU_UNMAP_DMA.number, unmap);
    assert.equal(VfioIommuType1DmaUnmap.get(unmap, 'size'), 8192n);
    await run(0x40000n, iova, 4, true);
    const fault = k.pci!.host.slot(BDF)!.device.events.find((e) => e.kind === 'dma-fault');
    assert.equal(fault?.fault?.reason, 'unmapped-iova');
  });

  it('while the group is in a container its device cannot be bound through the cdev (EBUSY)', () => {
    const k = createModelKernel('linux-7.3-iommu');
    const container = k.open('/dev/vfio/vfio', O_RDWR);
    const group = k.open('/dev/vfio/3', O_RDWR);
    k.ioctl(group, VFIO_GROUP_SET_CONTAINER.number, fdArg(container));
    const cdev = k.open('/dev/vfio/devices/vfio0', O_RDWR);
    const iommufd = k.open('/dev/iommu', O_RDWR);
    assert.throws(
      () => k.ioctl(cdev, VFIO_DEVICE_BIND_IOMMUFD.number, VfioDeviceBindIommufd.encode({ argsz: 24, iommufd })),
      (e: unknown) => isVfioError(e, 'EBUSY'),
    );
  });

  it("closing the cdev releases iommufd's DMA ownership of the group, so the group can join a container", () => {
    const k = createModelKernel('linux-7.3-iommu');
    const cdev = k.open('/dev/vfio/devices/vfio0', O_RDWR);
    const iommufd = k.open('/dev/iommu', O_RDWR);
    k.ioctl(cdev, VFIO_DEVICE_BIND_IOMMUFD.number, VfioDeviceBindIommufd.encode({ argsz: 24, iommufd }));
    k.close(cdev);
    const container = k.open('/dev/vfio/vfio', O_RDWR);
    const group = k.open('/dev/vfio/3', O_RDWR);
    assert.doesNotThrow(() => k.ioctl(group, VFIO_GROUP_SET_CONTAINER.number, fdArg(container)), 'closing the cdev released ownership');
  });
});
