/**
 * The model machine that stands in for one lab run: the Linux 7.3 preset of the lab's mode, with
 * QEMU's edu at the PCI address the lab guest reported. Used wherever a lab trace is replayed on
 * the model (in the guest, on the host, and in the checked-in corpus).
 */
import { createModelKernel, profiles, type ModelKernel } from '../model';
import type { Profile } from '../model/profile';

export type LabMode = 'noiommu' | 'iommu';
export const LAB_MODES: readonly LabMode[] = ['noiommu', 'iommu'];

export function labProfile(mode: LabMode, bdf = '0000:00:03.0'): Profile {
  const base = profiles[mode === 'noiommu' ? 'linux-7.3-noiommu' : 'linux-7.3-iommu'];
  return { ...base, pci: base.pci.map((spec) => (spec.device === 'edu' ? { ...spec, address: bdf } : spec)) };
}

export function labModelKernel(mode: LabMode, bdf = '0000:00:03.0'): ModelKernel {
  return createModelKernel(labProfile(mode, bdf));
}
