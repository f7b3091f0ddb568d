/**
 * The legacy VFIO group (/dev/vfio/N, or /dev/vfio/noiommu-N without an IOMMU): set into a
 * container, then device fds are taken from it by name.
 */
import { checkVfToken, vfTokenHint } from './vf-token';
import type { Kernel } from '../sys/kernel';
import { VfioError } from '../sys/errors';
import { O_CLOEXEC, O_RDWR } from '../sys/constants';
import { FileDescriptor, Resource } from '../support/resource';
import * as g from '../ioctl/group-ioctls';
import type { GroupStatus } from '../ioctl/group-ioctls';
import type { DmaSpace } from '../dma/dma-space';
import { VfioDevice } from './device';
import { VfioContainer } from './container';
import { kernelFrom, type KernelOptions } from '../support/kernel-options';
import { expectFd } from './fd-identity';

/**
 * Options of `VfioGroup.open`.
 *
 * @category Devices
 */
export interface VfioGroupOpenOptions extends KernelOptions {
  /** The group of a device without an IOMMU (/dev/vfio/noiommu-N). */
  readonly noiommu?: boolean;
}

/**
 * A VFIO group: the legacy unit of device ownership.
 *
 * @category Devices
 */
export class VfioGroup extends Resource {
  private readonly file: FileDescriptor;

  private constructor(
    kernel: Kernel,
    file: FileDescriptor,
    /** The IOMMU group number. */
    readonly groupId: number,
    /** A noiommu group (/dev/vfio/noiommu-N). */
    readonly noiommu: boolean,
  ) {
    super(kernel, `VFIO group ${file.path}`);
    this.file = file;
    this.armSafetyNet(() => file.close());
  }

  /**
   * Opens group `groupId`: /dev/vfio/noiommu-N when `noiommu` (the group of a device without an
   * IOMMU), else /dev/vfio/N.
   */
  static open(groupId: number, options: VfioGroupOpenOptions = {}): VfioGroup {
    const kernel = kernelFrom(options);
    const path = options.noiommu ? `/dev/vfio/noiommu-${groupId}` : `/dev/vfio/${groupId}`;
    let fd: number;
    try {
      fd = kernel.open(path, O_RDWR | O_CLOEXEC);
    } catch (e) {
      throw VfioError.wrap(e, { context: `opening VFIO group ${groupId}`, path });
    }
    return new VfioGroup(kernel, new FileDescriptor(kernel, fd, path), groupId, options.noiommu ?? false);
  }

  /**
   * Takes over a group fd this process was given, checked with VFIO_GROUP_GET_STATUS
   * (ERR_VFIO_WRONG_FD otherwise). The group number and whether it is a noiommu group come from
   * /proc/self/fd where it names /dev/vfio/[noiommu-]N, else from `groupId`/`noiommu`.
   */
  static adopt(fd: number, options: KernelOptions & { readonly groupId?: number; readonly noiommu?: boolean } = {}): VfioGroup {
    const kernel = kernelFrom(options);
    const { path } = expectFd(kernel, fd, ['vfio-group'], 'a VFIO group');
    const named = /^\/dev\/vfio\/(noiommu-)?(\d+)$/.exec(path);
    const groupId = named ? Number(named[2]) : options.groupId;
    if (groupId === undefined) throw new TypeError(`groupId: fd ${fd} does not say which group it is; pass { groupId }`);
    if (named && options.groupId !== undefined && options.groupId !== groupId) {
      throw VfioError.condition('ERR_VFIO_WRONG_FD', { check: `fd ${fd} is ${path}, not group ${options.groupId}` });
    }
    return new VfioGroup(
      kernel,
      new FileDescriptor(kernel, fd, path),
      groupId,
      named ? named[1] !== undefined : (options.noiommu ?? false),
    );
  }

  /** The group fd (for VFIO_DEVICE_PCI_HOT_RESET on the group path). */
  get fd(): number {
    this.assertOpen('VfioGroup.fd');
    return this.file.fd;
  }

  /** Viable (all devices bound to VFIO) and whether a container is set. */
  status(): GroupStatus {
    return g.groupGetStatus(this.kernel, this.fd);
  }

  /** Puts the group into a container (the first group of a container comes before setIommu). */
  setContainer(container: VfioContainer): void {
    g.groupSetContainer(this.kernel, this.fd, container.fd);
  }

  /** Takes the group out of its container. */
  unsetContainer(): void {
    g.groupUnsetContainer(this.kernel, this.fd);
  }

  /**
   * Gets a device fd from the group (the container must be set with an IOMMU model). The device
   * holds the group open, as its fd holds the group in the kernel, and the container it maps DMA
   * into (`dmaSpace`): closing them before the device only takes effect once the device closes.
   */
  openDevice(bdf: string, init: { dmaSpace?: DmaSpace; reason?: string; vfToken?: string } = {}): VfioDevice {
    const token = init.vfToken === undefined ? undefined : checkVfToken(init.vfToken, 'vfToken');
    let fd: number;
    try {
      fd = g.groupGetDeviceFd(this.kernel, this.fd, bdf, token);
    } catch (e) {
      const hint = vfTokenHint(e, token !== undefined);
      throw VfioError.wrap(e, {
        context: `getting ${bdf} from VFIO group ${this.groupId}`,
        path: this.file.path,
        ...(hint ? { hint } : {}),
      });
    }
    const file = new FileDescriptor(this.kernel, fd, `${this.file.path}:${bdf}`);
    return new VfioDevice(this.kernel, file, {
      bdf,
      backend: { kind: 'group', noiommu: this.noiommu, reason: init.reason ?? `opened through VFIO group ${this.file.path}` },
      ...(init.dmaSpace ? { dmaSpace: init.dmaSpace } : {}),
      holds: init.dmaSpace instanceof Resource ? [this, init.dmaSpace] : [this],
    });
  }

  protected release(): void {
    this.file.close();
  }
}
