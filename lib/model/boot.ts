/**
 * Boot of the simulated host's PCI side: the kernel model hands the PCI/VFIO model (lib/model/vfio)
 * what lives on the kernel's side — the file tree, the fd table, the caller's capabilities,
 * physical memory for untranslated DMA, and iommufd — and gets the machine of the profile's
 * topology back, with its devices bound to their boot drivers.
 *
 * The topology decides the numbering, as on real hardware: functions are probed in bus order, so
 * VFIO's cdevs (vfio0, vfio1, …) follow the addresses, and behind an IOMMU the IOMMU groups follow
 * from the topology (or from the groups a machine without its platform functions fixes).
 */
import { iommufdPort, physicalPort } from './iommufd/vfio-port';
import type { ModelKernel } from './model-kernel';
import type { DeviceClock } from './device';
import { parsePciAddress } from './pci/address';
import { hasIommufdNoiommu, type PciDeviceSpec } from './profile';
import { PciMachine } from './vfio/machine';
import { DmarFaultLog } from './kmsg/dmar-fault-log';

export function bootPciMachine(kernel: ModelKernel, clock?: DeviceClock): PciMachine {
  const p = kernel.profile;
  const dmarFaults = new DmarFaultLog(kernel.machine.kmsg);
  return new PciMachine({
    pciIov: p.config.PCI_IOV === true,
    pcieAer: p.config.PCIEAER === true,
    pcieAerInject: p.config.PCIEAER === true && p.config.PCIEAER_INJECT === true,
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
    functions: inBusOrder(p.pci, p.iommu !== null),
    ...(clock ? { clock } : {}),
    physicalMemory: physicalPort(kernel.memory),
    iommufd: p.config.IOMMUFD
      ? iommufdPort({
          memory: kernel.memory,
          iommu: p.iommu,
          holdFile: (f) => kernel.holdFile(f),
          dropFile: (f) => kernel.dropFile(f),
          // A translation with no domain behind it is not modelled as a fault record.
          reportFault: (device, fault) => {
            if (fault.reason !== 'blocked') dmarFaults.report({ device, iova: fault.iova, direction: fault.direction });
          },
        })
      : undefined,
    // Kernel code runs as `current`: the process whose syscall it is (another one than the booted
    // process once fds are passed between processes).
    capabilities: () => kernel.current.capabilities(),
    lookup: (fd) => (kernel.current.hasFd(fd) ? kernel.current.fileOf(fd) : undefined),
    installFd: (file, description) => kernel.current.installFile(file, description),
    // One IOMMU-group ownership table for iommufd binds and legacy containers (EBUSY across them).
    dmaOwnership: kernel.dmaOwnership,
    // The type1 container driver runs on a private iommufd context.
    ...(p.config.IOMMUFD ? { newIommufd: () => kernel.newIommufd(false) } : {}),
    holdFile: (f) => kernel.holdFile(f),
    dropFile: (f) => kernel.dropFile(f),
    readUser: (address, length) => kernel.current.space.readUser(address, length),
    faults: kernel.faults,
    ...(p.host ? { host: p.host } : {}),
  });
}

/**
 * The profile's functions sorted by address. Behind an IOMMU, when some entry fixes its group
 * (a machine described without its platform functions, like the edu presets), every other one
 * gets the lowest number no function has taken, in bus order; otherwise the machine derives all
 * groups from the topology (lib/model/pci/topology.ts).
 */
function inBusOrder(functions: readonly PciDeviceSpec[], iommu: boolean): PciDeviceSpec[] {
  const keyed = functions.map((f) => {
    const a = parsePciAddress(f.address);
    if (!a) throw new RangeError(`bad PCI address '${f.address}'`);
    return { f, key: ((a.domain * 256 + a.bus) * 32 + a.device) * 8 + a.func };
  });
  const sorted = keyed.sort((x, y) => x.key - y.key).map((k) => k.f);
  for (let i = 1; i < sorted.length; i++) {
    if (sorted[i]!.address === sorted[i - 1]!.address) throw new RangeError(`two PCI functions at ${sorted[i]!.address}`);
  }
  if (!iommu) return sorted;
  const fixedGroup = (f: PciDeviceSpec) =>
    typeof f.options?.['iommuGroup'] === 'number' ? (f.options['iommuGroup'] as number) : undefined;
  const taken = new Set(sorted.map(fixedGroup).filter((g): g is number => g !== undefined));
  // Nothing fixed: the machine derives every group from the topology.
  if (taken.size === 0) return sorted;
  let next = 0;
  return sorted.map((f) => {
    if (fixedGroup(f) !== undefined) return f;
    while (taken.has(next)) next++;
    taken.add(next);
    return { ...f, options: { ...f.options, iommuGroup: next } };
  });
}
