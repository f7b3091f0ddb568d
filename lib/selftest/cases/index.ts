/** Every conformance case, in the order a run reports them. */
import type { ConformanceCase } from '../case';
import { deviceCases } from './device-cases';
import { dmaMappingCases } from './dma-mapping-cases';
import { driverCases } from './driver-cases';
import { eduCases } from './edu-cases';
import { getPaCases } from './get-pa-cases';
import { groupCases } from './group-cases';
import { hwptCases } from './hwpt-cases';
import { iommufdSizeCases } from './iommufd-size-cases';
import { ioasCopyCases } from './ioas-copy-cases';
import { optionCases } from './options-cases';
import { pciDeviceCases } from './pci-device-cases';
import { regionIoCases } from './region-io-cases';
import { resetCases } from './reset-cases';
import { configSpaceCases } from './config-space-cases';
import { ioasCases } from './ioas-cases';
import { legacyGroupCases } from './legacy-group-cases';
import { lifecycleCases } from './lifecycle-cases';
import { mapUnmapCases } from './map-unmap-cases';
import { mmioDmaCases } from './mmio-dma-cases';
import { msixCases } from './msix-cases';
import { multiDeviceCases } from './multi-device-cases';
import { parallelInitCases } from './parallel-init-cases';
import { privilegeCases } from './privileges-cases';
import { seedCases } from './seed-noiommu-cases';
import { setIrqsCases } from './set-irqs-cases';
import { sriovCases } from './sriov-cases';
import { sysfsCases } from './sysfs-cases';
import { wrongFdCases } from './wrong-fd-cases';

/**
 * Every conformance case, in the order a run reports them.
 *
 * @category Conformance suite
 */
export const allCases: readonly ConformanceCase[] = [
  ...seedCases,
  ...ioasCases,
  ...mapUnmapCases,
  ...dmaMappingCases,
  ...mmioDmaCases,
  ...ioasCopyCases,
  ...optionCases,
  ...getPaCases,
  ...hwptCases,
  ...deviceCases,
  ...regionIoCases,
  ...setIrqsCases,
  ...lifecycleCases,
  ...msixCases,
  ...configSpaceCases,
  ...resetCases,
  ...pciDeviceCases,
  ...multiDeviceCases,
  ...parallelInitCases,
  ...wrongFdCases,
  ...groupCases,
  ...legacyGroupCases,
  ...eduCases,
  ...driverCases,
  ...privilegeCases,
  ...iommufdSizeCases,
  ...sysfsCases,
  ...sriovCases,
];

const ids = new Set<string>();
for (const c of allCases) {
  if (ids.has(c.id)) throw new Error(`duplicate conformance case id ${c.id}`);
  ids.add(c.id);
}

/**
 * The case with this id, or undefined when there is none.
 *
 * @category Conformance suite
 */
export function findCase(id: string): ConformanceCase | undefined {
  return allCases.find((c) => c.id === id);
}
