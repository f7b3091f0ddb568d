/**
 * The selftest drivers the matrix knows: edu and NVMe built in, and any a device model's author
 * registers — a model written on the device-model SDK brings its selftest driver along by calling
 * `registerSelftestDriver` (or, for the CLI, by exporting `selftestDriver` from a module passed
 * with `vfio selftest --driver <module>`), and the driver matrix then runs on that device in every
 * IOMMU mode, on the model and on real hardware alike.
 */
import type { DeviceUnderTest } from '../environment';
import type { SelftestDriverFactory } from './driver';
import { eduSelftestDriver } from './edu';
import { nvmeSelftestDriver } from './nvme';

const registered: SelftestDriverFactory[] = [eduSelftestDriver, nvmeSelftestDriver];

/**
 * Adds a driver; the first registered driver whose probe accepts a device drives it.
 *
 * @category Conformance suite
 */
export function registerSelftestDriver(factory: SelftestDriverFactory): void {
  if (registered.some((f) => f.name === factory.name)) throw new Error(`a selftest driver named '${factory.name}' is already registered`);
  registered.push(factory);
}

/**
 * Removes a driver registered by name (tests that register one for a case).
 *
 * @category Conformance suite
 */
export function unregisterSelftestDriver(name: string): void {
  const i = registered.findIndex((f) => f.name === name);
  if (i >= 0) registered.splice(i, 1);
}

/**
 * The registered selftest drivers, in the order probing tries them (the built-in ones first).
 *
 * @category Conformance suite
 */
export function selftestDrivers(): readonly SelftestDriverFactory[] {
  return registered;
}

/**
 * The driver for `device`, as vfio_pci_driver_probe picks it: the first whose probe accepts.
 *
 * @category Conformance suite
 */
export function findSelftestDriver(device: DeviceUnderTest | null): SelftestDriverFactory | undefined {
  return device ? registered.find((f) => f.probe(device)) : undefined;
}

/**
 * Loads a module that exports `selftestDriver` (a SelftestDriverFactory) and registers it: how a
 * device model's author hands `vfio selftest` a driver for their device.
 *
 * @category Conformance suite
 */
export function loadSelftestDriverModule(path: string): SelftestDriverFactory {
  const loaded = require(path) as { selftestDriver?: SelftestDriverFactory };
  const factory = loaded.selftestDriver;
  if (!factory || typeof factory.create !== 'function' || typeof factory.probe !== 'function') {
    throw new Error(`${path} exports no selftestDriver (an object with name, regionSize, probe and create)`);
  }
  registerSelftestDriver(factory);
  return factory;
}

export { DriverHandle, pollUntil } from './driver';
export type { BusRun, DriverDevice, DriverRegion, MsiKind, SelftestDriver, SelftestDriverFactory } from './driver';
