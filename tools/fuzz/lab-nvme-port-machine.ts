/**
 * The lab's 'nvme-port' machine as a model profile (scripts/lab/common.sh): q35's platform
 * functions and QEMU 7.2's NVMe controller behind a pcie-root-port at 00:05.0 (bus 1), whose AER
 * and hotplug slot the driver's platform-fault cases use.
 */
import { profiles, type Profile } from '../../lib/model';
import { labPlatformFunctions } from '../../lib/model/profile';

export function labNvmePortProfile(mode: 'noiommu' | 'iommu'): Profile {
  const base = profiles[`lab-nvme-${mode}`];
  return {
    ...base,
    name: `lab-nvme-port-${mode}`,
    pci: [
      ...labPlatformFunctions([3, 4]),
      { address: '0000:00:05.0', device: 'pcie-root-port', driver: null },
      { address: '0000:01:00.0', device: 'nvme', driver: 'vfio-pci', options: { serial: 'nodevfio0001' } },
    ],
  };
}
