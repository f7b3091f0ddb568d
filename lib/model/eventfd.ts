/**
 * eventfd(2) of the model: a 64-bit counter. A simulated device signals an interrupt by adding 1
 * (as the kernel's eventfd_signal does), a reader takes the whole count (or 1 in semaphore mode).
 */
import { fail } from './errno';
import { EFD_NONBLOCK, EFD_SEMAPHORE } from '../sys/constants';
import type { OpenFile } from './open-file';

const EVENTFD_MAX = (1n << 64n) - 2n;

export class EventFdFile implements OpenFile {
  readonly kind = 'eventfd';
  private count: bigint;
  private readonly listeners = new Set<() => void>();

  constructor(
    initval: number,
    readonly flags: number,
  ) {
    this.count = BigInt(initval);
  }

  /** Adds to the counter from the kernel side (eventfd_signal). */
  signal(n = 1n): void {
    this.count = this.count + n > EVENTFD_MAX ? EVENTFD_MAX : this.count + n;
    for (const cb of [...this.listeners]) cb();
  }

  read(): bigint {
    if (this.count === 0n) {
      // A blocking read would wait forever in a single-threaded model; Linux would block. The model
      // answers EAGAIN for both, and callers wait with waitReadable first.
      fail('EAGAIN');
    }
    if (this.flags & EFD_SEMAPHORE) {
      this.count -= 1n;
      return 1n;
    }
    const v = this.count;
    this.count = 0n;
    return v;
  }

  write(value: bigint): void {
    if (value === (1n << 64n) - 1n) fail('EINVAL');
    if (this.count + value > EVENTFD_MAX) {
      fail('EAGAIN');
    }
    this.signal(value);
  }

  get nonBlocking(): boolean {
    return (this.flags & EFD_NONBLOCK) !== 0;
  }

  readable(): boolean {
    return this.count > 0n;
  }

  onReadable(cb: () => void): () => void {
    this.listeners.add(cb);
    return () => this.listeners.delete(cb);
  }
}
