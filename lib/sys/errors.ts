/**
 * Errors like Node's own: `code` is the errno name ('ENOENT'), `errno` the number, `syscall` the
 * call that failed, plus the ioctl request name and the path where they apply, and a `hint` when
 * the cause is usually the environment rather than the program.
 */
import { ERRNO, errnoName } from './constants';

export interface VfioErrorDetails {
  errno: number;
  syscall: string;
  /** Name of the ioctl request, e.g. 'IOMMU_IOAS_MAP'. */
  ioctl?: string;
  path?: string;
  hint?: string;
  /** Free text describing what was being attempted, prepended to the message. */
  context?: string;
}

export class VfioError extends Error {
  readonly code: string;
  readonly errno: number;
  readonly syscall: string;
  readonly ioctl?: string;
  readonly path?: string;
  readonly hint?: string;

  constructor(details: VfioErrorDetails) {
    const code = errnoName(details.errno);
    const where = [details.syscall, details.ioctl, details.path && `'${details.path}'`].filter(Boolean).join(' ');
    const hint = details.hint ?? defaultHint(code, details);
    super(`${details.context ? details.context + ': ' : ''}${code}: ${describe(code)}, ${where}${hint ? ` (hint: ${hint})` : ''}`);
    this.name = 'VfioError';
    this.code = code;
    this.errno = details.errno;
    this.syscall = details.syscall;
    if (details.ioctl !== undefined) this.ioctl = details.ioctl;
    if (details.path !== undefined) this.path = details.path;
    if (hint !== undefined) this.hint = hint;
  }

  /** Builds an error from an errno name; convenient for the model and for tests. */
  static of(code: keyof typeof ERRNO, details: Omit<VfioErrorDetails, 'errno'>): VfioError {
    return new VfioError({ ...details, errno: ERRNO[code] });
  }
}

export function isVfioError(e: unknown, code?: string): e is VfioError {
  return e instanceof VfioError && (code === undefined || e.code === code);
}

const DESCRIPTIONS: Record<string, string> = {
  EPERM: 'operation not permitted', ENOENT: 'no such file, directory or object', EBADF: 'bad file descriptor',
  EAGAIN: 'resource temporarily unavailable', ENOMEM: 'out of memory', EACCES: 'permission denied',
  EFAULT: 'bad address', EBUSY: 'device or resource busy', EEXIST: 'already exists', ENODEV: 'no such device',
  EINVAL: 'invalid argument', ENOTTY: 'inappropriate ioctl for device', ENOSPC: 'no space left (IOVA space)',
  E2BIG: 'argument struct larger than the kernel knows, with non-zero tail', EOVERFLOW: 'value too large',
  EMSGSIZE: 'array too small', EOPNOTSUPP: 'operation not supported', ENXIO: 'no such device or address',
  ECANCELED: 'operation canceled', ERANGE: 'result out of range', EIO: 'input/output error',
};

function describe(code: string): string {
  return DESCRIPTIONS[code] ?? 'error';
}

/**
 * The usual environmental cause of an error, by errno and where it happened. Callers with more
 * context (the typed API knows it is pinning, or opening a noiommu cdev) pass their own hint.
 */
export function defaultHint(code: string, d: Pick<VfioErrorDetails, 'syscall' | 'ioctl' | 'path'>): string | undefined {
  const path = d.path ?? '';
  const ioctl = d.ioctl ?? '';
  if (code === 'ENOTTY' && ioctl === 'IOMMU_IOAS_NOIOMMU_GET_PA') {
    return 'IOMMU_IOAS_NOIOMMU_GET_PA needs Linux 7.3 or later built with CONFIG_IOMMUFD_NOIOMMU';
  }
  if (code === 'ENOTTY' && ioctl.startsWith('VFIO_DEVICE_') && /BIND_IOMMUFD|ATTACH_IOMMUFD_PT|DETACH_IOMMUFD_PT/.test(ioctl)) {
    return 'the device cdev interface needs Linux 6.6+ with CONFIG_VFIO_DEVICE_CDEV, and the fd must be a device cdev';
  }
  if (code === 'ENOTTY' && ioctl) {
    return 'the kernel does not know this ioctl on this kind of fd (older kernel, or the request was sent to the wrong fd)';
  }
  if ((code === 'EPERM' || code === 'EACCES') && (path.includes('noiommu') || ioctl === 'IOMMU_IOAS_NOIOMMU_GET_PA')) {
    return 'noiommu devices and IOMMU_IOAS_NOIOMMU_GET_PA need CAP_SYS_RAWIO (run as root or grant the capability)';
  }
  if ((code === 'EPERM' || code === 'EACCES') && path.startsWith('/dev/vfio')) {
    return 'check the permissions of the VFIO device node (udev rules or run as root)';
  }
  if ((code === 'EPERM' || code === 'EACCES') && path.startsWith('/sys/')) {
    return 'writing to sysfs needs root';
  }
  if ((code === 'ENOMEM' || code === 'EPERM' || code === 'EAGAIN') && (ioctl === 'IOMMU_IOAS_MAP' || ioctl === 'IOMMU_IOAS_MAP_FILE' || ioctl === 'IOMMU_IOAS_COPY' || ioctl === 'VFIO_IOMMU_MAP_DMA' || d.syscall === 'mlock')) {
    return 'pinning memory counts against RLIMIT_MEMLOCK (ulimit -l); raise it or grant CAP_IPC_LOCK';
  }
  if (code === 'ENOENT' && path.startsWith('/dev/vfio/devices')) {
    return 'no VFIO device cdev: is the device bound to vfio-pci, and for a device without an IOMMU is vfio.enable_unsafe_noiommu_mode=1?';
  }
  if (code === 'ENOENT' && path === '/dev/iommu') {
    return 'no /dev/iommu: the kernel needs CONFIG_IOMMUFD';
  }
  if (code === 'ENOENT' && path.startsWith('/dev/vfio')) {
    return 'no VFIO node: is the device bound to vfio-pci, and the vfio module loaded?';
  }
  return undefined;
}
