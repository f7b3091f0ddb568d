/**
 * The base class of every device model, the project's and its users': extend it, describe the
 * device in the constructor's definition, install MMIO handlers for the BARs, and use what the
 * class hands the device — `dma`, `setIntx`, `notifyMsi`, `notifyMsix`, `clock`, `record`.
 *
 *   class Timer extends DeviceModel {
 *     constructor() {
 *       super({ model: 'timer', identity: { vendorId: 0x1234, deviceId: 0x0001, classCode: 0x088000 },
 *               bars: [{ index: 0, size: 0x1000n, type: 'memory32' }], capabilities: [msiCapability()] });
 *       this.handleMmio(0, { widths: [32], read: (offset) => …, write: (offset, _w, value) => … });
 *     }
 *   }
 *
 * The host side of the model (vfio-pci, sysfs, the PCI bus) drives the same object through the
 * PciDeviceModel methods (`mmioRead`, `mmioWrite`, `connect`, `functionReset`, …): those are for
 * the machine, not for the device's own code. Everything that can go wrong inside the device — an
 * access width it does not decode, DMA that faults, a handler that throws — ends in the event log
 * and fails the access the way a real function would, never in the host's state.
 */
import {
  PCI_BASE_ADDRESS_0,
  PCI_CACHE_LINE_SIZE,
  PCI_CFG_SPACE_SIZE,
  PCI_COMMAND,
  PCI_COMMAND_INTX_DISABLE,
  PCI_COMMAND_MASTER,
  PCI_COMMAND_MEMORY,
  PCI_INTERRUPT_LINE,
  PCI_STATUS,
  PCI_STATUS_INTERRUPT,
  PCI_STD_HEADER_SIZEOF,
} from '../../uapi/pci';
import { DISCONNECTED_DMA } from '../pci/dma';
import { DISCONNECTED_INTERRUPTS, type InterruptSink } from '../pci/interrupts';
import type { PciBarInfo, PciDeviceModel, PciHostPort } from '../pci/device-model';
import type { PciConfigSpace } from '../pci/physical-config-space';
import { layoutConfig, PCIE, writeBarRegister, type ConfigLayout } from './config-layout';
import type { AccessWidth, DeviceDefinition, MmioHandler } from './definition';
import { DeviceFaults, type FaultPointSpec } from './device-faults';
import { DeviceDma } from './dma';
import { DeviceTimers } from './device-timers';
import { DeviceEventError, DeviceEventLog, type DeviceEvent, type DeviceEventKind } from './events';
import { DeviceModelError } from './model-error';
import { MsiFunction } from './msi';
import { MsixFunction } from './msix';
import { PCI_EXT_CAP_ID_SRIOV, SRIOV } from './sriov-capability';

/**
 * Which reset a device model is told about in its reset hook: a function-level or a bus reset.
 *
 * @category Device-model SDK
 */
export type ResetKind = 'function' | 'bus';

const U64 = (1n << 64n) - 1n;
const ONES: Readonly<Record<AccessWidth, bigint>> = { 8: 0xffn, 16: 0xffffn, 32: 0xffff_ffffn, 64: U64 };
const PM_CTRL = 4;
const PM_STATE_MASK = 0x3;
const PM_D3HOT = 3;

/** One BAR as the dispatcher sees it. */
interface BarRegion {
  readonly index: number;
  readonly size: number;
  handler: MmioHandler | undefined;
  /** Accepted widths in bytes as bits (1, 2, 4, 8). */
  widthBits: number;
  unaligned: boolean;
  invalidOnes: boolean;
  readonly ram: Uint8Array | undefined;
  /** The MSI-X table / PBA windows inside this BAR, [start, end) in bytes; end 0 when absent. */
  tableStart: number;
  tableEnd: number;
  pbaStart: number;
  pbaEnd: number;
}

/**
 * The base class of every device model: extend it, give the definition to `super`, install
 * MMIO handlers, and use `dma`, `setIntx`, `notifyMsi`, `notifyMsix`, `clock` and `record`.
 * docs/device-models.md is the tutorial.
 *
 * @example
 * ```ts
 * class Timer extends DeviceModel {
 *   constructor() {
 *     super({ model: 'timer', identity: { vendorId: 0x1234, deviceId: 0x0001, classCode: 0x088000 },
 *             bars: [{ index: 0, size: 0x1000n, type: 'memory32' }], capabilities: [msiCapability()] });
 *     this.handleMmio(0, { widths: [32], read: () => 0n, write: () => {} });
 *   }
 * }
 * const kernel = createModelKernel({ base: 'linux-7.3-noiommu', devices: [{ address: '0000:00:05.0', model: new Timer() }] });
 * ```
 *
 * @category Device-model SDK
 */
export class DeviceModel implements PciDeviceModel {
  /** The model's name, as the definition gave it. */
  readonly model: string;
  readonly vendorId: number;
  readonly deviceId: number;
  readonly subsystemVendorId: number;
  readonly subsystemId: number;
  readonly classCode: number;
  readonly revision: number;
  /** Interrupt pin register: 0 none, 1 INTA … 4 INTD. */
  readonly interruptPin: number;
  /** The function's physical config space (what the host kernel's config accessors reach). */
  readonly config: PciConfigSpace;
  readonly bars: readonly (PciBarInfo | undefined)[];
  /** DMA at bus addresses, within the device's DMA mask. */
  readonly dma: DeviceDma;
  /** Virtual time: `clock.after(µs, work)` completes an operation later. */
  readonly clock: DeviceTimers;
  private readonly layout: ConfigLayout;
  private readonly regions: (BarRegion | undefined)[] = [];
  private readonly log = new DeviceEventLog();
  private readonly msiState: MsiFunction | undefined;
  private readonly msixState: MsixFunction | undefined;
  private readonly powerOn: Uint8Array;
  private interrupts: InterruptSink = DISCONNECTED_INTERRUPTS;
  private connected = false;
  private intxAsserted = false;
  private intxLineOut = false;
  private failedState = false;
  private pmState = 0;

  /** An SR-IOV VF: its BAR addresses come from the PF's VF BARs, not its own registers. */
  readonly virtualFunction: boolean;
  private readonly vfBarAddresses: bigint[] = [];

  constructor(definition: DeviceDefinition) {
    const layout = layoutConfig(definition);
    this.virtualFunction = definition.virtualFunction === true;
    this.layout = layout;
    this.model = definition.model;
    const id = definition.identity;
    this.vendorId = id.vendorId;
    this.deviceId = id.deviceId;
    this.subsystemVendorId = id.subsystemVendorId ?? id.vendorId;
    this.subsystemId = id.subsystemId ?? id.deviceId;
    this.classCode = id.classCode;
    this.revision = id.revision ?? 0;
    this.interruptPin = layout.interruptPin;
    this.config = layout.config;
    this.bars = layout.bars;
    const dmaMask = definition.dmaMask ?? U64;
    if (typeof dmaMask !== 'bigint' || dmaMask <= 0n || dmaMask > U64 || (dmaMask & (dmaMask + 1n)) !== 0n) {
      throw new DeviceModelError(this.model, 'DMA mask', `0x${String(dmaMask)} is not of the form 2^n - 1 within 64 bits`);
    }
    this.dma = new DeviceDma({ configBytes: this.config.bytes, record: (e) => this.record(e) }, dmaMask);
    this.clock = new DeviceTimers((what, e) => this.modelFailed(what, e));
    const send = (what: string, address: bigint, data: number) => this.sendMessage(what, address, data);
    this.msiState = layout.msi ? new MsiFunction(this.config, layout.msi, send) : undefined;
    this.msixState = layout.msix ? new MsixFunction(this.config, layout.msix, send) : undefined;
    for (const b of layout.barDeclarations) {
      if (!b) continue;
      const size = Number(b.size);
      const ram = b.ram ? new Uint8Array(size) : undefined;
      const region: BarRegion = {
        index: b.index,
        size,
        handler: undefined,
        widthBits: 0xf,
        unaligned: false,
        invalidOnes: false,
        ram,
        tableStart: 0,
        tableEnd: 0,
        pbaStart: 0,
        pbaEnd: 0,
      };
      this.regions[b.index] = region;
      if (ram) this.installHandler(region, ramHandler(ram));
    }
    const msix = layout.msix;
    if (msix && this.msixState) {
      const table = this.regions[msix.tableBar]!;
      table.tableStart = msix.tableOffset;
      table.tableEnd = msix.tableOffset + this.msixState.tableSize;
      const pba = this.regions[msix.pbaBar]!;
      pba.pbaStart = msix.pbaOffset;
      pba.pbaEnd = msix.pbaOffset + this.msixState.pba.length;
    }
    this.config.onWrite((offset, width) => this.configWritten(offset, width));
    this.powerOn = this.config.bytes.slice();
  }

  // ---- what the device's own code uses ----

  /**
   * Installs the MMIO handler of a BAR that is not RAM. An access before a handler is installed is
   * a 'model-error' and reads all ones.
   */
  handleMmio(bar: number, handler: MmioHandler): void {
    const region = this.regions[bar];
    if (!region) throw new DeviceModelError(this.model, 'MMIO handler for a declared BAR', `BAR ${bar} is not declared`);
    if (region.ram) throw new DeviceModelError(this.model, 'MMIO handler for a declared BAR', `BAR ${bar} is RAM-backed`);
    if (this.bars[bar]!.space === 'io' && handler.widths?.includes(64)) {
      throw new DeviceModelError(this.model, 'I/O BAR access widths', `BAR ${bar} is an I/O BAR: port accesses are at most 32 bits`);
    }
    this.installHandler(region, handler);
  }

  /**
   * Declares the device's fault points (device-faults.ts) and returns them, typed, for the device
   * to pass (`faults.hit(name, subject, effect)`) and for tests to arm (`faults.arm(name, trigger)`).
   * Fired faults go to this device's event log.
   */
  protected declareFaults<P extends Record<string, FaultPointSpec<never, unknown>>>(points: P): DeviceFaults<P> {
    return new DeviceFaults(this.model, points, (e) => this.record(e));
  }

  /** The bytes of a RAM-backed BAR (what the driver sees through it). */
  ram(bar: number): Uint8Array {
    const ram = this.regions[bar]?.ram;
    if (!ram) throw new DeviceModelError(this.model, 'RAM of a RAM-backed BAR', `BAR ${bar} is not declared with ram: true`);
    return ram;
  }

  /** The Command register as the device sees it (after vfio-pci's virtualisation). */
  get command(): number {
    return this.config.getRaw(PCI_COMMAND, 2);
  }
  /** Memory Space Enable: while clear, BAR accesses do not reach the device. */
  get memoryDecodeEnabled(): boolean {
    return (this.command & PCI_COMMAND_MEMORY) !== 0;
  }
  /** Bus Master Enable: while clear, the device's DMA and MSI are blocked (a guest error in the log). */
  get busMasterEnabled(): boolean {
    return (this.config.bytes[PCI_COMMAND]! & PCI_COMMAND_MASTER) !== 0;
  }

  /** Drives the INTx pin (pci_set_irq): sets the status bit; the line follows unless INTx is disabled. */
  setIntx(asserted: boolean): void {
    this.intxAsserted = asserted;
    this.updateIntx();
  }

  /** The INTx level as seen outside the function. */
  get intxLine(): boolean {
    return this.intxLineOut;
  }

  /** MSI is enabled in the function's capability. */
  get msiEnabled(): boolean {
    return this.msiState?.enabled ?? false;
  }

  /** Signals MSI vector `vector` (dropped while disabled, masked or beyond the enabled count). */
  notifyMsi(vector: number): void {
    if (!this.msiState)
      throw new DeviceModelError(this.model, 'MSI needs an msiCapability()', `notifyMsi(${vector}) on a device without one`);
    this.msiState.notify(vector);
  }

  /** MSI-X is enabled in the function's capability. */
  get msixEnabled(): boolean {
    return this.msixState?.enabled ?? false;
  }

  /** Signals MSI-X vector `vector`: sent now, or held as pending while masked. */
  notifyMsix(vector: number): void {
    this.msix('notifyMsix').notify(vector);
  }

  /** Whether MSI-X vector `vector` is masked (disabled, function mask, or its own mask bit). */
  msixMasked(vector: number): boolean {
    return this.msix('msixMasked').masked(vector);
  }

  /** Whether MSI-X vector `vector` has its pending bit set. */
  msixPending(vector: number): boolean {
    return this.msix('msixPending').pending(vector);
  }

  /**
   * The MSI-X table size the capability advertises to the host, which reads it when it enables
   * MSI-X (QEMU's NVMe controller narrows it to the vectors a controller was given): 1 to the
   * vectors the capability declares, whose table and pending bits stay in place.
   */
  get msixTableSize(): number {
    return this.msix('msixTableSize').advertisedSize;
  }

  /** Advertises `entries` table entries (1..the vectors declared); anything else is a DeviceModelError. */
  set msixTableSize(entries: number) {
    const msix = this.msix('msixTableSize');
    if (!Number.isInteger(entries) || entries < 1 || entries > msix.layout.vectors)
      throw new DeviceModelError(
        this.model,
        `an MSI-X table size of 1..${msix.layout.vectors} (the vectors declared)`,
        `msixTableSize = ${entries}`,
      );
    msix.advertisedSize = entries;
  }

  /** Everything noteworthy the device did, oldest first. */
  get events(): readonly DeviceEvent[] {
    return this.log.entries;
  }

  /** Adds an event to the log (strict mode may turn it into a DeviceEventError). */
  record(event: DeviceEvent): void {
    this.log.record(event);
  }

  onEvent(listener: (e: DeviceEvent) => void): () => void {
    return this.log.subscribe(listener);
  }

  /** Strict mode: events of `kinds` (default: every kind) throw a DeviceEventError where they happen. */
  strict(kinds: readonly DeviceEventKind[] | boolean = true): void {
    this.log.setStrict(kinds);
  }

  /** True once the emulated hardware hit a fatal error (see `fail`). */
  get failed(): boolean {
    return this.failedState;
  }

  /**
   * The hardware stops working (QEMU would abort the VM): pending work is cancelled, INTx drops,
   * reads return all ones and writes are ignored from now on, like a device that fell off the bus.
   */
  fail(message: string): void {
    this.failedState = true;
    this.clock.cancelAll();
    this.setIntx(false);
    this.record({ kind: 'hardware-error', message });
  }

  /** True once the function left the bus (see `removeFromBus`). */
  get removed(): boolean {
    return this.config.absent;
  }

  /**
   * The function stops existing while the host still lists it, as QEMU unrealizes an SR-IOV
   * PF's VFs when the PF resets (the host is not told; it finds out when it looks): config space
   * reads all ones and ignores writes, BARs read 0 and ignore writes, no DMA, no interrupts.
   * For a PF model to call on the VFs it created; the host's next VF enable creates new ones.
   */
  removeFromBus(): void {
    this.config.absent = true;
    this.setIntx(false);
    this.disconnect();
  }

  /** Whether Linux can reset this function alone: FLR in the PCIe capability, or a PM reset. */
  get supportsFunctionReset(): boolean {
    return this.layout.flr || this.layout.pmReset;
  }

  /**
   * The device's own part of a reset; override it to bring registers back to their power-on
   * values. The SDK has already cancelled scheduled work, reset config space, MSI and MSI-X, and
   * released INTx when it runs.
   */
  onReset(kind: ResetKind): void {
    void kind;
  }

  /**
   * Override in a model whose definition lists a sriovCapability(): the function for VF `index`
   * (0-based), created when software enables VFs through sriov_numvfs and dropped when it
   * disables them. The default offers none, which the host treats as a PF without VFs to give.
   */
  createVirtualFunction(index: number): DeviceModel | undefined {
    void index;
    return undefined;
  }

  // ---- what the host drives (PciDeviceModel) ----

  /** For a VF: where the PF's VF BAR `index` puts this function's BAR (the host calls it). */
  setVirtualFunctionBar(index: number, address: bigint): void {
    if (!this.virtualFunction) throw new Error(`device model '${this.model}': setVirtualFunctionBar on a function that is not a VF`);
    if (!this.bars[index]) throw new RangeError(`device model '${this.model}': VF BAR ${index} does not exist`);
    this.vfBarAddresses[index] = address;
  }

  barAddress(index: number): bigint {
    const bar = this.bars[index];
    if (!bar) return 0n;
    if (this.virtualFunction) return this.vfBarAddresses[index] ?? 0n;
    const reg = PCI_BASE_ADDRESS_0 + index * 4;
    const lo = BigInt(this.config.getRaw(reg, 4) & (bar.space === 'io' ? ~0x3 : ~0xf)) & 0xffff_ffffn;
    const hi = bar.is64bit ? BigInt(this.config.getRaw(reg + 4, 4)) : 0n;
    return (hi << 32n) | lo;
  }

  mmioRead(bar: number, offset: bigint, width: AccessWidth): bigint {
    const region = this.regions[bar];
    const bytes = width >>> 3;
    const off = Number(offset);
    if (this.config.absent) return 0n;
    if (region === undefined || off < 0 || off + bytes > region.size || this.failedState) return ONES[width];
    if (off < region.tableEnd && off + bytes > region.tableStart) return this.msixRead(region, off, width, 'table');
    if (off < region.pbaEnd && off + bytes > region.pbaStart) return this.msixRead(region, off, width, 'pba');
    const handler = region.handler;
    if (handler === undefined) return this.noHandler(region, off, width, 'read');
    if (!(region.widthBits & bytes) || (!region.unaligned && off % bytes !== 0)) {
      this.invalidAccess(region, off, width, 'read');
      return region.invalidOnes ? ONES[width] : 0n;
    }
    let value: bigint;
    try {
      value = handler.read(off, width);
    } catch (e) {
      this.modelFailed(`BAR${bar} read handler at 0x${off.toString(16)} (${width}-bit)`, e);
      return ONES[width];
    }
    if (typeof value !== 'bigint') {
      this.modelFailed(
        `BAR${bar} read handler at 0x${off.toString(16)} (${width}-bit)`,
        new TypeError(`returned ${typeof value}, not a bigint`),
      );
      return ONES[width];
    }
    return value & ONES[width];
  }

  mmioWrite(bar: number, offset: bigint, width: AccessWidth, value: bigint): void {
    const region = this.regions[bar];
    const bytes = width >>> 3;
    const off = Number(offset);
    if (region === undefined || off < 0 || off + bytes > region.size || this.failedState || this.config.absent) return;
    if (off < region.tableEnd && off + bytes > region.tableStart) {
      this.msixWrite(region, off, width, value, 'table');
      return;
    }
    if (off < region.pbaEnd && off + bytes > region.pbaStart) {
      this.msixWrite(region, off, width, value, 'pba');
      return;
    }
    const handler = region.handler;
    if (handler === undefined) {
      this.noHandler(region, off, width, 'write');
      return;
    }
    if (!(region.widthBits & bytes) || (!region.unaligned && off % bytes !== 0)) {
      this.invalidAccess(region, off, width, 'write');
      return;
    }
    try {
      handler.write(off, width, value & ONES[width]);
    } catch (e) {
      this.modelFailed(`BAR${bar} write handler at 0x${off.toString(16)} (${width}-bit)`, e);
    }
  }

  connect(host: PciHostPort): void {
    this.dma.attach(host.dma, host.behindIommu ?? false);
    this.interrupts = host.interrupts;
    if (host.clock) this.clock.use(host.clock);
    this.connected = true;
    this.intxLineOut = false;
    this.updateIntx();
  }

  disconnect(): void {
    this.clock.cancelAll();
    this.dma.attach(DISCONNECTED_DMA, false);
    this.interrupts = DISCONNECTED_INTERRUPTS;
    this.connected = false;
    this.intxLineOut = false;
  }

  /** Whether a host is connected (a model is placed in one machine at a time). */
  get isConnected(): boolean {
    return this.connected;
  }

  functionReset(): void {
    if (!this.supportsFunctionReset) throw new Error(`${this.model} has no function reset`);
    this.reset('function');
  }

  busReset(): void {
    this.reset('bus');
  }

  // ---- inside ----

  private installHandler(region: BarRegion, handler: MmioHandler): void {
    const widths = handler.widths ?? [8, 16, 32, 64];
    let bits = 0;
    for (const w of widths) {
      if (w !== 8 && w !== 16 && w !== 32 && w !== 64)
        throw new DeviceModelError(this.model, 'MMIO access widths', `${String(w)} is not 8, 16, 32 or 64`);
      bits |= w >>> 3;
    }
    region.handler = handler;
    region.widthBits = bits;
    region.unaligned = handler.unaligned ?? false;
    region.invalidOnes = handler.invalidRead === 'ones';
  }

  private msix(what: string): MsixFunction {
    if (!this.msixState) throw new DeviceModelError(this.model, 'MSI-X needs an msixCapability()', `${what} on a device without one`);
    return this.msixState;
  }

  /** The MSI-X table and PBA decode 4- and 8-byte aligned accesses that lie inside them. */
  private msixAccessValid(region: BarRegion, off: number, width: AccessWidth, kind: 'read' | 'write', which: 'table' | 'pba'): boolean {
    const start = which === 'table' ? region.tableStart : region.pbaStart;
    const end = which === 'table' ? region.tableEnd : region.pbaEnd;
    const bytes = width >>> 3;
    if ((width === 32 || width === 64) && off % bytes === 0 && off >= start && off + bytes <= end) return true;
    this.record({
      kind: 'guest-error',
      message:
        `invalid ${bytes}-byte MMIO ${kind} at BAR${region.index}+0x${off.toString(16)}: the MSI-X ${which === 'table' ? 'table' : 'pending-bit array'} ` +
        `(0x${start.toString(16)}..0x${(end - 1).toString(16)}) accepts 4- and 8-byte aligned accesses inside it`,
    });
    return false;
  }

  private msixRead(region: BarRegion, off: number, width: AccessWidth, which: 'table' | 'pba'): bigint {
    if (!this.msixAccessValid(region, off, width, 'read', which)) return 0n;
    const m = this.msixState!;
    return which === 'table' ? m.tableRead(off - region.tableStart, width) : m.pbaRead(off - region.pbaStart, width);
  }

  private msixWrite(region: BarRegion, off: number, width: AccessWidth, value: bigint, which: 'table' | 'pba'): void {
    if (!this.msixAccessValid(region, off, width, 'write', which)) return;
    if (which === 'table') this.msixState!.tableWrite(off - region.tableStart, width, value & ONES[width]);
  }

  private invalidAccess(region: BarRegion, off: number, width: AccessWidth, kind: 'read' | 'write'): void {
    const accepted = [1, 2, 4, 8].filter((b) => region.widthBits & b);
    const list = accepted.length === 1 ? `${accepted[0]}-byte` : `${accepted.slice(0, -1).join('-, ')}- and ${accepted.at(-1)}-byte`;
    this.record({
      kind: 'guest-error',
      message: `invalid ${width / 8}-byte MMIO ${kind} at BAR${region.index}+0x${off.toString(16)}: ${this.model} accepts ${list}${region.unaligned ? '' : ' aligned'} accesses`,
    });
  }

  private noHandler(region: BarRegion, off: number, width: AccessWidth, kind: 'read' | 'write'): bigint {
    this.record({
      kind: 'model-error',
      message: `device model '${this.model}': ${width}-bit ${kind} at BAR${region.index}+0x${off.toString(16)} reached no MMIO handler (call handleMmio(${region.index}, …) in the constructor)`,
    });
    return ONES[width];
  }

  /** A device model's code threw: the access fails like a broken device's, the log says why. */
  private modelFailed(what: string, e: unknown): void {
    if (e instanceof DeviceEventError) throw e;
    const reason = e instanceof Error ? e.message : String(e);
    this.record({
      kind: 'model-error',
      message: `device model '${this.model}': ${what} threw: ${reason}; the access failed as on a broken device (reads all ones, writes lost)`,
      cause: e,
    });
  }

  private sendMessage(what: string, address: bigint, data: number): void {
    if (!this.busMasterEnabled) {
      this.record({ kind: 'dma-blocked', message: `${what} not sent: bus mastering is disabled` });
      return;
    }
    this.interrupts.messageWrite(address, data);
  }

  private updateIntx(): void {
    const status = this.config.getRaw(PCI_STATUS, 2);
    this.config.setRaw(PCI_STATUS, 2, this.intxAsserted ? status | PCI_STATUS_INTERRUPT : status & ~PCI_STATUS_INTERRUPT);
    const out = this.intxAsserted && this.interruptPin !== 0 && !(this.command & PCI_COMMAND_INTX_DISABLE);
    if (out !== this.intxLineOut) {
      this.intxLineOut = out;
      this.interrupts.intxLevel(out);
    }
  }

  /**
   * Reacts to software config writes: the command register gates INTx; writes to an enabled MSI
   * or MSI-X capability release INTx (msi_write_config, msix_write_config); FLR and PM transitions
   * reset the function.
   */
  private configWritten(offset: number, width: number): void {
    if (offset <= PCI_COMMAND + 1 && offset + width > PCI_COMMAND) this.updateIntx();
    if (this.msiState?.configWritten(offset, width)) this.setIntx(false);
    if (this.msixState?.configWritten(offset, width)) this.setIntx(false);
    const pcie = this.layout.pcieAt;
    const devctl = pcie + PCIE.DEVCTL;
    if (pcie && this.layout.flr && offset <= devctl + 1 && offset + width > devctl + 1) {
      const v = this.config.getRaw(devctl, 2);
      if (v & PCIE.DEVCTL_BCR_FLR) {
        this.config.setRaw(devctl, 2, v & ~PCIE.DEVCTL_BCR_FLR);
        this.reset('function');
      }
    }
    const pm = this.layout.pmAt;
    if (pm && offset <= pm + PM_CTRL && offset + width > pm + PM_CTRL) {
      const state = this.config.getRaw(pm + PM_CTRL, 2) & PM_STATE_MASK;
      const from = this.pmState;
      this.pmState = state;
      if (from === PM_D3HOT && state === 0 && this.layout.pmReset) this.reset('function');
    }
  }

  /**
   * A conventional reset as QEMU's pci_do_device_reset performs it: command, status, cache line and
   * interrupt line cleared, BARs back to their type bits only (the host restores them), every
   * capability back to its power-on value (MSI and MSI-X disabled, all MSI-X vectors masked),
   * INTx released and scheduled work forgotten; then the device's own onReset.
   */
  private reset(kind: ResetKind): void {
    this.clock.cancelAll();
    const c = this.config;
    // QEMU 7.2's reset (pci_do_device_reset) leaves an SR-IOV capability as software set it:
    // VF Enable and NumVFs survive; what becomes of the VFs is the PF model's to say.
    const sriov = extendedCapabilityAt(c, PCI_EXT_CAP_ID_SRIOV);
    const sriovState = sriov === undefined ? undefined : c.bytes.slice(sriov, sriov + SRIOV.SIZEOF);
    c.bytes.set(this.powerOn.subarray(PCI_STD_HEADER_SIZEOF), PCI_STD_HEADER_SIZEOF);
    if (sriov !== undefined && sriovState) c.bytes.set(sriovState, sriov);
    c.setRaw(PCI_COMMAND, 2, 0);
    c.setRaw(PCI_STATUS, 2, this.powerOn[PCI_STATUS]! | (this.powerOn[PCI_STATUS + 1]! << 8));
    c.setRaw(PCI_CACHE_LINE_SIZE, 1, 0);
    c.setRaw(PCI_INTERRUPT_LINE, 1, 0);
    if (!this.virtualFunction) for (const bar of this.bars) if (bar) writeBarRegister(c, bar, 0n);
    this.msixState?.reset();
    this.pmState = 0;
    this.intxAsserted = false;
    this.updateIntx();
    this.onReset(kind);
  }
}

/** Where the extended capability `id` is in config space, if it is there. */
function extendedCapabilityAt(c: PciConfigSpace, id: number): number | undefined {
  if (c.size <= PCI_CFG_SPACE_SIZE) return undefined;
  for (let at = PCI_CFG_SPACE_SIZE, hops = 0; at >= PCI_CFG_SPACE_SIZE && hops < 480; hops++) {
    const header = c.getRaw(at, 4);
    if (header === 0) return undefined;
    if ((header & 0xffff) === id) return at;
    at = (header >>> 20) & 0xffc;
  }
  return undefined;
}

/** A RAM BAR: plain little-endian bytes at every width and alignment. */
function ramHandler(ram: Uint8Array): MmioHandler {
  const view = new DataView(ram.buffer, ram.byteOffset, ram.byteLength);
  return {
    unaligned: true,
    read(offset, width) {
      switch (width) {
        case 8:
          return BigInt(view.getUint8(offset));
        case 16:
          return BigInt(view.getUint16(offset, true));
        case 32:
          return BigInt(view.getUint32(offset, true));
        case 64:
          return view.getBigUint64(offset, true);
      }
    },
    write(offset, width, value) {
      switch (width) {
        case 8:
          view.setUint8(offset, Number(value));
          break;
        case 16:
          view.setUint16(offset, Number(value), true);
          break;
        case 32:
          view.setUint32(offset, Number(value), true);
          break;
        case 64:
          view.setBigUint64(offset, value, true);
          break;
      }
    },
  };
}
