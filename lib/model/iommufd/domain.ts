/**
 * IOMMU domains: the page tables a device's DMA is translated through.
 *
 * 'noiommu' is the software-only domain of 7.3's hwpt_noiommu.c (noiommu_alloc_paging_flags): an
 * AMDv1-format table nobody walks in hardware, kept only so IOMMU_IOAS_NOIOMMU_GET_PA can turn an
 * IOVA back into a physical address. It covers the whole 64-bit space and refuses any flags or
 * driver data (EOPNOTSUPP).
 *
 * 'intel-vtd' is a VT-d second-stage domain: its aperture is [0, 2^addressWidth - 1] and it maps
 * 4 KiB, 2 MiB and 1 GiB pages.
 *
 * A domain holds no translations of its own in the model: every domain of an IOAS maps exactly
 * that IOAS's areas (iopt_fill_domain), so translation reads the areas.
 */
import { IOMMU_HWPT_ALLOC_DIRTY_TRACKING, IOMMU_HWPT_ALLOC_NEST_PARENT, IOMMU_HWPT_ALLOC_PASID } from '../../uapi/iommufd';
import { U64_MAX } from '../../uapi/codec';
import { fail } from '../errno';
import type { IommuUnit } from '../profile';

export type DomainOwner = 'noiommu' | 'intel-vtd';

const SZ_4K = 1n << 12n;
const SZ_2M = 1n << 21n;
const SZ_1G = 1n << 30n;

export class IommuDomain {
  constructor(
    /** Which driver's ops own the domain (domain->owner). */
    readonly owner: DomainOwner,
    /** Page sizes the table can map. */
    readonly pgsizeBitmap: bigint,
    readonly apertureStart: bigint,
    readonly apertureEnd: bigint,
    readonly unit: IommuUnit | null,
  ) {}

  /** 1 << __ffs(pgsize_bitmap): the IOVA alignment this domain imposes. */
  get minPageSize(): bigint {
    return this.pgsizeBitmap & -this.pgsizeBitmap;
  }
}

/** noiommu_alloc_paging_flags. */
export function allocNoiommuDomain(flags: number, hasUserData: boolean): IommuDomain {
  if (flags || hasUserData) fail('EOPNOTSUPP');
  // AMDv1 format: every power of two from 4 KiB; 64-bit input space.
  const bitmap = U64_MAX & ~(SZ_4K - 1n);
  return new IommuDomain('noiommu', bitmap, 0n, U64_MAX, null);
}

/** intel_iommu_domain_alloc_paging_flags for a second-stage table. */
export function allocVtdDomain(unit: IommuUnit, flags: number, hasUserData: boolean): IommuDomain {
  if (hasUserData) fail('EOPNOTSUPP');
  if (flags & ~(IOMMU_HWPT_ALLOC_NEST_PARENT | IOMMU_HWPT_ALLOC_DIRTY_TRACKING | IOMMU_HWPT_ALLOC_PASID)) fail('EOPNOTSUPP');
  // QEMU's VT-d has neither nested translation nor second-stage dirty tracking.
  if (flags & (IOMMU_HWPT_ALLOC_NEST_PARENT | IOMMU_HWPT_ALLOC_DIRTY_TRACKING)) fail('EOPNOTSUPP');
  const end = unit.addressWidth >= 64 ? U64_MAX : (1n << BigInt(unit.addressWidth)) - 1n;
  return new IommuDomain('intel-vtd', SZ_4K | SZ_2M | SZ_1G, 0n, end, unit);
}
