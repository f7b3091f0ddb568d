/**
 * The vfio-pci driver (drivers/vfio/pci/vfio_pci.c) as the PCI bus sees it: it matches any
 * function but only through driver_override ("override only" ID table) or IDs added with new_id,
 * refuses non-type-0 headers, and its probe registers the VFIO device; remove unregisters it.
 */
import { fail } from '../errno';
import { PCI_HEADER_TYPE } from '../../uapi/pci';
import { PCI_ANY_ID, type PciDriver } from '../pci/bus';
import type { PciSlot } from '../pci/host';
import type { VfioSubsystem } from './subsystem';

export class VfioPciDriver implements PciDriver {
  readonly name = 'vfio-pci';
  readonly idTable = [{ vendor: PCI_ANY_ID, device: PCI_ANY_ID, subvendor: PCI_ANY_ID, subdevice: PCI_ANY_ID, class: 0, classMask: 0, overrideOnly: true }];

  constructor(private readonly vfio: VfioSubsystem) {}

  /** vfio_pci_probe → vfio_pci_core_register_device. */
  probe(slot: PciSlot): void {
    if ((slot.device.config.read(PCI_HEADER_TYPE, 1) & 0x7f) !== 0) {
      fail('EINVAL', `${slot.name} is not a type 0 (normal) function`);
    }
    this.vfio.registerDevice(slot);
  }

  /** vfio_pci_remove. */
  remove(slot: PciSlot): void {
    this.vfio.unregisterDevice(slot);
  }
}
