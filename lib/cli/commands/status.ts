/** `vfio status`: PCI devices grouped by driver, like dpdk-devbind's status, and the VFIO set-up. */
import { PciDevice } from '../../pci/pci-device';
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
  iommuGroup: number | null;
  iommu: boolean;
  vfioCdev: string | null;
}

export const statusCommand: Command = {
  name: 'status',
  usage: 'vfio status [--json] [--model[=PROFILE]]',
  summary: 'list PCI devices by driver, with IOMMU group, VFIO cdev and noiommu mode',
  options: { json: { description: 'print JSON for scripts' } },
  run({ kernel, args, stdout }) {
    const devices: DeviceRow[] = PciDevice.list({}, { kernel }).map((d) => ({
      bdf: d.bdf,
      vendorId: hex(d.vendorId, 4),
      deviceId: hex(d.deviceId, 4),
      name: deviceName(d.vendorId, d.deviceId),
      classCode: hex(d.classCode, 6),
      driver: d.driver,
      iommuGroup: d.iommuGroup,
      iommu: d.hasIommu,
      vfioCdev: d.cdevPath(),
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
    stdout(`Host: ${host.kernel}; noiommu mode ${host.noiommuMode}; /dev/iommu ${host.iommufd ? 'present' : 'absent'}; /dev/vfio/vfio ${host.vfioContainer ? 'present' : 'absent'}`);
    const byDriver = new Map<string, DeviceRow[]>();
    for (const d of devices) {
      const key = d.driver ?? '(no driver)';
      byDriver.set(key, [...(byDriver.get(key) ?? []), d]);
    }
    const order = [...byDriver.keys()].sort((a, b) => (a === 'vfio-pci' ? -1 : b === 'vfio-pci' ? 1 : a.localeCompare(b)));
    for (const driver of order) {
      stdout('');
      stdout(`Devices using ${driver}:`);
      const rows = byDriver.get(driver)!.map((d) => [
        d.bdf,
        `${d.vendorId.slice(2)}:${d.deviceId.slice(2)}`,
        d.name ?? `class ${d.classCode}`,
        d.iommuGroup === null ? 'no group' : `group ${d.iommuGroup}`,
        d.iommu ? 'iommu' : 'no-iommu',
        d.vfioCdev ?? '',
      ]);
      for (const line of table(rows)) stdout(line);
    }
    if (devices.length === 0) stdout('No PCI devices.');
    return 0;
  },
};
