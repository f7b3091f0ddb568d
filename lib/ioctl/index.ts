/**
 * The typed ioctl layer: one small function per ioctl, grouped by the kind of fd it is issued on
 * (VFIO reuses request numbers across fd kinds, so the module says which fd a call belongs to).
 */
export * from './iommufd-ioctls';
export * from './device-ioctls';
export * from './group-ioctls';
export * from './container-ioctls';
export { readCapabilityChain, type InfoCapability } from './capability-chain';
export { invoke, withUserMemory } from './invoke';
