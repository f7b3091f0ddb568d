/**
 * The reset methods the PCI core finds for a function (drivers/pci/pci.c pci_reset_fn_methods, as
 * sysfs reset_method lists them), read from its config space and its place in the topology:
 *   - flr: the PCI Express capability advertises Function Level Reset;
 *   - pm: a PM capability without No_Soft_Reset (a D3hot round trip resets the function);
 *   - bus: the function sits alone on a secondary bus, so resetting the bridge's bus resets it
 *     and nothing else (pci_parent_bus_reset / the slot reset of a hotplug port).
 * A function on the root bus has no bridge to reset through, so no bus method.
 */
import { PCI_CAP_ID_EXP, PCI_CAP_ID_PM } from '../../uapi/pci';
import type { PciSlot } from './host';
import { isBridge } from './topology';

export type ResetMethod = 'flr' | 'pm' | 'bus';

const PCI_EXP_DEVCAP = 4;
const PCI_EXP_DEVCAP_FLR = 0x1000_0000;
const PCI_PM_CTRL = 4;
const PCI_PM_CTRL_NO_SOFT_RESET = 0x0008;

export function resetMethods(slot: PciSlot, all: readonly PciSlot[]): ResetMethod[] {
  const c = slot.device.config;
  const methods: ResetMethod[] = [];
  const exp = c.findCapability(PCI_CAP_ID_EXP);
  if (exp && c.getRaw(exp + PCI_EXP_DEVCAP, 4) & PCI_EXP_DEVCAP_FLR) methods.push('flr');
  const pm = c.findCapability(PCI_CAP_ID_PM);
  if (pm && !(c.getRaw(pm + PCI_PM_CTRL, 2) & PCI_PM_CTRL_NO_SOFT_RESET)) methods.push('pm');
  if (busResettable(slot) && !all.some((o) => o !== slot && o.upstream === slot.upstream)) methods.push('bus');
  return methods;
}

/** pci_probe_reset_bus for the function's bus: there is a bridge above it, and it is no bridge itself. */
export function busResettable(slot: PciSlot): boolean {
  return slot.upstream !== undefined && !isBridge(slot.device);
}
