/**
 * Turns a DeviceDefinition into the function's physical config space, checking every rule a real
 * function obeys on the way: BARs in range, sized by powers of two, not colliding in registers or
 * addresses; capabilities that fit and do not overlap; MSI-X structures inside memory BARs. A
 * broken definition is a DeviceModelError naming the device and the rule.
 *
 * The header follows QEMU's PCI core: the IDs, BAR registers whose write masks make sizing by
 * writing all ones work, the command bits a function implements, write-1-to-clear status bits,
 * and config space past the header left writable unless a capability claims it.
 */
import {
  PCI_BASE_ADDRESS_0,
  PCI_BASE_ADDRESS_MEM_PREFETCH,
  PCI_BASE_ADDRESS_MEM_TYPE_64,
  PCI_BASE_ADDRESS_SPACE_IO,
  PCI_CACHE_LINE_SIZE,
  PCI_CAP_ID_EXP,
  PCI_CAP_ID_MSI,
  PCI_CAP_ID_MSIX,
  PCI_CAP_ID_PM,
  PCI_CAP_ID_VNDR,
  PCI_CFG_SPACE_EXP_SIZE,
  PCI_CFG_SPACE_SIZE,
  PCI_CLASS_PROG,
  PCI_COMMAND,
  PCI_COMMAND_INTX_DISABLE,
  PCI_COMMAND_IO,
  PCI_COMMAND_MASTER,
  PCI_COMMAND_MEMORY,
  PCI_COMMAND_SERR,
  PCI_DEVICE_ID,
  PCI_INTERRUPT_LINE,
  PCI_INTERRUPT_PIN,
  PCI_MSIX_FLAGS,
  PCI_MSIX_FLAGS_ENABLE,
  PCI_MSIX_FLAGS_MASKALL,
  PCI_MSIX_PBA,
  PCI_MSIX_TABLE,
  PCI_MSI_ADDRESS_HI,
  PCI_MSI_ADDRESS_LO,
  PCI_MSI_DATA_32,
  PCI_MSI_DATA_64,
  PCI_MSI_FLAGS,
  PCI_MSI_FLAGS_64BIT,
  PCI_MSI_FLAGS_ENABLE,
  PCI_MSI_FLAGS_MASKBIT,
  PCI_MSI_FLAGS_QSIZE,
  PCI_MSI_MASK_32,
  PCI_MSI_MASK_64,
  PCI_REVISION_ID,
  PCI_STATUS,
  PCI_STD_HEADER_SIZEOF,
  PCI_SUBSYSTEM_ID,
  PCI_SUBSYSTEM_VENDOR_ID,
  PCI_VENDOR_ID,
} from '../../uapi/pci';
import type { PciBarInfo } from '../pci/device-model';
import { PciConfigSpace } from '../pci/physical-config-space';
import type {
  CapabilityBuilder,
  ExtendedCapabilitySpec,
  MsiCapabilitySpec,
  MsixCapabilitySpec,
  PcieCapabilitySpec,
  PmCapabilitySpec,
  VendorCapabilitySpec,
} from './capabilities';
import type { BarDeclaration, DeviceDefinition, InterruptPin } from './definition';
import { DeviceModelError } from './model-error';

/** PCI status bits QEMU clears on a write of 1 (pci_init_w1cmask). */
const STATUS_W1C =
  0x0100 /* master data parity */ |
  0x0800 /* sig target abort */ |
  0x1000 /* rec target abort */ |
  0x2000 /* rec master abort */ |
  0x4000 /* sig system error */ |
  0x8000; /* detected parity */

/** PCI Express capability registers (pci_regs.h), version 2 endpoint layout. */
export const PCIE = {
  FLAGS: 0x02,
  DEVCAP: 0x04,
  DEVCTL: 0x08,
  DEVSTA: 0x0a,
  LNKCAP: 0x0c,
  LNKCTL: 0x10,
  LNKSTA: 0x12,
  DEVCAP2: 0x24,
  DEVCTL2: 0x28,
  LNKCAP2: 0x2c,
  LNKCTL2: 0x30,
  SIZEOF_V2: 0x3c,
  DEVCAP_RBER: 0x8000,
  DEVCAP_FLR: 0x1000_0000,
  DEVCTL_BCR_FLR: 0x8000,
} as const;
const PCI_PM_PMC = 2;
const PCI_PM_CTRL = 4;
const PCI_PM_CTRL_NO_SOFT_RESET = 0x0008;
const PCI_PM_CAP_VER_1_2 = 3;

const INTX_PINS: Readonly<Record<InterruptPin, number>> = { none: 0, INTA: 1, INTB: 2, INTC: 3, INTD: 4 };

export interface MsiLayout {
  readonly at: number;
  readonly vectors: number;
  readonly is64bit: boolean;
  readonly perVectorMask: boolean;
}
export interface MsixLayout {
  readonly at: number;
  readonly vectors: number;
  readonly tableBar: number;
  readonly tableOffset: number;
  readonly pbaBar: number;
  readonly pbaOffset: number;
}

export interface ConfigLayout {
  readonly config: PciConfigSpace;
  readonly bars: (PciBarInfo | undefined)[];
  /** The declarations by BAR index (for RAM backing and handler checks). */
  readonly barDeclarations: (BarDeclaration | undefined)[];
  readonly interruptPin: number;
  readonly msi?: MsiLayout;
  readonly msix?: MsixLayout;
  /** Offset of the PCI Express capability (0: none) and whether it advertises FLR. */
  readonly pcieAt: number;
  readonly flr: boolean;
  /** Offset of the PM capability (0: none) and whether a D3hot round trip resets the function. */
  readonly pmAt: number;
  readonly pmReset: boolean;
}

export function layoutConfig(d: DeviceDefinition): ConfigLayout {
  const name = d.model;
  const bad = (rule: string, detail: string) => new DeviceModelError(name, rule, detail);
  if (typeof name !== 'string' || name === '')
    throw new DeviceModelError(String(name), 'the model needs a name', 'model must be a non-empty string');
  const caps = d.capabilities ?? [];
  const express = caps.some((c) => c.capability === 'pcie');
  if (!express && caps.some((c) => c.capability === 'extended')) {
    throw bad('extended capabilities need PCI Express', 'config space beyond 0x100 exists only with a pcieCapability()');
  }
  const size = express ? PCI_CFG_SPACE_EXP_SIZE : PCI_CFG_SPACE_SIZE;
  const c = new PciConfigSpace(size);
  const id = d.identity;
  const pin = INTX_PINS[d.interruptPin ?? 'INTA'];
  if (pin === undefined) throw bad('interrupt pin', `'${String(d.interruptPin)}' is not one of INTA, INTB, INTC, INTD, none`);
  field(bad, 'vendorId', id.vendorId, 0xffff);
  if (id.vendorId === 0xffff) throw bad('identity', 'vendor ID 0xffff means "no device" to the host');
  field(bad, 'deviceId', id.deviceId, 0xffff);
  field(bad, 'classCode', id.classCode, 0xff_ffff);
  const revision = id.revision ?? 0;
  field(bad, 'revision', revision, 0xff);
  const subVendor = id.subsystemVendorId ?? id.vendorId;
  const subId = id.subsystemId ?? id.deviceId;
  field(bad, 'subsystemVendorId', subVendor, 0xffff);
  field(bad, 'subsystemId', subId, 0xffff);
  c.setRaw(PCI_VENDOR_ID, 2, d.virtualFunction ? 0xffff : id.vendorId);
  c.setRaw(PCI_DEVICE_ID, 2, d.virtualFunction ? 0xffff : id.deviceId);
  c.setRaw(PCI_REVISION_ID, 1, revision);
  c.setRaw(PCI_CLASS_PROG, 1, id.classCode & 0xff);
  c.setRaw(PCI_CLASS_PROG + 1, 2, (id.classCode >>> 8) & 0xffff);
  c.setRaw(PCI_SUBSYSTEM_VENDOR_ID, 2, subVendor);
  c.setRaw(PCI_SUBSYSTEM_ID, 2, subId);
  c.setRaw(PCI_INTERRUPT_PIN, 1, pin);
  c.setWriteMask(PCI_CACHE_LINE_SIZE, 1, 0xff);
  c.setWriteMask(PCI_INTERRUPT_LINE, 1, 0xff);
  c.setWriteMask(PCI_COMMAND, 2, PCI_COMMAND_IO | PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER | PCI_COMMAND_SERR | PCI_COMMAND_INTX_DISABLE);
  c.setClearMask(PCI_STATUS, 2, STATUS_W1C);
  // QEMU leaves config space past the header writable unless a capability claims it.
  c.setWritableRange(PCI_STD_HEADER_SIZEOF, size - PCI_STD_HEADER_SIZEOF);

  const { bars, declarations } = layoutBars(d.bars ?? [], c, bad, d.virtualFunction === true);
  const layout: { -readonly [K in keyof ConfigLayout]: ConfigLayout[K] } = {
    config: c,
    bars,
    barDeclarations: declarations,
    interruptPin: pin,
    pcieAt: 0,
    flr: false,
    pmAt: 0,
    pmReset: false,
  };
  const claimed: { start: number; end: number; what: string }[] = [];
  for (const cap of caps) {
    const length = capabilityLength(cap, bad);
    const what = cap.capability === 'extended' ? `extended capability 0x${cap.id.toString(16)}` : `${cap.capability} capability`;
    let pos: number;
    try {
      pos =
        cap.capability === 'extended'
          ? c.addExtendedCapability(cap.id, cap.version, length, cap.at)
          : c.addCapability(standardId(cap), length, cap.at);
    } catch (e) {
      if (!(e instanceof RangeError)) throw e;
      const area = cap.capability === 'extended' ? '0x100..0xfff, the first at 0x100' : '0x40..0xff';
      throw bad(
        'capability does not fit',
        `${what} of ${length} bytes${cap.at === undefined ? '' : ` at 0x${cap.at.toString(16)}`} must lie dword-aligned in ${area}`,
      );
    }
    const clash = claimed.find((r) => pos < r.end && pos + length > r.start);
    if (clash)
      throw bad('capabilities overlap', `${what} at 0x${pos.toString(16)} overlaps the ${clash.what} at 0x${clash.start.toString(16)}`);
    if (claimed.some((r) => r.what === what && cap.capability !== 'vendor' && cap.capability !== 'extended')) {
      throw bad('one capability of each kind', `a second ${what}`);
    }
    claimed.push({ start: pos, end: pos + length, what });
    switch (cap.capability) {
      case 'msi':
        layout.msi = installMsi(c, pos, cap, bad);
        break;
      case 'msix':
        layout.msix = installMsix(c, pos, cap, declarations, bad);
        break;
      case 'pcie':
        installPcie(c, pos, cap, bad);
        layout.pcieAt = pos;
        layout.flr = cap.flr;
        break;
      case 'pm':
        installPm(c, pos, cap);
        layout.pmAt = pos;
        layout.pmReset = !cap.noSoftReset;
        break;
      case 'vendor':
        installVendor(c, pos, cap);
        break;
      case 'extended':
        installExtended(c, pos, cap, bad);
        break;
    }
  }
  return layout;
}

function field(bad: (rule: string, detail: string) => Error, what: string, v: number, max: number): void {
  if (!Number.isInteger(v) || v < 0 || v > max) throw bad('identity', `${what} ${v} is not an integer in 0..0x${max.toString(16)}`);
}

function isPowerOfTwo(n: bigint): boolean {
  return n > 0n && (n & (n - 1n)) === 0n;
}

function layoutBars(
  decls: readonly BarDeclaration[],
  c: PciConfigSpace,
  bad: (rule: string, detail: string) => Error,
  virtualFunction: boolean,
) {
  const bars: (PciBarInfo | undefined)[] = [undefined, undefined, undefined, undefined, undefined, undefined];
  const declarations: (BarDeclaration | undefined)[] = [undefined, undefined, undefined, undefined, undefined, undefined];
  const registerOwner: (number | undefined)[] = [];
  for (const b of decls) {
    const at = `BAR ${b.index}`;
    if (!Number.isInteger(b.index) || b.index < 0 || b.index > 5) throw bad('BAR index', `${at}: the index must be 0..5`);
    if (b.type !== 'memory32' && b.type !== 'memory64' && b.type !== 'io')
      throw bad('BAR type', `${at}: type '${String(b.type)}' is not memory32, memory64 or io`);
    const is64 = b.type === 'memory64';
    if (is64 && b.index === 5) throw bad('BAR registers', `${at}: a 64-bit BAR takes two registers, so it cannot start at 5`);
    for (const reg of is64 ? [b.index, b.index + 1] : [b.index]) {
      const owner = registerOwner[reg];
      if (owner !== undefined) throw bad('overlapping BARs', `${at} needs register ${reg}, which BAR ${owner} already uses`);
      registerOwner[reg] = b.index;
    }
    if (typeof b.size !== 'bigint' || !isPowerOfTwo(b.size))
      throw bad('BAR size is a power of two', `${at}: size ${String(b.size)} is not`);
    if (b.type === 'io') {
      if (b.size < 4n || b.size > 256n) throw bad('I/O BAR size', `${at}: an I/O BAR is 4..256 bytes, not ${b.size}`);
      if (b.prefetchable) throw bad('prefetchable BARs are memory', `${at} is an I/O BAR`);
      if (b.ram) throw bad('RAM BARs are memory', `${at} is an I/O BAR`);
    } else {
      if (b.size < 16n) throw bad('memory BAR size', `${at}: a memory BAR is at least 16 bytes, not ${b.size}`);
      if (!is64 && b.size > 1n << 31n) throw bad('memory BAR size', `${at}: a 32-bit BAR is at most 2 GiB; declare it memory64`);
    }
    const limit = b.type === 'io' ? 1n << 16n : is64 ? 1n << 64n : 1n << 32n;
    if (b.address !== undefined) {
      if (b.address < 0n || b.address % b.size !== 0n || b.address + b.size > limit) {
        throw bad(
          'BAR address',
          `${at}: 0x${b.address.toString(16)} must be aligned to the size 0x${b.size.toString(16)} and lie below 0x${limit.toString(16)}`,
        );
      }
      for (const other of declarations) {
        if (other?.address === undefined || (other.type === 'io') !== (b.type === 'io')) continue;
        if (b.address < other.address + other.size && other.address < b.address + b.size) {
          throw bad(
            'overlapping BARs',
            `${at} at 0x${b.address.toString(16)}+0x${b.size.toString(16)} overlaps BAR ${other.index} at 0x${other.address.toString(16)}+0x${other.size.toString(16)}`,
          );
        }
      }
    }
    const info: PciBarInfo = {
      index: b.index,
      size: b.size,
      space: b.type === 'io' ? 'io' : 'memory',
      is64bit: is64,
      prefetchable: b.prefetchable ?? false,
    };
    bars[b.index] = info;
    declarations[b.index] = b;
    // A VF's BAR registers are read-only zero.
    if (!virtualFunction) writeBarRegister(c, info, b.address ?? 0n);
  }
  return { bars, declarations };
}

/** A BAR register: the size mask makes sizing work, the low bits carry the type. */
export function writeBarRegister(c: PciConfigSpace, bar: PciBarInfo, address: bigint): void {
  const reg = PCI_BASE_ADDRESS_0 + bar.index * 4;
  const flags =
    bar.space === 'io'
      ? PCI_BASE_ADDRESS_SPACE_IO
      : (bar.is64bit ? PCI_BASE_ADDRESS_MEM_TYPE_64 : 0) | (bar.prefetchable ? PCI_BASE_ADDRESS_MEM_PREFETCH : 0);
  const mask = ~(bar.size - 1n) & ((1n << 64n) - 1n);
  const lowFlagBits = bar.space === 'io' ? 0x3 : 0xf;
  c.setWriteMask(reg, 4, Number(mask & 0xffff_ffffn) & ~lowFlagBits);
  c.setRaw(reg, 4, (Number(address & 0xffff_ffffn) & ~lowFlagBits) | flags);
  if (bar.is64bit) {
    c.setWriteMask(reg + 4, 4, Number(mask >> 32n));
    c.setRaw(reg + 4, 4, Number(address >> 32n));
  }
}

function standardId(cap: Exclude<CapabilityBuilder, ExtendedCapabilitySpec>): number {
  switch (cap.capability) {
    case 'msi':
      return PCI_CAP_ID_MSI;
    case 'msix':
      return PCI_CAP_ID_MSIX;
    case 'pcie':
      return PCI_CAP_ID_EXP;
    case 'pm':
      return PCI_CAP_ID_PM;
    case 'vendor':
      return PCI_CAP_ID_VNDR;
  }
}

function capabilityLength(cap: CapabilityBuilder, bad: (rule: string, detail: string) => Error): number {
  switch (cap.capability) {
    case 'msi':
      return 10 + (cap.is64bit ? 4 : 0) + (cap.perVectorMask ? 10 : 0);
    case 'msix':
      return 12;
    case 'pcie':
      return PCIE.SIZEOF_V2;
    case 'pm':
      return 8;
    case 'vendor':
      if (cap.data.length > 0xff - 3)
        throw bad('capability does not fit', `a vendor capability holds at most 252 data bytes, not ${cap.data.length}`);
      return 3 + cap.data.length;
    case 'extended':
      if (!Number.isInteger(cap.id) || cap.id < 1 || cap.id > 0xffff)
        throw bad('extended capability ID', `0x${cap.id.toString(16)} is not 1..0xffff`);
      if (!Number.isInteger(cap.version) || cap.version < 0 || cap.version > 0xf)
        throw bad('extended capability version', `${cap.version} is not 0..15`);
      if (cap.writeMask && cap.writeMask.length !== cap.data.length)
        throw bad('extended capability write mask', 'writeMask must be as long as data');
      return 4 + cap.data.length;
  }
}

function installMsi(c: PciConfigSpace, pos: number, o: MsiCapabilitySpec, bad: (rule: string, detail: string) => Error): MsiLayout {
  const log2 = Math.log2(o.vectors);
  if (!Number.isInteger(log2) || log2 < 0 || log2 > 5) throw bad('MSI vector count', `${o.vectors} is not 1, 2, 4, … 32`);
  const flags = (log2 << 1) | (o.is64bit ? PCI_MSI_FLAGS_64BIT : 0) | (o.perVectorMask ? PCI_MSI_FLAGS_MASKBIT : 0);
  c.setRaw(pos + PCI_MSI_FLAGS, 2, flags);
  c.setWriteMask(pos + PCI_MSI_FLAGS, 2, PCI_MSI_FLAGS_QSIZE | PCI_MSI_FLAGS_ENABLE);
  c.setWriteMask(pos + PCI_MSI_ADDRESS_LO, 4, 0xffff_fffc);
  if (o.is64bit) {
    c.setWriteMask(pos + PCI_MSI_ADDRESS_HI, 4, 0xffff_ffff);
    c.setWriteMask(pos + PCI_MSI_DATA_64, 2, 0xffff);
  } else {
    c.setWriteMask(pos + PCI_MSI_DATA_32, 2, 0xffff);
  }
  if (o.perVectorMask)
    c.setWriteMask(pos + (o.is64bit ? PCI_MSI_MASK_64 : PCI_MSI_MASK_32), 4, o.vectors === 32 ? 0xffff_ffff : (1 << o.vectors) - 1);
  return { at: pos, vectors: o.vectors, is64bit: o.is64bit, perVectorMask: o.perVectorMask };
}

/** msix_init's checks and layout: table and PBA inside memory BARs, 8-byte aligned, not overlapping. */
function installMsix(
  c: PciConfigSpace,
  pos: number,
  o: MsixCapabilitySpec,
  bars: readonly (BarDeclaration | undefined)[],
  bad: (rule: string, detail: string) => Error,
): MsixLayout {
  if (!Number.isInteger(o.vectors) || o.vectors < 1 || o.vectors > 2048) throw bad('MSI-X vector count', `${o.vectors} is not 1..2048`);
  const tableSize = o.vectors * 16;
  const pbaSize = Math.ceil(o.vectors / 64) * 8;
  const place = (what: string, p: { bar: number; offset: number }, length: number) => {
    const b = bars[p.bar];
    if (!b || b.type === 'io') throw bad(`MSI-X ${what} in a memory BAR`, `BAR ${p.bar} is ${b ? 'an I/O BAR' : 'not declared'}`);
    if (!Number.isInteger(p.offset) || p.offset < 0 || p.offset % 8 !== 0)
      throw bad(`MSI-X ${what} alignment`, `offset 0x${p.offset.toString(16)} is not a multiple of 8`);
    if (BigInt(p.offset + length) > b.size) {
      throw bad(
        `MSI-X ${what} inside its BAR`,
        `${length} bytes at BAR ${p.bar}+0x${p.offset.toString(16)} end beyond the BAR's 0x${b.size.toString(16)} bytes`,
      );
    }
  };
  place('table', o.table, tableSize);
  place('PBA', o.pba, pbaSize);
  if (o.table.bar === o.pba.bar && o.table.offset < o.pba.offset + pbaSize && o.pba.offset < o.table.offset + tableSize) {
    throw bad(
      'MSI-X table and PBA do not overlap',
      `table 0x${o.table.offset.toString(16)}+0x${tableSize.toString(16)}, PBA 0x${o.pba.offset.toString(16)}+0x${pbaSize.toString(16)}`,
    );
  }
  c.setRaw(pos + PCI_MSIX_FLAGS, 2, o.vectors - 1);
  c.setWriteMask(pos + PCI_MSIX_FLAGS, 2, PCI_MSIX_FLAGS_ENABLE | PCI_MSIX_FLAGS_MASKALL);
  c.setRaw(pos + PCI_MSIX_TABLE, 4, (o.table.offset | o.table.bar) >>> 0);
  c.setRaw(pos + PCI_MSIX_PBA, 4, (o.pba.offset | o.pba.bar) >>> 0);
  return { at: pos, vectors: o.vectors, tableBar: o.table.bar, tableOffset: o.table.offset, pbaBar: o.pba.bar, pbaOffset: o.pba.offset };
}

const PCIE_LNKCAP_ASPM_L0S = 1 << 10;
const PCIE_DEVCAP2_EFF = 1 << 20;
const PCIE_DEVCAP2_EETLPP = 1 << 21;

function installPcie(c: PciConfigSpace, pos: number, o: PcieCapabilitySpec, bad: (rule: string, detail: string) => Error): void {
  const payloadCode = Math.log2(o.maxPayload) - 7;
  if (!Number.isInteger(payloadCode) || payloadCode < 0 || payloadCode > 5)
    throw bad('PCIe max payload', `${o.maxPayload} is not 128, 256, … 4096 bytes`);
  const endpoint = o.type === 'endpoint';
  if (!endpoint && o.type !== 'integrated-endpoint')
    throw bad('PCIe device type', `'${String(o.type)}' is not endpoint or integrated-endpoint`);
  if (!Number.isInteger(o.linkSpeed) || o.linkSpeed < 1 || o.linkSpeed > 5)
    throw bad('PCIe link speed', `${o.linkSpeed} is not a generation 1..5`);
  if (![1, 2, 4, 8, 12, 16, 32].includes(o.linkWidth))
    throw bad('PCIe link width', `${o.linkWidth} lanes is not x1, x2, x4, x8, x12, x16 or x32`);
  c.setRaw(pos + PCIE.FLAGS, 2, 2 | ((endpoint ? 0x0 : 0x9) << 4));
  c.setRaw(pos + PCIE.DEVCAP, 4, (payloadCode | PCIE.DEVCAP_RBER | (o.flr ? PCIE.DEVCAP_FLR : 0)) >>> 0);
  if (endpoint) {
    // Reset values of Device Control: relaxed ordering and no-snoop enabled, 512-byte read requests.
    c.setRaw(pos + PCIE.DEVCTL, 2, 0x2810);
  } else {
    // QEMU's pcie_cap_init for a function on q35's root bus (seen in the lab on its NVMe controller):
    // Device Control left 0, an x1 2.5 GT/s link with L0s in Link Capabilities and Status, and
    // extended fmt field plus end-end TLP prefixes in Device Capabilities 2.
    c.setRaw(pos + PCIE.LNKCAP, 4, PCIE_LNKCAP_ASPM_L0S | o.linkSpeed | (o.linkWidth << 4));
    c.setRaw(pos + PCIE.LNKSTA, 2, o.linkSpeed | (o.linkWidth << 4));
    c.setRaw(pos + PCIE.DEVCAP2, 4, PCIE_DEVCAP2_EFF | PCIE_DEVCAP2_EETLPP);
  }
  // QEMU's pcie_cap_init makes no Device Control bit writable (pcie_cap_deverr_init, which a
  // device with AER calls, adds the error-reporting enables; pcie_cap_flr_init the FLR bit): the
  // lab's NVMe controller reads 0 back after a write of 1.
  c.setWriteMask(pos + PCIE.DEVCTL, 2, (endpoint ? 0x7fff : 0) | (o.flr ? PCIE.DEVCTL_BCR_FLR : 0));
  c.setClearMask(pos + PCIE.DEVSTA, 2, 0x000f);
  c.setWriteMask(pos + PCIE.DEVCTL2, 2, 0x001f);
  if (endpoint) {
    c.setRaw(pos + PCIE.LNKCAP, 4, o.linkSpeed | (o.linkWidth << 4));
    c.setWriteMask(pos + PCIE.LNKCTL, 2, 0x0fc3);
    c.setRaw(pos + PCIE.LNKSTA, 2, o.linkSpeed | (o.linkWidth << 4));
    c.setRaw(pos + PCIE.LNKCAP2, 4, ((1 << o.linkSpeed) - 1) << 1);
    c.setRaw(pos + PCIE.LNKCTL2, 2, o.linkSpeed);
    c.setWriteMask(pos + PCIE.LNKCTL2, 2, 0x000f);
  }
}

function installPm(c: PciConfigSpace, pos: number, o: PmCapabilitySpec): void {
  c.setRaw(pos + PCI_PM_PMC, 2, PCI_PM_CAP_VER_1_2);
  c.setRaw(pos + PCI_PM_CTRL, 2, o.noSoftReset ? PCI_PM_CTRL_NO_SOFT_RESET : 0);
  c.setWriteMask(pos + PCI_PM_CTRL, 2, 0x0003);
}

function installVendor(c: PciConfigSpace, pos: number, o: VendorCapabilitySpec): void {
  c.setRaw(pos + 2, 1, 3 + o.data.length);
  o.data.forEach((b, i) => c.setRaw(pos + 3 + i, 1, b));
  if (o.writable) c.setWritableRange(pos + 3, o.data.length);
}

function installExtended(c: PciConfigSpace, pos: number, o: ExtendedCapabilitySpec, bad: (rule: string, detail: string) => Error): void {
  if (o.data.length % 4 !== 0)
    throw bad(
      'extended capability length',
      `extended capability 0x${o.id.toString(16)}: data of ${o.data.length} bytes is not whole dwords`,
    );
  o.data.forEach((b, i) => c.setRaw(pos + 4 + i, 1, b));
  o.writeMask?.forEach((m, i) => c.setWriteMask(pos + 4 + i, 1, m));
}
