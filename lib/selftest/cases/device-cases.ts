/**
 * The VFIO device cdev: bind rules, everything that answers EINVAL before bind, attach/detach
 * argument checks, device/region/IRQ info and their argsz rules. Sources: drivers/vfio/
 * device_cdev.c (bind, attach, detach), vfio_main.c (vfio_device_fops_unl_ioctl,
 * vfio_get_region_info), pci/vfio_pci_core.c (get_info, get_irq_info, region info).
 */
import { defineCase, type ConformanceCase } from '../case';
import type { CaseContext } from '../context';
import * as V from '../../uapi/vfio';
import { rawIoctl, plainIoctl } from '../raw-ioctl';
import { attachCall, bind, destroy, deviceInfo, ioasAlloc, irqInfo, openAttached, openBound, regionInfo, regionOffset } from '../steps';
import { MAP_SHARED, PROT_READ } from '../../sys/constants';

function bindCall(t: CaseContext, deviceFd: number, values: Parameters<typeof V.VfioDeviceBindIommufd.encode>[0], options: { declaredSize?: number; tail?: number[] } = {}): () => number {
  return () => rawIoctl(t.kernel, deviceFd, V.VFIO_DEVICE_BIND_IOMMUFD, V.VfioDeviceBindIommufd, values, options).out.out_devid;
}

function detachCall(t: CaseContext, deviceFd: number, flags = 0, declaredSize = V.VfioDeviceDetachIommufdPt.endOf('flags')): () => void {
  return () => { rawIoctl(t.kernel, deviceFd, V.VFIO_DEVICE_DETACH_IOMMUFD_PT, V.VfioDeviceDetachIommufdPt, { flags }, { declaredSize }); };
}

/** A file descriptor number that is certainly not open: an eventfd's, after closing it. */
function closedFd(t: CaseContext): number {
  const fd = t.eventfd();
  t.closeNow(fd);
  return fd;
}

export const deviceCases: ConformanceCase[] = [
  defineCase({
    id: 'device.bind.not-an-iommufd',
    title: 'binding with an fd that is not an iommufd (an eventfd) is EBADFD',
    needs: ['device'],
    run(t) {
      const deviceFd = t.openDevice();
      const efd = t.eventfd();
      // iommufd_ctx_from_fd: a file with other file operations → EBADFD.
      t.expectErrno('bind to an eventfd', bindCall(t, deviceFd, { iommufd: efd }), 'EBADFD');
      t.expectErrno('bind to the device fd itself', bindCall(t, deviceFd, { iommufd: deviceFd }), 'EBADFD');
    },
  }),
  defineCase({
    id: 'device.bind.closed-fd',
    title: 'binding with an fd number that is not open is EBADF',
    needs: ['device'],
    run(t) {
      const deviceFd = t.openDevice();
      t.expectErrno('bind to a closed fd', bindCall(t, deviceFd, { iommufd: closedFd(t) }), 'EBADF');
    },
  }),
  defineCase({
    id: 'device.bind.argsz-below-min',
    title: 'BIND_IOMMUFD with argsz below offsetofend(out_devid) (11) is EINVAL',
    needs: ['device'],
    run(t) {
      const deviceFd = t.openDevice();
      const iommufd = t.openIommufd();
      t.expectErrno('bind argsz 11', bindCall(t, deviceFd, { iommufd }, { declaredSize: 11 }), 'EINVAL');
      t.expect('bind argsz 16 (no token pointer)', bindCall(t, deviceFd, { iommufd }, { declaredSize: 16 }), 'ok');
    },
  }),
  defineCase({
    id: 'device.bind.unknown-flags',
    title: 'BIND_IOMMUFD with an unknown flag is EINVAL',
    needs: ['device'],
    run(t) {
      const deviceFd = t.openDevice();
      const iommufd = t.openIommufd();
      t.expectErrno('bind flags 1<<1', bindCall(t, deviceFd, { iommufd, flags: 1 << 1 }), 'EINVAL');
    },
  }),
  defineCase({
    id: 'device.bind.nonzero-tail',
    title: 'BIND_IOMMUFD with argsz past the struct and a non-zero tail is E2BIG; a zero tail is accepted',
    needs: ['device'],
    run(t) {
      const deviceFd = t.openDevice();
      const iommufd = t.openIommufd();
      t.expectErrno('bind with a non-zero tail', bindCall(t, deviceFd, { iommufd }, { tail: [0, 0, 0, 0, 0, 0, 0, 1] }), 'E2BIG');
      t.expect('bind with a zero tail', bindCall(t, deviceFd, { iommufd }, { tail: [0, 0, 0, 0, 0, 0, 0, 0] }), 'ok');
    },
  }),
  defineCase({
    id: 'device.bind.second-open',
    title: 'a second open of the cdev works, but binding it while the first is bound is EINVAL',
    needs: ['device'],
    run(t) {
      const first = openBound(t);
      const second = t.openDevice();
      // vfio_df_open: a cdev device may be opened (bound) only once at a time.
      t.expectErrno('bind the second fd', bindCall(t, second, { iommufd: first.iommufd }), 'EINVAL');
    },
  }),
  defineCase({
    id: 'device.bind.after-close',
    title: 'closing a bound device fd releases the device: a new fd binds again',
    needs: ['device'],
    run(t) {
      const first = openBound(t);
      t.closeNow(first.deviceFd);
      const again = t.openDevice();
      bind(t, again, first.iommufd);
    },
  }),
  defineCase({
    id: 'device.before-bind.everything-einval',
    title: 'before bind every device ioctl, read and mmap is EINVAL',
    needs: ['device'],
    run(t) {
      const deviceFd = t.openDevice();
      t.expectErrno('GET_REGION_INFO', () => rawIoctl(t.kernel, deviceFd, V.VFIO_DEVICE_GET_REGION_INFO, V.VfioRegionInfo, { index: 0 }), 'EINVAL');
      t.expectErrno('GET_IRQ_INFO', () => rawIoctl(t.kernel, deviceFd, V.VFIO_DEVICE_GET_IRQ_INFO, V.VfioIrqInfo, { index: 0 }), 'EINVAL');
      t.expectErrno('ATTACH_IOMMUFD_PT', attachCall(t, deviceFd, 1), 'EINVAL');
      t.expectErrno('DETACH_IOMMUFD_PT', detachCall(t, deviceFd), 'EINVAL');
      t.expectErrno('RESET', () => plainIoctl(t.kernel, deviceFd, V.VFIO_DEVICE_RESET), 'EINVAL');
      t.expectErrno('an unknown device ioctl', () => t.kernel.ioctl(deviceFd, (0x3b << 8) | 0x7f, Buffer.alloc(16)), 'EINVAL');
      t.expectErrno('pread of config space', () => t.kernel.pread(deviceFd, Buffer.alloc(4), regionOffset(V.VFIO_PCI_CONFIG_REGION_INDEX)), 'EINVAL');
      t.expectErrno('mmap of BAR0', () => t.mapRegion(deviceFd, BigInt(t.pageSize), regionOffset(0)), 'EINVAL');
    },
  }),
  defineCase({
    id: 'device.attach.bad-input',
    title: 'ATTACH_IOMMUFD_PT: argsz below 12 and unknown flags are EINVAL; a destroyed IOAS is ENOENT',
    needs: ['device'],
    run(t) {
      const dev = openBound(t);
      const ioasId = ioasAlloc(t, dev.iommufd);
      t.expectErrno('attach argsz 11', () => rawIoctl(t.kernel, dev.deviceFd, V.VFIO_DEVICE_ATTACH_IOMMUFD_PT, V.VfioDeviceAttachIommufdPt,
        { pt_id: ioasId }, { declaredSize: 11 }), 'EINVAL');
      t.expectErrno('attach flags 1<<1', attachCall(t, dev.deviceFd, ioasId, 1 << 1), 'EINVAL');
      destroy(t, dev.iommufd, ioasId);
      t.expectErrno('attach to the destroyed IOAS', attachCall(t, dev.deviceFd, ioasId), 'ENOENT');
    },
  }),
  defineCase({
    id: 'device.detach.bad-input',
    title: 'DETACH_IOMMUFD_PT: argsz below 8 and unknown flags are EINVAL; detach when not attached succeeds',
    needs: ['device'],
    run(t) {
      const dev = openBound(t);
      t.expectErrno('detach argsz 7', detachCall(t, dev.deviceFd, 0, 7), 'EINVAL');
      t.expectErrno('detach flags 1<<1', detachCall(t, dev.deviceFd, 1 << 1), 'EINVAL');
      // vfio_iommufd_physical_detach_ioas returns quietly when nothing is attached.
      t.expect('detach while not attached', detachCall(t, dev.deviceFd), 'ok');
      t.expect('detach twice', detachCall(t, dev.deviceFd), 'ok');
    },
  }),
  defineCase({
    id: 'device.info.basic',
    title: 'GET_INFO of a vfio-pci device: PCI flag, 9 or more regions, 5 IRQ indexes',
    needs: ['device'],
    run(t) {
      const dev = openBound(t);
      const info = deviceInfo(t, dev.deviceFd);
      t.note(`flags 0x${info.flags.toString(16)}, ${info.num_regions} regions, ${info.num_irqs} irqs`);
      t.check((info.flags & V.VFIO_DEVICE_FLAGS_PCI) !== 0, 'VFIO_DEVICE_FLAGS_PCI is set');
      t.check(info.num_regions >= V.VFIO_PCI_NUM_REGIONS, `at least ${V.VFIO_PCI_NUM_REGIONS} regions`);
      t.equal(info.num_irqs, V.VFIO_PCI_NUM_IRQS, 'num_irqs');
    },
  }),
  defineCase({
    id: 'device.info.argsz',
    title: 'GET_INFO: argsz 15 is EINVAL; 16 (without cap_offset) is enough',
    needs: ['device'],
    run(t) {
      const dev = openBound(t);
      t.expectErrno('GET_INFO argsz 15', () => rawIoctl(t.kernel, dev.deviceFd, V.VFIO_DEVICE_GET_INFO, V.VfioDeviceInfo, {}, { declaredSize: 15 }), 'EINVAL');
      const small = t.expect('GET_INFO argsz 16', () => rawIoctl(t.kernel, dev.deviceFd, V.VFIO_DEVICE_GET_INFO, V.VfioDeviceInfo, {}, { declaredSize: 16 }).out, 'ok');
      if (small) t.equal(small.num_irqs, V.VFIO_PCI_NUM_IRQS, 'num_irqs with argsz 16');
    },
  }),
  defineCase({
    id: 'device.region.bar0-and-config',
    title: 'region info: BAR0 and config space at their fixed offsets, with read/write flags',
    needs: ['device'],
    run(t) {
      const dev = openBound(t);
      const bar0 = regionInfo(t, dev.deviceFd, V.VFIO_PCI_BAR0_REGION_INDEX);
      t.note(`BAR0: size 0x${bar0.size.toString(16)}, flags 0x${bar0.flags.toString(16)}`);
      t.equal(bar0.offset, regionOffset(0), 'BAR0 offset');
      const cfg = regionInfo(t, dev.deviceFd, V.VFIO_PCI_CONFIG_REGION_INDEX);
      t.equal(cfg.offset, regionOffset(V.VFIO_PCI_CONFIG_REGION_INDEX), 'config space offset (index 7 << 40)');
      t.equal(cfg.flags, V.VFIO_REGION_INFO_FLAG_READ | V.VFIO_REGION_INFO_FLAG_WRITE, 'config space flags');
      t.check(cfg.size === 256n || cfg.size === 4096n, `config space size is 256 or 4096 (${cfg.size})`);
    },
  }),
  defineCase({
    id: 'device.region.index-out-of-range',
    title: 'region info for index num_regions or 0xffffffff is EINVAL',
    needs: ['device'],
    run(t) {
      const dev = openBound(t);
      const info = deviceInfo(t, dev.deviceFd);
      for (const index of [info.num_regions, 0xffff_ffff]) {
        t.expectErrno(`GET_REGION_INFO index ${index}`, () => rawIoctl(t.kernel, dev.deviceFd, V.VFIO_DEVICE_GET_REGION_INFO, V.VfioRegionInfo, { index }), 'EINVAL');
      }
    },
  }),
  defineCase({
    id: 'device.region.argsz-below-min',
    title: 'region info with argsz below 32 is EINVAL',
    needs: ['device'],
    run(t) {
      const dev = openBound(t);
      t.expectErrno('GET_REGION_INFO argsz 31', () => rawIoctl(t.kernel, dev.deviceFd, V.VFIO_DEVICE_GET_REGION_INFO, V.VfioRegionInfo,
        { index: 0 }, { declaredSize: 31 }), 'EINVAL');
    },
  }),
  defineCase({
    id: 'device.region.cap-chain-does-not-fit',
    title: 'region info whose capability chain does not fit: success, FLAG_CAPS, argsz raised, cap_offset 0',
    needs: ['device'],
    run(t) {
      const dev = openBound(t);
      const info = deviceInfo(t, dev.deviceFd);
      for (let index = 0; index < info.num_regions; index++) {
        // The VGA region exists only on VGA devices (otherwise EINVAL); it has no capabilities.
        if (index === V.VFIO_PCI_VGA_REGION_INDEX) continue;
        const r = regionInfo(t, dev.deviceFd, index);
        if (!(r.flags & V.VFIO_REGION_INFO_FLAG_CAPS)) continue;
        t.check(r.argsz > V.VfioRegionInfo.size, `argsz raised past the struct (${r.argsz})`);
        t.equal(r.cap_offset, 0, 'cap_offset when the chain did not fit');
        return;
      }
      t.skip('no region of this device has a capability chain');
    },
  }),
  defineCase({
    id: 'device.region.empty-bars',
    title: 'unimplemented BARs report size 0 and no flags',
    needs: ['device', 'edu'],
    run(t) {
      const dev = openBound(t);
      for (let index = 1; index <= 5; index++) {
        const r = regionInfo(t, dev.deviceFd, index);
        t.equal(r.size, 0n, `BAR${index} size`);
        t.equal(r.flags, 0, `BAR${index} flags`);
      }
    },
  }),
  defineCase({
    id: 'device.irq.info',
    title: 'IRQ info: INTx maskable and automasked, the other indexes NORESIZE or not, ERR and REQ one each',
    needs: ['device'],
    run(t) {
      const dev = openBound(t);
      const intx = irqInfo(t, dev.deviceFd, V.VFIO_PCI_INTX_IRQ_INDEX);
      t.note(`INTx: flags 0x${intx.flags.toString(16)} count ${intx.count}`);
      if (intx.count) t.equal(intx.flags, V.VFIO_IRQ_INFO_EVENTFD | V.VFIO_IRQ_INFO_MASKABLE | V.VFIO_IRQ_INFO_AUTOMASKED, 'INTx flags');
      const msi = irqInfo(t, dev.deviceFd, V.VFIO_PCI_MSI_IRQ_INDEX);
      t.note(`MSI: flags 0x${msi.flags.toString(16)} count ${msi.count}`);
      t.equal(msi.flags, V.VFIO_IRQ_INFO_EVENTFD | V.VFIO_IRQ_INFO_NORESIZE, 'MSI flags');
      const err = irqInfo(t, dev.deviceFd, V.VFIO_PCI_ERR_IRQ_INDEX);
      t.equal(err.count, 1, 'ERR count');
      const req = irqInfo(t, dev.deviceFd, V.VFIO_PCI_REQ_IRQ_INDEX);
      t.equal(req.count, 1, 'REQ count');
      t.equal(req.flags, V.VFIO_IRQ_INFO_EVENTFD | V.VFIO_IRQ_INFO_NORESIZE, 'REQ flags');
    },
  }),
  defineCase({
    id: 'device.irq.info-edu',
    title: 'edu\'s IRQs: one INTx, one MSI vector, no MSI-X',
    needs: ['device', 'edu'],
    run(t) {
      const dev = openBound(t);
      t.equal(irqInfo(t, dev.deviceFd, V.VFIO_PCI_INTX_IRQ_INDEX).count, 1, 'INTx count');
      t.equal(irqInfo(t, dev.deviceFd, V.VFIO_PCI_MSI_IRQ_INDEX).count, 1, 'MSI count');
      t.equal(irqInfo(t, dev.deviceFd, V.VFIO_PCI_MSIX_IRQ_INDEX).count, 0, 'MSI-X count');
    },
  }),
  defineCase({
    id: 'device.irq.info-bad-input',
    title: 'IRQ info with argsz below 16 or index 5 is EINVAL',
    needs: ['device'],
    run(t) {
      const dev = openBound(t);
      t.expectErrno('GET_IRQ_INFO argsz 15', () => rawIoctl(t.kernel, dev.deviceFd, V.VFIO_DEVICE_GET_IRQ_INFO, V.VfioIrqInfo, { index: 0 }, { declaredSize: 15 }), 'EINVAL');
      t.expectErrno('GET_IRQ_INFO index 5', () => rawIoctl(t.kernel, dev.deviceFd, V.VFIO_DEVICE_GET_IRQ_INFO, V.VfioIrqInfo, { index: V.VFIO_PCI_NUM_IRQS }), 'EINVAL');
    },
  }),
  defineCase({
    id: 'device.reset',
    title: 'VFIO_DEVICE_RESET works exactly when GET_INFO reports FLAGS_RESET (edu has no reset: EINVAL)',
    needs: ['device'],
    run(t) {
      const dev = openAttached(t);
      const info = deviceInfo(t, dev.deviceFd);
      t.note(`FLAGS_RESET ${info.flags & V.VFIO_DEVICE_FLAGS_RESET ? 'set' : 'clear'}`);
      t.expect('VFIO_DEVICE_RESET', () => plainIoctl(t.kernel, dev.deviceFd, V.VFIO_DEVICE_RESET), info.flags & V.VFIO_DEVICE_FLAGS_RESET ? 'ok' : 'EINVAL');
    },
  }),
  defineCase({
    id: 'device.read-only-mmap-of-config',
    title: 'config space cannot be mmap\'ed (no MMAP flag): EINVAL',
    needs: ['device'],
    run(t) {
      const dev = openBound(t);
      t.expectErrno('mmap of config space', () => {
        const m = t.kernel.mmap(dev.deviceFd, BigInt(t.pageSize), PROT_READ, MAP_SHARED, regionOffset(V.VFIO_PCI_CONFIG_REGION_INDEX));
        t.defer('munmap', () => t.kernel.munmap(m));
      }, 'EINVAL');
    },
  }),
];
