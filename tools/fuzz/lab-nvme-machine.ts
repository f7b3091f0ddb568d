/**
 * The lab's 'nvme' machine for the parity test: q35's platform functions and, at 00:04.0, a
 * device with exactly the PCI shape of QEMU 7.2's NVMe controller (1b36:0010, class 010802,
 * revision 2, a 16 KiB 64-bit BAR0 at 0xfebd4000 holding the 65-entry MSI-X table at 0x2000 and
 * its PBA at 0x3000, MSI-X at 0x40, PM at 0x60 with No_Soft_Reset, a PCIe v2 integrated endpoint
 * capability with FLR at 0x80, no MSI), written on the public SDK. Its registers are not the
 * controller's: the real NVMe model is lib/devices/nvme's.
 */
import {
  DeviceModel, msixCapability, pcieCapability, pmCapability, profiles, type Profile,
} from '../../lib/model';
import { labPlatformFunctions } from '../../lib/model/profile';
import { PCI_EXP_DEVCAP2, PCI_EXP_DEVCTL, PCI_EXP_LNKCAP, PCI_EXP_LNKSTA } from '../../lib/uapi/pci';

const PCIE_AT = 0x80;

export class NvmeShapedDevice extends DeviceModel {
  constructor() {
    super({
      model: 'nvme-shape',
      identity: { vendorId: 0x1b36, deviceId: 0x0010, classCode: 0x010802, revision: 0x02, subsystemVendorId: 0x1af4, subsystemId: 0x1100 },
      bars: [{ index: 0, size: 0x4000n, type: 'memory64', address: 0xfebd_4000n }],
      capabilities: [
        msixCapability({ vectors: 65, table: { bar: 0, offset: 0x2000 }, pba: { bar: 0, offset: 0x3000 }, at: 0x40 }),
        pcieCapability({ type: 'integrated-endpoint', flr: true, at: PCIE_AT }),
        pmCapability({ noSoftReset: true, at: 0x60 }),
      ],
    });
    this.qemuPcieRegisters();
    this.handleMmio(0, { widths: [32, 64], read: () => 0n, write: () => undefined });
  }

  override onReset(): void {
    this.qemuPcieRegisters();
  }

  /**
   * QEMU's pcie_cap_init leaves Device Control at 0 and fills the link registers (x1, 2.5 GT/s,
   * L0s) and Device Capabilities 2 (extended fmt field, end-end TLP prefix) of an integrated
   * endpoint too, where the SDK's capability builder differs; a reset brings them back.
   */
  private qemuPcieRegisters(): void {
    const c = this.config;
    c.setRaw(PCIE_AT + PCI_EXP_DEVCTL, 2, 0);
    c.setRaw(PCIE_AT + PCI_EXP_LNKCAP, 4, 0x0000_0411);
    c.setRaw(PCIE_AT + PCI_EXP_LNKSTA, 2, 0x0011);
    c.setRaw(PCIE_AT + PCI_EXP_DEVCAP2, 4, 0x0030_0000);
  }
}

export function labNvmeProfile(mode: 'noiommu' | 'iommu'): Profile {
  const base = profiles[mode === 'iommu' ? 'linux-7.3-iommu' : 'linux-7.3-noiommu'];
  return {
    ...base,
    name: `lab-nvme-${mode}`,
    pci: [
      ...labPlatformFunctions([3, 5]),
      { address: '0000:00:04.0', device: new NvmeShapedDevice(), driver: 'vfio-pci' },
    ],
  };
}
