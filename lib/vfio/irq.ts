/**
 * Device interrupts. VFIO signals each interrupt vector through an eventfd; a vector here owns
 * its eventfd and is an async iterator of interrupt counts (how many interrupts arrived since the
 * last read), waiting on the event loop without blocking it. INTx, MSI and MSI-X exclude each
 * other (vfio-pci keeps one `irq_type`); the error (ERR) and request (REQ) notifications are
 * separate indexes and live beside whichever of them is on.
 */
import type { Kernel } from '../sys/kernel';
import { EFD_CLOEXEC, EFD_NONBLOCK } from '../sys/constants';
import { VfioError, isVfioError } from '../sys/errors';
import * as V from '../uapi/vfio';
import { FileDescriptor, Resource } from '../support/resource';
import * as io from '../ioctl/device-ioctls';
import type { IrqInfo } from '../ioctl/device-ioctls';

/**
 * Interrupt kinds of a PCI device: INTx, MSI, MSI-X, and VFIO's error and request notifications.
 *
 * @category Interrupts
 */
export type IrqKind = 'intx' | 'msi' | 'msix' | 'err' | 'req';
const INDEX: Record<IrqKind, number> = {
  intx: V.VFIO_PCI_INTX_IRQ_INDEX,
  msi: V.VFIO_PCI_MSI_IRQ_INDEX,
  msix: V.VFIO_PCI_MSIX_IRQ_INDEX,
  err: V.VFIO_PCI_ERR_IRQ_INDEX,
  req: V.VFIO_PCI_REQ_IRQ_INDEX,
};
/** The kinds that share vfio-pci's single interrupt type: enabling one disables the others. */
const EXCLUSIVE: readonly IrqKind[] = ['intx', 'msi', 'msix'];

function checkKind(kind: unknown, where: string): IrqKind {
  if (typeof kind !== 'string' || !Object.prototype.hasOwnProperty.call(INDEX, kind)) {
    throw new TypeError(`${where}: kind must be one of ${Object.keys(INDEX).join(', ')}, got ${String(kind)}`);
  }
  return kind as IrqKind;
}

function checkCount(value: unknown, name: string, where: string, min: number): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > 0xffff_ffff) {
    throw new RangeError(`${where}: ${name} must be an integer from ${min} to 2^32-1, got ${String(value)}`);
  }
  return value;
}

/** What the interrupt manager needs from its device. */
/** @internal */
export interface IrqOwner {
  readonly kernel: Kernel;
  readonly description: string;
  liveFd(operation: string): number;
  /** True while the device closes: the kernel tears down its interrupts with the fd. */
  readonly tearingDown: boolean;
  ownVector<T extends Resource>(vector: T): T;
}

/**
 * Waiters that passed an AbortSignal, by signal: one 'abort' listener per signal however many
 * waits use it, so a long-lived signal shared by many waits neither grows nor warns.
 */
const abortWaiters = new WeakMap<AbortSignal, Set<() => void>>();

function onAbort(signal: AbortSignal, cancel: () => void): () => void {
  let set = abortWaiters.get(signal);
  if (!set) {
    const waiters = new Set<() => void>();
    set = waiters;
    abortWaiters.set(signal, waiters);
    signal.addEventListener(
      'abort',
      () => {
        abortWaiters.delete(signal);
        for (const c of [...waiters]) c();
      },
      { once: true },
    );
  }
  const waiters = set;
  waiters.add(cancel);
  return () => {
    waiters.delete(cancel);
  };
}

/** The one eventfd read that the overlapping waits of a vector share. */
interface SharedRead {
  readonly promise: Promise<bigint>;
  readonly stop: AbortController;
  /** Waits still interested; at 0 the read is stopped. */
  waiters: number;
}

/**
 * One interrupt vector and its eventfd.
 *
 * @category Interrupts
 */
export class InterruptVector extends Resource implements AsyncIterable<bigint> {
  private readonly file: FileDescriptor;
  /**
   * The read every current waiter shares: one interrupt resolves all of them with one count. It
   * is stopped when its last waiter gives up, so no read left behind consumes the next interrupt.
   */
  private reading: SharedRead | undefined;

  /** @internal Created by `Irqs.enable()`. */
  constructor(
    kernel: Kernel,
    private readonly irqs: Irqs,
    /** The interrupt kind of this vector. */
    readonly kind: IrqKind,
    /** The vector number within its kind. */
    readonly vector: number,
  ) {
    super(kernel, `${kind} vector ${vector}`);
    const fd = kernel.eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    const file = new FileDescriptor(kernel, fd, `eventfd (${kind} ${vector})`);
    this.file = file;
    this.armSafetyNet(() => file.close());
  }

  /** The eventfd the kernel signals. */
  get eventfd(): number {
    this.assertOpen('InterruptVector.eventfd');
    return this.file.fd;
  }

  /**
   * Waits for the next interrupt(s); resolves with how many arrived since the last read. Waits
   * that overlap share that read and all resolve with the same count. Rejects with ECANCELED when
   * the vector is closed or `signal` aborts (the other waits go on).
   */
  wait(signal?: AbortSignal): Promise<bigint> {
    this.assertOpen('InterruptVector.wait');
    if (signal !== undefined && !(signal instanceof AbortSignal))
      throw new TypeError('InterruptVector.wait: signal must be an AbortSignal');
    if (signal?.aborted) return Promise.reject(cancelled(this.description));
    const read = (this.reading ??= this.startRead());
    read.waiters++;
    // A wait without a signal can only end with the read, so it keeps the read wanted for good.
    if (!signal) return read.promise;
    return new Promise<bigint>((resolve, reject) => {
      const forget = onAbort(signal, () => {
        this.leave(read);
        reject(cancelled(this.description));
      });
      read.promise.then(
        (n) => {
          forget();
          resolve(n);
        },
        (e: unknown) => {
          forget();
          reject(e);
        },
      );
    });
  }

  private startRead(): SharedRead {
    const stop = new AbortController();
    const promise = this.readNext(stop.signal).finally(() => {
      if (this.reading === read) this.reading = undefined;
    });
    // A read stopped because nobody waits any more rejects with nobody to tell.
    promise.catch(() => undefined);
    const read: SharedRead = { promise, stop, waiters: 0 };
    return read;
  }

  private leave(read: SharedRead): void {
    if (--read.waiters > 0) return;
    if (this.reading === read) this.reading = undefined;
    read.stop.abort();
  }

  private async readNext(stop: AbortSignal): Promise<bigint> {
    for (;;) {
      if (this.closed || stop.aborted) throw cancelled(this.description);
      try {
        return this.kernel.eventfdRead(this.file.fd);
      } catch (e) {
        if (!isVfioError(e, 'EAGAIN')) throw e;
      }
      await this.kernel.waitReadable(this.file.fd, stop);
    }
  }

  /** Interrupt counts, until the vector is closed (then the iteration simply ends). */
  async *[Symbol.asyncIterator](): AsyncIterator<bigint> {
    while (!this.closed) {
      try {
        yield await this.wait();
      } catch (e) {
        if (this.closed && (isVfioError(e, 'ECANCELED') || isVfioError(e, 'EBADF'))) return;
        throw e;
      }
    }
  }

  /** Raises this vector from software (VFIO loopback trigger), e.g. to test a handler. */
  trigger(): void {
    this.assertOpen('InterruptVector.trigger');
    this.irqs.triggerVector(this.kind, this.vector);
  }

  /** Masks this vector (INTx; the kernel refuses MSI and MSI-X masking with ENOTTY). */
  mask(): void {
    this.assertOpen('InterruptVector.mask');
    this.irqs.mask(this.kind, this.vector, 1);
  }

  /** Unmasks this vector; for INTx, re-arms it after an interrupt. */
  unmask(): void {
    this.assertOpen('InterruptVector.unmask');
    this.irqs.unmask(this.kind, this.vector, 1);
  }

  protected release(): void {
    this.reading?.stop.abort();
    try {
      this.irqs.vectorClosed(this);
    } finally {
      this.file.close();
    }
  }
}

/**
 * An eventfd that unmasks INTx when signalled (SET_IRQS ACTION_UNMASK with DATA_EVENTFD): the
 * kernel unmasks without a syscall from the driver, e.g. when the eventfd is also an ioeventfd.
 *
 * @category Interrupts
 */
export class IntxUnmaskEventfd extends Resource {
  private readonly file: FileDescriptor;

  /** @internal Created by `Irqs.unmaskOnEventfd()`. */
  constructor(
    kernel: Kernel,
    private readonly irqs: Irqs,
  ) {
    super(kernel, 'INTx unmask eventfd');
    const fd = kernel.eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    const file = new FileDescriptor(kernel, fd, 'eventfd (INTx unmask)');
    this.file = file;
    this.armSafetyNet(() => file.close());
  }

  /** The eventfd the kernel watches. */
  get eventfd(): number {
    this.assertOpen('IntxUnmaskEventfd.eventfd');
    return this.file.fd;
  }

  /** Unmasks INTx by signalling the eventfd, as another process or an ioeventfd would. */
  signal(): void {
    this.assertOpen('IntxUnmaskEventfd.signal');
    this.kernel.eventfdWrite(this.file.fd, 1n);
  }

  protected release(): void {
    try {
      this.irqs.unmaskEventfdClosed(this);
    } finally {
      this.file.close();
    }
  }
}

function cancelled(what: string): VfioError {
  return VfioError.of('ECANCELED', { syscall: 'poll', context: `waiting on ${what}` });
}

/**
 * The interrupts of one device (`device.irqs`).
 *
 * @category Interrupts
 */
export class Irqs {
  /** The vectors this object enabled, per kind; at most one of the exclusive kinds is present. */
  private readonly enabledVectors = new Map<IrqKind, Map<number, InterruptVector>>();
  private unmasker: IntxUnmaskEventfd | undefined;
  private disabling = false;

  /** @internal Created by VfioDevice. */
  constructor(private readonly owner: IrqOwner) {}

  /** VFIO's description of an interrupt kind: how many vectors, maskable, automasked, resizable. */
  info(kind: IrqKind): IrqInfo {
    return io.deviceGetIrqInfo(this.owner.kernel, this.owner.liveFd('Irqs.info'), INDEX[checkKind(kind, 'Irqs.info')]);
  }

  /** The one of INTx, MSI and MSI-X currently enabled through this object, if any. */
  get enabledKind(): IrqKind | undefined {
    return EXCLUSIVE.find((k) => this.enabledVectors.has(k));
  }

  /** The vectors of `kind` enabled through this object, by vector number. */
  vectors(kind: IrqKind): InterruptVector[] {
    return [...(this.enabledVectors.get(checkKind(kind, 'Irqs.vectors'))?.values() ?? [])].sort((a, b) => a.vector - b.vector);
  }

  /**
   * Enables `count` vectors of `kind` (0 .. count-1), each signalling its own eventfd. Enabling
   * INTx, MSI or MSI-X disables whichever of the three is on first; ERR and REQ are enabled beside
   * them. Enabling a kind that is already on replaces its vectors. INTx is automasked: after
   * handling an interrupt call `unmask('intx')` (or use `unmaskOnEventfd()`).
   */
  enable(kind: IrqKind, count = 1): InterruptVector[] {
    checkKind(kind, 'Irqs.enable');
    const fd = this.owner.liveFd('Irqs.enable');
    checkCount(count, 'count', 'Irqs.enable', 1);
    const available = this.info(kind).count;
    if (count > available) throw this.tooMany(kind, count, available);
    if (this.enabledVectors.has(kind)) this.disable(kind);
    if (EXCLUSIVE.includes(kind)) {
      const other = this.enabledKind;
      if (other) this.disable(other);
    }
    const vectors = this.createVectors(kind, 0, count);
    try {
      io.deviceSetIrqs(this.owner.kernel, fd, {
        index: INDEX[kind],
        action: 'trigger',
        start: 0,
        count,
        data: { kind: 'eventfd', fds: vectors.map((v) => v.eventfd) },
      });
    } catch (e) {
      this.closeQuietly(vectors);
      throw e;
    }
    this.enabledVectors.set(kind, new Map(vectors.map((v) => [v.vector, v])));
    return vectors;
  }

  /**
   * Changes how many vectors of an enabled `kind` are on without touching the others: growing
   * adds vectors count-old .. count-1 (the kernel allocates them on the fly, Linux 6.5+ MSI-X),
   * shrinking disables and closes the highest ones. Returns every vector now enabled. Kinds the
   * kernel flags VFIO_IRQ_INFO_NORESIZE (MSI) must be disabled and enabled again instead.
   */
  resize(kind: IrqKind, count: number): InterruptVector[] {
    checkKind(kind, 'Irqs.resize');
    const fd = this.owner.liveFd('Irqs.resize');
    checkCount(count, 'count', 'Irqs.resize', 1);
    const current = this.enabledVectors.get(kind);
    if (!current)
      throw VfioError.condition('ERR_VFIO_IRQ_NOT_ENABLED', {
        check: `Irqs.resize: ${kind} is not enabled on ${this.owner.description}; enable() it first`,
      });
    const info = this.info(kind);
    if (count > info.count) throw this.tooMany(kind, count, info.count);
    if ((info.flags & V.VFIO_IRQ_INFO_NORESIZE) !== 0) {
      throw VfioError.condition('ERR_VFIO_IRQ_NORESIZE', {
        check: `Irqs.resize: the kernel cannot resize ${kind} while it is enabled (VFIO_IRQ_INFO_NORESIZE)`,
        hint: 'disable() it and enable() it again with the new count',
      });
    }
    const highest = Math.max(...current.keys()) + 1;
    if (count > highest) {
      const added = this.createVectors(kind, highest, count - highest);
      try {
        io.deviceSetIrqs(this.owner.kernel, fd, {
          index: INDEX[kind],
          action: 'trigger',
          start: highest,
          count: added.length,
          data: { kind: 'eventfd', fds: added.map((v) => v.eventfd) },
        });
      } catch (e) {
        this.closeQuietly(added);
        throw e;
      }
      for (const v of added) current.set(v.vector, v);
    } else if (count < highest) {
      const removed = [...current.values()].filter((v) => v.vector >= count);
      io.deviceSetIrqs(this.owner.kernel, fd, {
        index: INDEX[kind],
        action: 'trigger',
        start: count,
        count: highest - count,
        data: { kind: 'eventfd', fds: new Array<number>(highest - count).fill(-1) },
      });
      for (const v of removed) current.delete(v.vector);
      this.closeQuietly(removed);
    }
    return this.vectors(kind);
  }

  /** Disables every vector of `kind` and closes their eventfds. */
  disable(kind: IrqKind): void {
    checkKind(kind, 'Irqs.disable');
    const fd = this.owner.liveFd('Irqs.disable');
    const current = this.enabledVectors.get(kind);
    if (!current) return;
    this.enabledVectors.delete(kind);
    if (kind === 'intx') this.dropUnmasker();
    try {
      io.deviceSetIrqs(this.owner.kernel, fd, { index: INDEX[kind], action: 'trigger', start: 0, count: 0, data: { kind: 'none' } });
    } finally {
      this.closeQuietly([...current.values()]);
    }
  }

  /** Masks vectors [start, start+count) of `kind` (INTx; MSI and MSI-X masking is ENOTTY). */
  mask(kind: IrqKind, start = 0, count = 1): void {
    this.maskAction('mask', kind, start, count);
  }

  /** Unmasks vectors [start, start+count) of `kind`; for INTx, re-arms it after an interrupt. */
  unmask(kind: IrqKind, start = 0, count = 1): void {
    this.maskAction('unmask', kind, start, count);
  }

  /**
   * An eventfd that unmasks INTx whenever it is signalled; closing it stops that. INTx must be
   * enabled; one at a time (a second call replaces the first).
   */
  unmaskOnEventfd(): IntxUnmaskEventfd {
    const fd = this.owner.liveFd('Irqs.unmaskOnEventfd');
    const unmasker = this.owner.ownVector(new IntxUnmaskEventfd(this.owner.kernel, this));
    try {
      io.deviceSetIrqs(this.owner.kernel, fd, {
        index: V.VFIO_PCI_INTX_IRQ_INDEX,
        action: 'unmask',
        start: 0,
        count: 1,
        data: { kind: 'eventfd', fds: [unmasker.eventfd] },
      });
    } catch (e) {
      this.closeQuietly([unmasker]);
      throw e;
    }
    const previous = this.unmasker;
    this.unmasker = unmasker;
    if (previous) this.closeQuietly([previous]);
    return unmasker;
  }

  /** @internal Software trigger of one vector. */
  triggerVector(kind: IrqKind, vector: number): void {
    io.deviceSetIrqs(this.owner.kernel, this.owner.liveFd('InterruptVector.trigger'), {
      index: INDEX[kind],
      action: 'trigger',
      start: vector,
      count: 1,
      data: { kind: 'none' },
    });
  }

  /** @internal A vector closed by itself: stop the kernel signalling its (soon closed) eventfd. */
  vectorClosed(vector: InterruptVector): void {
    if (this.disabling || this.owner.tearingDown) return;
    const current = this.enabledVectors.get(vector.kind);
    if (!current || current.get(vector.vector) !== vector) return;
    current.delete(vector.vector);
    const fd = this.owner.liveFd('InterruptVector.close');
    if (current.size === 0) {
      this.enabledVectors.delete(vector.kind);
      if (vector.kind === 'intx') this.dropUnmasker();
      io.deviceSetIrqs(this.owner.kernel, fd, { index: INDEX[vector.kind], action: 'trigger', start: 0, count: 0, data: { kind: 'none' } });
      return;
    }
    io.deviceSetIrqs(this.owner.kernel, fd, {
      index: INDEX[vector.kind],
      action: 'trigger',
      start: vector.vector,
      count: 1,
      data: { kind: 'eventfd', fds: [-1] },
    });
  }

  /** @internal The unmask eventfd closed by itself: the kernel must stop watching it. */
  unmaskEventfdClosed(unmasker: IntxUnmaskEventfd): void {
    if (this.unmasker !== unmasker) return;
    this.unmasker = undefined;
    if (this.disabling || this.owner.tearingDown || !this.enabledVectors.has('intx')) return;
    io.deviceSetIrqs(this.owner.kernel, this.owner.liveFd('IntxUnmaskEventfd.close'), {
      index: V.VFIO_PCI_INTX_IRQ_INDEX,
      action: 'unmask',
      start: 0,
      count: 1,
      data: { kind: 'eventfd', fds: [-1] },
    });
  }

  /** @internal The device is closing: the kernel drops every interrupt with the fd. */
  forget(): void {
    this.enabledVectors.clear();
    this.unmasker = undefined;
  }

  private maskAction(action: 'mask' | 'unmask', kind: IrqKind, start: number, count: number): void {
    const where = `Irqs.${action}`;
    checkKind(kind, where);
    checkCount(start, 'start', where, 0);
    checkCount(count, 'count', where, 0);
    io.deviceSetIrqs(this.owner.kernel, this.owner.liveFd(where), { index: INDEX[kind], action, start, count, data: { kind: 'none' } });
  }

  private createVectors(kind: IrqKind, first: number, count: number): InterruptVector[] {
    const vectors: InterruptVector[] = [];
    try {
      for (let i = 0; i < count; i++) vectors.push(this.owner.ownVector(new InterruptVector(this.owner.kernel, this, kind, first + i)));
    } catch (e) {
      this.closeQuietly(vectors);
      throw e;
    }
    return vectors;
  }

  /** Closes resources whose kernel side is already gone (or never was), without SET_IRQS calls. */
  private closeQuietly(resources: readonly Resource[]): void {
    const was = this.disabling;
    this.disabling = true;
    try {
      for (const r of resources) r.close();
    } finally {
      this.disabling = was;
    }
  }

  private dropUnmasker(): void {
    const unmasker = this.unmasker;
    this.unmasker = undefined;
    // Disabling INTx drops the kernel's unmask eventfd too (vfio_intx_disable).
    if (unmasker) this.closeQuietly([unmasker]);
  }

  private tooMany(kind: IrqKind, count: number, available: number): VfioError {
    return VfioError.condition('ERR_VFIO_TOO_MANY_VECTORS', {
      check: `${this.owner.description} has ${available} ${kind} vector(s), ${count} requested`,
      ...(available === 0 ? { hint: `the device has no ${kind} capability (see config.capabilities())` } : {}),
    });
  }
}
