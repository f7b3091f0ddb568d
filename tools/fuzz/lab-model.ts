/**
 * The model machine that stands in for one lab run: the Linux 7.3 preset of the lab's mode and
 * kernel build, with QEMU's edu at the PCI address the lab guest reported. Used wherever a lab
 * trace is replayed on the model (in the guest, on the host, and for the checked-in corpus).
 */
import { createModelKernel, profiles, type ModelKernel } from '../../lib/model';
import type { Profile } from '../../lib/model/profile';

export type LabMode = 'noiommu' | 'iommu';
/** The lab's kernel builds: with the legacy group interface, or cdev only ("null group"). */
export type LabKernelBuild = 'group' | 'nullgroup';
export const LAB_MODES: readonly LabMode[] = ['noiommu', 'iommu'];

export function labProfile(mode: LabMode, bdf = '0000:00:03.0', build: LabKernelBuild = 'group'): Profile {
  const base = mode === 'noiommu'
    ? profiles[build === 'group' ? 'linux-7.3-noiommu' : 'linux-7.3-noiommu-nullgroup']
    : build === 'group'
      ? profiles['linux-7.3-iommu']
      : { ...profiles['linux-7.3-iommu'], name: 'linux-7.3-iommu-nullgroup', config: profiles['linux-7.3-noiommu-nullgroup'].config };
  return { ...base, pci: base.pci.map((spec) => (spec.device === 'edu' ? { ...spec, address: bdf } : spec)) };
}

export function labModelKernel(mode: LabMode, bdf = '0000:00:03.0', build: LabKernelBuild = 'group'): ModelKernel {
  return createModelKernel(labProfile(mode, bdf, build));
}
