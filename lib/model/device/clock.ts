/**
 * Time for device models. A device says "this operation completes after N µs" and the clock runs
 * the completion then; which "then" depends on the clock's mode:
 *   - 'auto' (the default): virtual time. Due work runs on a later turn of the event loop, earliest
 *     deadline first (ties in the order they were scheduled), and virtual time jumps to each
 *     deadline. Nothing waits for the wall clock, and the order is the same on every run.
 *   - 'manual': virtual time that moves only when a test calls `advance` or `runUntilIdle`, so a
 *     test can stop between "the driver started the operation" and "the device finished it".
 *   - 'real-time': deadlines are wall-clock delays (setImmediate / setTimeout), for drivers whose
 *     own timeouts are measured on the wall clock.
 * A device only ever schedules through the clock it was connected to, which keeps a model run
 * reproducible whatever the machine's load.
 */

/**
 * How a ModelClock's virtual time moves: by itself ('auto'), only by `advance` ('manual'), or
 * with real time ('real-time').
 *
 * @category Device-model SDK
 */
export type ClockMode = 'auto' | 'manual' | 'real-time';

/**
 * A scheduled piece of work; cancelling work that already ran does nothing.
 *
 * @category Device-model SDK
 */
export interface ScheduledWork {
  /** Takes the work back if it has not run yet. */
  cancel(): void;
}

/**
 * What a device model sees of time.
 *
 * @category Device-model SDK
 */
export interface DeviceClock {
  /** Current virtual time in nanoseconds since the clock started. */
  readonly now: bigint;
  /** Runs `work` once `microseconds` (≥ 0) of virtual time have passed. */
  after(microseconds: number, work: () => void): ScheduledWork;
}

interface Entry {
  readonly deadline: bigint;
  readonly seq: number;
  readonly work: () => void;
  cancelled: boolean;
  cancelTimer?: () => void;
}

export class ModelClock implements DeviceClock {
  private nowNs = 0n;
  private seq = 0;
  /** Pending work ordered by (deadline, seq); real-time mode keeps its entries in timers instead. */
  private readonly queue: Entry[] = [];
  private pumpArmed = false;
  private readonly started = process.hrtime.bigint();

  /**
   * @param mode 'auto': virtual time runs by itself; 'manual': only `advance` moves it (for tests);
   * 'real-time': work runs after the real delay.
   */
  constructor(readonly mode: ClockMode = 'auto') {
    if (mode !== 'auto' && mode !== 'manual' && mode !== 'real-time')
      throw new RangeError(`unknown clock mode '${String(mode)}' (auto, manual, real-time)`);
  }

  get now(): bigint {
    return this.mode === 'real-time' ? process.hrtime.bigint() - this.started : this.nowNs;
  }

  /** Work scheduled and not yet run or cancelled. */
  get pending(): number {
    return this.queue.filter((e) => !e.cancelled).length;
  }

  after(microseconds: number, work: () => void): ScheduledWork {
    if (!Number.isFinite(microseconds) || microseconds < 0)
      throw new RangeError(`clock: delay ${microseconds} µs must be a finite number ≥ 0`);
    const delayNs = BigInt(Math.round(microseconds * 1000));
    const entry: Entry = { deadline: this.now + delayNs, seq: this.seq++, work, cancelled: false };
    if (this.mode === 'real-time') {
      const run = () => {
        if (!entry.cancelled) {
          entry.cancelled = true;
          work();
        }
      };
      if (delayNs === 0n) {
        const h = setImmediate(run);
        entry.cancelTimer = () => clearImmediate(h);
      } else {
        const h = setTimeout(run, microseconds / 1000);
        entry.cancelTimer = () => clearTimeout(h);
      }
    } else {
      this.insert(entry);
      if (this.mode === 'auto') this.armPump();
    }
    return {
      cancel: () => {
        if (entry.cancelled) return;
        entry.cancelled = true;
        entry.cancelTimer?.();
      },
    };
  }

  /**
   * Moves virtual time forward by `microseconds`, running every piece of work that falls due on
   * the way at its own deadline. Throws in real-time mode, where time is the wall clock's.
   */
  advance(microseconds: number): void {
    this.virtualOnly('advance');
    if (!Number.isFinite(microseconds) || microseconds < 0)
      throw new RangeError(`clock: advance by ${microseconds} µs must be a finite number ≥ 0`);
    const target = this.nowNs + BigInt(Math.round(microseconds * 1000));
    this.runDue(target);
    this.nowNs = target;
  }

  /**
   * Runs pending work, earliest first, until none is left (work may schedule more); returns how many
   * ran. Stops with an error after `limit` pieces, which catches a device that reschedules itself forever.
   */
  runUntilIdle(limit = 100_000): number {
    this.virtualOnly('runUntilIdle');
    let ran = 0;
    for (;;) {
      const next = this.takeNext();
      if (!next) return ran;
      if (++ran > limit) throw new Error(`clock: more than ${limit} pieces of work without becoming idle`);
      this.nowNs = next.deadline;
      next.work();
    }
  }

  private virtualOnly(what: string): void {
    if (this.mode === 'real-time') throw new Error(`clock: ${what} needs virtual time; this clock runs in real time`);
  }

  private runDue(until: bigint): void {
    for (;;) {
      const head = this.peek();
      if (!head || head.deadline > until) return;
      this.queue.shift();
      head.cancelled = true;
      this.nowNs = head.deadline;
      head.work();
    }
  }

  private peek(): Entry | undefined {
    while (this.queue.length && this.queue[0]!.cancelled) this.queue.shift();
    return this.queue[0];
  }

  private takeNext(): Entry | undefined {
    const head = this.peek();
    if (!head) return undefined;
    this.queue.shift();
    head.cancelled = true;
    return head;
  }

  private insert(entry: Entry): void {
    let lo = 0,
      hi = this.queue.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      const m = this.queue[mid]!;
      if (m.deadline < entry.deadline || (m.deadline === entry.deadline && m.seq < entry.seq)) lo = mid + 1;
      else hi = mid;
    }
    this.queue.splice(lo, 0, entry);
  }

  /** Auto mode: one event-loop turn later, run everything due at the earliest deadline, then re-arm. */
  private armPump(): void {
    if (this.pumpArmed) return;
    this.pumpArmed = true;
    setImmediate(() => {
      this.pumpArmed = false;
      const head = this.peek();
      if (!head) return;
      try {
        this.runDue(head.deadline);
      } finally {
        if (this.peek()) this.armPump();
      }
    });
  }
}
