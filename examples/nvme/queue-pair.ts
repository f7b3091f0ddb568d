/**
 * One submission queue and its completion queue in host memory, with the per-command state: the
 * command identifiers free for use, what to call when each completes, when each times out, and
 * a PRP list page per command identifier. Submitting writes the entry into the ring and rings the
 * tail doorbell; polling consumes the completions whose phase tag is current, calls their
 * callbacks and rings the head doorbell once for the batch, and the tail doorbell once for what
 * the callbacks submitted to this queue meanwhile (as Linux's and SPDK's drivers do: a doorbell is
 * an MMIO write, each one a trip to the device). Nothing here allocates per command.
 */
import { DmaBuffer, type DmaSpace, type Mmio } from '../../lib';
import { busAddress, busPages, fillPrpList, pageCount, type BusPages } from './bus-pages';
import { CQE_BYTES, DOORBELL_BASE, PAGE, PAGE_SHIFT, SQE_BYTES } from './nvme-spec';

/** Called with the completion's 15-bit status (0 is success) and dword 0. */
export type CompletionCallback = (status: number, result: number) => void;

export class QueuePair {
  /** Commands submitted and not completed (timed-out ones included until they complete). */
  outstanding = 0;
  /** Of those, the ones that timed out: nobody waits for them any more. */
  retired = 0;
  readonly sqAddress: bigint;
  readonly cqAddress: bigint;
  private readonly memory: DmaBuffer;
  /** The submission ring as dwords: an entry is 16 of them (NVMe is little-endian, as the host is). */
  private readonly sq: Uint32Array;
  /** The completion ring as dwords: an entry is 4 of them. */
  private readonly cq: Uint32Array;
  private readonly pages: BusPages;
  /** Where secondPrp() leaves PRP2's two halves. */
  private readonly secondPrpHalves = new Uint32Array(2);
  private readonly lists: DataView[] = [];
  private readonly callbacks: (CompletionCallback | undefined)[];
  private readonly deadlines: Float64Array;
  private readonly opcodes: Uint8Array;
  private readonly nsids: Uint32Array;
  private readonly freeCids: Int32Array;
  private freeCount: number;
  private tail = 0;
  /**
   * Per submission-ring slot: 1 when a command other than transfer()'s left something in the
   * dwords transfer() does not write (2-5, 13-15), which are zero in every other slot.
   */
  private readonly dirtySlots: Uint8Array;
  /** Set while poll() calls completion callbacks: what they submit here is rung once, after the batch. */
  private polling = false;
  /** The tail has moved since the tail doorbell was last written. */
  private tailUnrung = false;
  private head = 0;
  private phase = 1;
  private readonly sqDoorbell: number;
  private readonly cqDoorbell: number;

  /**
   * `depth` entries in each ring (at most 64, so each ring is one physically contiguous page);
   * depth - 1 commands can be outstanding.
   */
  constructor(
    private readonly registers: Mmio,
    space: DmaSpace,
    readonly id: number,
    readonly depth: number,
    doorbellStride: number,
    /** Where transfer() takes each command's deadline from (the driver keeps it current). */
    private readonly deadlineCell: Float64Array,
  ) {
    if (!Number.isInteger(depth) || depth < 2 || depth > PAGE / SQE_BYTES)
      throw new RangeError(`queue depth ${depth} must be 2..${PAGE / SQE_BYTES}`);
    // Page 0: submission ring; page 1: completion ring; then one PRP list page per command identifier.
    this.memory = DmaBuffer.allocate((2 + depth) * PAGE, { space });
    // Rings as host-order dwords: one typed-array store per field on the I/O path, where a DataView
    // costs a call and an endianness check per access. That is NVMe's order only on a little-endian host.
    if (!LITTLE_ENDIAN) throw new Error('the NVMe example driver keeps its rings in host byte order: it needs a little-endian host');
    this.memory.bytes.fill(0);
    const bytes = this.memory.bytes;
    this.sq = new Uint32Array(bytes.buffer, bytes.byteOffset, PAGE / 4);
    this.dirtySlots = new Uint8Array(depth);
    this.cq = new Uint32Array(bytes.buffer, bytes.byteOffset + PAGE, (depth * CQE_BYTES) / 4);
    this.pages = busPages(this.memory);
    for (let cid = 0; cid < depth; cid++) this.lists.push(new DataView(bytes.buffer, bytes.byteOffset + (2 + cid) * PAGE, PAGE));
    this.sqAddress = this.memory.dmaAddress(0);
    this.cqAddress = this.memory.dmaAddress(PAGE);
    this.callbacks = new Array<CompletionCallback | undefined>(depth).fill(undefined);
    this.deadlines = new Float64Array(depth);
    this.opcodes = new Uint8Array(depth);
    this.nsids = new Uint32Array(depth);
    this.freeCids = new Int32Array(depth - 1);
    for (let i = 0; i < depth - 1; i++) this.freeCids[i] = depth - 2 - i;
    this.freeCount = depth - 1;
    this.sqDoorbell = DOORBELL_BASE + 2 * id * doorbellStride;
    this.cqDoorbell = DOORBELL_BASE + (2 * id + 1) * doorbellStride;
  }

  /** Whether another command can be submitted now. */
  get hasRoom(): boolean {
    return this.freeCount > 0;
  }

  /** The PRP list page reserved for a command identifier and its bus address. */
  prpList(cid: number): DataView {
    return this.lists[cid]!;
  }

  prpListAddress(cid: number): number {
    return busAddress(this.pages, (2 + cid) * PAGE);
  }

  /** Takes a command identifier (the caller then fills its PRP list and submits it). */
  reserve(): number {
    if (this.freeCount === 0) throw new RangeError(`queue ${this.id} is full (${this.depth - 1} commands outstanding)`);
    return this.freeCids[--this.freeCount]!;
  }

  /**
   * Writes the entry for `cid` at the tail and rings the doorbell. Addresses are numbers; `flags`
   * is the command's FUSE/PSDT byte (0: not fused, PRPs).
   */
  submit(
    cid: number,
    opcode: number,
    flags: number,
    nsid: number,
    prp1: number,
    prp2: number,
    cdw10: number,
    cdw11: number,
    cdw12: number,
    cdw13: number,
    cdw14: number,
    cdw15: number,
    deadline: number,
    callback: CompletionCallback,
    dataPointer?: Uint8Array,
  ): void {
    const e = this.writeEntry(cid, opcode, flags, nsid, cdw10, cdw11, cdw12, cdw13, cdw14, cdw15);
    const s = this.sq;
    s[e + 6] = prp1;
    s[e + 7] = prp1 / 0x1_0000_0000;
    s[e + 8] = prp2;
    s[e + 9] = prp2 / 0x1_0000_0000;
    if (dataPointer) new Uint8Array(s.buffer, s.byteOffset + e * 4 + 24, 16).set(dataPointer.subarray(0, 16));
    this.deadlines[cid] = deadline;
    this.ring(cid, opcode, nsid, callback);
  }

  /**
   * The I/O path: a read or write of `bytes` at `offset` (below 2^32) of a buffer whose bus
   * pages are `pages`, with a command identifier of its own, PRPs built here (a PRP list in that
   * identifier's page when the transfer spans more than two pages), the deadline taken from
   * `deadlineCell[0]`. Returns false, and submits nothing, when the queue is full. Integer
   * arithmetic only, and no bus address or deadline crosses a call as an argument: a double
   * passed between functions V8 did not inline is a heap number per I/O.
   */
  transfer(
    opcode: number,
    nsid: number,
    pages: BusPages,
    offset: number,
    bytes: number,
    lbaLow: number,
    lbaHigh: number,
    blocksMinusOne: number,
    callback: CompletionCallback,
  ): boolean {
    // One flat function, its failures in functions of their own: V8 inlines a chain of calls
    // only under a bytecode budget for all of it (920 bytes), and each call left in the I/O path
    // costs an emulated CPU more than the stores themselves. The driver's submit() with this
    // inlined fits; the chain of small functions this replaced did not.
    if (this.freeCount === 0) return false;
    if (offset >>> 0 !== offset) throw badOffset(offset);
    const cid = this.freeCids[this.freeCount - 1]!;
    const page = offset >>> PAGE_SHIFT;
    const firstLow = pages[2 * page];
    if (firstLow === undefined) throw beyondBuffer(pages, offset, bytes);
    const within = offset & (PAGE - 1);
    let secondLow = 0,
      secondHigh = 0;
    if (bytes > PAGE - within) {
      this.secondPrp(cid, pages, page, offset, bytes, within);
      secondLow = this.secondPrpHalves[0]!;
      secondHigh = this.secondPrpHalves[1]!;
    }
    this.freeCount--;
    const s = this.sq;
    const e = this.tail * (SQE_BYTES / 4);
    // The dwords a read or write leaves zero (2-5: reserved and the metadata pointer; 13-15) are
    // written only where another command left them set: seven stores fewer per I/O, a fifth of
    // the path's time under user-mode emulation (qemu-x86_64).
    if (this.dirtySlots[this.tail] !== 0) this.clearSlot(e);
    s[e] = opcode | (cid << 16);
    s[e + 1] = nsid;
    // A page's low half is a multiple of 4096: OR-ing the offset within the page in is adding it.
    s[e + 6] = firstLow | within;
    s[e + 7] = pages[2 * page + 1]!;
    s[e + 8] = secondLow;
    s[e + 9] = secondHigh;
    s[e + 10] = lbaLow;
    s[e + 11] = lbaHigh;
    s[e + 12] = blocksMinusOne;
    this.deadlines[cid] = this.deadlineCell[0]!;
    this.ring(cid, opcode, nsid, callback);
    return true;
  }

  /** PRP2's halves, into secondPrpHalves, of a transfer that leaves its first page: the next page, or `cid`'s PRP list filled. */
  private secondPrp(cid: number, pages: BusPages, page: number, offset: number, bytes: number, within: number): void {
    const halves = this.secondPrpHalves;
    if (bytes <= 2 * PAGE - within) {
      const low = pages[2 * (page + 1)];
      if (low === undefined) throw beyondBuffer(pages, offset, bytes);
      halves[0] = low;
      halves[1] = pages[2 * (page + 1) + 1]!;
      return;
    }
    fillPrpList(pages, offset, bytes, this.lists[cid]!);
    halves[0] = this.pages[2 * (2 + cid)]!;
    halves[1] = this.pages[2 * (2 + cid) + 1]!;
  }

  /** The entry's fields but the data pointer, at the tail; returns the entry's first dword in the ring. */
  private writeEntry(
    cid: number,
    opcode: number,
    flags: number,
    nsid: number,
    cdw10: number,
    cdw11: number,
    cdw12: number,
    cdw13: number,
    cdw14: number,
    cdw15: number,
  ): number {
    const s = this.sq;
    const e = this.tail * (SQE_BYTES / 4);
    s[e] = opcode | (flags << 8) | (cid << 16);
    s[e + 1] = nsid;
    s[e + 2] = 0;
    s[e + 3] = 0;
    s[e + 4] = 0; // metadata pointer
    s[e + 5] = 0;
    s[e + 10] = cdw10;
    s[e + 11] = cdw11;
    s[e + 12] = cdw12;
    s[e + 13] = cdw13;
    s[e + 14] = cdw14;
    s[e + 15] = cdw15;
    this.dirtySlots[this.tail] = cdw13 !== 0 || cdw14 !== 0 || cdw15 !== 0 ? 1 : 0;
    return e;
  }

  /** Zeroes what transfer() does not write in the slot whose first dword is `e`. */
  private clearSlot(e: number): void {
    this.sq.fill(0, e + 2, e + 6);
    this.sq.fill(0, e + 13, e + 16);
    this.dirtySlots[e / (SQE_BYTES / 4)] = 0;
  }

  /** Records the command, moves the tail and rings the doorbell. */
  private ring(cid: number, opcode: number, nsid: number, callback: CompletionCallback): void {
    this.callbacks[cid] = callback;
    this.opcodes[cid] = opcode;
    this.nsids[cid] = nsid >>> 0;
    this.outstanding++;
    this.tail = this.tail + 1 === this.depth ? 0 : this.tail + 1;
    if (this.polling) this.tailUnrung = true;
    else this.registers.write32(this.sqDoorbell, this.tail);
  }

  /**
   * Consumes every completion that has arrived; returns how many. The callbacks' submissions to
   * this queue are rung with one tail doorbell at the end, also when a callback throws. Called
   * from one of its own completion callbacks it consumes nothing and returns 0.
   */
  poll(): number {
    // Not re-entered from a completion callback: the ring's place is kept in locals for the
    // pass (each field access is a load and a map check, which an emulated CPU pays in full).
    if (this.polling) return 0;
    const c = this.cq;
    const callbacks = this.callbacks;
    const depth = this.depth;
    let head = this.head;
    let phase = this.phase;
    let count = 0;
    this.polling = true;
    try {
      for (;;) {
        const e = head * (CQE_BYTES / 4);
        // Dword 3: the command identifier, and the status with the phase tag in bit 16.
        const last = c[e + 3]!;
        if (((last >>> 16) & 1) !== phase) break;
        const result = c[e]!;
        const sqid = c[e + 2]! >>> 16;
        const cid = last & 0xffff;
        if (++head === depth) {
          head = 0;
          phase ^= 1;
        }
        count++;
        // The command's end here, not in a function of its own: see transfer() on V8's inlining budget.
        const callback = callbacks[cid];
        // An entry naming another queue is corrupt, and one for no command of ours stray:
        // consuming it for one of ours would complete the wrong command.
        if (sqid !== this.id || cid >= depth || !callback) continue;
        callbacks[cid] = undefined;
        this.outstanding--;
        if (callback === retired) this.retired--;
        this.freeCids[this.freeCount++] = cid;
        callback(last >>> 17, result);
      }
    } finally {
      this.head = head;
      this.phase = phase;
      this.polling = false;
      // The new commands first: the controller can fetch them while the head doorbell is written.
      if (this.tailUnrung) {
        this.tailUnrung = false;
        this.registers.write32(this.sqDoorbell, this.tail);
      }
      if (count) this.registers.write32(this.cqDoorbell, head);
    }
    return count;
  }

  /** Calls `expired` for every command whose deadline has passed; the identifier stays retired until its completion arrives. */
  expire(now: number, expired: (cid: number, opcode: number, nsid: number, callback: CompletionCallback) => void): void {
    for (let cid = 0; cid < this.depth; cid++) {
      const callback = this.callbacks[cid];
      if (!callback || callback === retired || this.deadlines[cid]! > now) continue;
      this.callbacks[cid] = retired;
      this.retired++;
      expired(cid, this.opcodes[cid]!, this.nsids[cid]!, callback);
    }
  }

  /** Fails every outstanding command (controller fatal status, reset, close). */
  failAll(fail: (cid: number, opcode: number, nsid: number, callback: CompletionCallback) => void): void {
    for (let cid = 0; cid < this.depth; cid++) {
      const callback = this.callbacks[cid];
      if (!callback) continue;
      this.callbacks[cid] = undefined;
      this.outstanding--;
      this.freeCids[this.freeCount++] = cid;
      if (callback !== retired) fail(cid, this.opcodes[cid]!, this.nsids[cid]!, callback);
    }
    this.retired = 0;
  }

  /**
   * After a controller reset (every command already failed): empty rings, indices and phase as
   * when the queue was created, so the controller sees it fresh when it is created again.
   */
  resetRings(): void {
    this.memory.bytes.fill(0, 0, 2 * PAGE);
    this.dirtySlots.fill(0);
    this.tail = 0;
    this.tailUnrung = false;
    this.head = 0;
    this.phase = 1;
  }

  close(): void {
    this.memory.close();
  }
}

/** Stands for a timed-out command's callback until its completion frees the identifier. */
function retired(): void {}

const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** Out of line: a template string here would count against the inlining budget of the I/O path. */
function beyondBuffer(pages: BusPages, offset: number, bytes: number): RangeError {
  return offset >= pageCount(pages) * PAGE
    ? new RangeError(`offset ${offset} is beyond the ${pageCount(pages) * PAGE}-byte DMA buffer`)
    : new RangeError(`${bytes} bytes at offset ${offset} run past the end of the DMA buffer`);
}

function badOffset(offset: number): RangeError {
  return new RangeError(`offset ${offset} must be an integer 0..2^32-1 (the I/O path's offsets into a DMA buffer are 32-bit)`);
}
