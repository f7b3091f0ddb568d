/**
 * /dev/aer_inject (CONFIG_PCIEAER_INJECT, drivers/pci/pcie/aer_inject.c): a root-only misc device
 * that takes a struct aer_error_inj per write and makes it look as if the function had logged the
 * error and its root port had received the message. It does that by simulating the function's and
 * the root port's AER status registers (every config read of them from then on, sysfs included,
 * sees the simulation; writes to the status registers flip bits, as its XOR does) and by raising
 * the root port's AER interrupt. The simulated registers stay for the rest of the boot, and a
 * fatal bit the AER core never clears stays set in them.
 */
import {
  PCI_ERR_COR_MASK,
  PCI_ERR_COR_STATUS,
  PCI_ERR_HEADER_LOG,
  PCI_ERR_ROOT_COR_RCV,
  PCI_ERR_ROOT_ERR_SRC,
  PCI_ERR_ROOT_FATAL_RCV,
  PCI_ERR_ROOT_FIRST_FATAL,
  PCI_ERR_ROOT_MULTI_COR_RCV,
  PCI_ERR_ROOT_MULTI_UNCOR_RCV,
  PCI_ERR_ROOT_NONFATAL_RCV,
  PCI_ERR_ROOT_STATUS,
  PCI_ERR_ROOT_UNCOR_RCV,
  PCI_ERR_UNCOR_MASK,
  PCI_ERR_UNCOR_SEVER,
  PCI_ERR_UNCOR_STATUS,
} from '../../uapi/pci';
import { fail } from '../errno';
import type { Capabilities } from '../../sys/kernel';
import type { OpenFile } from '../open-file';
import type { PciSlot } from './host';
import { rootPortOf, type AerRegisterAccess, type PcieAer } from './aer';

/** offsetof(struct aer_error_inj, domain): a shorter write is refused, as is one past sizeof. */
const INJ_MIN_SIZE = 28;
const INJ_SIZE = 32;

/** struct aer_error: the simulated registers of one function. */
interface SimulatedErrors {
  uncorStatus: number;
  corStatus: number;
  readonly headerLog: number[];
  rootStatus: number;
  sourceId: number;
}

export interface AerInjectOptions {
  readonly aer: PcieAer;
  readonly functions: () => readonly PciSlot[];
  readonly capabilities: () => Capabilities;
}

export class AerInjector {
  private readonly simulated = new Map<PciSlot, SimulatedErrors>();
  /** Buses whose config ops pci_bus_set_aer_ops replaced: only there do reads see the simulation. */
  private readonly hookedBuses = new Set<number>();

  constructor(private readonly o: AerInjectOptions) {
    const real = o.aer.registers;
    // pci_bus_set_aer_ops: from the first injection on, config dwords of a function with simulated
    // errors come from the simulation where it has the register.
    const overlay: AerRegisterAccess = {
      read: (slot, offset) => {
        const field = this.field(slot, offset);
        return field ? field.get() : real.read(slot, offset);
      },
      write: (slot, offset, value) => {
        const field = this.field(slot, offset);
        if (field) field.set(field.rw1c ? (field.get() ^ value) >>> 0 : value >>> 0);
        else real.write(slot, offset, value);
      },
    };
    o.aer.registers = overlay;
  }

  /** The config dword a reader sees (sysfs `config` reads go through here too). */
  readConfigDword(slot: PciSlot, offset: number): number {
    return this.o.aer.registers.read(slot, offset);
  }

  /** The open file of /dev/aer_inject. */
  open(): OpenFile {
    return {
      kind: 'aer-inject',
      pwrite: (from) => this.write(from),
    };
  }

  /** aer_inject_write. */
  private write(from: Uint8Array): number {
    if (!this.o.capabilities().sysAdmin) fail('EPERM', 'aer_inject needs CAP_SYS_ADMIN');
    if (from.length < INJ_MIN_SIZE || from.length > INJ_SIZE) {
      fail('EINVAL', `a struct aer_error_inj is ${INJ_MIN_SIZE} to ${INJ_SIZE} bytes, not ${from.length}`);
    }
    const buf = new Uint8Array(INJ_SIZE);
    buf.set(from);
    const dv = new DataView(buf.buffer);
    this.inject({
      bus: buf[0]!,
      dev: buf[1]!,
      fn: buf[2]!,
      uncorStatus: dv.getUint32(4, true),
      corStatus: dv.getUint32(8, true),
      headerLog: [12, 16, 20, 24].map((o) => dv.getUint32(o, true)),
      domain: dv.getUint32(28, true),
    });
    return from.length;
  }

  /** aer_inject(). */
  private inject(e: {
    bus: number;
    dev: number;
    fn: number;
    uncorStatus: number;
    corStatus: number;
    headerLog: number[];
    domain: number;
  }): void {
    const { aer } = this.o;
    const devfn = ((e.dev & 0x1f) << 3) | (e.fn & 0x7);
    const dev = this.o
      .functions()
      .find((s) => s.address.domain === e.domain && s.address.bus === e.bus && ((s.address.device << 3) | s.address.func) === devfn);
    if (!dev) fail('ENODEV', `no PCI function ${e.domain}:${e.bus}:${e.dev}.${e.fn}`);
    const rp = rootPortOf(dev);
    if (!rp) fail('ENODEV', `${dev.name}: neither a root port nor an RCEC above it`);
    const pos = aer.aerCap(dev);
    if (!pos) fail('EPROTONOSUPPORT', `${dev.name} has no AER capability`);
    const sever = aer.registers.read(dev, pos + PCI_ERR_UNCOR_SEVER);
    const corMask = aer.registers.read(dev, pos + PCI_ERR_COR_MASK);
    const uncorMask = aer.registers.read(dev, pos + PCI_ERR_UNCOR_MASK);
    if (!aer.aerCap(rp)) fail('EPROTONOSUPPORT', `root port ${rp.name} has no AER capability`);
    const err = this.entry(dev);
    err.uncorStatus = (err.uncorStatus | e.uncorStatus) >>> 0;
    err.corStatus = (err.corStatus | e.corStatus) >>> 0;
    e.headerLog.forEach((v, i) => (err.headerLog[i] = v));
    // The simulated status is kept even when the error turns out masked (the kernel records it first).
    if (e.corStatus && !(e.corStatus & ~corMask)) fail('EINVAL', `${dev.name}: the correctable error(s) are masked by the device`);
    if (e.uncorStatus && !(e.uncorStatus & ~uncorMask)) fail('EINVAL', `${dev.name}: the uncorrectable error(s) are masked by the device`);
    const rperr = this.entry(rp);
    const id = (dev.address.bus << 8) | devfn;
    if (e.corStatus) {
      rperr.rootStatus |= rperr.rootStatus & PCI_ERR_ROOT_COR_RCV ? PCI_ERR_ROOT_MULTI_COR_RCV : PCI_ERR_ROOT_COR_RCV;
      rperr.sourceId = ((rperr.sourceId & 0xffff0000) | id) >>> 0;
    }
    if (e.uncorStatus) {
      if (rperr.rootStatus & PCI_ERR_ROOT_UNCOR_RCV) rperr.rootStatus |= PCI_ERR_ROOT_MULTI_UNCOR_RCV;
      if (sever & e.uncorStatus) {
        rperr.rootStatus |= PCI_ERR_ROOT_FATAL_RCV;
        if (!(rperr.rootStatus & PCI_ERR_ROOT_UNCOR_RCV)) rperr.rootStatus |= PCI_ERR_ROOT_FIRST_FATAL;
      } else {
        rperr.rootStatus |= PCI_ERR_ROOT_NONFATAL_RCV;
      }
      rperr.rootStatus |= PCI_ERR_ROOT_UNCOR_RCV;
      rperr.sourceId = ((rperr.sourceId & 0x0000ffff) | (id << 16)) >>> 0;
    }
    this.hookedBuses.add(dev.address.bus);
    this.hookedBuses.add(rp.address.bus);
    if (!aer.serviceRuns(rp)) fail('ENODEV', `root port ${rp.name}: no AER service`);
    aer.raiseInterrupt(rp);
  }

  private entry(slot: PciSlot): SimulatedErrors {
    let err = this.simulated.get(slot);
    if (!err) {
      err = { uncorStatus: 0, corStatus: 0, headerLog: [0, 0, 0, 0], rootStatus: 0, sourceId: 0 };
      this.simulated.set(slot, err);
    }
    return err;
  }

  /** find_pci_config_dword: the simulated register at `offset`, if the function has one there. */
  private field(slot: PciSlot, offset: number): { get(): number; set(v: number): void; rw1c: boolean } | undefined {
    const err = this.simulated.get(slot);
    if (!err || !this.hookedBuses.has(slot.address.bus)) return undefined;
    const pos = this.o.aer.aerCap(slot);
    if (!pos) return undefined;
    switch (offset - pos) {
      case PCI_ERR_UNCOR_STATUS:
        return { get: () => err.uncorStatus, set: (v) => (err.uncorStatus = v), rw1c: true };
      case PCI_ERR_COR_STATUS:
        return { get: () => err.corStatus, set: (v) => (err.corStatus = v), rw1c: true };
      case PCI_ERR_HEADER_LOG:
      case PCI_ERR_HEADER_LOG + 4:
      case PCI_ERR_HEADER_LOG + 8:
      case PCI_ERR_HEADER_LOG + 12: {
        const i = (offset - pos - PCI_ERR_HEADER_LOG) / 4;
        return { get: () => err.headerLog[i]!, set: (v) => (err.headerLog[i] = v), rw1c: false };
      }
      case PCI_ERR_ROOT_STATUS:
        return { get: () => err.rootStatus, set: (v) => (err.rootStatus = v), rw1c: true };
      case PCI_ERR_ROOT_ERR_SRC:
        return { get: () => err.sourceId, set: (v) => (err.sourceId = v), rw1c: false };
      default:
        return undefined;
    }
  }
}
