/**
 * A hardware page table (IOMMU_HWPT_ALLOC): an IOMMU domain built explicitly for a device over
 * an IOAS, instead of the one the kernel creates on attach. On a noiommu device it is the dummy
 * domain, available only with flags 0 and no driver data.
 */
import * as io from '../ioctl/iommufd-ioctls';
import type { BoundDevice, IommufdHandle, PageTableTarget } from './iommufd-handle';
import { IommufdResource } from './iommufd-resource';

/**
 * Options of `Iommufd.hwpt`.
 *
 * @category IOMMU
 */
export interface HwptOptions {
  /** IOMMU_HWPT_ALLOC_* flags (NEST_PARENT, DIRTY_TRACKING, ...). */
  readonly flags?: number;
  /** IOMMU_HWPT_DATA_* type of `data`. */
  readonly dataType?: number;
  /** Driver-specific allocation data (e.g. an encoded iommu_hwpt_vtd_s1). */
  readonly data?: Uint8Array;
}

/**
 * A hardware page table; attach devices to it with `device.attach(hwpt)`.
 *
 * @category IOMMU
 */
export class Hwpt extends IommufdResource implements PageTableTarget {
  private constructor(
    handle: IommufdHandle,
    /** The object id in the iommufd. */
    readonly id: number,
    /** The IOAS (or parent HWPT) this page table translates through. */
    readonly parent: PageTableTarget,
  ) {
    super(handle, `HWPT ${id}`, undefined, () => io.iommuDestroy(handle.kernel, handle.file.fd, id));
  }

  /** @internal Use `Iommufd.hwpt()`. */
  static allocate(handle: IommufdHandle, device: BoundDevice, parent: PageTableTarget, options: HwptOptions): Hwpt {
    const id = io.hwptAlloc(handle.kernel, handle.file.fd, {
      deviceId: device.deviceId,
      ptId: parent.id,
      ...(options.flags !== undefined ? { flags: options.flags } : {}),
      ...(options.dataType !== undefined ? { dataType: options.dataType } : {}),
      ...(options.data !== undefined ? { data: options.data } : {}),
    });
    return new Hwpt(handle, id, parent);
  }

  /** Turns dirty-page tracking on or off (needs a HWPT allocated with DIRTY_TRACKING). */
  setDirtyTracking(enabled: boolean): void {
    this.assertOpen('Hwpt.setDirtyTracking');
    io.hwptSetDirtyTracking(this.kernel, this.handle.file.fd, this.id, enabled);
  }
}
