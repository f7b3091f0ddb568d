/**
 * pci-stub (drivers/pci/pci-stub.c): a host driver that claims a device and does nothing with it,
 * used to keep a device away from its real driver. Its id table is empty: it binds only through
 * new_id or driver_override. In the model it stands for "some other driver owns the device", the
 * state a VFIO user must move a device out of.
 */
import type { PciDriver, PciDeviceId } from './bus';

export class PciStubDriver implements PciDriver {
  readonly name = 'pci-stub';
  readonly idTable: readonly PciDeviceId[] = [];

  probe(): void {
    // pci_stub_probe only logs that it claimed the device.
  }

  remove(): void {
    // Nothing was set up, so nothing is torn down.
  }
}
