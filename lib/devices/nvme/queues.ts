/**
 * Submission and completion queues as the controller tracks them: ring memory at a bus address,
 * the indices, the phase tag, and the commands that have been fetched but not completed yet.
 */
import type { Completion } from './command';
import type { ShadowDoorbell } from './shadow-doorbells';

export class SubmissionQueue {
  head = 0;
  tail = 0;
  /** Commands fetched whose completions have not been written yet (QEMU bounds these by the size). */
  outstanding = 0;
  /** A fetch pass is scheduled. */
  scheduled = false;
  /** Set once the host configured a doorbell buffer: the tail is then read from host memory. */
  shadow: ShadowDoorbell | undefined;

  constructor(
    readonly id: number,
    readonly base: bigint,
    readonly size: number,
    readonly cqid: number,
  ) {}

  get empty(): boolean {
    return this.head === this.tail;
  }
}

/** A completion waiting for room in its queue. */
export interface QueuedCompletion extends Completion {
  readonly sq: SubmissionQueue;
  readonly cid: number;
  /** The command's opcode and namespace (-1 and 0 for an Asynchronous Event completion's event). */
  readonly opcode: number;
  readonly nsid: number;
}

export class CompletionQueue {
  head = 0;
  tail = 0;
  /** The phase tag written into the next entry; flips on every wrap. */
  phase = 1;
  /** The submission queues that complete here. */
  readonly sqs = new Set<SubmissionQueue>();
  readonly waiting: QueuedCompletion[] = [];
  /** A posting pass is scheduled. */
  scheduled = false;
  /** Set once the host configured a doorbell buffer: the head is then read from host memory. */
  shadow: ShadowDoorbell | undefined;

  constructor(
    readonly id: number,
    readonly base: bigint,
    readonly size: number,
    readonly vector: number,
    readonly interruptsEnabled: boolean,
  ) {}

  get full(): boolean {
    return (this.tail + 1) % this.size === this.head;
  }
  get empty(): boolean {
    return this.head === this.tail;
  }

  advanceTail(): void {
    this.tail++;
    if (this.tail === this.size) {
      this.tail = 0;
      this.phase ^= 1;
    }
  }
}
