/**
 * What an fd given to this process is (inherited, from LISTEN_FDS, or received over a Unix
 * socket), told by read-only ioctls each kind of file answers and the others refuse (ENOTTY or
 * EINVAL), so that the same check runs on the real kernel and the model:
 *   iommufd          IOMMU_OPTION get rlimit-mode succeeds (also a /dev/vfio/vfio that iommufd
 *                    provides: the same kind of object, usable either way)
 *   vfio-container   VFIO_GET_API_VERSION succeeds
 *   vfio-group       VFIO_GROUP_GET_STATUS succeeds
 *   vfio-device      VFIO_DEVICE_GET_INFO succeeds (a bound device)
 *   vfio-cdev-unbound  VFIO_DEVICE_GET_INFO is EINVAL and nothing above answered: a device cdev
 *                    not yet bound to an iommufd (vfio_device_fops_unl_ioctl refuses every
 *                    ioctl but BIND_IOMMUFD until access is granted)
 * Where /proc/self/fd names the file (the real kernel), the path is kept for messages.
 */
import type { Kernel } from '../sys/kernel';
import { VfioError, isVfioError } from '../sys/errors';
import { getApiVersion } from '../ioctl/container-ioctls';
import { groupGetStatus } from '../ioctl/group-ioctls';
import { deviceGetInfo } from '../ioctl/device-ioctls';
import { optionGet } from '../ioctl/iommufd-ioctls';

/**
 * What an fd is, as far as VFIO cares: an iommufd, a container, a group, a device (bound or a
 * cdev not yet bound to an iommufd), or something else.
 *
 * @category Passing fds
 */
export type FdKind = 'iommufd' | 'vfio-container' | 'vfio-group' | 'vfio-device' | 'vfio-cdev-unbound' | 'other';

/**
 * The kind of `fd` and the path /proc/self/fd gives for it (or `fd N`). EBADF when not open.
 *
 * @category Passing fds
 */
export function identifyFd(
  kernel: Kernel,
  fd: number,
): {
  /** What the fd is, told by the ioctls it answers, not by its path. */
  readonly kind: FdKind;
  /** Its /proc/self/fd link target, or `fd N` where there is none (the model). */
  readonly path: string;
} {
  if (!Number.isSafeInteger(fd) || fd < 0 || fd > 0x7fff_ffff) throw new RangeError(`fd must be a non-negative int32, got ${fd}`);
  let path = `fd ${fd}`;
  try {
    path = kernel.readlink(`/proc/self/fd/${fd}`);
  } catch {
    // The model has no /proc/self/fd; the ioctls below decide.
  }
  const answers = (probe: () => unknown): 'yes' | 'EINVAL' | 'no' => {
    try {
      probe();
      return 'yes';
    } catch (e) {
      if (!isVfioError(e)) throw e;
      if (e.code === 'EBADF') throw VfioError.wrap(e, { context: `identifying fd ${fd}` });
      return e.code === 'EINVAL' ? 'EINVAL' : 'no';
    }
  };
  if (answers(() => optionGet(kernel, fd, 'rlimit-mode')) === 'yes') return { kind: 'iommufd', path };
  if (answers(() => getApiVersion(kernel, fd)) === 'yes') return { kind: 'vfio-container', path };
  if (answers(() => groupGetStatus(kernel, fd)) === 'yes') return { kind: 'vfio-group', path };
  const info = answers(() => deviceGetInfo(kernel, fd));
  if (info === 'yes') return { kind: 'vfio-device', path };
  if (info === 'EINVAL' && (path.startsWith('fd ') || path.startsWith('/dev/vfio/devices/'))) return { kind: 'vfio-cdev-unbound', path };
  return { kind: 'other', path };
}

/**
 * `identifyFd`, failing with ERR_VFIO_WRONG_FD unless the kind is one of `expected`.
 *
 * @category Passing fds
 */
export function expectFd(
  kernel: Kernel,
  fd: number,
  expected: readonly FdKind[],
  claimed: string,
): { readonly kind: FdKind; readonly path: string } {
  const id = identifyFd(kernel, fd);
  if (!expected.includes(id.kind)) {
    throw VfioError.condition('ERR_VFIO_WRONG_FD', {
      check: `fd ${fd} (${id.path}) was given as ${claimed} but is ${id.kind === 'other' ? 'none of iommufd, VFIO container, group or device' : `a ${id.kind}`}`,
      hint: 'check which fd the sender (LISTEN_FDS order, or the broker message) put where',
    });
  }
  return id;
}
