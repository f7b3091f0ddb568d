/**
 * PCI Express Advanced Error Reporting as Linux 7.3 runs it with CONFIG_PCIEAER
 * (drivers/pci/pcie/aer.c, err.c): each function with an AER capability gets its error counters
 * in sysfs and error reporting enabled at boot; a root port's AER service takes the error
 * messages it collects, counts and clears them, and for an uncorrectable error runs recovery over
 * everything below the port — every driver's error_detected (vfio-pci's signals the user's ERR
 * eventfd), and for a fatal one a secondary bus reset that restores nothing (the drivers' slot_reset
 * would; vfio-pci has none, so the user finds the device's BARs and command register cleared).
 *
 * Where the config reads of that flow land is left to `registers`: aer_inject (aer-inject.ts)
 * puts simulated status registers in front of a function's real ones.
 */
import {
  PCI_CAP_ID_EXP,
  PCI_ERR_COR_ADV_NFAT,
  PCI_ERR_COR_MASK,
  PCI_ERR_COR_STATUS,
  PCI_ERR_ROOT_CMD_EN_MASK,
  PCI_ERR_ROOT_COMMAND,
  PCI_ERR_ROOT_COR_RCV,
  PCI_ERR_ROOT_ERR_SRC,
  PCI_ERR_ROOT_FATAL_RCV,
  PCI_ERR_ROOT_MULTI_COR_RCV,
  PCI_ERR_ROOT_MULTI_UNCOR_RCV,
  PCI_ERR_ROOT_STATUS,
  PCI_ERR_ROOT_UNCOR_RCV,
  PCI_ERR_UNCOR_MASK,
  PCI_ERR_UNCOR_SEVER,
  PCI_ERR_UNCOR_STATUS,
  PCI_EXP_DEVCAP,
  PCI_EXP_DEVCAP_RBER,
  PCI_EXP_DEVCTL,
  PCI_EXP_DEVCTL_ERROR_REPORTING,
  PCI_EXP_DEVSTA,
  PCI_EXP_FLAGS,
  PCI_EXP_FLAGS_TYPE,
  PCI_EXP_TYPE_DOWNSTREAM,
  PCI_EXP_TYPE_ROOT_PORT,
  PCI_EXT_CAP_ID_ERR,
} from '../../uapi/pci';
import { fail } from '../errno';
import type { Capabilities } from '../../sys/kernel';
import type { Vfs } from '../vfs';
import { roAttr, rwAttr } from '../fs/nodes';
import type { PciBus, PciChannelState, PciErsResult } from './bus';
import type { PciSlot } from './host';
import { functionsBelow, isBridge } from './topology';
import { findExtendedCapability } from './ext-capability';

/** The lab kernels' CONFIG_HZ: the ratelimit attributes show jiffies and take milliseconds. */
const HZ = 250;
/** DEFAULT_RATELIMIT_INTERVAL (5 s) and DEFAULT_RATELIMIT_BURST. */
const RATELIMIT_INTERVAL_JIFFIES = 5 * HZ;
const RATELIMIT_BURST = 10;
/** AER_ERR_STATUS_MASK: the root status bits that mean an error message arrived. */
const AER_ERR_STATUS_MASK = 0x7f;

const COR_NAMES: readonly (string | null)[] = nameTable(32, {
  0: 'RxErr',
  6: 'BadTLP',
  7: 'BadDLLP',
  8: 'Rollover',
  12: 'Timeout',
  13: 'NonFatalErr',
  14: 'CorrIntErr',
  15: 'HeaderOF',
});
const UNCOR_NAMES: readonly (string | null)[] = nameTable(32, {
  0: 'Undefined',
  4: 'DLP',
  5: 'SDES',
  12: 'TLP',
  13: 'FCP',
  14: 'CmpltTO',
  15: 'CmpltAbrt',
  16: 'UnxCmplt',
  17: 'RxOF',
  18: 'MalfTLP',
  19: 'ECRC',
  20: 'UnsupReq',
  21: 'ACSViol',
  22: 'UncorrIntErr',
  23: 'BlockedTLP',
  24: 'AtomicOpBlocked',
  25: 'TLPBlockedErr',
  26: 'PoisonTLPBlocked',
  27: 'DMWrReqBlocked',
  28: 'IDECheck',
  29: 'MisIDETLP',
  30: 'PCRC_CHECK',
  31: 'TLPXlatBlocked',
});

function nameTable(n: number, names: Record<number, string>): (string | null)[] {
  return Array.from({ length: n }, (_, i) => names[i] ?? null);
}

type Severity = 'correctable' | 'nonfatal' | 'fatal';

/** struct aer_info: a function's error counters and print ratelimits. */
class AerInfo {
  readonly cor = new Array<number>(32).fill(0);
  readonly nonfatal = new Array<number>(32).fill(0);
  readonly fatal = new Array<number>(32).fill(0);
  totalCor = 0;
  totalNonfatal = 0;
  totalFatal = 0;
  rootCor = 0;
  rootNonfatal = 0;
  rootFatal = 0;
  readonly ratelimit = {
    correctable: { interval: RATELIMIT_INTERVAL_JIFFIES, burst: RATELIMIT_BURST },
    nonfatal: { interval: RATELIMIT_INTERVAL_JIFFIES, burst: RATELIMIT_BURST },
  };
}

/** How the AER core reaches a function's 32-bit config registers (pci_read/write_config_dword). */
export interface AerRegisterAccess {
  read(slot: PciSlot, offset: number): number;
  write(slot: PciSlot, offset: number, value: number): void;
}

export interface PcieAerOptions {
  readonly vfs: Vfs;
  readonly bus: PciBus;
  readonly functions: () => readonly PciSlot[];
  readonly devicePath: (slot: PciSlot) => string;
  readonly capabilities: () => Capabilities;
  /** Runs the AER service's threaded interrupt handler after the interrupt (default setImmediate). */
  readonly defer?: (work: () => void) => void;
}

/** The pcie type of a function (pci_pcie_type), or -1 without a PCIe capability. */
export function pcieType(slot: PciSlot): number {
  const exp = slot.device.config.findCapability(PCI_CAP_ID_EXP);
  if (!exp) return -1;
  return (slot.device.config.getRaw(exp + PCI_EXP_FLAGS, 2) & PCI_EXP_FLAGS_TYPE) >> 4;
}

/** pcie_find_root_port: the function itself or the first root port above it. */
export function rootPortOf(slot: PciSlot): PciSlot | undefined {
  for (let s: PciSlot | undefined = slot; s; s = s.upstream) if (pcieType(s) === PCI_EXP_TYPE_ROOT_PORT) return s;
  return undefined;
}

export class PcieAer {
  private readonly info = new Map<PciSlot, AerInfo>();
  private readonly errorState = new Map<PciSlot, PciChannelState>();
  /** Where config reads and writes go; aer_inject interposes here. */
  registers: AerRegisterAccess = {
    read: (slot, offset) => slot.device.config.read(offset, 4),
    write: (slot, offset, value) => slot.device.config.write(offset, 4, value),
  };

  constructor(private readonly o: PcieAerOptions) {}

  /** dev->aer_cap: where the function's AER capability is, 0 without one. */
  aerCap(slot: PciSlot): number {
    return findExtendedCapability(slot.device, PCI_EXT_CAP_ID_ERR);
  }

  /** Whether the AER service of a root port runs (it does for each root port with AER). */
  serviceRuns(rootPort: PciSlot): boolean {
    return this.info.has(rootPort) && pcieType(rootPort) === PCI_EXP_TYPE_ROOT_PORT;
  }

  /**
   * pci_aer_init at enumeration (the OS has native AER control on q35): counters and sysfs for a
   * function with AER, its status cleared, error reporting enabled, advisory non-fatal errors
   * unmasked where the function reports role-based errors; for a root port the AER service's
   * probe (aer_enable_rootport) enables error message interrupts.
   */
  addFunction(slot: PciSlot): void {
    const aer = this.aerCap(slot);
    if (!aer) return;
    const info = new AerInfo();
    this.info.set(slot, info);
    const c = slot.device.config;
    const exp = c.findCapability(PCI_CAP_ID_EXP);
    if (exp && c.getRaw(exp + PCI_EXP_DEVCAP, 4) & PCI_EXP_DEVCAP_RBER) {
      c.write(aer + PCI_ERR_COR_MASK, 4, c.read(aer + PCI_ERR_COR_MASK, 4) & ~PCI_ERR_COR_ADV_NFAT);
    }
    c.write(aer + PCI_ERR_COR_STATUS, 4, c.read(aer + PCI_ERR_COR_STATUS, 4));
    c.write(aer + PCI_ERR_UNCOR_STATUS, 4, c.read(aer + PCI_ERR_UNCOR_STATUS, 4));
    if (exp) c.write(exp + PCI_EXP_DEVCTL, 2, c.read(exp + PCI_EXP_DEVCTL, 2) | PCI_EXP_DEVCTL_ERROR_REPORTING);
    if (pcieType(slot) === PCI_EXP_TYPE_ROOT_PORT) {
      c.write(aer + PCI_ERR_ROOT_STATUS, 4, c.read(aer + PCI_ERR_ROOT_STATUS, 4));
      c.write(aer + PCI_ERR_ROOT_COMMAND, 4, c.read(aer + PCI_ERR_ROOT_COMMAND, 4) | PCI_ERR_ROOT_CMD_EN_MASK);
    }
    this.publish(slot, info);
  }

  /** The AER service's interrupt (aer_irq, then the thread's aer_isr). */
  raiseInterrupt(rootPort: PciSlot): void {
    const defer = this.o.defer ?? ((work: () => void) => void setImmediate(work));
    const aer = this.aerCap(rootPort);
    const status = this.registers.read(rootPort, aer + PCI_ERR_ROOT_STATUS);
    if (!(status & AER_ERR_STATUS_MASK)) return;
    const id = this.registers.read(rootPort, aer + PCI_ERR_ROOT_ERR_SRC);
    this.registers.write(rootPort, aer + PCI_ERR_ROOT_STATUS, status);
    defer(() => this.isrOneError(rootPort, status, id));
  }

  // ---- aer_isr_one_error ----

  private isrOneError(root: PciSlot, status: number, id: number): void {
    const info = this.info.get(root);
    if (info && status & PCI_ERR_ROOT_COR_RCV) info.rootCor++;
    if (info && status & PCI_ERR_ROOT_UNCOR_RCV) {
      if (status & PCI_ERR_ROOT_FATAL_RCV) info.rootFatal++;
      else info.rootNonfatal++;
    }
    if (status & PCI_ERR_ROOT_COR_RCV) {
      this.oneErrorType(root, { id: id & 0xffff, severity: 'correctable', multi: (status & PCI_ERR_ROOT_MULTI_COR_RCV) !== 0 });
    }
    if (status & PCI_ERR_ROOT_UNCOR_RCV) {
      const severity: Severity = status & PCI_ERR_ROOT_FATAL_RCV ? 'fatal' : 'nonfatal';
      this.oneErrorType(root, { id: id >>> 16, severity, multi: (status & PCI_ERR_ROOT_MULTI_UNCOR_RCV) !== 0 });
    }
  }

  private oneErrorType(root: PciSlot, e: { id: number; severity: Severity; multi: boolean }): void {
    const sources = this.findSourceDevices(root, e);
    // aer_process_err_devices: report (count) all before handling any, so a reset loses no record.
    const reports = sources.map((dev) => ({ dev, err: this.deviceErrorInfo(dev, e.severity) }));
    for (const { dev, err } of reports) if (err) this.countError(dev, e.severity, err.status & ~err.mask);
    for (const { dev } of reports) {
      const err = this.deviceErrorInfo(dev, e.severity);
      if (err) this.handleErrorSource(dev, e.severity, err.status);
    }
  }

  /** find_source_device: the root port first, then everything below it. */
  private findSourceDevices(root: PciSlot, e: { id: number; severity: Severity; multi: boolean }): PciSlot[] {
    const found: PciSlot[] = [];
    const visit = (dev: PciSlot): boolean => {
      if (!this.isErrorSource(dev, e)) return false;
      found.push(dev);
      return !e.multi;
    };
    if (visit(root)) return found;
    for (const dev of functionsBelow(root, this.o.functions())) if (visit(dev)) break;
    return found;
  }

  private isErrorSource(dev: PciSlot, e: { id: number; severity: Severity; multi: boolean }): boolean {
    if (e.id >> 8 !== 0) {
      if (e.id === devId(dev)) return true;
      if (!e.multi) return false;
    }
    const exp = dev.device.config.findCapability(PCI_CAP_ID_EXP);
    if (!exp || !(dev.device.config.read(exp + PCI_EXP_DEVCTL, 2) & PCI_EXP_DEVCTL_ERROR_REPORTING)) return false;
    const aer = this.aerCap(dev);
    if (!aer) return false;
    const [statusReg, maskReg] =
      e.severity === 'correctable' ? [PCI_ERR_COR_STATUS, PCI_ERR_COR_MASK] : [PCI_ERR_UNCOR_STATUS, PCI_ERR_UNCOR_MASK];
    return (this.registers.read(dev, aer + statusReg) & ~this.registers.read(dev, aer + maskReg)) !== 0;
  }

  /** aer_get_device_error_info: the status and mask the error left, or undefined when it left none. */
  private deviceErrorInfo(dev: PciSlot, severity: Severity): { status: number; mask: number } | undefined {
    const aer = this.aerCap(dev);
    if (!aer) return undefined;
    const type = pcieType(dev);
    let status: number;
    let mask: number;
    if (severity === 'correctable') {
      status = this.registers.read(dev, aer + PCI_ERR_COR_STATUS);
      mask = this.registers.read(dev, aer + PCI_ERR_COR_MASK);
    } else if (type === PCI_EXP_TYPE_ROOT_PORT || type === PCI_EXP_TYPE_DOWNSTREAM || severity === 'nonfatal') {
      status = this.registers.read(dev, aer + PCI_ERR_UNCOR_STATUS);
      mask = this.registers.read(dev, aer + PCI_ERR_UNCOR_MASK);
    } else {
      return undefined;
    }
    return (status & ~mask) !== 0 ? { status, mask } : undefined;
  }

  /** pci_dev_aer_stats_incr (from aer_print_error). */
  private countError(dev: PciSlot, severity: Severity, bits: number): void {
    const info = this.info.get(dev);
    if (!info) return;
    const counters = severity === 'correctable' ? info.cor : severity === 'nonfatal' ? info.nonfatal : info.fatal;
    if (severity === 'correctable') info.totalCor++;
    else if (severity === 'nonfatal') info.totalNonfatal++;
    else info.totalFatal++;
    const max = severity === 'correctable' ? 16 : 32;
    for (let i = 0; i < max; i++) if ((bits >>> i) & 1) counters[i]!++;
  }

  /** pci_aer_handle_error. */
  private handleErrorSource(dev: PciSlot, severity: Severity, status: number): void {
    if (severity === 'correctable') {
      const aer = this.aerCap(dev);
      if (aer) this.registers.write(dev, aer + PCI_ERR_COR_STATUS, status);
      this.clearDeviceStatus(dev);
      return;
    }
    this.doRecovery(dev, severity === 'fatal' ? 'frozen' : 'normal');
  }

  // ---- pcie_do_recovery ----

  private doRecovery(dev: PciSlot, state: 'normal' | 'frozen'): void {
    const type = pcieType(dev);
    const bridge = type === PCI_EXP_TYPE_ROOT_PORT || type === PCI_EXP_TYPE_DOWNSTREAM ? dev : (dev.upstream ?? dev);
    const affected = isBridge(bridge.device) ? functionsBelow(bridge, this.o.functions()) : [bridge];
    let status: PciErsResult = 'can-recover';
    for (const d of affected) status = mergeResult(status, this.reportErrorDetected(d, state));
    if (status === 'can-recover') {
      status = 'recovered';
      for (const d of affected) {
        const vote = this.o.bus.driverOf(d)?.errorHandlers?.mmioEnabled?.(d);
        if (vote) status = mergeResult(status, vote);
      }
    }
    let failed = false;
    if (status === 'need-reset' || state === 'frozen') {
      if (!this.rootReset(bridge)) failed = true;
    }
    if (!failed && status === 'need-reset') {
      status = 'recovered';
      for (const d of affected) {
        if (!this.setIoState(d, 'normal')) continue;
        const vote = this.o.bus.driverOf(d)?.errorHandlers?.slotReset?.(d);
        if (vote) status = mergeResult(status, vote);
      }
    }
    if (failed || status !== 'recovered') {
      for (const d of affected) {
        this.setIoState(d, 'perm-failure');
        this.o.bus.driverOf(d)?.errorHandlers?.errorDetected?.(d, 'perm-failure');
      }
      return;
    }
    for (const d of affected) {
      if (this.setIoState(d, 'normal')) this.o.bus.driverOf(d)?.errorHandlers?.resume?.(d);
    }
    this.clearDeviceStatus(dev);
    this.clearNonfatalStatus(dev);
  }

  private reportErrorDetected(dev: PciSlot, state: 'normal' | 'frozen'): PciErsResult {
    if (!this.setIoState(dev, state)) return 'none';
    const handler = this.o.bus.driverOf(dev)?.errorHandlers?.errorDetected;
    if (!handler) return isBridge(dev.device) ? 'none' : 'no-aer-driver';
    return handler(dev, state);
  }

  /** pci_dev_set_io_state. */
  private setIoState(dev: PciSlot, next: PciChannelState): boolean {
    const old = this.errorState.get(dev) ?? 'normal';
    if (next === 'perm-failure') {
      this.errorState.set(dev, next);
      return true;
    }
    if (old === 'perm-failure') return false;
    if ((next === 'frozen' && old === 'normal') || (next === 'normal' && old === 'frozen')) this.errorState.set(dev, next);
    return true;
  }

  /**
   * aer_root_reset for a root port: its error interrupts off, a secondary bus reset that saves and
   * restores nothing (pci_bus_error_reset), the root status cleared, the interrupts on again.
   */
  private rootReset(bridge: PciSlot): boolean {
    const root = rootPortOf(bridge);
    const aer = root ? this.aerCap(root) : 0;
    if (root && aer) {
      const cmd = this.registers.read(root, aer + PCI_ERR_ROOT_COMMAND);
      this.registers.write(root, aer + PCI_ERR_ROOT_COMMAND, cmd & ~PCI_ERR_ROOT_CMD_EN_MASK);
    }
    if (!isBridge(bridge.device)) return false;
    for (const d of functionsBelow(bridge, this.o.functions())) d.device.busReset();
    if (root && aer) {
      const status = this.registers.read(root, aer + PCI_ERR_ROOT_STATUS);
      this.registers.write(root, aer + PCI_ERR_ROOT_STATUS, status);
      const cmd = this.registers.read(root, aer + PCI_ERR_ROOT_COMMAND);
      this.registers.write(root, aer + PCI_ERR_ROOT_COMMAND, cmd | PCI_ERR_ROOT_CMD_EN_MASK);
    }
    return true;
  }

  /** pcie_clear_device_status: Device Status's error bits are write-1-to-clear. */
  private clearDeviceStatus(dev: PciSlot): void {
    const c = dev.device.config;
    const exp = c.findCapability(PCI_CAP_ID_EXP);
    if (exp) c.write(exp + PCI_EXP_DEVSTA, 2, c.read(exp + PCI_EXP_DEVSTA, 2));
  }

  /** pci_aer_clear_nonfatal_status: clears the uncorrectable bits the severity register calls non-fatal. */
  private clearNonfatalStatus(dev: PciSlot): void {
    const aer = this.aerCap(dev);
    if (!aer) return;
    const status = this.registers.read(dev, aer + PCI_ERR_UNCOR_STATUS);
    const sever = this.registers.read(dev, aer + PCI_ERR_UNCOR_SEVER);
    const nonfatal = status & ~sever;
    if (nonfatal) this.registers.write(dev, aer + PCI_ERR_UNCOR_STATUS, nonfatal);
  }

  // ---- sysfs ----

  private publish(slot: PciSlot, info: AerInfo): void {
    const { vfs } = this.o;
    const dir = this.o.devicePath(slot);
    const table = (counters: number[], names: readonly (string | null)[], array: string, total: string, totalOf: () => number) => () => {
      let out = '';
      counters.forEach((n, i) => {
        const name = names[i];
        if (name) out += `${name} ${n}\n`;
        else if (n) out += `${array}_bit[${i}] ${n}\n`;
      });
      return `${out}TOTAL_${total} ${totalOf()}\n`;
    };
    vfs.add(
      `${dir}/aer_dev_correctable`,
      roAttr(() => table(info.cor.slice(0, 16), COR_NAMES, 'dev_cor_errs', 'ERR_COR', () => info.totalCor)()),
    );
    vfs.add(
      `${dir}/aer_dev_fatal`,
      roAttr(() => table(info.fatal, UNCOR_NAMES, 'dev_fatal_errs', 'ERR_FATAL', () => info.totalFatal)()),
    );
    vfs.add(
      `${dir}/aer_dev_nonfatal`,
      roAttr(() => table(info.nonfatal, UNCOR_NAMES, 'dev_nonfatal_errs', 'ERR_NONFATAL', () => info.totalNonfatal)()),
    );
    if (pcieType(slot) === PCI_EXP_TYPE_ROOT_PORT) {
      vfs.add(
        `${dir}/aer_rootport_total_err_cor`,
        roAttr(() => `${info.rootCor}\n`),
      );
      vfs.add(
        `${dir}/aer_rootport_total_err_fatal`,
        roAttr(() => `${info.rootFatal}\n`),
      );
      vfs.add(
        `${dir}/aer_rootport_total_err_nonfatal`,
        roAttr(() => `${info.rootNonfatal}\n`),
      );
    }
    vfs.mkdir(`${dir}/aer`);
    for (const kind of ['correctable', 'nonfatal'] as const) {
      const limit = info.ratelimit[kind];
      vfs.add(
        `${dir}/aer/${kind}_ratelimit_interval_ms`,
        rwAttr(
          () => `${limit.interval}\n`,
          (data) => {
            const ms = this.storeInt(data);
            // The store takes milliseconds; the show prints the jiffies it keeps.
            limit.interval = ms <= 0 ? 0 : Math.ceil((ms * HZ) / 1000);
          },
        ),
      );
      vfs.add(
        `${dir}/aer/${kind}_ratelimit_burst`,
        rwAttr(
          () => `${limit.burst}\n`,
          (data) => {
            limit.burst = this.storeInt(data);
          },
        ),
      );
    }
  }

  /** capable(CAP_SYS_ADMIN), then kstrtoint(buf, 0). */
  private storeInt(data: Buffer): number {
    if (!this.o.capabilities().sysAdmin) fail('EPERM', 'changing an AER ratelimit needs CAP_SYS_ADMIN');
    const text = data.toString('latin1').replace(/\n$/, '');
    const m = /^([+-]?)(0x[0-9a-f]+|0[0-7]*|[1-9][0-9]*)$/i.exec(text);
    if (!m) fail('EINVAL', `'${text}' is not an integer`);
    const body = m[2]!;
    const magnitude = body.toLowerCase().startsWith('0x')
      ? parseInt(body, 16)
      : body.length > 1 && body.startsWith('0')
        ? parseInt(body, 8)
        : parseInt(body, 10);
    const value = m[1] === '-' ? -magnitude : magnitude;
    if (value > 0x7fffffff || value < -0x80000000) fail('ERANGE', `${text} does not fit an int`);
    return value;
  }
}

function devId(slot: PciSlot): number {
  return (slot.address.bus << 8) | (slot.address.device << 3) | slot.address.func;
}

/** merge_result in drivers/pci/pcie/err.c. */
function mergeResult(orig: PciErsResult, next: PciErsResult): PciErsResult {
  if (next === 'no-aer-driver') return 'no-aer-driver';
  if (next === 'none') return orig;
  if (orig === 'can-recover' || orig === 'recovered') return next;
  if (orig === 'disconnect' && next === 'need-reset') return 'need-reset';
  return orig;
}
