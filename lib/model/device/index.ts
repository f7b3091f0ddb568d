/**
 * The device-model SDK: everything needed to write a PCI device model that the model kernel
 * places on its bus and vfio-pci drives like real hardware (exported from `node-vfio/model`).
 * See docs/device-models.md for a tutorial; lib/devices/edu.ts is a complete example.
 */
export { DeviceModel, type ResetKind } from './device-model';
export type { AccessWidth, BarDeclaration, BarType, DeviceDefinition, DeviceIdentity, InterruptPin, MmioHandler } from './definition';
export {
  extendedCapability,
  msiCapability,
  msixCapability,
  pcieCapability,
  pmCapability,
  vendorCapability,
  type CapabilityBuilder,
  type ExtendedCapabilitySpec,
  type MsiCapabilitySpec,
  type MsixCapabilitySpec,
  type MsixPlacement,
  type PcieCapabilitySpec,
  type PcieDeviceType,
  type PmCapabilitySpec,
  type VendorCapabilitySpec,
} from './capabilities';
export { DeviceDma, type DmaOwner } from './dma';
export {
  sriovCapability,
  PCI_EXT_CAP_ID_SRIOV,
  SRIOV,
  SRIOV_CTRL_ARI,
  SRIOV_CTRL_MSE,
  SRIOV_CTRL_VFE,
  type SriovCapabilitySpec,
} from './sriov-capability';
export { ModelClock, type ClockMode, type DeviceClock, type ScheduledWork } from './clock';
export { DeviceTimers } from './device-timers';
export {
  DeviceFaults,
  faultPoint,
  type ArmedFault,
  type FaultPointSpec,
  type FaultTrigger,
  type AnyPoints,
  type SubjectOf,
  type ParamsOf,
} from './device-faults';
export { DeviceEventError, type DeviceEvent, type DeviceEventKind } from './events';
export { DeviceModelError } from './model-error';
export { DmaFault, type DmaFaultReason, type DmaPort } from '../pci/dma';
export type { InterruptSink } from '../pci/interrupts';
export type { PciBarInfo, PciDeviceModel, PciHostPort } from '../pci/device-model';
export { PciConfigSpace, type ConfigWidth } from '../pci/physical-config-space';
