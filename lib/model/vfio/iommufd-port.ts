/**
 * What the VFIO side needs from iommufd (drivers/iommu/iommufd, modelled in lib/model/iommufd):
 * finding the context behind an fd, binding a device to it, attaching the bound device to an
 * IOAS or HWPT, and the compat hooks the legacy group path uses when a group is "set" to an
 * iommufd. The kernel model adapts its iommufd implementation to this interface; VFIO never
 * reaches into iommufd objects directly, as in the kernel (iommufd_device_bind & co.).
 */
import type { OpenFile } from '../open-file';
import type { DmaPort } from '../pci/dma';

/** The device as iommufd sees it at bind time (struct device: its IOMMU and group). */
export interface IommufdBindRequest {
  /** pci_name, for messages. */
  readonly name: string;
  /** Whether an IOMMU translates the device; false for a noiommu device. */
  readonly hasIommu: boolean;
  /** The IOMMU group ID (meaningless without an IOMMU). */
  readonly iommuGroup: number;
}

/** A device bound to an iommufd context (struct iommufd_device). */
export interface IommufdBoundDevice {
  /** The object ID returned in out_devid. */
  readonly id: number;
  /** iommufd_device_attach: returns the HWPT ID actually attached (pt_id may name an IOAS). */
  attach(ptId: number): number;
  /** iommufd_device_replace. */
  replace(ptId: number): number;
  /** iommufd_device_detach. */
  detach(): void;
  /** iommufd_device_unbind. */
  unbind(): void;
  /**
   * How the device's DMA is translated right now: through the attached domain's IOVA mappings
   * (faulting on unmapped IOVAs), or undefined when nothing is attached (the IOMMU blocks DMA).
   * Only meaningful for a device with an IOMMU.
   */
  dmaPort(): DmaPort | undefined;
}

export interface IommufdContextPort {
  /** iommufd_device_bind. Throws the errno iommufd would return. */
  bind(device: IommufdBindRequest): IommufdBoundDevice;
  /** iommufd_vfio_compat_set_no_iommu (group SET_CONTAINER with an iommufd, noiommu group). */
  compatSetNoIommu(): void;
  /** iommufd_vfio_compat_ioas_create (group SET_CONTAINER with an iommufd). */
  compatIoasCreate(): void;
  /** iommufd_vfio_compat_ioas_get_id: the compat IOAS, or undefined if none. */
  compatIoasId(): number | undefined;
  /**
   * Makes the context answer MAP_DMA as vfio_iommu_type1 does for a VM_PFNMAP range (a BAR's
   * mmap): map the PFNs it follows instead of refusing what cannot be pinned. For the private
   * context the model's type1 container runs on; never for an iommufd user space opened.
   */
  compatFollowPfnmap(): void;
}

export interface IommufdPort {
  /** iommufd_ctx_from_file: the context behind an open file, or undefined if it is not an iommufd. */
  contextOf(file: OpenFile): IommufdContextPort | undefined;
}
