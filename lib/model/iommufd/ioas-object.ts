/**
 * The IOAS object (ioas.c: struct iommufd_ioas): an IOVA space user space maps memory into, plus
 * the HWPTs (domains) allocated on it. HWPTs hold a user reference on their IOAS, so it cannot be
 * destroyed (EBUSY) while a device is attached through it.
 */
import { IoPagetable } from './io-pagetable';
import type { HwptPaging } from './hw-pagetable';
import { IommufdObject } from './object-table';

export class IoasObject extends IommufdObject {
  readonly type = 'ioas' as const;
  /** ioas->hwpt_list: the paging HWPTs whose domains this IOAS is loaded into. */
  readonly hwpts: HwptPaging[] = [];

  constructor(
    readonly iopt: IoPagetable,
    private readonly onDestroy: (ioas: IoasObject) => void,
  ) {
    super();
  }

  /** iommufd_ioas_destroy: unmaps everything left. */
  destroy(): void {
    this.iopt.unmapAll();
    this.onDestroy(this);
  }
}
