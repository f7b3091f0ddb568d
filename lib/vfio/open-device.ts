/**
 * One call to reach a device whatever the kernel offers, saying which way it went and why:
 * the device cdev + iommufd when the kernel has them (Linux 7.3 noiommu cdev, or any IOMMU
 * device with CONFIG_VFIO_DEVICE_CDEV), else the legacy group + container (VFIO_NOIOMMU_IOMMU
 * with physical addresses from /proc/self/pagemap, or type1). Either way the device allocates
 * DMA buffers with physical segments (noiommu) or IOVAs (IOMMU) through `allocateDma`.
 */
import { checkVfToken } from './vf-token';
import type { Kernel } from '../sys/kernel';
import { VfioError } from '../sys/errors';
import * as V from '../uapi/vfio';
import { kernelFrom, type KernelOptions } from '../support/kernel-options';
import { PciDevice, VFIO_PCI_DRIVER } from '../pci/pci-device';
import { Iommufd } from '../iommu/iommufd';
import { VfioDevice } from './device';
import { VfioContainer } from './container';
import { VfioGroup } from './group';
import { openBrokeredDevice } from '../broker/open-brokered';

/**
 * Options of `openDevice`.
 *
 * @category Devices
 */
export interface OpenDeviceOptions extends KernelOptions {
  /** Force a path instead of choosing: 'cdev' (iommufd) or 'group' (legacy container). */
  readonly prefer?: 'cdev' | 'group';
  /**
   * The SR-IOV VF token, a UUID string: needed to open a VF whose PF is bound to vfio-pci (and
   * the PF while its VFs are open); opening a PF with one sets its token for the VFs.
   */
  readonly vfToken?: string;
  /**
   * The socket of a broker (`vfio serve`) to get the device from instead of opening it: the
   * broker must list the device and allow this process's uid or gid. `openDevice` then returns a
   * Promise, and the device is the one a direct cdev open gives (docs/privileges.md).
   */
  readonly broker?: string;
}

/**
 * Opens the PCI device `bdf` (bound to vfio-pci) the best way this kernel allows. The returned
 * device owns everything opened for it (iommufd and IOAS, or group and container): closing the
 * device closes them. `device.backend` tells which path was taken and why.
 *
 * @category Devices
 */
export function openDevice(bdf: string, options: OpenDeviceOptions & { readonly broker: string }): Promise<VfioDevice>;
export function openDevice(bdf: string, options?: OpenDeviceOptions & { readonly broker?: undefined }): VfioDevice;
export function openDevice(bdf: string, options?: OpenDeviceOptions): VfioDevice | Promise<VfioDevice>;
export function openDevice(bdf: string, options: OpenDeviceOptions = {}): VfioDevice | Promise<VfioDevice> {
  const kernel = kernelFrom(options);
  if (options.broker !== undefined) {
    if (options.prefer === 'group' || options.vfToken !== undefined) {
      throw new TypeError('openDevice: with { broker } the broker opens the device (cdev path); prefer: group and vfToken do not apply');
    }
    return openBrokeredDevice(bdf, { kernel, broker: options.broker });
  }
  if (options.vfToken !== undefined) checkVfToken(options.vfToken, 'options.vfToken');
  const pci = PciDevice.get(bdf, { kernel });
  const driver = pci.driver;
  if (driver !== VFIO_PCI_DRIVER) {
    throw VfioError.condition('ERR_VFIO_NOT_BOUND', {
      check: `${pci.bdf} is bound to ${driver ?? 'no driver'}, not vfio-pci`,
      hint: `bind it first: PciDevice.get('${pci.bdf}').bindVfio()${pci.hasIommu ? '' : ' (it has no IOMMU: that needs { unsafeNoiommu: true })'}`,
    });
  }
  const cdev = pci.cdevPath();
  const hasIommufd = kernel.exists('/dev/iommu');
  // sysfs can name a cdev whose /dev node does not exist (no devtmpfs, or a kernel that registers
  // the device but gives noiommu devices no node): only an openable node counts.
  const whyNotCdev =
    cdev === null
      ? `no device cdev in ${pci.path}/vfio-dev (${pci.hasIommu ? 'kernel without CONFIG_VFIO_DEVICE_CDEV' : 'noiommu cdevs need Linux 7.3+'})`
      : !kernel.exists(cdev)
        ? `sysfs names ${cdev} but there is no such device node`
        : !hasIommufd
          ? 'no /dev/iommu (kernel without CONFIG_IOMMUFD)'
          : undefined;

  if (options.prefer !== 'group' && whyNotCdev === undefined && cdev !== null) {
    const noiommu = cdev.slice(cdev.lastIndexOf('/') + 1).startsWith('noiommu-');
    const reason = noiommu
      ? `device cdev ${cdev} and /dev/iommu exist: Linux 7.3 noiommu cdev bound to iommufd; physical addresses come from IOMMU_IOAS_NOIOMMU_GET_PA`
      : `device cdev ${cdev} and /dev/iommu exist: IOMMU-translated DMA through an iommufd IOAS`;
    const iommufd = Iommufd.open({ kernel });
    try {
      return VfioDevice.open(cdev, {
        iommufd,
        ownIommufd: true,
        reason,
        ...(options.vfToken === undefined ? {} : { vfToken: options.vfToken }),
      });
    } catch (e) {
      iommufd.close();
      throw e;
    }
  }
  if (options.prefer === 'cdev') {
    throw VfioError.condition('ERR_VFIO_NO_CDEV', {
      check: `cannot use the cdev path for ${pci.bdf}: ${whyNotCdev ?? 'it was not asked for'}`,
    });
  }
  return openThroughGroup(kernel, pci, whyNotCdev ?? 'the group path was asked for', options.vfToken);
}

function openThroughGroup(kernel: Kernel, pci: PciDevice, whyNotCdev: string, vfToken: string | undefined): VfioDevice {
  const groupId = pci.iommuGroup;
  if (groupId === null) {
    const noiommuOff = !pci.hasIommu && PciDevice.noiommuMode({ kernel }) !== 'enabled';
    throw VfioError.condition(noiommuOff ? 'ERR_VFIO_NOIOMMU_OFF' : 'ERR_VFIO_NO_GROUP', {
      check: `${pci.bdf} has neither a usable device cdev (${whyNotCdev}) nor an IOMMU group`,
      hint: pci.hasIommu
        ? 'is vfio-pci bound correctly?'
        : noiommuOff
          ? 'a device without an IOMMU needs vfio.enable_unsafe_noiommu_mode=1 before binding to vfio-pci'
          : 'noiommu mode is on, but this kernel creates no VFIO groups (built without CONFIG_VFIO_GROUP / a container backend): only the device cdev with iommufd can reach the device',
    });
  }
  if (!kernel.exists('/dev/vfio/vfio')) {
    throw VfioError.condition('ERR_VFIO_NO_CONTAINER', {
      check: `${pci.bdf} has no usable device cdev (${whyNotCdev}) and /dev/vfio/vfio does not exist`,
      hint: 'the legacy group path needs /dev/vfio/vfio (CONFIG_VFIO_CONTAINER or CONFIG_IOMMUFD_VFIO_CONTAINER)',
    });
  }
  const noiommu = kernel.exists(`/dev/vfio/noiommu-${groupId}`);
  const container = VfioContainer.open({ kernel });
  let group: VfioGroup | undefined;
  try {
    group = VfioGroup.open(groupId, { noiommu, kernel });
    if (!group.status().viable) {
      throw VfioError.condition('ERR_VFIO_GROUP_NOT_VIABLE', {
        check: `VFIO_GROUP_GET_STATUS of group ${groupId} has VFIO_GROUP_FLAGS_VIABLE clear`,
        hint: 'every device in the IOMMU group must be bound to vfio-pci (or to no driver)',
      });
    }
    group.setContainer(container);
    const model = noiommu
      ? V.VFIO_NOIOMMU_IOMMU
      : container.checkExtension(V.VFIO_TYPE1v2_IOMMU)
        ? V.VFIO_TYPE1v2_IOMMU
        : V.VFIO_TYPE1_IOMMU;
    container.setIommu(model);
    const reason = noiommu
      ? `${whyNotCdev}; using legacy noiommu group /dev/vfio/noiommu-${groupId} with VFIO_NOIOMMU_IOMMU; physical addresses come from /proc/self/pagemap of locked memory (needs CAP_SYS_ADMIN)`
      : `${whyNotCdev}; using VFIO group /dev/vfio/${groupId} in a type1 container (IOVAs allocated from its usable ranges)`;
    const device = group.openDevice(pci.bdf, { dmaSpace: container, reason, ...(vfToken === undefined ? {} : { vfToken }) });
    // The device holds the group and the container; closing them here hands them over to it.
    group.close();
    container.close();
    return device;
  } catch (e) {
    group?.close();
    container.close();
    throw e;
  }
}
