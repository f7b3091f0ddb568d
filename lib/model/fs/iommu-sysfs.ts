/**
 * The IOMMU hardware as sysfs shows it (drivers/iommu/iommu-sysfs.c: iommu_device_sysfs_add,
 * iommu_device_link; the "intel-iommu" attribute group of drivers/iommu/intel/iommu.c).
 *
 * /sys/class/iommu exists whenever the IOMMU core is built in, so a noiommu host has it too, empty.
 * Behind VT-d the unit is the class device dmar0 under /sys/devices/virtual/iommu: its registers
 * in `intel-iommu/`, a `devices/` link to every function it translates, and an `iommu` link back in
 * each such function's directory — the link a tool follows to tell an IOMMU-backed device from a
 * noiommu one.
 */
import { upToSys } from './pci-sysfs';
import type { Vfs } from '../vfs';
import type { IommuUnit } from '../profile';
import { link, roAttr } from './nodes';

const CLASS_DIR = '/sys/class/iommu';

/** Register base of the (single) DMA remapping unit QEMU's q35 places, as intel-iommu/address shows it. */
const VTD_REGISTER_BASE = 0xfed9_0000n;

export function addIommuClass(vfs: Vfs): void {
  vfs.mkdir(CLASS_DIR);
}

export class IommuSysfs {
  readonly name = 'dmar0';
  private readonly dir = `/sys/devices/virtual/iommu/${this.name}`;

  constructor(
    private readonly vfs: Vfs,
    unit: IommuUnit,
    /**
     * Domain IDs in use on the unit (intel-iommu/domains_used): one per IOMMU group's attached
     * domain, which is what the lab shows at boot and while a device sits in an iommufd domain.
     */
    domainsUsed: () => number,
  ) {
    const d = this.dir;
    vfs.add(`${d}/subsystem`, link('../../../../class/iommu'));
    vfs.add(
      `${d}/uevent`,
      roAttr(() => ''),
    );
    vfs.mkdir(`${d}/devices`);
    const hex = (n: bigint) => `${n.toString(16)}\n`;
    vfs.add(
      `${d}/intel-iommu/address`,
      roAttr(() => hex(VTD_REGISTER_BASE)),
    );
    vfs.add(
      `${d}/intel-iommu/cap`,
      roAttr(() => hex(unit.capReg)),
    );
    vfs.add(
      `${d}/intel-iommu/ecap`,
      roAttr(() => hex(unit.ecapReg)),
    );
    // VER_REG of QEMU's VT-d is 1.0, shown "major:minor".
    vfs.add(
      `${d}/intel-iommu/version`,
      roAttr(() => '1:0\n'),
    );
    // cap_ndoms: CAP.ND (bits 2:0) selects 2^(4 + 2*ND) domain IDs.
    vfs.add(
      `${d}/intel-iommu/domains_supported`,
      roAttr(() => `${1n << (4n + 2n * (unit.capReg & 7n))}\n`),
    );
    vfs.add(
      `${d}/intel-iommu/domains_used`,
      roAttr(() => `${domainsUsed()}\n`),
    );
    vfs.add(`${CLASS_DIR}/${this.name}`, link(`../../devices/virtual/iommu/${this.name}`));
  }

  /** iommu_device_link: the unit translates the function at `devicePath` (/sys/devices/pci0000:00/<bdf>). */
  linkDevice(devicePath: string): void {
    const name = devicePath.slice(devicePath.lastIndexOf('/') + 1);
    const fromUnit = `../../../..${devicePath.slice('/sys/devices'.length)}`;
    this.vfs.add(`${this.dir}/devices/${name}`, link(fromUnit));
    // The shortest relative path, as sysfs makes it: up to /sys/devices, then down.
    this.vfs.add(`${devicePath}/iommu`, link(`${upToSys(devicePath).slice('../'.length)}/virtual/iommu/${this.name}`));
  }
}
