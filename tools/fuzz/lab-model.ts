/**
 * The model machine that stands in for one lab run: the Linux 7.3 preset of the lab's mode and
 * kernel build, with the lab machine's devices — QEMU's edu at the PCI address the lab guest
 * reported (machine 'edu'), the NVMe-shaped function (tools/fuzz/lab-nvme-machine.ts, machine
 * 'nvme'), the three edu functions of the 'multi' machine, or the SR-IOV NVMe PF of the 'sriov' machine
 * (tools/fuzz/lab-sriov-machine.ts). Used wherever a lab trace is
 * replayed on the model (in the guest, on the host, and for the checked-in corpus).
 */
import { createModelKernel, profiles, type ModelKernel } from '../../lib/model';
import type { Profile } from '../../lib/model/profile';
import { labNvmeProfile } from './lab-nvme-machine';
import { labSriovProfile } from './lab-sriov-machine';
import { labHotplugProfile } from './lab-hotplug-machine';
import { labNvmePortProfile } from './lab-nvme-port-machine';

export type LabMode = 'noiommu' | 'iommu';
/** The lab's kernel builds: with the legacy group interface, or cdev only ("null group"). */
export type LabKernelBuild = 'group' | 'nullgroup';
/** The lab's machines (scripts/lab/common.sh). */
export type LabMachineName = 'edu' | 'nvme' | 'multi' | 'sriov' | 'hotplug' | 'nvme-port';
export const LAB_MODES: readonly LabMode[] = ['noiommu', 'iommu'];

/** The kernel configuration of a build: the null-group build has no group interface and no containers. */
function withBuild(base: Profile, build: LabKernelBuild): Profile {
  if (build === 'group') return base;
  // SR-IOV and AER are the same in both builds (base.config).
  const { PCI_IOV, PCIEAER, PCIEAER_INJECT } = base.config;
  const same = {
    ...(PCI_IOV === undefined ? {} : { PCI_IOV }),
    ...(PCIEAER === undefined ? {} : { PCIEAER }),
    ...(PCIEAER_INJECT === undefined ? {} : { PCIEAER_INJECT }),
  };
  return { ...base, name: `${base.name}-nullgroup`, config: { ...profiles['linux-7.3-noiommu-nullgroup'].config, ...same } };
}

function machineProfile(machine: LabMachineName, mode: LabMode, bdf: string): Profile {
  switch (machine) {
    case 'nvme':
      return labNvmeProfile(mode);
    case 'sriov':
      return labSriovProfile(mode);
    case 'multi':
      return profiles[`lab-multi-${mode}`];
    case 'hotplug':
      return labHotplugProfile(mode);
    case 'nvme-port':
      return labNvmePortProfile(mode);
    case 'edu': {
      const base = profiles[mode === 'noiommu' ? 'linux-7.3-noiommu' : 'linux-7.3-iommu'];
      return { ...base, pci: base.pci.map((spec) => (spec.device === 'edu' ? { ...spec, address: bdf } : spec)) };
    }
  }
}

export function labProfile(mode: LabMode, bdf = '0000:00:03.0', build: LabKernelBuild = 'group', machine: LabMachineName = 'edu'): Profile {
  // The edu noiommu null-group build has its own preset (same devices, its name kept for reports).
  if (machine === 'edu' && mode === 'noiommu' && build === 'nullgroup') {
    const base = profiles['linux-7.3-noiommu-nullgroup'];
    return { ...base, pci: base.pci.map((spec) => (spec.device === 'edu' ? { ...spec, address: bdf } : spec)) };
  }
  return withBuild(machineProfile(machine, mode, bdf), build);
}

export function labModelKernel(
  mode: LabMode,
  bdf = '0000:00:03.0',
  build: LabKernelBuild = 'group',
  machine: LabMachineName = 'edu',
): ModelKernel {
  return createModelKernel(labProfile(mode, bdf, build, machine));
}
