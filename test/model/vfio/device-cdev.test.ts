/**
 * The VFIO device cdev with edu behind it: open and bind rules (device_cdev.c), the device
 * ioctls (vfio_main.c vfio_device_fops_unl_ioctl, vfio_pci_core.c), region access and mmap
 * (vfio_pci_rdwr.c, vfio_pci_core_mmap), interrupts (vfio_pci_intrs.c) and DMA by the device.
 */
import assert from 'node:assert/strict';
import {
  VfioDeviceAttachIommufdPt,
  VfioDeviceBindIommufd,
  VfioDeviceDetachIommufdPt,
  VfioDeviceInfo,
  VfioIrqInfo,
  VfioIrqSet,
  VfioPciHotResetInfo,
  VfioRegionInfo,
  VFIO_DEVICE_ATTACH_IOMMUFD_PT,
  VFIO_DEVICE_BIND_IOMMUFD,
  VFIO_DEVICE_DETACH_IOMMUFD_PT,
  VFIO_DEVICE_FLAGS_PCI,
  VFIO_DEVICE_GET_INFO,
  VFIO_DEVICE_GET_IRQ_INFO,
  VFIO_DEVICE_GET_PCI_HOT_RESET_INFO,
  VFIO_DEVICE_GET_REGION_INFO,
  VFIO_DEVICE_RESET,
  VFIO_DEVICE_SET_IRQS,
  VFIO_IRQ_INFO_AUTOMASKED,
  VFIO_IRQ_INFO_EVENTFD,
  VFIO_IRQ_INFO_MASKABLE,
  VFIO_IRQ_INFO_NORESIZE,
  VFIO_IRQ_SET_ACTION_MASK,
  VFIO_IRQ_SET_ACTION_TRIGGER,
  VFIO_IRQ_SET_ACTION_UNMASK,
  VFIO_IRQ_SET_DATA_BOOL,
  VFIO_IRQ_SET_DATA_EVENTFD,
  VFIO_IRQ_SET_DATA_NONE,
  VFIO_PCI_CONFIG_REGION_INDEX,
  VFIO_PCI_ERR_IRQ_INDEX,
  VFIO_PCI_INTX_IRQ_INDEX,
  VFIO_PCI_MSIX_IRQ_INDEX,
  VFIO_PCI_MSI_IRQ_INDEX,
  VFIO_PCI_REQ_IRQ_INDEX,
  VFIO_REGION_INFO_FLAG_MMAP,
  VFIO_REGION_INFO_FLAG_READ,
  VFIO_REGION_INFO_FLAG_WRITE,
  VFIO_GROUP_GET_STATUS,
  VFIO_DEVICE_FEATURE,
  VFIO_DEVICE_FEATURE_GET,
  VFIO_DEVICE_FEATURE_SET,
  VFIO_DEVICE_FEATURE_PROBE,
  VFIO_DEVICE_FEATURE_MIGRATION,
  VFIO_DEVICE_FEATURE_LOW_POWER_ENTRY,
  VFIO_DEVICE_FEATURE_LOW_POWER_EXIT,
  VFIO_DEVICE_FEATURE_LOW_POWER_ENTRY_WITH_WAKEUP,
  VFIO_DEVICE_IOEVENTFD,
  VfioDeviceIoeventfd,
} from '../../../lib/uapi/vfio';
import { PCI_COMMAND, PCI_COMMAND_MASTER, PCI_COMMAND_MEMORY, PCI_MSI_FLAGS, PCI_MSI_FLAGS_ENABLE } from '../../../lib/uapi/pci';
import { MAP_PRIVATE, MAP_SHARED } from '../../../lib/sys/constants';
import { regionOffset } from '../../../lib/model/vfio/pci-core';
import { EDU_REG, EDU_DMA_CMD_START, EDU_DMA_CMD_TO_RAM } from '../../../lib/devices/edu';
import { EDU_BDF, FakeIommufd, TestHost, expectErrno } from './harness';

const CDEV = '/dev/vfio/devices/noiommu-vfio0';

function bindBuf(iommufd: number, extra: Partial<Parameters<typeof VfioDeviceBindIommufd.encode>[0]> = {}) {
  return VfioDeviceBindIommufd.encode({ argsz: VfioDeviceBindIommufd.size, flags: 0, iommufd, ...extra });
}

function boundDevice(opts: ConstructorParameters<typeof TestHost>[0] = {}) {
  const h = new TestHost(opts);
  h.bindVfioPci();
  const cdev = opts?.iommu ? '/dev/vfio/devices/vfio0' : CDEV;
  const dev = h.open(cdev);
  const ictx = h.newIommufd();
  const b = bindBuf(ictx);
  h.ioctl(dev, VFIO_DEVICE_BIND_IOMMUFD.number, b);
  return { h, dev, ictx, devid: VfioDeviceBindIommufd.get(b, 'out_devid') };
}

function pread(h: TestHost, fd: number, n: number, off: bigint): Buffer {
  const b = Buffer.alloc(n);
  h.file(fd).pread!(b, off, { fd });
  return b;
}
function pwrite(h: TestHost, fd: number, b: Buffer, off: bigint): number {
  return h.file(fd).pwrite!(b, off, { fd });
}
const CFG = regionOffset(VFIO_PCI_CONFIG_REGION_INDEX);

function irqSet(flags: number, index: number, start: number, count: number, data: number[] = [], dataWidth = 4) {
  const b = Buffer.alloc(VfioIrqSet.size + data.length * dataWidth);
  VfioIrqSet.encode({ argsz: b.length, flags, index, start, count }, b);
  data.forEach((v, i) => (dataWidth === 4 ? b.writeInt32LE(v, VfioIrqSet.size + 4 * i) : b.writeUInt8(v, VfioIrqSet.size + i)));
  return b;
}

describe('VFIO device cdev on edu', () => {
  describe('open and bind (device_cdev.c)', () => {
    it('opening a noiommu cdev needs CAP_SYS_RAWIO: EPERM (vfio_device_fops_cdev_open)', () => {
      const h = new TestHost({ caps: { sysRawio: false } });
      h.bindVfioPci();
      assert.throws(() => h.open(CDEV), expectErrno('EPERM'));
    });

    it('every ioctl but BIND_IOMMUFD, and pread, answer EINVAL before bind (vfio_device_fops_unl_ioctl)', () => {
      const h = new TestHost();
      h.bindVfioPci();
      const dev = h.open(CDEV);
      assert.throws(() => h.ioctl(dev, VFIO_DEVICE_GET_INFO.number, VfioDeviceInfo.encode({ argsz: 24 })), expectErrno('EINVAL'));
      assert.throws(() => pread(h, dev, 4, CFG), expectErrno('EINVAL'));
    });

    it('BIND_IOMMUFD argument rules: argsz, negative fd, flags, E2BIG tail, EBADF, EBADFD (vfio_df_ioctl_bind_iommufd)', () => {
      const h = new TestHost();
      h.bindVfioPci();
      const dev = h.open(CDEV);
      const ictx = h.newIommufd();
      const bind = (b: Uint8Array) => h.ioctl(dev, VFIO_DEVICE_BIND_IOMMUFD.number, b);
      assert.throws(() => bind(bindBuf(ictx, { argsz: 8 })), expectErrno('EINVAL'));
      assert.throws(() => bind(bindBuf(-1)), expectErrno('EINVAL'));
      assert.throws(() => bind(bindBuf(ictx, { flags: 2 })), expectErrno('EINVAL'));
      const big = Buffer.alloc(32);
      bindBuf(ictx).copy(big);
      big.writeUInt32LE(32, 0);
      big[28] = 1;
      assert.throws(() => bind(big), expectErrno('E2BIG'));
      assert.throws(() => bind(bindBuf(99)), expectErrno('EBADF'));
      assert.throws(() => bind(bindBuf(h.newEventfd())), expectErrno('EBADFD'));
      const ok = bindBuf(ictx);
      assert.equal(bind(ok), 0);
      assert.equal(
        VfioDeviceBindIommufd.get(ok, 'out_devid'),
        (h.file(ictx) as FakeIommufd).bound[0]!.id,
        'out_devid is the iommufd device object',
      );
      assert.throws(() => bind(bindBuf(ictx)), expectErrno('EINVAL'), 'a second bind');
    });

    it('a second cdev fd of an open device cannot bind (vfio_df_open: cdev opens once)', () => {
      const { h } = boundDevice();
      const dev2 = h.open(CDEV);
      assert.throws(() => h.ioctl(dev2, VFIO_DEVICE_BIND_IOMMUFD.number, bindBuf(h.newIommufd())), expectErrno('EINVAL'));
    });

    it('cdev and group exclude each other: EBUSY both ways (vfio_device_block_group, vfio_group_fops_open)', () => {
      const { h, dev } = boundDevice();
      assert.throws(() => h.open('/dev/vfio/noiommu-0'), expectErrno('EBUSY'));
      h.close(dev);
      const group = h.open('/dev/vfio/noiommu-0');
      const dev2 = h.open(CDEV);
      assert.throws(() => h.ioctl(dev2, VFIO_DEVICE_BIND_IOMMUFD.number, bindBuf(h.newIommufd())), expectErrno('EBUSY'));
      h.close(group);
      assert.equal(h.ioctl(dev2, VFIO_DEVICE_BIND_IOMMUFD.number, bindBuf(h.newIommufd())), 0);
    });

    it('attach and detach to an IOAS; a second attach replaces (vfio_iommufd_physical_attach_ioas)', () => {
      const { h, dev, ictx } = boundDevice();
      const ioas = (h.file(ictx) as FakeIommufd).ioasId;
      const a = VfioDeviceAttachIommufdPt.encode({ argsz: VfioDeviceAttachIommufdPt.size, flags: 0, pt_id: ioas });
      assert.equal(h.ioctl(dev, VFIO_DEVICE_ATTACH_IOMMUFD_PT.number, a), 0);
      assert.equal(VfioDeviceAttachIommufdPt.get(a, 'pt_id'), ioas + 100, 'pt_id comes back as the HWPT');
      assert.equal(h.ioctl(dev, VFIO_DEVICE_ATTACH_IOMMUFD_PT.number, VfioDeviceAttachIommufdPt.encode({ argsz: 16, pt_id: ioas })), 0);
      assert.throws(
        () => h.ioctl(dev, VFIO_DEVICE_ATTACH_IOMMUFD_PT.number, VfioDeviceAttachIommufdPt.encode({ argsz: 16, flags: 4, pt_id: ioas })),
        expectErrno('EINVAL'),
      );
      assert.throws(
        () => h.ioctl(dev, VFIO_DEVICE_ATTACH_IOMMUFD_PT.number, VfioDeviceAttachIommufdPt.encode({ argsz: 8, pt_id: ioas })),
        expectErrno('EINVAL'),
      );
      assert.equal(h.ioctl(dev, VFIO_DEVICE_DETACH_IOMMUFD_PT.number, VfioDeviceDetachIommufdPt.encode({ argsz: 12 })), 0);
    });

    it('device ioctls on other kinds of fd: a group answers ENOTTY, a container without IOMMU model EINVAL', () => {
      const h = new TestHost();
      h.bindVfioPci();
      const group = h.open('/dev/vfio/noiommu-0');
      const container = h.open('/dev/vfio/vfio');
      assert.throws(() => h.ioctl(group, VFIO_DEVICE_GET_INFO.number, VfioDeviceInfo.encode({ argsz: 24 })), expectErrno('ENOTTY'));
      assert.throws(() => h.ioctl(container, VFIO_DEVICE_GET_INFO.number, VfioDeviceInfo.encode({ argsz: 24 })), expectErrno('EINVAL'));
      assert.throws(() => h.ioctl(container, VFIO_GROUP_GET_STATUS.number, Buffer.alloc(8)), expectErrno('EINVAL'));
    });
  });

  describe('info ioctls (vfio_pci_ioctl_get_info, vfio_get_region_info, vfio_pci_ioctl_get_irq_info)', () => {
    it('GET_INFO: a PCI device without reset, 9 regions, 5 IRQ indexes; writes back only argsz bytes', () => {
      const { h, dev } = boundDevice();
      const info = VfioDeviceInfo.encode({ argsz: 24, cap_offset: 0xdead, pad: 0xbeef });
      h.ioctl(dev, VFIO_DEVICE_GET_INFO.number, info);
      assert.deepEqual(VfioDeviceInfo.decode(info), {
        argsz: 24,
        flags: VFIO_DEVICE_FLAGS_PCI,
        num_regions: 9,
        num_irqs: 5,
        cap_offset: 0,
        pad: 0,
      });
      const short = VfioDeviceInfo.encode({ argsz: 16, cap_offset: 0xdead });
      h.ioctl(dev, VFIO_DEVICE_GET_INFO.number, short);
      assert.equal(VfioDeviceInfo.get(short, 'cap_offset'), 0xdead, 'bytes past argsz are not written');
      assert.throws(() => h.ioctl(dev, VFIO_DEVICE_GET_INFO.number, VfioDeviceInfo.encode({ argsz: 15 })), expectErrno('EINVAL'));
    });

    it('region info: BAR0 1 MiB mmap-able at offset 0, config 256 bytes at 7<<40, empty BAR1 and ROM, no VGA', () => {
      const { h, dev } = boundDevice();
      const region = (index: number, argsz = 32) => {
        const b = VfioRegionInfo.encode({ argsz, index });
        h.ioctl(dev, VFIO_DEVICE_GET_REGION_INFO.number, b);
        return VfioRegionInfo.decode(b);
      };
      assert.deepEqual(region(0), {
        argsz: 32,
        flags: VFIO_REGION_INFO_FLAG_READ | VFIO_REGION_INFO_FLAG_WRITE | VFIO_REGION_INFO_FLAG_MMAP,
        index: 0,
        cap_offset: 0,
        size: 1n << 20n,
        offset: 0n,
      });
      assert.deepEqual(region(7), {
        argsz: 32,
        flags: VFIO_REGION_INFO_FLAG_READ | VFIO_REGION_INFO_FLAG_WRITE,
        index: 7,
        cap_offset: 0,
        size: 256n,
        offset: 7n << 40n,
      });
      assert.equal(region(1).size, 0n);
      assert.equal(region(1).flags, 0);
      assert.equal(region(6).size, 0n);
      assert.throws(() => region(8), expectErrno('EINVAL'));
      assert.throws(() => region(9), expectErrno('EINVAL'));
      assert.throws(() => region(0, 31), expectErrno('EINVAL'));
    });

    it('IRQ info: INTx 1 maskable+automasked, MSI 1, MSI-X 0, ERR and REQ 1', () => {
      const { h, dev } = boundDevice();
      const irq = (index: number) => {
        const b = VfioIrqInfo.encode({ argsz: 16, index });
        h.ioctl(dev, VFIO_DEVICE_GET_IRQ_INFO.number, b);
        return VfioIrqInfo.decode(b);
      };
      assert.deepEqual(irq(VFIO_PCI_INTX_IRQ_INDEX), {
        argsz: 16,
        flags: VFIO_IRQ_INFO_EVENTFD | VFIO_IRQ_INFO_MASKABLE | VFIO_IRQ_INFO_AUTOMASKED,
        index: 0,
        count: 1,
      });
      assert.deepEqual(irq(VFIO_PCI_MSI_IRQ_INDEX), {
        argsz: 16,
        flags: VFIO_IRQ_INFO_EVENTFD | VFIO_IRQ_INFO_NORESIZE,
        index: 1,
        count: 1,
      });
      assert.equal(irq(VFIO_PCI_MSIX_IRQ_INDEX).count, 0);
      assert.equal(irq(VFIO_PCI_ERR_IRQ_INDEX).count, 1);
      assert.equal(irq(VFIO_PCI_REQ_IRQ_INDEX).count, 1);
      assert.throws(() => irq(5), expectErrno('EINVAL'));
    });

    it('RESET is EINVAL on edu (no reset method); hot reset info is ENODEV on the root bus', () => {
      const { h, dev } = boundDevice();
      assert.throws(() => h.ioctl(dev, VFIO_DEVICE_RESET.number, null), expectErrno('EINVAL'));
      assert.throws(
        () => h.ioctl(dev, VFIO_DEVICE_GET_PCI_HOT_RESET_INFO.number, VfioPciHotResetInfo.encode({ argsz: 12 })),
        expectErrno('ENODEV'),
      );
    });
  });

  describe('regions (vfio_pci_rw, vfio_pci_bar_rw, vfio_pci_core_mmap)', () => {
    it('reads the ID register through pread and drives liveness through pwrite', () => {
      const { h, dev } = boundDevice();
      assert.equal(pread(h, dev, 4, BigInt(EDU_REG.ID)).readUInt32LE(0), 0x010000ed);
      const w = Buffer.alloc(4);
      w.writeUInt32LE(0x0f0f0f0f);
      assert.equal(pwrite(h, dev, w, BigInt(EDU_REG.LIVENESS)), 4);
      assert.equal(pread(h, dev, 4, BigInt(EDU_REG.LIVENESS)).readUInt32LE(0), 0xf0f0f0f0);
      assert.equal(pread(h, dev, 8, 0n).readBigUInt64LE(0), (1n << 64n) - 1n, 'an 8-byte pread is one 8-byte access');
    });

    it('BAR access with memory decoding off is EIO; offsets past the BAR are EINVAL', () => {
      const { h, dev } = boundDevice();
      const cmd = Buffer.alloc(2);
      pwrite(h, dev, cmd, CFG + BigInt(PCI_COMMAND));
      assert.throws(() => pread(h, dev, 4, 0n), expectErrno('EIO'));
      assert.throws(() => pread(h, dev, 4, 1n << 20n), expectErrno('EINVAL'));
      assert.throws(() => pread(h, dev, 4, regionOffset(9)), expectErrno('EINVAL'));
      assert.throws(() => pwrite(h, dev, Buffer.alloc(4), regionOffset(6)), expectErrno('EINVAL'));
    });

    it('mmap of BAR0 gives exact-width MMIO; MAP_PRIVATE and the config region are EINVAL', () => {
      const { h, dev } = boundDevice();
      const f = h.file(dev);
      const bar = f.mmap!(1n << 20n, 3, MAP_SHARED, 0n, { fd: dev });
      assert.equal(bar.kind, 'mmio');
      if (bar.kind !== 'mmio') return;
      assert.equal(bar.read(0, 32), 0x010000edn);
      assert.throws(() => f.mmap!(4096n, 3, MAP_PRIVATE, 0n, { fd: dev }), expectErrno('EINVAL'));
      assert.throws(() => f.mmap!(4096n, 3, MAP_SHARED, CFG, { fd: dev }), expectErrno('EINVAL'));
      assert.throws(() => f.mmap!(2n << 20n, 3, MAP_SHARED, 0n, { fd: dev }), expectErrno('EINVAL'));
      pwrite(h, dev, Buffer.alloc(2), CFG + BigInt(PCI_COMMAND));
      assert.throws(() => bar.read(0, 32), expectErrno('EFAULT'), 'SIGBUS with decoding off');
    });
  });

  describe('interrupts (vfio_pci_intrs.c, vfio_set_irqs_validate_and_prepare)', () => {
    function enableMaster(h: TestHost, dev: number) {
      const b = Buffer.alloc(2);
      b.writeUInt16LE(PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER);
      pwrite(h, dev, b, CFG + BigInt(PCI_COMMAND));
    }

    it('an MSI raised by edu arrives on the eventfd', () => {
      const { h, dev } = boundDevice();
      enableMaster(h, dev);
      const efd = h.newEventfd();
      h.ioctl(
        dev,
        VFIO_DEVICE_SET_IRQS.number,
        irqSet(VFIO_IRQ_SET_DATA_EVENTFD | VFIO_IRQ_SET_ACTION_TRIGGER, VFIO_PCI_MSI_IRQ_INDEX, 0, 1, [efd]),
      );
      const flags = pread(h, dev, 2, CFG + 0x40n + BigInt(PCI_MSI_FLAGS)).readUInt16LE(0);
      assert.equal(flags & PCI_MSI_FLAGS_ENABLE, 0, 'the user-visible enable bit is virtual');
      const w = Buffer.alloc(4);
      w.writeUInt32LE(1);
      pwrite(h, dev, w, BigInt(EDU_REG.IRQ_RAISE));
      assert.equal(h.eventfd(efd).read(), 1n);
      pwrite(h, dev, w, BigInt(EDU_REG.IRQ_RAISE));
      assert.equal(h.eventfd(efd).read(), 1n, 'every raise is a new message');
    });

    it('INTx is automasked: one signal until unmasked; unmask with the line still high re-signals', () => {
      const { h, dev } = boundDevice();
      enableMaster(h, dev);
      const efd = h.newEventfd();
      h.ioctl(
        dev,
        VFIO_DEVICE_SET_IRQS.number,
        irqSet(VFIO_IRQ_SET_DATA_EVENTFD | VFIO_IRQ_SET_ACTION_TRIGGER, VFIO_PCI_INTX_IRQ_INDEX, 0, 1, [efd]),
      );
      const one = Buffer.alloc(4);
      one.writeUInt32LE(1);
      pwrite(h, dev, one, BigInt(EDU_REG.IRQ_RAISE));
      assert.equal(h.eventfd(efd).read(), 1n);
      pwrite(h, dev, one, BigInt(EDU_REG.IRQ_ACK));
      pwrite(h, dev, one, BigInt(EDU_REG.IRQ_RAISE));
      assert.equal(h.eventfd(efd).readable(), false, 'masked after the first interrupt');
      h.ioctl(dev, VFIO_DEVICE_SET_IRQS.number, irqSet(VFIO_IRQ_SET_DATA_NONE | VFIO_IRQ_SET_ACTION_UNMASK, VFIO_PCI_INTX_IRQ_INDEX, 0, 1));
      assert.equal(h.eventfd(efd).read(), 1n, 'still asserted: signalled again at unmask');
      pwrite(h, dev, one, BigInt(EDU_REG.IRQ_ACK));
      h.ioctl(dev, VFIO_DEVICE_SET_IRQS.number, irqSet(VFIO_IRQ_SET_DATA_NONE | VFIO_IRQ_SET_ACTION_UNMASK, VFIO_PCI_INTX_IRQ_INDEX, 0, 1));
      assert.equal(h.eventfd(efd).readable(), false);
      pwrite(h, dev, one, BigInt(EDU_REG.IRQ_RAISE));
      assert.equal(h.eventfd(efd).read(), 1n);
    });

    it('loopback triggers: DATA_NONE and DATA_BOOL signal the eventfd', () => {
      const { h, dev } = boundDevice();
      const efd = h.newEventfd();
      h.ioctl(
        dev,
        VFIO_DEVICE_SET_IRQS.number,
        irqSet(VFIO_IRQ_SET_DATA_EVENTFD | VFIO_IRQ_SET_ACTION_TRIGGER, VFIO_PCI_MSI_IRQ_INDEX, 0, 1, [efd]),
      );
      h.ioctl(dev, VFIO_DEVICE_SET_IRQS.number, irqSet(VFIO_IRQ_SET_DATA_NONE | VFIO_IRQ_SET_ACTION_TRIGGER, VFIO_PCI_MSI_IRQ_INDEX, 0, 1));
      h.ioctl(
        dev,
        VFIO_DEVICE_SET_IRQS.number,
        irqSet(VFIO_IRQ_SET_DATA_BOOL | VFIO_IRQ_SET_ACTION_TRIGGER, VFIO_PCI_MSI_IRQ_INDEX, 0, 1, [1], 1),
      );
      assert.equal(h.eventfd(efd).read(), 2n);
      h.ioctl(dev, VFIO_DEVICE_SET_IRQS.number, irqSet(VFIO_IRQ_SET_DATA_NONE | VFIO_IRQ_SET_ACTION_TRIGGER, VFIO_PCI_MSI_IRQ_INDEX, 0, 0));
      assert.throws(
        () =>
          h.ioctl(
            dev,
            VFIO_DEVICE_SET_IRQS.number,
            irqSet(VFIO_IRQ_SET_DATA_NONE | VFIO_IRQ_SET_ACTION_TRIGGER, VFIO_PCI_MSI_IRQ_INDEX, 0, 1),
          ),
        expectErrno('EINVAL'),
        'MSI is off again',
      );
    });

    it('vfio_msi_enable: enabling MSI with eventfd data and count 0 is ERANGE from pci_alloc_irq_vectors (seen in the lab)', () => {
      const { h, dev } = boundDevice();
      assert.throws(
        () =>
          h.ioctl(
            dev,
            VFIO_DEVICE_SET_IRQS.number,
            irqSet(VFIO_IRQ_SET_DATA_EVENTFD | VFIO_IRQ_SET_ACTION_TRIGGER, VFIO_PCI_MSI_IRQ_INDEX, 0, 0, []),
          ),
        expectErrno('ERANGE'),
      );
      // Nothing was enabled: MSI can still be set up normally afterwards.
      h.ioctl(
        dev,
        VFIO_DEVICE_SET_IRQS.number,
        irqSet(VFIO_IRQ_SET_DATA_EVENTFD | VFIO_IRQ_SET_ACTION_TRIGGER, VFIO_PCI_MSI_IRQ_INDEX, 0, 1, [h.newEventfd()]),
      );
    });

    it("the kernel's errno for each wrong combination", () => {
      const { h, dev } = boundDevice();
      const set = (b: Uint8Array) => h.ioctl(dev, VFIO_DEVICE_SET_IRQS.number, b);
      const efd = h.newEventfd();
      assert.throws(
        () => set(irqSet(VFIO_IRQ_SET_DATA_NONE | VFIO_IRQ_SET_DATA_BOOL | VFIO_IRQ_SET_ACTION_TRIGGER, 1, 0, 1)),
        expectErrno('EINVAL'),
        'two data types',
      );
      assert.throws(
        () => set(irqSet(VFIO_IRQ_SET_DATA_NONE | VFIO_IRQ_SET_ACTION_TRIGGER | VFIO_IRQ_SET_ACTION_MASK, 1, 0, 1)),
        expectErrno('ENOTTY'),
        'two actions',
      );
      assert.throws(
        () => set(irqSet(VFIO_IRQ_SET_DATA_NONE | VFIO_IRQ_SET_ACTION_MASK, VFIO_PCI_MSI_IRQ_INDEX, 0, 1)),
        expectErrno('ENOTTY'),
        'MSI masking is not implemented',
      );
      assert.throws(
        () => set(irqSet(VFIO_IRQ_SET_DATA_EVENTFD | VFIO_IRQ_SET_ACTION_TRIGGER, VFIO_PCI_MSIX_IRQ_INDEX, 0, 1, [efd])),
        expectErrno('EINVAL'),
        'edu has no MSI-X',
      );
      assert.throws(
        () => set(irqSet(VFIO_IRQ_SET_DATA_EVENTFD | VFIO_IRQ_SET_ACTION_TRIGGER, VFIO_PCI_INTX_IRQ_INDEX, 0, 2, [efd, efd])),
        expectErrno('EINVAL'),
        'beyond the count',
      );
      assert.throws(
        () => set(irqSet(VFIO_IRQ_SET_DATA_EVENTFD | VFIO_IRQ_SET_ACTION_TRIGGER, 5, 0, 1, [efd])),
        expectErrno('EINVAL'),
        'index 5',
      );
      assert.throws(
        () => set(irqSet(0x80 | VFIO_IRQ_SET_DATA_NONE | VFIO_IRQ_SET_ACTION_TRIGGER, 1, 0, 1)),
        expectErrno('EINVAL'),
        'unknown flag',
      );
      const short = irqSet(VFIO_IRQ_SET_DATA_EVENTFD | VFIO_IRQ_SET_ACTION_TRIGGER, VFIO_PCI_MSI_IRQ_INDEX, 0, 1, [efd]);
      VfioIrqSet.set(short, 'argsz', 22);
      assert.throws(() => set(short), expectErrno('EINVAL'), 'argsz too small for the data');
      assert.throws(
        () => set(irqSet(VFIO_IRQ_SET_DATA_EVENTFD | VFIO_IRQ_SET_ACTION_TRIGGER, VFIO_PCI_MSI_IRQ_INDEX, 0, 1, [77])),
        expectErrno('EBADF'),
      );
      assert.throws(
        () => set(irqSet(VFIO_IRQ_SET_DATA_EVENTFD | VFIO_IRQ_SET_ACTION_TRIGGER, VFIO_PCI_MSI_IRQ_INDEX, 0, 1, [dev])),
        expectErrno('EINVAL'),
        'not an eventfd',
      );
      assert.throws(
        () => set(irqSet(VFIO_IRQ_SET_DATA_NONE | VFIO_IRQ_SET_ACTION_UNMASK, VFIO_PCI_INTX_IRQ_INDEX, 0, 1)),
        expectErrno('EINVAL'),
        'INTx not enabled',
      );
      set(irqSet(VFIO_IRQ_SET_DATA_EVENTFD | VFIO_IRQ_SET_ACTION_TRIGGER, VFIO_PCI_INTX_IRQ_INDEX, 0, 1, [efd]));
      assert.throws(
        () => set(irqSet(VFIO_IRQ_SET_DATA_EVENTFD | VFIO_IRQ_SET_ACTION_TRIGGER, VFIO_PCI_MSI_IRQ_INDEX, 0, 1, [efd])),
        expectErrno('EINVAL'),
        'INTx is active',
      );
      assert.throws(
        () => set(irqSet(VFIO_IRQ_SET_DATA_EVENTFD | VFIO_IRQ_SET_ACTION_MASK, VFIO_PCI_INTX_IRQ_INDEX, 0, 1, [efd])),
        expectErrno('ENOTTY'),
        'mask by eventfd',
      );
      assert.throws(
        () => set(irqSet(VFIO_IRQ_SET_DATA_NONE | VFIO_IRQ_SET_ACTION_TRIGGER, VFIO_PCI_ERR_IRQ_INDEX, 0, 1)),
        expectErrno('EINVAL'),
        'ERR has no eventfd yet',
      );
      set(irqSet(VFIO_IRQ_SET_DATA_EVENTFD | VFIO_IRQ_SET_ACTION_TRIGGER, VFIO_PCI_REQ_IRQ_INDEX, 0, 1, [efd]));
      set(irqSet(VFIO_IRQ_SET_DATA_NONE | VFIO_IRQ_SET_ACTION_TRIGGER, VFIO_PCI_REQ_IRQ_INDEX, 0, 0));
    });
  });

  describe('features, ioeventfd, unmask eventfd', () => {
    function feature(h: TestHost, dev: number, flags: number, data: number[] = []) {
      const b = Buffer.alloc(8 + data.length * 4);
      b.writeUInt32LE(b.length, 0);
      b.writeUInt32LE(flags, 4);
      data.forEach((v, i) => b.writeInt32LE(v, 8 + 4 * i));
      return h.ioctl(dev, VFIO_DEVICE_FEATURE.number, b);
    }

    it('VFIO_DEVICE_FEATURE: flag rules, PROBE, no migration, low power makes BAR mappings fault (vfio_ioctl_device_feature, vfio_pci_core_pm_entry)', () => {
      const { h, dev } = boundDevice();
      assert.throws(() => feature(h, dev, 1 << 20), expectErrno('EINVAL'), 'unknown flag');
      assert.throws(
        () => feature(h, dev, VFIO_DEVICE_FEATURE_GET | VFIO_DEVICE_FEATURE_SET | VFIO_DEVICE_FEATURE_LOW_POWER_ENTRY),
        expectErrno('EINVAL'),
      );
      assert.throws(() => feature(h, dev, VFIO_DEVICE_FEATURE_PROBE | VFIO_DEVICE_FEATURE_MIGRATION), expectErrno('ENOTTY'));
      assert.equal(feature(h, dev, VFIO_DEVICE_FEATURE_PROBE | VFIO_DEVICE_FEATURE_SET | VFIO_DEVICE_FEATURE_LOW_POWER_ENTRY), 0);
      assert.throws(
        () => feature(h, dev, VFIO_DEVICE_FEATURE_GET | VFIO_DEVICE_FEATURE_LOW_POWER_ENTRY),
        expectErrno('EINVAL'),
        'SET only',
      );
      const bar = h.file(dev).mmap!(4096n, 3, MAP_SHARED, 0n, { fd: dev });
      if (bar.kind !== 'mmio') throw new Error('BAR0 must map as mmio');
      assert.equal(feature(h, dev, VFIO_DEVICE_FEATURE_SET | VFIO_DEVICE_FEATURE_LOW_POWER_ENTRY), 0);
      assert.throws(() => bar.read(0, 32), expectErrno('EFAULT'), 'SIGBUS in low power');
      assert.throws(
        () => feature(h, dev, VFIO_DEVICE_FEATURE_SET | VFIO_DEVICE_FEATURE_LOW_POWER_ENTRY),
        expectErrno('EINVAL'),
        'already in low power',
      );
      assert.equal(feature(h, dev, VFIO_DEVICE_FEATURE_SET | VFIO_DEVICE_FEATURE_LOW_POWER_EXIT), 0);
      assert.equal(bar.read(0, 32), 0x010000edn);
      assert.throws(
        () => feature(h, dev, VFIO_DEVICE_FEATURE_SET | VFIO_DEVICE_FEATURE_LOW_POWER_ENTRY_WITH_WAKEUP, [-1, 0]),
        expectErrno('EINVAL'),
      );
      assert.throws(
        () => feature(h, dev, VFIO_DEVICE_FEATURE_SET | VFIO_DEVICE_FEATURE_LOW_POWER_ENTRY_WITH_WAKEUP, [90, 0]),
        expectErrno('EBADF'),
      );
      assert.throws(
        () => feature(h, dev, VFIO_DEVICE_FEATURE_SET | VFIO_DEVICE_FEATURE_LOW_POWER_ENTRY_WITH_WAKEUP),
        expectErrno('EINVAL'),
        'no room for the struct',
      );
      assert.equal(feature(h, dev, VFIO_DEVICE_FEATURE_SET | VFIO_DEVICE_FEATURE_LOW_POWER_ENTRY_WITH_WAKEUP, [h.newEventfd(), 0]), 0);
    });

    it('an ioeventfd writes its value to the BAR whenever the eventfd is signalled (vfio_pci_ioeventfd)', () => {
      const { h, dev } = boundDevice();
      const efd = h.newEventfd();
      const io = (fd: number, flags = 4, offset = BigInt(EDU_REG.LIVENESS)) =>
        h.ioctl(
          dev,
          VFIO_DEVICE_IOEVENTFD.number,
          VfioDeviceIoeventfd.encode({ argsz: VfioDeviceIoeventfd.size, flags, offset, data: 0x1234n, fd }),
        );
      assert.throws(() => io(efd, 3), expectErrno('EINVAL'), 'size must be a power of two');
      assert.throws(() => io(efd, 4, 7n << 40n), expectErrno('EINVAL'), 'only BARs');
      assert.throws(() => io(efd, 8, 0x80n), expectErrno('EINVAL'), '8-byte ioeventfds are refused');
      assert.throws(() => io(efd, 4, (1n << 40n) | 0n), expectErrno('EINVAL'), 'BAR1 does not exist');
      io(efd);
      h.eventfd(efd).write(1n);
      assert.equal(pread(h, dev, 4, BigInt(EDU_REG.LIVENESS)).readUInt32LE(0), ~0x1234 >>> 0);
      assert.throws(() => io(efd), expectErrno('EEXIST'));
      io(-1);
      assert.throws(() => io(-1), expectErrno('ENODEV'));
    });

    it('INTx unmask through an eventfd (virqfd): signalling it unmasks and re-sends a pending interrupt', () => {
      const { h, dev } = boundDevice();
      const b = Buffer.alloc(2);
      b.writeUInt16LE(PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER);
      pwrite(h, dev, b, CFG + BigInt(PCI_COMMAND));
      const trigger = h.newEventfd();
      const unmask = h.newEventfd();
      h.ioctl(
        dev,
        VFIO_DEVICE_SET_IRQS.number,
        irqSet(VFIO_IRQ_SET_DATA_EVENTFD | VFIO_IRQ_SET_ACTION_TRIGGER, VFIO_PCI_INTX_IRQ_INDEX, 0, 1, [trigger]),
      );
      h.ioctl(
        dev,
        VFIO_DEVICE_SET_IRQS.number,
        irqSet(VFIO_IRQ_SET_DATA_EVENTFD | VFIO_IRQ_SET_ACTION_UNMASK, VFIO_PCI_INTX_IRQ_INDEX, 0, 1, [unmask]),
      );
      assert.throws(
        () =>
          h.ioctl(
            dev,
            VFIO_DEVICE_SET_IRQS.number,
            irqSet(VFIO_IRQ_SET_DATA_EVENTFD | VFIO_IRQ_SET_ACTION_UNMASK, VFIO_PCI_INTX_IRQ_INDEX, 0, 1, [unmask]),
          ),
        expectErrno('EBUSY'),
      );
      const one = Buffer.alloc(4);
      one.writeUInt32LE(1);
      pwrite(h, dev, one, BigInt(EDU_REG.IRQ_RAISE));
      assert.equal(h.eventfd(trigger).read(), 1n);
      h.eventfd(unmask).write(1n);
      assert.equal(h.eventfd(trigger).read(), 1n, 'still asserted: the unmask re-sends it');
      assert.equal(h.eventfd(unmask).readable(), false, 'virqfd consumed the count');
    });
  });

  describe('DMA by the device', () => {
    function startDma(h: TestHost, dev: number, src: bigint, dst: bigint, count: number, cmd: number) {
      const b = Buffer.alloc(8);
      for (const [reg, v] of [
        [EDU_REG.DMA_SRC, src],
        [EDU_REG.DMA_DST, dst],
        [EDU_REG.DMA_COUNT, BigInt(count)],
        [EDU_REG.DMA_CMD, BigInt(cmd)],
      ] as const) {
        b.writeBigUInt64LE(v);
        pwrite(h, dev, b, BigInt(reg));
      }
    }

    it('behind an IOMMU: DMA by IOVA through the attached domain; an unmapped IOVA is a recorded fault', () => {
      const { h, dev, ictx } = boundDevice({
        iommu: true,
        noiommu: false,
        functions: [{ address: EDU_BDF, device: 'edu', options: { dma_mask: (1n << 64n) - 1n, timing: { mode: 'sync' } } }],
      });
      const cmd = Buffer.alloc(2);
      cmd.writeUInt16LE(PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER);
      pwrite(h, dev, cmd, CFG + BigInt(PCI_COMMAND));
      const fake = h.file(ictx) as FakeIommufd;
      const edu = h.machine.host.slot(EDU_BDF)!.device;
      startDma(h, dev, 0x10000n, 0x40000n, 16, EDU_DMA_CMD_START);
      assert.equal(edu.events.at(-1)?.fault?.reason, 'blocked', 'not attached: the IOMMU blocks DMA');
      h.ioctl(dev, VFIO_DEVICE_ATTACH_IOMMUFD_PT.number, VfioDeviceAttachIommufdPt.encode({ argsz: 16, pt_id: fake.ioasId }));
      fake.iovaMap.set(0x10000n, h.memory.base + 0x3000n);
      h.memory.bytes.set([9, 8, 7, 6], 0x3000);
      startDma(h, dev, 0x10000n, 0x40000n, 4, EDU_DMA_CMD_START);
      startDma(h, dev, 0x40000n, 0x10010n, 4, EDU_DMA_CMD_START | EDU_DMA_CMD_TO_RAM);
      assert.deepEqual([...h.memory.bytes.slice(0x3010, 0x3014)], [9, 8, 7, 6]);
      startDma(h, dev, 0x40000n, 0x20000n, 4, EDU_DMA_CMD_START | EDU_DMA_CMD_TO_RAM);
      const fault = edu.events.at(-1);
      assert.equal(fault?.kind, 'dma-fault');
      assert.equal(fault?.fault?.reason, 'unmapped-iova');
      assert.equal(fault?.fault?.address, 0x20000n);
    });
  });

  it('closing the device fd restores the function (bus mastering off, MSI off) and frees the cdev for the next user', () => {
    const { h, dev } = boundDevice();
    const b = Buffer.alloc(2);
    b.writeUInt16LE(PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER);
    pwrite(h, dev, b, CFG + BigInt(PCI_COMMAND));
    h.ioctl(
      dev,
      VFIO_DEVICE_SET_IRQS.number,
      irqSet(VFIO_IRQ_SET_DATA_EVENTFD | VFIO_IRQ_SET_ACTION_TRIGGER, VFIO_PCI_MSI_IRQ_INDEX, 0, 1, [h.newEventfd()]),
    );
    const edu = h.machine.host.slot(EDU_BDF)!.device;
    h.close(dev);
    assert.equal(edu.config.read(PCI_COMMAND, 2) & PCI_COMMAND_MASTER, 0);
    assert.equal(edu.config.read(0x40 + PCI_MSI_FLAGS, 2) & PCI_MSI_FLAGS_ENABLE, 0);
    const again = h.open(CDEV);
    assert.equal(h.ioctl(again, VFIO_DEVICE_BIND_IOMMUFD.number, bindBuf(h.newIommufd())), 0);
  });

  it('unbinding an open device is refused and signals REQ (the kernel would block until close)', () => {
    const { h, dev } = boundDevice();
    const req = h.newEventfd();
    h.ioctl(
      dev,
      VFIO_DEVICE_SET_IRQS.number,
      irqSet(VFIO_IRQ_SET_DATA_EVENTFD | VFIO_IRQ_SET_ACTION_TRIGGER, VFIO_PCI_REQ_IRQ_INDEX, 0, 1, [req]),
    );
    assert.throws(() => h.write('/sys/bus/pci/drivers/vfio-pci/unbind', EDU_BDF), expectErrno('EBUSY'));
    assert.equal(h.eventfd(req).read(), 1n);
    h.close(dev);
    h.write('/sys/bus/pci/drivers/vfio-pci/unbind', EDU_BDF);
    assert.equal(h.exists(CDEV), false);
  });
});
