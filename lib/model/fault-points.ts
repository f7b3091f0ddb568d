/**
 * The catalogue of the model's fault points: each site's name, the errno the kernel's own site
 * returns there and the kernel function it stands for. A leaf module: the injector
 * (fault-injection.ts) and the sites' helpers (faults.ts) both need the names.
 */
import type { ErrnoName } from '../sys/constants';

export interface FaultPointInfo {
  /** What the kernel answers when this site fails. */
  readonly errno: ErrnoName;
  /** The kernel function (and allocation) the site stands for. */
  readonly site: string;
}

export const FAULT_POINTS = {
  'iommufd.ctx-alloc': { errno: 'ENOMEM', site: 'iommufd_fops_open: kzalloc of the context' },
  'iommufd.object-alloc': { errno: 'ENOMEM', site: '_iommufd_object_alloc: kzalloc of the object, xa_alloc of its ID' },
  'iommufd.object-lookup': { errno: 'ENOENT', site: 'iommufd_get_object: iommufd_should_fail' },
  'iommufd.pages-alloc': { errno: 'ENOMEM', site: 'iopt_alloc_pages: kzalloc of struct iopt_pages' },
  'iommufd.area-alloc': { errno: 'ENOMEM', site: 'iopt_alloc_area_pages: kzalloc of struct iopt_area' },
  'iommufd.pages-pin': { errno: 'EFAULT', site: 'pfn_reader_user_pin: iommufd_should_fail' },
  'iommufd.pages-account': { errno: 'ENOMEM', site: 'pfn_reader_user_update_pinned: iommufd_should_fail' },
  'iommufd.resv-regions': { errno: 'EINVAL', site: 'iopt_table_enforce_dev_resv_regions: iommufd_should_fail' },
  'iommu.domain-alloc': { errno: 'ENOMEM', site: 'iommu_paging_domain_alloc_flags / the noiommu domain: kzalloc' },
  'vfio.device-file-alloc': { errno: 'ENOMEM', site: 'vfio_allocate_device_file: kzalloc' },
  'vfio.irq-ctx-alloc': { errno: 'ENOMEM', site: 'vfio_irq_ctx_alloc: kzalloc of the interrupt context' },
  'eventfd.ctx-alloc': { errno: 'ENOMEM', site: 'do_eventfd: kmalloc of the eventfd context' },
  'mm.mmap': { errno: 'ENOMEM', site: 'do_mmap: vm_area_alloc (the model populates the frames here too)' },
} as const satisfies Record<string, FaultPointInfo>;

export type FaultPointName = keyof typeof FAULT_POINTS;
