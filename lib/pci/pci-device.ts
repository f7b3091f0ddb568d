/**
 * PCI device discovery and driver binding through sysfs (/sys/bus/pci). Read-only discovery
 * needs no privileges; binding writes driver_override / drivers_probe / unbind and needs root.
 */
import { PciSriov } from './sriov';
import type { Kernel } from '../sys/kernel';
import { VfioError } from '../sys/errors';
import { kernelFrom, type KernelOptions } from '../support/kernel-options';

const PCI_DEVICES = '/sys/bus/pci/devices';
const PCI_DRIVERS = '/sys/bus/pci/drivers';
const DRIVERS_PROBE = '/sys/bus/pci/drivers_probe';
/**
 * The vfio module parameter that allows devices without an IOMMU (and taints the kernel).
 *
 * @category PCI
 */
export const NOIOMMU_PARAMETER = '/sys/module/vfio/parameters/enable_unsafe_noiommu_mode';
export const VFIO_PCI_DRIVER = 'vfio-pci';

const BDF = /^(?:([0-9a-f]{4}):)?([0-9a-f]{2}):([0-9a-f]{2})\.([0-7])$/i;
/** IFF_UP of a network interface's flags (include/uapi/linux/if.h). */
const IFF_UP = 0x1;

/**
 * Normalises "00:04.0" or "0000:00:04.0" to the kernel's "0000:00:04.0"; throws on anything else.
 *
 * @category PCI
 */
export function normalizeBdf(bdf: string): string {
  const m = BDF.exec(bdf.trim());
  if (!m) throw new TypeError(`'${bdf}' is not a PCI address (expected domain:bus:device.function, e.g. 0000:00:04.0)`);
  return `${(m[1] ?? '0000').toLowerCase()}:${m[2]!.toLowerCase()}:${m[3]!.toLowerCase()}.${m[4]}`;
}

export function isBdf(s: string): boolean {
  return BDF.test(s.trim());
}

/**
 * State of the vfio noiommu module parameter.
 *
 * @category PCI
 */
export type NoiommuMode = 'enabled' | 'disabled' | 'unavailable';

/**
 * Which devices `PciDevice.list` returns; all given fields must match.
 *
 * @category PCI
 */
export interface PciDeviceFilter {
  /** PCI vendor ID. */
  readonly vendorId?: number;
  /** PCI device ID. */
  readonly deviceId?: number;
  /** Base class, the top byte of the class code (0x01 storage, 0x02 network). */
  readonly baseClass?: number;
  /** Subclass, the middle byte (0x08 with base class 0x01: NVM). */
  readonly subclass?: number;
  /** Programming interface, the low byte (0x02 with 0x0108: NVMe). */
  readonly progIf?: number;
  /** Only devices currently bound to this driver (or unbound, with null). */
  readonly driver?: string | null;
}

/**
 * Options of `bindVfio` and `setNoiommuMode`.
 *
 * @category PCI
 */
export interface BindOptions {
  /**
   * A device without an IOMMU can only be given to vfio-pci with the vfio module's unsafe
   * noiommu mode on, which lets the device DMA anywhere in memory and taints the kernel. Only
   * with `true` here does bindVfio switch it on.
   */
  readonly unsafeNoiommu?: boolean;
  /**
   * Bind even a device the host is using (`PciDevice.usage()`: a network interface that is up, a
   * mounted disk, active swap, a bridge with devices below it, the boot VGA device). Taking such
   * a device away can cut the host off its network or crash it; without `true` it is refused.
   */
  readonly force?: boolean;
}

/**
 * Options of `unbind`.
 *
 * @category PCI
 */
export interface UnbindOptions {
  /**
   * Give the device back to a driver: `true` for the one it had before `bindVfio()` (or whatever
   * the kernel's matching picks), a name for that driver. Default: leave it unbound.
   */
  readonly restore?: boolean | string;
}

/**
 * A PCI function as sysfs shows it.
 *
 * @category PCI
 */
export class PciDevice {
  /** The driver the device had before `bindVfio()` moved it, if any. */
  previousDriver: string | null | undefined;

  private constructor(
    /** The kernel whose sysfs this device lives in. */
    readonly kernel: Kernel,
    /** Normalised PCI address (0000:00:03.0). */
    readonly bdf: string,
  ) {}

  /** The device at `bdf` (ENOENT when there is none), in the sysfs of `options.kernel`. */
  static get(bdf: string, options?: KernelOptions): PciDevice;
  /** @deprecated The positional form of `PciDevice.get(bdf, { kernel })`. */
  static get(bdf: string, kernel: Kernel): PciDevice;
  static get(bdf: string, options?: KernelOptions | Kernel): PciDevice {
    const kernel = kernelFrom(options);
    const dev = new PciDevice(kernel, normalizeBdf(bdf));
    if (!kernel.exists(dev.path)) {
      throw VfioError.of('ENOENT', {
        syscall: 'stat',
        path: dev.path,
        context: `no PCI device ${dev.bdf}`,
        hint: 'list devices with PciDevice.list() or lspci -D',
      });
    }
    return dev;
  }

  /** Every PCI device that matches `filter`, in address order. */
  static list(filter?: PciDeviceFilter, options?: KernelOptions): PciDevice[];
  /** @deprecated The positional form of `PciDevice.list(filter, { kernel })`. */
  static list(filter: PciDeviceFilter, kernel: Kernel): PciDevice[];
  static list(filter: PciDeviceFilter = {}, options?: KernelOptions | Kernel): PciDevice[] {
    const kernel = kernelFrom(options);
    const names = kernel.readdir(PCI_DEVICES).filter(isBdf).sort();
    return names.map((n) => new PciDevice(kernel, normalizeBdf(n))).filter((d) => d.matches(filter));
  }

  /** State of vfio's enable_unsafe_noiommu_mode ('unavailable': vfio not loaded or built without it). */
  static noiommuMode(options?: KernelOptions): NoiommuMode;
  /** @deprecated The positional form of `PciDevice.noiommuMode({ kernel })`. */
  static noiommuMode(kernel: Kernel): NoiommuMode;
  static noiommuMode(options?: KernelOptions | Kernel): NoiommuMode {
    const kernel = kernelFrom(options);
    if (!kernel.exists(NOIOMMU_PARAMETER)) return 'unavailable';
    const v = kernel.readFile(NOIOMMU_PARAMETER).toString('utf8').trim();
    return v === 'Y' || v === '1' ? 'enabled' : 'disabled';
  }

  /**
   * Switches vfio's noiommu mode. Turning it on is refused unless `unsafeNoiommu: true`: it lets
   * userspace drive devices with unrestricted DMA and taints the kernel.
   */
  static setNoiommuMode(enabled: boolean, options?: BindOptions & KernelOptions): void;
  /** @deprecated The positional form of `PciDevice.setNoiommuMode(enabled, { ...options, kernel })`. */
  static setNoiommuMode(enabled: boolean, options: BindOptions, kernel: Kernel): void;
  static setNoiommuMode(enabled: boolean, options: BindOptions & KernelOptions = {}, positionalKernel?: Kernel): void {
    const kernel = positionalKernel ?? kernelFrom(options);
    if (enabled && !options.unsafeNoiommu) throw noiommuRefusal('switching on noiommu mode');
    if (!kernel.exists(NOIOMMU_PARAMETER)) {
      throw VfioError.of('ENOENT', {
        syscall: 'stat',
        path: NOIOMMU_PARAMETER,
        hint: 'load the vfio module (modprobe vfio) on a kernel built with CONFIG_VFIO_NOIOMMU',
      });
    }
    writeSysfs(kernel, NOIOMMU_PARAMETER, enabled ? '1' : '0');
  }

  /** The device's sysfs directory. */
  get path(): string {
    return `${PCI_DEVICES}/${this.bdf}`;
  }

  /** PCI vendor ID. */
  get vendorId(): number {
    return this.readHex('vendor');
  }

  /** PCI device ID. */
  get deviceId(): number {
    return this.readHex('device');
  }

  /** 24-bit class code (base class, subclass, programming interface). */
  get classCode(): number {
    return this.readHex('class');
  }

  /** Subsystem vendor ID. */
  get subsystemVendorId(): number {
    return this.readHex('subsystem_vendor');
  }

  /** Subsystem device ID. */
  get subsystemDeviceId(): number {
    return this.readHex('subsystem_device');
  }

  /** SR-IOV of this PF (sriov_numvfs & co.), or null when the function has no SR-IOV capability. */
  get sriov(): PciSriov | null {
    return PciSriov.at(this.kernel, this.bdf, this.path);
  }

  /** For an SR-IOV VF, the BDF of its PF (the `physfn` link); null otherwise. */
  get physicalFunction(): string | null {
    const link = `${this.path}/physfn`;
    if (!this.kernel.exists(link)) return null;
    return basename(this.kernel.readlink(link));
  }

  /** The bound driver's name, or null. */
  get driver(): string | null {
    const link = `${this.path}/driver`;
    if (!this.kernel.exists(link)) return null;
    return basename(this.kernel.readlink(link));
  }

  /**
   * The driver named in driver_override (the only driver that may bind the device, as driverctl
   * sets it), or null when none is set.
   */
  get driverOverride(): string | null {
    const value = this.readOptional(`${this.path}/driver_override`);
    return value === undefined || value === '' || value === '(null)' ? null : value;
  }

  /** The names of the device's network interfaces (/sys/class/net entries below it), up or down. */
  networkInterfaces(): string[] {
    return this.classEntriesBelow('/sys/class/net');
  }

  /** The IOMMU group number, or null (no IOMMU and no noiommu group). */
  get iommuGroup(): number | null {
    const link = `${this.path}/iommu_group`;
    if (!this.kernel.exists(link)) return null;
    return Number(basename(this.kernel.readlink(link)));
  }

  /**
   * Whether a real IOMMU translates this device's DMA: the device has an `iommu` link, or an IOMMU
   * group that is not one of VFIO's fake noiommu groups (named "vfio-noiommu").
   */
  get hasIommu(): boolean {
    if (this.kernel.exists(`${this.path}/iommu`)) return true;
    const group = this.iommuGroup;
    if (group === null) return false;
    const name = `/sys/kernel/iommu_groups/${group}/name`;
    return !(this.kernel.exists(name) && this.kernel.readFile(name).toString('utf8').trim() === 'vfio-noiommu');
  }

  /**
   * Names of the device's VFIO cdevs (vfio-dev/): 'vfio3' or, on noiommu, 'noiommu-vfio3'. A
   * vfio-dev entry without a `dev` attribute has no char device (a noiommu device before Linux
   * 7.3) and is not listed.
   */
  vfioCdevs(): string[] {
    const dir = `${this.path}/vfio-dev`;
    if (!this.kernel.exists(dir)) return [];
    return this.kernel
      .readdir(dir)
      .filter((n) => /^(noiommu-)?vfio\d+$/.test(n) && this.kernel.exists(`${dir}/${n}/dev`))
      .sort();
  }

  /** The device cdev path under /dev/vfio/devices, or null when there is none. */
  cdevPath(): string | null {
    const name = this.vfioCdevs()[0];
    return name === undefined ? null : `/dev/vfio/devices/${name}`;
  }

  /**
   * Gives the device to vfio-pci: driver_override, unbind from the current driver, drivers_probe.
   * The previous driver is remembered for `unbind({ restore: true })`. A device without an IOMMU
   * needs noiommu mode, which is only switched on with `unsafeNoiommu: true`.
   *
   * Nothing is changed unless vfio-pci is loaded and the device is not in use by the host (see
   * `usage()`; `force: true` overrides that check). If a step fails after the device left its
   * driver, it is given back to that driver before the error is thrown.
   */
  bindVfio(options: BindOptions = {}): void {
    const current = this.driver;
    if (current === VFIO_PCI_DRIVER) return;
    if (!this.kernel.exists(`${PCI_DRIVERS}/${VFIO_PCI_DRIVER}`)) {
      throw VfioError.condition('ERR_VFIO_NOT_BOUND', {
        check: `${PCI_DRIVERS}/${VFIO_PCI_DRIVER} does not exist, so ${this.bdf} was left with ${current ?? 'no driver'}`,
        hint: 'load the vfio-pci module first (modprobe vfio-pci)',
      });
    }
    if (options.force !== true) {
      const usage = this.usage();
      if (usage.length > 0) {
        throw VfioError.condition('ERR_VFIO_IN_USE', {
          check: `${this.bdf} is in use by the host: ${usage.join('; ')}`,
          hint: 'stop using it first (take the interface down, unmount, swapoff), or pass force: true if you are sure',
        });
      }
    }
    if (!this.hasIommu) {
      const mode = PciDevice.noiommuMode({ kernel: this.kernel });
      if (mode !== 'enabled') {
        if (!options.unsafeNoiommu) throw noiommuRefusal(`binding ${this.bdf}, which has no IOMMU, to vfio-pci`);
        PciDevice.setNoiommuMode(true, { ...options, kernel: this.kernel });
      }
    }
    try {
      writeSysfs(this.kernel, `${this.path}/driver_override`, VFIO_PCI_DRIVER);
      if (current !== null) writeSysfs(this.kernel, `${PCI_DRIVERS}/${current}/unbind`, this.bdf);
      writeSysfs(this.kernel, DRIVERS_PROBE, this.bdf);
      const now = this.driver;
      if (now !== VFIO_PCI_DRIVER) {
        throw VfioError.condition('ERR_VFIO_NOT_BOUND', {
          check: `after ${DRIVERS_PROBE}, ${this.bdf} is not bound to vfio-pci (driver now: ${now ?? 'none'})`,
          hint: 'load the vfio-pci module (modprobe vfio-pci); for a device without an IOMMU, noiommu mode must be on',
        });
      }
    } catch (e) {
      this.rollBack(current);
      throw e;
    }
    this.previousDriver = current;
  }

  /**
   * Why the host is using this device, in words; empty when it is not: its network interfaces
   * that are up, its block devices (or their partitions) that are mounted, used as swap or held
   * by another block device (LVM, RAID, dm-crypt), the devices below it when it is a bridge, and
   * whether it is the boot VGA device. What dpdk-devbind calls an *Active* device.
   */
  usage(): string[] {
    const reasons: string[] = [];
    const below = (classDir: string) => this.classEntriesBelow(classDir);
    for (const name of below('/sys/class/net')) {
      const flags = this.readOptional(`/sys/class/net/${name}/flags`);
      if (flags !== undefined && (Number.parseInt(flags, 16) & IFF_UP) !== 0) reasons.push(`network interface ${name} is up`);
    }
    const disks = below('/sys/block');
    if (disks.length > 0) {
      const mounts = this.devicesListed('/proc/mounts');
      const swaps = this.devicesListed('/proc/swaps');
      for (const disk of disks) {
        const parts = [disk, ...this.readdirOptional(`/sys/block/${disk}`).filter((n) => n.startsWith(disk))];
        for (const part of parts) {
          const dir = part === disk ? `/sys/block/${disk}` : `/sys/block/${disk}/${part}`;
          if (mounts.has(`/dev/${part}`)) reasons.push(`/dev/${part} is mounted`);
          if (swaps.has(`/dev/${part}`)) reasons.push(`/dev/${part} is active swap`);
          const holders = this.readdirOptional(`${dir}/holders`);
          if (holders.length > 0) reasons.push(`/dev/${part} is held by ${holders.join(', ')}`);
        }
      }
    }
    const children = this.readdirOptional(this.path).filter((n) => BDF.test(n));
    if (children.length > 0) reasons.push(`it is a bridge with ${children.join(', ')} below it`);
    if (this.readOptional(`${this.path}/boot_vga`) === '1') reasons.push('it is the boot VGA device');
    return reasons;
  }

  /** Gives the device back to `driver` (or leaves it driverless) after a failed bindVfio. */
  private rollBack(driver: string | null): void {
    // driver_override names the previous driver while it binds, so a driver that matches by
    // override only (pci-stub, an id added through new_id) takes the device back too.
    const attempts: (() => void)[] = [
      () => {
        const now = this.driver;
        if (now !== null && now !== driver) writeSysfs(this.kernel, `${PCI_DRIVERS}/${now}/unbind`, this.bdf);
      },
      () => {
        if (driver !== null) writeSysfs(this.kernel, `${this.path}/driver_override`, driver);
      },
      () => {
        if (driver !== null && this.driver === null) writeSysfs(this.kernel, `${PCI_DRIVERS}/${driver}/bind`, this.bdf);
      },
      () => writeSysfs(this.kernel, `${this.path}/driver_override`, '\n'),
    ];
    // Each step is tried even when an earlier one failed: the original error is the one to report.
    for (const attempt of attempts) {
      try {
        attempt();
      } catch {
        continue;
      }
    }
  }

  /** Entries of a sysfs class directory (/sys/class/net, /sys/block) whose device sits below this one. */
  private classEntriesBelow(classDir: string): string[] {
    return this.readdirOptional(classDir).filter((name) => {
      try {
        return `${this.kernel.readlink(`${classDir}/${name}`)}/`.includes(`/${this.bdf}/`);
      } catch {
        return false;
      }
    });
  }

  /** The /dev paths in the first column of /proc/mounts or /proc/swaps (empty when unreadable). */
  private devicesListed(path: string): Set<string> {
    const text = this.readOptional(path) ?? '';
    return new Set(
      text
        .split('\n')
        .map((line) => line.split(/\s+/)[0] ?? '')
        .filter((source) => source.startsWith('/dev/')),
    );
  }

  private readdirOptional(path: string): string[] {
    try {
      return this.kernel.readdir(path);
    } catch {
      return [];
    }
  }

  private readOptional(path: string): string | undefined {
    try {
      return this.kernel.readFile(path).toString('utf8').trim();
    } catch {
      return undefined;
    }
  }

  /** Unbinds from the current driver, clears driver_override and optionally restores a driver. */
  unbind(options: UnbindOptions = {}): void {
    const restore = options.restore;
    if (restore !== undefined && typeof restore !== 'boolean') checkDriverName(restore, 'PciDevice.unbind', 'options.restore');
    const current = this.driver;
    if (current !== null) writeSysfs(this.kernel, `${PCI_DRIVERS}/${current}/unbind`, this.bdf);
    writeSysfs(this.kernel, `${this.path}/driver_override`, '\n');
    if (restore === undefined || restore === false) return;
    const wanted = typeof restore === 'string' ? restore : (this.previousDriver ?? null);
    if (wanted !== null) {
      if (!this.kernel.exists(`${PCI_DRIVERS}/${wanted}`)) {
        throw VfioError.of('ENOENT', {
          syscall: 'stat',
          path: `${PCI_DRIVERS}/${wanted}`,
          context: `cannot give ${this.bdf} back to ${wanted}`,
          hint: `no driver named ${wanted} is loaded (modprobe it first)`,
        });
      }
      // driver_override makes the named driver match even when its id table does not list the
      // device (pci-stub, or a driver given the id through new_id earlier); it is cleared again
      // once the device is bound, so later probes behave normally.
      writeSysfs(this.kernel, `${this.path}/driver_override`, wanted);
      try {
        writeSysfs(this.kernel, DRIVERS_PROBE, this.bdf);
      } finally {
        writeSysfs(this.kernel, `${this.path}/driver_override`, '\n');
      }
    } else {
      writeSysfs(this.kernel, DRIVERS_PROBE, this.bdf);
    }
    if (wanted !== null && this.driver !== wanted) {
      throw VfioError.condition('ERR_VFIO_NOT_BOUND', {
        check: `after ${DRIVERS_PROBE}, ${this.bdf} is not bound to ${wanted} (driver now: ${this.driver ?? 'none'})`,
      });
    }
    this.previousDriver = undefined;
  }

  private matches(f: PciDeviceFilter): boolean {
    if (f.vendorId !== undefined && this.vendorId !== f.vendorId) return false;
    if (f.deviceId !== undefined && this.deviceId !== f.deviceId) return false;
    if (f.baseClass !== undefined || f.subclass !== undefined || f.progIf !== undefined) {
      const code = this.classCode;
      if (f.baseClass !== undefined && code >>> 16 !== f.baseClass) return false;
      if (f.subclass !== undefined && ((code >>> 8) & 0xff) !== f.subclass) return false;
      if (f.progIf !== undefined && (code & 0xff) !== f.progIf) return false;
    }
    if (f.driver !== undefined && this.driver !== f.driver) return false;
    return true;
  }

  private readHex(attribute: string): number {
    const path = `${this.path}/${attribute}`;
    try {
      return Number.parseInt(this.kernel.readFile(path).toString('utf8').trim(), 16);
    } catch (e) {
      throw VfioError.wrap(e, { context: `reading ${attribute} of ${this.bdf}`, path });
    }
  }
}

/**
 * A driver name as the kernel spells them ("vfio-pci", "snd_hda_intel"): one path component that
 * is not "." or "..", so it can neither escape /sys/bus/pci/drivers nor be empty.
 *
 * @category PCI
 */
export function checkDriverName(name: unknown, where: string, parameter: string): string {
  if (typeof name !== 'string') throw new TypeError(`${where}: ${parameter} must be a driver name or a boolean, got ${typeof name}`);
  if (!/^[A-Za-z0-9][A-Za-z0-9_.+-]*$/.test(name) || name.length > 64) {
    throw new TypeError(`${where}: ${parameter} must be a driver name (letters, digits, '_', '-', '.', '+'), got '${name}'`);
  }
  return name;
}

function writeSysfs(kernel: Kernel, path: string, value: string): void {
  try {
    kernel.writeFile(path, value);
  } catch (e) {
    throw VfioError.wrap(e, { path });
  }
}

function basename(p: string): string {
  return p.slice(p.lastIndexOf('/') + 1);
}

function noiommuRefusal(what: string): VfioError {
  return VfioError.condition('ERR_VFIO_NOIOMMU_NOT_ALLOWED', {
    check: `refusing ${what} without unsafeNoiommu: true`,
    hint: 'noiommu mode gives the device unrestricted DMA to all memory and taints the kernel; pass unsafeNoiommu: true to allow it',
  });
}
