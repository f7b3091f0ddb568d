/**
 * What the VFIO core of the model runs on (the machine builds it), the kernel options it follows,
 * and the kinds of group: a leaf module, so that the core (subsystem.ts) and the objects it
 * creates (groups, containers, devices, device files), which all consult these, do not import
 * one another for them.
 */
import type { Capabilities } from '../../sys/kernel';
import type { OpenFile } from '../open-file';
import type { Vfs } from '../vfs';
import type { PciHost } from '../pci/host';
import type { PciBus } from '../pci/bus';
import type { IommuGroups } from './iommu-groups';
import type { IommufdPort } from './iommufd-port';
import type { FaultInjector } from '../fault-injection';

/** The kernel build options VFIO's user-visible behaviour depends on. */
export interface VfioKconfig {
  /** CONFIG_VFIO_GROUP (effective: the null-group build has none). */
  readonly group: boolean;
  /** CONFIG_VFIO_CONTAINER: vfio's own /dev/vfio/vfio. */
  readonly container: boolean;
  /** CONFIG_VFIO_DEVICE_CDEV. */
  readonly cdev: boolean;
  /** CONFIG_VFIO_NOIOMMU. */
  readonly vfioNoiommu: boolean;
  /** CONFIG_IOMMUFD_NOIOMMU (Linux 7.3): noiommu devices get a cdev and bind to iommufd. */
  readonly iommufdNoiommu: boolean;
  /** CONFIG_VFIO_PCI_INTX. */
  readonly pciIntx: boolean;
}

export interface VfioEnvironment {
  readonly vfs: Vfs;
  readonly kconfig: VfioKconfig;
  readonly pageSize: number;
  readonly pci: PciHost;
  readonly bus: PciBus;
  readonly iommuGroups: IommuGroups;
  /** The calling process's capabilities (capable()). */
  capabilities(): Capabilities;
  /** fget: the open file behind an fd. */
  lookup(fd: number): OpenFile | undefined;
  /** Installs a new open file in the fd table (FD_ADD); returns the fd. */
  installFd(file: OpenFile, description: string): number;
  /** copy_from_user for pointers inside structs (VF token); throws EFAULT on a bad pointer. */
  readUser?(address: bigint, length: number): Uint8Array;
  readonly iommufd: IommufdPort | undefined;
  /** vfio.enable_unsafe_noiommu_mode at boot. */
  readonly noiommuAtBoot: boolean;
  /** IOMMU group DMA ownership shared with iommufd; a private table when absent. */
  readonly dmaOwnership?: DmaOwnershipTable;
  /** A fresh iommufd context (the type1 container driver runs on one); no type1 driver without it. */
  newIommufd?(): OpenFile;
  /** get_file / fput on a file that has no fd (keeps a private iommufd context alive). */
  holdFile?(file: OpenFile): void;
  dropFile?(file: OpenFile): void;
  /** The kernel's fault injector, for the VFIO allocation sites (lib/model/faults.ts). */
  readonly faults: FaultInjector;
}

/** iommu_group_claim_dma_owner and friends (one owner per IOMMU group; EBUSY for a second). */
export interface DmaOwnershipTable {
  claim(group: number, owner: object): void;
  release(group: number, owner: object): void;
  ownerOf(group: number): object | undefined;
}

/** A VFIO group of a real IOMMU group (/dev/vfio/N) or a fake noiommu one (/dev/vfio/noiommu-N). */
export type VfioGroupType = 'iommu' | 'noiommu';
