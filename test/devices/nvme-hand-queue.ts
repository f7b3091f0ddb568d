/**
 * A queue pair of a test's own beside the driver's (ID 2, 16 entries, polled), its rings in two
 * pages of a DMA buffer that the test writes and reads by hand: what the controller fetches in one
 * doorbell and the order it posts in show entry by entry, which the driver's promises hide.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { DmaBuffer, Mmio } from '../../lib';
import type { AdminCommand } from '../../examples/nvme/nvme-driver';

const QUEUE_ID = 2;
const ENTRIES = 16;
const hex = (n: number, width: number) => `0x${n.toString(16).padStart(width, '0')}`;

/** A submission entry's fields (the rest are zero). */
export interface HandEntry {
  readonly opcode: number;
  readonly cid: number;
  readonly nsid?: number;
  readonly prp1?: bigint;
  readonly cdw10?: number;
  readonly cdw11?: number;
  readonly cdw12?: number;
}

export class HandBuiltQueuePair {
  private readonly view: DataView;

  constructor(
    private readonly pages: DmaBuffer,
    private readonly registers: Mmio,
    /** Page of `pages` that holds the completion ring. */
    private readonly cqPage: number,
    /** Page of `pages` that holds the submission ring. */
    private readonly sqPage: number,
  ) {
    const bytes = pages.bytes;
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  /** Create I/O Completion Queue 2 (no interrupts): the first admin command to send. */
  get createCq(): AdminCommand {
    return { opcode: 0x05, cdw10: ((ENTRIES - 1) << 16) | QUEUE_ID, cdw11: 1, prp1: this.address(this.cqPage) };
  }

  /** Create I/O Submission Queue 2 on completion queue 2: the second. */
  get createSq(): AdminCommand {
    return { opcode: 0x01, cdw10: ((ENTRIES - 1) << 16) | QUEUE_ID, cdw11: (QUEUE_ID << 16) | 1, prp1: this.address(this.sqPage) };
  }

  get deleteSq(): AdminCommand {
    return { opcode: 0x00, cdw10: QUEUE_ID };
  }

  get deleteCq(): AdminCommand {
    return { opcode: 0x04, cdw10: QUEUE_ID };
  }

  /** Writes the submission entry in `slot`. */
  write(slot: number, e: HandEntry): void {
    const at = this.sqPage * 4096 + slot * 64;
    this.pages.bytes.fill(0, at, at + 64);
    const v = this.view;
    v.setUint8(at, e.opcode);
    v.setUint16(at + 2, e.cid, true);
    v.setUint32(at + 4, e.nsid ?? 1, true);
    v.setBigUint64(at + 24, e.prp1 ?? 0n, true);
    v.setUint32(at + 40, e.cdw10 ?? 0, true);
    v.setUint32(at + 44, e.cdw11 ?? 0, true);
    v.setUint32(at + 48, e.cdw12 ?? 0, true);
  }

  /** Writes the tail doorbell register (the controller's stride is 4 bytes: DSTRD 0). */
  ringTail(value: number): void {
    this.registers.write32(0x1000 + 2 * QUEUE_ID * 4, value);
  }

  /** The completion entry in `slot`, or 'empty' (the ring starts zeroed). */
  entry(slot: number): string {
    const at = this.cqPage * 4096 + slot * 16;
    const v = this.view;
    const status = v.getUint16(at + 14, true);
    if (!status && !v.getUint16(at + 12, true)) return 'empty';
    return `cid ${hex(v.getUint16(at + 12, true), 4)} sqid ${v.getUint16(at + 10, true)} sqhd ${v.getUint16(at + 8, true)} status ${hex(status, 4)}`;
  }

  /** The command identifier in completion slot `slot`. */
  cid(slot: number): number {
    return this.view.getUint16(this.cqPage * 4096 + slot * 16 + 12, true);
  }

  /** Entries `from`..`to` - 1 in ring order. */
  entries(from: number, to: number): string {
    return Array.from({ length: to - from }, (_, i) => this.entry(from + i)).join('; ');
  }

  /**
   * Entries `from`..`to` - 1 sorted by command identifier: for commands whose relative order
   * QEMU leaves to its block layer's threads.
   */
  entrySet(from: number, to: number): string {
    return Array.from({ length: to - from }, (_, i) => this.entry(from + i))
      .sort()
      .join('; ');
  }

  /** Entries posted so far (the ring is filled once round, phase 1). */
  posted(): number {
    let n = 0;
    while (n < ENTRIES && this.entry(n) !== 'empty') n++;
    return n;
  }

  /** Waits for `count` entries in the completion ring (or the time a loaded TCG guest may need), then counts them. */
  async settle(count: number): Promise<string> {
    for (let waited = 0; this.posted() < count && waited < 2000; waited += 10) await sleep(10);
    await sleep(50);
    return `${this.posted()} in the ring`;
  }

  private address(page: number): number {
    return Number(this.pages.dmaAddress(page * 4096));
  }
}
