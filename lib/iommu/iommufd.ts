/**
 * An open /dev/iommu: the container of IOAS, HWPT and bound-device objects. Closing it closes
 * everything created through it; the kernel drops all of its objects with the fd, so children
 * skip their own destroy ioctls while the iommufd tears down. A device that owns its iommufd
 * (`ownIommufd`, what openDevice does) holds it open until the device closes.
 */
import type { Kernel } from '../sys/kernel';
import { VfioError } from '../sys/errors';
import { O_CLOEXEC, O_RDWR } from '../sys/constants';
import { FileDescriptor, Resource } from '../support/resource';
import { isKernel, kernelFrom, type KernelOptions } from '../support/kernel-options';
import * as io from '../ioctl/iommufd-ioctls';
import { expectFd } from '../vfio/fd-identity';
import { Ioas } from './ioas';
import { Hwpt, type HwptOptions } from './hwpt';
import type { HwInfo } from '../ioctl/iommufd-ioctls';
import type { BoundDevice, IommufdHandle, PageTableTarget } from './iommufd-handle';

/**
 * Options of `Iommufd.open`.
 *
 * @category IOMMU
 */
export interface IommufdOpenOptions extends KernelOptions {
  /** The iommufd device node (default /dev/iommu). */
  readonly path?: string;
}

/**
 * An open /dev/iommu (`Iommufd.open()`): creates IOAS and HWPT objects; devices bind to it.
 *
 * @category IOMMU
 */
export class Iommufd extends Resource implements IommufdHandle {
  /** @internal The iommufd fd; shared with the objects created through it. */
  readonly file: FileDescriptor;
  /**
   * What the objects of this iommufd hold of it: a record apart from this object, so that their
   * safety-net releasers can consult it without keeping the Iommufd itself reachable.
   */
  private readonly state: { readonly kernel: Kernel; readonly file: FileDescriptor; tearingDown: boolean };

  private constructor(kernel: Kernel, file: FileDescriptor) {
    super(kernel, `iommufd ${file.path} (fd ${file.fd})`);
    this.file = file;
    this.state = { kernel, file, tearingDown: false };
    this.armSafetyNet(() => file.close());
  }

  /**
   * Opens /dev/iommu. `kernel` defaults to the real kernel (the native addon); pass a model
   * kernel to run against the simulation.
   */
  static open(options?: IommufdOpenOptions): Iommufd;
  /** @deprecated The positional form of `Iommufd.open({ kernel, path })`. */
  static open(kernel: Kernel, path?: string): Iommufd;
  static open(options: IommufdOpenOptions | Kernel = {}, positionalPath?: string): Iommufd {
    const kernel = kernelFrom(options);
    const path = (isKernel(options) ? positionalPath : options.path) ?? '/dev/iommu';
    let fd: number;
    try {
      fd = kernel.open(path, O_RDWR | O_CLOEXEC);
    } catch (e) {
      throw VfioError.wrap(e, { context: 'opening the iommufd', path });
    }
    return new Iommufd(kernel, new FileDescriptor(kernel, fd, path));
  }

  /**
   * Takes over an iommufd this process was given (inherited, LISTEN_FDS, or received over a Unix
   * socket): checked to be one (ERR_VFIO_WRONG_FD otherwise); closing the Iommufd closes `fd`.
   * The objects already in it (IOAS, bound devices) stay, under the ids the sender knows.
   */
  static adopt(fd: number, options: KernelOptions = {}): Iommufd {
    const kernel = kernelFrom(options);
    const { path } = expectFd(kernel, fd, ['iommufd'], 'an iommufd');
    return new Iommufd(kernel, new FileDescriptor(kernel, fd, path));
  }

  /** The fd number, for passing to VFIO_DEVICE_BIND_IOMMUFD or to another process. */
  get fd(): number {
    this.assertOpen('Iommufd.fd');
    return this.file.fd;
  }

  get tearingDown(): boolean {
    return this.state.tearingDown;
  }

  /** Allocates a new, empty I/O address space. */
  ioas(): Ioas {
    this.assertOpen('Iommufd.ioas');
    return this.adopt(Ioas.allocate(this.state));
  }

  /**
   * Allocates a hardware page table for `device` translating through `parent` (an IOAS). On a
   * noiommu device this is the dummy domain: flags 0 and no driver data only.
   */
  hwpt(device: BoundDevice, parent: PageTableTarget, options: HwptOptions = {}): Hwpt {
    this.assertOpen('Iommufd.hwpt');
    return this.adopt(Hwpt.allocate(this.state, device, parent, options));
  }

  /** What the IOMMU behind a bound device can do (EOPNOTSUPP for a noiommu device). */
  hwInfo(device: BoundDevice): HwInfo {
    this.assertOpen('Iommufd.hwInfo');
    return io.getHwInfo(this.kernel, this.file.fd, device.deviceId);
  }

  /**
   * How pinned pages are accounted: 'process' (RLIMIT_MEMLOCK of the process, mm->pinned_vm,
   * the default) or 'user' (per user, like VFIO type1).
   */
  rlimitMode(): 'process' | 'user';
  rlimitMode(set: 'process' | 'user'): 'process' | 'user';
  rlimitMode(set?: 'process' | 'user'): 'process' | 'user' {
    this.assertOpen('Iommufd.rlimitMode');
    if (set !== undefined) io.optionSet(this.kernel, this.file.fd, 'rlimit-mode', set === 'user' ? 1n : 0n);
    return io.optionGet(this.kernel, this.file.fd, 'rlimit-mode') === 1n ? 'user' : 'process';
  }

  /** Adopts an object created elsewhere against this iommufd (a VfioDevice bound to it). */
  own<T extends Resource>(resource: T): T {
    return this.adopt(resource);
  }

  override close(): void {
    if (this.closed) return;
    this.state.tearingDown = true;
    try {
      super.close();
    } finally {
      this.state.tearingDown = false;
    }
  }

  protected release(): void {
    this.file.close();
  }
}
