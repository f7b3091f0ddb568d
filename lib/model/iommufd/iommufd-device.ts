/**
 * Devices bound to an iommufd context and their attachment to IOAS/HWPTs (device.c).
 *
 * Binding creates a device object in the context's ID space. A device behind an IOMMU joins the
 * context's per-IOMMU-group state (devices of one group share one attachment) and claims DMA
 * ownership of the group; a noiommu device gets a private dummy group and claims nothing.
 *
 * Attaching to an IOAS picks (or creates) an automatic HWPT whose domain suits the device: the
 * noiommu software domain for noiommu devices, a VT-d paging domain otherwise. Attaching to a HWPT
 * uses that HWPT. Reserved IOVA regions of the IOMMU (VT-d's MSI window) are applied to the IOAS
 * for IOMMU devices only.
 */
import {
  IOMMU_HWPT_ALLOC_DIRTY_TRACKING,
  IOMMU_HWPT_ALLOC_NEST_PARENT,
  IOMMU_HWPT_ALLOC_PASID,
  IOMMU_HWPT_FAULT_ID_VALID,
} from '../../uapi/iommufd';
import { fail, KernelError } from '../errno';
import type { IommuUnit } from '../profile';
import { allocNoiommuDomain, allocVtdDomain, type IommuDomain } from './domain';
import { HwptPaging } from './hw-pagetable';
import type { IoasObject } from './ioas-object';
import { IommufdObject, type ObjectTable } from './object-table';
import type { DmaOwnership } from './dma-ownership';
import type { FaultInjector } from '../fault-injection';

/**
 * What the VFIO side hands iommufd when it binds a device (the kernel's struct device).
 *
 * @category Model
 */
export interface BindableDevice {
  /** For messages, e.g. '0000:00:03.0'. */
  readonly name: string;
  /**
   * The IOMMU translating this device's DMA, or null for a device without one (a noiommu device:
   * dev->iommu is NULL).
   */
  readonly iommu: IommuUnit | null;
  /** Its IOMMU group number (ignored for noiommu devices). */
  readonly iommuGroup: number;
}

/**
 * Per-context state of one IOMMU group (struct iommufd_group, without PASIDs).
 *
 * @category Model
 */
export class Igroup {
  /** The HWPT the group is attached to and the devices of this context attached through it. */
  attach: { hwpt: HwptPaging; devices: Map<number, IommufdDevice> } | null = null;
  refs = 0;

  constructor(readonly group: number | null) {}
}

export class IommufdDevice extends IommufdObject {
  readonly type = 'device' as const;
  igroup: Igroup | null = null;

  constructor(
    readonly dev: BindableDevice,
    private readonly release: (idev: IommufdDevice) => void,
  ) {
    super();
  }

  /** iommufd_device_is_noiommu. */
  get isNoiommu(): boolean {
    return this.dev.iommu === null;
  }

  /** iommufd_device_destroy. */
  destroy(): void {
    if (this.igroup) this.release(this);
  }
}

/**
 * The parts of a context the attach logic works with.
 *
 * @category Model
 */
export interface AttachContext {
  readonly objects: ObjectTable;
  readonly host: { readonly faults: FaultInjector };
  readonly dmaOwnership: DmaOwnership;
  readonly hasIommufdNoiommu: boolean;
}

/**
 * The domain a device's driver would allocate (iommufd_hwpt_paging_alloc's domain_alloc_paging_flags).
 *
 * @category Model
 */
export function allocDomainFor(idev: IommufdDevice, flags: number, hasUserData: boolean): IommuDomain {
  return idev.dev.iommu ? allocVtdDomain(idev.dev.iommu, flags, hasUserData) : allocNoiommuDomain(flags, hasUserData);
}

/** iommu_attach_group_handle: can this domain translate for this device? */
function domainAccepts(domain: IommuDomain, idev: IommufdDevice): boolean {
  return domain.owner === 'intel-vtd' && domain.unit === idev.dev.iommu;
}

/**
 * iommufd_hw_pagetable_attach.
 *
 * @category Model
 */
export function hwptAttach(hwpt: HwptPaging, idev: IommufdDevice): void {
  const igroup = idev.igroup!;
  const attachResv = !idev.isNoiommu;
  const attach = igroup.attach;
  if (attach?.devices.has(idev.id)) fail('EBUSY');
  if (attach && attach.hwpt !== hwpt) fail('EINVAL');
  if (attachResv) hwpt.ioas.iopt.enforceReservedRegions(idev.dev.iommu!.reservedRegions, idev);
  if (!attach) {
    if (!idev.isNoiommu && !domainAccepts(hwpt.domain!, idev)) {
      if (attachResv) hwpt.ioas.iopt.removeReserved(idev);
      fail('EINVAL');
    }
    igroup.attach = { hwpt, devices: new Map() };
  }
  hwpt.users++;
  igroup.attach!.devices.set(idev.id, idev);
}

/**
 * iommufd_hw_pagetable_detach: returns the HWPT it was attached to, or null.
 *
 * @category Model
 */
export function hwptDetach(idev: IommufdDevice): HwptPaging | null {
  const igroup = idev.igroup!;
  const attach = igroup.attach;
  // The group's attachment is shared: a device of the group that is not attached itself has nothing to detach.
  if (!attach || !attach.devices.has(idev.id)) return null;
  const hwpt = attach.hwpt;
  attach.devices.delete(idev.id);
  if (attach.devices.size === 0) igroup.attach = null;
  hwpt.ioas.iopt.removeReserved(idev);
  return hwpt;
}

/**
 * iommufd_hw_pagetable_put: an automatic HWPT dies with its last user.
 *
 * @category Model
 */
export function hwptPut(ctx: AttachContext, hwpt: HwptPaging): void {
  if (hwpt.autoDomain) ctx.objects.putAndTryDestroy(hwpt);
  else hwpt.users--;
}

/** iommufd_device_do_replace: returns the HWPT replaced, or null when nothing changed. */
function doReplace(idev: IommufdDevice, hwpt: HwptPaging): HwptPaging | null {
  const igroup = idev.igroup!;
  const attach = igroup.attach;
  if (!attach) fail('EINVAL');
  const old = attach.hwpt;
  if (!attach.devices.has(idev.id)) fail('EINVAL');
  if (hwpt === old) return null;
  const attachResv = !idev.isNoiommu;
  const devices = [...attach.devices.values()];
  const newIopt = hwpt.ioas.iopt;
  if (attachResv && old.ioas !== hwpt.ioas) {
    try {
      for (const d of devices) newIopt.enforceReservedRegions(d.dev.iommu!.reservedRegions, d);
    } catch (e) {
      for (const d of devices) newIopt.removeReserved(d);
      throw e;
    }
  }
  if (!idev.isNoiommu && !domainAccepts(hwpt.domain!, idev)) {
    if (attachResv) for (const d of devices) newIopt.removeReserved(d);
    fail('EINVAL');
  }
  if (old.ioas !== hwpt.ioas) for (const d of devices) old.ioas.iopt.removeReserved(d);
  attach.hwpt = hwpt;
  hwpt.users += devices.length;
  old.users -= devices.length - 1;
  return old;
}

type AttachFn = (idev: IommufdDevice, hwpt: HwptPaging) => HwptPaging | null;

const doAttach: AttachFn = (idev, hwpt) => {
  hwptAttach(hwpt, idev);
  return null;
};

/**
 * iommufd_hwpt_paging_alloc: a new paging HWPT on `ioas` for `idev`, its domain loaded with the
 * IOAS (and, with immediateAttach, the device attached). The HWPT's ID stays reserved until the
 * caller finalizes it; on failure the ID is released and nothing is left behind.
 *
 * @category Model
 */
export function hwptPagingAlloc(
  ctx: AttachContext,
  ioas: IoasObject,
  idev: IommufdDevice,
  flags: number,
  immediateAttach: boolean,
  hasUserData: boolean,
): HwptPaging {
  const validFlags = IOMMU_HWPT_ALLOC_NEST_PARENT | IOMMU_HWPT_ALLOC_DIRTY_TRACKING | IOMMU_HWPT_FAULT_ID_VALID | IOMMU_HWPT_ALLOC_PASID;
  if (flags & ~validFlags) fail('EOPNOTSUPP');
  // No modelled device has IOMMU_CAP_DIRTY_TRACKING.
  if (flags & IOMMU_HWPT_ALLOC_DIRTY_TRACKING) fail('EOPNOTSUPP');
  if (flags & IOMMU_HWPT_FAULT_ID_VALID && flags & IOMMU_HWPT_ALLOC_NEST_PARENT) fail('EOPNOTSUPP');
  const hwpt = new HwptPaging(ioas, null, (flags & IOMMU_HWPT_ALLOC_NEST_PARENT) !== 0);
  ctx.objects.reserve(hwpt);
  // Pairs with HwptPaging.destroy: the HWPT keeps its IOAS alive.
  ioas.users++;
  let attached = false;
  try {
    // kzalloc of the domain.
    ctx.host.faults.point('iommu.domain-alloc');
    hwpt.domain = allocDomainFor(idev, flags & ~IOMMU_HWPT_FAULT_ID_VALID, hasUserData);
    if (immediateAttach) {
      hwptAttach(hwpt, idev);
      attached = true;
    }
    hwpt.load();
  } catch (e) {
    if (attached) {
      hwptDetach(idev);
      hwpt.users--;
    }
    ctx.objects.abortAndDestroy(hwpt);
    throw e;
  }
  return hwpt;
}

/**
 * iommufd_device_auto_get_domain: reuse an automatic HWPT of the IOAS that accepts the device
 * (EINVAL from one means "incompatible, try the next"), else create one. Returns the HWPT id and
 * the HWPT a replace displaced.
 */
function autoGetDomain(
  ctx: AttachContext,
  idev: IommufdDevice,
  ioas: IoasObject,
  fn: AttachFn,
  immediate: boolean,
): { ptId: number; displaced: HwptPaging | null } {
  for (const hwpt of [...ioas.hwpts]) {
    if (!hwpt.autoDomain) continue;
    try {
      const displaced = fn(idev, hwpt);
      return { ptId: hwpt.id, displaced };
    } catch (e) {
      if (e instanceof KernelError && e.code === 'EINVAL') continue;
      throw e;
    }
  }
  const hwpt = hwptPagingAlloc(ctx, ioas, idev, 0, immediate, false);
  let displaced: HwptPaging | null = null;
  if (!immediate) {
    try {
      displaced = fn(idev, hwpt);
    } catch (e) {
      ctx.objects.abortAndDestroy(hwpt);
      throw e;
    }
  }
  hwpt.autoDomain = true;
  ctx.objects.finalize(hwpt);
  return { ptId: hwpt.id, displaced };
}

/** iommufd_device_change_pt. */
function changePt(ctx: AttachContext, idev: IommufdDevice, ptId: number, fn: AttachFn, immediate: boolean): number {
  const pt = ctx.objects.get(ptId);
  let result: { ptId: number; displaced: HwptPaging | null };
  if (pt.type === 'hwpt-paging') result = { ptId, displaced: fn(idev, pt as HwptPaging) };
  else if (pt.type === 'ioas') result = autoGetDomain(ctx, idev, pt as IoasObject, fn, immediate);
  else fail('EINVAL');
  if (result.displaced) hwptPut(ctx, result.displaced);
  return result.ptId;
}

/**
 * iommufd_device_attach: returns the HWPT id the device is now attached to.
 *
 * @category Model
 */
export function deviceAttach(ctx: AttachContext, idev: IommufdDevice, ptId: number): number {
  const id = changePt(ctx, idev, ptId, doAttach, true);
  idev.users++;
  return id;
}

/**
 * iommufd_device_replace.
 *
 * @category Model
 */
export function deviceReplace(ctx: AttachContext, idev: IommufdDevice, ptId: number): number {
  return changePt(ctx, idev, ptId, doReplace, false);
}

/**
 * iommufd_device_detach (a no-op when not attached).
 *
 * @category Model
 */
export function deviceDetach(ctx: AttachContext, idev: IommufdDevice): void {
  const hwpt = hwptDetach(idev);
  if (!hwpt) return;
  hwptPut(ctx, hwpt);
  idev.users--;
}
