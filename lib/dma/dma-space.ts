/**
 * Where a DMA buffer gets mapped for a device: an iommufd IOAS (Linux 7.3 noiommu, or a real
 * IOMMU), a legacy noiommu container (physical addresses from /proc/self/pagemap), or a legacy
 * type1 container. A DmaBuffer asks its space to map its memory and gets back the addresses the
 * device can use; the space keeps the buffer as one of the resources it owns.
 */
import type { Kernel, Mapping } from '../sys/kernel';
import type { Iova, PhysAddr } from '../sys/addresses';
import type { Resource } from '../support/resource';

/**
 * A physically contiguous run of a DMA buffer, by offset into the buffer.
 *
 * @category DMA
 */
export interface BufferSegment {
  /** Offset of the run from the start of the buffer. */
  readonly offset: bigint;
  /** Physical address of the run's first byte. */
  readonly phys: PhysAddr;
  /** Bytes in the run. */
  readonly length: bigint;
}

/**
 * How memory is mapped for a device.
 *
 * @category DMA
 */
export interface DmaMapOptions {
  /** A fixed IOVA; by default the space chooses. */
  readonly iova?: Iova;
  /** Device may read the memory (default true). */
  readonly readable?: boolean;
  /** Device may write the memory (default true). */
  readonly writable?: boolean;
}

/** @internal The result of mapping memory into a space, owned by the DmaBuffer. */
export interface DmaAttachment {
  /** The IOVA of the buffer's first byte, when the space has IOVAs. */
  readonly iova: Iova | undefined;
  /** Whether devices address the buffer by physical address (noiommu) or by IOVA (IOMMU). */
  readonly addressing: 'physical' | 'iova';
  /**
   * The buffer's physical runs, looked up once (cached by the caller). Throws when the space
   * cannot know them (a real IOMMU translates; physical addresses are neither needed nor given).
   */
  physicalSegments(): BufferSegment[];
  /**
   * Looks the physical runs up where that takes a round trip to another process (a broker
   * answers GET_PA for a client without CAP_SYS_RAWIO); otherwise as physicalSegments would.
   */
  resolveSegments?(): Promise<void>;
  /** Removes the mapping from the space (not the memory itself). */
  detach(): void;
}

/**
 * Where DMA buffers are mapped for devices: an `Ioas`, or a `VfioContainer` on the legacy path
 * (`device.dmaSpace` is the right one for a device).
 *
 * @category DMA
 */
export interface DmaSpace {
  /** The kernel the space lives in. */
  readonly kernel: Kernel;
  /** For error messages. */
  readonly description: string;
  /**
   * @internal Maps `memory` for device access. The memory must stay mapped until `detach()`.
   * `asyncLookup`: the caller resolves the physical runs itself (resolveSegments) and awaits them.
   */
  attachDma(memory: Mapping, options: DmaMapOptions, asyncLookup?: boolean): DmaAttachment;
  /** @internal Takes ownership of a DmaBuffer so that closing the space closes the buffer. */
  own<T extends Resource>(resource: T): T;
}
