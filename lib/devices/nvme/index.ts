/** QEMU 7.2's NVMe controller on the device-model SDK (controller.ts describes it). */
export { NvmeController, NVME_BAR0_SIZE, NVME_CLASS_CODE, NVME_DEVICE_ID, NVME_VENDOR_ID, type NvmeOptions } from './controller';
export { DRIVE_PROPERTY_COPY_LIMITS, MemoryStorage, Namespace, type CopyLimits, type NamespaceStorage } from './namespace';
export { NVME_FAULT_POINTS, type CommandSubject, type CompletionField, type InterruptSubject } from './faults';
