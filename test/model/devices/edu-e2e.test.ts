/**
 * edu driven end to end on the model kernel through the Kernel interface only, the way a driver
 * does it on the lab's real Linux 7.3: bind edu to vfio-pci through sysfs, open its cdev, bind it
 * to an iommufd, map a buffer, program DMA with the addresses the kernel hands out
 * (IOMMU_IOAS_NOIOMMU_GET_PA on a noiommu host, IOVAs behind an IOMMU), wait for completion by
 * polling, take an MSI on an eventfd.
 */
import assert from 'node:assert/strict';
import { createModelKernel, type ModelKernel } from '../../../lib/model';
import {
  IommuIoasAlloc,
  IommuIoasMap,
  IommuIoasNoiommuGetPa,
  IommuIoasUnmap,
  IOMMU_IOAS_ALLOC,
  IOMMU_IOAS_MAP,
  IOMMU_IOAS_MAP_FIXED_IOVA,
  IOMMU_IOAS_MAP_READABLE,
  IOMMU_IOAS_MAP_WRITEABLE,
  IOMMU_IOAS_NOIOMMU_GET_PA,
  IOMMU_IOAS_UNMAP,
} from '../../../lib/uapi/iommufd';
import {
  VfioDeviceAttachIommufdPt,
  VfioDeviceBindIommufd,
  VfioIrqSet,
  VFIO_DEVICE_ATTACH_IOMMUFD_PT,
  VFIO_DEVICE_BIND_IOMMUFD,
  VFIO_DEVICE_SET_IRQS,
  VFIO_IRQ_SET_ACTION_TRIGGER,
  VFIO_IRQ_SET_DATA_EVENTFD,
  VFIO_PCI_MSI_IRQ_INDEX,
} from '../../../lib/uapi/vfio';
import { PCI_COMMAND, PCI_COMMAND_MASTER, PCI_COMMAND_MEMORY } from '../../../lib/uapi/pci';
import { EFD_NONBLOCK, MAP_ANONYMOUS, MAP_PRIVATE, MAP_SHARED, O_RDWR, PROT_READ, PROT_WRITE } from '../../../lib/sys/constants';
import type { Mapping } from '../../../lib/sys/kernel';
import { EDU_DMA_CMD_START, EDU_DMA_CMD_TO_RAM, EDU_REG } from '../../../lib/devices/edu';

const BDF = '0000:00:03.0';
const CONFIG_REGION = 7n << 40n;

interface Session {
  k: ModelKernel;
  dev: number;
  iommufd: number;
  ioas: number;
  bar: Mapping;
}

function open(profile: 'linux-7.3-noiommu' | 'linux-7.3-iommu'): Session {
  const k = createModelKernel(profile);
  k.writeFile(`/sys/bus/pci/devices/${BDF}/driver_override`, 'vfio-pci');
  k.writeFile('/sys/bus/pci/drivers_probe', BDF);
  const cdev = profile === 'linux-7.3-noiommu' ? '/dev/vfio/devices/noiommu-vfio0' : '/dev/vfio/devices/vfio0';
  const dev = k.open(cdev, O_RDWR);
  const iommufd = k.open('/dev/iommu', O_RDWR);
  k.ioctl(dev, VFIO_DEVICE_BIND_IOMMUFD.number, VfioDeviceBindIommufd.encode({ argsz: VfioDeviceBindIommufd.size, iommufd }));
  const alloc = IommuIoasAlloc.encode({ size: IommuIoasAlloc.size });
  k.ioctl(iommufd, IOMMU_IOAS_ALLOC.number, alloc);
  const ioas = IommuIoasAlloc.get(alloc, 'out_ioas_id');
  k.ioctl(
    dev,
    VFIO_DEVICE_ATTACH_IOMMUFD_PT.number,
    VfioDeviceAttachIommufdPt.encode({ argsz: VfioDeviceAttachIommufdPt.size, pt_id: ioas }),
  );
  const cmd = Buffer.alloc(2);
  cmd.writeUInt16LE(PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER);
  k.pwrite(dev, cmd, CONFIG_REGION + BigInt(PCI_COMMAND));
  const bar = k.mmap(dev, 1n << 20n, PROT_READ | PROT_WRITE, MAP_SHARED, 0n);
  return { k, dev, iommufd, ioas, bar };
}

/** Maps `pages` pages of fresh anonymous memory at `iova`. */
function mapBuffer(s: Session, iova: bigint, pages: number): Mapping {
  const m = s.k.mmap(-1, BigInt(pages * 4096), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, 0n);
  s.k.ioctl(
    s.iommufd,
    IOMMU_IOAS_MAP.number,
    IommuIoasMap.encode({
      size: IommuIoasMap.size,
      flags: IOMMU_IOAS_MAP_FIXED_IOVA | IOMMU_IOAS_MAP_READABLE | IOMMU_IOAS_MAP_WRITEABLE,
      ioas_id: s.ioas,
      user_va: m.address,
      length: m.length,
      iova,
    }),
  );
  return m;
}

function physicalAddress(s: Session, iova: bigint): bigint {
  const q = IommuIoasNoiommuGetPa.encode({ size: IommuIoasNoiommuGetPa.size, ioas_id: s.ioas, iova, length: 4096n });
  s.k.ioctl(s.iommufd, IOMMU_IOAS_NOIOMMU_GET_PA.number, q);
  return IommuIoasNoiommuGetPa.get(q, 'out_phys');
}

async function dma(s: Session, src: bigint, dst: bigint, count: number, toRam: boolean): Promise<void> {
  s.k.mmioWrite(s.bar, EDU_REG.DMA_SRC, 64, src);
  s.k.mmioWrite(s.bar, EDU_REG.DMA_DST, 64, dst);
  s.k.mmioWrite(s.bar, EDU_REG.DMA_COUNT, 64, BigInt(count));
  s.k.mmioWrite(s.bar, EDU_REG.DMA_CMD, 64, BigInt(EDU_DMA_CMD_START | (toRam ? EDU_DMA_CMD_TO_RAM : 0)));
  for (let i = 0; i < 1000; i++) {
    if (!(s.k.mmioRead(s.bar, EDU_REG.DMA_CMD, 32) & EDU_DMA_CMD_START)) return;
    await new Promise((r) => setImmediate(r));
  }
  throw new Error('edu DMA did not complete');
}

describe('edu on the model kernel, end to end', () => {
  describe('noiommu host (linux-7.3-noiommu)', () => {
    it('DMA RAM → device → RAM through physical addresses from NOIOMMU_GET_PA gives back the exact bytes', async () => {
      const s = open('linux-7.3-noiommu');
      assert.equal(s.k.mmioRead(s.bar, EDU_REG.ID, 32), 0x010000ed);
      const src = mapBuffer(s, 0x10_0000n, 1);
      const dst = mapBuffer(s, 0x20_0000n, 1);
      const pattern = Uint8Array.from({ length: 4000 }, (_, i) => (i * 31 + 7) & 0xff);
      new Uint8Array(src.buffer!).set(pattern);
      await dma(s, physicalAddress(s, 0x10_0000n), 0x40000n, pattern.length, false);
      await dma(s, 0x40000n, physicalAddress(s, 0x20_0000n), pattern.length, true);
      assert.deepEqual(new Uint8Array(dst.buffer!, 0, pattern.length), pattern);
      assert.deepEqual(
        s.k.pci!.host.slot(BDF)!.device.events.filter((e) => e.kind !== 'guest-error'),
        [],
      );
    });

    it('a DMA to a physical address whose memory was released is caught, not written', async () => {
      const s = open('linux-7.3-noiommu');
      const buf = mapBuffer(s, 0x10_0000n, 1);
      const pa = physicalAddress(s, 0x10_0000n);
      s.k.ioctl(
        s.iommufd,
        IOMMU_IOAS_UNMAP.number,
        IommuIoasUnmap.encode({ size: IommuIoasUnmap.size, ioas_id: s.ioas, iova: 0x10_0000n, length: 4096n }),
      );
      s.k.munmap(buf);
      await dma(s, 0x40000n, pa, 64, true);
      const edu = s.k.pci!.host.slot(BDF)!.device;
      const fault = edu.events.find((e) => e.kind === 'dma-fault');
      assert.equal(fault?.fault?.reason, 'no-memory');
      assert.equal(fault?.fault?.address, pa);
    });

    it('an MSI raised by edu arrives on the eventfd', async () => {
      const s = open('linux-7.3-noiommu');
      const efd = s.k.eventfd(0, EFD_NONBLOCK);
      const set = Buffer.alloc(VfioIrqSet.size + 4);
      VfioIrqSet.encode(
        {
          argsz: set.length,
          flags: VFIO_IRQ_SET_DATA_EVENTFD | VFIO_IRQ_SET_ACTION_TRIGGER,
          index: VFIO_PCI_MSI_IRQ_INDEX,
          start: 0,
          count: 1,
        },
        set,
      );
      set.writeInt32LE(efd, VfioIrqSet.size);
      s.k.ioctl(s.dev, VFIO_DEVICE_SET_IRQS.number, set);
      const ready = s.k.waitReadable(efd);
      s.k.mmioWrite(s.bar, EDU_REG.IRQ_RAISE, 32, 1);
      await ready;
      assert.equal(s.k.eventfdRead(efd), 1n);
    });

    it('factorial completes asynchronously: the status register says when', async () => {
      const s = open('linux-7.3-noiommu');
      s.k.mmioWrite(s.bar, EDU_REG.FACTORIAL, 32, 12);
      while (s.k.mmioRead(s.bar, EDU_REG.STATUS, 32) & 1) await new Promise((r) => setImmediate(r));
      assert.equal(s.k.mmioRead(s.bar, EDU_REG.FACTORIAL, 32), 479001600);
    });
  });

  describe('IOMMU host (linux-7.3-iommu)', () => {
    it('edu sits in IOMMU group 3 and DMAs by IOVA through the attached IOAS', async () => {
      const s = open('linux-7.3-iommu');
      assert.equal(s.k.readlink(`/sys/bus/pci/devices/${BDF}/iommu_group`), '../../../kernel/iommu_groups/3');
      const src = mapBuffer(s, 0x10_0000n, 1);
      const dst = mapBuffer(s, 0x20_0000n, 1);
      new Uint8Array(src.buffer!).set([1, 2, 3, 4, 5, 6, 7, 8]);
      await dma(s, 0x10_0000n, 0x40000n, 8, false);
      await dma(s, 0x40000n, 0x20_0010n, 8, true);
      assert.deepEqual([...new Uint8Array(dst.buffer!, 0x10, 8)], [1, 2, 3, 4, 5, 6, 7, 8]);
    });

    it('a DMA to an IOVA the driver never mapped is an IOMMU fault', async () => {
      const s = open('linux-7.3-iommu');
      mapBuffer(s, 0x10_0000n, 1);
      await dma(s, 0x40000n, 0x30_0000n, 16, true);
      const fault = s.k.pci!.host.slot(BDF)!.device.events.find((e) => e.kind === 'dma-fault');
      assert.equal(fault?.fault?.reason, 'unmapped-iova');
      assert.equal(fault?.fault?.address, 0x30_0000n);
    });
  });
});
