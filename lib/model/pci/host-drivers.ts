/**
 * Host drivers that own devices the host itself uses: e1000e (drivers/net/ethernet/intel/e1000e)
 * for QEMU's 82574L NIC, nvme (drivers/nvme/host/pci.c) and ahci (drivers/ata/ahci.c). They do
 * not drive the device models; they publish what the real drivers leave in sysfs once probing
 * is done — a network interface, an NVMe controller with its namespaces' disks, SATA disks
 * behind ATA ports and SCSI hosts — and take it away again in .remove, which is what binding
 * such a function to vfio-pci does to the host (the interface disappears, the disk is deleted;
 * a mount of it stays in /proc/mounts, as a mounted file system outlives its gendisk).
 *
 * What is published follows the profile's `host` section (lib/model/profile.ts): the interface
 * name and whether it is up, the disks and their partitions. That state holds at boot only: a
 * probe after boot (a rebind) brings the interface back down, as nothing brings it up again.
 *
 * The nvme layout is that of a kernel without NVME_MULTIPATH (the disk's parent is the
 * controller's class device); with it the disk would hang off /sys/devices/virtual/nvme-subsystem.
 */
import type { HostDiskSpec, HostInterfaceSpec, HostUse } from '../profile';
import type { Vfs } from '../vfs';
import type { BlockSysfs, Disk } from '../fs/block-sysfs';
import { link, roAttr } from '../fs/nodes';
import type { NetInterface, NetSysfs } from '../fs/net-sysfs';
import { devicePath, upToSys } from '../fs/pci-sysfs';
import { PCI_ANY_ID, type PciDeviceId, type PciDriver } from './bus';
import type { PciSlot } from './host';

const DEFAULT_SECTORS = 131072n;
/** QEMU's ich9-ahci has six SATA ports. */
const ICH9_AHCI_PORTS = 6;

/** What the host drivers share: sysfs publishers, the profile's host section, kernel-wide numbering. */
export interface HostDriverContext {
  readonly vfs: Vfs;
  readonly net: NetSysfs;
  readonly block: BlockSysfs;
  readonly host: HostUse;
  /** False once boot is over: probes after it leave interfaces down. */
  readonly booting: () => boolean;
}

/** The lowest number not in `taken` (ida_alloc). */
function lowestFree(taken: ReadonlySet<number>): number {
  let n = 0;
  while (taken.has(n)) n++;
  return n;
}

function byVendorDevice(vendor: number, device: number): PciDeviceId {
  return { vendor, device, subvendor: PCI_ANY_ID, subdevice: PCI_ANY_ID, class: 0, classMask: 0 };
}

function byClass(cls: number): PciDeviceId {
  return { vendor: PCI_ANY_ID, device: PCI_ANY_ID, subvendor: PCI_ANY_ID, subdevice: PCI_ANY_ID, class: cls, classMask: 0xffffff };
}

/** e1000e: one Ethernet interface per function. */
export class E1000eDriver implements PciDriver {
  readonly name = 'e1000e';
  /** The 82574L QEMU's e1000e device is (the real table lists every supported part). */
  readonly idTable = [byVendorDevice(0x8086, 0x10d3)];
  private readonly interfaces = new Map<PciSlot, NetInterface>();
  private registered = 0;

  constructor(private readonly ctx: HostDriverContext) {}

  probe(slot: PciSlot): void {
    const spec: HostInterfaceSpec | undefined = this.ctx.host.interfaces?.find((i) => i.function === slot.name);
    // register_netdev names it eth%d (the lowest free); udev's rename is the profile's name.
    const taken = new Set([...this.interfaces.values()].map((i) => /^eth(\d+)$/.exec(i.name)).flatMap((m) => (m ? [Number(m[1])] : [])));
    const name = spec?.name ?? `eth${lowestFree(taken)}`;
    const index = this.registered++;
    const address = spec?.address ?? `52:54:00:12:34:${(0x56 + index).toString(16).padStart(2, '0')}`;
    const up = this.ctx.booting() && spec?.up === true;
    this.interfaces.set(slot, this.ctx.net.registerEthernet(devicePath(slot), { name, up, address }));
  }

  remove(slot: PciSlot): void {
    const nif = this.interfaces.get(slot);
    if (nif) this.ctx.net.unregister(nif);
    this.interfaces.delete(slot);
  }
}

function disksOf(host: HostUse, slot: PciSlot): readonly HostDiskSpec[] {
  return (host.disks ?? []).filter((d) => d.function === slot.name);
}

/** nvme: a controller class device nvme<C> and one disk per namespace below it. */
export class NvmeHostDriver implements PciDriver {
  readonly name = 'nvme';
  /** PCI_CLASS_STORAGE_EXPRESS, prog-if 02 (NVMe). */
  readonly idTable = [byClass(0x010802)];
  private readonly controllers = new Map<PciSlot, { instance: number; disks: Disk[] }>();

  constructor(private readonly ctx: HostDriverContext) {
    ctx.vfs.mkdir('/sys/class/nvme');
  }

  probe(slot: PciSlot): void {
    const { vfs, block } = this.ctx;
    const instance = lowestFree(new Set([...this.controllers.values()].map((c) => c.instance)));
    const ctrl = `nvme${instance}`;
    const dir = `${devicePath(slot)}/nvme/${ctrl}`;
    const attrs: Record<string, string> = { address: `${slot.name}\n`, state: 'live\n', transport: 'pcie\n' };
    for (const [name, value] of Object.entries(attrs))
      vfs.add(
        `${dir}/${name}`,
        roAttr(() => value),
      );
    vfs.add(`${dir}/device`, link('../../../' + slot.name));
    vfs.add(`${dir}/subsystem`, link(`${upToSys(dir)}/class/nvme`));
    vfs.add(`/sys/class/nvme/${ctrl}`, link(`../..${dir.slice('/sys'.length)}`));
    const specs = disksOf(this.ctx.host, slot);
    const namespaces = specs.length > 0 ? specs : [{ function: slot.name }];
    const disks = namespaces.map((d, i) =>
      block.addDisk(dir, {
        name: `${ctrl}n${i + 1}`,
        sectors: d.sectors ?? DEFAULT_SECTORS,
        partitions: d.partitions ?? 0,
        numbering: { kind: 'ext' },
        deviceLink: `../../${ctrl}`,
      }),
    );
    this.controllers.set(slot, { instance, disks });
  }

  remove(slot: PciSlot): void {
    const c = this.controllers.get(slot);
    if (!c) return;
    for (const d of c.disks) this.ctx.block.removeDisk(d);
    this.ctx.vfs.remove(`/sys/class/nvme/nvme${c.instance}`);
    this.ctx.vfs.remove(`${devicePath(slot)}/nvme`);
    this.controllers.delete(slot);
  }
}

/** sd_index_ida: SCSI disk letters shared by every SCSI host. */
function sdName(index: number): string {
  // sd_format_disk_name: base-26 without a zero digit (sda … sdz, sdaa …).
  let name = '';
  let n = index;
  do {
    name = String.fromCharCode(0x61 + (n % 26)) + name;
    n = Math.floor(n / 26) - 1;
  } while (n >= 0);
  return `sd${name}`;
}

/** ahci: an ATA port and SCSI host per SATA port, a SCSI disk on each port with a disk attached. */
export class AhciDriver implements PciDriver {
  readonly name = 'ahci';
  /** PCI_CLASS_STORAGE_SATA_AHCI. */
  readonly idTable = [byClass(0x010601)];
  /** ata_print_id: ATA port numbers only grow. */
  private nextAtaId = 1;
  private readonly hosts = new Map<PciSlot, { hostNumbers: number[]; ports: string[]; disks: { disk: Disk; sd: number }[] }>();

  constructor(private readonly ctx: HostDriverContext) {}

  probe(slot: PciSlot): void {
    const { vfs, block } = this.ctx;
    const base = devicePath(slot);
    const takenHosts = new Set([...this.hosts.values()].flatMap((h) => h.hostNumbers));
    const takenSd = new Set([...this.hosts.values()].flatMap((h) => h.disks.map((d) => d.sd)));
    const specs = disksOf(this.ctx.host, slot);
    const hostNumbers: number[] = [];
    const ports: string[] = [];
    const disks: { disk: Disk; sd: number }[] = [];
    for (let port = 0; port < ICH9_AHCI_PORTS; port++) {
      const h = lowestFree(takenHosts);
      takenHosts.add(h);
      hostNumbers.push(h);
      const ata = `ata${this.nextAtaId++}`;
      ports.push(ata);
      vfs.mkdir(`${base}/${ata}/host${h}`);
      const spec = specs[port];
      if (!spec) continue;
      const sdev = `${base}/${ata}/host${h}/target${h}:0:0/${h}:0:0:0`;
      vfs.add(
        `${sdev}/type`,
        roAttr(() => '0\n'),
      );
      const sd = lowestFree(takenSd);
      takenSd.add(sd);
      disks.push({
        sd,
        disk: block.addDisk(`${sdev}/block`, {
          name: sdName(sd),
          sectors: spec.sectors ?? DEFAULT_SECTORS,
          partitions: spec.partitions ?? 0,
          numbering: { kind: 'sd', index: sd },
          deviceLink: `../../../${h}:0:0:0`,
        }),
      });
    }
    this.hosts.set(slot, { hostNumbers, ports, disks });
  }

  remove(slot: PciSlot): void {
    const h = this.hosts.get(slot);
    if (!h) return;
    for (const d of h.disks) this.ctx.block.removeDisk(d.disk);
    for (const ata of h.ports) this.ctx.vfs.remove(`${devicePath(slot)}/${ata}`);
    this.hosts.delete(slot);
  }
}
