/**
 * What the shape of the PCI hierarchy decides, read from the functions' own config spaces as the
 * kernel reads it: which functions are bridges and which bus numbers firmware gives their
 * secondary buses (depth first, in device order: SeaBIOS's numbering), which functions share a
 * slot (the multifunction flag), whether ACS isolates a function or a bridge, and from that the
 * IOMMU groups an IOMMU driver forms (drivers/iommu/iommu.c pci_device_group):
 *   - a function behind a bridge whose path to the root lacks ACS joins that bridge's group;
 *   - a function of a multifunction slot without ACS joins a sibling function's group;
 *   - otherwise it gets a group of its own, the lowest free number, in probe (bus) order.
 */
import { PCI_CAP_ID_EXP, PCI_CFG_SPACE_SIZE, PCI_EXT_CAP_ID_ACS, PCI_HEADER_TYPE } from '../../uapi/pci';
import type { PciAddress } from './address';
import type { PciDeviceModel } from './device-model';
import type { PciSlot } from './host';

const HEADER_TYPE_MASK = 0x7f;
const HEADER_TYPE_BRIDGE = 0x01;
const HEADER_TYPE_MULTIFUNCTION = 0x80;
const PCI_PRIMARY_BUS = 0x18;
const PCI_SECONDARY_BUS = 0x19;
const PCI_SUBORDINATE_BUS = 0x1a;
const PCI_EXP_FLAGS = 2;
const PCI_EXP_TYPE_ENDPOINT = 0x0;
const PCI_EXP_TYPE_LEG_END = 0x1;
const PCI_EXP_TYPE_ROOT_PORT = 0x4;
const PCI_EXP_TYPE_UPSTREAM = 0x5;
const PCI_EXP_TYPE_DOWNSTREAM = 0x6;
const PCI_EXP_TYPE_PCI_BRIDGE = 0x7;
const PCI_EXP_TYPE_RC_END = 0x9;
const PCI_ACS_CAP = 4;
const PCI_ACS_CTRL = 6;
/** REQ_ACS_FLAGS: source validation, request and completion redirect, upstream forwarding. */
const REQ_ACS_FLAGS = 0x01 | 0x04 | 0x08 | 0x10;
const PCI_ACS_EC = 0x20;

/** A type 1 (PCI-to-PCI bridge) header. */
export function isBridge(device: PciDeviceModel): boolean {
  return (device.config.getRaw(PCI_HEADER_TYPE, 1) & HEADER_TYPE_MASK) === HEADER_TYPE_BRIDGE;
}

/**
 * Firmware's bus numbers: each bridge, visited depth first in address order from the root bus,
 * gets the next free number for its secondary bus. Returns bridge name → secondary bus.
 */
export function firmwareBusNumbers(bridges: readonly { name: string; address: PciAddress }[]): Map<string, number> {
  const numbers = new Map<string, number>();
  let next = 1;
  const visit = (bus: number) => {
    const here = bridges
      .filter((b) => b.address.bus === bus)
      .sort((a, b) => a.address.device * 8 + a.address.func - (b.address.device * 8 + b.address.func));
    for (const b of here) {
      if (numbers.has(b.name)) continue;
      const secondary = next++;
      numbers.set(b.name, secondary);
      visit(secondary);
    }
  };
  visit(0);
  return numbers;
}

/** What firmware writes into a bridge: its primary, secondary and subordinate bus numbers. */
export function programBridgeBuses(bridge: PciSlot, secondary: number, subordinate: number): void {
  const c = bridge.device.config;
  c.setRaw(PCI_PRIMARY_BUS, 1, bridge.address.bus);
  c.setRaw(PCI_SECONDARY_BUS, 1, secondary);
  c.setRaw(PCI_SUBORDINATE_BUS, 1, subordinate);
}

/** The bus behind a bridge (0 for a function that is not a bridge). */
export function secondaryBus(slot: PciSlot): number {
  return isBridge(slot.device) ? slot.device.config.getRaw(PCI_SECONDARY_BUS, 1) : 0;
}

/**
 * QEMU sets the multifunction bit in function 0's header type when more functions share its
 * slot; Linux then treats every function of the slot as multifunction (pci_scan_slot).
 */
export function markMultifunctionSlots(slots: readonly PciSlot[]): void {
  for (const s of slots) {
    if (s.address.func !== 0 || !slots.some((o) => o !== s && sameSlot(o.address, s.address))) continue;
    const c = s.device.config;
    c.setRaw(PCI_HEADER_TYPE, 1, c.getRaw(PCI_HEADER_TYPE, 1) | HEADER_TYPE_MULTIFUNCTION);
  }
}

/** pdev->multifunction. */
export function isMultifunction(slot: PciSlot): boolean {
  if (slot.address.func !== 0) return true;
  return (slot.device.config.getRaw(PCI_HEADER_TYPE, 1) & HEADER_TYPE_MULTIFUNCTION) !== 0;
}

function sameSlot(a: PciAddress, b: PciAddress): boolean {
  return a.domain === b.domain && a.bus === b.bus && a.device === b.device;
}

/** The PCI Express device/port type, or undefined for a conventional PCI function. */
function pcieType(device: PciDeviceModel): number | undefined {
  const pos = device.config.findCapability(PCI_CAP_ID_EXP);
  return pos ? (device.config.getRaw(pos + PCI_EXP_FLAGS, 2) >> 4) & 0xf : undefined;
}

/** The ACS extended capability's offset (0: none). */
function acsCapability(device: PciDeviceModel): number {
  const c = device.config;
  if (c.size <= PCI_CFG_SPACE_SIZE) return 0;
  for (let pos = PCI_CFG_SPACE_SIZE, guard = 0; pos >= PCI_CFG_SPACE_SIZE && guard < 960; guard++) {
    const header = c.getRaw(pos, 4);
    if (header === 0) return 0;
    if ((header & 0xffff) === PCI_EXT_CAP_ID_ACS) return pos;
    pos = (header >>> 20) & 0xffc;
  }
  return 0;
}

/**
 * pci_enable_acs as the kernel does it at boot when an IOMMU is present: every ACS feature the
 * port has of source validation, redirects and upstream forwarding is switched on.
 */
export function enableAcs(slot: PciSlot): void {
  const pos = acsCapability(slot.device);
  if (!pos) return;
  const c = slot.device.config;
  const cap = c.getRaw(pos + PCI_ACS_CAP, 2);
  c.setRaw(pos + PCI_ACS_CTRL, 2, c.getRaw(pos + PCI_ACS_CTRL, 2) | (cap & REQ_ACS_FLAGS));
}

/** pci_acs_flags_enabled: features the capability lacks count as hard-wired on. */
function acsFlagsEnabled(device: PciDeviceModel): boolean {
  const pos = acsCapability(device);
  if (!pos) return false;
  const cap = device.config.getRaw(pos + PCI_ACS_CAP, 2);
  const wanted = REQ_ACS_FLAGS & (cap | PCI_ACS_EC);
  return (device.config.getRaw(pos + PCI_ACS_CTRL, 2) & wanted) === wanted;
}

/** pci_acs_enabled for the flags IOMMU grouping asks for. */
export function acsEnabled(slot: PciSlot, _all: readonly PciSlot[]): boolean {
  const type = pcieType(slot.device);
  // Conventional PCI shares its bus: it never isolates.
  if (type === undefined) return false;
  switch (type) {
    case PCI_EXP_TYPE_PCI_BRIDGE:
      return false;
    case PCI_EXP_TYPE_ROOT_PORT:
    case PCI_EXP_TYPE_DOWNSTREAM:
      return acsFlagsEnabled(slot.device);
    case PCI_EXP_TYPE_ENDPOINT:
    case PCI_EXP_TYPE_UPSTREAM:
    case PCI_EXP_TYPE_LEG_END:
    case PCI_EXP_TYPE_RC_END:
      return isMultifunction(slot) ? acsFlagsEnabled(slot.device) : true;
    default:
      return true;
  }
}

/** pci_acs_path_enabled(start, NULL): ACS at `start` and every bridge above it. */
function acsPathEnabled(start: PciSlot, all: readonly PciSlot[]): boolean {
  for (let b: PciSlot | undefined = start; b; b = b.upstream) if (!acsEnabled(b, all)) return false;
  return true;
}

/**
 * The IOMMU groups of every function, as the IOMMU driver forms them when it probes the functions
 * in bus order: function → group number.
 */
export function iommuGroupNumbers(slots: readonly PciSlot[]): Map<PciSlot, number> {
  const sorted = [...slots].sort((a, b) => addressKey(a.address) - addressKey(b.address));
  const groups = new Map<PciSlot, number>();
  let next = 0;
  for (const slot of sorted) {
    let group = sharedGroup(slot, sorted, groups);
    if (group === undefined) group = next++;
    groups.set(slot, group);
  }
  return groups;
}

function sharedGroup(slot: PciSlot, all: readonly PciSlot[], groups: ReadonlyMap<PciSlot, number>): number | undefined {
  let dev = slot;
  for (let bridge = slot.upstream; bridge; bridge = bridge.upstream) {
    if (acsPathEnabled(bridge, all)) break;
    dev = bridge;
    const g = groups.get(bridge);
    if (g !== undefined) return g;
  }
  if (!isMultifunction(dev) || acsEnabled(dev, all)) return undefined;
  for (const other of all) {
    if (other === dev || !sameSlot(other.address, dev.address) || acsEnabled(other, all)) continue;
    const g = groups.get(other);
    if (g !== undefined) return g;
  }
  return undefined;
}

function addressKey(a: PciAddress): number {
  return ((a.domain * 256 + a.bus) * 32 + a.device) * 8 + a.func;
}

/** The functions a reset of the bus below `bridge` reaches: everything on it and below it. */
export function functionsBelow(bridge: PciSlot, all: readonly PciSlot[]): PciSlot[] {
  return all.filter((s) => {
    for (let b = s.upstream; b; b = b.upstream) if (b === bridge) return true;
    return false;
  });
}
