/**
 * The VFIO core of the model (drivers/vfio/vfio_main.c, group.c, container.c registration paths):
 * device registration with its index and name, the group a device gets (or none), the device
 * nodes and sysfs entries that appear and disappear with them, the container misc device, and
 * the noiommu module parameter.
 *
 * Which of these exist follows the kernel build (VfioKconfig) and the noiommu parameter:
 *   - a device behind an IOMMU gets its IOMMU group's VFIO group /dev/vfio/N and a cdev vfioN;
 *   - a device without one is refused unless noiommu mode is on; then it gets a fake IOMMU group
 *     and /dev/vfio/noiommu-N (group interface), and the cdev noiommu-vfioN when the kernel has
 *     iommufd noiommu support (7.3); without the group interface (null group) only the cdev.
 */
import { matchTokenUuid, parseUuid, VfToken } from './vf-token';
import { isPhysfn, physfnOf } from '../pci/iov';
import { fail } from '../errno';
import type { OpenFile } from '../open-file';
import type { CharDevNode } from '../vfs';
import { addDevNode, removeDevNode, roAttr, rwAttr, link } from '../fs/nodes';
import { devicePath as pciDevicePath, upToSys } from '../fs/pci-sysfs';
import type { PciSlot } from '../pci/host';
import { IOMMU_BLOCKED } from '../pci/host';
import type { IommuGroups } from './iommu-groups';
import type { DmaOwnershipTable, VfioEnvironment } from './environment';
import { VfioContainerObject, VfioContainerFile } from './container-object';
import { VfioDeviceObject } from './device-object';
import { VfioDeviceFile } from './device-file';
import { VfioGroupFile, VfioGroupObject } from './group-object';
import { DmaOwnership } from '../iommufd/dma-ownership';
import { VfioPciCoreDevice } from './pci-core';

/**
 * Dynamic char majors are handed out downwards (alloc_chrdev_region); on the lab kernels 254 is
 * gone before vfio_init runs, which takes one for the groups first (when VFIO_GROUP is built) and
 * then one for the device cdevs: groups 253 and vfio-dev 252, or vfio-dev 253 without groups.
 */
const FIRST_FREE_DYNAMIC_MAJOR = 253;

/** vfio_unregister_group_dev re-sends the device request each time its 10 s wait runs out. */
const REQUEST_INTERVAL_MS = 10_000;

export class VfioSubsystem {
  private noiommuParam: boolean;
  private readonly devices = new Map<PciSlot, VfioDeviceObject>();
  private readonly groupsByIommuGroup = new Map<number, VfioGroupObject>();
  private readonly containerFiles = new WeakMap<OpenFile, VfioContainerObject>();
  private readonly dmaOwners: DmaOwnershipTable;
  private groupMinors = new Set<number>();
  private readonly groupMinor = new Map<VfioGroupObject, number>();
  /** add_taint(TAINT_USER) happened. */
  tainted = false;
  /** Char majors of /dev/vfio/<group> and /dev/vfio/devices/* (see FIRST_FREE_DYNAMIC_MAJOR). */
  private readonly groupMajor: number;
  private readonly deviceMajor: number;

  constructor(readonly env: VfioEnvironment) {
    // A host that does not share iommufd's table (a bare PCI machine) gets a table of its own.
    this.dmaOwners = env.dmaOwnership ?? new DmaOwnership();
    this.noiommuParam = env.kconfig.vfioNoiommu && env.noiommuAtBoot;
    this.groupMajor = FIRST_FREE_DYNAMIC_MAJOR;
    this.deviceMajor = env.kconfig.group ? FIRST_FREE_DYNAMIC_MAJOR - 1 : FIRST_FREE_DYNAMIC_MAJOR;
    if (env.kconfig.vfioNoiommu) {
      env.vfs.add(
        '/sys/module/vfio/parameters/enable_unsafe_noiommu_mode',
        rwAttr(
          () => (this.noiommuParam ? 'Y\n' : 'N\n'),
          (data) => {
            this.noiommuParam = parseBool(data);
          },
          0o644,
        ),
      );
    }
    if (env.kconfig.group && env.kconfig.container) {
      addDevNode(env.vfs, '/dev/vfio/vfio', {
        type: 'chardev',
        mode: 0o666,
        open: () => {
          const c = new VfioContainerObject(this);
          const f = new VfioContainerFile(c);
          this.containerFiles.set(f, c);
          return f;
        },
      } as CharDevNode);
    }
    // With CONFIG_IOMMUFD_VFIO_CONTAINER, /dev/vfio/vfio is iommufd's (the kernel model installs it).
    env.vfs.mkdir('/sys/class/vfio-dev');
    if (env.kconfig.group) env.vfs.mkdir('/sys/class/vfio');
  }

  noiommuEnabled(): boolean {
    return this.noiommuParam;
  }

  isContainerFile(file: OpenFile): boolean {
    return this.containerFiles.has(file);
  }
  containerOf(file: OpenFile): VfioContainerObject {
    return this.containerFiles.get(file)!;
  }

  deviceOf(slot: PciSlot): VfioDeviceObject | undefined {
    return this.devices.get(slot);
  }
  allDevices(): VfioDeviceObject[] {
    return [...this.devices.values()];
  }

  private slotHasIommu(slot: PciSlot): boolean {
    return slot.behindIommu;
  }

  // ---- registration (vfio_register_group_dev / vfio_unregister_group_dev) ----

  /** The vfio-pci probe's registration: throws the probe error. */
  registerDevice(slot: PciSlot): VfioDeviceObject {
    const env = this.env;
    const hasIommu = this.slotHasIommu(slot);
    const index = this.lowestFreeIndex();
    const noiommuFlag = env.kconfig.iommufdNoiommu && this.noiommuParam && !hasIommu;
    const name = `${noiommuFlag ? 'noiommu-' : ''}vfio${index}`;
    const core = new VfioPciCoreDevice(slot, {
      pageSize: env.pageSize,
      lookup: (fd) => env.lookup(fd),
      msi: env.pci.msi,
      intxConfigured: env.kconfig.pciIntx,
      siblings: () => env.pci.all(),
      groupIdOf: (s) => env.iommuGroups.of(s)?.id,
      vfioPeer: (s) => {
        const d = this.devices.get(s);
        return d && { iommufd: d.boundTo, devid: d.bound?.id, groupId: env.iommuGroups.of(s)?.id };
      },
      groupOfFd: (fd) => {
        const file = env.lookup(fd);
        if (!file) return undefined;
        return file instanceof VfioGroupFile ? file.group.id() : 'not-a-group';
      },
      faults: env.faults,
    });
    // vfio_pci_vf_init: a VF remembers the vfio-pci PF that created it; a PF gets a fresh token.
    const physfn = physfnOf(slot);
    if (physfn) {
      const pf = this.devices.get(physfn)?.core;
      core.virtfn = { pfToken: pf?.sriovListed ? pf.vfToken : undefined };
    } else if (isPhysfn(slot)) {
      core.vfToken = new VfToken();
    }
    const device = new VfioDeviceObject(index, name, noiommuFlag, slot, core, this, {
      hasIommu,
      iommuGroupId: () => env.iommuGroups.of(slot)?.id ?? -1,
      updateDma: (d) => this.updateDma(d),
    });
    if (env.kconfig.group) device.group = this.groupFor(slot, hasIommu);
    if (device.isNoiommu) this.tainted = true;
    if (!device.isNoiommu && !hasIommu) {
      this.removeFromGroup(device);
      fail('EINVAL', `${slot.name} has no IOMMU and noiommu mode is off (vfio.enable_unsafe_noiommu_mode=0)`);
    }
    this.devices.set(slot, device);
    this.addDeviceNodes(device);
    device.group?.devices.push(device);
    return device;
  }

  /** vfio_pci_remove: refuses while the device is open (the kernel would block until it is closed). */
  unregisterDevice(slot: PciSlot): void {
    const device = this.devices.get(slot);
    if (!device) return;
    if (device.fileRefs.size > 0) {
      const told = device.core.request();
      fail(
        'EBUSY',
        `${slot.name} is open by a user; the real kernel blocks the unbind until every fd of the device is closed${told ? ' (the REQ eventfd was signalled)' : ''}`,
      );
    }
    this.withdraw(device);
    this.forget(device);
  }

  /**
   * vfio_unregister_group_dev as a hot-unplug runs it: no new opens from here on, the user is asked
   * for the device back through REQ (again every 10 s, as the kernel's wait times out), and the
   * removal completes once the last fd of the device is closed. The open fds keep working until then.
   */
  async unregisterDeviceWhenReleased(slot: PciSlot): Promise<void> {
    const device = this.devices.get(slot);
    if (!device) return;
    this.withdraw(device);
    if (device.fileRefs.size > 0) {
      await new Promise<void>((resolve) => {
        device.core.request();
        // Wall-clock time, as the kernel's HZ * 10 wait: the device clock may run virtual time ahead.
        const again = setInterval(() => device.core.request(), REQUEST_INTERVAL_MS);
        again.unref();
        device.whenReleased(() => {
          clearInterval(again);
          resolve();
        });
      });
    }
    this.forget(device);
  }

  /** vfio_device_group_unregister and vfio_device_del: the device can no longer be opened. */
  private withdraw(device: VfioDeviceObject): void {
    if (!device.registered) return;
    device.registered = false;
    if (device.group) device.group.devices.splice(device.group.devices.indexOf(device), 1);
    this.removeDeviceNodes(device);
  }

  private forget(device: VfioDeviceObject): void {
    this.removeFromGroup(device);
    this.devices.delete(device.slot);
  }

  private lowestFreeIndex(): number {
    const used = new Set([...this.devices.values()].map((d) => d.index));
    let i = 0;
    while (used.has(i)) i++;
    return i;
  }

  /** vfio_device_set_group: find or create the VFIO group. */
  private groupFor(slot: PciSlot, hasIommu: boolean): VfioGroupObject {
    const groups = this.env.iommuGroups;
    if (hasIommu) {
      const iommuGroup = groups.of(slot);
      if (!iommuGroup) fail('EINVAL', `${slot.name} has no IOMMU group`);
      const existing = this.groupsByIommuGroup.get(iommuGroup.id);
      if (existing) {
        existing.drivers++;
        return existing;
      }
      return this.createGroup('iommu', iommuGroup);
    }
    if (!this.noiommuParam) {
      fail('EINVAL', `${slot.name} has no IOMMU and noiommu mode is off (vfio.enable_unsafe_noiommu_mode=0)`);
    }
    const iommuGroup = groups.alloc({ name: 'vfio-noiommu', translated: false });
    groups.add(iommuGroup, slot);
    this.tainted = true;
    return this.createGroup('noiommu', iommuGroup);
  }

  private createGroup(type: 'iommu' | 'noiommu', iommuGroup: ReturnType<IommuGroups['alloc']>): VfioGroupObject {
    const group = new VfioGroupObject(type, iommuGroup, this);
    let minor = 0;
    while (this.groupMinors.has(minor)) minor++;
    this.groupMinors.add(minor);
    this.groupMinor.set(group, minor);
    this.groupsByIommuGroup.set(iommuGroup.id, group);
    addDevNode(this.env.vfs, `/dev/vfio/${group.name}`, { type: 'chardev', open: () => group.open() });
    const dir = `/sys/devices/virtual/vfio/${group.name}`;
    this.env.vfs.add(
      `${dir}/dev`,
      roAttr(() => `${this.groupMajor}:${minor}\n`),
    );
    this.env.vfs.add(
      `${dir}/uevent`,
      roAttr(() => `MAJOR=${this.groupMajor}\nMINOR=${minor}\nDEVNAME=vfio/${group.name}\n`),
    );
    this.env.vfs.add(`${dir}/subsystem`, link('../../../../class/vfio'));
    this.env.vfs.add(`/sys/class/vfio/${group.name}`, link(`../../devices/virtual/vfio/${group.name}`));
    return group;
  }

  /** vfio_device_remove_group. */
  private removeFromGroup(device: VfioDeviceObject): void {
    // The device sees its group only as far as it needs (DeviceGroup); the group object itself is
    // the one registered here under its id.
    const group = device.group && this.groupsByIommuGroup.get(device.group.id());
    if (!group) return;
    if (group.type === 'noiommu') this.env.iommuGroups.remove(group.iommuGroup!, device.slot);
    group.drivers--;
    if (group.drivers > 0) return;
    this.groupsByIommuGroup.delete(group.id());
    removeDevNode(this.env.vfs, `/dev/vfio/${group.name}`);
    this.env.vfs.remove(`/sys/devices/virtual/vfio/${group.name}`);
    this.env.vfs.remove(`/sys/class/vfio/${group.name}`);
    this.groupMinors.delete(this.groupMinor.get(group)!);
    if (group.container) group.container.detachGroup(group);
    group.iommuGroup = undefined;
  }

  /** vfio_device_add: the vfio-dev class device, and its cdev unless noiommu lacks iommufd support. */
  private addDeviceNodes(device: VfioDeviceObject): void {
    const vfs = this.env.vfs;
    const devDir = `${pciDevicePath(device.slot)}/vfio-dev/${device.name}`;
    const hasCdev = this.env.kconfig.cdev && !(device.isNoiommu && !this.env.kconfig.iommufdNoiommu);
    vfs.add(
      `${devDir}/uevent`,
      roAttr(() => `MAJOR=${this.deviceMajor}\nMINOR=${device.index}\nDEVNAME=vfio/devices/${device.name}\n`),
    );
    vfs.add(`${devDir}/device`, link(`../../../${device.slot.name}`));
    vfs.add(`${devDir}/subsystem`, link(`${upToSys(devDir)}/class/vfio-dev`));
    if (hasCdev) {
      vfs.add(
        `${devDir}/dev`,
        roAttr(() => `${this.deviceMajor}:${device.index}\n`),
      );
      addDevNode(vfs, `/dev/vfio/devices/${device.name}`, {
        type: 'chardev',
        open: () => VfioDeviceFile.openCdev(device, this.env.capabilities().sysRawio),
      });
    }
    vfs.add(`/sys/class/vfio-dev/${device.name}`, link(`../..${pciDevicePath(device.slot).slice('/sys'.length)}/vfio-dev/${device.name}`));
  }

  private removeDeviceNodes(device: VfioDeviceObject): void {
    const vfs = this.env.vfs;
    vfs.remove(`${pciDevicePath(device.slot)}/vfio-dev`);
    removeDevNode(vfs, `/dev/vfio/devices/${device.name}`);
    vfs.remove(`/sys/class/vfio-dev/${device.name}`);
  }

  // ---- group helpers ----

  /** vfio_device_get_from_name + vfio_pci_core_match: "<bdf>" or "<bdf> vf_token=<uuid>". */
  findDeviceByName(group: VfioGroupObject, text: string): VfioDeviceObject {
    for (const d of group.devices) {
      const bdf = d.slot.name;
      if (!text.startsWith(bdf)) continue;
      let rest = text.slice(bdf.length);
      let token: Uint8Array | undefined;
      if (rest.length) {
        if (rest[0] !== ' ') continue;
        rest = rest.trimStart();
        while (rest.length) {
          if (!token && rest.startsWith('vf_token=')) {
            const text = rest.slice('vf_token='.length, 'vf_token='.length + 36);
            token = text.length < 36 ? undefined : parseUuid(text);
            if (!token) fail('EINVAL', 'malformed vf_token');
            rest = rest.slice('vf_token='.length + 36).trimStart();
          } else {
            fail('EINVAL', 'unknown or repeated option after the device name');
          }
        }
      }
      // vfio_pci_core_match: a named device always has its token checked, even with none given.
      matchTokenUuid(d.core, token);
      if (d.registered) return d;
    }
    fail('ENODEV', `no device named '${text}' in group ${group.name}`);
  }

  /** iommu_group_claim_dma_owner (container attach): EBUSY when iommufd or another container owns it. */
  claimDmaOwner(group: VfioGroupObject, owner: object): void {
    this.dmaOwners.claim(group.id(), owner);
  }

  releaseDmaOwner(group: VfioGroupObject, owner: object): void {
    this.dmaOwners.release(group.id(), owner);
  }

  /** iommu_group_dma_owner_claimed: a container or an iommufd-bound device of the group owns DMA. */
  dmaOwnerClaimed(group: VfioGroupObject): boolean {
    if (this.dmaOwners.ownerOf(group.id()) !== undefined) return true;
    return group.devices.some((d) => d.bound !== undefined);
  }

  /** Points a function's DMA at what now translates it. */
  private updateDma(device: VfioDeviceObject): void {
    const slot = device.slot;
    if (!slot.behindIommu) return;
    const port = device.bound && device.attached ? device.bound.dmaPort() : undefined;
    slot.dma.set(port ?? IOMMU_BLOCKED);
  }
}

/** param_set_bool / kstrtobool. */
function parseBool(data: Buffer): boolean {
  const s = data.toString('latin1');
  const c = s[0];
  if (c === 'y' || c === 'Y' || c === '1') return true;
  if (c === 'n' || c === 'N' || c === '0') return false;
  if ((c === 'o' || c === 'O') && s.length > 1) {
    if (s[1] === 'n' || s[1] === 'N') return true;
    if (s[1] === 'f' || s[1] === 'F') return false;
  }
  fail('EINVAL', 'expected a boolean (Y/N/1/0/on/off)');
}
