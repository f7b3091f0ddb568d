/**
 * A paging HWPT object (hw_pagetable.c: struct iommufd_hwpt_paging): one IOMMU domain loaded with
 * its IOAS's mappings. Automatic HWPTs are created by attaching a device to an IOAS and go away
 * with the last device using them; manual ones come from IOMMU_HWPT_ALLOC and need IOMMU_DESTROY.
 * Each attached device holds a user reference (so DESTROY answers EBUSY while attached), and the
 * HWPT holds one on its IOAS from the moment its ID is reserved (iommufd_hwpt_paging_alloc) until
 * it is destroyed.
 */
import type { IommuDomain } from './domain';
import type { IoPagetable } from './io-pagetable';
import { IommufdObject } from './object-table';

/**
 * What a paging HWPT uses of its IOAS (ioas-object.ts's IoasObject), named here so that the two
 * objects, which point at each other, do not import each other.
 */
export interface HwptParent extends IommufdObject {
  readonly iopt: IoPagetable;
  readonly hwpts: HwptPaging[];
}

export class HwptPaging extends IommufdObject {
  readonly type = 'hwpt-paging' as const;
  autoDomain = false;
  /** Whether the domain was added to the IOAS (listed in ioas.hwpts). */
  loaded = false;
  /** The fault queue named by HWPT_ALLOC's fault_id (holds a user reference on it). */
  fault: IommufdObject | null = null;

  constructor(
    readonly ioas: HwptParent,
    public domain: IommuDomain | null,
    readonly nestParent: boolean,
  ) {
    super();
  }

  /** Loads the domain into the IOAS (iopt_table_add_domain + hwpt_list). */
  load(): void {
    this.ioas.iopt.addDomain(this.domain!);
    this.ioas.hwpts.push(this);
    this.loaded = true;
  }

  /** iommufd_hwpt_paging_destroy (also its abort). */
  destroy(): void {
    if (this.loaded) {
      const i = this.ioas.hwpts.indexOf(this);
      if (i >= 0) this.ioas.hwpts.splice(i, 1);
      this.ioas.iopt.removeDomain(this.domain!);
      this.loaded = false;
    }
    this.domain = null;
    if (this.fault) {
      this.fault.users--;
      this.fault = null;
    }
    this.ioas.users--;
  }
}
