/**
 * Which iommufd commands the kernel under test knows. iommufd looks a command up in its table
 * before reading anything else, and a number past the table's end (a command newer than the
 * kernel) ends as ENOTTY; a known command whose struct declares size 0 is refused with EINVAL
 * because 0 is below every command's minimum (iommufd_fops_ioctl). So one call per command, with
 * nothing for the command to act on, tells the two apart on any kernel from 6.2 on, without
 * keeping a table of which release added what.
 */
import type { Kernel } from '../sys/kernel';
import { isVfioError } from '../sys/errors';
import { O_CLOEXEC, O_RDWR } from '../sys/constants';
import { allIoctls } from '../uapi/requests';

/**
 * Which iommufd commands the kernel under test knows, or why it could not be asked; `command:NAME`
 * needs read it.
 *
 * @category Conformance suite
 */
export type CommandProbe =
  | {
      /** The probe ran. */
      readonly probed: true;
      /** The names (IoctlRequest names) of the iommufd commands the kernel knows. */
      readonly known: ReadonlySet<string>;
    }
  | {
      /** The probe did not run. */
      readonly probed: false;
      /** Why not (no /dev/iommu, or opening it failed). */
      readonly reason: string;
    };

export function probeIommufdCommands(kernel: Kernel): CommandProbe {
  if (!kernel.exists('/dev/iommu')) return { probed: false, reason: 'there is no /dev/iommu' };
  let fd: number;
  try {
    fd = kernel.open('/dev/iommu', O_RDWR | O_CLOEXEC);
  } catch (e) {
    return { probed: false, reason: `opening /dev/iommu failed: ${isVfioError(e) ? e.code : (e as Error).message}` };
  }
  const known = new Set<string>();
  try {
    for (const request of allIoctls()) {
      if (request.file !== 'iommufd') continue;
      const zeroSize = Buffer.alloc(8);
      try {
        kernel.ioctl(fd, request.number, zeroSize);
        known.add(request.name);
      } catch (e) {
        if (!isVfioError(e) || e.code !== 'ENOTTY') known.add(request.name);
      }
    }
  } finally {
    kernel.close(fd);
  }
  return { probed: true, known };
}
