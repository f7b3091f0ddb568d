/**
 * Get Log Page (NVMe 1.4 §5.14) for the pages QEMU 7.2 keeps: Error Information (always empty:
 * QEMU records no errors there), SMART / Health Information, Firmware Slot Information, Changed
 * Namespace List and Commands Supported and Effects. Offsets must be dword aligned and inside the
 * page; the length is bounded by MDTS; any other page is Invalid Field.
 */
import type { Command, Completion } from './command';
import type { AdminContext } from './context';
import { COMPOSITE_TEMPERATURE, temperatureBeyondThreshold } from './identify-controller';
import { BROADCAST_NSID } from './namespace';
import { DNR, STATUS } from './status';

export const LOG_PAGE = { ERROR: 0x01, SMART: 0x02, FIRMWARE_SLOT: 0x03, CHANGED_NAMESPACES: 0x04, COMMAND_EFFECTS: 0x05 } as const;

/** Which opcodes the controller supports and their effects (CSUPP bit 0, LBCC bit 1, NIC bit 3). */
const CSUPP = 1,
  LBCC = 2,
  NIC = 1 << 3;
export const ADMIN_EFFECTS: Readonly<Record<number, number>> = {
  0x00: CSUPP,
  0x01: CSUPP,
  0x02: CSUPP,
  0x04: CSUPP,
  0x05: CSUPP,
  0x06: CSUPP,
  0x08: CSUPP,
  0x09: CSUPP,
  0x0a: CSUPP,
  0x0c: CSUPP,
  0x15: CSUPP | NIC,
  0x1c: CSUPP,
  0x7c: CSUPP,
  0x80: CSUPP | LBCC,
};
export const NVM_EFFECTS: Readonly<Record<number, number>> = {
  0x00: CSUPP | LBCC,
  0x01: CSUPP | LBCC,
  0x02: CSUPP,
  0x05: CSUPP,
  0x08: CSUPP | LBCC,
  0x09: CSUPP | LBCC,
  0x0c: CSUPP,
  0x19: CSUPP | LBCC,
};

export function getLogPage(ctx: AdminContext, c: Command): Completion {
  const lid = c.cdw10 & 0xff;
  const numdl = c.cdw10 >>> 16;
  const numdu = c.cdw11 & 0xffff;
  const length = (((numdu << 16) | numdl) + 1) * 4;
  const offset = (BigInt(c.cdw13) << 32n) | BigInt(c.cdw12);
  const csi = c.cdw14 >>> 24;
  if (offset & 3n) return { status: STATUS.INVALID_FIELD | DNR };
  if (ctx.mdts && length > ctx.pageSize * 2 ** ctx.mdts) return { status: STATUS.INVALID_FIELD | DNR };
  let page: Uint8Array;
  switch (lid) {
    case LOG_PAGE.ERROR:
      page = new Uint8Array(64);
      break;
    case LOG_PAGE.SMART: {
      const smart = smartLog(ctx, c.nsid);
      if (!(smart instanceof Uint8Array)) return smart;
      page = smart;
      break;
    }
    case LOG_PAGE.FIRMWARE_SLOT:
      page = firmwareSlots();
      break;
    case LOG_PAGE.CHANGED_NAMESPACES:
      // Checked before the list is taken: a refused read leaves it as it was.
      if (offset >= 4096n) return { status: STATUS.INVALID_FIELD | DNR };
      page = changedNamespaceList(ctx.takeChangedNamespaces());
      break;
    case LOG_PAGE.COMMAND_EFFECTS:
      page = commandEffects(csi);
      break;
    default:
      return { status: STATUS.INVALID_FIELD | DNR };
  }
  if (offset >= BigInt(page.length)) return { status: STATUS.INVALID_FIELD | DNR };
  const from = Number(offset);
  return ctx.toHost(c, page.subarray(from, from + Math.min(length, page.length - from)));
}

function smartLog(ctx: AdminContext, nsid: number): Uint8Array | Completion {
  let unitsRead = 0,
    unitsWritten = 0,
    reads = 0,
    writes = 0;
  const add = (n: number) => {
    const ns = ctx.namespace(n);
    if (!ns) return;
    unitsRead += ns.unitsRead;
    unitsWritten += ns.unitsWritten;
    reads += ns.readCommands;
    writes += ns.writeCommands;
  };
  if (nsid === BROADCAST_NSID) for (let i = 1; i <= ctx.maxNamespaces; i++) add(i);
  else {
    if (!ctx.namespace(nsid)) return { status: STATUS.INVALID_NSID | DNR };
    add(nsid);
  }
  const d = new Uint8Array(512);
  const v = new DataView(d.buffer);
  const f = ctx.features;
  let critical = 0;
  if (temperatureBeyondThreshold(f)) critical |= 1 << 1;
  d[0] = critical;
  v.setUint16(1, COMPOSITE_TEMPERATURE, true);
  // Data units are thousands of 512-byte units, rounded up.
  v.setBigUint64(32, BigInt(Math.ceil(unitsRead / 1000)), true);
  v.setBigUint64(48, BigInt(Math.ceil(unitsWritten / 1000)), true);
  v.setBigUint64(64, BigInt(reads), true);
  v.setBigUint64(80, BigInt(writes), true);
  v.setBigUint64(128, BigInt(Math.floor(ctx.nowMicroseconds / 3_600_000_000)), true);
  return d;
}

/** Up to 1024 namespace IDs; more than that is one entry of FFFFFFFFh. */
function changedNamespaceList(ids: readonly number[]): Uint8Array {
  const d = new Uint8Array(4096);
  const v = new DataView(d.buffer);
  if (ids.length > 1024) v.setUint32(0, 0xffff_ffff, true);
  else ids.forEach((id, i) => v.setUint32(i * 4, id, true));
  return d;
}

function firmwareSlots(): Uint8Array {
  const d = new Uint8Array(512);
  d[0] = 1; // AFI: slot 1 active
  // FRS1: QEMU reports "1.0" for slot 1 (not the FR of Identify Controller).
  d.fill(0x20, 8, 16);
  d.set([0x31, 0x2e, 0x30], 8);
  return d;
}

function commandEffects(csi: number): Uint8Array {
  const d = new Uint8Array(4096);
  const v = new DataView(d.buffer);
  for (const [op, e] of Object.entries(ADMIN_EFFECTS)) v.setUint32(Number(op) * 4, e, true);
  if (csi === 0) for (const [op, e] of Object.entries(NVM_EFFECTS)) v.setUint32(1024 + Number(op) * 4, e, true);
  return d;
}
