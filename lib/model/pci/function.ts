/**
 * Shared behaviour of a conventional PCI function as QEMU's PCI core implements it: the type 0
 * header (IDs, BAR registers with their size masks, command and status semantics), INTx level
 * with the status bit and INTx-disable gating, an MSI capability that delivers a message write
 * only when enabled and bus mastering is on, and DMA that only leaves the function with bus
 * mastering enabled. Concrete devices (lib/model/devices) add their BAR registers and logic.
 */
import {
  PCI_BASE_ADDRESS_0, PCI_BASE_ADDRESS_MEM_PREFETCH, PCI_BASE_ADDRESS_MEM_TYPE_64, PCI_BASE_ADDRESS_SPACE_IO,
  PCI_CACHE_LINE_SIZE, PCI_CAP_ID_MSI, PCI_CFG_SPACE_SIZE, PCI_CLASS_PROG, PCI_COMMAND, PCI_COMMAND_INTX_DISABLE,
  PCI_COMMAND_IO, PCI_COMMAND_MASTER, PCI_COMMAND_MEMORY, PCI_COMMAND_SERR, PCI_DEVICE_ID, PCI_INTERRUPT_LINE,
  PCI_INTERRUPT_PIN, PCI_MSI_ADDRESS_HI, PCI_MSI_ADDRESS_LO, PCI_MSI_DATA_32, PCI_MSI_DATA_64, PCI_MSI_FLAGS,
  PCI_MSI_FLAGS_64BIT, PCI_MSI_FLAGS_ENABLE, PCI_MSI_FLAGS_MASKBIT, PCI_MSI_FLAGS_QMASK, PCI_MSI_FLAGS_QSIZE, PCI_MSI_MASK_32,
  PCI_MSI_MASK_64, PCI_REVISION_ID, PCI_STATUS, PCI_STATUS_INTERRUPT, PCI_STD_HEADER_SIZEOF,
  PCI_SUBSYSTEM_ID, PCI_SUBSYSTEM_VENDOR_ID, PCI_VENDOR_ID,
} from '../../uapi/pci';
import { PciConfigSpace } from './physical-config-space';
import { DISCONNECTED_DMA, DmaFault } from './dma';
import { DISCONNECTED_INTERRUPTS } from './interrupts';
import type { AccessWidth, DeviceEvent, PciBarInfo, PciDeviceModel, PciHostPort } from './device-model';

/** PCI status bits QEMU clears on a write of 1 (pci_init_w1cmask). */
const STATUS_W1C = 0x0100 /* master data parity */ | 0x0800 /* sig target abort */ | 0x1000 /* rec target abort */
  | 0x2000 /* rec master abort */ | 0x4000 /* sig system error */ | 0x8000 /* detected parity */;

export interface PciIdentity {
  readonly vendorId: number;
  readonly deviceId: number;
  readonly subsystemVendorId: number;
  readonly subsystemId: number;
  readonly classCode: number;
  readonly revision: number;
  readonly interruptPin: number;
}

export interface MsiCapabilityOptions {
  /** Vectors the function can use: 1, 2, 4, .. 32. */
  readonly vectors: number;
  readonly is64bit: boolean;
  readonly perVectorMask: boolean;
}

export abstract class PciFunction implements PciDeviceModel {
  abstract readonly model: string;
  abstract readonly supportsFunctionReset: boolean;
  readonly config: PciConfigSpace;
  readonly bars: (PciBarInfo | undefined)[] = [undefined, undefined, undefined, undefined, undefined, undefined];
  readonly events: DeviceEvent[] = [];
  protected host: PciHostPort = { dma: DISCONNECTED_DMA, interrupts: DISCONNECTED_INTERRUPTS };
  private readonly listeners = new Set<(e: DeviceEvent) => void>();
  private msiCap = 0;
  private intxAsserted = false;
  private intxLineOut = false;

  constructor(readonly identity: PciIdentity, configSize: typeof PCI_CFG_SPACE_SIZE | 4096 = PCI_CFG_SPACE_SIZE) {
    const c = new PciConfigSpace(configSize);
    this.config = c;
    c.setRaw(PCI_VENDOR_ID, 2, identity.vendorId);
    c.setRaw(PCI_DEVICE_ID, 2, identity.deviceId);
    c.setRaw(PCI_REVISION_ID, 1, identity.revision);
    c.setRaw(PCI_CLASS_PROG, 1, identity.classCode & 0xff);
    c.setRaw(PCI_CLASS_PROG + 1, 2, (identity.classCode >>> 8) & 0xffff);
    c.setRaw(PCI_SUBSYSTEM_VENDOR_ID, 2, identity.subsystemVendorId);
    c.setRaw(PCI_SUBSYSTEM_ID, 2, identity.subsystemId);
    c.setRaw(PCI_INTERRUPT_PIN, 1, identity.interruptPin);
    c.setWriteMask(PCI_CACHE_LINE_SIZE, 1, 0xff);
    c.setWriteMask(PCI_INTERRUPT_LINE, 1, 0xff);
    c.setWriteMask(PCI_COMMAND, 2, PCI_COMMAND_IO | PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER | PCI_COMMAND_SERR | PCI_COMMAND_INTX_DISABLE);
    c.setClearMask(PCI_STATUS, 2, STATUS_W1C);
    // QEMU leaves config space past the header writable unless a capability claims it.
    c.setWritableRange(PCI_STD_HEADER_SIZEOF, configSize - PCI_STD_HEADER_SIZEOF);
    c.onWrite((offset, width) => this.configWritten(offset, width));
  }

  get vendorId(): number { return this.identity.vendorId; }
  get deviceId(): number { return this.identity.deviceId; }
  get subsystemVendorId(): number { return this.identity.subsystemVendorId; }
  get subsystemId(): number { return this.identity.subsystemId; }
  get classCode(): number { return this.identity.classCode; }
  get revision(): number { return this.identity.revision; }
  get interruptPin(): number { return this.identity.interruptPin; }

  get command(): number { return this.config.getRaw(PCI_COMMAND, 2); }
  get memoryDecodeEnabled(): boolean { return (this.command & PCI_COMMAND_MEMORY) !== 0; }
  get busMasterEnabled(): boolean { return (this.command & PCI_COMMAND_MASTER) !== 0; }

  /** Declares a BAR and its register: the size mask makes sizing by writing all ones work. */
  protected defineBar(bar: PciBarInfo, address: bigint): void {
    if (bar.size & (bar.size - 1n)) throw new RangeError(`BAR ${bar.index} size ${bar.size} is not a power of two`);
    this.bars[bar.index] = bar;
    const reg = PCI_BASE_ADDRESS_0 + bar.index * 4;
    const flags = bar.space === 'io' ? PCI_BASE_ADDRESS_SPACE_IO
      : (bar.is64bit ? PCI_BASE_ADDRESS_MEM_TYPE_64 : 0) | (bar.prefetchable ? PCI_BASE_ADDRESS_MEM_PREFETCH : 0);
    const mask = ~(bar.size - 1n) & ((1n << 64n) - 1n);
    const lowFlagBits = bar.space === 'io' ? 0x3 : 0xf;
    this.config.setWriteMask(reg, 4, Number(mask & 0xffff_ffffn) & ~lowFlagBits);
    this.config.setRaw(reg, 4, (Number(address & 0xffff_ffffn) & ~lowFlagBits) | flags);
    if (bar.is64bit) {
      this.config.setWriteMask(reg + 4, 4, Number(mask >> 32n));
      this.config.setRaw(reg + 4, 4, Number(address >> 32n));
    }
  }

  /** The address the BAR register currently decodes (what the host assigned). */
  barAddress(index: number): bigint {
    const bar = this.bars[index];
    if (!bar) return 0n;
    const reg = PCI_BASE_ADDRESS_0 + index * 4;
    const lo = BigInt(this.config.getRaw(reg, 4) & (bar.space === 'io' ? ~0x3 : ~0xf)) & 0xffff_ffffn;
    const hi = bar.is64bit ? BigInt(this.config.getRaw(reg + 4, 4)) : 0n;
    return (hi << 32n) | lo;
  }

  /** Adds an MSI capability (QEMU msi_init) at the next free capability offset; returns it. */
  protected addMsiCapability(o: MsiCapabilityOptions): number {
    const log2 = Math.log2(o.vectors);
    if (!Number.isInteger(log2) || log2 > 5) throw new RangeError(`MSI vector count ${o.vectors} is not 1, 2, 4, .., 32`);
    const len = 10 + (o.is64bit ? 4 : 0) + (o.perVectorMask ? 10 : 0);
    const pos = this.config.addCapability(PCI_CAP_ID_MSI, len);
    const flags = (log2 << 1) | (o.is64bit ? PCI_MSI_FLAGS_64BIT : 0) | (o.perVectorMask ? PCI_MSI_FLAGS_MASKBIT : 0);
    this.config.setRaw(pos + PCI_MSI_FLAGS, 2, flags);
    this.config.setWriteMask(pos + PCI_MSI_FLAGS, 2, PCI_MSI_FLAGS_QSIZE | PCI_MSI_FLAGS_ENABLE);
    this.config.setWriteMask(pos + PCI_MSI_ADDRESS_LO, 4, 0xffff_fffc);
    if (o.is64bit) {
      this.config.setWriteMask(pos + PCI_MSI_ADDRESS_HI, 4, 0xffff_ffff);
      this.config.setWriteMask(pos + PCI_MSI_DATA_64, 2, 0xffff);
    } else {
      this.config.setWriteMask(pos + PCI_MSI_DATA_32, 2, 0xffff);
    }
    if (o.perVectorMask) {
      const maskAt = pos + (o.is64bit ? PCI_MSI_MASK_64 : PCI_MSI_MASK_32);
      this.config.setWriteMask(maskAt, 4, o.vectors === 32 ? 0xffff_ffff : (1 << o.vectors) - 1);
    }
    this.msiCap = pos;
    return pos;
  }

  private msiCapLength(): number {
    const flags = this.config.getRaw(this.msiCap + PCI_MSI_FLAGS, 2);
    return 10 + (flags & PCI_MSI_FLAGS_64BIT ? 4 : 0) + (flags & PCI_MSI_FLAGS_MASKBIT ? 10 : 0);
  }

  /** MSI is enabled in the function's own capability (msi_enabled). */
  get msiEnabled(): boolean {
    return this.msiCap !== 0 && (this.config.getRaw(this.msiCap + PCI_MSI_FLAGS, 2) & PCI_MSI_FLAGS_ENABLE) !== 0;
  }

  /**
   * Sends MSI vector `vector` (msi_notify): a posted write of the programmed data (with the vector
   * in its low bits) to the programmed address. Dropped when the vector is masked, beyond the
   * enabled count, or bus mastering is off (the write cannot leave the function).
   */
  protected notifyMsi(vector: number): void {
    if (!this.msiEnabled) return;
    const pos = this.msiCap;
    const flags = this.config.getRaw(pos + PCI_MSI_FLAGS, 2);
    const is64 = (flags & PCI_MSI_FLAGS_64BIT) !== 0;
    const enabledVectors = 1 << ((flags & PCI_MSI_FLAGS_QSIZE) >> 4);
    if (vector >= enabledVectors) return;
    if (flags & PCI_MSI_FLAGS_MASKBIT) {
      const mask = this.config.getRaw(pos + (is64 ? PCI_MSI_MASK_64 : PCI_MSI_MASK_32), 4);
      if (mask & (1 << vector)) return;
    }
    if (!this.busMasterEnabled) {
      this.record({ kind: 'dma-blocked', message: `MSI vector ${vector} not sent: bus mastering is disabled` });
      return;
    }
    const lo = BigInt(this.config.getRaw(pos + PCI_MSI_ADDRESS_LO, 4));
    const hi = is64 ? BigInt(this.config.getRaw(pos + PCI_MSI_ADDRESS_HI, 4)) : 0n;
    const data = this.config.getRaw(pos + (is64 ? PCI_MSI_DATA_64 : PCI_MSI_DATA_32), 2);
    const vectorBits = enabledVectors - 1;
    this.host.interrupts.messageWrite((hi << 32n) | lo, (data & ~vectorBits) | (vector & vectorBits));
  }

  /** Drives the function's INTx pin (pci_set_irq): sets the status bit, gated by INTx disable. */
  protected setIntx(asserted: boolean): void {
    this.intxAsserted = asserted;
    this.updateIntx();
  }

  private updateIntx(): void {
    const status = this.config.getRaw(PCI_STATUS, 2);
    this.config.setRaw(PCI_STATUS, 2, this.intxAsserted ? status | PCI_STATUS_INTERRUPT : status & ~PCI_STATUS_INTERRUPT);
    const out = this.intxAsserted && this.identity.interruptPin !== 0 && !(this.command & PCI_COMMAND_INTX_DISABLE);
    if (out !== this.intxLineOut) {
      this.intxLineOut = out;
      this.host.interrupts.intxLevel(out);
    }
  }

  /** The INTx level as seen outside the function. */
  get intxLine(): boolean { return this.intxLineOut; }

  /**
   * Device DMA (pci_dma_read): without bus mastering nothing leaves the function and QEMU's read
   * returns zeros; a fault from the host's port also reads zeros. Both are recorded as events.
   */
  protected dmaRead(address: bigint, length: number): Uint8Array {
    if (!this.busMasterEnabled) {
      this.record({ kind: 'dma-blocked', message: `DMA read of ${length} bytes at 0x${address.toString(16)} with bus mastering disabled` });
      return new Uint8Array(length);
    }
    try {
      return this.host.dma.read(address, length);
    } catch (e) {
      if (!(e instanceof DmaFault)) throw e;
      this.record({ kind: 'dma-fault', message: e.message, fault: e });
      return new Uint8Array(length);
    }
  }

  /** Device DMA write (pci_dma_write): dropped without bus mastering or on a fault. */
  protected dmaWrite(address: bigint, data: Uint8Array): void {
    if (!this.busMasterEnabled) {
      this.record({ kind: 'dma-blocked', message: `DMA write of ${data.length} bytes at 0x${address.toString(16)} with bus mastering disabled` });
      return;
    }
    try {
      this.host.dma.write(address, data);
    } catch (e) {
      if (!(e instanceof DmaFault)) throw e;
      this.record({ kind: 'dma-fault', message: e.message, fault: e });
    }
  }

  protected record(e: DeviceEvent): void {
    this.events.push(e);
    for (const l of [...this.listeners]) l(e);
  }

  onEvent(listener: (e: DeviceEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  connect(host: PciHostPort): void {
    this.host = host;
    this.intxLineOut = false;
    this.updateIntx();
  }

  disconnect(): void {
    this.host = { dma: DISCONNECTED_DMA, interrupts: DISCONNECTED_INTERRUPTS };
    this.intxLineOut = false;
  }

  functionReset(): void {
    throw new Error(`${this.model} has no function reset`);
  }

  abstract mmioRead(bar: number, offset: bigint, width: AccessWidth): bigint;
  abstract mmioWrite(bar: number, offset: bigint, width: AccessWidth, value: bigint): void;

  /**
   * Reacts to software config writes: the command register gates INTx; a write to an enabled MSI
   * capability clamps the enabled vector count to the maximum and deasserts INTx (msi_write_config).
   */
  protected configWritten(offset: number, width: number): void {
    if (offset <= PCI_COMMAND + 1 && offset + width > PCI_COMMAND) this.updateIntx();
    if (this.msiCap && offset < this.msiCap + this.msiCapLength() && offset + width > this.msiCap && this.msiEnabled) {
      let flags = this.config.getRaw(this.msiCap + PCI_MSI_FLAGS, 2);
      const logMax = (flags & PCI_MSI_FLAGS_QMASK) >> 1;
      if (((flags & PCI_MSI_FLAGS_QSIZE) >> 4) > logMax) {
        flags = (flags & ~PCI_MSI_FLAGS_QSIZE) | (logMax << 4);
        this.config.setRaw(this.msiCap + PCI_MSI_FLAGS, 2, flags);
      }
      this.setIntx(false);
    }
  }
}
