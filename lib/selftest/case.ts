/**
 * A conformance case: data (id, title, what it needs from the environment) plus one function over
 * a CaseContext. The same case runs on the model and on a real kernel; its expectations are
 * stated per mode inside the function (`t.expect(..., { noiommu: 'ENOENT', iommu: 'EOPNOTSUPP' })`).
 */
import type { CaseContext } from './context';

/**
 * What a case needs from the environment; the runner skips it, with the reason, when one is missing.
 * - device: a VFIO device bound to vfio-pci (and, in noiommu mode, CAP_SYS_RAWIO to open it)
 * - edu: that device is QEMU's edu (the cases that program its registers)
 * - group-interface / no-group-interface: the legacy group node exists / does not exist for it
 * - container: /dev/vfio/vfio exists
 * - sys-rawio / without-sys-rawio: the process has / lacks CAP_SYS_RAWIO
 * - root-sysctl: may write /proc/sys (reserving huge pages)
 * - msix: the device has MSI-X vectors (GET_IRQ_INFO of the MSI-X index counts some)
 * - function-reset: GET_INFO reports VFIO_DEVICE_FLAGS_RESET
 * - bus-reset: a slot or bus reset reaches the device (GET_PCI_HOT_RESET_INFO is not ENODEV)
 * - several-devices: more than one function is bound to vfio-pci
 * - `command:NAME`: the kernel knows the iommufd command NAME (it is newer than some kernels)
 *
 * @category Conformance suite
 */
export type Need =
  | 'device'
  | 'edu'
  | 'group-interface'
  | 'no-group-interface'
  | 'container'
  | 'sys-rawio'
  | 'without-sys-rawio'
  | 'msix'
  | 'function-reset'
  | 'bus-reset'
  | 'several-devices'
  | KnownCommandNeed;

/**
 * Needs the iommufd command `NAME` (an IoctlRequest's name) to be one the kernel knows.
 *
 * @category Conformance suite
 */
export type KnownCommandNeed = `command:${string}`;

export function knowsCommand(request: { readonly name: string }): KnownCommandNeed {
  return `command:${request.name}`;
}

/**
 * One conformance case: its id, title and needs, and the function that runs it over a CaseContext
 * on any kernel.
 *
 * @category Conformance suite
 */
export interface ConformanceCase {
  /** Stable dotted id, e.g. 'ioas.unmap.partial-area'; used in reports. */
  readonly id: string;
  /** A one-line description of what the case checks, printed after the id in the report. */
  readonly title: string;
  /**
   * What the environment must offer; the runner skips the case with the reason when one is missing
   * (default: nothing).
   */
  readonly needs?: readonly Need[];
  /**
   * Runs the case: every fd and mapping it opens through `t` is released at teardown, and a thrown
   * failure or skip ends it.
   */
  run(t: CaseContext): void | Promise<void>;
}

export function defineCase(c: ConformanceCase): ConformanceCase {
  if (!/^[a-z0-9]+(?:[.-][a-z0-9]+)*$/.test(c.id)) throw new Error(`case id '${c.id}' must be lowercase dotted words`);
  return c;
}
