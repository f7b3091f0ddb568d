/**
 * Which kernel a `vfio` command talks to: the real one by default, the built-in model with
 * `--model[=PROFILE]` (default profile linux-7.3-noiommu). Each invocation with --model starts a
 * fresh simulated host, so state does not carry over between commands.
 */
import type { Kernel } from '../sys/kernel';
import { nativeKernel } from '../sys/native-kernel';
import { createModelKernel, profiles } from '../model';
import { isProfileName } from '../model/profile';
import { UsageError } from './args';

export const DEFAULT_MODEL_PROFILE = 'linux-7.3-noiommu';

export function chooseKernel(model: string | true | undefined): Kernel {
  if (model === undefined) return nativeKernel();
  const name = model === true ? DEFAULT_MODEL_PROFILE : model;
  if (!isProfileName(name)) {
    throw new UsageError(`unknown model profile '${name}' (profiles: ${Object.keys(profiles).join(', ')})`);
  }
  return createModelKernel(name);
}
