/**
 * What the machine under test offers, found through the Kernel interface only (sysfs, /dev), so
 * the same discovery works on a real kernel and on the model: which VFIO device is there, whether
 * it sits behind an IOMMU, whether the legacy group/container interface exists, the page size and
 * the privileges of this process.
 */
import { probeIommufdCommands, type CommandProbe } from './iommufd-commands';
import type { Capabilities, Kernel } from '../sys/kernel';
import type { Mode } from './types';
import { VfioError } from '../sys/errors';
import { normalizeBdf } from '../pci/pci-device';
import { describeFacts, probeDevice, type DeviceFacts } from './device-facts';

/**
 * A VFIO device found bound to vfio-pci with a cdev: its address, its device nodes and its PCI IDs.
 *
 * @category Conformance suite
 */
export interface DeviceUnderTest {
  /** PCI address, e.g. '0000:00:03.0'. */
  readonly bdf: string;
  /** /dev/vfio/devices/noiommu-vfioN or /dev/vfio/devices/vfioN. */
  readonly cdevPath: string;
  /** The legacy group node (/dev/vfio/noiommu-N or /dev/vfio/N) when the group interface exists. */
  readonly groupPath: string | null;
  /** The PCI vendor ID from sysfs (-1 when sysfs does not say). */
  readonly vendorId: number;
  /** The PCI device ID from sysfs (-1 when sysfs does not say). */
  readonly deviceId: number;
}

/**
 * What the machine under test offers, as discoverEnvironment found it through the Kernel interface;
 * cases read it to decide expectations and needs.
 *
 * @category Conformance suite
 */
export interface Environment {
  /** The kernel the cases run on (inside a case, the fd-tracking wrapper around it). */
  readonly kernel: Kernel;
  /** Whether the device is used without an IOMMU or behind one. */
  readonly mode: Mode;
  /** Where `mode` came from, for reports ("cdev name noiommu-vfio0", "NODE_VFIO_LAB_MODE"). */
  readonly modeSource: string;
  /** The device under test, or null when no function bound to vfio-pci has a VFIO cdev. */
  readonly device: DeviceUnderTest | null;
  /** Every function bound to vfio-pci with a cdev, in bus order: the device under test and its peers. */
  readonly devices: readonly DeviceUnderTest[];
  /** What the device under test reports once bound (MSI-X vectors, resets); null without a device. */
  readonly facts: DeviceFacts | null;
  /** /dev/vfio/vfio exists: the legacy container interface is built in. */
  readonly hasContainer: boolean;
  /** /dev/iommu exists (CONFIG_IOMMUFD). */
  readonly hasIommufd: boolean;
  /** The iommufd commands this kernel knows (a 6.x kernel lacks the newer ones). */
  readonly iommufdCommands: CommandProbe;
  /** The kernel's page size in bytes. */
  readonly pageSize: number;
  /** The privileges of this process (CAP_SYS_RAWIO, writing /proc/sys). */
  readonly capabilities: Capabilities;
}

/**
 * Which device and mode discoverEnvironment should use instead of what it would find by itself.
 *
 * @category Conformance suite
 */
export interface DiscoverOptions {
  /** The device to test; without it the first device bound to vfio-pci is used. */
  readonly bdf?: string;
  /** The mode when no device tells it (with a device, its cdev name decides). */
  readonly mode?: Mode;
  /**
   * The functions the cases on several devices use (the CLI's BDFs when it is given several);
   * default: every function bound to vfio-pci.
   */
  readonly devices?: readonly string[];
}

const PCI_DEVICES = '/sys/bus/pci/devices';

/** QEMU's edu device: the device the DMA and BAR cases know how to drive. */
export const EDU_VENDOR_ID = 0x1234;
export const EDU_DEVICE_ID = 0x11e8;

/**
 * Finds, through the Kernel interface only, the device under test and its peers, the IOMMU mode,
 * the device's facts, the iommufd commands and the privileges; throws when the given BDF has no
 * VFIO cdev or the given mode contradicts the device's cdev.
 *
 * @category Conformance suite
 */
export function discoverEnvironment(kernel: Kernel, options: DiscoverOptions = {}): Environment {
  const device = findDevice(kernel, options.bdf);
  let mode: Mode;
  let modeSource: string;
  if (device) {
    const name = device.cdevPath.slice(device.cdevPath.lastIndexOf('/') + 1);
    mode = name.startsWith('noiommu-') ? 'noiommu' : 'iommu';
    modeSource = `cdev name ${name}`;
    if (options.mode && options.mode !== mode) {
      throw new Error(`the environment says mode '${options.mode}' but the device's cdev is ${device.cdevPath}`);
    }
  } else if (options.mode) {
    mode = options.mode;
    modeSource = 'given';
  } else {
    mode = noiommuModeEnabled(kernel) ? 'noiommu' : 'iommu';
    modeSource = 'vfio module parameter enable_unsafe_noiommu_mode';
  }
  return {
    kernel,
    mode,
    modeSource,
    device,
    devices: options.devices ? listDevices(kernel).filter((d) => options.devices!.includes(d.bdf)) : listDevices(kernel),
    facts: device ? probeDevice(kernel, device.cdevPath) : null,
    hasContainer: kernel.exists('/dev/vfio/vfio'),
    hasIommufd: kernel.exists('/dev/iommu'),
    iommufdCommands: probeIommufdCommands(kernel),
    pageSize: kernel.pageSize,
    capabilities: kernel.capabilities(),
  };
}

function noiommuModeEnabled(kernel: Kernel): boolean {
  const param = '/sys/module/vfio/parameters/enable_unsafe_noiommu_mode';
  return kernel.exists(param) && /^[Y1]/.test(kernel.readFile(param).toString().trim());
}

function findDevice(kernel: Kernel, bdf: string | undefined): DeviceUnderTest | null {
  if (bdf !== undefined) {
    // The address becomes part of sysfs paths: only a PCI address may (never "../../x").
    const address = normalizeBdf(bdf);
    const found = describeDevice(kernel, address);
    if (!found) {
      throw VfioError.condition('ERR_VFIO_NO_CDEV', {
        check: `device ${address} has no VFIO device cdev (${PCI_DEVICES}/${address}/vfio-dev/*/dev)`,
        hint: 'bind it to vfio-pci first (vfio bind); a noiommu device has a cdev only from Linux 7.3',
      });
    }
    return found;
  }
  if (!kernel.exists(PCI_DEVICES)) return null;
  for (const candidate of kernel.readdir(PCI_DEVICES).sort()) {
    const found = describeDevice(kernel, candidate);
    if (found) return found;
  }
  return null;
}

function listDevices(kernel: Kernel): DeviceUnderTest[] {
  if (!kernel.exists(PCI_DEVICES)) return [];
  return kernel
    .readdir(PCI_DEVICES)
    .sort()
    .map((bdf) => describeDevice(kernel, bdf))
    .filter((d): d is DeviceUnderTest => d !== null);
}

function describeDevice(kernel: Kernel, bdf: string): DeviceUnderTest | null {
  const dir = `${PCI_DEVICES}/${bdf}`;
  const vfioDev = `${dir}/vfio-dev`;
  if (!kernel.exists(vfioDev)) return null;
  // An entry without a `dev` attribute has no char device behind it (a noiommu device before
  // Linux 7.3): it is no cdev to test.
  const names = kernel
    .readdir(vfioDev)
    .filter((n) => /^(noiommu-)?vfio\d+$/.test(n) && kernel.exists(`${vfioDev}/${n}/dev`))
    .sort();
  if (names.length === 0) return null;
  const cdevPath = `/dev/vfio/devices/${names[0]}`;
  const noiommu = names[0]!.startsWith('noiommu-');
  let groupPath: string | null = null;
  if (kernel.exists(`${dir}/iommu_group`)) {
    const target = kernel.readlink(`${dir}/iommu_group`);
    const group = target.slice(target.lastIndexOf('/') + 1);
    const node = noiommu ? `/dev/vfio/noiommu-${group}` : `/dev/vfio/${group}`;
    if (kernel.exists(node)) groupPath = node;
  }
  return {
    bdf,
    cdevPath,
    groupPath,
    vendorId: readHex(kernel, `${dir}/vendor`),
    deviceId: readHex(kernel, `${dir}/device`),
  };
}

function readHex(kernel: Kernel, path: string): number {
  if (!kernel.exists(path)) return -1;
  return Number.parseInt(kernel.readFile(path).toString().trim(), 16);
}

export function isEdu(device: DeviceUnderTest | null): boolean {
  return device !== null && device.vendorId === EDU_VENDOR_ID && device.deviceId === EDU_DEVICE_ID;
}

/**
 * One line describing the environment, for reports.
 *
 * @category Conformance suite
 */
export function describeEnvironment(env: Environment): string {
  const dev = env.device
    ? `${env.device.bdf} (${hex4(env.device.vendorId)}:${hex4(env.device.deviceId)}) via ${env.device.cdevPath}` +
      (env.device.groupPath ? `, group ${env.device.groupPath}` : ', no group node')
    : 'no VFIO device';
  const caps = env.capabilities.sysRawio ? 'CAP_SYS_RAWIO' : 'without CAP_SYS_RAWIO';
  return (
    `${env.kernel.kind} kernel (${env.kernel.description}), mode ${env.mode} (${env.modeSource}), ${dev}` +
    (env.facts ? ` (${describeFacts(env.facts)})` : '') +
    (env.devices.length > 1 ? `, ${env.devices.length} vfio-pci functions` : '') +
    `, page size ${env.pageSize}, ${env.hasContainer ? 'container present' : 'no container'}, ${caps}`
  );
}

function hex4(n: number): string {
  return n < 0 ? '????' : n.toString(16).padStart(4, '0');
}
