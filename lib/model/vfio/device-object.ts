/**
 * A registered VFIO device (struct vfio_device, drivers/vfio/vfio_main.c): its index and name
 * (vfioN, or noiommu-vfioN for a cdev-capable noiommu device), its group if the group interface
 * exists, and the open/close protocol shared by the cdev and group paths (vfio_df_open,
 * vfio_df_device_first_open, vfio_df_device_last_close). The cdev path allows one open at a
 * time, the group path many.
 */
import { fail } from '../errno';
import type { PciSlot } from '../pci/host';
import type { VfioPciCoreDevice } from './pci-core';
import type { IommufdBoundDevice, IommufdContextPort } from './iommufd-port';
import type { VfioEnvironment, VfioGroupType } from './environment';

/**
 * What a device uses of its VFIO group (group-object.ts's VfioGroupObject), named here because
 * the group lists its devices and creates their files: the two cannot import each other.
 */
export interface DeviceGroup {
  readonly type: VfioGroupType;
  readonly devices: VfioDeviceObject[];
  id(): number;
  useContainer(): void;
  unuseContainer(): void;
  blockForCdev(): void;
  unblockForCdev(): void;
}

export interface DeviceFileState {
  /** The group this fd came from (GET_DEVICE_FD), or undefined for a cdev fd. */
  readonly group: DeviceGroup | undefined;
  iommufd: IommufdContextPort | undefined;
  devid: number;
}

/** What a device uses of the VFIO core (subsystem.ts's VfioSubsystem). */
export interface DeviceCore {
  readonly env: VfioEnvironment;
}

export class VfioDeviceObject {
  openCount = 0;
  registered = true;
  /** device->cdev_opened. */
  cdevOpened = false;
  group: DeviceGroup | undefined;
  bound: IommufdBoundDevice | undefined;
  /** The iommufd context `bound` belongs to. */
  boundTo: IommufdContextPort | undefined;
  attached = false;
  /** Open fds referencing the device (the registration refcount). */
  readonly fileRefs = new Set<object>();
  private readonly releaseWaiters: (() => void)[] = [];

  constructor(
    readonly index: number,
    readonly name: string,
    /** device->noiommu: set when the iommufd noiommu cdev path applies. */
    readonly noiommuFlag: boolean,
    readonly slot: PciSlot,
    readonly core: VfioPciCoreDevice,
    readonly sys: DeviceCore,
    private readonly hooks: {
      /** Whether an IOMMU translates the device. */
      readonly hasIommu: boolean;
      readonly iommuGroupId: () => number;
      /** Re-point the device's DMA after attach/detach. */
      readonly updateDma: (device: VfioDeviceObject) => void;
    },
  ) {}

  /** An fd of the device is gone; the last one completes the registration (device->comp). */
  dropFileRef(ref: object): void {
    if (!this.fileRefs.delete(ref) || this.fileRefs.size > 0) return;
    for (const waiter of this.releaseWaiters.splice(0)) waiter();
  }

  /** Runs `waiter` once no fd references the device (at once if none does). */
  whenReleased(waiter: () => void): void {
    if (this.fileRefs.size === 0) waiter();
    else this.releaseWaiters.push(waiter);
  }

  /** vfio_device_is_noiommu. */
  get isNoiommu(): boolean {
    return this.group?.type === 'noiommu' || this.noiommuFlag;
  }

  get hasIommu(): boolean {
    return this.hooks.hasIommu;
  }

  /** vfio_df_open. */
  open(df: DeviceFileState): void {
    if (this.openCount !== 0 && !df.group) {
      fail('EINVAL', 'the device is already open (a cdev device can be opened once)');
    }
    this.openCount++;
    if (this.openCount === 1) {
      try {
        this.firstOpen(df);
      } catch (e) {
        this.openCount--;
        throw e;
      }
    }
  }

  /** vfio_df_close. */
  close(df: DeviceFileState): void {
    if (this.openCount === 0) return;
    if (this.openCount === 1) this.lastClose(df);
    this.openCount--;
  }

  private firstOpen(df: DeviceFileState): void {
    if (df.iommufd) this.iommufdBind(df);
    else this.group!.useContainer();
    try {
      this.core.enable();
    } catch (e) {
      if (df.iommufd) this.iommufdUnbind(df);
      else this.group!.unuseContainer();
      throw e;
    }
  }

  private lastClose(df: DeviceFileState): void {
    this.core.disable();
    if (df.iommufd) this.iommufdUnbind(df);
    else this.group!.unuseContainer();
  }

  /** vfio_df_iommufd_bind: a noiommu group opened through iommufd compat binds nothing. */
  private iommufdBind(df: DeviceFileState): void {
    if (df.group && this.isNoiommu) return;
    this.bound = df.iommufd!.bind({ name: this.slot.name, hasIommu: this.hooks.hasIommu, iommuGroup: this.hooks.iommuGroupId() });
    this.boundTo = df.iommufd;
    df.devid = this.bound.id;
  }

  /** vfio_df_iommufd_unbind / vfio_iommufd_physical_unbind. */
  private iommufdUnbind(df: DeviceFileState): void {
    if (df.group && this.isNoiommu) return;
    if (!this.bound) return;
    if (this.attached) this.bound.detach();
    this.attached = false;
    this.bound.unbind();
    this.bound = undefined;
    this.boundTo = undefined;
    this.hooks.updateDma(this);
  }

  /** vfio_iommufd_physical_attach_ioas: attach, or replace when already attached. */
  attachIoas(ptId: number): number {
    if (!this.bound) fail('EINVAL', 'the device is not bound to an iommufd');
    const out = this.attached ? this.bound.replace(ptId) : this.bound.attach(ptId);
    this.attached = true;
    this.hooks.updateDma(this);
    return out;
  }

  /** vfio_iommufd_physical_detach_ioas. */
  detachIoas(): void {
    if (!this.bound || !this.attached) return;
    this.bound.detach();
    this.attached = false;
    this.hooks.updateDma(this);
  }
}
