/**
 * A userspace NVMe driver on node-vfio's public API: it brings the controller up the way the
 * specification says (disable and wait for !RDY within CAP.TO, admin queues in AQA/ASQ/ACQ, CC
 * with the entry sizes and page size, enable and wait for RDY), identifies it, asks for I/O
 * queues (Set Features, Number of Queues) and creates each pair with its own MSI-X vector — or
 * without interrupts, polled, where MSI-X is not available. Commands are promises; their failures
 * are typed values (errors.ts); a command that does not complete in time is aborted and fails;
 * Controller Fatal Status fails everything outstanding instead of hanging. The same code runs on a
 * noiommu host (physical addresses) and behind an IOMMU (IOVAs): DmaBuffer gives whichever the
 * device needs.
 */
import { setImmediate as immediate } from 'node:timers/promises';
// The module's binding: the global `performance` is a lazy accessor in Node 20, run on every use (it showed in the poll loop's profile).
import { performance } from 'node:perf_hooks';
import { DmaBuffer, type InterruptVector, type Mmio, type VfioDevice } from '../../lib';
import { buildPrp2, busAddress, busPages, type BusPages } from './bus-pages';
import { NvmeCommandError, NvmeControllerError, NvmeTimeoutError, type CommandIdentity } from './errors';
import { decodeController, decodeNamespace, decodeNamespaceList, type ControllerIdentity, type NamespaceIdentity } from './identify';
import { ADMIN, CC, CNS, CSTS, decodeCapabilities, FEATURE, NVM, PAGE, REG, type ControllerCapabilities } from './nvme-spec';
import { QueuePair, type CompletionCallback } from './queue-pair';

export type CompletionMode = 'poll' | 'interrupt' | 'intx' | 'auto';

export interface NvmeDriverOptions {
  /** I/O queue pairs to ask for (default 1). */
  readonly ioQueues?: number;
  /** Entries per I/O queue, 2..64 (default 64). */
  readonly queueDepth?: number;
  /**
   * 'interrupt': one MSI-X vector per completion queue; 'intx': every completion queue on the
   * INTx pin (vector 0, unmasked in INTMS); 'poll': no interrupts, completions are polled;
   * 'auto' (default): MSI-X when it can be enabled, polling otherwise.
   */
  readonly completion?: CompletionMode;
  /** How long a command may take before it is aborted and fails (default 30 s). */
  readonly commandTimeoutMs?: number;
  /**
   * While polling, how long to keep polling without a completion before yielding to the event
   * loop (default 0 µs: yield at every empty pass). Spinning trades a core for latency: a
   * completion that arrives during the spin is seen at once instead of after a turn of the
   * event loop. However long the spin, a turn yields after `pollTurnMicroseconds`.
   */
  readonly pollSpinMicroseconds?: number;
  /**
   * While polling, the longest one turn of the poll loop keeps the event loop from everything
   * else (timers, I/O) under a steady stream of completions (default 2000 µs). Each yield is a
   * turn of the event loop the driver does not poll in: about 100 µs under the lab's emulated
   * CPU, 5 % of the time at 2 ms turns. A process whose event loop has little else to do (a
   * benchmark, a dedicated I/O worker) can take longer turns.
   */
  readonly pollTurnMicroseconds?: number;
  /**
   * The kernel asked for the device back (VFIO's REQ interrupt: a hot-unplug or an unbind). The
   * driver has already failed what was outstanding and takes no new commands; close it and the
   * device, or the removal waits (vfio-pci asks again every 10 s).
   */
  readonly onRemovalRequest?: () => void;
}

const PCI_COMMAND = 0x04;
const PCI_COMMAND_MEMORY = 0x2;
const PCI_COMMAND_MASTER = 0x4;
/** After an ERR interrupt, how long (and how often) to look for the reset a fatal error brings. */
const AER_WATCH_MS = 2000;
const AER_WATCH_PERIOD_MS = 20;

/** An admin command as the caller gives it (conformance checks send malformed ones on purpose). */
export interface AdminCommand {
  readonly opcode: number;
  readonly nsid?: number;
  readonly cdw10?: number;
  readonly cdw11?: number;
  readonly cdw12?: number;
  readonly cdw13?: number;
  readonly cdw14?: number;
  readonly cdw15?: number;
  /** Data pointers as given; default: the `data` buffer's (or none). */
  readonly prp1?: number;
  readonly prp2?: number;
  /** The 16 bytes of the data pointer as given (an SGL descriptor, say), instead of PRP1/PRP2. */
  readonly dataPointer?: Uint8Array;
}

/** Where a command's data lives: `length` bytes at `offset` of a DMA buffer. */
export interface DataBuffer {
  readonly buffer: DmaBuffer;
  readonly offset?: number;
  readonly length: number;
}

const ADMIN_DEPTH = 32;
const STATUS_TIMED_OUT = -1;
const STATUS_CONTROLLER_FAILED = -2;
const WATCHDOG_MS = 20;
/** The longest one turn of the poll loop keeps the event loop from everything else, by default. */
const REAP_TURN_MS = 2;
/** Poll passes per clock read in the poll loop. */
const CLOCK_PASSES = 8;

export class NvmeDriver {
  readonly capabilities: ControllerCapabilities;
  /** How completions are noticed: by MSI-X interrupt, by the INTx pin or by polling. */
  completion: 'poll' | 'interrupt' | 'intx' = 'poll';
  private identity: ControllerIdentity | undefined;
  private namespaceList: NamespaceIdentity[] = [];
  private readonly registers: Mmio;
  private readonly admin: QueuePair;
  private readonly io: QueuePair[] = [];
  private vectors: InterruptVector[] = [];
  private readonly timeoutMs: number;
  private readonly spinMs: number;
  private readonly turnMs: number;
  private readonly watchdog: NodeJS.Timeout;
  private reaping = false;
  /** Set while the poll loop runs its passes (see deadline()). */
  private inPass = false;
  /** The deadline of a command submitted now, as the poll loop last read the clock (queue pairs read it from here). */
  private readonly deadlineCell = new Float64Array(1);
  /** The buffer of the last submit() and its bus pages. */
  private lastBuffer: DmaBuffer | undefined;
  private lastPages: BusPages = new Uint32Array(0);
  /** The namespace of the last submit() and its block size (0: unknown to the driver). */
  private lastNsid = -1;
  private lastBlockBytes = 0;
  private failure: NvmeControllerError | undefined;
  private closed = false;
  private nextQueue = 0;
  private depth = 64;
  /** While the controller is being reset and brought up again: new commands wait for it. */
  private recovery: Promise<void> | undefined;
  /** Resolves once a reset has disabled the controller and failed what was outstanding. */
  private quiesced: Promise<void> = Promise.resolve();
  /** Why the current reset happens: what commands in flight then fail with. */
  private resetReason: NvmeControllerError | undefined;
  /** Abort answers for timed-out commands, by "queue:cid", for their NvmeTimeoutError. */
  private readonly abortAnswers = new Map<string, boolean>();
  /** Resets done since open (recovery from timeouts, fatal status, a controller that reset itself). */
  resets = 0;
  /** ERR and REQ: the kernel's own signals about the device. */
  private platformVectors: InterruptVector[] = [];
  private readonly onRemovalRequest: (() => void) | undefined;

  /** Brings the controller up and creates the I/O queues. */
  static async open(device: VfioDevice, options: NvmeDriverOptions = {}): Promise<NvmeDriver> {
    const driver = new NvmeDriver(device, options);
    try {
      await driver.start(device, options);
    } catch (e) {
      driver.close();
      throw e;
    }
    return driver;
  }

  private constructor(
    readonly device: VfioDevice,
    options: NvmeDriverOptions,
  ) {
    this.timeoutMs = options.commandTimeoutMs ?? 30_000;
    this.onRemovalRequest = options.onRemovalRequest;
    this.spinMs = microseconds(options.pollSpinMicroseconds, 0, 'pollSpinMicroseconds') / 1000;
    this.turnMs = microseconds(options.pollTurnMicroseconds, REAP_TURN_MS * 1000, 'pollTurnMicroseconds') / 1000;
    this.registers = device.bar(0).mmap();
    const cap = this.registers.read64(REG.CAP);
    this.capabilities = decodeCapabilities(cap);
    // A refused controller must not keep BAR0 mapped (a fault sweep found the leak).
    if (cap === 0xffff_ffff_ffff_ffffn) {
      this.registers.close();
      throw new NvmeControllerError('CAP reads all ones: the controller is gone (surprise removal)');
    }
    if (cap === 0n) {
      // No controller reports no queue entries and no command set; an offline VF reads so.
      const csts = this.registers.read32(REG.CSTS);
      this.registers.close();
      throw new NvmeControllerError(
        `CAP reads 0 (CSTS 0x${csts.toString(16)}): no controller answers here` +
          ((csts & CSTS.CFS) !== 0
            ? ' — an SR-IOV secondary controller (VF) reads so while offline: its primary (the PF) must assign it queues and interrupts and bring it online (Virtualization Management)'
            : ''),
      );
    }
    if (this.capabilities.minPageSize > PAGE || this.capabilities.maxPageSize < PAGE) {
      this.registers.close();
      throw new NvmeControllerError(
        `the controller does not take ${PAGE}-byte memory pages (CAP.MPSMIN ${this.capabilities.minPageSize}, MPSMAX ${this.capabilities.maxPageSize})`,
      );
    }
    device.config.enableBusMaster();
    this.admin = new QueuePair(this.registers, device.dmaSpace, 0, ADMIN_DEPTH, this.capabilities.doorbellStride, this.deadlineCell);
    // Deadlines are checked at least twice per timeout, so a short timeout is not stretched to the watchdog's period.
    this.watchdog = setInterval(() => this.watch(), Math.max(1, Math.min(WATCHDOG_MS, this.timeoutMs / 2)));
    this.watchdog.unref();
  }

  /** Identify Controller, decoded. */
  get controller(): ControllerIdentity {
    if (!this.identity) throw new NvmeControllerError('the controller is not identified yet');
    return this.identity;
  }

  /** The active namespaces, identified. */
  get namespaces(): readonly NamespaceIdentity[] {
    return this.namespaceList;
  }

  /** The I/O queue pairs in use. */
  get ioQueueCount(): number {
    return this.io.length;
  }

  /** CSTS now. */
  get status(): number {
    return this.registers.read32(REG.CSTS);
  }

  private async start(device: VfioDevice, options: NvmeDriverOptions): Promise<void> {
    const wanted = options.ioQueues ?? 1;
    const depth = Math.min(options.queueDepth ?? 64, this.capabilities.maxQueueEntries);
    this.depth = depth;
    await this.disable();
    const a = this.admin;
    this.registers.write32(REG.AQA, ((ADMIN_DEPTH - 1) << 16) | (ADMIN_DEPTH - 1));
    this.write64(REG.ASQ, a.sqAddress);
    this.write64(REG.ACQ, a.cqAddress);
    const mode = options.completion ?? 'auto';
    if (mode === 'intx') {
      this.vectors = device.irqs.enable('intx', 1);
      this.completion = 'intx';
    } else if (mode !== 'poll') {
      try {
        this.vectors = device.irqs.enable('msix', 1 + wanted);
        this.completion = 'interrupt';
      } catch (e) {
        if (mode === 'interrupt') throw e;
      }
    }
    this.listenPlatform(device);
    this.registers.write32(REG.CC, CC.EN | CC.CSS_NVM | CC.IOSQES_64 | CC.IOCQES_16);
    await this.waitStatus((s) => (s & CSTS.RDY) !== 0, 'ready (CSTS.RDY 1)');
    // Polling: keep the pin quiet (the admin queue always has interrupts enabled).
    if (this.completion === 'poll') this.registers.write32(REG.INTMS, 0xffff_ffff);
    else if (this.completion === 'intx') this.listenIntx(this.vectors[0]!);
    else this.listen(a, this.vectors[0]!);

    this.identity = decodeController(await this.identify(CNS.CONTROLLER), this.capabilities.minPageSize);
    const nsids = decodeNamespaceList(await this.identify(CNS.ACTIVE_NAMESPACES));
    this.namespaceList = [];
    this.lastNsid = -1;
    for (const nsid of nsids) this.namespaceList.push(decodeNamespace(nsid, await this.identify(CNS.NAMESPACE, nsid)));

    const granted = await this.setFeatures(FEATURE.NUMBER_OF_QUEUES, ((wanted - 1) | ((wanted - 1) << 16)) >>> 0);
    const count = Math.min(wanted, (granted & 0xffff) + 1, (granted >>> 16) + 1);
    for (let id = 1; id <= count; id++) {
      const qp = new QueuePair(this.registers, device.dmaSpace, id, depth, this.capabilities.doorbellStride, this.deadlineCell);
      this.io.push(qp);
      await this.createQueues(qp, false);
      if (this.completion === 'interrupt') this.listen(qp, this.vectors[id]!);
    }
  }

  private async createQueues(qp: QueuePair, duringRecovery: boolean): Promise<void> {
    const id = qp.id,
      depth = this.depth;
    const interrupts = this.completion !== 'poll';
    const vector = this.completion === 'interrupt' ? id : 0;
    // Physically contiguous (bit 0), interrupts enabled (bit 1), the vector in 31:16.
    await this.execute(
      this.admin,
      ADMIN.CREATE_CQ,
      0,
      undefined,
      Number(qp.cqAddress),
      0,
      ((depth - 1) << 16) | id,
      (vector << 16) | (interrupts ? 2 : 0) | 1,
      0,
      0,
      0,
      0,
      0,
      undefined,
      duringRecovery,
    );
    await this.execute(
      this.admin,
      ADMIN.CREATE_SQ,
      0,
      undefined,
      Number(qp.sqAddress),
      0,
      ((depth - 1) << 16) | id,
      ((id << 16) | 1) >>> 0,
      0,
      0,
      0,
      0,
      0,
      undefined,
      duringRecovery,
    );
  }

  /**
   * Controller reset and re-initialisation, as a robust driver recovers (Linux's nvme_reset_work):
   * first the controller is disabled, so nothing it still holds can be transferred into memory a
   * caller frees once its command failed; then every outstanding command fails (timed-out ones
   * with NvmeTimeoutError, the rest with `reason`); then the admin queue, the queue count and every
   * I/O queue pair are set up again on the same memory and vectors. If that fails the driver is
   * failed for good: every later command is an NvmeControllerError at once.
   */
  private recover(reason: NvmeControllerError, timedOut: readonly CommandIdentity[] = []): Promise<void> {
    if (this.recovery) return this.recovery;
    if (this.failure || this.closed) return Promise.resolve();
    let quiesce!: () => void;
    this.quiesced = new Promise<void>((r) => {
      quiesce = r;
    });
    this.recovery = (async () => {
      try {
        // Abort what timed out (the specification's first step); QEMU never aborts, so a reset follows either way.
        const aborts = timedOut
          .filter((c) => c.queue !== 0)
          .map(async (c) => this.abortAnswers.set(`${c.queue}:${c.cid}`, await this.abort(c)));
        if (aborts.length) await Promise.race([Promise.all(aborts), new Promise((r) => setTimeout(r, this.timeoutMs))]);
        this.resets++;
        this.resetReason = reason;
        // A fatal PCIe error's bus reset (AER) took the BARs and the command register with it,
        // behind vfio-pci's back; writing the command register makes vfio-pci put the BARs back,
        // and the MSI-X table the reset cleared is programmed again.
        const decodeLost = this.restoreDecode();
        try {
          await this.disable();
        } finally {
          const fail = (_cid: number, _opcode: number, _nsid: number, callback: CompletionCallback) =>
            callback(STATUS_CONTROLLER_FAILED, 0);
          this.admin.failAll(fail);
          for (const qp of this.io) qp.failAll(fail);
          quiesce();
        }
        if (decodeLost) this.reprogramVectors();
        this.admin.resetRings();
        for (const qp of this.io) qp.resetRings();
        this.registers.write32(REG.AQA, ((ADMIN_DEPTH - 1) << 16) | (ADMIN_DEPTH - 1));
        this.write64(REG.ASQ, this.admin.sqAddress);
        this.write64(REG.ACQ, this.admin.cqAddress);
        this.registers.write32(REG.CC, CC.EN | CC.CSS_NVM | CC.IOSQES_64 | CC.IOCQES_16);
        await this.waitStatus((st) => (st & CSTS.RDY) !== 0, 'ready again after a reset (CSTS.RDY 1)');
        if (this.completion === 'poll') this.registers.write32(REG.INTMS, 0xffff_ffff);
        const n = this.io.length;
        if (n)
          await this.execute(
            this.admin,
            ADMIN.SET_FEATURES,
            0,
            undefined,
            undefined,
            undefined,
            FEATURE.NUMBER_OF_QUEUES,
            ((n - 1) | ((n - 1) << 16)) >>> 0,
            0,
            0,
            0,
            0,
            0,
            undefined,
            true,
          );
        for (const qp of this.io) await this.createQueues(qp, true);
      } catch (e) {
        quiesce();
        this.failAll(new NvmeControllerError(`recovery after "${reason.message}" failed: ${(e as Error).message}`));
      } finally {
        this.resetReason = undefined;
        this.recovery = undefined;
      }
    })();
    return this.recovery;
  }

  // ---- admin ----

  /** Identify with the given CNS; the 4 KiB of data. */
  async identify(cns: number, nsid = 0, cdw11 = 0): Promise<Uint8Array> {
    using data = DmaBuffer.allocate(PAGE, { space: this.device.dmaSpace });
    await this.adminCommand({ opcode: ADMIN.IDENTIFY, nsid, cdw10: cns, cdw11 }, { buffer: data, length: PAGE });
    return data.bytes.slice(0, PAGE);
  }

  /** Get Features (select current); dword 0 of the completion. */
  getFeatures(fid: number, cdw11 = 0, nsid = 0): Promise<number> {
    return this.adminCommand({ opcode: ADMIN.GET_FEATURES, nsid, cdw10: fid, cdw11 });
  }

  setFeatures(fid: number, cdw11: number, nsid = 0): Promise<number> {
    return this.adminCommand({ opcode: ADMIN.SET_FEATURES, nsid, cdw10: fid, cdw11 });
  }

  /** Get Log Page: `length` bytes (a multiple of 4) of log `lid`. */
  async getLogPage(lid: number, length: number, nsid = 0xffff_ffff, offset = 0): Promise<Uint8Array> {
    if (length <= 0 || length % 4) throw new RangeError(`a log page read is a positive multiple of 4 bytes, not ${length}`);
    using data = DmaBuffer.allocate(Math.ceil(length / PAGE) * PAGE, { space: this.device.dmaSpace });
    const numd = length / 4 - 1;
    await this.adminCommand(
      {
        opcode: ADMIN.GET_LOG_PAGE,
        nsid,
        cdw10: ((numd & 0xffff) << 16) | lid,
        cdw11: numd >>> 16,
        cdw12: offset >>> 0,
        cdw13: Math.floor(offset / 0x1_0000_0000),
      },
      { buffer: data, length },
    );
    return data.bytes.slice(0, length);
  }

  /** Any admin command; resolves with dword 0 of its completion. */
  adminCommand(command: AdminCommand, data?: DataBuffer): Promise<number> {
    return this.commandWithFlags(0, command, 0, data);
  }

  /**
   * Any command on queue `queue` (0: admin; 1..: I/O) with the flags byte as given (FUSE in bits
   * 1:0, PSDT in 7:6) — for checking how a controller answers what this driver never sends.
   */
  commandWithFlags(queue: number, command: AdminCommand, flags: number, data?: DataBuffer): Promise<number> {
    const qp = queue === 0 ? this.admin : this.io[queue - 1];
    if (!qp) throw new RangeError(`no queue ${queue}`);
    return this.execute(
      qp,
      command.opcode,
      command.nsid ?? 0,
      data,
      command.prp1,
      command.prp2,
      command.cdw10 ?? 0,
      command.cdw11 ?? 0,
      command.cdw12 ?? 0,
      command.cdw13 ?? 0,
      command.cdw14 ?? 0,
      command.cdw15 ?? 0,
      flags,
      command.dataPointer,
    );
  }

  // ---- I/O ----

  /** Reads `blocks` blocks from `lba` into `buffer` at `offset`, split at MDTS. */
  read(nsid: number, lba: bigint | number, blocks: number, buffer: DmaBuffer, offset = 0): Promise<void> {
    return this.transfer(NVM.READ, nsid, lba, blocks, buffer, offset);
  }

  /** Writes `blocks` blocks at `lba` from `buffer` at `offset`, split at MDTS. */
  write(nsid: number, lba: bigint | number, blocks: number, buffer: DmaBuffer, offset = 0): Promise<void> {
    return this.transfer(NVM.WRITE, nsid, lba, blocks, buffer, offset);
  }

  async flush(nsid: number): Promise<void> {
    await this.execute(this.pickQueue(), NVM.FLUSH, nsid, undefined, undefined, undefined, 0, 0, 0, 0, 0, 0);
  }

  async writeZeroes(nsid: number, lba: bigint | number, blocks: number): Promise<void> {
    const [lo, hi] = split(lba);
    await this.execute(this.pickQueue(), NVM.WRITE_ZEROES, nsid, undefined, undefined, undefined, lo, hi, blocks - 1, 0, 0, 0);
  }

  /** Out of line, as the cold paths of submit(): their bytecode would count against its inlining budget. */
  private pagesOf(buffer: DmaBuffer): BusPages {
    this.lastBuffer = buffer;
    this.lastPages = busPages(buffer);
    return this.lastPages;
  }

  /** The block size of namespace `nsid`, 0 if the driver does not know it; the last one asked is kept at hand. */
  private blockBytes(nsid: number): number {
    if (nsid === this.lastNsid) return this.lastBlockBytes;
    this.lastNsid = nsid;
    this.lastBlockBytes = this.namespaceList.find((n) => n.nsid === nsid)?.blockSize ?? 0;
    return this.lastBlockBytes;
  }

  /** Throws what is wrong with a submit()'s LBA, block count or length; returns if nothing is (an LBA of 2^32 or more, a namespace the driver does not know). */
  private checkTransfer(nsid: number, lba: number, blocks: number, bytes: number): void {
    if (!Number.isSafeInteger(lba) || lba < 0) throw new RangeError(`LBA ${lba} must be an integer 0..2^53-1`);
    if (!Number.isInteger(blocks) || blocks < 1 || blocks > 0x1_0000)
      throw new RangeError(`block count ${blocks} must be an integer 1..65536 (NLB is 16 bits)`);
    const blockSize = this.blockBytes(nsid);
    if (blockSize !== 0 && bytes !== blocks * blockSize)
      throw new RangeError(
        `${bytes} bytes for ${blocks} blocks of ${blockSize} bytes (namespace ${nsid}): a transfer describes exactly its blocks`,
      );
  }

  private noQueue(queue: number): RangeError {
    return new RangeError(`no I/O queue ${queue} (have ${this.io.length})`);
  }

  /**
   * The allocation-free I/O path: submits one read or write of at most MDTS on I/O queue
   * `queue` (1-based) and calls `done(status)` with 0 or the NVMe status when it completes
   * (negative: timed out, or the controller failed). Returns false when the queue is full.
   * `lba` is an integer 0..2^53-1, `blocks` 1..65536, `bytes` exactly `blocks` times the
   * namespace's block size (where the namespace is known), `offset` below 2^32: anything else is
   * a RangeError, thrown before anything is submitted.
   */
  submit(
    queue: number,
    write: boolean,
    nsid: number,
    lba: number,
    blocks: number,
    buffer: DmaBuffer,
    offset: number,
    bytes: number,
    done: CompletionCallback,
  ): boolean {
    const qp = this.io[queue - 1];
    if (!qp) throw this.noQueue(queue);
    // An LBA or a block count out of range is not an error the controller could report but a
    // different command (NLB is CDW12's low 16 bits, flags above it): one test for the common case.
    if (lba >>> 0 !== lba || ((blocks - 1) & 0xffff) !== blocks - 1 || bytes !== blocks * this.blockBytes(nsid))
      this.checkTransfer(nsid, lba, blocks, bytes);
    if (this.failure) {
      done(STATUS_CONTROLLER_FAILED, 0);
      return true;
    }
    // A driver's I/O mostly goes through one buffer: its pages are kept at hand, not looked up per I/O.
    const pages = buffer === this.lastBuffer && !buffer.closed ? this.lastPages : this.pagesOf(buffer);
    if (!this.inPass) this.deadlineCell[0] = performance.now() + this.timeoutMs;
    if (!qp.transfer(write ? NVM.WRITE : NVM.READ, nsid, pages, offset, bytes, lba >>> 0, lbaHigh(lba), blocks - 1, done)) return false;
    this.reap();
    return true;
  }

  /**
   * Resets the controller and brings it up again with the same queues (what the driver does by
   * itself after a timeout, fatal status or a controller that reset itself). Commands in flight
   * fail with an NvmeControllerError; the namespace's data is untouched.
   */
  async reset(): Promise<void> {
    if (this.failure) throw this.failure;
    if (this.closed) throw new NvmeControllerError('the driver was closed');
    await this.recover(new NvmeControllerError('reset requested'));
    // Read again: recovery may have given up (TypeScript still sees the check above).
    const failed = this.failedFor();
    if (failed) throw failed;
  }

  private failedFor(): NvmeControllerError | undefined {
    return this.failure;
  }

  // ---- shutdown ----

  /** Deletes the I/O queues and shuts the controller down (CC.SHN normal, wait for CSTS.SHST complete). */
  async shutdown(): Promise<void> {
    if (this.failure || this.closed) return;
    for (const qp of [...this.io].reverse()) {
      await this.adminCommand({ opcode: ADMIN.DELETE_SQ, cdw10: qp.id });
      await this.adminCommand({ opcode: ADMIN.DELETE_CQ, cdw10: qp.id });
    }
    for (const qp of this.io) qp.close();
    this.io.length = 0;
    const cc = this.registers.read32(REG.CC);
    this.registers.write32(REG.CC, ((cc & ~CC.SHN_MASK) | CC.SHN_NORMAL) >>> 0);
    await this.waitStatus((s) => (s & CSTS.SHST_MASK) === CSTS.SHST_COMPLETE, 'shut down (CSTS.SHST complete)');
  }

  /** Releases everything; the controller is disabled if it is still enabled. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.watchdog);
    for (const v of this.platformVectors) v.close();
    if (!this.device.closed)
      for (const kind of ['err', 'req'] as const) if (this.platformVectors.some((v) => v.kind === kind)) this.device.irqs.disable(kind);
    this.platformVectors = [];
    this.lastBuffer = undefined;
    this.failAll(new NvmeControllerError('the driver was closed'));
    try {
      // The device may have been closed first (its mappings with it): then there is nothing to disable.
      if (!this.registers.closed && this.registers.read32(REG.CC) & CC.EN) this.registers.write32(REG.CC, 0);
    } finally {
      for (const v of this.vectors) v.close();
      if (this.vectors.length && !this.device.closed) this.device.irqs.disable(this.completion === 'intx' ? 'intx' : 'msix');
      for (const qp of this.io) qp.close();
      this.admin.close();
      this.registers.close();
    }
  }

  [Symbol.dispose](): void {
    this.close();
  }

  // ---- inside ----

  private async disable(): Promise<void> {
    const cc = this.registers.read32(REG.CC);
    if (cc & CC.EN) this.registers.write32(REG.CC, 0);
    await this.waitStatus((s) => (s & CSTS.RDY) === 0, 'disabled (CSTS.RDY 0)');
  }

  /** Waits up to CAP.TO for CSTS to satisfy `done`; CFS (or a device that reads all ones) fails at once. */
  private async waitStatus(done: (csts: number) => boolean, what: string): Promise<void> {
    const deadline = performance.now() + Math.max(this.capabilities.readyTimeoutMs, 500);
    for (;;) {
      const csts = this.registers.read32(REG.CSTS);
      if (csts === 0xffff_ffff) throw new NvmeControllerError(`the controller reads all ones while waiting to be ${what}: it is gone`);
      if (done(csts)) return;
      if (csts & CSTS.CFS)
        throw new NvmeControllerError(`controller fatal status while waiting to be ${what} (CSTS 0x${csts.toString(16)})`);
      if (performance.now() > deadline)
        throw new NvmeControllerError(
          `the controller was not ${what} within CAP.TO (${this.capabilities.readyTimeoutMs} ms; CSTS 0x${csts.toString(16)})`,
        );
      await new Promise((r) => setTimeout(r, 1));
    }
  }

  private write64(offset: number, value: bigint): void {
    this.registers.write32(offset, Number(value & 0xffff_ffffn));
    this.registers.write32(offset + 4, Number(value >> 32n));
  }

  private pickQueue(): QueuePair {
    if (!this.io.length) throw new NvmeControllerError('no I/O queues');
    this.nextQueue = (this.nextQueue + 1) % this.io.length;
    return this.io[this.nextQueue]!;
  }

  private async transfer(
    opcode: number,
    nsid: number,
    lba: bigint | number,
    blocks: number,
    buffer: DmaBuffer,
    offset: number,
  ): Promise<void> {
    const ns = this.namespaceList.find((n) => n.nsid === nsid);
    const blockSize = ns?.blockSize ?? 512;
    if (!Number.isInteger(blocks) || blocks < 1) throw new RangeError(`block count ${blocks} must be a positive integer`);
    if (offset % 4 || offset < 0) throw new RangeError(`buffer offset ${offset} must be dword aligned`);
    if (offset + blocks * blockSize > Number(buffer.size))
      throw new RangeError(`${blocks} blocks of ${blockSize} bytes at offset ${offset} do not fit the ${buffer.size}-byte buffer`);
    const perCommand = Math.min(0xffff + 1, Math.floor(Math.min(this.controller.maxTransferBytes, (PAGE / 8) * PAGE) / blockSize));
    const start = BigInt(lba);
    const pending: Promise<number>[] = [];
    for (let done = 0; done < blocks; done += perCommand) {
      const n = Math.min(perCommand, blocks - done);
      const [lo, hi] = split(start + BigInt(done));
      pending.push(
        this.execute(
          this.pickQueue(),
          opcode,
          nsid,
          { buffer, offset: offset + done * blockSize, length: n * blockSize },
          undefined,
          undefined,
          lo,
          hi,
          n - 1,
          0,
          0,
          0,
        ),
      );
    }
    await Promise.all(pending);
  }

  private async execute(
    qp: QueuePair,
    opcode: number,
    nsid: number,
    data: DataBuffer | undefined,
    prp1: number | undefined,
    prp2: number | undefined,
    cdw10: number,
    cdw11: number,
    cdw12: number,
    cdw13: number,
    cdw14: number,
    cdw15: number,
    flags = 0,
    dataPointer?: Uint8Array,
    duringRecovery = false,
  ): Promise<number> {
    if (!duringRecovery) while (this.recovery && !this.failure) await this.recovery;
    while (!qp.hasRoom && !this.failure) await immediate();
    // Before an admin command, a look at CSTS: a controller in fatal status may still answer,
    // but nothing it says can be trusted until it is reset.
    if (qp === this.admin && !this.failure && !duringRecovery) this.checkFatal();
    if (this.failure) throw this.failure;
    const cid = qp.reserve();
    let p1 = prp1 ?? 0,
      p2 = prp2 ?? 0;
    if (data) {
      const pages = busPages(data.buffer);
      const offset = data.offset ?? 0;
      if (prp1 === undefined) p1 = busAddress(pages, offset);
      if (prp2 === undefined) p2 = buildPrp2(pages, offset, data.length, qp.prpList(cid), qp.prpListAddress(cid));
    }
    const command: CommandIdentity = { opcode, queue: qp.id, cid, nsid };
    return new Promise<number>((resolve, reject) => {
      qp.submit(
        cid,
        opcode,
        flags,
        nsid,
        p1,
        p2,
        cdw10,
        cdw11,
        cdw12,
        cdw13,
        cdw14,
        cdw15,
        this.deadline(),
        (status, result) => {
          if (status === 0) resolve(result);
          else if (status === STATUS_TIMED_OUT) {
            // Rejected only once the controller is reset: until then it may still transfer into the caller's buffer.
            const key = `${command.queue}:${command.cid}`;
            void this.quiesced.then(() => {
              const aborted = this.abortAnswers.get(key) ?? false;
              this.abortAnswers.delete(key);
              reject(new NvmeTimeoutError(command, this.timeoutMs, aborted));
            });
          } else if (status === STATUS_CONTROLLER_FAILED)
            reject(this.failure ?? this.resetReason ?? new NvmeControllerError('the controller failed', command));
          else reject(new NvmeCommandError(command, status, result));
        },
        dataPointer,
      );
      this.reap();
    });
  }

  /** Asks the controller to abort a timed-out command; whether it says it did. */
  private async abort(command: CommandIdentity): Promise<boolean> {
    if (command.queue === 0 || this.failure || this.closed) return false;
    try {
      const result = await this.adminCommand({ opcode: ADMIN.ABORT, cdw10: ((command.cid << 16) | command.queue) >>> 0 });
      return (result & 1) === 0;
    } catch {
      return false;
    }
  }

  /**
   * ERR and REQ. ERR says an AER error reached the device; a non-fatal one leaves it as it was,
   * a fatal one resets its bus right after, so the driver looks for that reset a little while
   * (the controller then reads RDY 0 and recovery brings it back). REQ asks for the device back.
   */
  private listenPlatform(device: VfioDevice): void {
    for (const kind of ['err', 'req'] as const) {
      if (device.irqs.info(kind).count === 0) continue;
      const [vector] = device.irqs.enable(kind);
      this.platformVectors.push(vector!);
      void (async () => {
        for await (const _ of vector!) {
          void _;
          if (kind === 'err') this.watchAfterError();
          else this.removalRequested();
        }
      })().catch((e: unknown) =>
        this.failAll(new NvmeControllerError(`the ${kind.toUpperCase()} interrupt failed: ${(e as Error).message}`)),
      );
    }
  }

  private watchAfterError(): void {
    const until = performance.now() + AER_WATCH_MS;
    const look = () => {
      if (this.closed || this.failure) return;
      if (this.checkFatal() || performance.now() > until) return;
      setTimeout(look, AER_WATCH_PERIOD_MS).unref();
    };
    look();
  }

  private removalRequested(): void {
    if (this.closed) return;
    this.failAll(
      new NvmeControllerError('the kernel asked for the device back (VFIO REQ: hot-unplug or unbind); close the driver and the device'),
    );
    this.onRemovalRequest?.();
  }

  /** Whether the function had lost memory decoding (and now has it back). */
  private restoreDecode(): boolean {
    const command = this.device.config.read16(PCI_COMMAND);
    if (command & PCI_COMMAND_MEMORY) return false;
    this.device.config.write16(PCI_COMMAND, command | PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER);
    return true;
  }

  /** After a bus reset: MSI-X enabled again, each queue listening on its new vector. */
  private reprogramVectors(): void {
    if (this.completion !== 'interrupt') return;
    const count = this.vectors.length;
    for (const v of this.vectors) v.close();
    this.device.irqs.disable('msix');
    this.vectors = this.device.irqs.enable('msix', count);
    this.listen(this.admin, this.vectors[0]!);
    this.io.forEach((qp, i) => this.listen(qp, this.vectors[i + 1]!));
  }

  /** Interrupt mode: drain a queue pair's completions on every interrupt of its vector. */
  private listen(qp: QueuePair, vector: InterruptVector): void {
    void (async () => {
      for await (const _ of vector) {
        void _;
        qp.poll();
      }
    })().catch((e: unknown) => this.failAll(new NvmeControllerError(`interrupt vector ${vector.vector} failed: ${(e as Error).message}`)));
  }

  /**
   * INTx mode: one level-triggered pin for every queue. vfio-pci masks it when it fires; after
   * the completions are consumed (and the head doorbells let the controller drop the pin) it is
   * unmasked, and fires again if something is still pending.
   */
  private listenIntx(pin: InterruptVector): void {
    void (async () => {
      for await (const _ of pin) {
        void _;
        this.pollAll();
        pin.unmask();
      }
    })().catch((e: unknown) => this.failAll(new NvmeControllerError(`the INTx pin failed: ${(e as Error).message}`)));
  }

  /**
   * Poll mode: consume completions while any command is outstanding. Passes run in turns of the
   * event loop (setImmediate, so a completion callback never runs inside the submit that
   * started the turn); a turn ends after `pollSpinMicroseconds` without a completion, or after
   * `pollTurnMicroseconds` in any case, so timers and I/O of the rest of the program still run under a
   * steady stream of completions.
   */
  private reap(): void {
    if (this.completion !== 'poll' || this.reaping) return;
    this.reaping = true;
    setImmediate(this.reapTurn);
  }

  private readonly reapTurn = (): void => {
    let now = performance.now();
    const turnEnds = now + this.turnMs;
    let lastFound = now;
    let foundSinceClock = false;
    this.deadlineCell[0] = now + this.timeoutMs;
    this.inPass = true;
    try {
      for (let pass = 1; !this.closed && this.outstanding() > 0; pass++) {
        if (this.pollAll() > 0) foundSinceClock = true;
        else if (this.spinMs === 0) break;
        // The clock every CLOCK_PASSES passes, not every pass: in Node 20 each read allocates
        // (performance.now makes an hrtime array), and a pass is about one I/O at depth.
        if (pass % CLOCK_PASSES === 0) {
          now = performance.now();
          this.deadlineCell[0] = now + this.timeoutMs;
          if (foundSinceClock) lastFound = now;
          else if (now - lastFound >= this.spinMs) break;
          foundSinceClock = false;
          if (now >= turnEnds) break;
        }
      }
    } finally {
      this.inPass = false;
      if (!this.closed && this.outstanding() > 0) setImmediate(this.reapTurn);
      else this.reaping = false;
    }
  };

  /**
   * The deadline of a command submitted now: inside the poll loop, from its last clock read (at
   * most CLOCK_PASSES passes old, so a completion callback that submits the next I/O, the hot
   * path, reads no clock); anywhere else, from the time now.
   */
  private deadline(): number {
    return this.inPass ? this.deadlineCell[0]! : performance.now() + this.timeoutMs;
  }

  private pollAll(): number {
    // A queue with nothing outstanding has nothing to complete: the poll loop's passes skip it.
    let n = this.admin.outstanding > 0 ? this.admin.poll() : 0;
    // Indexed, not for-of: an array iterator per pass is garbage per I/O where V8 does not remove it.
    const io = this.io;
    for (let i = 0; i < io.length; i++) if (io[i]!.outstanding > 0) n += io[i]!.poll();
    return n;
  }

  /** Commands somebody still waits for (timed-out ones are not polled for). */
  private outstanding(): number {
    let n = this.admin.outstanding - this.admin.retired;
    const io = this.io;
    for (let i = 0; i < io.length; i++) n += io[i]!.outstanding - io[i]!.retired;
    return n;
  }

  /** Every few milliseconds while commands are outstanding: controller fatal status, and deadlines. */
  private watch(): void {
    if (this.closed || this.failure || this.outstanding() === 0) return;
    if (this.completion !== 'poll') this.pollAll();
    if (this.recovery) {
      // A reset in progress: only its own admin commands can time out (then the reset fails).
      this.admin.expire(performance.now(), (_c, _o, _n, callback) => callback(STATUS_TIMED_OUT, 0));
      return;
    }
    if (this.checkFatal()) return;
    const now = performance.now();
    const timedOut: CommandIdentity[] = [];
    const callbacks: CompletionCallback[] = [];
    for (const qp of [this.admin, ...this.io]) {
      qp.expire(now, (cid, opcode, nsid, callback) => {
        timedOut.push({ opcode, queue: qp.id, cid, nsid });
        callbacks.push(callback);
      });
    }
    if (!timedOut.length) return;
    // The reset starts first, so the timed-out commands' rejections wait for it to quiesce the controller.
    void this.recover(new NvmeControllerError(`reset: ${timedOut.length} command(s) timed out`), timedOut);
    for (const callback of callbacks) callback(STATUS_TIMED_OUT, 0);
  }

  /**
   * Looks at CSTS: a controller that reads all ones is gone (everything fails for good); one in
   * fatal status, or one that dropped RDY by itself (it reset), is reset and brought up again.
   * Whether something was wrong.
   */
  private checkFatal(): boolean {
    if (this.recovery) return false;
    const csts = this.registers.read32(REG.CSTS);
    if (csts === 0xffff_ffff) {
      this.failAll(new NvmeControllerError('the controller reads all ones: it is gone'));
      return true;
    }
    if (csts & CSTS.CFS) {
      void this.recover(new NvmeControllerError(`reset: controller fatal status (CSTS 0x${csts.toString(16)})`));
      return true;
    }
    if (!(csts & CSTS.RDY) && this.identity) {
      const lost = !(this.device.config.read16(PCI_COMMAND) & PCI_COMMAND_MEMORY);
      void this.recover(
        new NvmeControllerError(
          lost
            ? 'reset: a PCIe bus reset (a fatal AER error) cleared the function, controller included'
            : `reset: the controller dropped CSTS.RDY by itself (CSTS 0x${csts.toString(16)})`,
        ),
      );
      return true;
    }
    return false;
  }

  private failAll(error: NvmeControllerError): void {
    this.failure ??= error;
    const fail = (_cid: number, _opcode: number, _nsid: number, callback: CompletionCallback) => callback(STATUS_CONTROLLER_FAILED, 0);
    this.admin.failAll(fail);
    for (const qp of this.io) qp.failAll(fail);
  }
}

/** An option in microseconds: a finite number ≥ 0, or the default where it is not given. */
function microseconds(value: number | undefined, fallback: number, name: string): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0)
    throw new RangeError(`${name} must be a finite number of microseconds ≥ 0, not ${String(value)}`);
  return value;
}

/** The upper 32 bits of a block address; below 2^32 no division (a fraction is a heap number where V8 has not optimized yet). */
function lbaHigh(lba: number): number {
  return lba < 0x1_0000_0000 ? 0 : Math.floor(lba / 0x1_0000_0000) >>> 0;
}

function split(lba: bigint | number): [number, number] {
  if (typeof lba === 'number') return [lba >>> 0, lbaHigh(lba)];
  return [Number(lba & 0xffff_ffffn), Number((lba >> 32n) & 0xffff_ffffn)];
}
