/**
 * The legacy VFIO container (/dev/vfio/vfio): the IOMMU model groups are set into. On noiommu
 * containers there is no DMA mapping at all: DMA buffers are locked and their physical addresses
 * read from /proc/self/pagemap. On type1 containers buffers are mapped with VFIO_IOMMU_MAP_DMA at
 * IOVA = their process address.
 */
import type { Kernel, Mapping } from '../sys/kernel';
import { O_CLOEXEC, O_RDWR } from '../sys/constants';
import { VfioError } from '../sys/errors';
import * as V from '../uapi/vfio';
import { FileDescriptor, Resource } from '../support/resource';
import * as c from '../ioctl/container-ioctls';
import { isPinningFailure, memlockHint } from '../support/hints';
import type { BufferSegment, DmaAttachment, DmaMapOptions, DmaSpace } from '../dma/dma-space';
import { readPhysicalSegments } from '../dma/pagemap';
import { IovaAllocator } from '../dma/iova-allocator';
import { isKernel, kernelFrom, type KernelOptions } from '../support/kernel-options';
import { checkInteger } from '../support/arguments';
import { expectFd } from './fd-identity';

export const CONTAINER_PATH = '/dev/vfio/vfio';

/**
 * Options of `VfioContainer.open`.
 *
 * @category Devices
 */
export interface VfioContainerOpenOptions extends KernelOptions {
  /** The container device node (default /dev/vfio/vfio). */
  readonly path?: string;
}

/**
 * A VFIO container: the legacy holder of an IOMMU context for one or more groups.
 *
 * @category Devices
 */
export class VfioContainer extends Resource implements DmaSpace {
  private readonly file: FileDescriptor;
  private iommuType: number | undefined;
  private allocator: IovaAllocator | undefined;

  private constructor(kernel: Kernel, file: FileDescriptor) {
    super(kernel, `VFIO container ${file.path}`);
    this.file = file;
    this.armSafetyNet(() => file.close());
  }

  /** Opens /dev/vfio/vfio and checks the API version. */
  static open(options?: VfioContainerOpenOptions): VfioContainer;
  /** @deprecated The positional form of `VfioContainer.open({ kernel, path })`. */
  static open(kernel: Kernel, path?: string): VfioContainer;
  static open(options: VfioContainerOpenOptions | Kernel = {}, positionalPath?: string): VfioContainer {
    const kernel = kernelFrom(options);
    const path = (isKernel(options) ? positionalPath : options.path) ?? CONTAINER_PATH;
    let fd: number;
    try {
      fd = kernel.open(path, O_RDWR | O_CLOEXEC);
    } catch (e) {
      throw VfioError.wrap(e, { context: 'opening the VFIO container', path });
    }
    const container = new VfioContainer(kernel, new FileDescriptor(kernel, fd, path));
    const version = c.getApiVersion(kernel, fd);
    if (version !== V.VFIO_API_VERSION) {
      container.close();
      throw VfioError.condition('ERR_VFIO_API_VERSION', {
        check: `VFIO_GET_API_VERSION on ${path} answered ${version}`,
        hint: `node-vfio speaks version ${V.VFIO_API_VERSION}, the only one Linux has defined`,
      });
    }
    return container;
  }

  /**
   * Takes over a container fd this process was given, checked with VFIO_GET_API_VERSION
   * (ERR_VFIO_WRONG_FD when it does not answer, ERR_VFIO_API_VERSION for another version).
   */
  static adopt(fd: number, options: KernelOptions = {}): VfioContainer {
    const kernel = kernelFrom(options);
    const { path } = expectFd(kernel, fd, ['vfio-container', 'iommufd'], 'a VFIO container');
    const version = c.getApiVersion(kernel, fd);
    if (version !== V.VFIO_API_VERSION) {
      throw VfioError.condition('ERR_VFIO_API_VERSION', { check: `VFIO_GET_API_VERSION on adopted fd ${fd} answered ${version}` });
    }
    return new VfioContainer(kernel, new FileDescriptor(kernel, fd, path));
  }

  /** The container fd. */
  get fd(): number {
    this.assertOpen('VfioContainer.fd');
    return this.file.fd;
  }

  /** The IOMMU model set with `setIommu`, if any. */
  get iommu(): number | undefined {
    return this.iommuType;
  }

  /** VFIO_CHECK_EXTENSION: is this IOMMU model (VFIO_NOIOMMU_IOMMU, VFIO_TYPE1v2_IOMMU...) available? */
  checkExtension(extension: number): boolean {
    checkInteger(extension, 'VfioContainer.checkExtension', 'extension', 0, 0xffff_ffff);
    return c.checkExtension(this.kernel, this.fd, extension);
  }

  /** Selects the IOMMU model; at least one group must be set into the container first. */
  setIommu(type: number): void {
    checkInteger(type, 'VfioContainer.setIommu', 'type', 0, 0xffff_ffff);
    try {
      c.setIommu(this.kernel, this.fd, type);
    } catch (e) {
      throw VfioError.wrap(
        e,
        type === V.VFIO_NOIOMMU_IOMMU && e instanceof VfioError && e.code === 'EINVAL'
          ? { hint: 'the noiommu IOMMU model needs vfio.enable_unsafe_noiommu_mode=1 and a noiommu group in the container' }
          : {},
      );
    }
    this.iommuType = type;
  }

  /** Type1 information (page sizes, IOVA ranges); not available on noiommu. */
  info(): c.Type1Info {
    return c.iommuGetInfo(this.kernel, this.fd);
  }

  /** @internal DmaSpace */
  attachDma(memory: Mapping, options: DmaMapOptions): DmaAttachment {
    this.assertOpen('VfioContainer.attachDma');
    if (this.iommuType === V.VFIO_NOIOMMU_IOMMU) return new PagemapAttachment(this.kernel, memory);
    if (this.iommuType === undefined) {
      throw VfioError.condition('ERR_VFIO_NO_IOMMU_MODEL', {
        check: 'setIommu was not called on this container',
        hint: 'set a group into it and call setIommu first',
      });
    }
    const allocator = this.iovas();
    const iova = options.iova ?? allocator.allocate(memory.length);
    if (options.iova !== undefined) allocator.reserve(iova, memory.length);
    try {
      c.iommuMapDma(this.kernel, this.fd, {
        vaddr: memory.address,
        iova,
        size: memory.length,
        readable: options.readable ?? true,
        writable: options.writable ?? true,
      });
    } catch (e) {
      allocator.release(iova);
      throw VfioError.wrap(e, isPinningFailure(e) ? { hint: memlockHint(this.kernel, memory.length) } : {});
    }
    const { kernel, file } = this;
    return {
      iova,
      addressing: 'iova',
      physicalSegments(): BufferSegment[] {
        throw VfioError.condition('ERR_VFIO_TRANSLATED', {
          check: 'the container has a type1 IOMMU model',
          hint: 'give the device the IOVA (dmaAddress)',
        });
      },
      detach(): void {
        allocator.release(iova);
        if (file.open) c.iommuUnmapDma(kernel, file.fd, { iova, size: memory.length });
      },
    };
  }

  /** The IOVA allocator of a type1 container, set up from its reported ranges on first use. */
  private iovas(): IovaAllocator {
    if (!this.allocator) {
      const info = this.info();
      const smallestPage = info.iovaPageSizes & -info.iovaPageSizes;
      const alignment = smallestPage > BigInt(this.kernel.pageSize) ? smallestPage : BigInt(this.kernel.pageSize);
      const ranges = info.iovaRanges.length
        ? info.iovaRanges.map((r) => ({ start: r.start as bigint, last: r.end as bigint }))
        : [{ start: 0n, last: (1n << 39n) - 1n }];
      this.allocator = new IovaAllocator(ranges, alignment);
    }
    return this.allocator;
  }

  /** @internal DmaSpace */
  own<T extends Resource>(resource: T): T {
    return this.adopt(resource);
  }

  protected release(): void {
    this.file.close();
  }
}

/** DMA on a noiommu container: lock the memory, read its frames once from pagemap. */
class PagemapAttachment implements DmaAttachment {
  readonly iova = undefined;
  readonly addressing = 'physical' as const;
  private readonly segments: BufferSegment[];

  constructor(kernel: Kernel, memory: Mapping) {
    try {
      kernel.mlock(memory);
    } catch (e) {
      throw VfioError.wrap(e, {
        context: 'locking DMA memory',
        ...(isPinningFailure(e) ? { hint: memlockHint(kernel, memory.length) } : {}),
      });
    }
    this.segments = readPhysicalSegments(kernel, memory.address, memory.length);
  }

  physicalSegments(): BufferSegment[] {
    return this.segments;
  }

  detach(): void {
    // Nothing is mapped anywhere; munmap of the memory drops the lock.
  }
}
