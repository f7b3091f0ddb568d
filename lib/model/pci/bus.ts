/**
 * The PCI bus's driver binding (drivers/base/bus.c, dd.c, drivers/pci/pci-driver.c): which driver
 * owns which function, driver_override, dynamic IDs (new_id/remove_id), bind/unbind, and
 * drivers_probe, with the kernel's errnos:
 *   - driver_override only lets the named driver match (device_match_driver_override);
 *   - bind: ENODEV when the device does not exist or the driver does not match, EBUSY when the
 *     device already has a driver, the probe's own error when probing fails;
 *   - unbind: ENODEV unless the device is bound to that very driver;
 *   - drivers_probe: ENODEV for an unknown device; otherwise success even when nothing binds or
 *     a probe fails (bus_rescan_devices_helper ignores probe errors);
 *   - new_id: EINVAL with fewer than two hex fields, EEXIST when the static table already matches.
 */
import { KernelError, fail } from '../errno';
import type { PciSlot } from './host';

export const PCI_ANY_ID = 0xffff_ffff;

export interface PciDeviceId {
  readonly vendor: number;
  readonly device: number;
  readonly subvendor: number;
  readonly subdevice: number;
  readonly class: number;
  readonly classMask: number;
  /** Matches only when driver_override names this driver (PCI_DRIVER_OVERRIDE_DEVICE_VFIO). */
  readonly overrideOnly?: boolean;
}

/** pci_channel_state_t: what error recovery tells a driver about its device's link. */
export type PciChannelState = 'normal' | 'frozen' | 'perm-failure';

/** pci_ers_result_t: a driver's vote during error recovery. */
export type PciErsResult = 'none' | 'can-recover' | 'need-reset' | 'disconnect' | 'recovered' | 'no-aer-driver';

/** struct pci_error_handlers: a driver's part in PCIe error recovery (drivers/pci/pcie/err.c). */
export interface PciErrorHandlers {
  errorDetected?(slot: PciSlot, state: PciChannelState): PciErsResult;
  mmioEnabled?(slot: PciSlot): PciErsResult;
  slotReset?(slot: PciSlot): PciErsResult;
  resume?(slot: PciSlot): void;
}

export interface PciDriver {
  readonly name: string;
  readonly idTable: readonly PciDeviceId[];
  /** Binds the driver to the function; throws a KernelError with the probe's errno on failure. */
  probe(slot: PciSlot): void;
  /** Unbinds (the kernel's .remove); may block in the kernel until users let go. */
  remove(slot: PciSlot): void;
  /** .remove as a hot-unplug runs it: waits (as the kernel blocks) until users let go. */
  removeWhenReleased?(slot: PciSlot): Promise<void>;
  /** .sriov_configure: enables `numVfs` VFs of a PF it drives (0: disables them); absent: not supported. */
  sriovConfigure?(slot: PciSlot, numVfs: number): number;
  /** .err_handler; absent: the driver cannot take part in error recovery. */
  readonly errorHandlers?: PciErrorHandlers;
}

export class PciBus {
  private readonly drivers = new Map<string, PciDriver>();
  private readonly dynids = new Map<string, PciDeviceId[]>();
  private readonly bound = new Map<string, PciDriver>();
  private readonly overrides = new Map<string, string>();
  private readonly listeners = new Set<(slot: PciSlot, driver: PciDriver | undefined) => void>();

  constructor(private readonly slots: () => readonly PciSlot[]) {}

  registerDriver(driver: PciDriver): void {
    this.drivers.set(driver.name, driver);
    this.dynids.set(driver.name, []);
  }

  driverNames(): string[] {
    return [...this.drivers.keys()].sort();
  }
  driver(name: string): PciDriver | undefined {
    return this.drivers.get(name);
  }
  driverOf(slot: PciSlot): PciDriver | undefined {
    return this.bound.get(slot.name);
  }
  boundTo(driver: PciDriver): PciSlot[] {
    return this.slots().filter((s) => this.bound.get(s.name) === driver);
  }

  /** Called after a device gains or loses its driver (sysfs links follow). */
  onBindingChange(listener: (slot: PciSlot, driver: PciDriver | undefined) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  driverOverride(slot: PciSlot): string | undefined {
    return this.overrides.get(slot.name);
  }

  /** __device_set_driver_override: the text up to the first newline; empty clears. */
  setDriverOverride(slot: PciSlot, data: Buffer, pageSize: number): void {
    if (data.length >= pageSize - 1) fail('EINVAL', 'value too long');
    let s = data.toString('latin1');
    const nul = s.indexOf('\0');
    if (nul >= 0) s = s.slice(0, nul);
    const nl = s.indexOf('\n');
    if (nl >= 0) s = s.slice(0, nl);
    if (s.length) this.overrides.set(slot.name, s);
    else this.overrides.delete(slot.name);
  }

  /** pci_match_device: -1 no match, 1 match. */
  private matches(driver: PciDriver, slot: PciSlot): boolean {
    const override = this.overrides.get(slot.name);
    if (override !== undefined && override !== driver.name) return false;
    const dev = slot.device;
    for (const id of this.dynids.get(driver.name) ?? []) if (matchOne(id, dev)) return true;
    for (const id of driver.idTable) {
      if (id.overrideOnly && override === undefined) continue;
      if (matchOne(id, dev)) return true;
    }
    return override !== undefined;
  }

  private attach(driver: PciDriver, slot: PciSlot): void {
    driver.probe(slot);
    this.bound.set(slot.name, driver);
    for (const l of [...this.listeners]) l(slot, driver);
  }

  /** Every driver that matches, in registration order, until one binds (device_attach). */
  probeDevice(slot: PciSlot): void {
    if (this.bound.has(slot.name)) return;
    for (const driver of this.drivers.values()) {
      if (!this.matches(driver, slot)) continue;
      try {
        this.attach(driver, slot);
        return;
      } catch (e) {
        if (!(e instanceof KernelError)) throw e;
        // A failed probe lets the next driver try (probe errors are ignored here).
      }
    }
  }

  /** /sys/bus/pci/drivers_probe. */
  driversProbe(name: string): void {
    const slot = this.find(name);
    if (!slot) fail('ENODEV', `no PCI device ${name.trim()}`);
    this.probeDevice(slot);
  }

  /** /sys/bus/pci/drivers/<driver>/bind. */
  bind(driver: PciDriver, name: string): void {
    const slot = this.find(name);
    if (!slot || !this.matches(driver, slot)) fail('ENODEV', 'no such device, or the driver does not match it');
    if (this.bound.has(slot.name)) fail('EBUSY', 'the device already has a driver');
    this.attach(driver, slot);
  }

  /** /sys/bus/pci/drivers/<driver>/unbind. */
  unbind(driver: PciDriver, name: string): void {
    const slot = this.find(name);
    if (!slot || this.bound.get(slot.name) !== driver) fail('ENODEV', 'the device is not bound to this driver');
    this.detach(slot);
  }

  /** device_release_driver. */
  detach(slot: PciSlot): void {
    const driver = this.bound.get(slot.name);
    if (!driver) return;
    driver.remove(slot);
    this.bound.delete(slot.name);
    for (const l of [...this.listeners]) l(slot, undefined);
  }

  /** device_release_driver from a hot-unplug: a driver that waits for its users is waited for. */
  async detachWhenReleased(slot: PciSlot): Promise<void> {
    const driver = this.bound.get(slot.name);
    if (!driver) return;
    if (driver.removeWhenReleased) await driver.removeWhenReleased(slot);
    else driver.remove(slot);
    this.bound.delete(slot.name);
    for (const l of [...this.listeners]) l(slot, undefined);
  }

  /** /sys/bus/pci/drivers/<driver>/new_id: "vendor device [subvendor subdevice class class_mask driver_data]". */
  newId(driver: PciDriver, text: string): void {
    const fields = scanHex(text, 7);
    if (fields.length < 2) fail('EINVAL', 'expected at least "vendor device" in hex');
    const id: PciDeviceId = {
      vendor: fields[0]!,
      device: fields[1]!,
      subvendor: fields[2] ?? PCI_ANY_ID,
      subdevice: fields[3] ?? PCI_ANY_ID,
      class: fields[4] ?? 0,
      classMask: fields[5] ?? 0,
    };
    const driverData = fields[6] ?? 0;
    if (fields.length !== 7 && driver.idTable.some((t) => !t.overrideOnly && idEquals(t, id))) {
      fail('EEXIST', "the driver's static table already has this ID");
    }
    if (driver.idTable.length && driverData !== 0) fail('EINVAL', 'driver_data must match an entry of the static table');
    this.dynids.get(driver.name)!.push(id);
    if (fields.length !== 7) {
      // driver_attach: probe every unbound device the driver now matches.
      for (const slot of this.slots()) {
        if (this.bound.has(slot.name) || !this.matches(driver, slot)) continue;
        try {
          this.attach(driver, slot);
        } catch (e) {
          if (!(e instanceof KernelError)) throw e;
        }
      }
    }
  }

  /** /sys/bus/pci/drivers/<driver>/remove_id. */
  removeId(driver: PciDriver, text: string): void {
    const f = scanHex(text, 6);
    if (f.length < 2) fail('EINVAL', 'expected at least "vendor device" in hex');
    const list = this.dynids.get(driver.name)!;
    const sv = f[2] ?? PCI_ANY_ID,
      sd = f[3] ?? PCI_ANY_ID,
      cls = f[4] ?? 0,
      mask = f[5] ?? 0;
    const i = list.findIndex(
      (id) =>
        id.vendor === f[0] &&
        id.device === f[1] &&
        (sv === PCI_ANY_ID || id.subvendor === sv) &&
        (sd === PCI_ANY_ID || id.subdevice === sd) &&
        !((id.class ^ cls) & mask),
    );
    if (i < 0) fail('ENODEV', 'no such dynamic ID');
    list.splice(i, 1);
  }

  /** bus_find_device_by_name: the written text must be the exact device name (sysfs_streq). */
  find(text: string): PciSlot | undefined {
    const name = text.endsWith('\n') ? text.slice(0, -1) : text;
    return this.slots().find((s) => s.name === name);
  }
}

function matchOne(id: PciDeviceId, dev: PciSlot['device']): boolean {
  return (
    (id.vendor === PCI_ANY_ID || id.vendor === dev.vendorId) &&
    (id.device === PCI_ANY_ID || id.device === dev.deviceId) &&
    (id.subvendor === PCI_ANY_ID || id.subvendor === dev.subsystemVendorId) &&
    (id.subdevice === PCI_ANY_ID || id.subdevice === dev.subsystemId) &&
    !((id.class ^ dev.classCode) & id.classMask)
  );
}

function idEquals(a: PciDeviceId, b: PciDeviceId): boolean {
  return a.vendor === b.vendor && a.device === b.device && a.subvendor === b.subvendor && a.subdevice === b.subdevice;
}

/** sscanf("%x %x ...") : leading hex fields until the first that does not parse. */
function scanHex(text: string, max: number): number[] {
  const out: number[] = [];
  for (const tok of text.trim().split(/\s+/)) {
    if (out.length === max) break;
    const m = /^(?:0[xX])?([0-9a-fA-F]+)/.exec(tok);
    if (!m) break;
    out.push(parseInt(m[1]!, 16) >>> 0);
    if (m[0].length !== tok.length) break;
  }
  return out;
}

/** Whether a static ID table entry matches the function (pci_match_one_device). */
export function matchesId(id: PciDeviceId, slot: PciSlot): boolean {
  return matchOne(id, slot.device);
}
