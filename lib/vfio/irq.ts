/**
 * Device interrupts. VFIO signals each interrupt vector through an eventfd; a vector here owns
 * its eventfd and is an async iterator of interrupt counts (how many interrupts arrived since the
 * last read), waiting on the event loop without blocking it. Only one kind (INTx, MSI or MSI-X)
 * is active on a device at a time.
 */
import type { Kernel } from '../sys/kernel';
import { EFD_CLOEXEC, EFD_NONBLOCK } from '../sys/constants';
import { VfioError, isVfioError } from '../sys/errors';
import * as V from '../uapi/vfio';
import { FileDescriptor, Resource } from '../support/resource';
import * as io from '../ioctl/device-ioctls';
import type { IrqInfo } from '../ioctl/device-ioctls';

/** Interrupt kinds of a PCI device: INTx, MSI, MSI-X, and VFIO's error and request notifications. */
export type IrqKind = 'intx' | 'msi' | 'msix' | 'err' | 'req';
const INDEX: Record<IrqKind, number> = {
  intx: V.VFIO_PCI_INTX_IRQ_INDEX, msi: V.VFIO_PCI_MSI_IRQ_INDEX, msix: V.VFIO_PCI_MSIX_IRQ_INDEX,
  err: V.VFIO_PCI_ERR_IRQ_INDEX, req: V.VFIO_PCI_REQ_IRQ_INDEX,
};

/** What the interrupt manager needs from its device. */
/** @internal */
export interface IrqOwner {
  readonly kernel: Kernel;
  readonly description: string;
  liveFd(operation: string): number;
  /** True while the device closes: the kernel tears down its interrupts with the fd. */
  readonly tearingDown: boolean;
  ownVector(vector: InterruptVector): InterruptVector;
}

/** One interrupt vector and its eventfd. */
export class InterruptVector extends Resource implements AsyncIterable<bigint> {
  private readonly file: FileDescriptor;
  private readonly aborter = new AbortController();

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
   * Waits for the next interrupt(s); resolves with how many arrived since the last read.
   * Rejects with ECANCELED when the vector is closed or `signal` aborts.
   */
  async wait(signal?: AbortSignal): Promise<bigint> {
    this.assertOpen('InterruptVector.wait');
    const combined = signal ? AbortSignal.any([signal, this.aborter.signal]) : this.aborter.signal;
    for (;;) {
      if (this.closed || combined.aborted) throw cancelled(this.description);
      try {
        return this.kernel.eventfdRead(this.file.fd);
      } catch (e) {
        if (!isVfioError(e, 'EAGAIN')) throw e;
      }
      await this.kernel.waitReadable(this.file.fd, combined);
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

  protected release(): void {
    this.aborter.abort();
    try {
      this.irqs.vectorClosed(this);
    } finally {
      this.file.close();
    }
  }
}

function cancelled(what: string): VfioError {
  return VfioError.of('ECANCELED', { syscall: 'poll', context: `waiting on ${what}` });
}

/** The interrupts of one device (`device.irqs`). */
export class Irqs {
  private active: { kind: IrqKind; vectors: Map<number, InterruptVector> } | undefined;
  private disabling = false;

  /** @internal Created by VfioDevice. */
  constructor(private readonly owner: IrqOwner) {}

  /** VFIO's description of an interrupt kind: how many vectors, maskable, automasked. */
  info(kind: IrqKind): IrqInfo {
    return io.deviceGetIrqInfo(this.owner.kernel, this.owner.liveFd('Irqs.info'), INDEX[kind]);
  }

  /** The kind currently enabled through this object, if any. */
  get enabledKind(): IrqKind | undefined {
    return this.active?.kind;
  }

  /**
   * Enables `count` vectors of `kind`, each signalling its own eventfd. Any other kind enabled
   * through this object is disabled first (a device uses one kind at a time). INTx is
   * automasked: after handling an interrupt call `unmask('intx')`.
   */
  enable(kind: IrqKind, count = 1): InterruptVector[] {
    const fd = this.owner.liveFd('Irqs.enable');
    if (count < 1) throw new RangeError(`Irqs.enable: count must be at least 1, got ${count}`);
    const available = this.info(kind).count;
    if (count > available) {
      throw VfioError.condition('ERR_VFIO_TOO_MANY_VECTORS', {
        check: `${this.owner.description} has ${available} ${kind} vector(s), ${count} requested`,
        ...(available === 0 ? { hint: `the device has no ${kind} capability (see config.capabilities())` } : {}),
      });
    }
    if (this.active) this.disable(this.active.kind);
    const vectors: InterruptVector[] = [];
    try {
      for (let i = 0; i < count; i++) vectors.push(this.owner.ownVector(new InterruptVector(this.owner.kernel, this, kind, i)));
      io.deviceSetIrqs(this.owner.kernel, fd, {
        index: INDEX[kind], action: 'trigger', start: 0, count, data: { kind: 'eventfd', fds: vectors.map((v) => v.eventfd) },
      });
    } catch (e) {
      this.disabling = true;
      try {
        for (const v of vectors) v.close();
      } finally {
        this.disabling = false;
      }
      throw e;
    }
    this.active = { kind, vectors: new Map(vectors.map((v) => [v.vector, v])) };
    return vectors;
  }

  /** Disables every vector of `kind` and closes their eventfds. */
  disable(kind: IrqKind): void {
    const fd = this.owner.liveFd('Irqs.disable');
    if (this.active?.kind !== kind) return;
    const vectors = [...this.active.vectors.values()];
    this.active = undefined;
    this.disabling = true;
    try {
      io.deviceSetIrqs(this.owner.kernel, fd, { index: INDEX[kind], action: 'trigger', start: 0, count: 0, data: { kind: 'none' } });
    } finally {
      try {
        for (const v of vectors) v.close();
      } finally {
        this.disabling = false;
      }
    }
  }

  /** Masks vectors [start, start+count) of `kind` (INTx, or MSI/MSI-X where maskable). */
  mask(kind: IrqKind, start = 0, count = 1): void {
    io.deviceSetIrqs(this.owner.kernel, this.owner.liveFd('Irqs.mask'), { index: INDEX[kind], action: 'mask', start, count, data: { kind: 'none' } });
  }

  /** Unmasks vectors [start, start+count) of `kind`; for INTx, re-arms it after an interrupt. */
  unmask(kind: IrqKind, start = 0, count = 1): void {
    io.deviceSetIrqs(this.owner.kernel, this.owner.liveFd('Irqs.unmask'), { index: INDEX[kind], action: 'unmask', start, count, data: { kind: 'none' } });
  }

  /** @internal Software trigger of one vector. */
  triggerVector(kind: IrqKind, vector: number): void {
    io.deviceSetIrqs(this.owner.kernel, this.owner.liveFd('InterruptVector.trigger'), {
      index: INDEX[kind], action: 'trigger', start: vector, count: 1, data: { kind: 'none' },
    });
  }

  /** @internal A vector closed by itself: stop the kernel signalling its (soon closed) eventfd. */
  vectorClosed(vector: InterruptVector): void {
    if (this.disabling || this.owner.tearingDown) return;
    const active = this.active;
    if (!active || active.kind !== vector.kind || active.vectors.get(vector.vector) !== vector) return;
    active.vectors.delete(vector.vector);
    if (active.vectors.size === 0) {
      this.active = undefined;
      io.deviceSetIrqs(this.owner.kernel, this.owner.liveFd('InterruptVector.close'), {
        index: INDEX[vector.kind], action: 'trigger', start: 0, count: 0, data: { kind: 'none' },
      });
      return;
    }
    io.deviceSetIrqs(this.owner.kernel, this.owner.liveFd('InterruptVector.close'), {
      index: INDEX[vector.kind], action: 'trigger', start: vector.vector, count: 1, data: { kind: 'eventfd', fds: [-1] },
    });
  }

  /** @internal The device is closing: the kernel drops every interrupt with the fd. */
  forget(): void {
    this.active = undefined;
  }
}
