/**
 * One wrapper per VFIO group-fd ioctl (/dev/vfio/N, /dev/vfio/noiommu-N): the legacy path to a
 * device, through a container.
 */
import type { Kernel } from '../sys/kernel';
import * as V from '../uapi/vfio';
import { invoke } from './invoke';

/**
 * What VFIO_GROUP_GET_STATUS reports.
 *
 * @category Ioctl results
 */
export interface GroupStatus {
  /** All devices of the group are bound to VFIO (or to no driver), so it may be used. */
  readonly viable: boolean;
  /** The group is in a container. */
  readonly containerSet: boolean;
}

/**
 * VFIO_GROUP_GET_STATUS.
 *
 * @category Ioctl results
 */
export function groupGetStatus(kernel: Kernel, fd: number): GroupStatus {
  const buf = V.VfioGroupStatus.encode({ argsz: V.VfioGroupStatus.size });
  invoke(kernel, fd, V.VFIO_GROUP_GET_STATUS, buf);
  const flags = V.VfioGroupStatus.get(buf, 'flags');
  return { viable: (flags & V.VFIO_GROUP_FLAGS_VIABLE) !== 0, containerSet: (flags & V.VFIO_GROUP_FLAGS_CONTAINER_SET) !== 0 };
}

/**
 * VFIO_GROUP_SET_CONTAINER: the argument is a pointer to the container fd (an int).
 *
 * @category Ioctl results
 */
export function groupSetContainer(kernel: Kernel, fd: number, containerFd: number): void {
  const arg = Buffer.alloc(4);
  arg.writeInt32LE(containerFd, 0);
  invoke(kernel, fd, V.VFIO_GROUP_SET_CONTAINER, arg);
}

/**
 * VFIO_GROUP_UNSET_CONTAINER.
 *
 * @category Ioctl results
 */
export function groupUnsetContainer(kernel: Kernel, fd: number): void {
  invoke(kernel, fd, V.VFIO_GROUP_UNSET_CONTAINER, null);
}

/**
 * VFIO_GROUP_GET_DEVICE_FD: opens a device of the group by name (its BDF); returns the new fd.
 *
 * @category Ioctl results
 */
export function groupGetDeviceFd(kernel: Kernel, fd: number, deviceName: string, vfToken?: string): number {
  // vfio_pci_core_match: "<bdf> vf_token=<uuid>" for an SR-IOV VF of a vfio-pci PF (or its PF).
  const name = vfToken === undefined ? deviceName : `${deviceName} vf_token=${vfToken}`;
  return invoke(kernel, fd, V.VFIO_GROUP_GET_DEVICE_FD, Buffer.from(`${name}\0`, 'utf8'));
}
