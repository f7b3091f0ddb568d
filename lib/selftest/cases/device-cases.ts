/**
 * The VFIO device cdev: bind rules, everything that answers EINVAL before bind, attach/detach
 * argument checks, device/region/IRQ info and their argsz rules. Sources: drivers/vfio/
 * device_cdev.c (bind, attach, detach), vfio_main.c (vfio_device_fops_unl_ioctl,
 * vfio_get_region_info), pci/vfio_pci_core.c (get_info, get_irq_info, region info).
 */
import type { ConformanceCase } from '../case';
import type { CaseContext } from '../context';
import * as V from '../../uapi/vfio';
import { call } from '../calls';
import { casesOn, defineFixture } from '../fixture';
import { attachedDevice, boundDevice, boundWithIoas, openDevice } from '../fixtures';
import { plainIoctl } from '../raw-ioctl';
import { on } from '../struct-call';
import { bind, destroy, deviceInfo, irqInfo, regionInfo, regionOffset } from '../steps';
import { MAP_SHARED, PROT_READ } from '../../sys/constants';

/** A file descriptor number that is certainly not open: an eventfd's, after closing it. */
function closedFd(t: CaseContext): number {
  const fd = t.eventfd();
  t.closeNow(fd);
  return fd;
}

/** The device cdev alone, not bound and with no iommufd open. */
const cdevOnly = casesOn(defineFixture({ name: 'the device cdev', needs: ['device'], setup: (t) => on(t, { deviceFd: t.openDevice() }) }));
const unbound = casesOn(openDevice);
const bound = casesOn(boundDevice);

export const deviceCases: ConformanceCase[] = [
  cdevOnly.test('device.bind.not-an-iommufd', 'binding with an fd that is not an iommufd (an eventfd) is EBADFD', (t, f) => {
    const efd = t.eventfd();
    // iommufd_ctx_from_fd: a file with other file operations → EBADFD.
    t.expectErrno('bind to an eventfd', () => call.bind(f, { iommufd: efd }), 'EBADFD');
    t.expectErrno('bind to the device fd itself', () => call.bind(f, { iommufd: f.deviceFd }), 'EBADFD');
  }),
  cdevOnly.expect('device.bind.closed-fd', 'binding with an fd number that is not open is EBADF', 'bind to a closed fd', 'EBADF', (f) =>
    call.bind(f, { iommufd: closedFd(f.t) }),
  ),
  unbound.test('device.bind.argsz-below-min', 'BIND_IOMMUFD with argsz below offsetofend(out_devid) (11) is EINVAL', (t, f) => {
    t.expectErrno('bind argsz 11', () => call.bind(f, {}, { declaredSize: 11 }), 'EINVAL');
    t.expect('bind argsz 16 (no token pointer)', () => call.bind(f, {}, { declaredSize: 16 }), 'ok');
  }),
  unbound.expect('device.bind.unknown-flags', 'BIND_IOMMUFD with an unknown flag is EINVAL', 'bind flags 1<<1', 'EINVAL', (f) =>
    call.bind(f, { flags: 1 << 1 }),
  ),
  unbound.test(
    'device.bind.nonzero-tail',
    'BIND_IOMMUFD with argsz past the struct and a non-zero tail is E2BIG; a zero tail is accepted',
    (t, f) => {
      t.expectErrno('bind with a non-zero tail', () => call.bind(f, {}, { tail: [0, 0, 0, 0, 0, 0, 0, 1] }), 'E2BIG');
      t.expect('bind with a zero tail', () => call.bind(f, {}, { tail: [0, 0, 0, 0, 0, 0, 0, 0] }), 'ok');
    },
  ),
  bound.test('device.bind.second-open', 'a second open of the cdev works, but binding it while the first is bound is EINVAL', (t, f) => {
    const second = t.openDevice();
    // vfio_df_open: a cdev device may be opened (bound) only once at a time.
    t.expectErrno('bind the second fd', () => call.bind(f, {}, { fd: second }), 'EINVAL');
  }),
  bound.test('device.bind.after-close', 'closing a bound device fd releases the device: a new fd binds again', (t, f) => {
    t.closeNow(f.deviceFd);
    bind(t, t.openDevice(), f.iommufd);
  }),
  cdevOnly.test('device.before-bind.everything-einval', 'before bind every device ioctl, read and mmap is EINVAL', (t, f) => {
    t.expectErrno('GET_REGION_INFO', () => call.regionInfo(f, { index: 0 }), 'EINVAL');
    t.expectErrno('GET_IRQ_INFO', () => call.irqInfo(f, { index: 0 }), 'EINVAL');
    t.expectErrno('ATTACH_IOMMUFD_PT', () => call.attach(f, { pt_id: 1 }), 'EINVAL');
    t.expectErrno('DETACH_IOMMUFD_PT', () => call.detach(f), 'EINVAL');
    t.expectErrno('RESET', () => plainIoctl(t.kernel, f.deviceFd, V.VFIO_DEVICE_RESET), 'EINVAL');
    t.expectErrno('an unknown device ioctl', () => t.kernel.ioctl(f.deviceFd, (0x3b << 8) | 0x7f, Buffer.alloc(16)), 'EINVAL');
    t.expectErrno(
      'pread of config space',
      () => t.kernel.pread(f.deviceFd, Buffer.alloc(4), regionOffset(V.VFIO_PCI_CONFIG_REGION_INDEX)),
      'EINVAL',
    );
    t.expectErrno('mmap of BAR0', () => t.mapRegion(f.deviceFd, BigInt(t.pageSize), regionOffset(0)), 'EINVAL');
  }),
  casesOn(boundWithIoas).test(
    'device.attach.bad-input',
    'ATTACH_IOMMUFD_PT: argsz below 12 and unknown flags are EINVAL; a destroyed IOAS is ENOENT',
    (t, f) => {
      t.expectErrno('attach argsz 11', () => call.attach(f, { pt_id: f.ioasId }, { declaredSize: 11 }), 'EINVAL');
      t.expectErrno('attach flags 1<<1', () => call.attach(f, { pt_id: f.ioasId, flags: 1 << 1 }), 'EINVAL');
      destroy(t, f.iommufd, f.ioasId);
      t.expectErrno('attach to the destroyed IOAS', () => call.attach(f, { pt_id: f.ioasId }), 'ENOENT');
    },
  ),
  bound.test(
    'device.detach.bad-input',
    'DETACH_IOMMUFD_PT: argsz below 8 and unknown flags are EINVAL; detach when not attached succeeds',
    (t, f) => {
      t.expectErrno('detach argsz 7', () => call.detach(f, {}, { declaredSize: 7 }), 'EINVAL');
      t.expectErrno('detach flags 1<<1', () => call.detach(f, { flags: 1 << 1 }), 'EINVAL');
      // vfio_iommufd_physical_detach_ioas returns quietly when nothing is attached.
      t.expect('detach while not attached', () => call.detach(f), 'ok');
      t.expect('detach twice', () => call.detach(f), 'ok');
    },
  ),
  bound.test('device.info.basic', 'GET_INFO of a vfio-pci device: PCI flag, 9 or more regions, 5 IRQ indexes', (t, f) => {
    const info = deviceInfo(t, f.deviceFd);
    t.note(`flags 0x${info.flags.toString(16)}, ${info.num_regions} regions, ${info.num_irqs} irqs`);
    t.check((info.flags & V.VFIO_DEVICE_FLAGS_PCI) !== 0, 'VFIO_DEVICE_FLAGS_PCI is set');
    t.check(info.num_regions >= V.VFIO_PCI_NUM_REGIONS, `at least ${V.VFIO_PCI_NUM_REGIONS} regions`);
    t.equal(info.num_irqs, V.VFIO_PCI_NUM_IRQS, 'num_irqs');
  }),
  bound.test('device.info.argsz', 'GET_INFO: argsz 15 is EINVAL; 16 (without cap_offset) is enough', (t, f) => {
    t.expectErrno('GET_INFO argsz 15', () => call.deviceInfo(f, {}, { declaredSize: 15 }), 'EINVAL');
    const small = t.expect('GET_INFO argsz 16', () => call.deviceInfo(f, {}, { declaredSize: 16 }), 'ok');
    if (small) t.equal(small.num_irqs, V.VFIO_PCI_NUM_IRQS, 'num_irqs with argsz 16');
  }),
  bound.test(
    'device.region.bar0-and-config',
    'region info: BAR0 and config space at their fixed offsets, with read/write flags',
    (t, f) => {
      const bar0 = regionInfo(t, f.deviceFd, V.VFIO_PCI_BAR0_REGION_INDEX);
      t.note(`BAR0: size 0x${bar0.size.toString(16)}, flags 0x${bar0.flags.toString(16)}`);
      t.equal(bar0.offset, regionOffset(0), 'BAR0 offset');
      const cfg = regionInfo(t, f.deviceFd, V.VFIO_PCI_CONFIG_REGION_INDEX);
      t.equal(cfg.offset, regionOffset(V.VFIO_PCI_CONFIG_REGION_INDEX), 'config space offset (index 7 << 40)');
      t.equal(cfg.flags, V.VFIO_REGION_INFO_FLAG_READ | V.VFIO_REGION_INFO_FLAG_WRITE, 'config space flags');
      t.check(cfg.size === 256n || cfg.size === 4096n, `config space size is 256 or 4096 (${cfg.size})`);
    },
  ),
  bound.test('device.region.index-out-of-range', 'region info for index num_regions or 0xffffffff is EINVAL', (t, f) => {
    const info = deviceInfo(t, f.deviceFd);
    for (const index of [info.num_regions, 0xffff_ffff]) {
      t.expectErrno(`GET_REGION_INFO index ${index}`, () => call.regionInfo(f, { index }), 'EINVAL');
    }
  }),
  bound.expect('device.region.argsz-below-min', 'region info with argsz below 32 is EINVAL', 'GET_REGION_INFO argsz 31', 'EINVAL', (f) =>
    call.regionInfo(f, { index: 0 }, { declaredSize: 31 }),
  ),
  bound.test(
    'device.region.cap-chain-does-not-fit',
    'region info whose capability chain does not fit: success, FLAG_CAPS, argsz raised, cap_offset 0',
    (t, f) => {
      const info = deviceInfo(t, f.deviceFd);
      for (let index = 0; index < info.num_regions; index++) {
        // The VGA region exists only on VGA devices (otherwise EINVAL); it has no capabilities.
        if (index === V.VFIO_PCI_VGA_REGION_INDEX) continue;
        const r = regionInfo(t, f.deviceFd, index);
        if (!(r.flags & V.VFIO_REGION_INFO_FLAG_CAPS)) continue;
        t.check(r.argsz > V.VfioRegionInfo.size, `argsz raised past the struct (${r.argsz})`);
        t.equal(r.cap_offset, 0, 'cap_offset when the chain did not fit');
        return;
      }
      t.skip('no region of this device has a capability chain');
    },
  ),
  bound.test(
    'device.region.empty-bars',
    'unimplemented BARs report size 0 and no flags',
    (t, f) => {
      for (let index = 1; index <= 5; index++) {
        const r = regionInfo(t, f.deviceFd, index);
        t.equal(r.size, 0n, `BAR${index} size`);
        t.equal(r.flags, 0, `BAR${index} flags`);
      }
    },
    ['edu'],
  ),
  bound.test(
    'device.irq.info',
    'IRQ info: INTx maskable and automasked, the other indexes NORESIZE or not, ERR and REQ one each',
    (t, f) => {
      const intx = irqInfo(t, f.deviceFd, V.VFIO_PCI_INTX_IRQ_INDEX);
      t.note(`INTx: flags 0x${intx.flags.toString(16)} count ${intx.count}`);
      if (intx.count) t.equal(intx.flags, V.VFIO_IRQ_INFO_EVENTFD | V.VFIO_IRQ_INFO_MASKABLE | V.VFIO_IRQ_INFO_AUTOMASKED, 'INTx flags');
      const msi = irqInfo(t, f.deviceFd, V.VFIO_PCI_MSI_IRQ_INDEX);
      t.note(`MSI: flags 0x${msi.flags.toString(16)} count ${msi.count}`);
      t.equal(msi.flags, V.VFIO_IRQ_INFO_EVENTFD | V.VFIO_IRQ_INFO_NORESIZE, 'MSI flags');
      t.equal(irqInfo(t, f.deviceFd, V.VFIO_PCI_ERR_IRQ_INDEX).count, 1, 'ERR count');
      const req = irqInfo(t, f.deviceFd, V.VFIO_PCI_REQ_IRQ_INDEX);
      t.equal(req.count, 1, 'REQ count');
      t.equal(req.flags, V.VFIO_IRQ_INFO_EVENTFD | V.VFIO_IRQ_INFO_NORESIZE, 'REQ flags');
    },
  ),
  bound.test(
    'device.irq.info-edu',
    "edu's IRQs: one INTx, one MSI vector, no MSI-X",
    (t, f) => {
      t.equal(irqInfo(t, f.deviceFd, V.VFIO_PCI_INTX_IRQ_INDEX).count, 1, 'INTx count');
      t.equal(irqInfo(t, f.deviceFd, V.VFIO_PCI_MSI_IRQ_INDEX).count, 1, 'MSI count');
      t.equal(irqInfo(t, f.deviceFd, V.VFIO_PCI_MSIX_IRQ_INDEX).count, 0, 'MSI-X count');
    },
    ['edu'],
  ),
  bound.test('device.irq.info-bad-input', 'IRQ info with argsz below 16 or index 5 is EINVAL', (t, f) => {
    t.expectErrno('GET_IRQ_INFO argsz 15', () => call.irqInfo(f, { index: 0 }, { declaredSize: 15 }), 'EINVAL');
    t.expectErrno('GET_IRQ_INFO index 5', () => call.irqInfo(f, { index: V.VFIO_PCI_NUM_IRQS }), 'EINVAL');
  }),
  casesOn(attachedDevice).test(
    'device.reset',
    'VFIO_DEVICE_RESET works exactly when GET_INFO reports FLAGS_RESET (edu has no reset: EINVAL)',
    (t, f) => {
      const info = deviceInfo(t, f.deviceFd);
      t.note(`FLAGS_RESET ${info.flags & V.VFIO_DEVICE_FLAGS_RESET ? 'set' : 'clear'}`);
      t.expect(
        'VFIO_DEVICE_RESET',
        () => plainIoctl(t.kernel, f.deviceFd, V.VFIO_DEVICE_RESET),
        info.flags & V.VFIO_DEVICE_FLAGS_RESET ? 'ok' : 'EINVAL',
      );
    },
  ),
  bound.expect(
    'device.read-only-mmap-of-config',
    "config space cannot be mmap'ed (no MMAP flag): EINVAL",
    'mmap of config space',
    'EINVAL',
    (f) => {
      const m = f.t.kernel.mmap(f.deviceFd, BigInt(f.t.pageSize), PROT_READ, MAP_SHARED, regionOffset(V.VFIO_PCI_CONFIG_REGION_INDEX));
      f.t.defer('munmap', () => f.t.kernel.munmap(m));
    },
  ),
];
