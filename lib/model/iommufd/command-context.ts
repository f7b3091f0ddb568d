/**
 * The iommufd context as its ioctl handlers (commands.ts, vfio-compat.ts) see it, and the kernel
 * services it runs on: declared apart from the context (iommufd-ctx.ts), which dispatches to
 * those handlers, so that the handlers and the context do not import each other (the part of
 * iommufd_private.h that both sides include).
 */
import type { AddressSpace } from '../memory/address-space';
import type { LockedMemory } from '../memory/locked-memory';
import type { PhysicalMemory } from '../memory/physical-memory';
import type { OpenFile } from '../open-file';
import type { Profile } from '../profile';
import type { DmaOwnership } from './dma-ownership';
import type { HwptPaging } from './hw-pagetable';
import type { IoasObject } from './ioas-object';
import type { AttachContext, IommufdDevice } from './iommufd-device';
import type { ObjectTable } from './object-table';
import type { AccountMode, PinEnvironment } from './pinned-pages';

/** Kernel services an iommufd context uses. */
export interface IommufdHost extends PinEnvironment {
  readonly profile: Profile;
  readonly space: AddressSpace;
  readonly memory: PhysicalMemory;
  readonly locked: LockedMemory;
  readonly dmaOwnership: DmaOwnership;
  /** fget: the open file behind an fd of the calling process (EBADF). */
  fileOf(fd: number): OpenFile;
  /** fd_install of a new file; returns the fd. */
  installFile(file: OpenFile, path: string): number;
}

/**
 * What an ioctl handler may use of the struct iommufd_ctx it runs on (IommufdContext is the one):
 * the open file itself (a fault queue holds it), and what attaching a device needs.
 */
export interface CommandContext extends OpenFile, AttachContext {
  readonly host: IommufdHost;
  readonly objects: ObjectTable;
  /** ictx->account_mode. */
  accountMode: AccountMode;
  /** ictx->vfio_ioas: the IOAS the VFIO compatibility ioctls act on. */
  vfioIoas: IoasObject | null;
  /** ictx->no_iommu_mode (VFIO compatibility). */
  noIommuMode: boolean;
  /**
   * The context stands in for vfio_iommu_type1 (the legacy container's private context): its
   * MAP_DMA follows VM_PFNMAP ranges as vaddr_get_pfns does, where iommufd's own compat refuses
   * them (EFAULT from pin_user_pages).
   */
  followsPfnmap: boolean;
  /** Whether this kernel has CONFIG_IOMMUFD_NOIOMMU (7.3's noiommu support). */
  readonly hasIommufdNoiommu: boolean;
  /** The last iommufd command number this kernel has; higher numbers go to VFIO compatibility. */
  readonly commandTableEnd: number;
  /** CAP_SYS_RAWIO of the calling process. */
  readonly sysRawio: boolean;
  allocIoas(): IoasObject;
  getIoas(id: number): IoasObject;
  getDevice(id: number): IommufdDevice;
  getHwpt(id: number): HwptPaging;
  destroyObject(id: number): void;
  compatIoasId(): number;
}
