/**
 * What the device under test reports about itself once bound, for the needs that depend on the
 * device rather than the host: how many MSI-X vectors vfio-pci offers (GET_IRQ_INFO), whether
 * VFIO_DEVICE_RESET works (GET_INFO's FLAGS_RESET) and whether a slot or bus reset can reach it
 * (GET_PCI_HOT_RESET_INFO answers ENODEV when none can). The probe opens the cdev, binds it to a
 * fresh iommufd, asks, and closes both again before any case runs; where it cannot (no
 * /dev/iommu, a noiommu device without CAP_SYS_RAWIO) the reason is kept instead.
 */
import type { Kernel } from '../sys/kernel';
import { isVfioError } from '../sys/errors';
import { O_CLOEXEC, O_RDWR } from '../sys/constants';
import * as V from '../uapi/vfio';
import { rawIoctl } from './raw-ioctl';

/**
 * The device facts when the probe could open and bind the device.
 *
 * @category Conformance suite
 */
export interface ProbedFacts {
  /** The probe ran. */
  readonly probed: true;
  /** GET_IRQ_INFO's count for the MSI-X index (0: the function has no MSI-X). */
  readonly msixVectors: number;
  /** GET_INFO reports VFIO_DEVICE_FLAGS_RESET: VFIO_DEVICE_RESET has a method to use. */
  readonly functionReset: boolean;
  /** GET_PCI_HOT_RESET_INFO did not answer ENODEV: a slot or bus reset reaches the function. */
  readonly busReset: boolean;
}

/**
 * The device facts when the probe could not open or bind the device.
 *
 * @category Conformance suite
 */
export interface UnprobedFacts {
  /** The probe did not run. */
  readonly probed: false;
  /** Why not (no /dev/iommu, or the open or bind failed), for skip reasons. */
  readonly reason: string;
}

/**
 * What the device under test reports about itself once bound, or why the probe could not ask; the
 * device-fact needs (msix, function-reset, bus-reset) read it.
 *
 * @category Conformance suite
 */
export type DeviceFacts = ProbedFacts | UnprobedFacts;

export function probeDevice(kernel: Kernel, cdevPath: string): DeviceFacts {
  const opened: number[] = [];
  try {
    const deviceFd = kernel.open(cdevPath, O_RDWR | O_CLOEXEC);
    opened.push(deviceFd);
    const iommufd = kernel.open('/dev/iommu', O_RDWR | O_CLOEXEC);
    opened.push(iommufd);
    rawIoctl(kernel, deviceFd, V.VFIO_DEVICE_BIND_IOMMUFD, V.VfioDeviceBindIommufd, { iommufd });
    const info = rawIoctl(kernel, deviceFd, V.VFIO_DEVICE_GET_INFO, V.VfioDeviceInfo, {}).out;
    const msix = rawIoctl(kernel, deviceFd, V.VFIO_DEVICE_GET_IRQ_INFO, V.VfioIrqInfo, { index: V.VFIO_PCI_MSIX_IRQ_INDEX }).out;
    return {
      probed: true,
      msixVectors: msix.count,
      functionReset: (info.flags & V.VFIO_DEVICE_FLAGS_RESET) !== 0,
      busReset: hotResetReaches(kernel, deviceFd),
    };
  } catch (e) {
    return { probed: false, reason: `probing ${cdevPath} failed: ${isVfioError(e) ? e.code : (e as Error).message}` };
  } finally {
    for (const fd of opened.reverse()) kernel.close(fd);
  }
}

/** GET_PCI_HOT_RESET_INFO with no room for devices: ENOSPC (or success) when a reset reaches the function. */
function hotResetReaches(kernel: Kernel, deviceFd: number): boolean {
  try {
    rawIoctl(kernel, deviceFd, V.VFIO_DEVICE_GET_PCI_HOT_RESET_INFO, V.VfioPciHotResetInfo, {});
    return true;
  } catch (e) {
    if (isVfioError(e) && e.code === 'ENOSPC') return true;
    if (isVfioError(e) && e.code === 'ENODEV') return false;
    throw e;
  }
}

export function describeFacts(facts: DeviceFacts): string {
  if (!facts.probed) return facts.reason;
  return (
    `${facts.msixVectors} MSI-X vectors, ${facts.functionReset ? 'function reset' : 'no function reset'}, ` +
    `${facts.busReset ? 'bus reset' : 'no bus reset'}`
  );
}
