/**
 * The legacy VFIO container (drivers/vfio/container.c): /dev/vfio/vfio, groups are attached to
 * it, then an IOMMU model is chosen with VFIO_SET_IOMMU. Registered IOMMU drivers in this model:
 * the noiommu driver (CONFIG_VFIO_NOIOMMU) — it offers VFIO_NOIOMMU_IOMMU only while the noiommu
 * module parameter is on and answers ENOTTY to every DMA-mapping ioctl, since without an IOMMU
 * there is nothing to map. The type1 driver is not part of the modelled kernel build (as with
 * CONFIG_VFIO_IOMMU_TYPE1=n): asking for VFIO_TYPE1*_IOMMU answers 0 / ENODEV.
 *
 * Noiommu and IOMMU groups cannot share a container (EPERM); a container without an IOMMU
 * model answers EINVAL to everything but the three core ioctls.
 */
import { VfioError } from '../../sys/errors';
import { VFIO_API_VERSION, VFIO_CHECK_EXTENSION, VFIO_GET_API_VERSION, VFIO_NOIOMMU_IOMMU, VFIO_SET_IOMMU } from '../../uapi/vfio';
import { ioctlName } from '../../uapi/ioctl';
import type { OpenFile, SyscallContext } from '../open-file';
import type { VfioGroup } from './group';
import type { VfioSubsystem } from './subsystem';

interface IommuDriver {
  readonly name: string;
  /** The driver's VFIO_CHECK_EXTENSION answer. */
  checkExtension(arg: number): number;
  /** .open: EINVAL for a type the driver does not implement, EPERM without privilege. */
  open(arg: number): void;
  /** Container ioctls passed through once the driver is set. */
  ioctl(request: number): number;
}

export class VfioContainer {
  readonly groups: VfioGroup[] = [];
  iommuDriver: IommuDriver | undefined;
  noiommu = false;

  constructor(readonly sys: VfioSubsystem) {}

  /** The registered IOMMU drivers (vfio.iommu_drivers_list). */
  private drivers(): IommuDriver[] {
    const sys = this.sys;
    if (!sys.env.kconfig.vfioNoiommu) return [];
    const noiommuDriver: IommuDriver = {
      name: 'vfio-noiommu',
      checkExtension: (arg) => (sys.noiommuEnabled() && arg === VFIO_NOIOMMU_IOMMU ? 1 : 0),
      open: (arg) => {
        if (arg !== VFIO_NOIOMMU_IOMMU) throw VfioError.of('EINVAL', { syscall: 'ioctl', ioctl: 'VFIO_SET_IOMMU' });
        if (!sys.env.capabilities().sysRawio) throw VfioError.of('EPERM', { syscall: 'ioctl', ioctl: 'VFIO_SET_IOMMU', context: 'the noiommu IOMMU model needs CAP_SYS_RAWIO' });
      },
      ioctl: (request) => {
        throw VfioError.of('ENOTTY', { syscall: 'ioctl', ioctl: ioctlName(request, 'vfio-container'), context: 'the noiommu IOMMU model has no DMA mapping: use physical addresses (/proc/self/pagemap)' });
      },
    };
    return [noiommuDriver];
  }

  /** vfio_iommu_driver_allowed: a noiommu container only takes the noiommu driver and vice versa. */
  private allowed(driver: IommuDriver): boolean {
    return this.noiommu === (driver.name === 'vfio-noiommu');
  }

  ioctl(request: number, arg: Uint8Array | number | null): number {
    switch (request) {
      case VFIO_GET_API_VERSION.number: return VFIO_API_VERSION;
      case VFIO_CHECK_EXTENSION.number: return this.checkExtension(intArg(arg));
      case VFIO_SET_IOMMU.number: return this.setIommu(intArg(arg));
      default:
        if (this.iommuDriver) return this.iommuDriver.ioctl(request);
        throw VfioError.of('EINVAL', { syscall: 'ioctl', ioctl: ioctlName(request), context: 'the container has no IOMMU model set yet (VFIO_SET_IOMMU)' });
    }
  }

  /** vfio_container_ioctl_check_extension. */
  private checkExtension(arg: number): number {
    if (this.iommuDriver) return this.iommuDriver.checkExtension(arg);
    for (const d of this.drivers()) {
      if (this.groups.length && !this.allowed(d)) continue;
      const r = d.checkExtension(arg);
      if (r > 0) return r;
    }
    return 0;
  }

  /** vfio_ioctl_set_iommu. */
  private setIommu(arg: number): number {
    if (this.groups.length === 0 || this.iommuDriver) {
      throw VfioError.of('EINVAL', { syscall: 'ioctl', ioctl: 'VFIO_SET_IOMMU', context: this.iommuDriver ? 'an IOMMU model is already set' : 'attach a group first (VFIO_GROUP_SET_CONTAINER)' });
    }
    let error: VfioError = VfioError.of('ENODEV', { syscall: 'ioctl', ioctl: 'VFIO_SET_IOMMU', context: `no IOMMU driver offers type ${arg}` });
    for (const d of this.drivers()) {
      if (!this.allowed(d)) continue;
      if (d.checkExtension(arg) <= 0) continue;
      try {
        d.open(arg);
      } catch (e) {
        if (!(e instanceof VfioError)) throw e;
        error = e;
        continue;
      }
      this.iommuDriver = d;
      return 0;
    }
    throw error;
  }

  /** vfio_container_attach_group. */
  attachGroup(group: VfioGroup): void {
    if (group.type === 'noiommu' && !this.sys.env.capabilities().sysRawio) {
      throw VfioError.of('EPERM', { syscall: 'ioctl', ioctl: 'VFIO_GROUP_SET_CONTAINER', context: 'a noiommu group needs CAP_SYS_RAWIO' });
    }
    if (this.groups.length && this.noiommu !== (group.type === 'noiommu')) {
      throw VfioError.of('EPERM', { syscall: 'ioctl', ioctl: 'VFIO_GROUP_SET_CONTAINER', context: 'noiommu and IOMMU groups cannot share a container' });
    }
    if (group.type === 'iommu') this.sys.claimDmaOwner(group, this);
    group.container = this;
    group.containerUsers = 1;
    this.noiommu = group.type === 'noiommu';
    this.groups.push(group);
  }

  /** vfio_group_detach_container: the last group takes the IOMMU model with it. */
  detachGroup(group: VfioGroup): void {
    if (group.type === 'iommu') this.sys.releaseDmaOwner(group, this);
    group.container = undefined;
    group.containerUsers = 0;
    this.groups.splice(this.groups.indexOf(group), 1);
    if (this.iommuDriver && this.groups.length === 0) this.iommuDriver = undefined;
  }
}

export class VfioContainerFile implements OpenFile {
  readonly kind = 'vfio-container';
  constructor(readonly container: VfioContainer) {}

  ioctl(request: number, arg: Uint8Array | number | null, _ctx: SyscallContext): number {
    return this.container.ioctl(request, arg);
  }
}

function intArg(arg: Uint8Array | number | null): number {
  if (typeof arg === 'number') return arg >>> 0;
  return 0;
}
