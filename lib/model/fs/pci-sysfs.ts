/**
 * /sys/bus/pci as drivers/pci/pci-sysfs.c and drivers/base/bus.c publish it: one directory per
 * function under /sys/devices/pci<domain>:<bus>/ (linked from /sys/bus/pci/devices), its ID and
 * resource attributes, config space, driver_override and the `driver` link; one directory per
 * driver under /sys/bus/pci/drivers with bind, unbind, new_id, remove_id and links to its
 * devices; and /sys/bus/pci/drivers_probe. Writes go to the PCI bus model, which answers with
 * the kernel's errnos.
 */
import { fail } from '../errno';
import type { Capabilities } from '../../sys/kernel';
import type { Vfs } from '../vfs';
import type { PciBus, PciDriver } from '../pci/bus';
import type { PciSlot } from '../pci/host';
import { hex, link, roAttr, rwAttr, woAttr } from './nodes';
import { resetMethods } from '../pci/reset-methods';
import { sriovCapabilityOffset, type IovResource } from '../pci/iov';
import { PCI_STD_HEADER_SIZEOF } from '../../uapi/pci';

/** The resource flags sysfs `resource` prints (include/linux/ioport.h). */
const IORESOURCE = {
  IO: 0x100,
  MEM: 0x200,
  PREFETCH: 0x2000,
  MEM_64: 0x0010_0000,
  SIZEALIGN: 0x0004_0000,
} as const;

/** BARs and the ROM; with CONFIG_PCI_IOV the six IOV resources follow (resource_show stops at PCI_BRIDGE_RESOURCES). */
const RESOURCE_LINES = 7;
const IOV_RESOURCE_LINES = 6;

export interface PciSysfsOptions {
  readonly vfs: Vfs;
  /** The config dword a read of `config` sees (aer_inject puts simulated registers in front); default the function's own. */
  readonly configDword?: (slot: PciSlot, offset: number) => number;
  readonly bus: PciBus;
  readonly pageSize: number;
  readonly capabilities: () => Capabilities;
  /** pci_dev->enable_cnt > 0 (a driver enabled the function). */
  readonly isEnabled: (slot: PciSlot) => boolean;
  /** CPUs of the machine, all local to the one PCI root (local_cpus, local_cpulist). */
  readonly cpus: number;
  /** Every function of the machine (reset methods depend on who shares a bus). */
  readonly functions: () => readonly PciSlot[];
  /** CONFIG_PCI_IOV: `resource` has the IOV resource lines (PCI_IOV_RESOURCES) after the ROM. */
  readonly pciIov?: boolean;
  /** A PF's VF BARs (its IOV resources), for those lines. */
  readonly iovResources?: (slot: PciSlot) => readonly IovResource[] | undefined;
}

/** uevent actions the kernel accepts on a write to a uevent file (kobject_action_type). */
const UEVENT_ACTIONS = ['add', 'remove', 'change', 'move', 'online', 'offline', 'bind', 'unbind'];

/** The function's directory: under its root bus, below every bridge on the way to it. */
export function devicePath(slot: PciSlot): string {
  if (slot.upstream) return `${devicePath(slot.upstream)}/${slot.name}`;
  const h = (n: number, w: number) => n.toString(16).padStart(w, '0');
  return `/sys/devices/pci${h(slot.address.domain, 4)}:${h(slot.address.bus, 2)}/${slot.name}`;
}

/** The relative path from a directory under /sys back up to /sys ('../../..' for a root-bus function). */
export function upToSys(dir: string): string {
  const depth = dir.split('/').length - 2;
  return Array.from({ length: depth }, () => '..').join('/');
}

export class PciSysfs {
  constructor(private readonly o: PciSysfsOptions) {
    const { vfs, bus } = o;
    vfs.mkdir('/sys/bus/pci/devices');
    vfs.mkdir('/sys/bus/pci/drivers');
    vfs.add(
      '/sys/bus/pci/drivers_probe',
      woAttr((data) => bus.driversProbe(data.toString('latin1'))),
    );
    bus.onBindingChange((slot, driver) => this.bindingChanged(slot, driver));
  }

  addDriver(driver: PciDriver): void {
    const { vfs, bus } = this.o;
    const dir = `/sys/bus/pci/drivers/${driver.name}`;
    vfs.mkdir(dir);
    vfs.add(
      `${dir}/bind`,
      woAttr((d) => bus.bind(driver, d.toString('latin1'))),
    );
    vfs.add(
      `${dir}/unbind`,
      woAttr((d) => bus.unbind(driver, d.toString('latin1'))),
    );
    vfs.add(
      `${dir}/new_id`,
      woAttr((d) => bus.newId(driver, d.toString('latin1'))),
    );
    vfs.add(
      `${dir}/remove_id`,
      woAttr((d) => bus.removeId(driver, d.toString('latin1'))),
    );
    vfs.add(
      `${dir}/uevent`,
      woAttr(() => undefined),
    );
  }

  addDevice(slot: PciSlot): void {
    const { vfs, bus } = this.o;
    const dev = slot.device;
    const dir = devicePath(slot);
    vfs.mkdir(dir);
    vfs.add(`/sys/bus/pci/devices/${slot.name}`, link(`../../..${dir.slice('/sys'.length)}`));
    vfs.add(
      `${dir}/vendor`,
      roAttr(() => hex(dev.vendorId, 4)),
    );
    vfs.add(
      `${dir}/device`,
      roAttr(() => hex(dev.deviceId, 4)),
    );
    vfs.add(
      `${dir}/subsystem_vendor`,
      roAttr(() => hex(dev.subsystemVendorId, 4)),
    );
    vfs.add(
      `${dir}/subsystem_device`,
      roAttr(() => hex(dev.subsystemId, 4)),
    );
    vfs.add(
      `${dir}/class`,
      roAttr(() => hex(dev.classCode, 6)),
    );
    vfs.add(
      `${dir}/revision`,
      roAttr(() => hex(dev.revision, 2)),
    );
    vfs.add(
      `${dir}/irq`,
      roAttr(() => `${slot.irqLine.irq}\n`),
    );
    vfs.add(
      `${dir}/enable`,
      roAttr(() => (this.o.isEnabled(slot) ? '1\n' : '0\n')),
    );
    vfs.add(
      `${dir}/modalias`,
      roAttr(() => modalias(slot)),
    );
    vfs.add(
      `${dir}/resource`,
      roAttr(() => resourceText(slot, this.o.pciIov === true, this.o.iovResources?.(slot) ?? [])),
    );
    // Only visible when the function has a reset method (reset_method_attr_is_visible).
    const methods = resetMethods(slot, this.o.functions());
    if (methods.length)
      vfs.add(
        `${dir}/reset_method`,
        roAttr(() => `${methods.join(' ')}\n`),
      );
    vfs.add(
      `${dir}/driver_override`,
      rwAttr(
        () => `${bus.driverOverride(slot) ?? '(null)'}\n`,
        (data) => bus.setDriverOverride(slot, data, this.o.pageSize),
      ),
    );
    vfs.add(
      `${dir}/config`,
      rwAttr(
        () => this.readConfig(slot),
        (data) => this.writeConfig(slot, data),
      ),
    );
    vfs.add(`${dir}/subsystem`, link(`${upToSys(dir)}/bus/pci`));
    // Neither vfio-pci nor the stub sets a DMA mask, so the PCI core's 32-bit default stays.
    vfs.add(
      `${dir}/dma_mask_bits`,
      roAttr(() => '32\n'),
    );
    vfs.add(
      `${dir}/consistent_dma_mask_bits`,
      roAttr(() => '32\n'),
    );
    // A function on the root bus with no ARI capability upstream.
    vfs.add(
      `${dir}/ari_enabled`,
      roAttr(() => '0\n'),
    );
    let brokenParity = false;
    vfs.add(
      `${dir}/broken_parity_status`,
      rwAttr(
        () => (brokenParity ? '1\n' : '0\n'),
        (data) => {
          brokenParity = parseUnsigned(data) !== 0;
        },
      ),
    );
    let msiAllowed = true;
    vfs.add(
      `${dir}/msi_bus`,
      rwAttr(
        () => (msiAllowed ? '1\n' : '0\n'),
        (data) => {
          if (!this.o.capabilities().sysAdmin) fail('EPERM');
          msiAllowed = parseUnsigned(data) !== 0;
        },
      ),
    );
    // No PM capability on the modelled devices: the core never moves them out of D0.
    vfs.add(
      `${dir}/power_state`,
      roAttr(() => 'D0\n'),
    );
    vfs.add(
      `${dir}/local_cpus`,
      roAttr(() => `${((1n << BigInt(this.o.cpus)) - 1n).toString(16)}\n`),
    );
    vfs.add(
      `${dir}/local_cpulist`,
      roAttr(() => (this.o.cpus === 1 ? '0\n' : `0-${this.o.cpus - 1}\n`)),
    );
    vfs.add(
      `${dir}/uevent`,
      rwAttr(
        () => this.uevent(slot),
        (data) => {
          const action = data.toString('latin1').trim().split(/\s+/)[0] ?? '';
          if (!UEVENT_ACTIONS.includes(action)) fail('EINVAL', `'${action}' is not a uevent action`);
        },
      ),
    );
  }

  /** The function's directory and its /sys/bus/pci/devices link go (pci_stop_and_remove_bus_device). */
  removeDevice(slot: PciSlot): void {
    this.o.vfs.remove(devicePath(slot));
    this.o.vfs.remove(`/sys/bus/pci/devices/${slot.name}`);
  }

  /** The device's uevent variables (pci_uevent, plus DRIVER= while bound). */
  private uevent(slot: PciSlot): string {
    const d = slot.device;
    const h = (n: number, w: number) => n.toString(16).toUpperCase().padStart(w, '0');
    const driver = this.o.bus.driverOf(slot);
    return (
      `${driver ? `DRIVER=${driver.name}\n` : ''}PCI_CLASS=${h(d.classCode, 4)}\n` +
      `PCI_ID=${h(d.vendorId, 4)}:${h(d.deviceId, 4)}\nPCI_SUBSYS_ID=${h(d.subsystemVendorId, 4)}:${h(d.subsystemId, 4)}\n` +
      `PCI_SLOT_NAME=${slot.name}\nMODALIAS=${modalias(slot)}`
    );
  }

  /** config: an unprivileged reader sees only the standard header (pci_read_config). */
  private readConfig(slot: PciSlot): Buffer {
    const c = slot.device.config;
    const size = this.o.capabilities().sysAdmin ? c.size : PCI_STD_HEADER_SIZEOF;
    const out = Buffer.alloc(size);
    const dword = this.o.configDword ?? ((s: PciSlot, offset: number) => s.device.config.read(offset, 4));
    for (let i = 0; i < size; i += 4) out.writeUInt32LE(dword(slot, i) >>> 0, i);
    return out;
  }

  /** config writes: root only; byte by byte at offset 0 (a plain write() starts at offset 0). */
  private writeConfig(slot: PciSlot, data: Buffer): void {
    if (!this.o.capabilities().sysAdmin) fail('EPERM');
    const c = slot.device.config;
    for (let i = 0; i < Math.min(data.length, c.size); i++) c.write(i, 1, data[i]!);
  }

  private bindingChanged(slot: PciSlot, driver: PciDriver | undefined): void {
    const { vfs } = this.o;
    const dir = devicePath(slot);
    const stale = vfs.lookup(`${dir}/driver`, false);
    if (stale?.type === 'link') {
      const old = stale.target().split('/').pop();
      vfs.remove(`/sys/bus/pci/drivers/${old}/${slot.name}`);
      vfs.remove(`${dir}/driver`);
    }
    if (driver) {
      vfs.add(`${dir}/driver`, link(`${upToSys(dir)}/bus/pci/drivers/${driver.name}`));
      vfs.add(`/sys/bus/pci/drivers/${driver.name}/${slot.name}`, link(`../../../..${dir.slice('/sys'.length)}`));
    }
  }
}

function modalias(slot: PciSlot): string {
  const d = slot.device;
  const h = (n: number, w: number) => n.toString(16).toUpperCase().padStart(w, '0');
  return (
    `pci:v${h(d.vendorId, 8)}d${h(d.deviceId, 8)}sv${h(d.subsystemVendorId, 8)}sd${h(d.subsystemId, 8)}` +
    `bc${h(d.classCode >> 16, 2)}sc${h((d.classCode >> 8) & 0xff, 2)}i${h(d.classCode & 0xff, 2)}\n`
  );
}

function resourceText(slot: PciSlot, pciIov: boolean, iov: readonly IovResource[]): string {
  const d = slot.device;
  const h = (n: bigint) => `0x${n.toString(16).padStart(16, '0')}`;
  let out = '';
  for (let i = 0; i < RESOURCE_LINES; i++) {
    const bar = i < 6 ? d.bars[i] : undefined;
    const start = bar ? d.barAddress(i) : 0n;
    if (!bar || start === 0n) {
      out += `${h(0n)} ${h(0n)} ${h(0n)}\n`;
      continue;
    }
    let flags = IORESOURCE.SIZEALIGN;
    if (bar.space === 'io') flags |= IORESOURCE.IO | 0x1;
    else flags |= IORESOURCE.MEM | (bar.prefetchable ? IORESOURCE.PREFETCH | 0x8 : 0) | (bar.is64bit ? IORESOURCE.MEM_64 | 0x4 : 0);
    out += `${h(start)} ${h(start + bar.size - 1n)} ${h(BigInt(flags))}\n`;
  }
  for (let i = 0; pciIov && i < IOV_RESOURCE_LINES; i++) {
    const r = iov.find((x) => x.index === i);
    if (!r) {
      out += `${h(0n)} ${h(0n)} ${h(0n)}\n`;
      continue;
    }
    const total = r.size * BigInt(Math.max(1, slot.device.config.getRaw(sriovTotalVfsOffset(slot), 2)));
    const flags =
      IORESOURCE.SIZEALIGN | IORESOURCE.MEM | (r.prefetchable ? IORESOURCE.PREFETCH | 0x8 : 0) | (r.is64bit ? IORESOURCE.MEM_64 | 0x4 : 0);
    out += `${h(r.start)} ${h(r.start + total - 1n)} ${h(BigInt(flags))}\n`;
  }
  return out;
}

/** The TotalVFs register of a PF's SR-IOV capability. */
function sriovTotalVfsOffset(slot: PciSlot): number {
  return sriovCapabilityOffset(slot.device) + 0x0e;
}

/** kstrtoul(buf, 0) of a sysfs write: decimal, 0x-prefixed hex or 0-prefixed octal, one trailing newline allowed. */
function parseUnsigned(data: Buffer): number {
  const text = data.toString('latin1').replace(/\n$/, '');
  const m = /^(?:0x([0-9a-f]+)|0([0-7]*)|([1-9][0-9]*))$/i.exec(text);
  if (!m) fail('EINVAL', `'${text}' is not a number`);
  if (m[1] !== undefined) return parseInt(m[1], 16);
  if (m[2] !== undefined) return m[2] === '' ? 0 : parseInt(m[2], 8);
  return parseInt(m[3]!, 10);
}
