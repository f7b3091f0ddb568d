/**
 * Functions a machine has besides the devices under test: the q35 chipset's own functions, the
 * lab's VGA, NIC and 9p transports, and PCI Express root ports. Nothing in the model drives them;
 * they are there because the kernel sees them — they take IOMMU group numbers in bus order, a
 * root port is the bridge a secondary bus hangs off (its sysfs path, its INTx swizzle, its bus
 * reset, its ACS) — so numbering comes out of the topology instead of being pinned per device.
 *
 * A topology entry names them like built-in devices: `device: 'platform'` with the identity in
 * its options (`vendor`, `device`, `class`, `revision`), or `device: 'pcie-root-port'` (QEMU's
 * generic root port, 1b36:000c, with ACS).
 */
import {
  PCI_CAP_ID_EXP,
  PCI_EXP_FLAGS,
  PCI_EXT_CAP_ID_ACS,
  PCI_HEADER_TYPE,
  PCI_HEADER_TYPE_BRIDGE,
  PCI_PREF_LIMIT_UPPER32,
} from '../../uapi/pci';
import { createDevice, type DeviceOptions } from '../../devices';
import { DeviceModel, extendedCapability, pcieCapability } from '../device';

const PCI_EXP_FLAGS_V2_ROOT_PORT = 0x0042;
/** QEMU's pcie_acs_init for a root port: SV, TB, RR, CR, UF capable; control all writable. */
const ROOT_PORT_ACS_CAP = 0x001f;

/** A function with an identity and nothing else (no BARs, no interrupt pin). */
export class PlatformFunction extends DeviceModel {
  constructor(o: { vendorId: number; deviceId: number; classCode: number; revision?: number }) {
    super({
      model: 'platform',
      identity: {
        vendorId: o.vendorId,
        deviceId: o.deviceId,
        classCode: o.classCode,
        revision: o.revision ?? 0,
        subsystemVendorId: 0,
        subsystemId: 0,
      },
      interruptPin: 'none',
    });
  }
}

/** QEMU 7.2's pcie-root-port: a type 1 header, the PCIe capability of a root port, and ACS. */
export class PcieRootPort extends DeviceModel {
  constructor() {
    super({
      model: 'pcie-root-port',
      identity: { vendorId: 0x1b36, deviceId: 0x000c, classCode: 0x060400, subsystemVendorId: 0, subsystemId: 0 },
      interruptPin: 'INTA',
      capabilities: [
        pcieCapability({ type: 'endpoint' }),
        extendedCapability({
          id: PCI_EXT_CAP_ID_ACS,
          data: new Uint8Array([ROOT_PORT_ACS_CAP & 0xff, ROOT_PORT_ACS_CAP >> 8, 0, 0]),
          writeMask: new Uint8Array([0, 0, 0x7f, 0]),
        }),
      ],
    });
    // The SDK lays out endpoints; a port differs in the header type and the port type.
    const c = this.config;
    c.setRaw(PCI_HEADER_TYPE, 1, PCI_HEADER_TYPE_BRIDGE);
    c.setRaw(PCI_PREF_LIMIT_UPPER32, 4, 0);
    c.setRaw(c.findCapability(PCI_CAP_ID_EXP) + PCI_EXP_FLAGS, 2, PCI_EXP_FLAGS_V2_ROOT_PORT);
  }
}

/** The model for a topology entry: a platform function, a root port, or any device model. */
export function placeDevice(model: string | DeviceModel, options: DeviceOptions = {}): DeviceModel {
  if (model === 'pcie-root-port') return new PcieRootPort();
  if (model === 'platform') {
    const num = (key: string): number => {
      const v = options[key];
      if (typeof v !== 'number' || !Number.isInteger(v)) throw new RangeError(`a 'platform' function needs a numeric '${key}' option`);
      return v;
    };
    return new PlatformFunction({
      vendorId: num('vendor'),
      deviceId: num('device'),
      classCode: num('class'),
      ...(options['revision'] === undefined ? {} : { revision: num('revision') }),
    });
  }
  return createDevice(model, options);
}
