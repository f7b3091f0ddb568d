/**
 * The lab's 'sriov' machine as a model profile (scripts/lab/common.sh): q35's platform functions
 * and, at 00:04.0, QEMU 7.2's NVMe controller with sriov_max_vfs=2, sriov_vq_flexible=4 and sriov_vi_flexible=2, bound to vfio-pci; its VFs
 * appear at 00:04.1 and 00:04.2 when sriov_numvfs is written.
 */
import { profiles, type Profile } from '../../lib/model';
import { labPlatformFunctions } from '../../lib/model/profile';
import { NvmeController } from '../../lib/devices/nvme';

export const LAB_SRIOV_MAX_VFS = 2;

export function labSriovProfile(mode: 'noiommu' | 'iommu'): Profile {
  const base = profiles[mode === 'iommu' ? 'linux-7.3-iommu' : 'linux-7.3-noiommu'];
  return {
    ...base,
    name: `lab-sriov-${mode}`,
    // The lab kernels are built with CONFIG_PCI_IOV (scripts/lab/kernel/base.config).
    config: { ...base.config, PCI_IOV: true },
    pci: [
      ...labPlatformFunctions([3, 5]),
      {
        address: '0000:00:04.0',
        // In the nvme-subsys 'nvmesubsys0'; the namespace is an nvme-ns device there, with that device's Copy limits.
        device: new NvmeController({
          subsystem: 'nvmesubsys0',
          sriovMaxVfs: LAB_SRIOV_MAX_VFS,
          sriovVqFlexible: 4,
          sriovViFlexible: 2,
          copyLimits: { mssrl: 128, mcl: 128, msrc: 127 },
        }),
        driver: 'vfio-pci',
      },
    ],
  };
}
