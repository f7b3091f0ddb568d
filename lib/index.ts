/**
 * node-vfio: drive PCI devices from Node.js through VFIO device cdevs and iommufd.
 * The public surface; nothing else is exported.
 */
export { VfioError, isVfioError } from './sys/errors';
export type { Kernel, Mapping, Capabilities, UserVa, MmioWidth } from './sys/kernel';
export { NativeKernel, NativeMapping, nativeKernel } from './sys/native';
