/** Every conformance case, in the order a run reports them. */
import type { ConformanceCase } from '../case';
import { deviceCases } from './device';
import { eduCases } from './edu';
import { getPaCases } from './get-pa';
import { groupCases } from './group';
import { hwptCases } from './hwpt';
import { iommufdSizeCases } from './iommufd-size';
import { ioasCopyCases } from './ioas-copy';
import { optionCases } from './options';
import { regionIoCases } from './region-io';
import { ioasCases } from './ioas';
import { legacyGroupCases } from './legacy-group';
import { lifecycleCases } from './lifecycle';
import { mapUnmapCases } from './map-unmap';
import { privilegeCases } from './privileges';
import { seedCases } from './seed-noiommu';
import { setIrqsCases } from './set-irqs';
import { sysfsCases } from './sysfs';
import { wrongFdCases } from './wrong-fd';

export const allCases: readonly ConformanceCase[] = [
  ...seedCases,
  ...ioasCases,
  ...mapUnmapCases,
  ...ioasCopyCases,
  ...optionCases,
  ...getPaCases,
  ...hwptCases,
  ...deviceCases,
  ...regionIoCases,
  ...setIrqsCases,
  ...lifecycleCases,
  ...wrongFdCases,
  ...groupCases,
  ...legacyGroupCases,
  ...eduCases,
  ...privilegeCases,
  ...iommufdSizeCases,
  ...sysfsCases,
];

const ids = new Set<string>();
for (const c of allCases) {
  if (ids.has(c.id)) throw new Error(`duplicate conformance case id ${c.id}`);
  ids.add(c.id);
}

export function findCase(id: string): ConformanceCase | undefined {
  return allCases.find((c) => c.id === id);
}
