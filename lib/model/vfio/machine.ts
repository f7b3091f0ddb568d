/**
 * Assembles the PCI and VFIO side of a simulated host from its topology: the functions on the
 * bus (with the IOMMU groups an IOMMU driver gives them at boot), the PCI bus and its sysfs, the
 * vfio-pci driver, and the VFIO core with its device nodes. The kernel model hands in what lives
 * on its side: the file system, the fd table, the caller's capabilities, physical memory for
 * untranslated DMA, and iommufd.
 */
import { PciStubDriver } from '../pci/pci-stub-driver';
import type { Capabilities } from '../../sys/kernel';
import { FaultInjector } from '../fault-injection';
import type { OpenFile } from '../open-file';
import type { Vfs } from '../vfs';
import type { DeviceOptions } from '../../devices';
import type { DeviceClock, DeviceModel } from '../device';
import { parsePciAddress } from '../pci/address';
import { PciBus, matchesId, type PciDriver } from '../pci/bus';
import type { DmaPort } from '../pci/dma';
import { PciHost, type PciSlot } from '../pci/host';
import { firmwareInit } from '../pci/firmware';
import { PcieRootPort, placeDevice } from '../pci/platform-functions';
import { PciSriov, sriovCapabilityOffset } from '../pci/iov';
import type { PciAddress } from '../pci/address';
import type { PciDeviceModel } from '../pci/device-model';
import {
  enableAcs,
  firmwareBusNumbers,
  functionsBelow,
  iommuGroupNumbers,
  isBridge,
  markMultifunctionSlots,
  programBridgeBuses,
} from '../pci/topology';
import { PciSysfs, devicePath } from '../fs/pci-sysfs';
import { addDevNode } from '../fs/nodes';
import { PcieAer } from '../pci/aer';
import { AerInjector } from '../pci/aer-inject';
import { IommuSysfs, addIommuClass } from '../fs/iommu-sysfs';
import { HOST_NIC_DRIVERS, HOST_STORAGE_DRIVERS, type HostUse, type IommuUnit } from '../profile';
import { BlockSysfs } from '../fs/block-sysfs';
import { NetSysfs } from '../fs/net-sysfs';
import { AhciDriver, E1000eDriver, NvmeHostDriver, type HostDriverContext } from '../pci/host-drivers';
import { IommuGroups, type IommuGroup } from './iommu-groups';
import type { IommufdPort } from './iommufd-port';
import { VfioSubsystem } from './subsystem';
import type { DmaOwnershipTable, VfioKconfig } from './environment';
import { VfioPciDriver } from './vfio-pci-driver';

export interface PciFunctionSpec {
  /** "0000:00:03.0" */
  readonly address: string;
  /** A built-in model from lib/devices by name, e.g. 'edu', or a DeviceModel to place as it is. */
  readonly device: string | DeviceModel;
  /** Driver bound at boot ('vfio-pci' as with vfio-pci.ids= or driver_override in the initramfs), or none. */
  readonly driver?: string | null;
  /** Device options (edu: dma_mask, bar0, timing) and `iommuGroup` behind an IOMMU. */
  readonly options?: DeviceOptions;
}

export interface PciMachineOptions {
  readonly vfs: Vfs;
  readonly pageSize: number;
  readonly kconfig: VfioKconfig;
  /** An IOMMU translates PCI DMA (IOMMU mode); false on a noiommu host. */
  readonly iommu: boolean;
  /** CPUs of the machine (default 2, the lab guest's -smp 2). */
  readonly cpus?: number;
  /** The IOMMU hardware, for its sysfs class device (null or absent: none shown). */
  readonly iommuUnit?: IommuUnit | null;
  readonly noiommuAtBoot: boolean;
  /** CONFIG_PCI_IOV: SR-IOV capable functions become PFs (default false). */
  readonly pciIov?: boolean;
  /** CONFIG_PCIEAER: root ports run the AER service and error recovery (default false). */
  readonly pcieAer?: boolean;
  /** CONFIG_PCIEAER_INJECT: /dev/aer_inject (needs pcieAer). */
  readonly pcieAerInject?: boolean;
  readonly functions: readonly PciFunctionSpec[];
  readonly physicalMemory: DmaPort;
  /** The clock the devices run on (default: a virtual clock in auto mode). */
  readonly clock?: DeviceClock;
  readonly iommufd: IommufdPort | undefined;
  capabilities(): Capabilities;
  lookup(fd: number): OpenFile | undefined;
  installFd(file: OpenFile, description: string): number;
  readUser?(address: bigint, length: number): Uint8Array;
  /** IOMMU group DMA ownership shared with iommufd (iommu_group_claim_dma_owner). */
  readonly dmaOwnership?: DmaOwnershipTable;
  /** A fresh iommufd context, for the type1 container driver. */
  newIommufd?(): OpenFile;
  holdFile?(file: OpenFile): void;
  dropFile?(file: OpenFile): void;
  /** The kernel's fault injector (a machine of its own, never armed, when absent). */
  readonly faults?: FaultInjector;
  /** What the host uses: the interfaces and disks the host drivers publish when they probe. */
  readonly host?: HostUse;
}

export class PciMachine {
  readonly host: PciHost;
  readonly bus: PciBus;
  readonly sysfs: PciSysfs;
  readonly iommuGroups: IommuGroups;
  readonly vfio: VfioSubsystem;
  readonly vfioPci: VfioPciDriver;
  /** The SR-IOV state of every PF (pdev->sriov), by function. */
  readonly sriov = new Map<PciSlot, PciSriov>();
  private readonly iommuSysfs: IommuSysfs | null;
  private readonly unplugging = new Set<PciSlot>();
  private readonly iommu: boolean;
  /** The AER core, on a kernel with CONFIG_PCIEAER. */
  readonly aer: PcieAer | undefined;
  private readonly aerInjector: AerInjector | undefined;

  constructor(o: PciMachineOptions) {
    this.iommu = o.iommu;
    this.host = new PciHost({ physicalMemory: o.physicalMemory, iommu: o.iommu, ...(o.clock ? { clock: o.clock } : {}) });
    this.bus = new PciBus(() => this.host.all());
    this.iommuGroups = new IommuGroups(o.vfs, devicePath);
    addIommuClass(o.vfs);
    const iommuSysfs = o.iommu && o.iommuUnit ? new IommuSysfs(o.vfs, o.iommuUnit, () => this.iommuGroups.translatedCount()) : null;
    this.iommuSysfs = iommuSysfs;
    this.vfio = new VfioSubsystem({
      vfs: o.vfs,
      kconfig: o.kconfig,
      pageSize: o.pageSize,
      pci: this.host,
      bus: this.bus,
      iommuGroups: this.iommuGroups,
      capabilities: () => o.capabilities(),
      lookup: (fd) => o.lookup(fd),
      installFd: (f, d) => o.installFd(f, d),
      ...(o.readUser ? { readUser: o.readUser } : {}),
      iommufd: o.iommufd,
      noiommuAtBoot: o.noiommuAtBoot,
      ...(o.dmaOwnership ? { dmaOwnership: o.dmaOwnership } : {}),
      ...(o.newIommufd ? { newIommufd: () => o.newIommufd!() } : {}),
      ...(o.holdFile ? { holdFile: (f: OpenFile) => o.holdFile!(f) } : {}),
      ...(o.dropFile ? { dropFile: (f: OpenFile) => o.dropFile!(f) } : {}),
      faults: o.faults ?? new FaultInjector(),
    });
    this.sysfs = new PciSysfs({
      vfs: o.vfs,
      configDword: (slot, offset) =>
        this.aerInjector ? this.aerInjector.readConfigDword(slot, offset) : slot.device.config.read(offset, 4),
      bus: this.bus,
      pageSize: o.pageSize,
      capabilities: () => o.capabilities(),
      isEnabled: (slot) => this.vfio.deviceOf(slot)?.core.isOpen ?? false,
      cpus: o.cpus ?? 2,
      functions: () => this.host.all(),
      pciIov: o.pciIov === true,
      iovResources: (slot) => this.sriov.get(slot)?.resources,
    });
    this.vfioPci = new VfioPciDriver(this.vfio, (slot) => this.sriov.get(slot));
    this.bus.registerDriver(this.vfioPci);
    this.sysfs.addDriver(this.vfioPci);
    const stub = new PciStubDriver();
    this.bus.registerDriver(stub);
    this.sysfs.addDriver(stub);
    // Every kernel with CONFIG_NET has /sys/class/net (and lo); every one has /sys/block.
    let booting = true;
    const hostCtx: HostDriverContext = {
      vfs: o.vfs,
      net: new NetSysfs(o.vfs),
      block: new BlockSysfs(o.vfs),
      host: o.host ?? {},
      booting: () => booting,
    };
    // A host driver is built in when the profile binds some function to it at boot.
    const hostDrivers = new Map<string, () => PciDriver>([
      ['e1000e', () => new E1000eDriver(hostCtx)],
      ['nvme', () => new NvmeHostDriver(hostCtx)],
      ['ahci', () => new AhciDriver(hostCtx)],
    ]);
    for (const name of [...HOST_NIC_DRIVERS, ...HOST_STORAGE_DRIVERS]) {
      if (!o.functions.some((f) => f.driver === name)) continue;
      const driver = hostDrivers.get(name)!();
      this.bus.registerDriver(driver);
      this.sysfs.addDriver(driver);
    }
    const slots: PciSlot[] = [];
    // Functions arrive in bus order, so a bridge is in place before the functions behind it.
    const bridgeNames = o.functions.map((f) => ({ f, a: parsePciAddress(f.address) }));
    let busNumbers = new Map<string, number>();
    for (const { f: spec, a: address } of bridgeNames) {
      if (!address) throw new RangeError(`bad PCI address '${spec.address}'`);
      const upstream = address.bus === 0 ? undefined : slots.find((s) => isBridge(s.device) && busNumbers.get(s.name) === address.bus);
      if (address.bus !== 0 && !upstream) throw new RangeError(`${spec.address}: no bridge leads to bus ${address.bus}`);
      const slot = this.host.plug(address, placeDevice(spec.device, spec.options), upstream);
      firmwareInit(slot);
      slots.push(slot);
      if (isBridge(slot.device)) busNumbers = firmwareBusNumbers(slots.filter((s) => isBridge(s.device)));
    }
    for (const bridge of slots.filter((s) => isBridge(s.device))) {
      const below = functionsBelow(bridge, slots)
        .filter((s) => isBridge(s.device))
        .map((s) => busNumbers.get(s.name)!);
      const secondary = busNumbers.get(bridge.name)!;
      programBridgeBuses(bridge, secondary, Math.max(secondary, ...below));
    }
    markMultifunctionSlots(slots);
    for (const slot of slots) this.sysfs.addDevice(slot);
    if (o.pcieAer) {
      const aer = new PcieAer({
        vfs: o.vfs,
        bus: this.bus,
        functions: () => this.host.all(),
        devicePath,
        capabilities: () => o.capabilities(),
      });
      this.aer = aer;
      for (const slot of slots) aer.addFunction(slot);
      if (o.pcieAerInject) {
        const injector = new AerInjector({ aer, functions: () => this.host.all(), capabilities: () => o.capabilities() });
        this.aerInjector = injector;
        addDevNode(o.vfs, '/dev/aer_inject', { type: 'chardev', open: () => injector.open() });
      }
    }
    // The IOMMU driver groups every function at boot, in bus order, as the topology decides
    // (multifunction slots without ACS share a group, ACS-capable root ports isolate what is
    // behind them); an entry's `iommuGroup` option overrides that for machines without the
    // platform's functions.
    if (o.iommu) {
      for (const slot of slots) enableAcs(slot);
      const derived = iommuGroupNumbers(slots);
      const byNumber = new Map<number, IommuGroup>();
      for (const slot of slots) {
        const fixed = o.functions.find((f) => f.address === slot.name)?.options?.['iommuGroup'];
        const id = typeof fixed === 'number' ? fixed : derived.get(slot)!;
        let group = byNumber.get(id);
        if (!group) {
          group = this.iommuGroups.alloc({ translated: true, id });
          byNumber.set(id, group);
        }
        this.iommuGroups.add(group, slot);
        iommuSysfs?.linkDevice(devicePath(slot));
      }
    }
    // pci_iov_init: every function with an SR-IOV capability is a PF.
    const port = {
      vfs: o.vfs,
      bus: this.bus,
      devicePath,
      addFunction: (address: PciAddress, device: PciDeviceModel, upstream: PciSlot | undefined) =>
        this.addVirtualFunction(address, device, upstream),
      removeFunction: (slot: PciSlot) => this.removeVirtualFunction(slot),
    };
    for (const slot of o.pciIov ? slots : []) {
      const pos = sriovCapabilityOffset(slot.device);
      if (pos) this.sriov.set(slot, new PciSriov(slot, pos, port));
    }
    for (const spec of o.functions) {
      if (!spec.driver) continue;
      const driver = this.bus.driver(spec.driver);
      if (!driver) throw new RangeError(`unknown boot driver '${spec.driver}' for ${spec.address}`);
      const slot = this.host.slot(spec.address)!;
      if (hostDrivers.has(spec.driver)) {
        // A host driver binds by its ID table, as at boot: no driver_override is left behind.
        if (!driver.idTable.some((id) => matchesId(id, slot))) {
          throw new RangeError(`boot driver '${spec.driver}' does not match ${spec.address} (its ID table has no entry for it)`);
        }
        this.bus.bind(driver, spec.address);
        continue;
      }
      this.bus.setDriverOverride(slot, Buffer.from(spec.driver), o.pageSize);
      this.bus.probeDevice(slot);
    }
    booting = false;
  }

  /**
   * A surprise-free hot-unplug of the function at `address` through its PCIe slot, as QEMU's
   * device_del or the slot's attention button starts it and pciehp carries it out
   * (pciehp_unconfigure_device → pci_stop_and_remove_bus_device): the driver lets go first — for
   * vfio-pci that waits, asking the user through REQ, until every fd of the device is closed —
   * then the function leaves its IOMMU group, sysfs and the bus. Resolves when it is gone.
   */
  async hotUnplug(address: string): Promise<void> {
    const slot = this.host.slot(address);
    if (!slot) throw new RangeError(`hot-unplug: no PCI function ${address}`);
    if (!(slot.upstream?.device instanceof PcieRootPort)) {
      throw new RangeError(`hot-unplug: ${address} is not behind a PCIe root port, and q35's root bus has no hotplug slots`);
    }
    if (this.unplugging.has(slot)) throw new RangeError(`hot-unplug: ${address} is already being removed`);
    if (isBridge(slot.device)) throw new RangeError(`hot-unplug: ${address} is a bridge; unplug the functions behind it`);
    this.unplugging.add(slot);
    try {
      await this.bus.detachWhenReleased(slot);
      const group = this.iommuGroups.of(slot);
      if (group) this.iommuGroups.remove(group, slot);
      this.sysfs.removeDevice(slot);
      this.host.unplug(slot);
    } finally {
      this.unplugging.delete(slot);
    }
  }

  /**
   * pci_iov_add_virtfn's pci_device_add: a VF on the PF's bus, its BARs where the PF's VF BARs
   * put them (iov.ts), in sysfs, and behind an IOMMU in a group of its own (a VF is never
   * multifunction and q35's root bus has no ACS path to share).
   */
  private addVirtualFunction(address: PciAddress, device: PciDeviceModel, upstream: PciSlot | undefined): PciSlot {
    // Firmware never saw the VF: no BAR assignment, no command bits, no interrupt line.
    const slot = this.host.plug(address, device, upstream);
    this.sysfs.addDevice(slot);
    if (this.iommu) {
      this.iommuGroups.add(this.iommuGroups.alloc({ translated: true }), slot);
      this.iommuSysfs?.linkDevice(devicePath(slot));
    }
    return slot;
  }

  /** pci_iov_remove_virtfn: the VF leaves its IOMMU group, sysfs and the bus. */
  private removeVirtualFunction(slot: PciSlot): void {
    const group = this.iommuGroups.of(slot);
    if (group) this.iommuGroups.remove(group, slot);
    this.sysfs.removeDevice(slot);
    this.host.unplug(slot);
  }
}
