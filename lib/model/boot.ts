/**
 * Boot of the simulated host's PCI side: the kernel model hands the PCI/VFIO model (lib/model/vfio)
 * what lives on the kernel's side — the file tree, the fd table, the caller's capabilities,
 * physical memory for untranslated DMA, and iommufd — and gets the machine of the profile's
 * topology back, with its devices bound to their boot drivers.
 */
import { iommufdPort, physicalPort } from './iommufd/vfio-port';
import type { ModelKernel } from './model-kernel';
import { hasIommufdNoiommu } from './profile';
import { PciMachine } from './vfio/machine';

export function bootPciMachine(kernel: ModelKernel): PciMachine {
  const p = kernel.profile;
  return new PciMachine({
    vfs: kernel.vfs,
    pageSize: kernel.pageSize,
    kconfig: {
      group: p.config.VFIO_GROUP,
      container: p.config.VFIO_CONTAINER,
      cdev: p.config.VFIO_DEVICE_CDEV,
      vfioNoiommu: p.config.VFIO_NOIOMMU,
      iommufdNoiommu: hasIommufdNoiommu(p),
      pciIntx: p.config.VFIO_PCI_INTX,
    },
    iommu: p.iommu !== null,
    iommuUnit: p.iommu,
    cpus: p.cpus ?? 2,
    noiommuAtBoot: p.noiommu,
    functions: p.pci,
    physicalMemory: physicalPort(kernel.memory),
    iommufd: p.config.IOMMUFD
      ? iommufdPort({
        memory: kernel.memory,
        iommu: p.iommu,
        holdFile: (f) => kernel.holdFile(f),
        dropFile: (f) => kernel.dropFile(f),
      })
      : undefined,
    capabilities: () => kernel.capabilities(),
    lookup: (fd) => (kernel.hasFd(fd) ? kernel.fileOf(fd) : undefined),
    installFd: (file, description) => kernel.installFile(file, description),
    // One IOMMU-group ownership table for iommufd binds and legacy containers (EBUSY across them).
    dmaOwnership: kernel.dmaOwnership,
    // The type1 container driver runs on a private iommufd context.
    ...(p.config.IOMMUFD ? { newIommufd: () => kernel.newIommufd(false) } : {}),
    holdFile: (f) => kernel.holdFile(f),
    dropFile: (f) => kernel.dropFile(f),
    readUser: (address, length) => kernel.space.readUser(address, length),
    faults: kernel.faults,
  });
}
