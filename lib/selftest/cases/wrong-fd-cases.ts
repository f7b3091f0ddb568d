/**
 * Requests sent to the wrong kind of fd. VFIO reuses request numbers on container, group and
 * device fds, and iommufd answers the legacy container numbers itself (vfio_compat.c), so the
 * same number means different things depending on the fd. Sources: iommufd main.c
 * iommufd_fops_ioctl → vfio_compat.c iommufd_vfio_ioctl (ENOIOCTLCMD → ENOTTY),
 * vfio/pci/vfio_pci_core.c vfio_pci_core_ioctl (ENOTTY), vfio/container.c vfio_fops_unl_ioctl
 * (EINVAL without an IOMMU driver), vfio/group.c (ENOTTY).
 */
import { defineCase, type ConformanceCase } from '../case';
import * as I from '../../uapi/iommufd';
import * as V from '../../uapi/vfio';
import { plainIoctl, rawIoctl } from '../raw-ioctl';
import { openBound } from '../steps';

export const wrongFdCases: ConformanceCase[] = [
  defineCase({
    id: 'wrong-fd.device-ioctl-on-iommufd',
    title: 'device ioctls sent to an iommufd are ENOTTY',
    run(t) {
      const fd = t.openIommufd();
      t.expectErrno('VFIO_DEVICE_GET_INFO on an iommufd', () => rawIoctl(t.kernel, fd, V.VFIO_DEVICE_GET_INFO, V.VfioDeviceInfo, {}), 'ENOTTY');
      t.expectErrno('VFIO_DEVICE_RESET on an iommufd', () => plainIoctl(t.kernel, fd, V.VFIO_DEVICE_RESET), 'ENOTTY');
      t.expectErrno('VFIO_DEVICE_BIND_IOMMUFD on an iommufd', () => rawIoctl(t.kernel, fd, V.VFIO_DEVICE_BIND_IOMMUFD, V.VfioDeviceBindIommufd, { iommufd: fd }), 'ENOTTY');
    },
  }),
  defineCase({
    id: 'wrong-fd.container-compat-on-iommufd',
    title: 'an iommufd answers the legacy container ioctls: API version 0, TYPE1v2 and NOIOMMU extensions',
    run(t) {
      const fd = t.openIommufd();
      t.equal(t.ok('VFIO_GET_API_VERSION', () => plainIoctl(t.kernel, fd, V.VFIO_GET_API_VERSION)), V.VFIO_API_VERSION, 'API version');
      t.equal(t.ok('VFIO_CHECK_EXTENSION TYPE1v2', () => plainIoctl(t.kernel, fd, V.VFIO_CHECK_EXTENSION, V.VFIO_TYPE1v2_IOMMU)), 1, 'TYPE1v2 supported');
      t.equal(t.ok('VFIO_CHECK_EXTENSION NOIOMMU', () => plainIoctl(t.kernel, fd, V.VFIO_CHECK_EXTENSION, V.VFIO_NOIOMMU_IOMMU)), 1, 'NOIOMMU supported (CONFIG_VFIO_NOIOMMU)');
      t.equal(t.ok('VFIO_CHECK_EXTENSION UPDATE_VADDR', () => plainIoctl(t.kernel, fd, V.VFIO_CHECK_EXTENSION, V.VFIO_UPDATE_VADDR)), 0, 'UPDATE_VADDR unsupported');
      // VFIO_IOMMU_GET_INFO shares its number with VFIO_DEVICE_GET_PCI_HOT_RESET_INFO; without a
      // compatibility IOAS the iommufd answers ENODEV.
      t.expectErrno('VFIO_IOMMU_GET_INFO without a compat IOAS', () =>
        rawIoctl(t.kernel, fd, V.VFIO_IOMMU_GET_INFO, V.VfioIommuType1Info, {}), 'ENODEV');
    },
  }),
  defineCase({
    id: 'wrong-fd.iommufd-ioctl-on-device',
    title: 'iommufd ioctls sent to a bound device fd are ENOTTY',
    needs: ['device'],
    run(t) {
      const dev = openBound(t);
      t.expectErrno('IOMMU_IOAS_ALLOC on the device fd', () => rawIoctl(t.kernel, dev.deviceFd, I.IOMMU_IOAS_ALLOC, I.IommuIoasAlloc, {}), 'ENOTTY');
      t.expectErrno('IOMMU_DESTROY on the device fd', () => rawIoctl(t.kernel, dev.deviceFd, I.IOMMU_DESTROY, I.IommuDestroy, { id: 1 }), 'ENOTTY');
      t.expectErrno('VFIO_GET_API_VERSION on the device fd', () => plainIoctl(t.kernel, dev.deviceFd, V.VFIO_GET_API_VERSION), 'ENOTTY');
    },
  }),
  defineCase({
    id: 'wrong-fd.device-ioctl-on-container',
    title: 'a device ioctl sent to a container with no IOMMU driver set is EINVAL',
    needs: ['container'],
    run(t) {
      const fd = t.open('/dev/vfio/vfio');
      t.equal(t.ok('VFIO_GET_API_VERSION', () => plainIoctl(t.kernel, fd, V.VFIO_GET_API_VERSION)), V.VFIO_API_VERSION, 'API version');
      t.expectErrno('VFIO_DEVICE_GET_INFO on the container', () => rawIoctl(t.kernel, fd, V.VFIO_DEVICE_GET_INFO, V.VfioDeviceInfo, {}), 'EINVAL');
      t.expectErrno('IOMMU_IOAS_ALLOC on the container', () => rawIoctl(t.kernel, fd, I.IOMMU_IOAS_ALLOC, I.IommuIoasAlloc, {}), 'EINVAL');
    },
  }),
];
