/**
 * Shadow doorbells (Doorbell Buffer Config, NVMe 1.3): the host keeps each queue's tail or head in
 * a page of its memory as well as in the doorbell register, and the controller writes an event
 * index per queue into a second page: the value past which the host must ring the register again.
 *
 * Where a queue's entries live follows QEMU 7.2, which places them as if CAP.DSTRD were 0 (its
 * only stride): 8 bytes per queue ID, the submission queue's tail first, then the completion
 * queue's head.
 */

/** One queue's two words: the host's shadow of its doorbell and the controller's event index. */
export interface ShadowDoorbell {
  readonly doorbell: bigint;
  readonly eventIndex: bigint;
}

/** The two pages a Doorbell Buffer Config command gave (PRP1: shadow doorbells, PRP2: event indexes). */
export interface DoorbellBuffer {
  readonly doorbells: bigint;
  readonly eventIndexes: bigint;
}

export function shadowDoorbell(buffer: DoorbellBuffer, queueId: number, kind: 'submission' | 'completion'): ShadowDoorbell {
  const at = BigInt(queueId * 8 + (kind === 'completion' ? 4 : 0));
  return { doorbell: buffer.doorbells + at, eventIndex: buffer.eventIndexes + at };
}
