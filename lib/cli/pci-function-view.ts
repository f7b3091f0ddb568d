/**
 * What `vfio info` shows of any PCI function, whatever its driver, read from sysfs the way
 * `lspci -v` reads it: the BARs from `resource` (address, size, I/O or memory, 32/64-bit,
 * prefetchable), the reset methods from `reset_method`, and the capability list of `config` with
 * MSI and MSI-X decoded. Numbers that are addresses, sizes, offsets or ids are hex strings, counts
 * are numbers (docs/cli.md).
 */
import type { Kernel } from '../sys/kernel';
import { hex } from './output';

/** Resource flags sysfs `resource` prints (include/linux/ioport.h). */
const IORESOURCE_IO = 0x100;
const IORESOURCE_MEM = 0x200;
const IORESOURCE_PREFETCH = 0x2000;
const IORESOURCE_MEM_64 = 0x0010_0000;

const PCI_STATUS = 0x06;
const PCI_STATUS_CAP_LIST = 0x10;
const PCI_CAPABILITY_LIST = 0x34;
const PCI_CAP_ID_MSI = 0x05;
const PCI_CAP_ID_MSIX = 0x11;

const CAP_NAMES: Record<number, string> = {
  0x01: 'Power Management',
  0x03: 'VPD',
  0x05: 'MSI',
  0x09: 'Vendor Specific',
  0x10: 'PCI Express',
  0x11: 'MSI-X',
  0x13: 'Advanced Features',
};

export interface BarView {
  readonly index: number;
  readonly address: string;
  readonly size: string;
  readonly kind: 'io' | 'memory';
  readonly bits: 32 | 64 | null;
  readonly prefetchable: boolean;
}

export interface CapabilityView {
  readonly offset: string;
  readonly id: string;
  readonly name: string;
  /** lspci's words for what the capability says (MSI: `Count=1/1 64bit+ Maskable-`). */
  readonly detail: string | null;
}

export interface PciFunctionView {
  readonly bars: BarView[];
  readonly resetMethods: string[];
  readonly capabilities: CapabilityView[];
}

function optionalRead(kernel: Kernel, path: string): Buffer | null {
  try {
    return kernel.readFile(path);
  } catch {
    return null;
  }
}

/** BARs 0-5 with a non-empty range (the seventh line is the expansion ROM, which lspci lists apart). */
function bars(resource: string): BarView[] {
  const out: BarView[] = [];
  resource
    .split('\n')
    .slice(0, 6)
    .forEach((line, index) => {
      const [start, end, flags] = line
        .trim()
        .split(/\s+/)
        .map((f) => BigInt(f));
      if (start === undefined || end === undefined || flags === undefined || end === 0n) return;
      const f = Number(flags);
      const memory = (f & IORESOURCE_MEM) !== 0;
      if (!memory && (f & IORESOURCE_IO) === 0) return;
      out.push({
        index,
        address: hex(start),
        size: hex(end - start + 1n),
        kind: memory ? 'memory' : 'io',
        bits: memory ? ((f & IORESOURCE_MEM_64) !== 0 ? 64 : 32) : null,
        prefetchable: (f & IORESOURCE_PREFETCH) !== 0,
      });
    });
  return out;
}

const sign = (on: boolean): string => (on ? '+' : '-');

function capabilityDetail(config: Buffer, offset: number, id: number): string | null {
  if (offset + 12 > config.length) return null;
  const control = config.readUInt16LE(offset + 2);
  if (id === PCI_CAP_ID_MSI) {
    const capable = 1 << ((control >> 1) & 7);
    const enabled = 1 << ((control >> 4) & 7);
    return `Enable${sign((control & 1) !== 0)} Count=${enabled}/${capable} 64bit${sign((control & 0x80) !== 0)} Maskable${sign((control & 0x100) !== 0)}`;
  }
  if (id === PCI_CAP_ID_MSIX) {
    const table = config.readUInt32LE(offset + 4);
    const pba = config.readUInt32LE(offset + 8);
    return (
      `Enable${sign((control & 0x8000) !== 0)} Count=${(control & 0x7ff) + 1} Masked${sign((control & 0x4000) !== 0)}; ` +
      `vector table BAR=${table & 7} offset=${hex((table & ~7) >>> 0, 8)}; PBA BAR=${pba & 7} offset=${hex((pba & ~7) >>> 0, 8)}`
    );
  }
  return null;
}

function capabilities(config: Buffer | null): CapabilityView[] {
  if (config === null || config.length < 0x40 || (config.readUInt16LE(PCI_STATUS) & PCI_STATUS_CAP_LIST) === 0) return [];
  const out: CapabilityView[] = [];
  const seen = new Set<number>();
  // The pointer's low two bits are reserved (pci_find_next_cap_ttl masks them); a loop ends the walk.
  for (let at = config[PCI_CAPABILITY_LIST]! & ~3; at >= 0x40 && at + 2 <= config.length && !seen.has(at); at = config[at + 1]! & ~3) {
    seen.add(at);
    const id = config[at]!;
    out.push({ offset: hex(at, 3), id: hex(id, 2), name: CAP_NAMES[id] ?? 'unknown', detail: capabilityDetail(config, at, id) });
  }
  return out;
}

/** Reads the sysfs view of `/sys/bus/pci/devices/<bdf>` (which the caller checked exists). */
export function pciFunctionView(kernel: Kernel, bdf: string): PciFunctionView {
  const dir = `/sys/bus/pci/devices/${bdf}`;
  const resetMethod = optionalRead(kernel, `${dir}/reset_method`)?.toString('latin1').trim() ?? '';
  return {
    bars: bars(optionalRead(kernel, `${dir}/resource`)?.toString('latin1') ?? ''),
    resetMethods: resetMethod === '' ? [] : resetMethod.split(/\s+/),
    capabilities: capabilities(optionalRead(kernel, `${dir}/config`)),
  };
}
