/**
 * A device-agnostic list of observations of one function behind vfio-pci, made through the Kernel
 * interface only, for the devices edu cannot show: MSI-X (enable, grow, per-vector disable,
 * userspace triggers, exclusivity with INTx/MSI, ERR/REQ beside it), region capability chains,
 * the whole virtualised config space (4 KiB on PCIe), reset and hot-reset information, and the
 * first registers of BAR0. Run in the lab on the nvme and multi machines
 * (record-pci-observations.ts), the output is kept in fixtures/; a model profile that describes the
 * same machine must produce the very same lines.
 */
import type { Kernel } from '../../../lib/sys/kernel';
import * as V from '../../../lib/uapi/vfio';
import * as C from '../../../lib/sys/constants';

export interface ObservedFunction {
  readonly bdf: string;
  /** Its cdev under /dev/vfio/devices, e.g. 'vfio0' or 'noiommu-vfio0'. */
  readonly cdev: string;
}

const CONFIG_REGION = BigInt(V.VFIO_PCI_CONFIG_REGION_INDEX) << 40n;

export function observePciFunction(k: Kernel, fn: ObservedFunction): string[] {
  const lines: string[] = [];
  const out = (key: string, v: unknown) => lines.push(`${key} = ${typeof v === 'bigint' ? '0x' + v.toString(16) : JSON.stringify(v)}`);
  const tryit = (key: string, f: () => unknown) => {
    try {
      out(key, f());
    } catch (e) {
      out(key, `ERR ${(e as { code?: string }).code ?? (e as Error).message}`);
    }
  };
  const sys = `/sys/bus/pci/devices/${fn.bdf}`;
  for (const a of ['vendor', 'device', 'class', 'subsystem_vendor', 'subsystem_device', 'revision', 'resource', 'reset_method']) {
    tryit(`sysfs.${a}`, () => k.readFile(`${sys}/${a}`).toString());
  }
  tryit('sysfs.config.len', () => k.readFile(`${sys}/config`).length);
  tryit('sysfs.iommu_group', () => k.readlink(`${sys}/iommu_group`));
  tryit('sysfs.vfio-dev', () => k.readdir(`${sys}/vfio-dev`));

  const dev = k.open(`/dev/vfio/devices/${fn.cdev}`, C.O_RDWR);
  const iommufd = k.open('/dev/iommu', C.O_RDWR);
  const efds: number[] = [];
  try {
    const bind = V.VfioDeviceBindIommufd.encode({ argsz: 24, iommufd });
    k.ioctl(dev, V.VFIO_DEVICE_BIND_IOMMUFD.number, bind);
    out('bind.devid', V.VfioDeviceBindIommufd.get(bind, 'out_devid'));
    const info = V.VfioDeviceInfo.encode({ argsz: 24 });
    k.ioctl(dev, V.VFIO_DEVICE_GET_INFO.number, info);
    const d = V.VfioDeviceInfo.decode(info);
    out('info', `${d.flags} ${d.num_regions} ${d.num_irqs}`);

    for (let i = 0; i < V.VFIO_PCI_NUM_REGIONS + 1; i++) {
      tryit(`region.${i}`, () => {
        const b = V.VfioRegionInfo.encode({ argsz: 32, index: i });
        k.ioctl(dev, V.VFIO_DEVICE_GET_REGION_INFO.number, b);
        const r = V.VfioRegionInfo.decode(b);
        let chain = '';
        if (r.argsz > 32) {
          // The argsz dance: the first answer says how much room the capability chain needs.
          const full = Buffer.alloc(r.argsz);
          V.VfioRegionInfo.encode({ argsz: r.argsz, index: i }, full);
          k.ioctl(dev, V.VFIO_DEVICE_GET_REGION_INFO.number, full);
          chain = ' caps ' + full.subarray(32).toString('hex');
        }
        return `${r.flags} ${r.size} ${r.offset} ${r.cap_offset} ${r.argsz}${chain}`;
      });
    }
    for (let i = 0; i < V.VFIO_PCI_NUM_IRQS + 1; i++) {
      tryit(`irq.${i}`, () => {
        const b = V.VfioIrqInfo.encode({ argsz: 16, index: i });
        k.ioctl(dev, V.VFIO_DEVICE_GET_IRQ_INFO.number, b);
        const r = V.VfioIrqInfo.decode(b);
        return `${r.flags} ${r.count}`;
      });
    }
    const configSize = Number(
      V.VfioRegionInfo.decode(
        (() => {
          const b = V.VfioRegionInfo.encode({ argsz: 32, index: V.VFIO_PCI_CONFIG_REGION_INDEX });
          k.ioctl(dev, V.VFIO_DEVICE_GET_REGION_INFO.number, b);
          return b;
        })(),
      ).size,
    );
    const cr = (off: number, n: number): number => {
      const b = Buffer.alloc(n);
      k.pread(dev, b, CONFIG_REGION + BigInt(off));
      return b.readUIntLE(0, n);
    };
    const cw = (off: number, n: number, v: number) => {
      const b = Buffer.alloc(n);
      b.writeUIntLE(v, 0, n);
      k.pwrite(dev, b, CONFIG_REGION + BigInt(off));
    };
    const whole = Buffer.alloc(configSize);
    k.pread(dev, whole, CONFIG_REGION);
    // Zero rows say nothing and would make the fixture four times longer.
    for (let off = 0; off < configSize; off += 32) {
      const row = whole.subarray(off, off + 32);
      if (row.some((b) => b !== 0)) out(`config.${off.toString(16).padStart(3, '0')}`, row.toString('hex'));
    }
    const caps: Record<number, number> = {};
    for (let p = whole[0x34]! & 0xfc, guard = 0; p !== 0 && guard < 48; p = whole[p + 1]! & 0xfc, guard++) caps[whole[p]!] = p;
    out('caps', caps);
    const msix = caps[0x11];

    // BAR sizing through the config region: what vfio-pci's virtual BARs answer.
    for (let bar = 0; bar < 6; bar++) {
      const reg = 0x10 + 4 * bar;
      const saved = cr(reg, 4);
      cw(reg, 4, 0xffffffff);
      out(`config.bar${bar}.sized`, cr(reg, 4));
      cw(reg, 4, saved);
    }
    cw(0x04, 2, 0x0006);
    out('config.command', cr(0x04, 2));

    const bar0 = V.VfioRegionInfo.decode(
      (() => {
        const b = V.VfioRegionInfo.encode({ argsz: 32, index: 0 });
        k.ioctl(dev, V.VFIO_DEVICE_GET_REGION_INFO.number, b);
        return b;
      })(),
    );
    if (bar0.size > 0n && (bar0.flags & V.VFIO_REGION_INFO_FLAG_MMAP) !== 0) {
      const map = k.mmap(dev, bar0.size, C.PROT_READ | C.PROT_WRITE, C.MAP_SHARED, 0n);
      for (const [off, w] of [
        [0, 32],
        [4, 32],
        [8, 32],
        [0x14, 32],
        [0x1c, 32],
      ] as const)
        tryit(`mmio.${off}.${w}`, () => String(k.mmioRead(map, off, w)));
      k.munmap(map);
    }

    const setIrqs = (name: string, flags: number, index: number, start: number, fds: readonly number[] | number, data?: Buffer) => {
      const count = typeof fds === 'number' ? fds : fds.length;
      const payload = data ?? Buffer.alloc(typeof fds === 'number' ? 0 : 4 * fds.length);
      if (typeof fds !== 'number') fds.forEach((fd, i) => payload.writeInt32LE(fd, 4 * i));
      const b = Buffer.alloc(20 + payload.length);
      V.VfioIrqSet.encode({ argsz: b.length, flags, index, start, count }, b);
      payload.copy(b, 20);
      tryit(`setirqs.${name}`, () => k.ioctl(dev, V.VFIO_DEVICE_SET_IRQS.number, b));
    };
    const efd = () => {
      const fd = k.eventfd(0, C.EFD_NONBLOCK);
      efds.push(fd);
      return fd;
    };
    const read = (name: string, fd: number) => tryit(`eventfd.${name}`, () => String(k.eventfdRead(fd)));
    const EVENTFD = V.VFIO_IRQ_SET_DATA_EVENTFD | V.VFIO_IRQ_SET_ACTION_TRIGGER;
    const NONE = V.VFIO_IRQ_SET_DATA_NONE | V.VFIO_IRQ_SET_ACTION_TRIGGER;
    const BOOL = V.VFIO_IRQ_SET_DATA_BOOL | V.VFIO_IRQ_SET_ACTION_TRIGGER;
    const msixCtrl = () => (msix === undefined ? 'none' : cr(msix + 2, 2));
    const MSIX = V.VFIO_PCI_MSIX_IRQ_INDEX;

    const v0 = efd();
    const v1 = efd();
    const v2 = efd();
    setIrqs('msix.enable-1', EVENTFD, MSIX, 0, [v0]);
    out('msix.ctrl.after-enable-1', msixCtrl());
    setIrqs('msix.grow-1-2', EVENTFD, MSIX, 1, [v1, v2]);
    setIrqs('msix.trigger-none-1', NONE, MSIX, 1, 1);
    read('v1.after-trigger', v1);
    read('v0.untouched', v0);
    setIrqs('msix.trigger-bool-0-2', BOOL, MSIX, 0, 3, Buffer.from([1, 0, 1]));
    read('v0.after-bool', v0);
    read('v1.after-bool-0', v1);
    read('v2.after-bool', v2);
    setIrqs('msix.disable-vector-0', EVENTFD, MSIX, 0, [-1]);
    setIrqs('msix.trigger-disabled-0', NONE, MSIX, 0, 1);
    read('v0.after-disabled-trigger', v0);
    setIrqs('msix.swap-vector-1', EVENTFD, MSIX, 1, [v0]);
    setIrqs('msix.trigger-swapped-1', NONE, MSIX, 1, 1);
    read('v0.after-swap', v0);
    read('v1.after-swap', v1);
    setIrqs('msi.while-msix', EVENTFD, V.VFIO_PCI_MSI_IRQ_INDEX, 0, [v2]);
    setIrqs('intx.while-msix', EVENTFD, V.VFIO_PCI_INTX_IRQ_INDEX, 0, [v2]);
    setIrqs('err.beside-msix', EVENTFD, V.VFIO_PCI_ERR_IRQ_INDEX, 0, [efd()]);
    setIrqs('req.beside-msix', EVENTFD, V.VFIO_PCI_REQ_IRQ_INDEX, 0, [efd()]);
    setIrqs('msix.mask', V.VFIO_IRQ_SET_DATA_NONE | V.VFIO_IRQ_SET_ACTION_MASK, MSIX, 0, 1);
    setIrqs('msix.past-table', EVENTFD, MSIX, 64, [v1, v2]);
    setIrqs('msix.disable', NONE, MSIX, 0, 0);
    out('msix.ctrl.after-disable', msixCtrl());
    setIrqs('msix.trigger-after-disable', NONE, MSIX, 0, 1);
    setIrqs('err.disable', NONE, V.VFIO_PCI_ERR_IRQ_INDEX, 0, 0);
    setIrqs('req.disable', NONE, V.VFIO_PCI_REQ_IRQ_INDEX, 0, 0);
    setIrqs('msix.start-past-table', EVENTFD, MSIX, 65, [v1]);
    setIrqs('msix.count-0', EVENTFD, MSIX, 0, []);
    setIrqs('msi.enable-1', EVENTFD, V.VFIO_PCI_MSI_IRQ_INDEX, 0, [v1]);
    setIrqs('msi.disable', NONE, V.VFIO_PCI_MSI_IRQ_INDEX, 0, 0);
    setIrqs('intx.enable', EVENTFD, V.VFIO_PCI_INTX_IRQ_INDEX, 0, [v1]);
    setIrqs('msix.while-intx', EVENTFD, MSIX, 0, [v2]);
    setIrqs('intx.unmask-eventfd', V.VFIO_IRQ_SET_DATA_EVENTFD | V.VFIO_IRQ_SET_ACTION_UNMASK, V.VFIO_PCI_INTX_IRQ_INDEX, 0, [v2]);
    setIrqs('intx.unmask-eventfd-off', V.VFIO_IRQ_SET_DATA_EVENTFD | V.VFIO_IRQ_SET_ACTION_UNMASK, V.VFIO_PCI_INTX_IRQ_INDEX, 0, [-1]);
    setIrqs('intx.disable', NONE, V.VFIO_PCI_INTX_IRQ_INDEX, 0, 0);

    tryit('reset', () => k.ioctl(dev, V.VFIO_DEVICE_RESET.number, null));
    out('config.command.after-reset', cr(0x04, 2));
    tryit('hot-reset-info.small', () => {
      const b = V.VfioPciHotResetInfo.encode({ argsz: 12 });
      try {
        k.ioctl(dev, V.VFIO_DEVICE_GET_PCI_HOT_RESET_INFO.number, b);
      } catch (e) {
        return `${(e as { code?: string }).code} flags ${b.readUInt32LE(4)} count ${b.readUInt32LE(8)}`;
      }
      return `0 flags ${b.readUInt32LE(4)} count ${b.readUInt32LE(8)}`;
    });
    tryit('hot-reset-info', () => {
      // struct vfio_pci_dependent_device: a group id or devid (u32), segment (u16), bus, devfn.
      const b = Buffer.alloc(12 + 8 * 16);
      V.VfioPciHotResetInfo.encode({ argsz: b.length }, b);
      k.ioctl(dev, V.VFIO_DEVICE_GET_PCI_HOT_RESET_INFO.number, b);
      const count = b.readUInt32LE(8);
      const devices = [];
      for (let i = 0; i < count; i++) {
        const o = 12 + 8 * i;
        const devfn = b.readUInt8(o + 7);
        devices.push(`id ${b.readInt32LE(o)} ${b.readUInt16LE(o + 4)}:${b.readUInt8(o + 6)}:${devfn >> 3}.${devfn & 7}`);
      }
      return `flags ${b.readUInt32LE(4)} devices ${devices.join(' ')}`;
    });
    tryit('hot-reset.empty-fds', () => k.ioctl(dev, V.VFIO_DEVICE_PCI_HOT_RESET.number, V.VfioPciHotReset.encode({ argsz: 12 })));
    out('config.command.after-hot-reset', cr(0x04, 2));
  } finally {
    for (const fd of efds) k.close(fd);
    k.close(dev);
    k.close(iommufd);
  }
  out('done', true);
  return lines;
}
