/**
 * The vfio-pci driver (drivers/vfio/pci/vfio_pci.c) as the PCI bus sees it: it matches any
 * function but only through driver_override ("override only" ID table) or IDs added with new_id,
 * refuses non-type-0 headers, and its probe registers the VFIO device; remove unregisters it.
 *
 * As an SR-IOV PF driver (vfio_pci_sriov_configure → vfio_pci_core_sriov_configure): refused with
 * ENOENT unless the enable_sriov module parameter is set (default N; it is writable at
 * /sys/module/vfio_pci/parameters/enable_sriov); a second enable without a disable in between is
 * EINVAL. The PF goes on the "SR-IOV PFs" list before its VFs appear, so each VF, which the
 * PF's bus notifier gives a driver_override of vfio-pci, finds its PF when it registers (the VF
 * token's owner); disabling takes the PF off the list again.
 */
import { fail } from '../errno';
import { rwAttr } from '../fs/nodes';
import { PCI_HEADER_TYPE } from '../../uapi/pci';
import { PCI_ANY_ID, type PciDriver, type PciErrorHandlers } from '../pci/bus';
import type { PciSlot } from '../pci/host';
import type { PciSriov } from '../pci/iov';
import type { VfioSubsystem } from './subsystem';

export class VfioPciDriver implements PciDriver {
  readonly name = 'vfio-pci';
  readonly idTable = [
    { vendor: PCI_ANY_ID, device: PCI_ANY_ID, subvendor: PCI_ANY_ID, subdevice: PCI_ANY_ID, class: 0, classMask: 0, overrideOnly: true },
  ];
  private enableSriov = false;
  /**
   * vfio_pci_core_err_handlers: only error_detected, which tells the user through the ERR eventfd
   * and votes to recover; with no slot_reset or resume the user restores the device itself.
   */
  readonly errorHandlers: PciErrorHandlers = {
    errorDetected: (slot) => {
      this.vfio.deviceOf(slot)?.core.errorDetected();
      return 'can-recover';
    },
  };

  constructor(
    private readonly vfio: VfioSubsystem,
    private readonly sriovOf: (slot: PciSlot) => PciSriov | undefined = () => undefined,
  ) {
    vfio.env.vfs.add(
      '/sys/module/vfio_pci/parameters/enable_sriov',
      rwAttr(
        () => (this.enableSriov ? 'Y\n' : 'N\n'),
        (data) => {
          this.enableSriov = parseBool(data);
        },
        0o644,
      ),
    );
  }

  /** vfio_pci_probe → vfio_pci_core_register_device. */
  probe(slot: PciSlot): void {
    if ((slot.device.config.read(PCI_HEADER_TYPE, 1) & 0x7f) !== 0) {
      fail('EINVAL', `${slot.name} is not a type 0 (normal) function`);
    }
    this.vfio.registerDevice(slot);
  }

  /** vfio_pci_remove: vfio_pci_core_unregister_device disables SR-IOV first. */
  remove(slot: PciSlot): void {
    const sriov = this.sriovOf(slot);
    const core = this.vfio.deviceOf(slot)?.core;
    if (sriov && core?.sriovListed) this.configure(slot, sriov, 0);
    this.vfio.unregisterDevice(slot);
  }

  /** vfio_pci_remove from a hot-unplug: it blocks until the user closes the device. */
  async removeWhenReleased(slot: PciSlot): Promise<void> {
    const sriov = this.sriovOf(slot);
    const core = this.vfio.deviceOf(slot)?.core;
    if (sriov && core?.sriovListed) this.configure(slot, sriov, 0);
    await this.vfio.unregisterDeviceWhenReleased(slot);
  }

  /** vfio_pci_sriov_configure. */
  sriovConfigure(slot: PciSlot, numVfs: number): number {
    if (!this.enableSriov) fail('ENOENT', 'vfio-pci does not configure SR-IOV unless its enable_sriov module parameter is set');
    const sriov = this.sriovOf(slot);
    if (!sriov) fail('ENODEV', `${slot.name} is not an SR-IOV PF`);
    return this.configure(slot, sriov, numVfs);
  }

  /** vfio_pci_core_sriov_configure. */
  private configure(slot: PciSlot, sriov: PciSriov, numVfs: number): number {
    const core = this.vfio.deviceOf(slot)?.core;
    if (!core) fail('ENODEV', `${slot.name} is not a VFIO device`);
    if (numVfs) {
      if (core.sriovListed) fail('EINVAL', 'SR-IOV was already enabled through this PF');
      core.sriovListed = true;
      try {
        sriov.enable(numVfs, (vf) => this.vfio.env.bus.setDriverOverride(vf, Buffer.from(this.name), this.vfio.env.pageSize));
      } catch (e) {
        core.sriovListed = false;
        throw e;
      }
      return numVfs;
    }
    if (sriov.numVfs) sriov.disable();
    core.sriovListed = false;
    return 0;
  }
}

/** kstrtobool as module parameters read it: 1/y/Y/on and 0/n/N/off. */
function parseBool(data: Buffer): boolean {
  const t = data.toString('latin1').trim().toLowerCase();
  if (['1', 'y', 'yes', 'on', 'true'].includes(t)) return true;
  if (['0', 'n', 'no', 'off', 'false'].includes(t)) return false;
  fail('EINVAL', `'${t}' is not a boolean`);
}
