/**
 * Errors like Node's own. A failed system call has `code` = the errno name ('ENOENT'), `errno`
 * the number, `syscall` the call that failed, plus the ioctl request name and the path where they
 * apply, and a `hint` when the cause is usually the environment rather than the program.
 *
 * A failed precondition of the typed API (the device is not bound to vfio-pci, noiommu mode is
 * off) is not a system call: it has an `ERR_VFIO_*` code of its own (like Node's `ERR_*` codes,
 * listed in VFIO_CONDITIONS), `errno` 0, `syscall` '', and `check` saying what was checked.
 *
 * Context is added on the way up with `VfioError.wrap`, which keeps what the inner layer said
 * (its context, detail and hint) and the inner error as `cause`.
 */
import { ERRNO, errnoName } from './constants';

/**
 * What a failed system call reports; the constructor's input for an errno error.
 *
 * @category Errors
 */
export interface VfioErrorDetails {
  /** The errno number the call failed with (positive, e.g. 2 for ENOENT). */
  errno: number;
  /** The system call that failed: 'ioctl', 'open', 'mmap', … */
  syscall: string;
  /** Name of the ioctl request, e.g. 'IOMMU_IOAS_MAP'. */
  ioctl?: string;
  /** The file the call was made on, when there is one. */
  path?: string;
  /** What to do about it; left out, a hint is inferred for the errno and place where one is known. */
  hint?: string;
  /** Free text describing what was being attempted, prepended to the message. */
  context?: string;
  /** What the kernel said about why it failed, beyond the errno (the model kernel says it; Linux cannot). */
  detail?: string;
  /** The error this one presents (set by wrap). */
  cause?: unknown;
}

/**
 * The typed API's own failure codes: conditions it checks that are not a failed system call.
 *
 * @category Errors
 */
export const VFIO_CONDITIONS = {
  /** Opening or resetting a device whose driver is not vfio-pci (bind it first: `vfio bind`). */
  ERR_VFIO_NOT_BOUND: 'the PCI device is not bound to the driver it needs',
  /** The device is bound to vfio-pci but /dev/vfio/devices has no cdev for it (a kernel without VFIO_DEVICE_CDEV). */
  ERR_VFIO_NO_CDEV: 'the device has no usable VFIO device cdev',
  /** The device has no iommu_group link in sysfs, so the legacy group path cannot open it. */
  ERR_VFIO_NO_GROUP: 'the device has no IOMMU group',
  /** The device sits behind no IOMMU and vfio.enable_unsafe_noiommu_mode is 0. */
  ERR_VFIO_NOIOMMU_OFF: 'the device has no IOMMU and vfio noiommu mode is off',
  /** Switching noiommu mode on was asked for without the explicit `unsafeNoiommu: true`. */
  ERR_VFIO_NOIOMMU_NOT_ALLOWED: 'noiommu mode is only switched on with unsafeNoiommu: true',
  /** The legacy path was needed but /dev/vfio/vfio does not exist. */
  ERR_VFIO_NO_CONTAINER: 'the kernel has no VFIO container (/dev/vfio/vfio)',
  /** A device of the IOMMU group is bound to a host driver, so the group cannot be used. */
  ERR_VFIO_GROUP_NOT_VIABLE: 'the VFIO group is not viable',
  /** VFIO_GET_API_VERSION returned a version this library does not speak. */
  ERR_VFIO_API_VERSION: 'the container speaks another VFIO API version',
  /** A container was used for DMA before an IOMMU model (type1, noiommu) was set. */
  ERR_VFIO_NO_IOMMU_MODEL: 'the container has no IOMMU model set',
  /** A DMA space was asked for addresses before any device was attached to it. */
  ERR_VFIO_NOT_ATTACHED: 'no device is attached to tell how DMA is addressed',
  /** Physical addresses were asked of a DMA space behind an IOMMU, where devices see IOVAs. */
  ERR_VFIO_TRANSLATED: 'the DMA space translates through an IOMMU: there are no physical addresses to give',
  /** Something else still owns the object: an IOVA range held by a DmaBuffer, a PCI device the host is using. */
  ERR_VFIO_IN_USE: 'the object is still in use',
  /** Unmapping a range that cuts through a mapping; iommufd and type1 only remove whole mappings. */
  ERR_VFIO_PARTIAL_UNMAP: 'the range covers only part of a mapping, which the kernel cannot split',
  /** Mapping a region range that the region does not allow mmap for (outside its sparse areas). */
  ERR_VFIO_NOT_MAPPABLE: "the region range cannot be mmap'ed",
  /** Enabling more MSI/MSI-X vectors than the device reports in its IRQ info. */
  ERR_VFIO_TOO_MANY_VECTORS: 'more interrupt vectors were asked for than the device has',
  /** Triggering, masking or adding to an interrupt kind that is not enabled. */
  ERR_VFIO_IRQ_NOT_ENABLED: 'the interrupt kind is not enabled',
  /** Resizing an enabled interrupt kind whose IRQ info has VFIO_IRQ_INFO_NORESIZE: disable and enable it again. */
  ERR_VFIO_IRQ_NORESIZE: 'the kernel cannot resize this interrupt kind while it is enabled',
  /** Asking a DMA buffer for the bus address of an offset that no segment covers. */
  ERR_VFIO_NO_SEGMENT: 'no physical segment of the buffer covers the offset',
  /** A synchronous physical-address lookup where only a broker may answer (use allocateDmaAsync). */
  ERR_VFIO_ASYNC_LOOKUP: 'the physical addresses come from another process: they can only be looked up asynchronously',
  /** `adopt` was given an fd whose kind (checked with identifyFd) is not the one claimed. */
  ERR_VFIO_WRONG_FD: 'an fd given to adopt is not the kind of file it was claimed to be',
} as const;

/**
 * One of the `ERR_VFIO_*` codes of a condition error: the keys of VFIO_CONDITIONS.
 *
 * @category Errors
 */
export type VfioConditionCode = keyof typeof VFIO_CONDITIONS;

/**
 * What a failed precondition reports; the constructor's input for an `ERR_VFIO_*` error.
 *
 * @category Errors
 */
export interface VfioConditionDetails {
  /** Which condition failed. */
  code: VfioConditionCode;
  /** Which check failed, in words: "0000:00:03.0 is bound to no driver, not vfio-pci". */
  check: string;
  /** What to do about it, in the words of the user's tool where possible. */
  hint?: string;
  /** Free text describing what was being attempted, prepended to the message. */
  context?: string;
  /** The error this one presents. */
  cause?: unknown;
}

/**
 * What `VfioError.wrap` adds on the way up.
 *
 * @category Errors
 */
export interface VfioErrorWrapping {
  /** What the caller was doing; stacked in front of the inner context. */
  context?: string;
  /** A better hint than the inner one (undefined keeps the inner one). */
  hint?: string | undefined;
  /** The path, where the inner error did not know it. */
  path?: string;
  /**
   * The exact ioctl request name, which only the caller knows for sure: VFIO reuses request
   * numbers across kinds of fd, so a kernel may have named several.
   */
  ioctl?: string;
}

/**
 * Every failure of node-vfio: a failed system call (code = errno name) or a failed precondition
 * (code = `ERR_VFIO_*`). Test `code`, not the message, the way Node's own errors are tested.
 *
 * @example
 * ```ts
 * try {
 *   ioas.map(buffer, { iova: iova(0x1000n) });
 * } catch (e) {
 *   if (isVfioError(e) && e.code === 'EEXIST') console.error('IOVA already mapped:', e.ioctl);
 *   else throw e;
 * }
 * ```
 *
 * @category Errors
 */
export class VfioError extends Error {
  /** The errno name ('ENOENT', 'EBUSY', …) or the condition code ('ERR_VFIO_NOT_BOUND', …). */
  readonly code: string;
  /** The errno number; 0 for a condition error. */
  readonly errno: number;
  /** The failed system call ('ioctl', 'open', …); '' for a condition error. */
  readonly syscall: string;
  /** The ioctl request name when the failed call was an ioctl, e.g. 'IOMMU_IOAS_MAP'. */
  readonly ioctl?: string;
  /** The file the call was made on, when known. */
  readonly path?: string;
  /** What to do about it, when the usual cause is the environment (permissions, a module not loaded). */
  readonly hint?: string;
  /** What was being attempted, outermost first, as stacked by `wrap`. */
  readonly context?: string;
  /** The model kernel's explanation of why the call failed, beyond the errno (Linux gives none). */
  readonly detail?: string;
  /** For a condition error (ERR_VFIO_*): which check failed. */
  readonly check?: string;

  constructor(details: VfioErrorDetails | VfioConditionDetails) {
    const condition = 'check' in details;
    const code = condition ? details.code : errnoName(details.errno);
    const hint = details.hint ?? (condition ? undefined : defaultHint(code, details));
    const what = condition
      ? `${code}: ${VFIO_CONDITIONS[details.code]}: ${details.check}`
      : `${code}: ${describe(code)}, ${[details.syscall, details.ioctl, details.path && `'${details.path}'`].filter(Boolean).join(' ')}` +
        (details.detail ? `: ${details.detail}` : '');
    super(
      `${details.context ? details.context + ': ' : ''}${what}${hint ? ` (hint: ${hint})` : ''}`,
      details.cause === undefined ? undefined : { cause: details.cause },
    );
    this.name = 'VfioError';
    this.code = code;
    if (condition) {
      this.errno = 0;
      this.syscall = '';
      this.check = details.check;
    } else {
      this.errno = details.errno;
      this.syscall = details.syscall;
      if (details.ioctl !== undefined) this.ioctl = details.ioctl;
      if (details.path !== undefined) this.path = details.path;
      if (details.detail !== undefined) this.detail = details.detail;
    }
    if (hint !== undefined) this.hint = hint;
    if (details.context !== undefined) this.context = details.context;
  }

  /** Builds an error from an errno name; convenient for tests and the syscall boundaries. */
  static of(code: keyof typeof ERRNO, details: Omit<VfioErrorDetails, 'errno'>): VfioError {
    return new VfioError({ ...details, errno: ERRNO[code] });
  }

  /** A failed precondition of the typed API: its own code, the check that failed, no syscall. */
  static condition(code: VfioConditionCode, details: Omit<VfioConditionDetails, 'code'>): VfioError {
    return new VfioError({ ...details, code });
  }

  /**
   * The one way to add context on the way up: a VfioError with the same code, errno, syscall,
   * ioctl (unless the caller names it exactly), path and detail, `what.context` stacked in front
   * of the inner context, the inner hint unless a better one is given, and the inner error as
   * `cause`. Anything that is not a VfioError passes through unchanged.
   */
  static wrap(e: unknown, what: VfioErrorWrapping): unknown {
    if (!(e instanceof VfioError)) return e;
    const context = what.context === undefined ? e.context : e.context === undefined ? what.context : `${what.context}: ${e.context}`;
    // A hint inferred from the errno and place is inferred again for the place the wrapper names.
    const inferred = e.check === undefined && e.hint !== undefined && e.hint === defaultHint(e.code, e);
    const hint = what.hint ?? (inferred ? undefined : e.hint);
    const common = {
      ...(context !== undefined ? { context } : {}),
      ...(hint !== undefined ? { hint } : {}),
      cause: e,
    };
    const wrapped =
      e.check !== undefined
        ? new VfioError({ ...common, code: e.code as VfioConditionCode, check: e.check })
        : new VfioError({
            ...common,
            errno: e.errno,
            syscall: e.syscall,
            ...((what.ioctl ?? e.ioctl) !== undefined ? { ioctl: (what.ioctl ?? e.ioctl)! } : {}),
            ...((e.path ?? what.path) !== undefined ? { path: (e.path ?? what.path)! } : {}),
            ...(e.detail !== undefined ? { detail: e.detail } : {}),
          });
    // The frames of the original failure say more than those of the wrapper.
    wrapped.stack = `${wrapped.name}: ${wrapped.message}\n${(e.stack ?? '').split('\n').slice(1).join('\n')}`;
    return wrapped;
  }
}

/**
 * Whether `e` is a VfioError, optionally with the given `code`; narrows the type in a catch.
 *
 * @example
 * ```ts
 * if (isVfioError(e, 'ERR_VFIO_NOT_BOUND')) console.error(e.hint);
 * ```
 *
 * @category Errors
 */
export function isVfioError(e: unknown, code?: string): e is VfioError {
  return e instanceof VfioError && (code === undefined || e.code === code);
}

const DESCRIPTIONS: Record<string, string> = {
  EPERM: 'operation not permitted',
  ENOENT: 'no such file, directory or object',
  EBADF: 'bad file descriptor',
  EAGAIN: 'resource temporarily unavailable',
  ENOMEM: 'out of memory',
  EACCES: 'permission denied',
  EFAULT: 'bad address',
  EBUSY: 'device or resource busy',
  EEXIST: 'already exists',
  ENODEV: 'no such device',
  EINVAL: 'invalid argument',
  ENOTTY: 'inappropriate ioctl for device',
  ENOSPC: 'no space left (IOVA space)',
  E2BIG: 'argument struct larger than the kernel knows, with non-zero tail',
  EOVERFLOW: 'value too large',
  EMSGSIZE: 'array too small',
  EOPNOTSUPP: 'operation not supported',
  ENXIO: 'no such device or address',
  ECANCELED: 'operation canceled',
  ERANGE: 'result out of range',
  EIO: 'input/output error',
  EADDRINUSE: 'address already in use',
  ECONNREFUSED: 'connection refused',
  ENOTCONN: 'transport endpoint is not connected',
  ENOTSOCK: 'socket operation on non-socket',
  ECONNRESET: 'connection reset by peer',
  EPIPE: 'broken pipe',
};

function describe(code: string): string {
  return DESCRIPTIONS[code] ?? 'error';
}

/**
 * The usual environmental cause of an error, by errno and where it happened. Callers with more
 * context (the typed API knows it is pinning, or opening a noiommu cdev) pass their own hint.
 *
 * @category Errors
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
  if ((code === 'EPERM' || code === 'EACCES') && path.startsWith('/dev/vfio') && d.syscall === 'open') {
    return 'check the permissions of the VFIO device node (udev rules or run as root)';
  }
  if ((code === 'EPERM' || code === 'EACCES') && path.startsWith('/sys/')) {
    return 'writing to sysfs needs root';
  }
  if (
    (code === 'ENOMEM' || code === 'EPERM' || code === 'EAGAIN') &&
    (ioctl === 'IOMMU_IOAS_MAP' ||
      ioctl === 'IOMMU_IOAS_MAP_FILE' ||
      ioctl === 'IOMMU_IOAS_COPY' ||
      ioctl === 'VFIO_IOMMU_MAP_DMA' ||
      d.syscall === 'mlock')
  ) {
    return 'pinning memory counts against RLIMIT_MEMLOCK (ulimit -l); raise it or grant CAP_IPC_LOCK';
  }
  // A missing node is only the cause when the open is what failed: an ioctl on an fd opened from
  // that node answers ENOENT for a missing object (IOMMU_IOAS_UNMAP of an unmapped range).
  if (code === 'ENOENT' && d.syscall !== 'open') return undefined;
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
