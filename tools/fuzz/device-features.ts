/**
 * What the generator fits device operations to, read from the device itself on the kernel the
 * fuzz runs on: the MSI-X vector count, where the capabilities sit and how big the config region
 * is. Reading it the same way on the model and on Linux means a difference shows up here first.
 */
import type { Kernel } from '../../lib/sys/kernel';
import { O_CLOEXEC, O_RDWR } from '../../lib/sys/constants';
import * as V from '../../lib/uapi/vfio';
import * as device from '../../lib/ioctl/device-ioctls';
import { PciDevice } from '../../lib/pci/pci-device';
import type { DeviceFeatures } from './generator';

const PCI_CAPABILITY_LIST = 0x34;
/** The standard capability list lives in the first 256 bytes; a longer walk is a loop. */
const MAX_CAPABILITIES = 48;

export function probeDeviceFeatures(kernel: Kernel, bdf: string): DeviceFeatures {
  const cdev = PciDevice.get(bdf, kernel).cdevPath();
  if (cdev === null) throw new Error(`fuzz: ${bdf} has no VFIO device cdev (is it bound to vfio-pci?)`);
  const iommufd = kernel.open('/dev/iommu', O_RDWR | O_CLOEXEC);
  try {
    const fd = kernel.open(cdev, O_RDWR | O_CLOEXEC);
    try {
      device.deviceBindIommufd(kernel, fd, iommufd);
      const msixVectors = device.deviceGetIrqInfo(kernel, fd, V.VFIO_PCI_MSIX_IRQ_INDEX).count;
      const config = device.deviceGetRegionInfo(kernel, fd, V.VFIO_PCI_CONFIG_REGION_INDEX);
      const byte = (offset: number): number => {
        const b = new Uint8Array(1);
        kernel.pread(fd, b, config.offset + BigInt(offset));
        return b[0]!;
      };
      const capabilities: number[] = [];
      for (let at = byte(PCI_CAPABILITY_LIST) & ~3; at !== 0 && capabilities.length < MAX_CAPABILITIES; at = byte(at + 1) & ~3) {
        capabilities.push(at);
      }
      return { msixVectors, capabilities, configSize: Number(config.size) };
    } finally {
      kernel.close(fd);
    }
  } finally {
    kernel.close(iommufd);
  }
}
