/**
 * The Identify Controller data structure (CNS 01h, NVMe 1.4 figure 247) with the values QEMU 7.2's
 * controller reports, and the Identify data that lists command sets and namespaces.
 */
import { NVME_VERSION_1_4 } from './registers';
import { IDENTIFY_SIZE } from './namespace';

export interface ControllerIdentity {
  readonly vendorId: number;
  readonly subsystemVendorId: number;
  /** The serial property (SN, padded with spaces to 20 bytes). */
  readonly serial: string;
  /** MN: QEMU's is "QEMU NVMe Ctrl". */
  readonly modelNumber: string;
  /** FR: QEMU's version string, e.g. "7.2.22". */
  readonly firmwareRevision: string;
  /** MDTS: the largest transfer as a power of two of the minimum page size (0: no limit). */
  readonly mdts: number;
  readonly controllerId: number;
  /** AERL: asynchronous event requests outstanding at once, 0's based. */
  readonly aerl: number;
  /** NN: the highest namespace ID the controller supports. */
  readonly maxNamespaces: number;
  /** The NVM subsystem's NQN suffix (QEMU's nvme-subsys nqn, by default its id), if the controller is in one. */
  readonly subsystem?: string;
}

/** The composite temperature QEMU's controller always reports, in kelvin: 323 K (50 °C). */
export const COMPOSITE_TEMPERATURE = 0x143;
/** Composite temperature thresholds, in kelvin (about 70 and 100 °C). */
export const WARNING_TEMPERATURE = 0x157;
export const CRITICAL_TEMPERATURE = 0x175;

/** Whether the composite temperature is at or beyond a threshold the host set (Temperature Threshold feature). */
export function temperatureBeyondThreshold(thresholds: { readonly temperatureOver: number; readonly temperatureUnder: number }): boolean {
  return COMPOSITE_TEMPERATURE >= thresholds.temperatureOver || COMPOSITE_TEMPERATURE <= thresholds.temperatureUnder;
}

export function identifyController(id: ControllerIdentity): Uint8Array {
  const d = new Uint8Array(IDENTIFY_SIZE);
  const v = new DataView(d.buffer);
  v.setUint16(0, id.vendorId, true);
  v.setUint16(2, id.subsystemVendorId, true);
  ascii(d, 4, 20, id.serial);
  ascii(d, 24, 40, id.modelNumber);
  ascii(d, 64, 8, id.firmwareRevision);
  d[72] = 6; // RAB
  d.set([0x00, 0x54, 0x52], 73); // IEEE OUI 52:54:00, stored least significant byte first
  d[76] = id.subsystem === undefined ? 0 : 1 << 1; // CMIC: more than one controller in the subsystem
  d[77] = id.mdts;
  v.setUint16(78, id.controllerId, true);
  v.setUint32(80, NVME_VERSION_1_4, true);
  v.setUint32(92, 1 << 8, true); // OAES: namespace attribute notices
  v.setUint32(96, 1 << 15, true); // CTRATT: extended LBA formats
  d[111] = 1; // CNTRLTYPE: I/O controller
  v.setUint16(256, (1 << 1) | (1 << 3) | (1 << 8), true); // OACS: Format NVM, namespace management, doorbell buffer config
  d[258] = 3; // ACL
  d[259] = id.aerl;
  d[260] = (1 << 1) | 1; // FRMW: one slot, slot 1 read-only
  d[261] = 0x7; // LPA: per-namespace SMART, commands supported and effects, extended data
  v.setUint16(266, WARNING_TEMPERATURE, true); // WCTEMP
  v.setUint16(268, CRITICAL_TEMPERATURE, true); // CCTEMP
  d[512] = (6 << 4) | 6; // SQES: 64-byte entries
  d[513] = (4 << 4) | 4; // CQES: 16-byte entries
  v.setUint32(516, id.maxNamespaces, true);
  // ONCS: Compare, Dataset Management, Write Zeroes, Save/Select in features, Timestamp, Copy
  v.setUint16(520, (1 << 0) | (1 << 2) | (1 << 3) | (1 << 4) | (1 << 6) | (1 << 8), true);
  d[525] = 0x1 | (0x3 << 1); // VWC: present, Flush to all namespaces (FFFFFFFFh) supported
  v.setUint16(534, 0x3, true); // OCFS: copy formats 0 and 1
  v.setUint32(536, 0x1, true); // SGLS: SGLs supported, no alignment rules
  ascii(d, 768, 256, `nqn.2019-08.org.qemu:${id.subsystem ?? id.serial}`, 0);
  v.setUint16(2048, 0x9c4, true); // power state 0: 25 W maximum
  v.setUint32(2048 + 4, 0x10, true); // entry latency
  v.setUint32(2048 + 8, 0x4, true); // exit latency
  return d;
}

/** The I/O Command Set specific Identify Controller data for the NVM command set (CNS 06h, CSI 0). */
export function identifyControllerNvm(verifySizeLimit: number, dsmRangeSizeLimit: number): Uint8Array {
  const d = new Uint8Array(IDENTIFY_SIZE);
  d[0] = verifySizeLimit; // VSL
  new DataView(d.buffer).setUint32(4, dsmRangeSizeLimit, true); // DMRSL
  return d;
}

/** The I/O command set combinations (CNS 1Ch): one, NVM and Zoned. */
export function commandSetCombinations(): Uint8Array {
  const d = new Uint8Array(IDENTIFY_SIZE);
  d[0] = (1 << 0) | (1 << 2);
  return d;
}

/** A namespace ID list: the IDs above `after`, ascending, at most 1024. */
export function namespaceList(nsids: readonly number[], after: number): Uint8Array {
  const d = new Uint8Array(IDENTIFY_SIZE);
  const v = new DataView(d.buffer);
  let j = 0;
  for (const nsid of nsids) {
    if (nsid <= after) continue;
    v.setUint32(j * 4, nsid, true);
    if (++j === IDENTIFY_SIZE / 4) break;
  }
  return d;
}

/** Writes `text` padded to `length` bytes with `pad` (QEMU pads strings with spaces, the NQN with zeroes). */
function ascii(d: Uint8Array, at: number, length: number, text: string, pad = 0x20): void {
  d.fill(pad, at, at + length);
  for (let i = 0; i < Math.min(length, text.length); i++) d[at + i] = text.charCodeAt(i) & 0x7f;
}
