/**
 * PCI addresses as Linux names them: "DDDD:BB:DD.F" (pci_name), plus the devfn byte used in
 * struct vfio_pci_dependent_device.
 */
export interface PciAddress {
  readonly domain: number;
  readonly bus: number;
  readonly device: number;
  readonly func: number;
}

export function formatPciAddress(a: PciAddress): string {
  const h = (n: number, w: number) => n.toString(16).padStart(w, '0');
  return `${h(a.domain, 4)}:${h(a.bus, 2)}:${h(a.device, 2)}.${a.func.toString(16)}`;
}

export function parsePciAddress(s: string): PciAddress | undefined {
  const m = /^([0-9a-fA-F]{4}):([0-9a-fA-F]{2}):([0-1][0-9a-fA-F])\.([0-7])$/.exec(s.trim());
  if (!m) return undefined;
  return { domain: parseInt(m[1]!, 16), bus: parseInt(m[2]!, 16), device: parseInt(m[3]!, 16), func: parseInt(m[4]!, 16) };
}

export function devfn(a: PciAddress): number {
  return ((a.device & 0x1f) << 3) | (a.func & 0x7);
}
