/**
 * The host side of the simulated PCI bus: where each function sits (its address), the interrupt
 * line its INTx pin is routed to, the MSI address window of the interrupt controller, and the
 * DMA path from the function into memory. The DMA path is switchable because it depends on who
 * owns the device: on a noiommu host it is always physical memory; behind an IOMMU it is
 * "blocked" until a driver attaches the device to a domain, then that domain's translation.
 */
import { formatPciAddress, type PciAddress } from './address';
import { BarWindows } from './bar-windows';
import { DmaFault, type DmaPort } from './dma';
import type { PciDeviceModel } from './device-model';
import { ModelClock, type DeviceClock } from '../device/clock';

/**
 * A level-triggered, shareable host interrupt line that drivers request handlers on. Functions
 * whose INTx pins are routed to the same IRQ share it: the line is asserted while any of them
 * asserts, and every handler runs (IRQF_SHARED; each checks whether its device interrupted).
 */
export class IrqLine {
  private readonly asserting = new Set<object>();
  private readonly handlers = new Set<() => void>();

  constructor(readonly irq: number) {}

  /** request_irq: the handler runs now if the line is already asserted (level semantics). */
  request(handler: () => void): () => void {
    this.handlers.add(handler);
    if (this.asserting.size) handler();
    return () => this.handlers.delete(handler);
  }

  get asserted(): boolean {
    return this.asserting.size > 0;
  }

  /** A source (a function's INTx pin) drives the line. */
  setLevel(source: object, asserted: boolean): void {
    const rising = asserted && !this.asserting.has(source);
    if (asserted) this.asserting.add(source);
    else this.asserting.delete(source);
    if (rising) for (const h of [...this.handlers]) h();
  }
}

/** q35's PIRQ routing as SeaBIOS programs it: INTx of slot S, pin P lands on IRQ 10 or 11. */
const Q35_PCI_IRQS = [10, 10, 11, 11] as const;

export function q35IntxIrq(device: number, pin: number): number {
  return pin ? Q35_PCI_IRQS[(pin - 1 + device) & 3]! : 0;
}

/**
 * The host IRQ of a function's INTx pin: behind bridges the pin is swizzled at every bridge on
 * the way up (pci_swizzle_interrupt_pin: pin + device number, modulo 4), and the root-bus slot the
 * path ends in picks the line.
 */
export function intxIrqOf(address: PciAddress, pin: number, upstream: PciSlot | undefined): number {
  if (!pin) return 0;
  let device = address.device;
  for (let bridge = upstream; bridge; bridge = bridge.upstream) {
    pin = ((pin - 1 + device) & 3) + 1;
    device = bridge.address.device;
  }
  return q35IntxIrq(device, pin);
}

/** x86 MSI window: a write here is an interrupt message, not memory. */
export const MSI_ADDRESS_BASE = 0xfee0_0000n;
const MSI_WINDOW_END = 0xfef0_0000n;

/**
 * The host's MSI decoder: vectors are allocated in naturally aligned blocks (as multi-message
 * MSI requires), a message write with data D runs the handler registered for D.
 */
export class MsiController {
  private readonly handlers = new Map<number, () => void>();
  private readonly allocated = new Set<number>();
  private static readonly FIRST_VECTOR = 0x20;
  private static readonly LAST_VECTOR = 0xef;

  /** Allocates `count` (a power of two) consecutive vectors; returns the first. */
  allocate(count: number): number {
    for (let base = MsiController.FIRST_VECTOR; base + count - 1 <= MsiController.LAST_VECTOR; base += count) {
      if (base % count) continue;
      let free = true;
      for (let v = base; v < base + count; v++)
        if (this.allocated.has(v)) {
          free = false;
          break;
        }
      if (!free) continue;
      for (let v = base; v < base + count; v++) this.allocated.add(v);
      return base;
    }
    throw new Error('model host: out of MSI vectors');
  }

  free(base: number, count: number): void {
    for (let v = base; v < base + count; v++) {
      this.allocated.delete(v);
      this.handlers.delete(v);
    }
  }

  setHandler(vector: number, handler: (() => void) | undefined): void {
    if (handler) this.handlers.set(vector, handler);
    else this.handlers.delete(vector);
  }

  /** A posted write from a device: returns true when it was an interrupt message. */
  deliver(address: bigint, data: number): boolean {
    if (address < MSI_ADDRESS_BASE || address >= MSI_WINDOW_END) return false;
    this.handlers.get(data & 0xff)?.();
    return true;
  }
}

/** A DMA port that forwards to whichever path currently applies to the function. */
export class SwitchableDmaPort implements DmaPort {
  constructor(private target: DmaPort) {}
  set(target: DmaPort): void {
    this.target = target;
  }
  get current(): DmaPort {
    return this.target;
  }
  read(address: bigint, length: number): Uint8Array {
    return this.target.read(address, length);
  }
  write(address: bigint, data: Uint8Array): void {
    this.target.write(address, data);
  }
}

/** The DMA path of a function behind an IOMMU that nobody attached: everything faults. */
export const IOMMU_BLOCKED: DmaPort = {
  read(address, length) {
    throw new DmaFault('blocked', address, length, 'read', 'no IOMMU domain attached');
  },
  write(address, data) {
    throw new DmaFault('blocked', address, data.length, 'write', 'no IOMMU domain attached');
  },
};

/** One function on the bus with everything the host wired to it. */
export interface PciSlot {
  readonly address: PciAddress;
  /** "0000:00:03.0" */
  readonly name: string;
  readonly device: PciDeviceModel;
  readonly irqLine: IrqLine;
  readonly dma: SwitchableDmaPort;
  /** Whether an IOMMU translates this function's DMA (false on a noiommu host). */
  readonly behindIommu: boolean;
  /** The address windows firmware assigns BARs from, shared by every function of the host. */
  readonly barWindows: BarWindows;
  /** The bridge whose secondary bus the function sits on; undefined on the root bus. */
  readonly upstream: PciSlot | undefined;
}

export interface PciHostOptions {
  /** What a function's DMA reaches when no IOMMU translates it: physical memory. */
  readonly physicalMemory: DmaPort;
  /** Whether an IOMMU translates DMA (IOMMU mode) or not (noiommu host). */
  readonly iommu: boolean;
  /** The clock devices run on; default a virtual clock in auto mode. */
  readonly clock?: DeviceClock;
}

export class PciHost {
  readonly msi = new MsiController();
  private readonly slots = new Map<string, PciSlot>();
  private readonly irqLines = new Map<number, IrqLine>();
  private readonly plugged = new Set<PciDeviceModel>();
  private readonly barWindows = new BarWindows();
  readonly clock: DeviceClock;

  constructor(private readonly options: PciHostOptions) {
    this.clock = options.clock ?? new ModelClock('auto');
  }

  /**
   * Plugs a function in at `address` (behind `upstream`, the bridge leading to its bus, when it is
   * not on the root bus) and wires its INTx, MSI and DMA.
   */
  plug(address: PciAddress, device: PciDeviceModel, upstream?: PciSlot): PciSlot {
    const name = formatPciAddress(address);
    if (this.slots.has(name)) throw new Error(`model host: ${name} is already occupied`);
    if (this.plugged.has(device)) throw new Error(`model host: device model '${device.model}' is already plugged in at another address`);
    this.barWindows.reserveFixed(name, device);
    const irq = intxIrqOf(address, device.interruptPin, upstream);
    let irqLine = this.irqLines.get(irq);
    if (!irqLine) {
      irqLine = new IrqLine(irq);
      if (irq) this.irqLines.set(irq, irqLine);
    }
    const line = irqLine;
    const dma = new SwitchableDmaPort(this.options.iommu ? IOMMU_BLOCKED : this.options.physicalMemory);
    const slot: PciSlot = { address, name, device, irqLine, dma, behindIommu: this.options.iommu, barWindows: this.barWindows, upstream };
    device.connect({
      dma,
      clock: this.clock,
      behindIommu: this.options.iommu,
      interrupts: {
        intxLevel: (asserted) => line.setLevel(slot, asserted),
        messageWrite: (address, data) => {
          if (this.msi.deliver(address, data)) return;
          // Not the interrupt window: a plain memory write through the device's DMA path, which
          // can fault like any other DMA (the message is then lost).
          const bytes = new Uint8Array(4);
          new DataView(bytes.buffer).setUint32(0, data >>> 0, true);
          try {
            dma.write(address, bytes);
          } catch (e) {
            if (!(e instanceof DmaFault)) throw e;
          }
        },
      },
    });
    this.slots.set(name, slot);
    this.plugged.add(device);
    return slot;
  }

  /**
   * Takes a function off the bus (a hot-unplug, an SR-IOV VF going away): its BAR claims go with
   * it, so a function plugged in there later (the PF's next VF, whose BARs are the PF's VF BARs
   * again) can claim the same addresses.
   */
  unplug(slot: PciSlot): void {
    if (this.slots.get(slot.name) !== slot) throw new Error(`model host: ${slot.name} is not plugged in`);
    this.barWindows.release(slot.name);
    slot.device.disconnect();
    slot.irqLine.setLevel(slot, false);
    this.slots.delete(slot.name);
    this.plugged.delete(slot.device);
  }

  slot(name: string): PciSlot | undefined {
    return this.slots.get(name);
  }

  all(): PciSlot[] {
    return [...this.slots.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  /** The DMA path that applies when no IOMMU domain is attached. */
  defaultDma(): DmaPort {
    return this.options.iommu ? IOMMU_BLOCKED : this.options.physicalMemory;
  }
}
