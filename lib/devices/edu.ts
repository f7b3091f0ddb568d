/**
 * QEMU's educational PCI device "edu" as QEMU 7.2 implements it (hw/misc/edu.c), register for
 * register, so a driver written against the model behaves the same on the lab's real edu. It is
 * written only against the public device-model SDK, like any user's device.
 *
 * Identity: vendor 0x1234, device 0x11e8, revision 0x10, class 0x00ff00 (PCI_CLASS_OTHERS),
 * QEMU's default subsystem 0x1af4:0x1100, INTx pin A, one MSI vector (64-bit, no per-vector
 * mask) at config offset 0x40, BAR0 = 1 MiB of 32-bit non-prefetchable MMIO, no reset method.
 *
 * BAR0 registers (offsets below 0x80 accept only 4-byte accesses, from 0x80 on 4 or 8 bytes;
 * a read of anything else returns all ones, a write is ignored; 1- and 2-byte or misaligned
 * accesses are invalid for the region and read as 0):
 *   0x00 R  identification 0x010000ed        0x04 RW liveness: reads the bitwise NOT of the last write
 *   0x08 RW factorial: write n, poll 0x20 bit 0, read n! (mod 2^32); writes while computing are ignored
 *   0x20 RW status: bit 0 computing (RO), bit 7 raise interrupt 0x1 when the factorial is done
 *   0x24 R  interrupt status                 0x60 W raise interrupt (ORs value)   0x64 W acknowledge
 *   0x80 RW DMA source  0x88 RW DMA destination  0x90 RW DMA count (ignored while a DMA runs)
 *   0x98 RW DMA command: bit 0 start (reads 1 until done), bit 1 direction (0 RAM to device,
 *        1 device to RAM), bit 2 raise interrupt 0x100 when done; a write without bit 0 is ignored
 * The device buffer lives at device address 0x40000..0x40fff. Bus addresses are clamped to the
 * DMA mask (QEMU default 28 bits; the lab passes dma_mask=0xffffffffffffffff).
 *
 * QEMU 7.2's range check rejects a transfer whose end reaches 0x41000 (so 4096 bytes fail) and a
 * count of 0, and answers with hw_error(), which aborts the whole VM. The model reports that as a
 * 'hardware-error' event and marks the device failed: from then on reads return all ones and
 * nothing else happens, the way a device that fell off the bus looks to a driver.
 */
import { DeviceModel, faultPoint, msiCapability, type AccessWidth } from '../model/device';

export const EDU_VENDOR_ID = 0x1234;
export const EDU_DEVICE_ID = 0x11e8;
export const EDU_CLASS_CODE = 0x00ff00;
export const EDU_REVISION = 0x10;
export const EDU_BAR0_SIZE = 1n << 20n;
export const EDU_IDENTIFICATION = 0x010000ed;

export const EDU_REG = {
  ID: 0x00,
  LIVENESS: 0x04,
  FACTORIAL: 0x08,
  STATUS: 0x20,
  IRQ_STATUS: 0x24,
  IRQ_RAISE: 0x60,
  IRQ_ACK: 0x64,
  DMA_SRC: 0x80,
  DMA_DST: 0x88,
  DMA_COUNT: 0x90,
  DMA_CMD: 0x98,
} as const;
export const EDU_STATUS_COMPUTING = 0x01;
export const EDU_STATUS_IRQ_FACT = 0x80;
export const EDU_IRQ_FACT = 0x001;
export const EDU_IRQ_DMA = 0x100;
export const EDU_DMA_CMD_START = 0x1;
export const EDU_DMA_CMD_TO_RAM = 0x2;
export const EDU_DMA_CMD_IRQ = 0x4;
export const EDU_DMA_BUFFER_ADDRESS = 0x40000n;
export const EDU_DMA_BUFFER_SIZE = 4096;
export const EDU_DEFAULT_DMA_MASK = (1n << 28n) - 1n;

const U64 = (1n << 64n) - 1n;

/**
 * When edu's DMA transfers and factorials finish: inside the MMIO write that started them ('sync',
 * for unit tests that step through states), or later on the machine's clock ('immediate': after 0 µs;
 * 'delay': after `ms` milliseconds; QEMU's edu DMA timer uses 100 ms of virtual time).
 */
export type CompletionTiming = { readonly mode: 'sync' } | { readonly mode: 'immediate' } | { readonly mode: 'delay'; readonly ms: number };

export interface EduOptions {
  /** The address firmware assigned to BAR0 (what /sys/.../resource shows). */
  readonly bar0Address?: bigint;
  /** QEMU's dma_mask property; default 28 bits like QEMU. */
  readonly dmaMask?: bigint;
  /** When DMA transfers and factorials finish; default: on a later event-loop turn. */
  readonly timing?: CompletionTiming;
  /**
   * When DMA transfers finish, where it differs from `timing`: QEMU's edu finishes a factorial in
   * its own thread at once but a DMA on a 100 ms virtual-time timer (`{ mode: 'delay', ms: 100 }`).
   */
  readonly dmaTiming?: CompletionTiming;
}

export class EduDevice extends DeviceModel {
  readonly dmaMask: bigint;
  private readonly timing: CompletionTiming;
  private readonly dmaTiming: CompletionTiming;
  private liveness = 0;
  private factorial = 0;
  private status = 0;
  private irqStatus = 0;
  private dmaSrc = 0n;
  private dmaDst = 0n;
  private dmaCount = 0n;
  private dmaCmd = 0n;
  private readonly buffer = new Uint8Array(EDU_DMA_BUFFER_SIZE);

  constructor(options: EduOptions = {}) {
    super({
      model: 'edu',
      identity: {
        vendorId: EDU_VENDOR_ID,
        deviceId: EDU_DEVICE_ID,
        subsystemVendorId: 0x1af4,
        subsystemId: 0x1100,
        classCode: EDU_CLASS_CODE,
        revision: EDU_REVISION,
      },
      interruptPin: 'INTA',
      bars: [{ index: 0, size: EDU_BAR0_SIZE, type: 'memory32', address: options.bar0Address ?? 0xfea0_0000n }],
      capabilities: [msiCapability({ vectors: 1, is64bit: true, perVectorMask: false })],
      // edu clamps addresses to its dma_mask itself (edu_clamp_addr), before the bus sees them.
      dmaMask: U64,
    });
    this.dmaMask = options.dmaMask ?? EDU_DEFAULT_DMA_MASK;
    this.timing = options.timing ?? { mode: 'immediate' };
    this.dmaTiming = options.dmaTiming ?? this.timing;
    // The MMIO region accepts 4- and 8-byte naturally aligned accesses only (valid.min_access_size 4,
    // max 8, no unaligned): anything else is a decode error that reads 0 and writes nothing.
    this.handleMmio(0, {
      widths: [32, 64],
      read: (offset, width) => this.readRegister(offset, width),
      write: (offset, width, value) => this.writeRegister(offset, width, value),
    });
  }

  /**
   * edu's fault points (model only: QEMU's edu never does these), for testing a driver's error
   * paths: a factorial with a wrong result, an interrupt that is never raised, a DMA transfer that
   * does not move the data yet completes, a DMA transfer that never completes.
   */
  readonly faults = this.declareFaults({
    'wrong-factorial': faultPoint<{ readonly n: number }, { readonly xor: number }>({
      description: 'the factorial completes with its result XORed with the armed value',
      defaults: { xor: 1 },
      describe: (s) => `factorial of ${s.n}`,
    }),
    'lost-interrupt': faultPoint<{ readonly cause: number }, Record<string, never>>({
      description: 'an interrupt is not raised (its status bits are not set, no MSI or INTx)',
      defaults: {},
      describe: (s) => `interrupt 0x${s.cause.toString(16)}`,
    }),
    'dma-error': faultPoint<{ readonly toRam: boolean; readonly length: number }, Record<string, never>>({
      description: 'a DMA transfer moves no data but completes as usual (edu has no error status to report it)',
      defaults: {},
      describe: (s) => `DMA of ${s.length} bytes ${s.toRam ? 'to' : 'from'} RAM`,
    }),
    'stuck-dma': faultPoint<{ readonly toRam: boolean; readonly length: number }, Record<string, never>>({
      description: 'a DMA transfer never completes: the command register keeps its start bit, no interrupt',
      defaults: {},
      describe: (s) => `DMA of ${s.length} bytes ${s.toRam ? 'to' : 'from'} RAM`,
    }),
  });

  /** A copy of the device's DMA buffer, for tests. */
  bufferContents(): Uint8Array {
    return this.buffer.slice();
  }

  private readRegister(addr: number, width: AccessWidth): bigint {
    if (addr < 0x80 && width !== 32) return U64;
    switch (addr) {
      case EDU_REG.ID:
        return BigInt(EDU_IDENTIFICATION);
      case EDU_REG.LIVENESS:
        return BigInt(this.liveness);
      case EDU_REG.FACTORIAL:
        return BigInt(this.factorial);
      case EDU_REG.STATUS:
        return BigInt(this.status);
      case EDU_REG.IRQ_STATUS:
        return BigInt(this.irqStatus);
      case EDU_REG.DMA_SRC:
        return this.dmaSrc;
      case EDU_REG.DMA_DST:
        return this.dmaDst;
      case EDU_REG.DMA_COUNT:
        return this.dmaCount;
      case EDU_REG.DMA_CMD:
        return this.dmaCmd;
      default:
        return U64;
    }
  }

  private writeRegister(addr: number, width: AccessWidth, val: bigint): void {
    if (addr < 0x80 && width !== 32) return;
    switch (addr) {
      case EDU_REG.LIVENESS:
        this.liveness = Number(~val & 0xffff_ffffn) >>> 0;
        break;
      case EDU_REG.FACTORIAL:
        if (this.status & EDU_STATUS_COMPUTING) break;
        this.factorial = Number(val & 0xffff_ffffn) >>> 0;
        this.status |= EDU_STATUS_COMPUTING;
        this.later(() => this.computeFactorial());
        break;
      case EDU_REG.STATUS:
        if (val & BigInt(EDU_STATUS_IRQ_FACT)) this.status |= EDU_STATUS_IRQ_FACT;
        else this.status &= ~EDU_STATUS_IRQ_FACT;
        break;
      case EDU_REG.IRQ_RAISE:
        this.raiseIrq(Number(val & 0xffff_ffffn));
        break;
      case EDU_REG.IRQ_ACK:
        this.lowerIrq(Number(val & 0xffff_ffffn));
        break;
      case EDU_REG.DMA_SRC:
        if (!this.dmaRunning) this.dmaSrc = val;
        break;
      case EDU_REG.DMA_DST:
        if (!this.dmaRunning) this.dmaDst = val;
        break;
      case EDU_REG.DMA_COUNT:
        if (!this.dmaRunning) this.dmaCount = val;
        break;
      case EDU_REG.DMA_CMD:
        if (!(val & BigInt(EDU_DMA_CMD_START)) || this.dmaRunning) break;
        this.dmaCmd = val;
        this.later(() => this.runDma(), this.dmaTiming);
        break;
    }
  }

  private get dmaRunning(): boolean {
    return (this.dmaCmd & BigInt(EDU_DMA_CMD_START)) !== 0n;
  }

  private computeFactorial(): void {
    if (this.failed) return;
    let n = this.factorial;
    let result = 1;
    while (n > 0) {
      result = Math.imul(result, n) >>> 0;
      n--;
    }
    const wrong = this.faults.hit('wrong-factorial', { n: this.factorial }, (p) => `result XOR 0x${p.xor.toString(16)}`);
    this.factorial = wrong ? (result ^ wrong.xor) >>> 0 : result;
    this.status &= ~EDU_STATUS_COMPUTING;
    if (this.status & EDU_STATUS_IRQ_FACT) this.raiseIrq(EDU_IRQ_FACT);
  }

  private runDma(): void {
    if (this.failed || !this.dmaRunning) return;
    const count = this.dmaCount;
    const toRam = (this.dmaCmd & BigInt(EDU_DMA_CMD_TO_RAM)) !== 0n;
    const deviceAddress = toRam ? this.dmaSrc : this.dmaDst;
    if (!rangeAccepted(deviceAddress, count)) {
      this.fail(
        `EDU: DMA range 0x${deviceAddress.toString(16)}+0x${count.toString(16)} out of bounds ` +
          `(0x40000-0x40fff); QEMU 7.2 aborts the VM here (hw_error)`,
      );
      return;
    }
    const at = Number(deviceAddress - EDU_DMA_BUFFER_ADDRESS);
    const length = Number(count);
    if (this.faults.hit('stuck-dma', { toRam, length }, () => 'the transfer never completes')) return;
    if (this.faults.hit('dma-error', { toRam, length }, () => 'no data moved; completed anyway')) {
      // nothing transferred
    } else if (toRam) {
      this.dma.write(this.clamp(this.dmaDst), this.buffer.slice(at, at + length));
    } else {
      this.buffer.set(this.dma.read(this.clamp(this.dmaSrc), length), at);
    }
    this.dmaCmd &= ~BigInt(EDU_DMA_CMD_START);
    if (this.dmaCmd & BigInt(EDU_DMA_CMD_IRQ)) this.raiseIrq(EDU_IRQ_DMA);
  }

  private clamp(address: bigint): bigint {
    const clamped = address & this.dmaMask;
    if (clamped !== address) {
      this.record({
        kind: 'guest-error',
        message: `EDU: clamping DMA 0x${address.toString(16)} to 0x${clamped.toString(16)} (dma_mask 0x${this.dmaMask.toString(16)})`,
      });
    }
    return clamped;
  }

  private raiseIrq(bits: number): void {
    if (this.faults.hit('lost-interrupt', { cause: bits }, () => 'not raised')) return;
    this.irqStatus = (this.irqStatus | bits) >>> 0;
    if (this.irqStatus === 0) return;
    if (this.msiEnabled) this.notifyMsi(0);
    else this.setIntx(true);
  }

  private lowerIrq(bits: number): void {
    this.irqStatus = (this.irqStatus & ~bits) >>> 0;
    if (this.irqStatus === 0 && !this.msiEnabled) this.setIntx(false);
  }

  private later(work: () => void, timing: CompletionTiming = this.timing): void {
    switch (timing.mode) {
      case 'sync':
        work();
        return;
      case 'immediate':
        this.clock.after(0, work);
        return;
      case 'delay':
        this.clock.after(timing.ms * 1000, work);
        return;
    }
  }
}

/**
 * QEMU 7.2 edu_check_range: the start must lie in the buffer and the end (start + count, a 64-bit
 * sum) must be above the start and strictly inside the buffer.
 */
function rangeAccepted(start: bigint, count: bigint): boolean {
  const end = (start + count) & U64;
  const bufferEnd = EDU_DMA_BUFFER_ADDRESS + BigInt(EDU_DMA_BUFFER_SIZE);
  const within = (a: bigint) => a >= EDU_DMA_BUFFER_ADDRESS && a < bufferEnd;
  return within(start) && end > start && within(end);
}
