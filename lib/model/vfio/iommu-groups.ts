/**
 * IOMMU groups (drivers/iommu/iommu.c) as user space sees them: /sys/kernel/iommu_groups/N with a
 * `devices/` directory of links, and an `iommu_group` link in each member device. Behind a real
 * IOMMU every function gets its group when the IOMMU driver probes it at boot; on a noiommu host
 * there are none until VFIO fakes one for a device it takes (iommu_group_alloc, named
 * "vfio-noiommu"), which goes away again when the device is released. IDs come from one
 * allocator: the lowest free number.
 */
import type { Vfs } from '../vfs';
import { link, roAttr } from '../fs/nodes';
import { upToSys } from '../fs/pci-sysfs';
import type { PciSlot } from '../pci/host';

export interface IommuGroup {
  readonly id: number;
  /** iommu_group_set_name; "vfio-noiommu" for VFIO's fake groups. */
  readonly name: string | undefined;
  readonly members: Set<PciSlot>;
  /** Whether a real IOMMU backs the group. */
  readonly translated: boolean;
}

export class IommuGroups {
  private readonly groups = new Map<number, IommuGroup>();

  constructor(
    private readonly vfs: Vfs,
    private readonly devicePath: (slot: PciSlot) => string,
  ) {
    vfs.mkdir('/sys/kernel/iommu_groups');
  }

  /** Groups backed by a real IOMMU. */
  translatedCount(): number {
    let n = 0;
    for (const g of this.groups.values()) if (g.translated) n++;
    return n;
  }

  /** iommu_group_alloc with the lowest free ID (or `id` when the IOMMU layout fixes it). */
  alloc(opts: { name?: string; translated: boolean; id?: number }): IommuGroup {
    let id = opts.id ?? 0;
    if (opts.id === undefined) while (this.groups.has(id)) id++;
    if (this.groups.has(id)) throw new Error(`model: IOMMU group ${id} already exists`);
    const group: IommuGroup = { id, name: opts.name, members: new Set(), translated: opts.translated };
    this.groups.set(id, group);
    const dir = `/sys/kernel/iommu_groups/${id}`;
    this.vfs.mkdir(`${dir}/devices`);
    this.vfs.add(
      `${dir}/reserved_regions`,
      roAttr(() => (opts.translated ? '0x00000000fee00000 0x00000000feefffff msi\n' : '')),
    );
    this.vfs.add(
      `${dir}/type`,
      roAttr(() => (opts.translated ? 'DMA\n' : 'unknown\n')),
    );
    if (opts.name)
      this.vfs.add(
        `${dir}/name`,
        roAttr(() => `${opts.name}\n`),
      );
    return group;
  }

  /** iommu_group_add_device. */
  add(group: IommuGroup, slot: PciSlot): void {
    group.members.add(slot);
    this.vfs.add(
      `/sys/kernel/iommu_groups/${group.id}/devices/${slot.name}`,
      link(`../../../..${this.devicePath(slot).slice('/sys'.length)}`),
    );
    this.vfs.add(`${this.devicePath(slot)}/iommu_group`, link(`${upToSys(this.devicePath(slot))}/kernel/iommu_groups/${group.id}`));
  }

  /** iommu_group_remove_device; the group is freed with its last member. */
  remove(group: IommuGroup, slot: PciSlot): void {
    group.members.delete(slot);
    this.vfs.remove(`/sys/kernel/iommu_groups/${group.id}/devices/${slot.name}`);
    this.vfs.remove(`${this.devicePath(slot)}/iommu_group`);
    if (group.members.size === 0) {
      this.groups.delete(group.id);
      this.vfs.remove(`/sys/kernel/iommu_groups/${group.id}`);
    }
  }

  of(slot: PciSlot): IommuGroup | undefined {
    for (const g of this.groups.values()) if (g.members.has(slot)) return g;
    return undefined;
  }
}
