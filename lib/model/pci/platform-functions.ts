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
  PCI_ERR_CAP,
  PCI_ERR_COR_MASK,
  PCI_ERR_COR_STATUS,
  PCI_ERR_ROOT_CMD_EN_MASK,
  PCI_ERR_ROOT_COMMAND,
  PCI_ERR_ROOT_STATUS,
  PCI_ERR_SIZEOF,
  PCI_ERR_UNCOR_SEVER,
  PCI_ERR_UNCOR_STATUS,
  PCI_EXP_DEVCTL,
  PCI_EXP_DEVCTL_ERROR_REPORTING,
  PCI_EXP_FLAGS,
  PCI_EXT_CAP_ID_ACS,
  PCI_EXT_CAP_ID_ERR,
  PCI_HEADER_TYPE,
  PCI_HEADER_TYPE_BRIDGE,
  PCI_PREF_LIMIT_UPPER32,
} from '../../uapi/pci';
import { createDevice, type DeviceOptions } from '../../devices';
import { DeviceModel, extendedCapability, pcieCapability } from '../device';

const PCI_EXP_FLAGS_V2_ROOT_PORT = 0x0042;
/** QEMU's pcie_acs_init for a root port: SV, TB, RR, CR, UF capable; control all writable. */
const ROOT_PORT_ACS_CAP = 0x001f;
/** gen_pcie_root_port.c: AER at 0x100, ACS right after it. */
const ROOT_PORT_AER_OFFSET = 0x100;
const ROOT_PORT_ACS_OFFSET = ROOT_PORT_AER_OFFSET + PCI_ERR_SIZEOF;
/** QEMU's pcie_regs.h: the uncorrectable errors its AER emulates, and the fatal ones by default. */
const AER_UNC_SUPPORTED = 0x03fff030;
const AER_UNC_SEVERITY_DEFAULT = 0x00462030;
/** Receiver, bad TLP, bad DLLP, replay rollover and timer, advisory non-fatal, internal, header overflow. */
const AER_COR_SUPPORTED = 0x0000f1c1;
/** Advisory non-fatal, corrected internal and header log overflow masked. */
const AER_COR_MASK_DEFAULT = 0x0000e000;
/** ECRC generation and check capable, multiple header recording capable (aer_log_max > 0). */
const AER_CAP_DEFAULT = 0x000002a0;
const AER_CAP_WRITABLE = 0x00000540;

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

/**
 * QEMU 7.2's pcie-root-port: a type 1 header, the PCIe capability of a root port, AER with the
 * root error registers (pcie_aer_init, pcie_aer_root_init) and ACS.
 */
export class PcieRootPort extends DeviceModel {
  constructor() {
    super({
      model: 'pcie-root-port',
      identity: { vendorId: 0x1b36, deviceId: 0x000c, classCode: 0x060400, subsystemVendorId: 0, subsystemId: 0 },
      interruptPin: 'INTA',
      capabilities: [
        pcieCapability({ type: 'endpoint' }),
        extendedCapability({ id: PCI_EXT_CAP_ID_ERR, version: 2, data: new Uint8Array(PCI_ERR_SIZEOF - 4), at: ROOT_PORT_AER_OFFSET }),
        extendedCapability({
          id: PCI_EXT_CAP_ID_ACS,
          at: ROOT_PORT_ACS_OFFSET,
          data: new Uint8Array([ROOT_PORT_ACS_CAP & 0xff, ROOT_PORT_ACS_CAP >> 8, 0, 0]),
          writeMask: new Uint8Array([0, 0, 0x7f, 0]),
        }),
      ],
    });
    // The SDK lays out endpoints; a port differs in the header type and the port type.
    const c = this.config;
    c.setRaw(PCI_HEADER_TYPE, 1, PCI_HEADER_TYPE_BRIDGE);
    c.setRaw(PCI_PREF_LIMIT_UPPER32, 4, 0);
    const exp = c.findCapability(PCI_CAP_ID_EXP);
    c.setRaw(exp + PCI_EXP_FLAGS, 2, PCI_EXP_FLAGS_V2_ROOT_PORT);
    // pcie_cap_init leaves Device Control 0; pcie_cap_deverr_init makes the reporting enables writable.
    c.setRaw(exp + PCI_EXP_DEVCTL, 2, 0);
    c.setWriteMask(exp + PCI_EXP_DEVCTL, 2, PCI_EXP_DEVCTL_ERROR_REPORTING);
    const aer = ROOT_PORT_AER_OFFSET;
    c.setClearMask(aer + PCI_ERR_UNCOR_STATUS, 4, AER_UNC_SUPPORTED);
    c.setRaw(aer + PCI_ERR_UNCOR_SEVER, 4, AER_UNC_SEVERITY_DEFAULT);
    c.setWriteMask(aer + PCI_ERR_UNCOR_SEVER, 4, AER_UNC_SUPPORTED);
    c.setClearMask(aer + PCI_ERR_COR_STATUS, 4, AER_COR_SUPPORTED);
    c.setRaw(aer + PCI_ERR_COR_MASK, 4, AER_COR_MASK_DEFAULT);
    c.setWriteMask(aer + PCI_ERR_COR_MASK, 4, AER_COR_SUPPORTED);
    c.setRaw(aer + PCI_ERR_CAP, 4, AER_CAP_DEFAULT);
    c.setWriteMask(aer + PCI_ERR_CAP, 4, AER_CAP_WRITABLE);
    c.setWriteMask(aer + PCI_ERR_ROOT_COMMAND, 4, PCI_ERR_ROOT_CMD_EN_MASK);
    c.setClearMask(aer + PCI_ERR_ROOT_STATUS, 4, 0x7f);
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
