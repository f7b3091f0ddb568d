/**
 * DMA ownership of IOMMU groups (drivers/iommu/iommu.c: iommu_device_claim_dma_owner and
 * iommu_group_claim_dma_owner). A group used by user space belongs to one owner at a time — an
 * iommufd context through a bound device, or a legacy VFIO container — and a second owner gets
 * EPERM (both claim functions answer EPERM when the group has another owner; the lab's multi
 * machine shows it for two functions of one group bound to two iommufds). Kernel-wide, so the
 * VFIO side and iommufd consult the same table.
 */
import { fail } from '../errno';

export class DmaOwnership {
  private readonly owners = new Map<number, { owner: object; count: number }>();

  /** Claims `group` for `owner`; claims by the same owner nest. EPERM if someone else owns it. */
  claim(group: number, owner: object): void {
    const cur = this.owners.get(group);
    if (cur && cur.owner !== owner) fail('EPERM');
    if (cur) cur.count++;
    else this.owners.set(group, { owner, count: 1 });
  }

  release(group: number, owner: object): void {
    const cur = this.owners.get(group);
    if (!cur || cur.owner !== owner) return;
    if (--cur.count === 0) this.owners.delete(group);
  }

  /** Groups currently claimed (leak checks). */
  get claimedCount(): number {
    return this.owners.size;
  }

  ownerOf(group: number): object | undefined {
    return this.owners.get(group)?.owner;
  }
}
