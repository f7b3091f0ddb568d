/**
 * `vfio status`: PCI devices grouped by driver, like `dpdk-devbind.py --status` and `driverctl
 * list-devices`: a device the host is using is marked *Active* (an interface that is up, a mounted
 * block device, swap), a driver_override with [*], network interfaces are named, and the VFIO
 * set-up of the host (noiommu mode, /dev/iommu, the legacy container) is shown.
 */
import { PciDevice } from '../../pci/pci-device';
import { UsageError } from '../args';
import type { Command } from '../command';
import { hex, table } from '../output';
import { deviceName } from '../pci-names';

interface DeviceRow {
  bdf: string;
  vendorId: string;
  deviceId: string;
  name: string | null;
  classCode: string;
  driver: string | null;
  driverOverride: string | null;
  iommuGroup: number | null;
  iommu: boolean;
  vfioCdev: string | null;
  interfaces: string[];
  active: string[];
}

export const statusCommand: Command = {
  name: 'status',
  usage: 'vfio status [--json] [--model[=PROFILE]]',
  summary: 'list PCI devices by driver: in use (*Active*), driver_override [*], IOMMU group, VFIO cdev',
  options: { json: { description: 'print JSON for scripts (schema: docs/cli.md)' } },
  run({ kernel, args, stdout }) {
    if (args.positionals.length > 0) throw new UsageError(`status takes no arguments, got '${args.positionals.join(' ')}'`);
    const devices: DeviceRow[] = PciDevice.list({}, { kernel }).map((d) => ({
      bdf: d.bdf,
      vendorId: hex(d.vendorId, 4),
      deviceId: hex(d.deviceId, 4),
      name: deviceName(d.vendorId, d.deviceId),
      classCode: hex(d.classCode, 6),
      driver: d.driver,
      driverOverride: d.driverOverride,
      iommuGroup: d.iommuGroup,
      iommu: d.hasIommu,
      vfioCdev: d.cdevPath(),
      interfaces: d.networkInterfaces(),
      active: d.usage(),
    }));
    const host = {
      kernel: kernel.kind === 'model' ? `model (${kernel.description})` : 'native',
      noiommuMode: PciDevice.noiommuMode({ kernel }),
      iommufd: kernel.exists('/dev/iommu'),
      vfioContainer: kernel.exists('/dev/vfio/vfio'),
    };
    if (args.options.has('json')) {
      stdout(JSON.stringify({ host, devices }, null, 2));
      return 0;
    }
    stdout(
      `Host: ${host.kernel}; noiommu mode ${host.noiommuMode}; /dev/iommu ${host.iommufd ? 'present' : 'absent'}; /dev/vfio/vfio ${host.vfioContainer ? 'present' : 'absent'}`,
    );
    const byDriver = new Map<string, DeviceRow[]>();
    for (const d of devices) {
      const key = d.driver ?? '(no driver)';
      byDriver.set(key, [...(byDriver.get(key) ?? []), d]);
    }
    const order = [...byDriver.keys()].sort((a, b) => (a === 'vfio-pci' ? -1 : b === 'vfio-pci' ? 1 : a.localeCompare(b)));
    for (const driver of order) {
      stdout('');
      stdout(`Devices using ${driver}:`);
      const rows = byDriver
        .get(driver)!
        .map((d) => [
          d.bdf,
          `${d.vendorId.slice(2)}:${d.deviceId.slice(2)}`,
          d.name ?? `class ${d.classCode}`,
          d.iommuGroup === null ? 'no group' : `group ${d.iommuGroup}`,
          d.iommu ? 'iommu' : 'no-iommu',
          [
            d.driverOverride ? `[*] override=${d.driverOverride}` : '',
            d.interfaces.length ? `if=${d.interfaces.join(',')}` : '',
            d.vfioCdev ?? '',
            d.active.length ? '*Active*' : '',
          ]
            .filter((s) => s !== '')
            .join(' '),
        ]);
      for (const line of table(rows)) stdout(line);
    }
    if (devices.length === 0) stdout('No PCI devices.');
    const active = devices.filter((d) => d.active.length > 0);
    if (active.length > 0) {
      stdout('');
      stdout('*Active*: in use by the host; vfio bind refuses these without --force:');
      for (const d of active) stdout(`  ${d.bdf}: ${d.active.join('; ')}`);
    }
    if (devices.some((d) => d.driverOverride)) stdout('[*]: driver_override is set (only that driver binds the device)');
    return 0;
  },
};
