/**
 * Device names for `vfio status` and `vfio info`: from the system's pci.ids database
 * (/usr/share/misc/pci.ids, or hwdata's copy) when it is installed, as lspci names them; else from
 * a few built-in names for the devices this project meets most (QEMU's), so the model reads well.
 */
import fs from 'node:fs';

const KNOWN: Record<string, string> = {
  '1234:11e8': 'QEMU edu educational device',
  '1234:1111': 'QEMU standard VGA',
  '8086:29c0': 'Intel 82G33/G31/P35/P31 DRAM controller (q35 host bridge)',
  '8086:2918': 'Intel 82801IB (ICH9) LPC interface',
  '8086:2922': 'Intel 82801IR/IO/IH (ICH9R) SATA controller [AHCI]',
  '8086:2930': 'Intel 82801I (ICH9) SMBus controller',
  '1af4:1009': 'Virtio 9P transport',
  '1af4:1049': 'Virtio 9P transport (modern)',
  '1af4:1000': 'Virtio network device',
  '1af4:1041': 'Virtio network device (modern)',
  '1b36:000c': 'Red Hat QEMU PCIe Root port',
  '8086:10d3': 'Intel 82574L Gigabit Network Connection',
};

let pciIds: Map<string, string> | null | undefined;

/** `vendor:device` → "Vendor Device" from the text of a pci.ids file (the device classes at its end are skipped). */
export function parsePciIds(text: string): Map<string, string> {
  const names = new Map<string, string>();
  let vendor = '';
  let vendorName = '';
  for (const line of text.split('\n')) {
    if (line.startsWith('#') || line.length === 0) continue;
    if (line.startsWith('C ')) break;
    const v = /^([0-9a-f]{4})\s+(.*)$/.exec(line);
    if (v) {
      vendor = v[1]!;
      vendorName = v[2]!;
      continue;
    }
    const d = /^\t([0-9a-f]{4})\s+(.*)$/.exec(line);
    if (d) names.set(`${vendor}:${d[1]}`, `${vendorName} ${d[2]}`);
  }
  return names;
}

function loadPciIds(): Map<string, string> | null {
  for (const file of ['/usr/share/misc/pci.ids', '/usr/share/hwdata/pci.ids']) {
    try {
      return parsePciIds(fs.readFileSync(file, 'utf8'));
    } catch {
      continue;
    }
  }
  return null;
}

export function deviceName(vendorId: number, deviceId: number): string | null {
  const key = `${vendorId.toString(16).padStart(4, '0')}:${deviceId.toString(16).padStart(4, '0')}`;
  if (pciIds === undefined) pciIds = loadPciIds();
  return pciIds?.get(key) ?? KNOWN[key] ?? null;
}
