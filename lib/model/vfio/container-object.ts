/**
 * The legacy VFIO container (drivers/vfio/container.c): /dev/vfio/vfio, groups are attached to
 * it, then an IOMMU model is chosen with VFIO_SET_IOMMU. Two IOMMU drivers are registered, as in
 * an x86 kernel with CONFIG_VFIO_CONTAINER (which selects VFIO_IOMMU_TYPE1):
 *
 *   - vfio-noiommu (CONFIG_VFIO_NOIOMMU): offers VFIO_NOIOMMU_IOMMU only while the noiommu module
 *     parameter is on, needs CAP_SYS_RAWIO, and answers ENOTTY to every DMA-mapping ioctl, since
 *     without an IOMMU there is nothing to map;
 *   - vfio-iommu-type1: VFIO_TYPE1_IOMMU / VFIO_TYPE1v2_IOMMU for groups behind an IOMMU. The
 *     model runs it on a private iommufd context and its VFIO-compatibility ioctls (the code
 *     iommufd uses to stand in for type1, vfio_compat.c): the group's functions are bound and
 *     attached to that context's IOAS, MAP_DMA/UNMAP_DMA/IOMMU_GET_INFO are answered by it. The
 *     answers are iommufd-compat's where type1 differs in detail (GET_INFO capability order, no
 *     migration capability, alignment rules of MAP_DMA) — except for BAR memory, which MAP_DMA
 *     maps by following its VM_PFNMAP PFNs as vfio_iommu_type1 does, where iommufd answers EFAULT.
 *
 * Noiommu and IOMMU groups cannot share a container (EPERM); a container without an IOMMU
 * model answers EINVAL to everything but the three core ioctls.
 */
import { KernelError, fail } from '../errno';
import {
  VFIO_API_VERSION,
  VFIO_CHECK_EXTENSION,
  VFIO_GET_API_VERSION,
  VFIO_NOIOMMU_IOMMU,
  VFIO_SET_IOMMU,
  VFIO_TYPE1_IOMMU,
  VFIO_TYPE1v2_IOMMU,
  VFIO_UNMAP_ALL,
  VFIO_UPDATE_VADDR,
} from '../../uapi/vfio';
import type { OpenFile, SyscallContext } from '../open-file';
import { IOMMU_BLOCKED, type PciSlot } from '../pci/host';
import type { IommuGroup } from './iommu-groups';
import type { IommufdBoundDevice, IommufdContextPort } from './iommufd-port';
import type { VfioEnvironment, VfioGroupType } from './environment';

interface IommuDriver {
  readonly name: 'vfio-noiommu' | 'vfio-iommu-type1';
  /** The driver's VFIO_CHECK_EXTENSION answer (with the container's data once it is set). */
  checkExtension(arg: number): number;
  /** .open: EINVAL for a type the driver does not implement, EPERM without privilege. */
  open(arg: number): void;
  attachGroup(group: ContainerGroup): void;
  detachGroup(group: ContainerGroup): void;
  /** Container ioctls passed through once the driver is set. */
  ioctl(request: number, arg: Uint8Array | number | null): number;
  release(): void;
}

/**
 * What a container uses of the groups set into it (group-object.ts's ContainerGroup), named here
 * because a group points back at its container: the two cannot import each other.
 */
export interface ContainerGroup {
  readonly type: VfioGroupType;
  readonly iommuGroup: IommuGroup | undefined;
  container: VfioContainerObject | undefined;
  containerUsers: number;
  id(): number;
}

/** What a container uses of the VFIO core (subsystem.ts's VfioSubsystem). */
export interface ContainerCore {
  readonly env: VfioEnvironment;
  noiommuEnabled(): boolean;
  claimDmaOwner(group: ContainerGroup, owner: object): void;
  releaseDmaOwner(group: ContainerGroup, owner: object): void;
}

export class VfioContainerObject {
  readonly groups: ContainerGroup[] = [];
  iommuDriver: IommuDriver | undefined;
  noiommu = false;
  /**
   * The private iommufd context behind type1. It is also the DMA owner of the container's IOMMU
   * groups (iommu_group_claim_dma_owner), so binding the group's functions to it nests.
   */
  private type1Context: { file: OpenFile; port: IommufdContextPort } | undefined;

  constructor(readonly sys: ContainerCore) {}

  /** The registered IOMMU drivers (vfio.iommu_drivers_list). */
  private drivers(): IommuDriver[] {
    const out: IommuDriver[] = [];
    if (this.sys.env.kconfig.vfioNoiommu) out.push(this.noiommuDriver());
    if (this.sys.env.newIommufd && this.sys.env.iommufd) out.push(this.type1Driver(false));
    return out;
  }

  private noiommuDriver(): IommuDriver {
    const sys = this.sys;
    return {
      name: 'vfio-noiommu',
      checkExtension: (arg) => (sys.noiommuEnabled() && arg === VFIO_NOIOMMU_IOMMU ? 1 : 0),
      open: (arg) => {
        if (arg !== VFIO_NOIOMMU_IOMMU) fail('EINVAL');
        if (!sys.env.capabilities().sysRawio) fail('EPERM', 'the noiommu IOMMU model needs CAP_SYS_RAWIO');
      },
      attachGroup: () => undefined,
      detachGroup: () => undefined,
      ioctl: () => {
        fail('ENOTTY', 'the noiommu IOMMU model has no DMA mapping: use physical addresses (/proc/self/pagemap)');
      },
      release: () => undefined,
    };
  }

  /** vfio_iommu_type1: `opened` once VFIO_SET_IOMMU chose it (its iommu data exists). */
  private type1Driver(opened: boolean): IommuDriver {
    const bindings = new Map<PciSlot, IommufdBoundDevice>();
    const driver: IommuDriver = {
      name: 'vfio-iommu-type1',
      checkExtension: (arg) => {
        switch (arg) {
          case VFIO_TYPE1_IOMMU:
          case VFIO_TYPE1v2_IOMMU:
          case VFIO_UNMAP_ALL:
            return 1;
          case VFIO_UPDATE_VADDR:
            return opened ? 1 : 0;
          default:
            // VFIO_DMA_CC_IOMMU: QEMU's VT-d has no snoop control, so no domain enforces coherency.
            return 0;
        }
      },
      open: (arg) => {
        if (arg !== VFIO_TYPE1_IOMMU && arg !== VFIO_TYPE1v2_IOMMU) fail('EINVAL');
        const ctx = this.type1();
        ctx.port.compatIoasCreate();
        ctx.file.ioctl!(VFIO_SET_IOMMU.number, arg, { fd: -1 });
        opened = true;
      },
      attachGroup: (group) => {
        const ctx = this.type1();
        const ioas = ctx.port.compatIoasId()!;
        const bound: PciSlot[] = [];
        try {
          for (const slot of group.iommuGroup?.members ?? []) {
            const b = ctx.port.bind({ name: slot.name, hasIommu: true, iommuGroup: group.id() });
            bindings.set(slot, b);
            bound.push(slot);
            b.attach(ioas);
            slot.dma.set(b.dmaPort() ?? IOMMU_BLOCKED);
          }
        } catch (e) {
          for (const slot of bound) unbind(slot);
          throw e;
        }
      },
      detachGroup: (group) => {
        for (const slot of group.iommuGroup?.members ?? []) unbind(slot);
      },
      ioctl: (request, arg) => this.type1().file.ioctl!(request, arg, { fd: -1 }),
      release: () => {
        for (const slot of [...bindings.keys()]) unbind(slot);
      },
    };
    const unbind = (slot: PciSlot) => {
      const b = bindings.get(slot);
      if (!b) return;
      bindings.delete(slot);
      b.detach();
      b.unbind();
      slot.dma.set(IOMMU_BLOCKED);
    };
    return driver;
  }

  /** The private iommufd context, created with the first IOMMU group. */
  private type1(): { file: OpenFile; port: IommufdContextPort } {
    if (!this.type1Context) {
      const file = this.sys.env.newIommufd!();
      this.sys.env.holdFile?.(file);
      this.type1Context = { file, port: this.sys.env.iommufd!.contextOf(file)! };
      // vfio_iommu_type1 maps BAR memory (VM_PFNMAP) by following its PFNs; iommufd does not.
      this.type1Context.port.compatFollowPfnmap();
    }
    return this.type1Context;
  }

  /** vfio_iommu_driver_allowed: a noiommu container only takes the noiommu driver and vice versa. */
  private allowed(driver: IommuDriver): boolean {
    return this.noiommu === (driver.name === 'vfio-noiommu');
  }

  ioctl(request: number, arg: Uint8Array | number | null): number {
    switch (request) {
      case VFIO_GET_API_VERSION.number:
        return VFIO_API_VERSION;
      case VFIO_CHECK_EXTENSION.number:
        return this.checkExtension(intArg(arg));
      case VFIO_SET_IOMMU.number:
        return this.setIommu(intArg(arg));
      default:
        if (this.iommuDriver) return this.iommuDriver.ioctl(request, arg);
        fail('EINVAL', 'the container has no IOMMU model set yet (VFIO_SET_IOMMU)');
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

  /** vfio_ioctl_set_iommu: the first allowed driver that offers the type and opens wins. */
  private setIommu(arg: number): number {
    if (this.groups.length === 0 || this.iommuDriver) {
      fail('EINVAL', this.iommuDriver ? 'an IOMMU model is already set' : 'attach a group first (VFIO_GROUP_SET_CONTAINER)');
    }
    let error = new KernelError('ENODEV', `no IOMMU driver offers type ${arg}`);
    for (const d of this.drivers()) {
      if (!this.allowed(d)) continue;
      if (d.checkExtension(arg) <= 0) continue;
      try {
        d.open(arg);
      } catch (e) {
        if (!(e instanceof KernelError)) throw e;
        error = e;
        continue;
      }
      const driver = d.name === 'vfio-iommu-type1' ? this.type1Driver(true) : d;
      try {
        for (const g of this.groups) driver.attachGroup(g);
      } catch (e) {
        driver.release();
        if (!(e instanceof KernelError)) throw e;
        error = e;
        continue;
      }
      this.iommuDriver = driver;
      return 0;
    }
    throw error;
  }

  /** vfio_container_attach_group. */
  attachGroup(group: ContainerGroup): void {
    if (group.type === 'noiommu' && !this.sys.env.capabilities().sysRawio) {
      fail('EPERM', 'a noiommu group needs CAP_SYS_RAWIO');
    }
    if (this.groups.length && this.noiommu !== (group.type === 'noiommu')) {
      fail('EPERM', 'noiommu and IOMMU groups cannot share a container');
    }
    if (group.type === 'iommu') this.sys.claimDmaOwner(group, this.ownerToken());
    if (this.iommuDriver) {
      try {
        this.iommuDriver.attachGroup(group);
      } catch (e) {
        if (group.type === 'iommu') this.sys.releaseDmaOwner(group, this.ownerToken());
        throw e;
      }
    }
    group.container = this;
    group.containerUsers = 1;
    this.noiommu = group.type === 'noiommu';
    this.groups.push(group);
  }

  /** vfio_group_detach_container: the last group takes the IOMMU model with it. */
  detachGroup(group: ContainerGroup): void {
    this.iommuDriver?.detachGroup(group);
    if (group.type === 'iommu') this.sys.releaseDmaOwner(group, this.ownerToken());
    group.container = undefined;
    group.containerUsers = 0;
    this.groups.splice(this.groups.indexOf(group), 1);
    if (this.iommuDriver && this.groups.length === 0) {
      this.iommuDriver.release();
      this.iommuDriver = undefined;
    }
    if (this.groups.length === 0 && this.type1Context) {
      const file = this.type1Context.file;
      this.type1Context = undefined;
      if (this.sys.env.dropFile) this.sys.env.dropFile(file);
      else file.release?.();
    }
  }

  /** Who owns the container's IOMMU groups: the type1 context when there is one, else the container. */
  private ownerToken(): object {
    return this.sys.env.newIommufd && this.sys.env.iommufd ? this.type1().file : this;
  }
}

export class VfioContainerFile implements OpenFile {
  readonly kind = 'vfio-container';
  constructor(readonly container: VfioContainerObject) {}

  ioctl(request: number, arg: Uint8Array | number | null, _ctx: SyscallContext): number {
    return this.container.ioctl(request, arg);
  }
}

function intArg(arg: Uint8Array | number | null): number {
  if (typeof arg === 'number') return arg >>> 0;
  return 0;
}
