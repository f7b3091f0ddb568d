/**
 * The model kernel: a simulated Linux 7.3 host behind the `Kernel` interface.
 *
 *   const kernel = createModelKernel('linux-7.3-noiommu');
 *
 * A profile name picks a preset machine (see profile.ts); a Profile object describes any other;
 * a ModelMachine starts from either and places device models of your own on its PCI bus:
 *
 *   const kernel = createModelKernel({
 *     base: 'linux-7.3-noiommu',
 *     devices: [{ address: '0000:00:05.0', model: new MyDevice() }],
 *   });
 *
 * The device-model SDK (DeviceModel, the capability builders, ModelClock, …) is exported from here
 * too; docs/device-models.md is its tutorial.
 */
import { wrapNewKernel } from '../sys/kernel-wrapper';
import { bootPciMachine } from './boot';
import type { ModelClock } from './device/clock';
import type { DeviceModel } from './device/device-model';
import { ModelKernel } from './model-kernel';
import { resolveProfile, type PciDeviceSpec, type Profile, type ProfileName } from './profile';

/**
 * A device model placed at a PCI address.
 *
 * @category Model
 */
export interface DevicePlacement {
  /** Domain:bus:device.function, e.g. '0000:00:05.0'. */
  readonly address: string;
  /** The device: an instance of a DeviceModel subclass, placed in this machine only. */
  readonly model: DeviceModel;
  /** The driver bound at boot: 'vfio-pci' (the default), 'pci-stub', or null for none. */
  readonly driver?: string | null;
  /** Behind an IOMMU, the IOMMU group (default: the lowest free one, in bus order). */
  readonly iommuGroup?: number;
}

/**
 * A machine built from a preset or profile plus devices placed on its bus.
 *
 * @category Model
 */
export interface ModelMachine {
  /** The preset (by name) or profile the machine starts from. */
  readonly base: ProfileName | Profile;
  /** Devices placed on the bus besides the base's own. */
  readonly devices?: readonly DevicePlacement[];
  /** Leave out the base's own devices (the presets' edu at 0000:00:03.0). Default false. */
  readonly withoutBaseDevices?: boolean;
  /**
   * The clock the machine's devices run on. Default: a new ModelClock in 'auto' mode (virtual
   * time that runs by itself); pass `new ModelClock('manual')` to advance time from a test.
   */
  readonly clock?: ModelClock;
}

/** The rest of the simulated host, installed in this order when a kernel boots. */
function bootSteps(clock: ModelClock | undefined): readonly ((kernel: ModelKernel) => void)[] {
  return [
    (kernel) => {
      kernel.pci = bootPciMachine(kernel, clock);
    },
  ];
}

/**
 * Boots a model kernel for a preset name, a Profile, or a ModelMachine (a base plus placed devices).
 *
 * @category Model
 */
export function createModelKernel(machine: ProfileName | Profile | ModelMachine): ModelKernel {
  const isMachine = typeof machine === 'object' && 'base' in machine;
  const profile = isMachine ? machineProfile(machine) : resolveProfile(machine);
  const kernel = new ModelKernel(profile);
  for (const step of bootSteps(isMachine ? machine.clock : undefined)) step(kernel);
  return wrapNewKernel(kernel);
}

function machineProfile(m: ModelMachine): Profile {
  const base = resolveProfile(m.base);
  const seen = new Set<DeviceModel>();
  const placed: PciDeviceSpec[] = (m.devices ?? []).map((d) => {
    if (seen.has(d.model))
      throw new RangeError(
        `device model '${d.model.model}' is placed twice (at ${d.address} and before); each placement needs its own instance`,
      );
    if (d.model.isConnected)
      throw new RangeError(`device model '${d.model.model}' for ${d.address} is already plugged into another machine`);
    seen.add(d.model);
    return {
      address: d.address,
      device: d.model,
      driver: d.driver === undefined ? 'vfio-pci' : d.driver,
      ...(d.iommuGroup === undefined ? {} : { options: { iommuGroup: d.iommuGroup } }),
    };
  });
  return resolveProfile({ ...base, pci: [...(m.withoutBaseDevices ? [] : base.pci), ...placed] });
}

export { ModelKernel } from './model-kernel';
export type { ModelMachineState } from './model-kernel';
export type { ModelSockets, SocketProcess } from './sockets/model-sockets';
export { profiles, resolveProfile, hasIommufdNoiommu } from './profile';
export type {
  Profile,
  ProfileName,
  KernelConfig,
  KernelVersion,
  IommuUnit,
  ReservedIovaRegion,
  MemoryConfig,
  PciDeviceSpec,
  ProcessCredentials,
  HostUse,
  HostInterfaceSpec,
  HostDiskSpec,
  HostMountSpec,
} from './profile';
export { PhysicalAccessFault } from './memory/physical-memory';
export { IommufdContext, IommuFault } from './iommufd/iommufd-ctx';
export type { BindableDevice } from './iommufd/iommufd-device';
export { KernelError } from './errno';
export * from './device';
