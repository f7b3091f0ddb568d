/**
 * The fault points of the model, after the kernel's fail_nth (tools/testing/selftests/iommu/
 * iommufd_fail_nth.c): every allocation, pin, ID allocation and object lookup of the model that
 * can fail in the kernel is a named site, and a sweep arms the kernel's FaultInjector
 * (fault-injection.ts) so the 1st, 2nd, … Nth site passed fails — once — until a scenario runs
 * through untouched. Each site fails with the errno the kernel's own site returns there, listed
 * here so a sweep can hold every surfaced error against its site.
 *
 * Model code writes a site as `faults.point('name')` on the injector of its kernel (handed down
 * from ModelKernel.faults); a caller that answers another errno for a failed site (hwpt_alloc's
 * EINVAL for its pt lookup) catches the KernelError, as the kernel checks IS_ERR.
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
