/**
 * The lab's 'hotplug' machine as a model profile (scripts/lab/common.sh): q35's platform functions
 * and three pcie-root-ports at 00:05.0-00:07.0, with an edu bound to vfio-pci behind each (buses
 * 1-3), as the hot-unplug cases use it.
 */
import { profiles, type Profile } from '../../lib/model';
import { labPlatformFunctions } from '../../lib/model/profile';

const PORT_SLOTS = [5, 6, 7];
/** Where the lab's SeaBIOS put each edu's BAR 0 (read off the guest's sysfs `resource`). */
const EDU_BAR0 = [0xfe80_0000n, 0xfe60_0000n, 0xfe40_0000n];

export function labHotplugProfile(mode: 'noiommu' | 'iommu'): Profile {
  const base = profiles[`lab-multi-${mode}`];
  return {
    ...base,
    name: `lab-hotplug-${mode}`,
    pci: [
      ...labPlatformFunctions([3, 4]),
      ...PORT_SLOTS.flatMap((slot, i) => [
        { address: `0000:00:0${slot}.0`, device: 'pcie-root-port', driver: null },
        {
          address: `0000:0${i + 1}:00.0`,
          device: 'edu',
          driver: 'vfio-pci',
          options: { dma_mask: 0xffff_ffff_ffff_ffffn, bar0: EDU_BAR0[i]! },
        },
      ]),
    ],
  };
}
