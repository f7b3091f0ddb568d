/**
 * vfio-pci's extended capability lengths (vfio_ext_cap_len in vfio_pci_config.c) for the
 * variable-size capabilities: a capability's bytes are served by its permission table (here read
 * only: writes are dropped), the bytes after it are unassigned and pass through raw. A device
 * whose capability bytes are all writable shows exactly where vfio-pci thinks each one ends.
 */
import assert from 'node:assert/strict';
import { DeviceModel, extendedCapability, pcieCapability } from '../../../lib/model';
import { VfioPciConfig, type ConfigOwner } from '../../../lib/model/vfio/config-virt';

/** A capability's registers after the header, with the fields its length depends on. */
interface Case {
  readonly name: string;
  readonly id: number;
  readonly data: number[];
  readonly vfioLength: number;
}

const dwords = (n: number, first: number[] = []) => [...first, ...new Array<number>(n * 4 - first.length).fill(0)];

const CASES: Case[] = [
  // VC: 1 extra VC (EVCC 1), no arbitration table: 0x10 + 2 * 0x0c.
  { name: 'VC with two virtual channels', id: 0x02, data: dwords(10, [0x01]), vfioLength: 0x28 },
  // MFVC: EVCC 0, 32-phase VC arbitration: round_up(0x1c, 16) + 32 * 4 / 8.
  { name: 'MFVC with a 32-phase arbitration table', id: 0x08, data: dwords(15, [0, 0, 0, 0, 0x02]), vfioLength: 0x30 },
  { name: 'ACS without egress control', id: 0x0d, data: dwords(2, [0x1f]), vfioLength: 8 },
  // ACS with egress control and 40 egress bits: 8 + round_up(40, 32) / 8.
  { name: 'ACS with 40 egress control bits', id: 0x0d, data: dwords(3, [0x3f, 40]), vfioLength: 16 },
  // Resizable BAR with 2 BARs (NBAR in bits 7:5 of the first control register).
  { name: 'resizable BAR with two BARs', id: 0x15, data: dwords(4, [0, 0, 0, 0, 0x40]), vfioLength: 20 },
  // DPA with substate max 3: 16 + 3 + 1.
  { name: 'DPA with four substates', id: 0x16, data: dwords(4, [0x03]), vfioLength: 20 },
  // TPH with the steering table in the capability (location 1) and 3 entries: 12 + 3 * 2 + 2.
  { name: 'TPH with a three-entry steering table', id: 0x17, data: dwords(5, [0, 0x02, 0x03, 0]), vfioLength: 20 },
  { name: 'TPH with the steering table elsewhere', id: 0x17, data: dwords(2, [0, 0x04, 0x03, 0]), vfioLength: 12 },
];

class WithExtendedCapability extends DeviceModel {
  constructor(c: Case) {
    super({
      model: 'ext-cap',
      identity: { vendorId: 0x1234, deviceId: 0x0001, classCode: 0xff0000 },
      capabilities: [
        pcieCapability(),
        extendedCapability({ id: c.id, data: new Uint8Array(c.data), writeMask: new Uint8Array(c.data.length).fill(0xff) }),
      ],
    });
  }
}

function virtualise(device: DeviceModel): VfioPciConfig {
  const owner: ConfigOwner = {
    bars: [],
    intxUsable: true,
    msiActive: () => false,
    msiQmax: () => 0,
    intxMask: () => undefined,
    intxUnmask: () => undefined,
    setPowerState: () => undefined,
    tryFunctionReset: () => undefined,
  };
  return new VfioPciConfig(
    { size: device.config.size, read: (o, w) => device.config.read(o, w), write: (o, w, v) => device.config.write(o, w, v) },
    owner,
  );
}

describe('vfio-pci extended capability lengths (vfio_ext_cap_len)', () => {
  for (const c of CASES) {
    it(`${c.name}: ${c.vfioLength} bytes are the capability's, the next byte is unassigned`, () => {
      const device = new WithExtendedCapability(c);
      const cfg = virtualise(device);
      const header = Buffer.alloc(4);
      cfg.rw(header, 0x100, false);
      assert.equal(header.readUInt32LE(0) & 0xffff, c.id, 'the capability stays in the list');
      const write = (at: number) => {
        cfg.rw(Buffer.from([0xa5]), at, true);
        return device.config.read(at, 1);
      };
      assert.notEqual(write(0x100 + c.vfioLength - 1), 0xa5, "the last byte of the capability is not the user's to write");
      assert.equal(write(0x100 + c.vfioLength), 0xa5, 'the byte after it is unassigned: a raw write');
    });
  }
});
