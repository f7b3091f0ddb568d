/**
 * A fixed list of observations of edu behind vfio-pci, made through the Kernel interface only:
 * sysfs attributes, device info, regions and IRQ counts, config space virtualisation, BAR
 * accesses of every width (pread and mmap), MSI and INTx delivery (with and without bus
 * mastering, masking, unmask), SET_IRQS errnos, factorial timing, device features, ioeventfd.
 * Run on the lab's real Linux 7.3 + QEMU 7.2 edu (record-edu-observations.ts), the output is
 * stored in fixtures/; edu-lab-parity.test.ts runs the same list on the model and expects the
 * very same lines.
 */
import type { Kernel } from '../../../lib/sys/kernel';
import * as V from '../../../lib/uapi/vfio';
import * as C from '../../../lib/sys/constants';

const BDF = '0000:00:03.0';

export async function observeEdu(k: Kernel): Promise<string[]> {
  const lines: string[] = [];
  const out = (key: string, v: unknown) => lines.push(`${key} = ${typeof v === 'bigint' ? '0x' + v.toString(16) : JSON.stringify(v)}`);
  const tryit = (key: string, fn: () => unknown) => {
    try {
      out(key, fn());
    } catch (e) {
      out(key, `ERR ${(e as { code?: string }).code ?? (e as Error).message}`);
    }
  };
  const sys = `/sys/bus/pci/devices/${BDF}`;
  for (const a of [
    'irq',
    'vendor',
    'device',
    'class',
    'subsystem_vendor',
    'subsystem_device',
    'revision',
    'resource',
    'driver_override',
    'enable',
    'modalias',
  ]) {
    tryit(`sysfs.${a}`, () => k.readFile(`${sys}/${a}`).toString());
  }
  tryit('sysfs.config.len', () => k.readFile(`${sys}/config`).length);
  tryit('sysfs.iommu_group', () => k.readlink(`${sys}/iommu_group`));
  tryit('sysfs.iommu_group.name', () => k.readFile(`${sys}/iommu_group/name`).toString());
  tryit('sysfs.vfio-dev', () => k.readdir(`${sys}/vfio-dev`));
  tryit('dev.vfio', () => k.readdir('/dev/vfio').sort());
  const noiommu = k.exists('/dev/vfio/devices/noiommu-vfio0');
  const dev = k.open(noiommu ? '/dev/vfio/devices/noiommu-vfio0' : '/dev/vfio/devices/vfio0', C.O_RDWR);
  const iommufd = k.open('/dev/iommu', C.O_RDWR);
  tryit('ioctl.before-bind.get-info', () => k.ioctl(dev, V.VFIO_DEVICE_GET_INFO.number, V.VfioDeviceInfo.encode({ argsz: 24 })));
  tryit('pread.before-bind', () => k.pread(dev, Buffer.alloc(4), 0n));
  const bind = V.VfioDeviceBindIommufd.encode({ argsz: 24, iommufd });
  k.ioctl(dev, V.VFIO_DEVICE_BIND_IOMMUFD.number, bind);
  out('bind.devid', V.VfioDeviceBindIommufd.get(bind, 'out_devid'));
  tryit('bind.again', () => k.ioctl(dev, V.VFIO_DEVICE_BIND_IOMMUFD.number, V.VfioDeviceBindIommufd.encode({ argsz: 24, iommufd })));
  const info = V.VfioDeviceInfo.encode({ argsz: 24 });
  k.ioctl(dev, V.VFIO_DEVICE_GET_INFO.number, info);
  out('info', V.VfioDeviceInfo.decode(info));
  for (let i = 0; i < 10; i++) {
    tryit(`region.${i}`, () => {
      const b = V.VfioRegionInfo.encode({ argsz: 32, index: i });
      k.ioctl(dev, V.VFIO_DEVICE_GET_REGION_INFO.number, b);
      const r = V.VfioRegionInfo.decode(b);
      return `${r.flags} ${r.size} ${r.offset} ${r.cap_offset} ${r.argsz}`;
    });
  }
  for (let i = 0; i < 6; i++) {
    tryit(`irq.${i}`, () => {
      const b = V.VfioIrqInfo.encode({ argsz: 16, index: i });
      k.ioctl(dev, V.VFIO_DEVICE_GET_IRQ_INFO.number, b);
      const r = V.VfioIrqInfo.decode(b);
      return `${r.flags} ${r.count}`;
    });
  }
  tryit('reset', () => k.ioctl(dev, V.VFIO_DEVICE_RESET.number, null));
  tryit('hot-reset-info', () => k.ioctl(dev, V.VFIO_DEVICE_GET_PCI_HOT_RESET_INFO.number, V.VfioPciHotResetInfo.encode({ argsz: 12 })));
  tryit('hot-reset', () => k.ioctl(dev, V.VFIO_DEVICE_PCI_HOT_RESET.number, V.VfioPciHotReset.encode({ argsz: 12 })));
  const CFG = 7n << 40n;
  const cfg = Buffer.alloc(256);
  k.pread(dev, cfg, CFG);
  out('config', cfg.toString('hex'));
  const cr = (off: number, n: number): number => {
    const b = Buffer.alloc(n);
    k.pread(dev, b, CFG + BigInt(off));
    return b.readUIntLE(0, n);
  };
  const cw = (off: number, n: number, v: number) => {
    const b = Buffer.alloc(n);
    b.writeUIntLE(v, 0, n);
    return k.pwrite(dev, b, CFG + BigInt(off));
  };
  cw(0x80, 4, 0xdeadbeef);
  out('config.0x80.readback', cr(0x80, 4));
  cw(0x4c, 2, 0x1234);
  out('config.0x4c.readback', cr(0x4c, 2));
  cw(0x10, 4, 0xffffffff);
  out('config.bar0.sized', cr(0x10, 4));
  cw(0x14, 4, 0xffffffff);
  out('config.bar1.sized', cr(0x14, 4));
  cw(0x30, 4, 0xffffffff);
  out('config.rom.sized', cr(0x30, 4));
  cw(0x04, 2, 0xffff);
  out('config.command.after-ffff', cr(0x04, 2));
  cw(0x06, 2, 0xffff);
  out('config.status.after-ffff', cr(0x06, 2));
  cw(0x3c, 1, 0x42);
  out('config.intline', cr(0x3c, 1));
  cw(0x3d, 1, 3);
  out('config.intpin', cr(0x3d, 1));
  cw(0x0c, 1, 0x10);
  out('config.cacheline', cr(0x0c, 1));
  cw(0x0d, 1, 0x20);
  out('config.latency', cr(0x0d, 1));
  cw(0x42, 2, 0x0001);
  out('config.msiflags.after-1', cr(0x42, 2));
  cw(0x42, 2, 0x0080);
  out('config.msiflags.after-80', cr(0x42, 2));
  tryit('config.pread.beyond', () => k.pread(dev, Buffer.alloc(4), CFG + 254n));
  cw(0x04, 2, 0x0002);
  const br = (off: number, n: number) => {
    const b = Buffer.alloc(n);
    k.pread(dev, b, BigInt(off));
    return b.toString('hex');
  };
  for (const [off, n] of [
    [0, 1],
    [0, 2],
    [2, 2],
    [0, 4],
    [2, 4],
    [0, 8],
    [4, 4],
    [0x80, 4],
    [0x84, 4],
    [0x80, 8],
    [0x10, 4],
    [0x100, 8],
  ] as const) {
    tryit(`bar0.pread.${off}.${n}`, () => br(off, n));
  }
  cw(0x04, 2, 0);
  tryit('bar0.pread.memory-off', () => br(0, 4));
  cw(0x04, 2, 0x0002);
  const bar = k.mmap(dev, 1n << 20n, C.PROT_READ | C.PROT_WRITE, C.MAP_SHARED, 0n);
  for (const [off, w] of [
    [0, 8],
    [0, 16],
    [0, 32],
    [0, 64],
    [0x80, 32],
    [0x84, 32],
  ] as const)
    tryit(`mmio.${off}.${w}`, () => String(k.mmioRead(bar, off, w)));
  k.mmioWrite(bar, 4, 16, 0x1234);
  out('mmio.liveness.after-16bit-write', k.mmioRead(bar, 4, 32));
  k.mmioWrite(bar, 0x80, 32, 0xabcd);
  out('mmio.dmasrc.after-32bit', String(k.mmioRead(bar, 0x80, 64)));
  k.mmioWrite(bar, 0x80, 64, 0x123456789n);
  k.mmioWrite(bar, 0x80, 32, 0xabcd);
  out('mmio.dmasrc.after-64-then-32', String(k.mmioRead(bar, 0x80, 64)));
  k.mmioWrite(bar, 0x98, 32, 4);
  out('mmio.cmd.after-no-start', k.mmioRead(bar, 0x98, 32));
  // MSI without and with bus mastering.
  const efd = k.eventfd(0, C.EFD_NONBLOCK);
  const set = Buffer.alloc(24);
  V.VfioIrqSet.encode({ argsz: 24, flags: V.VFIO_IRQ_SET_DATA_EVENTFD | V.VFIO_IRQ_SET_ACTION_TRIGGER, index: 1, start: 0, count: 1 }, set);
  set.writeInt32LE(efd, 20);
  k.ioctl(dev, V.VFIO_DEVICE_SET_IRQS.number, set);
  out('msi.virtual-flags', cr(0x42, 2));
  k.mmioWrite(bar, 0x60, 32, 1);
  await new Promise((r) => setTimeout(r, 200));
  tryit('msi.no-master', () => String(k.eventfdRead(efd)));
  cw(0x04, 2, 0x0006);
  k.mmioWrite(bar, 0x64, 32, 1);
  k.mmioWrite(bar, 0x60, 32, 1);
  await new Promise((r) => setTimeout(r, 200));
  tryit('msi.master', () => String(k.eventfdRead(efd)));
  k.mmioWrite(bar, 0x60, 32, 1);
  await new Promise((r) => setTimeout(r, 200));
  tryit('msi.master.again-while-pending', () => String(k.eventfdRead(efd)));
  k.mmioWrite(bar, 0x64, 32, 0xffffffff);
  const none = Buffer.alloc(20);
  V.VfioIrqSet.encode({ argsz: 20, flags: V.VFIO_IRQ_SET_DATA_NONE | V.VFIO_IRQ_SET_ACTION_TRIGGER, index: 1, start: 0, count: 0 }, none);
  k.ioctl(dev, V.VFIO_DEVICE_SET_IRQS.number, none);
  // INTx
  V.VfioIrqSet.encode({ argsz: 24, flags: V.VFIO_IRQ_SET_DATA_EVENTFD | V.VFIO_IRQ_SET_ACTION_TRIGGER, index: 0, start: 0, count: 1 }, set);
  k.ioctl(dev, V.VFIO_DEVICE_SET_IRQS.number, set);
  k.mmioWrite(bar, 0x60, 32, 1);
  await new Promise((r) => setTimeout(r, 200));
  tryit('intx.first', () => String(k.eventfdRead(efd)));
  k.mmioWrite(bar, 0x64, 32, 1);
  k.mmioWrite(bar, 0x60, 32, 1);
  await new Promise((r) => setTimeout(r, 200));
  tryit('intx.masked', () => String(k.eventfdRead(efd)));
  out('intx.status-bit', (cr(0x06, 2) >> 3) & 1);
  out('intx.command-virtual', cr(0x04, 2));
  const unmask = Buffer.alloc(20);
  V.VfioIrqSet.encode({ argsz: 20, flags: V.VFIO_IRQ_SET_DATA_NONE | V.VFIO_IRQ_SET_ACTION_UNMASK, index: 0, start: 0, count: 1 }, unmask);
  k.ioctl(dev, V.VFIO_DEVICE_SET_IRQS.number, unmask);
  await new Promise((r) => setTimeout(r, 200));
  tryit('intx.after-unmask', () => String(k.eventfdRead(efd)));
  k.mmioWrite(bar, 0x64, 32, 1);
  // SET_IRQS errors
  const err = (name: string, flags: number, index: number, start: number, count: number) => {
    const b = Buffer.alloc(28);
    V.VfioIrqSet.encode({ argsz: 28, flags, index, start, count }, b);
    b.writeInt32LE(efd, 20);
    b.writeInt32LE(efd, 24);
    tryit(`setirqs.${name}`, () => k.ioctl(dev, V.VFIO_DEVICE_SET_IRQS.number, b));
  };
  err('two-data', 3 | 32, 1, 0, 1);
  err('two-actions', 1 | 32 | 8, 1, 0, 1);
  err('msi-mask', 1 | 8, 1, 0, 1);
  err('msix', 4 | 32, 2, 0, 1);
  err('msix-count0', 1 | 32, 2, 0, 0);
  err('intx-count2', 4 | 32, 0, 0, 2);
  err('index5', 4 | 32, 5, 0, 1);
  err('err-none-noefd', 1 | 32, 3, 0, 1);
  err('req-none-count0', 1 | 32, 4, 0, 0);
  err('intx-mask-eventfd', 4 | 8, 0, 0, 1);
  err('msi-while-intx', 4 | 32, 1, 0, 1);
  // factorial (whether it is still computing right after the write depends on the host's timing)
  k.mmioWrite(bar, 0x08, 32, 10);
  while (Number(k.mmioRead(bar, 0x20, 32)) & 1) await new Promise((r) => setTimeout(r, 1));
  out('fact.10', k.mmioRead(bar, 0x08, 32));
  // features
  const feat = (name: string, flags: number, extra: number[] = []) => {
    const b = Buffer.alloc(8 + 4 * extra.length);
    b.writeUInt32LE(b.length, 0);
    b.writeUInt32LE(flags, 4);
    extra.forEach((v, i) => b.writeInt32LE(v, 8 + 4 * i));
    tryit(`feature.${name}`, () => k.ioctl(dev, V.VFIO_DEVICE_FEATURE.number, b));
  };
  feat('probe-migration', (1 << 18) | 1);
  feat('probe-lowpower', (1 << 18) | (1 << 17) | 3);
  feat('lowpower-get', (1 << 16) | 3);
  feat('probe-busmaster', (1 << 18) | 10);
  feat('probe-dmabuf', (1 << 18) | 11);
  feat('probe-vf-token', (1 << 18) | 0);
  tryit('ioeventfd.8', () =>
    k.ioctl(dev, V.VFIO_DEVICE_IOEVENTFD.number, V.VfioDeviceIoeventfd.encode({ argsz: 32, flags: 8, offset: 0x80n, data: 1n, fd: efd })),
  );
  tryit('ioeventfd.4', () =>
    k.ioctl(dev, V.VFIO_DEVICE_IOEVENTFD.number, V.VfioDeviceIoeventfd.encode({ argsz: 32, flags: 4, offset: 4n, data: 1n, fd: efd })),
  );
  k.munmap(bar);
  k.close(dev);
  k.close(iommufd);
  out('after-close.command', Number(k.readFile(`${sys}/config`).readUInt16LE(4)));
  out('done', true);
  return lines;
}
