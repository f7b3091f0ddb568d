/**
 * One open /dev/iommu (main.c: struct iommufd_ctx): the object table, the RLIMIT accounting mode,
 * the VFIO-compatibility IOAS, and the per-IOMMU-group attach state; the file's ioctl entry point
 * dispatches exactly like iommufd_fops_ioctl (see commands.ts).
 *
 * Device-facing API — what the VFIO device side (device cdev BIND_IOMMUFD / ATTACH / DETACH, the
 * legacy group/container path) and device models call, with the kernel's errnos as KernelError:
 *
 *   bindDevice(dev)             iommufd_device_bind: returns the device object ID (same ID space
 *                               as IOAS/HWPT). EPERM if another owner holds the IOMMU group.
 *   unbindDevice(devId)         vfio_iommufd_physical_unbind: detach if attached, then unbind.
 *   attachDevice(devId, ptId)   iommufd_device_attach: ptId is an IOAS (automatic domain) or a
 *                               paging HWPT; returns the HWPT ID now in use.
 *   replaceDevice(devId, ptId)  iommufd_device_replace (device must be attached: else EINVAL).
 *   detachDevice(devId)         iommufd_device_detach (no-op when not attached).
 *   translate(devId, iova, len, write)
 *                               a DMA by an IOMMU-translated device: physical segments, or an
 *                               IommuFault ('unmapped-iova' | 'permission' | 'blocked'). noiommu
 *                               devices do not translate: they DMA by physical address straight
 *                               into kernel.memory (dmaRead/dmaWrite).
 *   compatIoasCreate(), compatIoasId(), compatSetNoIommu()
 *                               the iommufd_vfio_compat_* helpers the VFIO group path uses.
 */
import { U64_MAX } from '../../uapi/codec';
import { fail } from '../errno';
import type { OpenFile, SyscallContext } from '../open-file';
import type { CommandContext, IommufdHost } from './command-context';
import { hasIommufdNoiommu } from '../profile';
import { commandTableEnd, dispatchIoctl } from './commands';
import type { BindableDevice } from './iommufd-device';
import { deviceAttach, deviceDetach, deviceReplace, Igroup, IommufdDevice } from './iommufd-device';
import type { DmaOwnership } from './dma-ownership';
import type { HwptPaging } from './hw-pagetable';
import { IoasObject } from './ioas-object';
import { IoPagetable, type PhysSegment } from './io-pagetable';
import { ObjectTable } from './object-table';
import type { AccountMode } from './pinned-pages';

/**
 * A DMA an IOMMU refused (what a DMAR fault records).
 *
 * @category Model
 */
export class IommuFault extends Error {
  constructor(
    /** Why: no mapping at the IOVA, a direction the mapping does not allow, or no domain attached. */
    readonly reason: 'unmapped-iova' | 'permission' | 'blocked',
    /** The IOVA the device used. */
    readonly iova: bigint,
    /** Bytes the transaction covered. */
    readonly length: number,
    /** Device read (from memory) or write (to memory). */
    readonly direction: 'read' | 'write',
  ) {
    super(`IOMMU fault: DMA ${direction} of ${length} bytes at IOVA 0x${iova.toString(16)}: ${reason}`);
    this.name = 'IommuFault';
  }
}

/**
 * The model's iommufd: the open file behind an fd of /dev/iommu (struct iommufd_ctx). Tests
 * reach it with `kernel.iommufdOf(fd)` to inspect its objects and translations.
 *
 * @category Model
 */
export class IommufdContext implements OpenFile, CommandContext {
  readonly kind = 'iommufd';
  /** ictx->objects: every IOAS, HWPT and device object by ID. */
  readonly objects: ObjectTable;
  /** ictx->account_mode: 'user' unless opened as /dev/vfio/vfio or changed by IOMMU_OPTION. */
  accountMode: AccountMode;
  /** ictx->vfio_ioas: the IOAS the VFIO compatibility ioctls act on. */
  vfioIoas: IoasObject | null = null;
  /** ictx->no_iommu_mode (VFIO compatibility). */
  noIommuMode = false;
  /** True for the legacy type1 container's private context only: MAP_DMA follows VM_PFNMAP ranges. */
  followsPfnmap = false;
  private readonly igroups = new Map<number, Igroup>();
  private released = false;

  constructor(
    /** The model kernel's parts it needs: memory, faults, the profile. */
    readonly host: IommufdHost,
    /** Opened through /dev/vfio/vfio (IOMMUFD_VFIO_CONTAINER): VFIO's mm accounting by default. */
    readonly asVfioContainer = false,
  ) {
    this.accountMode = asVfioContainer ? 'mm' : 'user';
    this.objects = new ObjectTable(host.faults);
    this.hasIommufdNoiommu = hasIommufdNoiommu(host.profile);
    this.commandTableEnd = commandTableEnd(host.profile.kernel);
  }

  /** The kernel's IOMMU group DMA ownership, which device binds claim. */
  get dmaOwnership(): DmaOwnership {
    return this.host.dmaOwnership;
  }

  /** Whether this kernel has CONFIG_IOMMUFD_NOIOMMU (7.3's noiommu support). */
  readonly hasIommufdNoiommu: boolean;
  /** The last iommufd command number this kernel has; higher numbers go to VFIO compatibility. */
  readonly commandTableEnd: number;
  /**
   * CAP_SYS_RAWIO of the calling process, asked at each call as iommufd_ioas_noiommu_get_pa's
   * capable() does: a process given this iommufd by one that has the capability does not inherit it.
   */
  get sysRawio(): boolean {
    return this.host.profile.process.capabilities.sysRawio;
  }

  /** iommufd_fops_ioctl: dispatches IOMMU_* commands (and the VFIO compatibility ones). */
  ioctl(request: number, arg: Uint8Array | number | null, _ctx: SyscallContext): number {
    return dispatchIoctl(this, request, arg);
  }

  /** iommufd_fops_release: destroys every object, leaves first. */
  release(): void {
    if (this.released) return;
    this.released = true;
    for (const obj of this.objects.objects()) {
      if (obj.type === 'device') {
        const idev = obj as IommufdDevice;
        // The VFIO side unbinds its devices when the iommufd goes away; model that here.
        deviceDetach(this, idev);
        if (idev.users > 1) idev.users--;
      }
    }
    this.objects.destroyAll();
  }

  // ---- objects ------------------------------------------------------------------------------

  /** iommufd_ioas_alloc: a new IOAS with its ID reserved (the caller finalizes or aborts). */
  allocIoas(): IoasObject {
    const ps = BigInt(this.host.memory.pageSize);
    const thp = this.host.profile.config.TRANSPARENT_HUGEPAGE ? 2n << 20n : ps;
    const ioas = new IoasObject(new IoPagetable(ps, thp, this.host.faults), (gone) => {
      if (this.vfioIoas === gone) this.vfioIoas = null;
    });
    this.objects.reserve(ioas);
    return ioas;
  }

  /** The IOAS with object ID `id` (ENOENT when there is none or it is another type of object). */
  getIoas(id: number): IoasObject {
    return this.objects.get<IoasObject>(id, 'ioas');
  }

  /** iommufd_get_device: the bound device with ID `id` (a fault injection site). */
  getDevice(id: number): IommufdDevice {
    return this.objects.get<IommufdDevice>(id, 'device');
  }

  /**
   * The device object behind a VFIO binding. The kernel's VFIO side holds the iommufd_device
   * itself and never looks it up, so unlike getDevice (iommufd_get_device) this is no fault
   * injection site: closing a device fd cannot fail.
   */
  private boundDevice(id: number): IommufdDevice {
    const obj = this.objects.lookup(id);
    if (!obj || obj.type !== 'device') fail('ENOENT');
    return obj as IommufdDevice;
  }

  /** The paging HWPT with object ID `id`. */
  getHwpt(id: number): HwptPaging {
    return this.objects.get<HwptPaging>(id, 'hwpt-paging');
  }

  /** IOMMU_DESTROY. */
  destroyObject(id: number): void {
    this.objects.destroyById(id);
  }

  // ---- device-facing API --------------------------------------------------------------------

  /** iommufd_device_bind. */
  bindDevice(dev: BindableDevice): number {
    const idev = new IommufdDevice(dev, (d) => this.releaseDevice(d));
    this.objects.reserve(idev);
    try {
      if (dev.iommu === null) {
        idev.igroup = new Igroup(null);
        idev.igroup.refs = 1;
      } else {
        let igroup = this.igroups.get(dev.iommuGroup);
        const fresh = !igroup;
        if (!igroup) igroup = new Igroup(dev.iommuGroup);
        this.host.dmaOwnership.claim(dev.iommuGroup, this);
        if (fresh) this.igroups.set(dev.iommuGroup, igroup);
        igroup.refs++;
        idev.igroup = igroup;
      }
    } catch (e) {
      this.objects.abort(idev);
      throw e;
    }
    // The binding driver holds a user reference until unbind.
    idev.users++;
    this.objects.finalize(idev);
    return idev.id;
  }

  private releaseDevice(idev: IommufdDevice): void {
    const igroup = idev.igroup!;
    if (!idev.isNoiommu) this.host.dmaOwnership.release(idev.dev.iommuGroup, this);
    if (--igroup.refs === 0 && igroup.group !== null) this.igroups.delete(igroup.group);
    idev.igroup = null;
  }

  /** vfio_iommufd_physical_unbind: detach, then iommufd_device_unbind. */
  unbindDevice(devId: number): void {
    const idev = this.boundDevice(devId);
    deviceDetach(this, idev);
    this.objects.putAndTryDestroy(idev);
  }

  /** iommufd_device_attach: returns the ID of the HWPT the device now uses. */
  attachDevice(devId: number, ptId: number): number {
    return deviceAttach(this, this.boundDevice(devId), ptId);
  }

  /** iommufd_device_replace: returns the ID of the HWPT the device now uses. */
  replaceDevice(devId: number, ptId: number): number {
    return deviceReplace(this, this.boundDevice(devId), ptId);
  }

  /** iommufd_device_detach. */
  detachDevice(devId: number): void {
    deviceDetach(this, this.boundDevice(devId));
  }

  /** The HWPT a device is attached through, if any. */
  attachedHwpt(devId: number): HwptPaging | null {
    return this.boundDevice(devId).igroup?.attach?.hwpt ?? null;
  }

  /** Whether the bound device sits behind no IOMMU (7.3's noiommu cdev). */
  isNoiommuDevice(devId: number): boolean {
    return this.boundDevice(devId).isNoiommu;
  }

  /**
   * DMA translation for an IOMMU-translated device: the physical pieces of [iova, iova+length).
   * Throws IommuFault when the IOMMU would block it.
   */
  translate(devId: number, iova: bigint, length: number, write: boolean): PhysSegment[] {
    const idev = this.boundDevice(devId);
    const direction = write ? 'write' : 'read';
    if (idev.isNoiommu) {
      throw new Error(`model: ${idev.dev.name} has no IOMMU; its DMA addresses are physical (use kernel.memory)`);
    }
    const hwpt = idev.igroup?.attach?.hwpt;
    if (!hwpt) throw new IommuFault('blocked', iova, length, direction);
    if (iova + BigInt(length) - 1n > U64_MAX) throw new IommuFault('unmapped-iova', iova, length, direction);
    const result = hwpt.ioas.iopt.translate(iova, length, write);
    if (typeof result === 'string') throw new IommuFault(result, iova, length, direction);
    return result;
  }

  // ---- VFIO compatibility helpers (vfio_compat.c) -------------------------------------------

  /** iommufd_vfio_compat_ioas_create. */
  compatIoasCreate(): void {
    const ioas = this.allocIoas();
    if (this.noIommuMode) {
      this.objects.abort(ioas);
      fail('EINVAL');
    }
    if (this.vfioIoas) {
      this.objects.abort(ioas);
      return;
    }
    this.vfioIoas = ioas;
    this.objects.finalize(ioas);
  }

  /** iommufd_vfio_compat_ioas_get_id (ENODEV without a compat IOAS). */
  compatIoasId(): number {
    if (!this.vfioIoas) fail('ENODEV');
    return this.vfioIoas.id;
  }

  /** iommufd_vfio_compat_set_no_iommu. */
  compatSetNoIommu(): void {
    if (this.vfioIoas) fail('EINVAL');
    this.noIommuMode = true;
  }
}
