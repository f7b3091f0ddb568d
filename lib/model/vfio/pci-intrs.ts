/**
 * vfio-pci interrupts (drivers/vfio/pci/vfio_pci_intrs.c) and the SET_IRQS ioctl
 * (vfio_set_irqs_validate_and_prepare in vfio_main.c, vfio_pci_set_irqs_ioctl): INTx with
 * automasking through the function's INTx-disable bit, MSI vectors programmed into the function
 * and routed to eventfds, loopback triggers (DATA_NONE/DATA_BOOL), unmask through an eventfd
 * (virqfd), and the ERR/REQ single-eventfd contexts.
 */
import { fail } from '../errno';
import { EventFdFile } from '../eventfd';
import type { OpenFile } from '../open-file';
import type { IrqLine, MsiController } from '../pci/host';
import { MSI_ADDRESS_BASE } from '../pci/host';
import { MsixHostVectors } from '../pci/msix-host';
import {
  PCI_COMMAND,
  PCI_COMMAND_INTX_DISABLE,
  PCI_MSI_ADDRESS_HI,
  PCI_MSI_ADDRESS_LO,
  PCI_MSI_DATA_32,
  PCI_MSI_DATA_64,
  PCI_MSI_FLAGS,
  PCI_MSI_FLAGS_64BIT,
  PCI_MSI_FLAGS_ENABLE,
  PCI_MSI_FLAGS_QSIZE,
  PCI_MSIX_FLAGS,
  PCI_MSIX_FLAGS_QSIZE,
  PCI_STATUS_INTERRUPT,
  PCI_MSI_FLAGS_QMASK,
} from '../../uapi/pci';
import {
  VFIO_IRQ_SET_ACTION_MASK,
  VFIO_IRQ_SET_ACTION_TRIGGER,
  VFIO_IRQ_SET_ACTION_TYPE_MASK,
  VFIO_IRQ_SET_ACTION_UNMASK,
  VFIO_IRQ_SET_DATA_BOOL,
  VFIO_IRQ_SET_DATA_EVENTFD,
  VFIO_IRQ_SET_DATA_NONE,
  VFIO_IRQ_SET_DATA_TYPE_MASK,
  VFIO_PCI_ERR_IRQ_INDEX,
  VFIO_PCI_INTX_IRQ_INDEX,
  VFIO_PCI_MSIX_IRQ_INDEX,
  VFIO_PCI_MSI_IRQ_INDEX,
  VFIO_PCI_NUM_IRQS,
  VFIO_PCI_REQ_IRQ_INDEX,
} from '../../uapi/vfio';
import type { FaultInjector } from '../fault-injection';

const IRQ_NONE = VFIO_PCI_NUM_IRQS;

/** The function and host resources the interrupt code drives. */
export interface IrqHardware {
  /** pdev->irq: the host line INTx is routed to, undefined when not connected. */
  readonly irqLine: IrqLine | undefined;
  /** The function supports masking INTx with PCI_COMMAND_INTX_DISABLE (pci_intx_mask_supported). */
  readonly pci23: boolean;
  readonly msiCap: number;
  readonly msixCap: number;
  readonly msi: MsiController;
  readConfig(offset: number, width: 1 | 2 | 4): number;
  writeConfig(offset: number, width: 1 | 2 | 4, value: number): void;
  /** A dword write into one of the function's BARs (the MSI-X table). */
  mmioWrite(bar: number, offset: bigint, width: 32, value: bigint): void;
}

/** Finds the open file behind an fd of the calling process (fget). */
export type FileLookup = (fd: number) => OpenFile | undefined;

interface IrqContext {
  trigger: EventFdFile | undefined;
  masked: boolean;
  unmask?: Virqfd;
  /** Host resources to give back when the context goes away. */
  release?: () => void;
}

/** vfio_virqfd: runs `handler` whenever userspace signals the eventfd. */
class Virqfd {
  private readonly unsubscribe: () => void;
  constructor(
    private readonly file: EventFdFile,
    handler: () => boolean,
    thread: () => void,
  ) {
    const fire = () => {
      if (!file.readable()) return;
      file.read();
      if (handler()) thread();
    };
    this.unsubscribe = file.onReadable(fire);
    if (file.readable()) fire();
  }
  disable(): void {
    this.unsubscribe();
  }
}

export class VfioPciIrqs {
  irqType = IRQ_NONE;
  msiQmax = 0;
  private readonly ctx = new Map<number, IrqContext>();
  private errTrigger: EventFdFile | undefined;
  private reqTrigger: EventFdFile | undefined;
  private releaseIntxHandler: (() => void) | undefined;
  private msiBase = -1;
  private msiCount = 0;
  /** The PCI core's MSI-X state of the function, when it has MSI-X. */
  private readonly msix: MsixHostVectors | undefined;

  constructor(
    private readonly hw: IrqHardware,
    private readonly lookup: FileLookup,
    /** vdev->virq_disabled: the user set INTx disable in the virtual command register. */
    private readonly virqDisabled: () => boolean,
    private readonly faults: FaultInjector,
  ) {
    this.msix = hw.msixCap
      ? new MsixHostVectors({
          capability: hw.msixCap,
          msi: hw.msi,
          readConfig: (o, w) => hw.readConfig(o, w),
          writeConfig: (o, w, v) => hw.writeConfig(o, w, v),
          mmioWrite: (b, o, w, v) => hw.mmioWrite(b, o, w, v),
        })
      : undefined;
  }

  /**
   * vdev->has_dyn_msix: with MSI-X the x86 PCI/MSI domain allocates vectors one at a time, so
   * the enabled set can grow after enabling (VFIO_IRQ_INFO_NORESIZE is not reported).
   */
  get dynamicMsix(): boolean {
    return this.msix !== undefined;
  }

  /** vfio_pci_get_irq_count. */
  count(index: number, virtualPin: number): number {
    switch (index) {
      case VFIO_PCI_INTX_IRQ_INDEX:
        return virtualPin ? 1 : 0;
      case VFIO_PCI_MSI_IRQ_INDEX:
        return this.hw.msiCap ? 1 << ((this.hw.readConfig(this.hw.msiCap + PCI_MSI_FLAGS, 2) & PCI_MSI_FLAGS_QMASK) >> 1) : 0;
      case VFIO_PCI_MSIX_IRQ_INDEX:
        return this.hw.msixCap ? (this.hw.readConfig(this.hw.msixCap + PCI_MSIX_FLAGS, 2) & PCI_MSIX_FLAGS_QSIZE) + 1 : 0;
      case VFIO_PCI_ERR_IRQ_INDEX:
      case VFIO_PCI_REQ_IRQ_INDEX:
        return 1;
      default:
        return 0;
    }
  }

  /** VFIO_DEVICE_SET_IRQS after the header was validated (vfio_pci_set_irqs_ioctl). */
  set(flags: number, index: number, start: number, count: number, data: Uint8Array | null): void {
    const action = flags & VFIO_IRQ_SET_ACTION_TYPE_MASK;
    let fn: ((flags: number, index: number, start: number, count: number, data: Uint8Array | null) => void) | undefined;
    switch (index) {
      case VFIO_PCI_INTX_IRQ_INDEX:
        if (action === VFIO_IRQ_SET_ACTION_MASK) fn = this.setIntxMask;
        else if (action === VFIO_IRQ_SET_ACTION_UNMASK) fn = this.setIntxUnmask;
        else if (action === VFIO_IRQ_SET_ACTION_TRIGGER) fn = this.setIntxTrigger;
        break;
      case VFIO_PCI_MSI_IRQ_INDEX:
      case VFIO_PCI_MSIX_IRQ_INDEX:
        if (action === VFIO_IRQ_SET_ACTION_TRIGGER) fn = this.setMsiTrigger;
        break;
      case VFIO_PCI_ERR_IRQ_INDEX:
        if (action === VFIO_IRQ_SET_ACTION_TRIGGER)
          fn = (f, i, s, c, d) => {
            this.errTrigger = this.setSingle(this.errTrigger, i === VFIO_PCI_ERR_IRQ_INDEX, s, c, f, d);
          };
        break;
      case VFIO_PCI_REQ_IRQ_INDEX:
        if (action === VFIO_IRQ_SET_ACTION_TRIGGER)
          fn = (f, i, s, c, d) => {
            this.reqTrigger = this.setSingle(this.reqTrigger, i === VFIO_PCI_REQ_IRQ_INDEX, s, c, f, d);
          };
        break;
    }
    if (!fn) fail('ENOTTY', 'no handler for this index/action combination (vfio_pci_set_irqs_ioctl)');
    fn.call(this, flags, index, start, count, data);
  }

  /** Tells the user the device is wanted back (vfio_pci_core_request): signals REQ. */
  request(): boolean {
    if (!this.reqTrigger) return false;
    this.reqTrigger.signal(1n);
    return true;
  }

  /** An AER error reached the device (vfio_pci_core_aer_err_detected): signals ERR. */
  signalError(): void {
    this.errTrigger?.signal(1n);
  }

  /** Device close: disable whatever is active and drop ERR/REQ (vfio_pci_core_disable/close). */
  /** pci_restore_msi_state's MSI-X half, after a reset of the function (or its bus). */
  restoreAfterReset(): void {
    this.msix?.restore();
  }

  shutdown(): void {
    if (this.irqType === VFIO_PCI_INTX_IRQ_INDEX) this.intxDisable();
    else if (this.irqType === VFIO_PCI_MSI_IRQ_INDEX || this.irqType === VFIO_PCI_MSIX_IRQ_INDEX) this.msiDisable();
    this.errTrigger = undefined;
    this.reqTrigger = undefined;
  }

  // ---- INTx ----

  /** __vfio_pci_intx_mask: returns true when the masked state changed. */
  intxMask(): boolean {
    if (this.irqType !== VFIO_PCI_INTX_IRQ_INDEX) {
      if (this.hw.pci23) this.pciIntx(false);
      return false;
    }
    const c = this.ctx.get(0)!;
    if (c.masked) return false;
    if (this.hw.pci23) this.pciIntx(false);
    c.masked = true;
    return true;
  }

  /** vfio_pci_intx_unmask: re-sends the interrupt when the device is still asserting. */
  intxUnmask(): void {
    if (this.unmaskHandler()) this.sendIntx();
  }

  private unmaskHandler(): boolean {
    if (this.irqType !== VFIO_PCI_INTX_IRQ_INDEX) {
      if (this.hw.pci23) this.pciIntx(true);
      return false;
    }
    const c = this.ctx.get(0)!;
    let resend = false;
    if (c.masked && !this.virqDisabled()) {
      if (this.hw.pci23) resend = !this.checkAndSetIntxMask(false);
      c.masked = resend;
    }
    return resend;
  }

  private sendIntx(): void {
    if (this.irqType !== VFIO_PCI_INTX_IRQ_INDEX || this.virqDisabled()) return;
    this.ctx.get(0)?.trigger?.signal(1n);
  }

  /** pci_intx(pdev, enable): drive the physical INTx-disable bit. */
  private pciIntx(enable: boolean): void {
    const cmd = this.hw.readConfig(PCI_COMMAND, 2);
    const next = enable ? cmd & ~PCI_COMMAND_INTX_DISABLE : cmd | PCI_COMMAND_INTX_DISABLE;
    if (next !== cmd) this.hw.writeConfig(PCI_COMMAND, 2, next);
  }

  /** pci_check_and_set_intx_mask: mask only when pending, unmask only when not pending. */
  private checkAndSetIntxMask(mask: boolean): boolean {
    const dword = this.hw.readConfig(PCI_COMMAND, 4);
    const pending = ((dword >>> 16) & PCI_STATUS_INTERRUPT) !== 0;
    if (mask !== pending) return false;
    const cmd = dword & 0xffff;
    const next = mask ? cmd | PCI_COMMAND_INTX_DISABLE : cmd & ~PCI_COMMAND_INTX_DISABLE;
    if (next !== cmd) this.hw.writeConfig(PCI_COMMAND, 2, next);
    return true;
  }

  /** vfio_intx_handler: a shared, level-triggered line; mask at the device and tell the user. */
  private intxHandler = (): void => {
    const c = this.ctx.get(0);
    if (!c) return;
    let handled = false;
    if (!this.hw.pci23) {
      c.masked = true;
      handled = true;
    } else if (!c.masked && this.checkAndSetIntxMask(true)) {
      c.masked = true;
      handled = true;
    }
    if (handled) this.sendIntx();
  };

  private intxEnable(trigger: EventFdFile | undefined): void {
    if (this.irqType !== IRQ_NONE) fail('EINVAL', 'another interrupt type is active');
    const line = this.hw.irqLine;
    if (!line || line.irq === 0) fail('ENODEV', 'INTx is not routed to a host interrupt');
    this.faults.point('vfio.irq-ctx-alloc'); // vfio_irq_ctx_alloc (lib/model/faults.ts)
    const c: IrqContext = { trigger, masked: this.virqDisabled() };
    this.ctx.set(0, c);
    if (this.hw.pci23) this.pciIntx(!c.masked);
    this.irqType = VFIO_PCI_INTX_IRQ_INDEX;
    this.releaseIntxHandler = line.request(this.intxHandler);
  }

  private intxDisable(): void {
    const c = this.ctx.get(0);
    if (c) {
      c.unmask?.disable();
      this.releaseIntxHandler?.();
      this.releaseIntxHandler = undefined;
      this.ctx.delete(0);
    }
    this.irqType = IRQ_NONE;
  }

  private setIntxUnmask(flags: number, _index: number, start: number, count: number, data: Uint8Array | null): void {
    if (this.irqType !== VFIO_PCI_INTX_IRQ_INDEX || start !== 0 || count !== 1)
      fail('EINVAL', 'INTx is not enabled, or start/count is not 0/1');
    if (flags & VFIO_IRQ_SET_DATA_NONE) {
      this.intxUnmask();
    } else if (flags & VFIO_IRQ_SET_DATA_BOOL) {
      if (data![0]) this.intxUnmask();
    } else if (flags & VFIO_IRQ_SET_DATA_EVENTFD) {
      const c = this.ctx.get(0)!;
      const fd = Buffer.from(data!.buffer, data!.byteOffset, 4).readInt32LE(0);
      if (fd >= 0) {
        if (c.unmask) fail('EBUSY', 'an unmask eventfd is already set (vfio_virqfd_enable)');
        const file = this.eventfdFromFd(fd);
        c.unmask = new Virqfd(
          file,
          () => this.unmaskHandler(),
          () => this.sendIntx(),
        );
        return;
      }
      c.unmask?.disable();
      c.unmask = undefined;
    }
  }

  private setIntxMask(flags: number, _index: number, start: number, count: number, data: Uint8Array | null): void {
    if (this.irqType !== VFIO_PCI_INTX_IRQ_INDEX || start !== 0 || count !== 1)
      fail('EINVAL', 'INTx is not enabled, or start/count is not 0/1');
    if (flags & VFIO_IRQ_SET_DATA_NONE) this.intxMask();
    else if (flags & VFIO_IRQ_SET_DATA_BOOL) {
      if (data![0]) this.intxMask();
    } else if (flags & VFIO_IRQ_SET_DATA_EVENTFD) fail('ENOTTY', 'the kernel offers no eventfd masking for INTx');
  }

  private setIntxTrigger(flags: number, _index: number, start: number, count: number, data: Uint8Array | null): void {
    const isIntx = this.irqType === VFIO_PCI_INTX_IRQ_INDEX;
    if (isIntx && !count && flags & VFIO_IRQ_SET_DATA_NONE) {
      this.intxDisable();
      return;
    }
    if (!(isIntx || this.irqType === IRQ_NONE) || start !== 0 || count !== 1)
      fail('EINVAL', 'another interrupt type is active, or start/count is not 0/1');
    if (flags & VFIO_IRQ_SET_DATA_EVENTFD) {
      const fd = Buffer.from(data!.buffer, data!.byteOffset, 4).readInt32LE(0);
      const trigger = fd >= 0 ? this.eventfdFromFd(fd) : undefined;
      if (isIntx) this.ctx.get(0)!.trigger = trigger;
      else this.intxEnable(trigger);
      return;
    }
    if (!isIntx) fail('EINVAL', 'INTx is not enabled');
    if (flags & VFIO_IRQ_SET_DATA_NONE) this.sendIntx();
    else if (flags & VFIO_IRQ_SET_DATA_BOOL) {
      if (data![0]) this.sendIntx();
    }
  }

  // ---- MSI / MSI-X ----

  private setMsiTrigger(flags: number, index: number, start: number, count: number, data: Uint8Array | null): void {
    const msix = index === VFIO_PCI_MSIX_IRQ_INDEX;
    if (this.irqType === index && !count && flags & VFIO_IRQ_SET_DATA_NONE) {
      this.msiDisable();
      return;
    }
    if (!(this.irqType === index || this.irqType === IRQ_NONE)) fail('EINVAL', 'another interrupt type is active');
    if (flags & VFIO_IRQ_SET_DATA_EVENTFD) {
      const fds: number[] = [];
      for (let i = 0; i < count; i++) fds.push(Buffer.from(data!.buffer, data!.byteOffset, data!.byteLength).readInt32LE(4 * i));
      if (this.irqType === index) {
        this.msiSetBlock(start, fds, msix);
        return;
      }
      this.msiEnable(start + count, msix);
      try {
        this.msiSetBlock(start, fds, msix);
      } catch (e) {
        this.msiDisable();
        throw e;
      }
      return;
    }
    if (this.irqType !== index) fail('EINVAL', 'MSI is not enabled');
    for (let i = start; i < start + count; i++) {
      const c = this.ctx.get(i);
      if (!c) continue;
      if (flags & VFIO_IRQ_SET_DATA_NONE) c.trigger?.signal(1n);
      else if (flags & VFIO_IRQ_SET_DATA_BOOL && data![i - start]) c.trigger?.signal(1n);
    }
  }

  /**
   * vfio_msi_enable: pci_alloc_irq_vectors programs the function's MSI capability, or its MSI-X
   * capability and vector table for entries 0..nvec-1.
   */
  private msiEnable(nvec: number, msix: boolean): void {
    if (this.irqType !== IRQ_NONE) fail('EINVAL', 'another interrupt type is active');
    // pci_alloc_irq_vectors(pdev, 1, nvec): __pci_enable_msi(x)_range answers ERANGE when the
    // maximum (0 vectors: SET_IRQS with count 0 and eventfd data) is below the minimum of 1.
    if (nvec < 1) fail('ERANGE', 'no vectors requested');
    if (msix) {
      this.msix!.enable(nvec);
      this.irqType = VFIO_PCI_MSIX_IRQ_INDEX;
      return;
    }
    const pos = this.hw.msiCap;
    const flags = this.hw.readConfig(pos + PCI_MSI_FLAGS, 2);
    const max = 1 << ((flags & PCI_MSI_FLAGS_QMASK) >> 1);
    if (nvec > max) fail('EINVAL', 'more vectors than the function has');
    const log2 = Math.ceil(Math.log2(nvec));
    const allocated = 1 << log2;
    const base = this.hw.msi.allocate(allocated);
    const is64 = (flags & PCI_MSI_FLAGS_64BIT) !== 0;
    this.hw.writeConfig(pos + PCI_MSI_ADDRESS_LO, 4, Number(MSI_ADDRESS_BASE));
    if (is64) this.hw.writeConfig(pos + PCI_MSI_ADDRESS_HI, 4, 0);
    this.hw.writeConfig(pos + (is64 ? PCI_MSI_DATA_64 : PCI_MSI_DATA_32), 2, base);
    // pci_intx_for_msi: INTx off while MSI is on.
    this.pciIntx(false);
    this.hw.writeConfig(pos + PCI_MSI_FLAGS, 2, (flags & ~PCI_MSI_FLAGS_QSIZE) | (log2 << 4) | PCI_MSI_FLAGS_ENABLE);
    this.msiBase = base;
    this.msiCount = allocated;
    this.irqType = msix ? VFIO_PCI_MSIX_IRQ_INDEX : VFIO_PCI_MSI_IRQ_INDEX;
    // The virtual MSI flags advertise what was enabled: fls(nvec * 2 - 1) - 1.
    this.msiQmax = 31 - Math.clz32(nvec * 2 - 1);
  }

  /**
   * vfio_msi_set_vector_signal: an existing eventfd's interrupt is freed (for MSI-X the entry is
   * masked, its vector stays allocated); a new eventfd gets the vector (for MSI-X allocated now
   * if the entry has none: dynamic MSI-X), its message rewritten and the interrupt requested.
   */
  private msiSetVectorSignal(vector: number, fd: number, msix: boolean): void {
    const old = this.ctx.get(vector);
    let irq: number | undefined;
    if (old) {
      irq = msix ? this.msix!.hostVector(vector) : this.msiBase + vector;
      if (irq !== undefined) this.hw.msi.setHandler(irq, undefined);
      if (msix) this.msix!.setMasked(vector, true);
      this.ctx.delete(vector);
    }
    if (fd < 0) return;
    if (irq === undefined) irq = this.msiAllocIrq(vector, msix);
    this.faults.point('vfio.irq-ctx-alloc'); // vfio_irq_ctx_alloc
    const trigger = this.eventfdFromFd(fd);
    if (msix) this.msix!.writeMessage(vector);
    this.ctx.set(vector, { trigger, masked: false });
    this.hw.msi.setHandler(irq, () => trigger.signal(1n));
    if (msix) this.msix!.setMasked(vector, false);
  }

  /** vfio_msi_alloc_irq: MSI has what pci_alloc_irq_vectors gave; MSI-X allocates on demand. */
  private msiAllocIrq(vector: number, msix: boolean): number {
    if (!msix) {
      if (vector >= this.msiCount) fail('EINVAL', 'vector was not allocated');
      return this.msiBase + vector;
    }
    return this.msix!.hostVector(vector) ?? this.msix!.allocate(vector);
  }

  private msiSetBlock(start: number, fds: number[], msix: boolean): void {
    let j = start;
    try {
      for (let i = 0; i < fds.length; i++, j++) this.msiSetVectorSignal(j, fds[i]!, msix);
    } catch (e) {
      for (let i = start; i < j; i++) this.msiSetVectorSignal(i, -1, msix);
      throw e;
    }
  }

  private msiDisable(): void {
    const msix = this.irqType === VFIO_PCI_MSIX_IRQ_INDEX;
    for (const vector of [...this.ctx.keys()]) this.msiSetVectorSignal(vector, -1, msix);
    if (msix) {
      this.msix!.disable();
    } else if (this.msiBase >= 0) {
      const pos = this.hw.msiCap;
      const flags = this.hw.readConfig(pos + PCI_MSI_FLAGS, 2);
      this.hw.writeConfig(pos + PCI_MSI_FLAGS, 2, flags & ~PCI_MSI_FLAGS_ENABLE & ~PCI_MSI_FLAGS_QSIZE);
      this.pciIntx(true);
      this.hw.msi.free(this.msiBase, this.msiCount);
    }
    this.msiBase = -1;
    this.msiCount = 0;
    this.irqType = IRQ_NONE;
  }

  // ---- ERR / REQ ----

  /** vfio_pci_set_ctx_trigger_single: returns the new trigger. */
  private setSingle(
    current: EventFdFile | undefined,
    indexOk: boolean,
    start: number,
    count: number,
    flags: number,
    data: Uint8Array | null,
  ): EventFdFile | undefined {
    if (!indexOk || start !== 0 || count > 1) fail('EINVAL', 'start must be 0 and count 0 or 1');
    if (flags & VFIO_IRQ_SET_DATA_NONE) {
      if (!current) fail('EINVAL', 'no eventfd is set');
      if (count) {
        current.signal(1n);
        return current;
      }
      return undefined;
    }
    if (flags & VFIO_IRQ_SET_DATA_BOOL) {
      if (!count) fail('EINVAL', 'count is 0');
      if (data![0]) current?.signal(1n);
      return current;
    }
    if (flags & VFIO_IRQ_SET_DATA_EVENTFD) {
      if (!count) fail('EINVAL', 'count is 0');
      const fd = Buffer.from(data!.buffer, data!.byteOffset, 4).readInt32LE(0);
      if (fd === -1) return undefined;
      if (fd >= 0) return this.eventfdFromFd(fd);
    }
    fail('EINVAL', 'bad eventfd');
  }

  /** eventfd_ctx_fdget: EBADF for a closed fd, EINVAL for a file that is not an eventfd. */
  private eventfdFromFd(fd: number): EventFdFile {
    const file = this.lookup(fd);
    if (!file) fail('EBADF', `fd ${fd} is not open`);
    if (!(file instanceof EventFdFile)) fail('EINVAL', `fd ${fd} is not an eventfd`);
    return file;
  }
}

/** Validation of the vfio_irq_set header (vfio_set_irqs_validate_and_prepare); returns the data size. */
export function validateIrqSet(
  hdr: { argsz: number; flags: number; index: number; start: number; count: number },
  numIrqs: number,
  maxIrqType: number,
): number {
  const minsz = 20;
  if (
    hdr.argsz < minsz ||
    hdr.index >= maxIrqType ||
    hdr.count >= 0xffff_ffff - hdr.start ||
    hdr.flags & ~(VFIO_IRQ_SET_DATA_TYPE_MASK | VFIO_IRQ_SET_ACTION_TYPE_MASK)
  ) {
    fail('EINVAL', 'bad argsz, index, count or flags');
  }
  if (hdr.start >= numIrqs || hdr.start + hdr.count > numIrqs) fail('EINVAL', 'start/count beyond the vectors of this index');
  let size: number;
  switch (hdr.flags & VFIO_IRQ_SET_DATA_TYPE_MASK) {
    case VFIO_IRQ_SET_DATA_NONE:
      size = 0;
      break;
    case VFIO_IRQ_SET_DATA_BOOL:
      size = 1;
      break;
    case VFIO_IRQ_SET_DATA_EVENTFD:
      size = 4;
      break;
    default:
      fail('EINVAL', 'exactly one DATA_ type must be set');
  }
  if (size && hdr.argsz - minsz < hdr.count * size) fail('EINVAL', 'argsz too small for the data array');
  return hdr.count * size;
}
