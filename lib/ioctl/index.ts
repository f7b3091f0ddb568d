/**
 * The typed ioctl layer: one small function per ioctl, grouped by the kind of fd it is issued on
 * (VFIO reuses request numbers across fd kinds, so the module says which fd a call belongs to).
 */
export * from './iommufd';
export * from './vfio-device';
export * from './vfio-group';
export * from './vfio-container';
export { readCapabilityChain, type InfoCapability } from './capability-chain';
export { invoke, withUserMemory } from './invoke';
