/**
 * The model profiles the conformance suite runs on: every preset that models Linux 7.3 (the
 * kernel the cases describe). Older-kernel presets are listed with the reason they are left out.
 */
import { createModelKernel, profiles, type ProfileName } from '../../lib/model';
import { discoverEnvironment, type Environment } from '../../lib/selftest/environment';

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
