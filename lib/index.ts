/**
 * node-vfio: drive PCI devices from Node.js through VFIO device cdevs and iommufd, including
 * noiommu hosts (Linux 7.3 IOMMU_IOAS_NOIOMMU_GET_PA), with the legacy group/container path as a
 * fallback. The public surface; nothing else is exported.
 *
 * @packageDocumentation
 */
export { VfioError, isVfioError, VFIO_CONDITIONS } from './sys/errors';
export type { VfioConditionCode, VfioErrorWrapping, VfioErrorDetails, VfioConditionDetails } from './sys/errors';
export type { Kernel, Mapping, MmapPlacement, Capabilities, MmioWidth } from './sys/kernel';
export { NativeKernel, NativeMapping, nativeKernel } from './sys/native-kernel';
export type { NativeFileKind, FileKind } from './sys/native-kernel';
export { iova, physAddr, userVa } from './sys/addresses';
export type { Iova, PhysAddr, UserVa, BusAddr, PhysicalSegment, IovaRange } from './sys/addresses';

export { Resource } from './support/resource';
export type { KernelOptions } from './support/kernel-options';
export { Iommufd } from './iommu/iommufd';
export type { IommufdOpenOptions } from './iommu/iommufd';
export type { BoundDevice, PageTableTarget } from './iommu/iommufd-handle';
export { Ioas, IoasMapping } from './iommu/ioas';
export type { Addressing, IoasMapOptions, MapSource } from './iommu/ioas';
export { Hwpt } from './iommu/hwpt';
export type { HwptOptions } from './iommu/hwpt';
export { DmaBuffer } from './dma/buffer';
export type { BusRun, DmaAllocateOptions } from './dma/buffer';
export type { HugePageSize } from './sys/constants';
export type { BufferSegment, DmaSpace, DmaMapOptions } from './dma/dma-space';
export { VfioDevice } from './vfio/device';
export type { DeviceBackend, DeviceReset, VfioDeviceOpenOptions, VfioDeviceAdoptOptions } from './vfio/device';
export { Region } from './vfio/region';
export { Mmio } from './vfio/mmio';
export { ConfigSpace } from './vfio/config-space';
export type { PciCapability, ExtendedCapability, MsiCapability, MsixCapability } from './vfio/config-space';
export { Irqs, InterruptVector, IntxUnmaskEventfd } from './vfio/irq';
export type { IrqKind } from './vfio/irq';
export { PciDevice, normalizeBdf } from './pci/pci-device';
export { PciSriov, VFIO_PCI_ENABLE_SRIOV } from './pci/sriov';
export { injectAerError } from './pci/aer-inject';
export type { AerError } from './pci/aer-inject';
export type { PciDeviceFilter, BindOptions, UnbindOptions, NoiommuMode } from './pci/pci-device';
export { VfioContainer } from './vfio/container';
export type { VfioContainerOpenOptions } from './vfio/container';
export { VfioGroup } from './vfio/group';
export type { VfioGroupOpenOptions } from './vfio/group';
export { openDevice } from './vfio/open-device';
export type { OpenDeviceOptions } from './vfio/open-device';
export { identifyFd } from './vfio/fd-identity';
export type { FdKind } from './vfio/fd-identity';
export { UnixSocket, MAX_FDS_PER_MESSAGE } from './sys/unix-socket';
export { readKernelLog, lastKernelLogSeq } from './sys/kernel-log';
export type { KernelLogRecord } from './sys/kernel-log';
export type { PeerCredentials, ReceivedMessage, UnixSocketOptions } from './sys/unix-socket';
export type { SocketCalls, ReceivedFds } from './sys/socket-calls';
export { Broker } from './broker/server';
export type { BrokerOptions, BrokerLogEntry } from './broker/server';
export { BrokerClient } from './broker/client';
export type { BrokerGrant, BrokerPhysicalRun } from './broker/client';
export { openBrokeredDevice, brokerPhysicalSegments } from './broker/open-brokered';
export type { DeviceInfo, RegionInfo, IrqInfo, HotResetInfo, DependentDevice, SparseMmapArea } from './ioctl/device-ioctls';
export type { IovaRanges, HwInfo, PhysicalRun } from './ioctl/iommufd-ioctls';
export type { PhysicalSegmentTable } from './ioctl/physical-segment-table';
export type { Type1Info } from './ioctl/container-ioctls';
export type { GroupStatus } from './ioctl/group-ioctls';
export type { InfoCapability } from './ioctl/capability-chain';
