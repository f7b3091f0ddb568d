/**
 * The legacy VFIO group (drivers/vfio/group.c): /dev/vfio/N for a device behind an IOMMU,
 * /dev/vfio/noiommu-N for one without. One open at a time (EBUSY), never while a device of the
 * group is open through its cdev (EBUSY), CAP_SYS_RAWIO for a noiommu group (EPERM). The group
 * is "set" into a container (or directly onto an iommufd, the compat path), then hands out device
 * fds by name.
 */
import { fail } from '../errno';
import {
  VfioGroupStatus,
  VFIO_GROUP_FLAGS_CONTAINER_SET,
  VFIO_GROUP_FLAGS_VIABLE,
  VFIO_GROUP_GET_DEVICE_FD,
  VFIO_GROUP_GET_STATUS,
  VFIO_GROUP_SET_CONTAINER,
  VFIO_GROUP_UNSET_CONTAINER,
} from '../../uapi/vfio';
import type { OpenFile, SyscallContext } from '../open-file';
import type { IommuGroup } from './iommu-groups';
import type { VfioDeviceObject } from './device-object';
import type { VfioContainerObject } from './container-object';
import type { IommufdContextPort } from './iommufd-port';
import type { VfioEnvironment, VfioGroupType } from './environment';
import { VfioDeviceFile } from './device-file';

/** What a group uses of the VFIO core (subsystem.ts's VfioSubsystem). */
export interface GroupCore {
  readonly env: VfioEnvironment;
  isContainerFile(file: OpenFile): boolean;
  containerOf(file: OpenFile): VfioContainerObject;
  dmaOwnerClaimed(group: VfioGroupObject): boolean;
  findDeviceByName(group: VfioGroupObject, text: string): VfioDeviceObject;
}

export class VfioGroupObject {
  readonly devices: VfioDeviceObject[] = [];
  openedFile: VfioGroupFile | undefined;
  container: VfioContainerObject | undefined;
  containerUsers = 0;
  iommufd: IommufdContextPort | undefined;
  cdevDeviceOpenCount = 0;
  /** Devices registered through this group (group->drivers). */
  drivers = 1;
  /** Cleared when the last device goes away: later ioctls see ENODEV. */
  iommuGroup: IommuGroup | undefined;

  /** The IOMMU group number the group is named after. */
  private readonly groupId: number;

  constructor(
    readonly type: VfioGroupType,
    iommuGroup: IommuGroup,
    readonly sys: GroupCore,
  ) {
    this.iommuGroup = iommuGroup;
    this.groupId = iommuGroup.id;
  }

  id(): number {
    return this.groupId;
  }

  /** Device node name under /dev/vfio. */
  get name(): string {
    return `${this.type === 'noiommu' ? 'noiommu-' : ''}${this.groupId}`;
  }

  /** vfio_group_has_iommu. */
  hasIommu(): boolean {
    return this.container !== undefined || this.iommufd !== undefined;
  }

  /** vfio_group_fops_open. */
  open(): VfioGroupFile {
    if (this.drivers === 0) fail('ENODEV');
    if (this.type === 'noiommu' && !this.sys.env.capabilities().sysRawio) fail('EPERM');
    if (this.cdevDeviceOpenCount) fail('EBUSY', 'a device of this group is open through its cdev');
    if (this.openedFile) fail('EBUSY', 'the group is already open');
    this.openedFile = new VfioGroupFile(this);
    return this.openedFile;
  }

  /** vfio_device_block_group (cdev bind). */
  blockForCdev(): void {
    if (this.openedFile) fail('EBUSY', "the device's group is open");
    this.cdevDeviceOpenCount++;
  }

  unblockForCdev(): void {
    this.cdevDeviceOpenCount--;
  }

  /** vfio_group_use_container (first device open on the group path). */
  useContainer(): void {
    const c = this.container;
    if (!c) fail('EINVAL', 'no container');
    if (!c.iommuDriver) fail('EINVAL', 'the container has no IOMMU model set (VFIO_SET_IOMMU)');
    if (this.type === 'noiommu' && !this.sys.env.capabilities().sysRawio) fail('EPERM');
    this.containerUsers++;
  }

  unuseContainer(): void {
    this.containerUsers--;
  }

  /** The group file was closed (vfio_group_fops_release); device fds keep it alive in the kernel. */
  release(): void {
    if (this.container) this.container.detachGroup(this);
    this.iommufd = undefined;
    this.openedFile = undefined;
  }
}

export class VfioGroupFile implements OpenFile {
  readonly kind = 'vfio-group';
  /** Device fds taken from this group hold it open (get_file in vfio_group_use_container). */
  deviceRefs = 0;
  private closed = false;

  constructor(readonly group: VfioGroupObject) {}

  ioctl(request: number, arg: Uint8Array | number | null, _ctx: SyscallContext): number {
    switch (request) {
      case VFIO_GROUP_GET_DEVICE_FD.number:
        return this.getDeviceFd(arg);
      case VFIO_GROUP_GET_STATUS.number:
        return this.getStatus(arg);
      case VFIO_GROUP_SET_CONTAINER.number:
        return this.setContainer(arg);
      case VFIO_GROUP_UNSET_CONTAINER.number:
        return this.unsetContainer();
      default:
        fail('ENOTTY', 'not a VFIO group ioctl');
    }
  }

  /** vfio_group_ioctl_get_status. */
  private getStatus(arg: Uint8Array | number | null): number {
    const buf = userStruct(arg, VfioGroupStatus.size);
    const argsz = VfioGroupStatus.get(buf, 'argsz');
    if (argsz < VfioGroupStatus.size) fail('EINVAL', `argsz ${argsz} < 8`);
    const g = this.group;
    if (!g.iommuGroup) fail('ENODEV');
    let flags = 0;
    if (g.hasIommu()) flags = VFIO_GROUP_FLAGS_CONTAINER_SET | VFIO_GROUP_FLAGS_VIABLE;
    else if (!g.sys.dmaOwnerClaimed(g)) flags = VFIO_GROUP_FLAGS_VIABLE;
    VfioGroupStatus.set(buf, 'flags', flags);
    return 0;
  }

  /** vfio_group_ioctl_set_container: a container fd, or an iommufd (compat). */
  private setContainer(arg: Uint8Array | number | null): number {
    const buf = userStruct(arg, 4);
    const fd = Buffer.from(buf.buffer, buf.byteOffset, 4).readInt32LE(0);
    const file = fd >= 0 ? this.group.sys.env.lookup(fd) : undefined;
    if (!file) fail('EBADF', `fd ${fd} is not open`);
    const g = this.group;
    if (g.hasIommu()) fail('EINVAL', 'the group already has a container');
    if (!g.iommuGroup) fail('ENODEV');
    if (file.kind === 'vfio-container' && g.sys.isContainerFile(file)) {
      g.sys.containerOf(file).attachGroup(g);
      return 0;
    }
    const ictx = g.sys.env.iommufd?.contextOf(file);
    if (ictx) {
      if (g.type === 'noiommu') ictx.compatSetNoIommu();
      else ictx.compatIoasCreate();
      g.iommufd = ictx;
      return 0;
    }
    fail('EBADFD', `fd ${fd} is neither a VFIO container nor an iommufd`);
  }

  /** vfio_group_ioctl_unset_container. */
  private unsetContainer(): number {
    const g = this.group;
    if (!g.hasIommu()) fail('EINVAL', 'the group has no container');
    if (g.container) {
      if (g.containerUsers !== 1) fail('EBUSY', 'devices of the group are open');
      g.container.detachGroup(g);
    }
    g.iommufd = undefined;
    return 0;
  }

  /** vfio_group_ioctl_get_device_fd: returns a new device fd. */
  private getDeviceFd(arg: Uint8Array | number | null): number {
    if (!(arg instanceof Uint8Array)) fail('EFAULT', 'the argument must be a NUL-terminated device name');
    const nul = arg.indexOf(0);
    const page = this.group.sys.env.pageSize;
    if (nul < 0 && arg.length >= page) fail('EINVAL', 'device name longer than a page');
    if (nul < 0) fail('EFAULT', 'device name is not NUL-terminated within the buffer');
    const text = Buffer.from(arg.buffer, arg.byteOffset, nul).toString('latin1');
    const device = this.group.sys.findDeviceByName(this.group, text);
    const file = VfioDeviceFile.openFromGroup(device, this);
    return this.group.sys.env.installFd(file, `[vfio-device ${device.slot.name}]`);
  }

  release(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.deviceRefs === 0) this.group.release();
  }

  /** A device fd from this group went away; the group file may now really close. */
  dropDeviceRef(): void {
    this.deviceRefs--;
    if (this.closed && this.deviceRefs === 0) this.group.release();
  }
}

function userStruct(arg: Uint8Array | number | null, size: number): Uint8Array {
  if (!(arg instanceof Uint8Array) || arg.length < size) {
    fail('EFAULT', `the kernel reads ${size} bytes from the argument`);
  }
  return arg;
}
