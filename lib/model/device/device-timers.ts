/**
 * A device's own view of the machine clock: the work it schedules is remembered so that a reset,
 * a hardware failure or unplugging cancels whatever the device still had in flight (a real
 * function forgets its operations when it resets), and work that throws becomes a 'model-error'
 * event instead of an exception in somebody else's event-loop turn.
 */
import { ModelClock, type DeviceClock, type ScheduledWork } from './clock';

export class DeviceTimers implements DeviceClock {
  private clock: DeviceClock = new ModelClock('auto');
  private readonly inFlight = new Set<ScheduledWork>();

  constructor(private readonly failed: (what: string, error: unknown) => void) {}

  /** The clock the host connected (or a private auto clock while unconnected). */
  use(clock: DeviceClock): void {
    this.clock = clock;
  }

  get now(): bigint {
    return this.clock.now;
  }

  /** Work still scheduled by this device. */
  get pending(): number {
    return this.inFlight.size;
  }

  after(microseconds: number, work: () => void): ScheduledWork {
    let handle: ScheduledWork | undefined = undefined;
    const inner = this.clock.after(microseconds, () => {
      if (handle) this.inFlight.delete(handle);
      try {
        work();
      } catch (e) {
        this.failed(`scheduled work (after ${microseconds} µs)`, e);
      }
    });
    const own: ScheduledWork = {
      cancel: () => {
        this.inFlight.delete(own);
        inner.cancel();
      },
    };
    handle = own;
    this.inFlight.add(own);
    return own;
  }

  /** Cancels all of this device's pending work, as a reset or unplug must. */
  cancelAll(): void {
    for (const w of [...this.inFlight]) w.cancel();
  }
}
