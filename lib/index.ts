/**
 * node-vfio: drive PCI devices from Node.js through VFIO device cdevs and iommufd, including
 * noiommu hosts (Linux 7.3 IOMMU_IOAS_NOIOMMU_GET_PA), with the legacy group/container path as a
 * fallback. The public surface; nothing else is exported.
 *
 * @packageDocumentation
 */
export { VfioError, isVfioError } from './sys/errors';
export type { Kernel, Mapping, Capabilities, MmioWidth } from './sys/kernel';
export { NativeKernel, NativeMapping, nativeKernel } from './sys/native';
export { iova, physAddr, userVa } from './types';
export type { Iova, PhysAddr, UserVa, BusAddr, PhysicalSegment, IovaRange } from './types';

export { Resource } from './resource';
export { Iommufd } from './iommufd';
export type { BoundDevice, PageTableTarget } from './iommufd';
export { Ioas, IoasMapping } from './ioas';
export type { Addressing, IoasMapOptions, MapSource } from './ioas';
export { Hwpt } from './hwpt';
export type { HwptOptions } from './hwpt';
export { DmaBuffer } from './dma';
export type { DmaAllocateOptions, HugePageSize } from './dma';
export type { BufferSegment, DmaSpace, DmaMapOptions } from './dma-space';
export { VfioDevice } from './device';
export type { DeviceBackend, VfioDeviceOpenOptions } from './device';
export { Region } from './region';
export { Mmio } from './mmio';
export { ConfigSpace } from './config-space';
export type { PciCapability, ExtendedCapability, MsiCapability, MsixCapability } from './config-space';
export { Irqs, InterruptVector } from './irq';
export type { IrqKind } from './irq';
export { PciDevice, normalizeBdf } from './sysfs';
export type { PciDeviceFilter, BindOptions, UnbindOptions, NoiommuMode } from './sysfs';
export { VfioContainer, VfioGroup } from './group';
export { openDevice } from './open-device';
export type { OpenDeviceOptions } from './open-device';
export type { DeviceInfo, RegionInfo, IrqInfo, HotResetInfo, DependentDevice, SparseMmapArea } from './ioctl/vfio-device';
export type { IovaRanges, HwInfo, PhysicalRun } from './ioctl/iommufd';
export type { Type1Info } from './ioctl/vfio-container';
export type { GroupStatus } from './ioctl/vfio-group';
export type { InfoCapability } from './ioctl/capability-chain';
