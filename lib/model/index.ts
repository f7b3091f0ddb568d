/**
 * The model kernel: a simulated Linux 7.3 host behind the `Kernel` interface.
 *
 *   const kernel = createModelKernel('linux-7.3-noiommu');
 *
 * A profile name picks a preset machine (see profile.ts); a Profile object describes any other.
 */
import { bootPciMachine } from './boot';
import { ModelKernel } from './model-kernel';
import { resolveProfile, type Profile, type ProfileName } from './profile';

/** The rest of the simulated host, installed in this order when a kernel boots. */
const bootSteps: readonly ((kernel: ModelKernel) => void)[] = [
  (kernel) => { kernel.pci = bootPciMachine(kernel); },
];

export function createModelKernel(profile: ProfileName | Profile): ModelKernel {
  const kernel = new ModelKernel(resolveProfile(profile));
  for (const step of bootSteps) step(kernel);
  return kernel;
}

export { ModelKernel } from './model-kernel';
export { profiles, resolveProfile, hasIommufdNoiommu } from './profile';
export type { Profile, ProfileName, KernelConfig, IommuUnit, MemoryConfig, PciDeviceSpec, ProcessCredentials } from './profile';
export { PhysicalAccessFault } from './memory/physical-memory';
export { IommufdContext, IommuFault } from './iommufd/iommufd-ctx';
export type { BindableDevice } from './iommufd/iommufd-device';
export { KernelError } from './errno';
