/**
 * What the objects of an iommufd (IOAS, HWPT, mappings, bound devices) need to know of each other,
 * in a module of its own so that iommufd.ts, which creates them, and the objects, which refer back
 * to it, do not import each other.
 */
import type { Kernel } from '../sys/kernel';
import type { FileDescriptor } from '../support/resource';

/** @internal What an iommufd object needs from the iommufd it lives in. */
export interface IommufdHandle {
  readonly kernel: Kernel;
  readonly file: FileDescriptor;
  /** True while the iommufd closes: the kernel is about to drop every object at once. */
  readonly tearingDown: boolean;
}

/**
 * Anything a device can be attached to: an IOAS or a HWPT.
 *
 * @category IOMMU
 */
export interface PageTableTarget {
  /** The object id in the iommufd. */
  readonly id: number;
}

/**
 * A bound device, as far as the iommufd is concerned.
 *
 * @category IOMMU
 */
export interface BoundDevice {
  /** The device's id in this iommufd (from VFIO_DEVICE_BIND_IOMMUFD). */
  readonly deviceId: number;
}
