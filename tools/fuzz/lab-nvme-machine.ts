/**
 * The lab's 'nvme' machine as a model profile: q35's platform functions and, at 00:04.0, the model
 * of QEMU 7.2's NVMe controller (lib/devices/nvme) bound to vfio-pci, as scripts/lab/common.sh
 * lays the machine out. The fuzzer runs on it, and so do the model's parity and conformance tests.
 */
import { profiles, type Profile } from '../../lib/model';
import { labPlatformFunctions } from '../../lib/model/profile';
import { NvmeController } from '../../lib/devices/nvme';

export function labNvmeProfile(mode: 'noiommu' | 'iommu'): Profile {
  const base = profiles[mode === 'iommu' ? 'linux-7.3-iommu' : 'linux-7.3-noiommu'];
  return {
    ...base,
    name: `lab-nvme-${mode}`,
    // The lab kernels are built with CONFIG_PCI_IOV (scripts/lab/kernel/base.config).
    config: { ...base.config, PCI_IOV: true },
    pci: [...labPlatformFunctions([3, 5]), { address: '0000:00:04.0', device: new NvmeController(), driver: 'vfio-pci' }],
  };
}
