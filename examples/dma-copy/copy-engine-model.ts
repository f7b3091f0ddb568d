/**
 * A device model written the way a user writes one for their own FPGA or ASIC: a DMA copy engine
 * with a descriptor ring in host memory, a status register, and a completion interrupt (MSI-X when
 * the driver enables it, else MSI, else INTx). It imports only `node-vfio/model`.
 *
 * BAR0 (16 KiB, 64-bit, registers 32-bit except the 64-bit ring base):
 *   0x00 R   ID 0x434f5059 ("COPY")
 *   0x04 R   STATUS: bit 0 running, bit 1 halted on an error
 *   0x08 RW  CONTROL: bit 0 enable (clearing it stops the engine and rewinds the ring)
 *   0x10 RW  RING_BASE (64-bit bus address of the ring; 32-bit halves also accepted)
 *   0x18 RW  RING_SIZE in descriptors: a power of two, 1..4096
 *   0x1c W   TAIL: the driver's producer index; the engine works until HEAD reaches it
 *   0x20 R   HEAD: the next descriptor the engine takes
 *   0x24 R   COMPLETED: descriptors finished since enable (wraps at 2^32)
 *   0x28 RW1C IRQ_STATUS: bit 0 a descriptor asked for an interrupt, bit 1 an error
 *   0x2000   MSI-X table (4 vectors), 0x3000 MSI-X PBA
 * A descriptor is 32 bytes: source u64, destination u64, length u32 (1..1 MiB), flags u32 (bit 0
 * interrupt when done), status u32 written back by the engine (1 done, 2 error), reserved u32.
 * A copy takes 1 µs plus 1 µs per KiB of the machine's (virtual) time.
 */
import {
  DeviceModel,
  msiCapability,
  msixCapability,
  pcieCapability,
  pmCapability,
  type AccessWidth,
  type ResetKind,
} from 'node-vfio/model';

export const COPY_ENGINE_VENDOR_ID = 0x1234;
export const COPY_ENGINE_DEVICE_ID = 0xc0de;
export const COPY_ENGINE_ID = 0x434f5059;

export const REG = {
  ID: 0x00,
  STATUS: 0x04,
  CONTROL: 0x08,
  RING_BASE: 0x10,
  RING_BASE_HI: 0x14,
  RING_SIZE: 0x18,
  TAIL: 0x1c,
  HEAD: 0x20,
  COMPLETED: 0x24,
  IRQ_STATUS: 0x28,
} as const;
export const STATUS_RUNNING = 0x1;
export const STATUS_ERROR = 0x2;
export const CONTROL_ENABLE = 0x1;
export const IRQ_DONE = 0x1;
export const IRQ_ERROR = 0x2;
export const DESCRIPTOR_SIZE = 32;
export const DESC_FLAG_IRQ = 0x1;
export const DESC_STATUS_DONE = 1;
export const DESC_STATUS_ERROR = 2;
export const MAX_COPY = 1 << 20;

export class CopyEngineModel extends DeviceModel {
  private control = 0;
  private status = 0;
  private ringBase = 0n;
  private ringSize = 0;
  private tail = 0;
  private head = 0;
  private completed = 0;
  private irqStatus = 0;
  private busy = false;

  constructor() {
    super({
      model: 'copy-engine',
      identity: { vendorId: COPY_ENGINE_VENDOR_ID, deviceId: COPY_ENGINE_DEVICE_ID, classCode: 0x088000 /* system peripheral, other */ },
      bars: [{ index: 0, size: 0x4000n, type: 'memory64' }],
      capabilities: [
        pmCapability(),
        pcieCapability({ type: 'integrated-endpoint', flr: true }),
        msixCapability({ vectors: 4, table: { bar: 0, offset: 0x2000 }, pba: { bar: 0, offset: 0x3000 } }),
        msiCapability({ vectors: 1 }),
      ],
      dmaMask: (1n << 48n) - 1n,
    });
    this.handleMmio(0, {
      widths: [32, 64],
      read: (offset, width) => this.readRegister(offset, width),
      write: (offset, width, value) => this.writeRegister(offset, width, value),
    });
  }

  override onReset(_kind: ResetKind): void {
    this.control = this.status = this.ringSize = this.tail = this.head = this.completed = this.irqStatus = 0;
    this.ringBase = 0n;
    this.busy = false;
  }

  private readRegister(offset: number, width: AccessWidth): bigint {
    if (width === 64) return offset === REG.RING_BASE ? this.ringBase : 0n;
    switch (offset) {
      case REG.ID:
        return BigInt(COPY_ENGINE_ID);
      case REG.STATUS:
        return BigInt(this.status);
      case REG.CONTROL:
        return BigInt(this.control);
      case REG.RING_BASE:
        return this.ringBase & 0xffff_ffffn;
      case REG.RING_BASE_HI:
        return this.ringBase >> 32n;
      case REG.RING_SIZE:
        return BigInt(this.ringSize);
      case REG.HEAD:
        return BigInt(this.head);
      case REG.COMPLETED:
        return BigInt(this.completed);
      case REG.IRQ_STATUS:
        return BigInt(this.irqStatus);
      default:
        return 0n;
    }
  }

  private writeRegister(offset: number, width: AccessWidth, value: bigint): void {
    if (width === 64) {
      if (offset === REG.RING_BASE) this.ringBase = value;
      else
        this.record({ kind: 'guest-error', message: `copy-engine: 8-byte write to 0x${offset.toString(16)}, which is a 32-bit register` });
      return;
    }
    const v = Number(value);
    switch (offset) {
      case REG.CONTROL:
        this.setControl(v);
        break;
      case REG.RING_BASE:
        this.ringBase = (this.ringBase & ~0xffff_ffffn) | value;
        break;
      case REG.RING_BASE_HI:
        this.ringBase = (this.ringBase & 0xffff_ffffn) | (value << 32n);
        break;
      case REG.RING_SIZE:
        if (v < 1 || v > 4096 || (v & (v - 1)) !== 0) {
          this.record({ kind: 'guest-error', message: `copy-engine: ring size ${v} is not a power of two in 1..4096; ignored` });
        } else this.ringSize = v;
        break;
      case REG.TAIL:
        this.tail = v % Math.max(this.ringSize, 1);
        this.kick();
        break;
      case REG.IRQ_STATUS:
        this.irqStatus &= ~v;
        if (this.irqStatus === 0) this.setIntx(false);
        break;
      default:
        break;
    }
  }

  private setControl(v: number): void {
    this.control = v & CONTROL_ENABLE;
    if (this.control) {
      this.status = STATUS_RUNNING;
      this.kick();
    } else {
      this.status = 0;
      this.head = this.tail = this.completed = 0;
    }
  }

  /** Starts the next descriptor unless one is in flight, the ring is empty or the engine is stopped. */
  private kick(): void {
    if (this.busy || !(this.status & STATUS_RUNNING) || this.head === this.tail) return;
    const at = this.ringBase + BigInt(this.head * DESCRIPTOR_SIZE);
    const d = new DataView(this.dma.read(at, DESCRIPTOR_SIZE).buffer);
    const source = d.getBigUint64(0, true);
    const destination = d.getBigUint64(8, true);
    const length = d.getUint32(16, true);
    const flags = d.getUint32(20, true);
    if (length === 0 || length > MAX_COPY) {
      this.record({
        kind: 'guest-error',
        message: `copy-engine: descriptor ${this.head} has length ${length} (1..${MAX_COPY}); the engine halts`,
      });
      this.writeStatus(at, DESC_STATUS_ERROR);
      this.status = STATUS_ERROR;
      this.interrupt(IRQ_ERROR);
      return;
    }
    this.busy = true;
    this.clock.after(1 + length / 1024, () => {
      this.dma.write(destination, this.dma.read(source, length));
      this.writeStatus(at, DESC_STATUS_DONE);
      this.busy = false;
      this.head = (this.head + 1) % this.ringSize;
      this.completed = (this.completed + 1) >>> 0;
      if (flags & DESC_FLAG_IRQ) this.interrupt(IRQ_DONE);
      this.kick();
    });
  }

  private writeStatus(descriptor: bigint, status: number): void {
    const bytes = new Uint8Array(4);
    new DataView(bytes.buffer).setUint32(0, status, true);
    this.dma.write(descriptor + 24n, bytes);
  }

  private interrupt(cause: number): void {
    this.irqStatus |= cause;
    if (this.msixEnabled) this.notifyMsix(0);
    else if (this.msiEnabled) this.notifyMsi(0);
    else this.setIntx(true);
  }
}
