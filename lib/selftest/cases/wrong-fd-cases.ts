/**
 * Requests sent to the wrong kind of fd. VFIO reuses request numbers on container, group and
 * device fds, and iommufd answers the legacy container numbers itself (vfio_compat.c), so the
 * same number means different things depending on the fd. Sources: iommufd main.c
 * iommufd_fops_ioctl → vfio_compat.c iommufd_vfio_ioctl (ENOIOCTLCMD → ENOTTY),
 * vfio/pci/vfio_pci_core.c vfio_pci_core_ioctl (ENOTTY), vfio/container.c vfio_fops_unl_ioctl
 * (EINVAL without an IOMMU driver), vfio/group.c (ENOTTY).
 */
import { defineCase, type ConformanceCase } from '../case';
import * as V from '../../uapi/vfio';
import { call } from '../calls';
import { casesOn } from '../fixture';
import { boundDevice, iommufd } from '../fixtures';
import { plainIoctl } from '../raw-ioctl';
import { on } from '../struct-call';

export const wrongFdCases: ConformanceCase[] = [
  casesOn(iommufd).test('wrong-fd.device-ioctl-on-iommufd', 'device ioctls sent to an iommufd are ENOTTY', (t, f) => {
    // The iommufd stands where the device fd would.
    const asDevice = { ...f, deviceFd: f.iommufd };
    t.expectErrno('VFIO_DEVICE_GET_INFO on an iommufd', () => call.deviceInfo(asDevice), 'ENOTTY');
    t.expectErrno('VFIO_DEVICE_RESET on an iommufd', () => plainIoctl(t.kernel, f.iommufd, V.VFIO_DEVICE_RESET), 'ENOTTY');
    t.expectErrno('VFIO_DEVICE_BIND_IOMMUFD on an iommufd', () => call.bind(asDevice), 'ENOTTY');
  }),
  casesOn(iommufd).test(
    'wrong-fd.container-compat-on-iommufd',
    'an iommufd answers the legacy container ioctls: API version 0, TYPE1v2 and NOIOMMU extensions',
    (t, f) => {
      const fd = f.iommufd;
      t.equal(
        t.ok('VFIO_GET_API_VERSION', () => plainIoctl(t.kernel, fd, V.VFIO_GET_API_VERSION)),
        V.VFIO_API_VERSION,
        'API version',
      );
      t.equal(
        t.ok('VFIO_CHECK_EXTENSION TYPE1v2', () => plainIoctl(t.kernel, fd, V.VFIO_CHECK_EXTENSION, V.VFIO_TYPE1v2_IOMMU)),
        1,
        'TYPE1v2 supported',
      );
      t.equal(
        t.ok('VFIO_CHECK_EXTENSION NOIOMMU', () => plainIoctl(t.kernel, fd, V.VFIO_CHECK_EXTENSION, V.VFIO_NOIOMMU_IOMMU)),
        1,
        'NOIOMMU supported (CONFIG_VFIO_NOIOMMU)',
      );
      t.equal(
        t.ok('VFIO_CHECK_EXTENSION UPDATE_VADDR', () => plainIoctl(t.kernel, fd, V.VFIO_CHECK_EXTENSION, V.VFIO_UPDATE_VADDR)),
        0,
        'UPDATE_VADDR unsupported',
      );
      // VFIO_IOMMU_GET_INFO shares its number with VFIO_DEVICE_GET_PCI_HOT_RESET_INFO; without a
      // compatibility IOAS the iommufd answers ENODEV.
      t.expectErrno('VFIO_IOMMU_GET_INFO without a compat IOAS', () => call.iommuInfo(f), 'ENODEV');
    },
  ),
  casesOn(boundDevice).test('wrong-fd.iommufd-ioctl-on-device', 'iommufd ioctls sent to a bound device fd are ENOTTY', (t, f) => {
    // The device fd stands where the iommufd would.
    const asIommufd = { ...f, iommufd: f.deviceFd };
    t.expectErrno('IOMMU_IOAS_ALLOC on the device fd', () => call.ioasAlloc(asIommufd), 'ENOTTY');
    t.expectErrno('IOMMU_DESTROY on the device fd', () => call.destroy(asIommufd, { id: 1 }), 'ENOTTY');
    t.expectErrno('VFIO_GET_API_VERSION on the device fd', () => plainIoctl(t.kernel, f.deviceFd, V.VFIO_GET_API_VERSION), 'ENOTTY');
  }),
  defineCase({
    id: 'wrong-fd.device-ioctl-on-container',
    title: 'a device ioctl sent to a container with no IOMMU driver set is EINVAL',
    needs: ['container'],
    run(t) {
      const fd = t.open('/dev/vfio/vfio');
      t.equal(
        t.ok('VFIO_GET_API_VERSION', () => plainIoctl(t.kernel, fd, V.VFIO_GET_API_VERSION)),
        V.VFIO_API_VERSION,
        'API version',
      );
      const container = on(t, { deviceFd: fd, iommufd: fd });
      t.expectErrno('VFIO_DEVICE_GET_INFO on the container', () => call.deviceInfo(container), 'EINVAL');
      t.expectErrno('IOMMU_IOAS_ALLOC on the container', () => call.ioasAlloc(container), 'EINVAL');
    },
  }),
];
