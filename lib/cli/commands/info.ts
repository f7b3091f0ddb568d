/** `vfio info <bdf>`: device info, regions, IRQs and config-space capabilities. */
import { openDevice } from '../../vfio/open-device';
import { normalizeBdf } from '../../pci/pci-device';
import * as V from '../../uapi/vfio';
import { UsageError } from '../args';
import type { Command } from '../command';
import { hex, table } from '../output';
import { deviceName } from '../pci-names';

const CAP_NAMES: Record<number, string> = {
  0x01: 'Power Management', 0x03: 'VPD', 0x05: 'MSI', 0x09: 'Vendor Specific', 0x10: 'PCI Express', 0x11: 'MSI-X', 0x13: 'Advanced Features',
};
const EXT_CAP_NAMES: Record<number, string> = { 0x01: 'AER', 0x02: 'Virtual Channel', 0x03: 'Device Serial Number', 0x0d: 'ACS', 0x0e: 'ARI', 0x10: 'SR-IOV' };
const IRQ_NAMES = ['INTx', 'MSI', 'MSI-X', 'ERR', 'REQ'];

function flagNames(flags: number, names: Record<number, string>): string {
  const out = Object.entries(names).filter(([bit]) => flags & Number(bit)).map(([, n]) => n);
  return out.length ? out.join(',') : '-';
}

export const infoCommand: Command = {
  name: 'info',
  usage: 'vfio info <bdf> [--json] [--model[=PROFILE]]',
  summary: 'show a vfio-pci device: info, regions, IRQs, config-space capabilities',
  options: { json: { description: 'print JSON for scripts' } },
  run({ kernel, args, stdout }) {
    const [bdf, ...rest] = args.positionals;
    if (bdf === undefined || rest.length > 0) throw new UsageError('expected exactly one PCI address: vfio info <bdf>');
    using device = openDevice(bdf, { kernel });
    const info = device.info;
    const regions = device.regions.map((r) => ({
      index: r.index, name: r.name, size: r.size, offset: r.info.offset,
      flags: flagNames(r.info.flags, { [V.VFIO_REGION_INFO_FLAG_READ]: 'read', [V.VFIO_REGION_INFO_FLAG_WRITE]: 'write', [V.VFIO_REGION_INFO_FLAG_MMAP]: 'mmap', [V.VFIO_REGION_INFO_FLAG_CAPS]: 'caps' }),
      sparseMmap: r.info.sparseMmap, msixMappable: r.info.msixMappable,
    }));
    const irqs = IRQ_NAMES.slice(0, info.numIrqs).map((name, i) => {
      const irq = device.irqs.info(['intx', 'msi', 'msix', 'err', 'req'][i] as 'intx');
      return {
        index: i, name, count: irq.count,
        flags: flagNames(irq.flags, { [V.VFIO_IRQ_INFO_EVENTFD]: 'eventfd', [V.VFIO_IRQ_INFO_MASKABLE]: 'maskable', [V.VFIO_IRQ_INFO_AUTOMASKED]: 'automasked', [V.VFIO_IRQ_INFO_NORESIZE]: 'noresize' }),
      };
    });
    const config = device.config;
    const capabilities = [
      ...config.capabilities().map((c) => ({ offset: c.offset, id: c.id, name: CAP_NAMES[c.id] ?? 'unknown', extended: false })),
      ...config.extendedCapabilities().map((c) => ({ offset: c.offset, id: c.id, name: EXT_CAP_NAMES[c.id] ?? 'unknown', extended: true })),
    ];
    const summary = {
      bdf: normalizeBdf(bdf), vendorId: config.vendorId, deviceId: config.deviceId, name: deviceName(config.vendorId, config.deviceId),
      classCode: config.classCode, backend: device.backend,
      flags: flagNames(info.flags, { [V.VFIO_DEVICE_FLAGS_RESET]: 'reset', [V.VFIO_DEVICE_FLAGS_PCI]: 'pci', [V.VFIO_DEVICE_FLAGS_CAPS]: 'caps' }),
      numRegions: info.numRegions, numIrqs: info.numIrqs,
    };
    if (args.options.has('json')) {
      stdout(JSON.stringify({ ...summary, regions, irqs, capabilities }, (_k, v: unknown) => (typeof v === 'bigint' ? `0x${v.toString(16)}` : v), 2));
      return 0;
    }
    stdout(`${summary.bdf}  ${hex(summary.vendorId, 4).slice(2)}:${hex(summary.deviceId, 4).slice(2)}  ${summary.name ?? ''}`.trimEnd());
    stdout(`  class ${hex(summary.classCode, 6)}; opened through the ${device.backend.kind} path${device.backend.noiommu ? ' (noiommu)' : ''}`);
    stdout(`  device flags: ${summary.flags}; ${info.numRegions} regions, ${info.numIrqs} IRQ indexes`);
    stdout('Regions:');
    for (const line of table(regions.filter((r) => r.size > 0n).map((r) => [
      `${r.index}`, r.name, `size ${hex(r.size)}`, `offset ${hex(r.offset)}`, r.flags,
      r.sparseMmap ? `sparse mmap ${r.sparseMmap.map((a) => `${hex(a.offset)}+${hex(a.size)}`).join(' ')}` : '',
    ]))) stdout(line);
    stdout('IRQs:');
    for (const line of table(irqs.map((q) => [`${q.index}`, q.name, `count ${q.count}`, q.flags]))) stdout(line);
    stdout('Config-space capabilities:');
    if (capabilities.length === 0) stdout('  (none)');
    for (const line of table(capabilities.map((c) => [hex(c.offset, 3), `${c.extended ? 'ext ' : ''}${hex(c.id, 2)}`, c.name]))) stdout(line);
    return 0;
  },
};
