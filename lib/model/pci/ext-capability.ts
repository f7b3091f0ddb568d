/** pci_find_ext_capability over a function's config space (the list starts at 0x100). */
import type { PciDeviceModel } from './device-model';

const CAP_START = 0x100;
/** (4096 - 256) / 8: the kernel's bound on the walk, so a looped list ends. */
const MAX_CAPS = 480;

/** Offset of the first extended capability with this ID, or 0. */
export function findExtendedCapability(device: PciDeviceModel, id: number): number {
  const c = device.config;
  if (c.size <= CAP_START) return 0;
  for (let pos = CAP_START, guard = 0; pos >= CAP_START && guard < MAX_CAPS; guard++) {
    const header = c.getRaw(pos, 4);
    if (header === 0 || header === 0xffff_ffff) return 0;
    if ((header & 0xffff) === id) return pos;
    pos = (header >>> 20) & 0xffc;
  }
  return 0;
}
