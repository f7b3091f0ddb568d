/**
 * The model profiles the conformance suite runs on: every preset that models Linux 7.3 (the
 * kernel the cases describe). Older-kernel presets are listed with the reason they are left out.
 */
import { createModelKernel, profiles, type ProfileName } from '../../lib/model';
import { discoverEnvironment, type Environment } from '../../lib/selftest/environment';
import { labNvmeProfile } from '../model/devices/lab-nvme-machine';

export interface ModelTarget {
  readonly profile: ProfileName;
  /** Why the profile is not a conformance target, or null when it is. */
  readonly excluded: string | null;
}

export function modelTargets(): ModelTarget[] {
  return (Object.keys(profiles) as ProfileName[]).map((profile) => {
    const k = profiles[profile].kernel;
    const is73 = k.major > 7 || (k.major === 7 && k.minor >= 3);
    return { profile, excluded: is73 ? null : `models Linux ${k.major}.${k.minor}; the conformance cases describe Linux 7.3` };
  });
}

/** A freshly booted model machine of `profile`, discovered like a real one. */
export function modelEnvironment(profile: ProfileName): Environment {
  return discoverEnvironment(createModelKernel(profile));
}

/**
 * More model machines the suite runs on, beyond the device each preset's discovery picks: every
 * further vfio-pci function of a preset as the device under test (the multi machine's second
 * function and the one behind its root port), and the lab's nvme machine (an MSI-X, FLR, 64-bit
 * BAR, PCI Express function), which lives with the parity tests rather than among the presets.
 */
export interface ModelMachineTarget {
  readonly name: string;
  environment(): Environment;
}

export function moreModelTargets(): ModelMachineTarget[] {
  const targets: ModelMachineTarget[] = [];
  for (const { profile, excluded } of modelTargets()) {
    if (excluded) continue;
    const others = discoverEnvironment(createModelKernel(profile)).devices.slice(1);
    for (const device of others) {
      targets.push({ name: `${profile}, device ${device.bdf}`, environment: () => discoverEnvironment(createModelKernel(profile), { bdf: device.bdf }) });
    }
  }
  for (const mode of ['noiommu', 'iommu'] as const) {
    targets.push({ name: `lab-nvme-${mode} (test/model/devices/lab-nvme-machine.ts)`, environment: () => discoverEnvironment(createModelKernel(labNvmeProfile(mode))) });
  }
  return targets;
}
