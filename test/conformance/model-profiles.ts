/**
 * The model profiles the conformance suite runs on: every preset, the older-kernel one too. The
 * cases describe Linux 7.3, and each states what it needs of the host (a command 7.3 added, the
 * cdev of a noiommu device), so on a 6.x kernel they skip with that reason rather than fail —
 * as on a real host with an older kernel.
 */
import { createModelKernel, profiles, type ProfileName } from '../../lib/model';
import { discoverEnvironment, type Environment } from '../../lib/selftest/environment';

export interface ModelTarget {
  readonly profile: ProfileName;
}

export function modelTargets(): ModelTarget[] {
  return (Object.keys(profiles) as ProfileName[]).map((profile) => ({ profile }));
}

/** A freshly booted model machine of `profile`, discovered like a real one. */
export function modelEnvironment(profile: ProfileName): Environment {
  return discoverEnvironment(createModelKernel(profile));
}

/**
 * More model machines the suite runs on, beyond the device each preset's discovery picks: every
 * further vfio-pci function of a preset as the device under test (the multi machine's second
 * function and the one behind its root port). The lab's nvme machine (an MSI-X, FLR, 64-bit BAR,
 * PCI Express function) is a preset (lab-nvme-*), so modelTargets has it already.
 */
export interface ModelMachineTarget {
  readonly name: string;
  environment(): Environment;
}

export function moreModelTargets(): ModelMachineTarget[] {
  const targets: ModelMachineTarget[] = [];
  for (const { profile } of modelTargets()) {
    const others = discoverEnvironment(createModelKernel(profile)).devices.slice(1);
    for (const device of others) {
      targets.push({
        name: `${profile}, device ${device.bdf}`,
        environment: () => discoverEnvironment(createModelKernel(profile), { bdf: device.bdf }),
      });
    }
  }
  return targets;
}
