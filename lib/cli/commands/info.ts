/**
 * `vfio info <bdf>`: any PCI function as `lspci -v` shows it (BARs with address, size, 32/64-bit
 * and prefetchable, reset methods, capabilities with MSI and MSI-X decoded, read from sysfs), and
 * for a function bound to vfio-pci what VFIO reports: regions, IRQ indexes and device flags.
 */
import { openDevice } from '../../vfio/open-device';
import { PciDevice } from '../../pci/pci-device';
import * as V from '../../uapi/vfio';
import type { Command } from '../command';
import { hex, table } from '../output';
import { deviceName } from '../pci-names';
import { pciFunctionView } from '../pci-function-view';
import { oneBdf } from './bdf-argument';

const EXT_CAP_NAMES: Record<number, string> = {
  0x01: 'AER',
  0x02: 'Virtual Channel',
  0x03: 'Device Serial Number',
  0x0d: 'ACS',
  0x0e: 'ARI',
  0x10: 'SR-IOV',
};
const IRQ_INDEXES = ['intx', 'msi', 'msix', 'err', 'req'] as const;
const IRQ_NAMES = ['INTx', 'MSI', 'MSI-X', 'ERR', 'REQ'];

function flagNames(flags: number, names: Record<number, string>): string[] {
  return Object.entries(names)
    .filter(([bit]) => flags & Number(bit))
    .map(([, n]) => n);
}

/** What VFIO reports of a function bound to vfio-pci (the device is opened and closed again). */
function vfioView(pci: PciDevice) {
  using device = openDevice(pci.bdf, { kernel: pci.kernel });
  const info = device.info;
  const regions = device.regions.map((r) => ({
    index: r.index,
    name: r.name,
    size: hex(r.size),
    offset: hex(r.info.offset),
    flags: flagNames(r.info.flags, {
      [V.VFIO_REGION_INFO_FLAG_READ]: 'read',
      [V.VFIO_REGION_INFO_FLAG_WRITE]: 'write',
      [V.VFIO_REGION_INFO_FLAG_MMAP]: 'mmap',
      [V.VFIO_REGION_INFO_FLAG_CAPS]: 'caps',
    }),
    sparseMmap: r.info.sparseMmap?.map((a) => ({ offset: hex(a.offset), size: hex(a.size) })) ?? null,
  }));
  const irqs = IRQ_INDEXES.slice(0, info.numIrqs).map((index, i) => {
    const irq = device.irqs.info(index);
    return {
      index: i,
      name: IRQ_NAMES[i]!,
      count: irq.count,
      flags: flagNames(irq.flags, {
        [V.VFIO_IRQ_INFO_EVENTFD]: 'eventfd',
        [V.VFIO_IRQ_INFO_MASKABLE]: 'maskable',
        [V.VFIO_IRQ_INFO_AUTOMASKED]: 'automasked',
        [V.VFIO_IRQ_INFO_NORESIZE]: 'noresize',
      }),
    };
  });
  const extendedCapabilities = device.config
    .extendedCapabilities()
    .map((c) => ({ offset: hex(c.offset, 3), id: hex(c.id, 2), name: EXT_CAP_NAMES[c.id] ?? 'unknown' }));
  return {
    path: device.backend.kind,
    noiommu: device.backend.noiommu,
    flags: flagNames(info.flags, {
      [V.VFIO_DEVICE_FLAGS_RESET]: 'reset',
      [V.VFIO_DEVICE_FLAGS_PCI]: 'pci',
      [V.VFIO_DEVICE_FLAGS_CAPS]: 'caps',
    }),
    regions,
    irqs,
    extendedCapabilities,
  };
}

export const infoCommand: Command = {
  name: 'info',
  usage: 'vfio info <bdf> [--json] [--model[=PROFILE]]',
  summary: 'show a PCI device like lspci -v (BARs, reset, MSI/MSI-X); for vfio-pci also regions and IRQs',
  options: { json: { description: 'print JSON for scripts (schema: docs/cli.md)' } },
  run(ctx) {
    const pci = oneBdf(ctx, this.usage);
    const view = pciFunctionView(ctx.kernel, pci.bdf);
    const driver = pci.driver;
    const summary = {
      bdf: pci.bdf,
      vendorId: hex(pci.vendorId, 4),
      deviceId: hex(pci.deviceId, 4),
      name: deviceName(pci.vendorId, pci.deviceId),
      classCode: hex(pci.classCode, 6),
      driver,
      driverOverride: pci.driverOverride,
      iommuGroup: pci.iommuGroup,
      iommu: pci.hasIommu,
      vfioCdev: pci.cdevPath(),
      ...view,
    };
    const vfio = driver === 'vfio-pci' ? vfioView(pci) : null;
    if (ctx.args.options.has('json')) {
      ctx.stdout(JSON.stringify({ ...summary, vfio }, null, 2));
      return 0;
    }
    const out = ctx.stdout;
    out(`${pci.bdf}  ${summary.vendorId.slice(2)}:${summary.deviceId.slice(2)}  ${summary.name ?? ''}`.trimEnd());
    out(
      `  class ${summary.classCode}; driver ${driver ?? '(none)'}${summary.driverOverride ? ` [*] (driver_override ${summary.driverOverride})` : ''}`,
    );
    out(
      `  ${summary.iommuGroup === null ? 'no IOMMU group' : `IOMMU group ${summary.iommuGroup}`}${summary.iommu ? '' : ' (no IOMMU)'}${summary.vfioCdev ? `; VFIO cdev ${summary.vfioCdev}` : ''}`,
    );
    for (const b of view.bars) {
      const kind = b.kind === 'io' ? 'I/O ports' : `Memory (${b.bits}-bit, ${b.prefetchable ? 'prefetchable' : 'non-prefetchable'})`;
      out(`  Region ${b.index}: ${kind} at ${b.address.slice(2)} [size=${b.size}]`);
    }
    out(`  Reset: ${view.resetMethods.length ? view.resetMethods.join(' ') : 'none (no reset_method)'}`);
    out('  Capabilities:');
    if (view.capabilities.length === 0) out('    (none readable)');
    for (const c of view.capabilities) out(`    [${c.offset.slice(2)}] ${c.name}${c.detail ? `: ${c.detail}` : ''}`);
    if (vfio === null) {
      out(`VFIO: not bound to vfio-pci (vfio bind ${pci.bdf}${pci.hasIommu ? '' : ' --noiommu'} to use it)`);
      return 0;
    }
    out(`VFIO: opened through the ${vfio.path} path${vfio.noiommu ? ' (noiommu)' : ''}; device flags ${vfio.flags.join(',') || '-'}`);
    out('  Regions:');
    const regionRows = vfio.regions
      .filter((r) => r.size !== '0x0')
      .map((r) => [
        `${r.index}`,
        r.name,
        `size ${r.size}`,
        `offset ${r.offset}`,
        r.flags.join(',') || '-',
        r.sparseMmap ? `sparse mmap ${r.sparseMmap.map((a) => `${a.offset}+${a.size}`).join(' ')}` : '',
      ]);
    for (const line of table(regionRows, '    ')) out(line);
    out('  IRQs:');
    for (const line of table(
      vfio.irqs.map((q) => [`${q.index}`, q.name, `count ${q.count}`, q.flags.join(',') || '-']),
      '    ',
    ))
      out(line);
    if (vfio.extendedCapabilities.length) {
      out('  Extended capabilities:');
      for (const c of vfio.extendedCapabilities) out(`    [${c.offset.slice(2)}] ${c.name}`);
    }
    return 0;
  },
};
