/**
 * A model host that uses some of its devices, as a workstation does: an e1000e NIC whose interface
 * is up, a second one whose interface is down, an NVMe controller whose namespace has two
 * partitions with the second mounted, an AHCI controller with one unmounted disk, and the edu
 * device on vfio-pci.
 */
import { createModelKernel, profiles, type ModelKernel, type PciDeviceSpec, type Profile } from '../../lib/model';

export const NIC_UP = '0000:00:02.0';
export const NIC_DOWN = '0000:00:04.0';
export const EDU = '0000:00:03.0';
export const NVME = '0000:00:05.0';
export const AHCI = '0000:00:1f.2';

const nic = (address: string): PciDeviceSpec => ({
  address,
  device: 'platform',
  driver: 'e1000e',
  options: { vendor: 0x8086, device: 0x10d3, class: 0x020000 },
});

export function hostUseProfile(mode: 'linux-7.3-iommu' | 'linux-7.3-noiommu' = 'linux-7.3-iommu'): Profile {
  const base = profiles[mode];
  return {
    ...base,
    name: `host-use-${mode}`,
    pci: [
      nic(NIC_UP),
      { address: EDU, device: 'edu', driver: 'vfio-pci', options: { dma_mask: 0xffff_ffff_ffff_ffffn } },
      nic(NIC_DOWN),
      { address: NVME, device: 'nvme', driver: 'nvme' },
      { address: AHCI, device: 'platform', driver: 'ahci', options: { vendor: 0x8086, device: 0x2922, class: 0x010601 } },
    ],
    host: {
      interfaces: [
        { function: NIC_UP, name: 'enp0s2', up: true },
        { function: NIC_DOWN, name: 'enp0s4', up: false, address: '52:54:00:ab:cd:ef' },
      ],
      disks: [
        { function: NVME, partitions: 2, sectors: 262144n },
        { function: AHCI, partitions: 1 },
      ],
      mounts: [{ source: '/dev/nvme0n1p2', target: '/srv/data', fstype: 'ext4', options: 'rw,noatime' }],
    },
  };
}

export function hostUseKernel(mode?: 'linux-7.3-iommu' | 'linux-7.3-noiommu'): ModelKernel {
  return createModelKernel(hostUseProfile(mode));
}
