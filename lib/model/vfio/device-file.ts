/**
 * An open VFIO device fd (struct vfio_device_file): from the device cdev
 * (vfio_device_fops_cdev_open, then VFIO_DEVICE_BIND_IOMMUFD grants access) or from a group
 * (VFIO_GROUP_GET_DEVICE_FD, access granted at once). Until access is granted every ioctl but
 * BIND_IOMMUFD, and read/write/mmap, answer EINVAL (vfio_device_fops_unl_ioctl).
 */
import { matchTokenUuid } from './vf-token';
import { fail } from '../errno';
import { copyStructFromUser } from './user-struct';
import {
  VfioDeviceAttachIommufdPt,
  VfioDeviceBindIommufd,
  VfioDeviceDetachIommufdPt,
  VFIO_DEVICE_ATTACH_IOMMUFD_PT,
  VFIO_DEVICE_ATTACH_PASID,
  VFIO_DEVICE_BIND_FLAG_TOKEN,
  VFIO_DEVICE_BIND_IOMMUFD,
  VFIO_DEVICE_DETACH_IOMMUFD_PT,
  VFIO_DEVICE_DETACH_PASID,
} from '../../uapi/vfio';
import type { MmapBacking, OpenFile, SyscallContext } from '../open-file';
import type { DeviceFileState, DeviceGroup, VfioDeviceObject } from './device-object';
import type { VfioEnvironment } from './environment';
import type { IommufdContextPort } from './iommufd-port';

/**
 * What a device file uses of the group it came from and of the group file it was taken through
 * (group-object.ts), named here because the group file creates device files.
 */
export interface DeviceFileGroup extends DeviceGroup {
  readonly iommufd: IommufdContextPort | undefined;
  readonly sys: { readonly env: VfioEnvironment };
  hasIommu(): boolean;
}
export interface DeviceFileGroupFile {
  readonly group: DeviceFileGroup;
  deviceRefs: number;
  dropDeviceRef(): void;
}

export class VfioDeviceFile implements OpenFile, DeviceFileState {
  readonly kind = 'vfio-device';
  accessGranted = false;
  iommufd: DeviceFileState['iommufd'];
  devid = 0;
  private released = false;

  private constructor(
    readonly device: VfioDeviceObject,
    readonly group: DeviceFileGroup | undefined,
    private readonly groupFile?: DeviceFileGroupFile,
  ) {
    device.fileRefs.add(this);
  }

  /** vfio_device_fops_cdev_open: CAP_SYS_RAWIO for a noiommu device, ENODEV once unregistered. */
  static openCdev(device: VfioDeviceObject, hasRawio: boolean): VfioDeviceFile {
    if (!device.registered) fail('ENODEV');
    if (device.isNoiommu && !hasRawio) fail('EPERM');
    device.sys.env.faults.point('vfio.device-file-alloc'); // vfio_allocate_device_file (lib/model/faults.ts)
    return new VfioDeviceFile(device, undefined);
  }

  /** vfio_device_open_file / vfio_df_group_open. */
  static openFromGroup(device: VfioDeviceObject, groupFile: DeviceFileGroupFile): VfioDeviceFile {
    const group = groupFile.group;
    if (!group.hasIommu()) fail('EINVAL', 'the group has no container or iommufd set');
    const df = new VfioDeviceFile(device, group, groupFile);
    df.iommufd = group.iommufd;
    try {
      if (df.iommufd && device.isNoiommu && device.openCount === 0) {
        if (!group.sys.env.capabilities().sysRawio || df.iommufd.compatIoasId() !== undefined) {
          fail('EPERM', 'a noiommu device through iommufd needs CAP_SYS_RAWIO and no compat IOAS');
        }
      }
      device.open(df);
      if (df.iommufd && device.openCount === 1 && !device.isNoiommu) {
        const ioas = df.iommufd.compatIoasId();
        try {
          if (ioas === undefined) fail('ENOENT', 'the iommufd has no compat IOAS');
          device.attachIoas(ioas);
        } catch (e) {
          device.close(df);
          throw e;
        }
      }
    } catch (e) {
      device.dropFileRef(df);
      throw e;
    }
    df.accessGranted = true;
    if (!df.iommufd) groupFile.deviceRefs++;
    return df;
  }

  ioctl(request: number, arg: Uint8Array | number | null, _ctx: SyscallContext): number {
    if (request === VFIO_DEVICE_BIND_IOMMUFD.number) return this.bindIommufd(arg);
    if (!this.accessGranted) {
      fail('EINVAL', 'device access is not granted yet: bind the device to an iommufd first (VFIO_DEVICE_BIND_IOMMUFD)');
    }
    if (!this.group) {
      if (request === VFIO_DEVICE_ATTACH_IOMMUFD_PT.number) return this.attachPt(arg);
      if (request === VFIO_DEVICE_DETACH_IOMMUFD_PT.number) return this.detachPt(arg);
    }
    return this.device.core.ioctl(request, arg);
  }

  pread(into: Uint8Array, offset: bigint): number {
    this.requireAccess();
    return this.device.core.rw(into, offset, false);
  }

  pwrite(from: Uint8Array, offset: bigint): number {
    this.requireAccess();
    return this.device.core.rw(from, offset, true);
  }

  mmap(length: bigint, _prot: number, flags: number, offset: bigint): MmapBacking {
    this.requireAccess();
    return this.device.core.mmap(length, flags, offset);
  }

  /** vfio_device_fops_release. */
  release(): void {
    if (this.released) return;
    this.released = true;
    if (this.group) {
      if (this.accessGranted) this.device.close(this);
      if (!this.iommufd) this.groupFile?.dropDeviceRef();
    } else {
      this.unbindIommufd();
    }
    this.device.dropFileRef(this);
  }

  private requireAccess(): void {
    if (!this.accessGranted) fail('EINVAL', 'device access is not granted yet (VFIO_DEVICE_BIND_IOMMUFD)');
  }

  /** vfio_df_ioctl_bind_iommufd. */
  private bindIommufd(arg: Uint8Array | number | null): number {
    const minsz = VfioDeviceBindIommufd.endOf('out_devid');
    const bind = copyStructFromUser(arg, VfioDeviceBindIommufd, minsz, 'argsz');
    if (bind.iommufd < 0 || bind.flags & ~VFIO_DEVICE_BIND_FLAG_TOKEN) {
      fail('EINVAL', bind.iommufd < 0 ? 'iommufd is negative' : 'unknown flags');
    }
    if (this.group) fail('EINVAL', 'only a cdev fd can be bound; this fd came from a group');
    const device = this.device;
    device.group?.blockForCdev();
    try {
      if (this.accessGranted) fail('EINVAL', 'the device fd is already bound');
      // vfio_df_check_token: the token (or its absence) is checked before the iommufd is looked at.
      let token: Uint8Array | undefined;
      if (bind.flags & VFIO_DEVICE_BIND_FLAG_TOKEN) {
        const read = device.sys.env.readUser;
        if (!read) fail('EFAULT', 'token_uuid_ptr cannot be read');
        token = read(bind.token_uuid_ptr, 16);
      }
      matchTokenUuid(device.core, token);
      const file = device.sys.env.lookup(bind.iommufd);
      if (!file) fail('EBADF', `fd ${bind.iommufd} is not open`);
      const ictx = device.sys.env.iommufd?.contextOf(file);
      if (!ictx) fail('EBADFD', `fd ${bind.iommufd} is not an iommufd`);
      this.iommufd = ictx;
      try {
        device.open(this);
      } catch (e) {
        this.iommufd = undefined;
        throw e;
      }
    } catch (e) {
      device.group?.unblockForCdev();
      throw e;
    }
    VfioDeviceBindIommufd.set(arg as Uint8Array, 'out_devid', this.devid);
    device.cdevOpened = true;
    device.core.cdevOpened = true;
    this.accessGranted = true;
    return 0;
  }

  /** vfio_df_unbind_iommufd. */
  private unbindIommufd(): void {
    if (!this.accessGranted) return;
    this.device.close(this);
    this.iommufd = undefined;
    this.device.cdevOpened = false;
    this.device.core.cdevOpened = false;
    this.device.group?.unblockForCdev();
  }

  /** vfio_df_ioctl_attach_pt. */
  private attachPt(arg: Uint8Array | number | null): number {
    const minsz = VfioDeviceAttachIommufdPt.endOf('pt_id');
    const buf = userBuf(arg, minsz);
    const attach = VfioDeviceAttachIommufdPt.decode(buf.subarray(0, minsz));
    if (attach.argsz < minsz) fail('EINVAL', `argsz ${attach.argsz} < ${minsz}`);
    if (attach.flags & ~VFIO_DEVICE_ATTACH_PASID) fail('EINVAL', 'unknown flags');
    if (attach.flags & VFIO_DEVICE_ATTACH_PASID) {
      // vfio-pci implements PASID attach, but none of the modelled functions has PASID support.
      const xend = VfioDeviceAttachIommufdPt.endOf('pasid');
      if (attach.argsz < xend) fail('EINVAL', 'argsz too small for pasid');
      userBuf(arg, xend);
      fail('EOPNOTSUPP', 'the device does not support PASID');
    }
    const ptId = this.device.attachIoas(attach.pt_id);
    VfioDeviceAttachIommufdPt.set(buf, 'pt_id', ptId);
    return 0;
  }

  /** vfio_df_ioctl_detach_pt. */
  private detachPt(arg: Uint8Array | number | null): number {
    const minsz = VfioDeviceDetachIommufdPt.endOf('flags');
    const buf = userBuf(arg, minsz);
    const detach = VfioDeviceDetachIommufdPt.decode(buf.subarray(0, minsz));
    if (detach.argsz < minsz) fail('EINVAL', `argsz ${detach.argsz} < ${minsz}`);
    if (detach.flags & ~VFIO_DEVICE_DETACH_PASID) fail('EINVAL', 'unknown flags');
    if (detach.flags & VFIO_DEVICE_DETACH_PASID) {
      const xend = VfioDeviceDetachIommufdPt.endOf('pasid');
      if (detach.argsz < xend) fail('EINVAL', 'argsz too small for pasid');
      userBuf(arg, xend);
      // pasid_detach_ioas of a PASID that was never attached does nothing.
      return 0;
    }
    this.device.detachIoas();
    return 0;
  }
}

function userBuf(arg: Uint8Array | number | null, n: number): Uint8Array {
  if (!(arg instanceof Uint8Array) || arg.length < n) {
    fail('EFAULT', `the kernel reads ${n} bytes from the argument`);
  }
  return arg;
}
