/**
 * QEMU 7.2's NVMe controller (hw/nvme/ctrl.c) as the lab runs it — `-device nvme,serial=…,drive=…`
 * with its defaults — written on the public device-model SDK.
 *
 * PCI: 1b36:0010 rev 2, class 010802, subsystem 1af4:1100, INTA, BAR0 16 KiB of 64-bit memory
 * holding the registers (0x0000), the doorbells (0x1000, stride 4: CAP.DSTRD 0), the MSI-X table
 * (0x2000) and PBA (0x3000) of 65 vectors; MSI-X at 0x40, PM at 0x60, PCI Express (integrated
 * endpoint, FLR) at 0x80; no MSI.
 *
 * Registers: CAP MQES 2047, CQR, TO 7.5 s, DSTRD 0, CSS NVM + I/O command sets + admin only,
 * MPSMIN 4 KiB, MPSMAX 64 KiB, no CMB or PMR; VS 1.4. A CC write is stored as written; setting
 * SHN shuts down (CSTS.SHST complete), EN 0→1 checks the admin queue and CC fields and sets CSTS
 * to RDY — or to CFS alone when a check fails —, EN 1→0 resets the controller (queues gone; CC,
 * CSTS, INTMS back to 0). A submission queue entry or completion that cannot be transferred sets
 * CSTS to CFS and stops the controller.
 *
 * Commands are fetched when the machine's clock next runs after a tail doorbell and executed in
 * order. Those that end at once (admin commands, refused I/O) complete in that order; those that
 * reach the storage (reads, writes, flushes, …) complete after them, the newest first, as QEMU's
 * block layer hands back requests that finished together. Completions are posted in that order
 * with the phase tag and the submission queue head, followed by the completion queue's MSI-X
 * vector — or INTx, the pin asserted while a completion queue with interrupts enabled holds
 * entries and INTMS does not mask its vector.
 *
 * Asynchronous Event Requests wait, up to four, and an event answers the one submitted last
 * (QEMU keeps them as a stack); after an event of a type, the next of that type waits until its
 * log page is read (async-events.ts).
 *
 * In an NVM subsystem with SR-IOV (sriov-resources.ts) the PF keeps flexible resources for its
 * VFs, whose controllers stay offline until Virtualization Management gives them some and brings
 * them online; a function reset of the PF takes its VFs off the bus. Namespace Attachment moves
 * the subsystem's namespace on and off its controllers, each with its Changed Namespace List.
 *
 * Shadow doorbells (Doorbell Buffer Config) as QEMU 7.2 has them: once configured, a fetch pass
 * reads the submission queue's tail from the host's shadow (a doorbell write only starts the
 * pass; its value is overwritten) and after each command writes the tail it has seen as the event
 * index; a posting pass writes the head it knows as the event index and reads the shadow head
 * before each entry. The admin queue's doorbell writes are copied into the shadow, since drivers
 * ring only the register for it. A controller reset ends it.
 */
import {
  DeviceModel,
  extendedCapability,
  msixCapability,
  pcieCapability,
  pmCapability,
  sriovCapability,
  SRIOV,
  SRIOV_CTRL_VFE,
  type AccessWidth,
  type ResetKind,
} from '../../model/device';
import { ADMIN, executeAdmin, HELD } from './admin-commands';
import { EVENT_INFO, EVENT_TYPE } from './async-events';
import { CQE_SIZE, decodeCommand, SQE_SIZE, type Command, type Completion } from './command';
import type { AdminContext, NamespaceAttachments } from './context';
import { initialFeatures } from './features';
import { identifyController } from './identify-controller';
import { NVME_FAULT_POINTS, type CommandSubject } from './faults';
import { executeIo } from './io-commands';
import { LOG_PAGE } from './log-pages';
import { MemoryStorage, Namespace, type CopyLimits, type NamespaceStorage } from './namespace';
import { walkPrps, type DataRun } from './prp';
import { walkSgl } from './sgl';
import { CompletionQueue, SubmissionQueue } from './queues';
import { shadowDoorbell, type DoorbellBuffer } from './shadow-doorbells';
import {
  PrimaryResources,
  SecondaryResources,
  type ControllerResources,
  type SecondaryController,
  type VirtualFunctions,
} from './sriov-resources';
import {
  cc,
  CC_EN,
  capabilityRegister,
  CSS_ADMIN_ONLY,
  CSTS_CFS,
  CSTS_RDY,
  CSTS_SHST_COMPLETE,
  CSTS_SHST_MASK,
  NVME_VERSION_1_4,
  REG,
  REGISTER_BLOCK_SIZE,
  RegisterFile,
} from './registers';
import { STATUS } from './status';

export const NVME_VENDOR_ID = 0x1b36;
export const NVME_DEVICE_ID = 0x0010;
export const NVME_CLASS_CODE = 0x010802;
export const NVME_BAR0_SIZE = 0x4000n;
const DOORBELLS = 0x1000;
const MSIX_TABLE = 0x2000;

export interface NvmeOptions {
  /** QEMU's serial property; the lab's is 'nodevfio0001'. */
  readonly serial?: string;
  /** The namespace's blocks; default 64 MiB in memory, zeroes, like the lab's fresh image. */
  readonly storage?: NamespaceStorage;
  /**
   * The namespace's Copy limits (MSSRL, MCL, MSRC): default all 0, as QEMU gives the namespace of
   * its drive property (the lab's nvme machine); an nvme-ns device's are 128, 128 and 127.
   */
  readonly copyLimits?: CopyLimits;
  /** QEMU's max_ioqpairs (default 64). */
  readonly ioQueuePairs?: number;
  /** QEMU's msix_qsize (default 65). */
  readonly msixVectors?: number;
  /** QEMU's mdts (default 7: 512 KiB with 4 KiB pages). */
  readonly mdts?: number;
  /** The firmware revision QEMU reports: its version (the lab's Debian build is 7.2.22). */
  readonly firmwareRevision?: string;
  /** Where firmware put BAR0 (the lab's q35: 0xfebd4000). */
  readonly bar0Address?: bigint;
  /** QEMU's drive discard option: 'ignore' (its default, the lab's) or 'unmap' (deallocation zeroes blocks). */
  readonly discard?: 'ignore' | 'unmap';
  /** Microseconds of machine time between a doorbell and the commands it submitted being processed. */
  readonly latencyMicroseconds?: number;
  /**
   * QEMU's sriov_max_vfs (default 0: no SR-IOV): the controller becomes an SR-IOV PF with an ARI
   * capability at 0x100 and the SR-IOV capability at 0x120 (TotalVFs = this, First VF Offset 1,
   * VF Stride 1, VF Device ID 0x0010), as QEMU 7.2 lays them out; its VFs are secondary controllers.
   */
  readonly sriovMaxVfs?: number;
  /**
   * QEMU's sriov_vq_flexible and sriov_vi_flexible: the queue and interrupt resources the PF can
   * hand its secondary controllers; QEMU requires both with SR-IOV (vq ≥ 2 × VFs, vi ≥ VFs, and
   * max_ioqpairs - vq ≥ 2, msix_qsize - vi ≥ 1). Each VF gets vq / VFs queues (its admin queue
   * included) and vi / VFs MSI-X vectors, QEMU's defaults for sriov_max_vq_per_vf and
   * sriov_max_vi_per_vf (the lab's 4 and 2 with 2 VFs: 1 I/O queue pair and 1 vector each).
   */
  readonly sriovVqFlexible?: number;
  readonly sriovViFlexible?: number;
  /**
   * The NVM subsystem the controller is in (QEMU's subsys=, naming an nvme-subsys device; the
   * value is its NQN suffix, by default the device's id): CMIC says more than one controller,
   * SUBNQN is the subsystem's, the namespace is shared (NMIC), and Identify lists the subsystem's
   * controllers. QEMU requires one for SR-IOV.
   */
  readonly subsystem?: string;
  /** @internal Set on a VF created by a PF: its 0-based VF number. */
  readonly virtualFunction?: number;
  /** @internal Set on a VF created by a PF: the PF and the VF's entry in its Secondary Controller List. */
  readonly secondaryOf?: { readonly primary: NvmeController; readonly entry: SecondaryController };
}

/** QEMU 7.2's NVME_MAX_VFS, NVME_VF_OFFSET and NVME_VF_STRIDE. */
export const NVME_MAX_VFS = 127;
const NVME_VF_OFFSET = 1,
  NVME_VF_STRIDE = 1;
const ARI_AT = 0x100,
  SRIOV_AT = 0x120;

const MAX_NAMESPACES = 256;
const CAP = {
  mqes: 0x7ff,
  timeout: 0xf,
  dstrd: 0,
  css: (1 << 0) | (1 << 6) | (1 << 7),
  mpsmin: 0,
  mpsmax: 4,
  cmbSupported: false,
  pmrSupported: false,
};
/** The supported entry sizes (log2): SQES and CQES of Identify Controller. */
const SQES = 6,
  CQES = 4;
const AER_LIMIT_EXCEEDED = 0x0105;
/** QEMU's aer_max_queued default: events past it are dropped until some are delivered. */
const MAX_QUEUED_EVENTS = 64;
/** The event type a log page's read without Retain Asynchronous Event re-enables. */
const EVENT_TYPE_OF_LOG_PAGE: Readonly<Record<number, number>> = {
  [LOG_PAGE.ERROR]: EVENT_TYPE.ERROR,
  [LOG_PAGE.SMART]: EVENT_TYPE.SMART,
  [LOG_PAGE.CHANGED_NAMESPACES]: EVENT_TYPE.NOTICE,
};

interface PendingEvent {
  readonly type: number;
  readonly info: number;
  readonly logPage: number;
}

export class NvmeController extends DeviceModel {
  readonly namespaces: readonly Namespace[];
  readonly ioQueuePairs: number;
  readonly msixVectors: number;
  readonly mdts: number;
  private readonly regs = new RegisterFile();
  private readonly identity: Uint8Array;
  private readonly latency: number;
  private readonly discard: boolean;
  private sqs: (SubmissionQueue | undefined)[] = [];
  private cqs: (CompletionQueue | undefined)[] = [];
  private pageSize = 4096;
  private queuesCreated = false;
  private irqStatus = 0;
  private cqPending = 0;
  private dmaFailures = 0;
  private features = initialFeatures();
  private heldEvents: { sq: SubmissionQueue; cid: number }[] = [];
  /** The subsystem's namespaces Namespace Attachment took from this controller (a reset gives none back). */
  private readonly detachedNamespaces = new Set<number>();
  /** The Changed Namespace List (kept through a reset, as QEMU keeps it). */
  private readonly changedNamespaces = new Set<number>();
  private pendingEvents: PendingEvent[] = [];
  private maskedEventTypes = 0;
  private readonly context: AdminContext;
  /** Set by an injected fatal status: nothing is fetched or posted until the controller is reset. */
  private halted = false;
  private doorbellBuffer: DoorbellBuffer | undefined;
  private readonly word = new Uint8Array(4);
  private readonly wordView = new DataView(this.word.buffer);
  private readonly cqe = new Uint8Array(CQE_SIZE);
  private readonly cqeView = new DataView(this.cqe.buffer);
  /** What the fetch in progress handed to the storage, oldest first: it ends after the fetch (see Completion.viaStorage). */
  private readonly handedToStorage: { sq: SubmissionQueue; command: Command; outcome: Completion }[] = [];

  private readonly options: NvmeOptions;
  /** The queues and vectors the controller works with, and its SR-IOV accounting. */
  private readonly resources: ControllerResources;
  /** The same, for a primary controller: with its Secondary Controller List. */
  private readonly primaryResources: PrimaryResources | undefined;
  /** A PF's VFs as it last created them, by index (one that is gone stays until replaced; vfExists tells). */
  private readonly vfs: (NvmeController | undefined)[] = [];

  constructor(options: NvmeOptions = {}) {
    const msixVectors = options.msixVectors ?? 65;
    const maxVfs = options.sriovMaxVfs ?? 0;
    if (!Number.isInteger(maxVfs) || maxVfs < 0 || maxVfs > NVME_MAX_VFS) {
      throw new RangeError(`NvmeController: sriovMaxVfs must be 0..${NVME_MAX_VFS} (QEMU's NVME_MAX_VFS), not ${maxVfs}`);
    }
    const vf = options.virtualFunction !== undefined;
    if (maxVfs && !vf) checkSriovResources(options, maxVfs);
    if (maxVfs && options.subsystem === undefined)
      throw new RangeError(
        'NvmeController: subsystem is required for the use of SR-IOV (sriovMaxVfs): QEMU will not realize such a controller',
      );
    // QEMU gives PF and VFs the ARI capability whenever sriov_max_vfs is set; only the PF has SR-IOV.
    const sriovCaps =
      maxVfs === 0
        ? []
        : [
            extendedCapability({
              id: PCI_EXT_CAP_ID_ARI,
              version: 1,
              data: ariData(options.virtualFunction === undefined ? NVME_VF_OFFSET : 0),
              at: ARI_AT,
            }),
            ...(options.virtualFunction === undefined
              ? [
                  sriovCapability({
                    totalVfs: maxVfs,
                    vfOffset: NVME_VF_OFFSET,
                    vfStride: NVME_VF_STRIDE,
                    vfDeviceId: NVME_DEVICE_ID,
                    at: SRIOV_AT,
                    vfBars: [{ index: 0, size: NVME_BAR0_SIZE, type: 'memory64' }],
                  }),
                ]
              : []),
          ];
    super({
      model: 'nvme',
      identity: {
        vendorId: NVME_VENDOR_ID,
        deviceId: NVME_DEVICE_ID,
        subsystemVendorId: 0x1af4,
        subsystemId: 0x1100,
        classCode: NVME_CLASS_CODE,
        revision: 2,
      },
      interruptPin: 'INTA',
      ...(vf ? { virtualFunction: true } : {}),
      // A VF's BAR0 is assigned from the PF's VF BAR window when VFs are enabled.
      bars: [
        {
          index: 0,
          size: NVME_BAR0_SIZE,
          type: 'memory64',
          ...(options.virtualFunction === undefined ? { address: options.bar0Address ?? 0xfebd_4000n } : {}),
        },
      ],
      capabilities: [
        msixCapability({ vectors: msixVectors, table: { bar: 0, offset: MSIX_TABLE }, pba: { bar: 0, offset: 0x3000 }, at: 0x40 }),
        pcieCapability({ type: 'integrated-endpoint', flr: true, at: 0x80 }),
        pmCapability({ at: 0x60 }),
        ...sriovCaps,
      ],
    });
    this.options = options;
    this.ioQueuePairs = options.ioQueuePairs ?? 64;
    this.msixVectors = msixVectors;
    const primary = options.secondaryOf?.primary;
    this.primaryResources = primary
      ? undefined
      : new PrimaryResources(
          {
            ioQueuePairs: this.ioQueuePairs,
            msixVectors,
            maxVfs,
            vqFlexible: options.sriovVqFlexible ?? 0,
            viFlexible: options.sriovViFlexible ?? 0,
          },
          this.controllerId,
        );
    this.resources = this.primaryResources ?? new SecondaryResources(options.secondaryOf!.entry);
    this.mdts = options.mdts ?? 7;
    this.latency = options.latencyMicroseconds ?? 0;
    this.discard = options.discard === 'unmap';
    const storage = options.storage ?? new MemoryStorage(64 * 1024 * 1024);
    // A secondary controller is attached to its subsystem's namespace: the PF's.
    this.namespaces = primary ? primary.namespaces : [new Namespace(1, storage, options.copyLimits)];
    if (options.subsystem !== undefined) for (const ns of this.namespaces) ns.shared = true;
    this.identity = identifyController({
      vendorId: NVME_VENDOR_ID,
      subsystemVendorId: 0x1af4,
      serial: options.serial ?? 'nodevfio0001',
      modelNumber: 'QEMU NVMe Ctrl',
      firmwareRevision: options.firmwareRevision ?? '7.2.22',
      mdts: this.mdts,
      controllerId: this.controllerId,
      aerl: 3,
      maxNamespaces: MAX_NAMESPACES,
      ...(options.subsystem === undefined ? {} : { subsystem: options.subsystem }),
    });
    this.context = this.commandContext();
    this.onEvent((e) => {
      if (e.kind === 'dma-fault' || e.kind === 'dma-blocked') this.dmaFailures++;
    });
    this.powerOnRegisters();
    this.handleMmio(0, {
      widths: [8, 16, 32, 64],
      read: (offset, width) => this.readBar(offset, width),
      write: (offset, width, value) => this.writeBar(offset, width, value),
    });
  }

  /** The controller's fault points (faults.ts): a test arms them to exercise a driver's error paths. */
  readonly faults = this.declareFaults(NVME_FAULT_POINTS);

  /**
   * CNTLID: a primary controller is the first of its subsystem (0), a secondary one has the ID
   * the subsystem reserved for it after the primary's.
   */
  get controllerId(): number {
    return this.options.secondaryOf?.entry.scid ?? 0;
  }

  /**
   * QEMU's pcie_sriov_pf_disable_vfs at a function reset of the PF: the VFs leave the bus and
   * NumVFs reads 0, while VF Enable still reads set and the host still lists them (Linux restores
   * nothing: VF Enable is set). Disabling VFs through sriov_numvfs and enabling them again brings
   * new ones.
   */
  private removeVirtualFunctions(): void {
    if (!this.options.sriovMaxVfs) return;
    this.vfs.forEach((vf, index) => {
      if (vf && this.vfExists(index + 1)) vf.removeFromBus();
    });
    this.vfs.length = 0;
    this.config.setRaw(SRIOV_AT + SRIOV.NUM_VF, 2, 0);
  }

  /** The VFs as the resources see them: resetting one is a function reset of its controller (bringing it online or offline is one). */
  private readonly virtualFunctions: VirtualFunctions = {
    exists: (vfn) => this.vfExists(vfn),
    reset: (vfn) => this.vfs[vfn - 1]?.resetFunction(),
  };

  /** Whether VF `vfn` (from 1) exists now: enabled in the SR-IOV capability, and created. */
  private vfExists(vfn: number): boolean {
    if (!this.options.sriovMaxVfs || !(this.config.getRaw(SRIOV_AT + SRIOV.CTRL, 2) & SRIOV_CTRL_VFE)) return false;
    return vfn <= this.config.getRaw(SRIOV_AT + SRIOV.NUM_VF, 2) && this.vfs[vfn - 1] !== undefined;
  }

  /**
   * The controllers of the subsystem, by ID: the primary and the VFs enabled now (each in the
   * subsystem while it exists), as the primary's SR-IOV capability says; undefined outside one.
   */
  private subsystemControllers(): number[] | undefined {
    if (this.options.subsystem === undefined) return undefined;
    const primary = this.options.secondaryOf?.primary;
    if (primary) return primary.subsystemControllers();
    const ids = [this.controllerId];
    for (const s of this.primaryResources?.secondaries ?? []) if (this.vfExists(s.vfn)) ids.push(s.scid);
    return ids;
  }

  /** This controller's attachments, as Namespace Attachment from any controller of the subsystem changes them. */
  private readonly attachments: NamespaceAttachments = {
    has: (nsid) => !this.detachedNamespaces.has(nsid) && this.ownNamespace(nsid) !== undefined,
    attach: (nsid) => this.detachedNamespaces.delete(nsid),
    detach: (nsid) => this.detachedNamespaces.add(nsid),
    changed: (nsid) => {
      if (this.changedNamespaces.has(nsid)) return;
      this.changedNamespaces.add(nsid);
      this.enqueueEvent({ type: EVENT_TYPE.NOTICE, info: EVENT_INFO.NAMESPACE_ATTRIBUTE_CHANGED, logPage: LOG_PAGE.CHANGED_NAMESPACES });
    },
  };

  /** Namespace `nsid` of those the controller was made with (a VF's are its PF's), attached now or not. */
  private ownNamespace(nsid: number): Namespace | undefined {
    return this.namespaces.find((n) => n.nsid === nsid);
  }

  /** The subsystem's controller `cntlid`: the primary, or a VF that exists now. */
  private subsystemController(cntlid: number): NamespaceAttachments | undefined {
    if (this.options.subsystem === undefined) return undefined;
    const primary = this.options.secondaryOf?.primary;
    if (primary) return primary.subsystemController(cntlid);
    if (cntlid === this.controllerId) return this.attachments;
    const entry = this.primaryResources?.secondaries.find((s) => s.scid === cntlid);
    return entry && this.vfExists(entry.vfn) ? this.vfs[entry.vfn - 1]?.attachments : undefined;
  }

  /** A secondary controller for VF `index`: the PF's parameters, without the SR-IOV capability. */
  override createVirtualFunction(index: number): DeviceModel | undefined {
    const max = this.options.sriovMaxVfs ?? 0;
    if (this.options.virtualFunction !== undefined || index < 0 || index >= max) return undefined;
    const { bar0Address: _bar0, storage: _storage, ...rest } = this.options;
    void _bar0;
    void _storage;
    const entry = this.primaryResources?.secondaries[index];
    if (!entry) return undefined;
    // The PF's parameters (QEMU's VFs share them), its resources as its entry says.
    const secondary = new NvmeController({ ...rest, virtualFunction: index, secondaryOf: { primary: this, entry } });
    this.vfs[index] = secondary;
    return secondary;
  }

  /** The namespace's storage (NSID 1). */
  get storage(): NamespaceStorage {
    return this.namespaces[0]!.storage;
  }

  override onReset(kind: ResetKind): void {
    void kind;
    this.resetFunction();
  }

  /** QEMU's NVME_RESET_FUNCTION: a controller reset that also takes a PF's VFs away and puts the resources assigned since in force. */
  private resetFunction(): void {
    this.controllerReset(true);
  }

  // ---- registers ----

  private powerOnRegisters(): void {
    this.regs.set64(REG.CAP, capabilityRegister(CAP));
    this.regs.set32(REG.VS, NVME_VERSION_1_4);
  }

  private readBar(offset: number, width: AccessWidth): bigint {
    // An offline secondary controller answers CSTS only (QEMU traces the rest as ignored).
    if (this.resources.offline && offset !== REG.CSTS && offset < MSIX_TABLE) return 0n;
    if (offset >= REGISTER_BLOCK_SIZE) {
      if (offset < MSIX_TABLE) this.guestError(`read of ${width} bits at 0x${offset.toString(16)}: doorbells are write-only (reads 0)`);
      return 0n;
    }
    return this.regs.read(offset, width);
  }

  private writeBar(offset: number, width: AccessWidth, value: bigint): void {
    if (offset >= MSIX_TABLE) return;
    if (this.resources.offline && offset !== REG.CSTS) {
      this.guestError(`write of ${width} bits at 0x${offset.toString(16)} ignored: the secondary controller is offline`);
      return;
    }
    if (offset >= DOORBELLS) {
      if (offset & 3) {
        this.guestError(`misaligned doorbell write at 0x${offset.toString(16)}`);
        return;
      }
      this.doorbell(offset, Number(value & 0xffffn));
      return;
    }
    const v32 = Number(value & 0xffff_ffffn) >>> 0;
    switch (offset) {
      case REG.INTMS:
      case REG.INTMC: {
        if (this.msixEnabled) this.guestError('INTMS/INTMC written while MSI-X is enabled');
        const mask = offset === REG.INTMS ? this.regs.get32(REG.INTMS) | v32 : this.regs.get32(REG.INTMS) & ~v32;
        this.regs.set32(REG.INTMS, mask);
        this.regs.set32(REG.INTMC, mask);
        this.checkIntx();
        return;
      }
      case REG.CC:
        this.writeCc(v32);
        return;
      case REG.AQA:
        this.regs.set32(REG.AQA, v32);
        return;
      case REG.ASQ:
      case REG.ACQ:
        this.regs.store(offset, width >>> 3, value);
        return;
      case REG.ASQ + 4:
      case REG.ACQ + 4:
        this.regs.set32(offset, v32);
        return;
      case REG.CSTS:
        this.guestError(v32 & 0x10 ? 'NSSR via CSTS is not supported' : 'CSTS is read-only');
        return;
      case REG.NSSR:
        this.guestError('NVM subsystem reset is not supported');
        return;
      default:
        this.guestError(`write of 0x${value.toString(16)} to read-only or reserved register 0x${offset.toString(16)}`);
    }
  }

  private writeCc(data: number): void {
    const old = this.regs.get32(REG.CC);
    let csts = this.regs.get32(REG.CSTS);
    this.regs.set32(REG.CC, data);
    if (cc.shn(data) && !cc.shn(old)) {
      this.shutdown();
      csts = (csts & ~CSTS_SHST_MASK) | CSTS_SHST_COMPLETE;
    } else if (!cc.shn(data) && cc.shn(old)) {
      csts &= ~CSTS_SHST_MASK;
    }
    if (data & CC_EN && !(old & CC_EN)) {
      const failure = this.start(data);
      if (failure) this.guestError(`controller enable failed: ${failure}`);
      csts = failure ? CSTS_CFS : CSTS_RDY;
    } else if (!(data & CC_EN) && old & CC_EN) {
      this.controllerReset();
      return;
    }
    this.regs.set32(REG.CSTS, csts);
  }

  /** CC.EN 0→1: the checks QEMU makes, in its order; the reason when one fails. */
  private start(ccValue: number): string | undefined {
    const aqa = this.regs.get32(REG.AQA);
    const asq = this.regs.get64(REG.ASQ);
    const acq = this.regs.get64(REG.ACQ);
    const pageSize = 2 ** (cc.mps(ccValue) + 12);
    const mask = BigInt(pageSize - 1);
    const asqs = aqa & 0xfff,
      acqs = (aqa >>> 16) & 0xfff;
    if (this.cqs[0] || this.sqs[0]) return 'the admin queues already exist';
    if (asq & mask) return `ASQ 0x${asq.toString(16)} is not page aligned`;
    if (acq & mask) return `ACQ 0x${acq.toString(16)} is not page aligned`;
    if (!(CAP.css & (1 << cc.css(ccValue)))) return `CC.CSS ${cc.css(ccValue)} is not supported`;
    if (cc.mps(ccValue) < CAP.mpsmin || cc.mps(ccValue) > CAP.mpsmax) return `CC.MPS ${cc.mps(ccValue)} is outside CAP.MPSMIN..MPSMAX`;
    if (cc.iocqes(ccValue) !== CQES) return `CC.IOCQES ${cc.iocqes(ccValue)} is not ${CQES}`;
    if (cc.iosqes(ccValue) !== SQES) return `CC.IOSQES ${cc.iosqes(ccValue)} is not ${SQES}`;
    if (asqs === 0) return 'AQA.ASQS is 0';
    if (acqs === 0) return 'AQA.ACQS is 0';
    this.pageSize = pageSize;
    this.cqs[0] = new CompletionQueue(0, acq, acqs + 1, 0, true);
    const sq = new SubmissionQueue(0, asq, asqs + 1, 0);
    this.sqs[0] = sq;
    this.cqs[0].sqs.add(sq);
    this.features.timestampMs = 0n;
    this.features.timestampSetAt = this.nowMicroseconds;
    this.features.timestampSetByHost = false;
    return undefined;
  }

  private get commandSetsEnabled(): boolean {
    return cc.css(this.regs.get32(REG.CC)) !== CSS_ADMIN_ONLY;
  }

  /** A controller reset (CC.EN 1→0, FLR): every queue and queued event gone, CC/CSTS/INTMS 0. */
  private controllerReset(functionReset = false): void {
    this.clock.cancelAll();
    this.halted = false;
    this.sqs = [];
    this.cqs = [];
    this.queuesCreated = false;
    this.heldEvents = [];
    this.pendingEvents = [];
    this.maskedEventTypes = 0;
    this.irqStatus = 0;
    this.cqPending = 0;
    this.doorbellBuffer = undefined;
    this.setIntx(false);
    // A primary's reset takes its secondary controllers offline; an offline one says CFS.
    this.resources.offlineAll(this.virtualFunctions);
    if (functionReset) {
      this.removeVirtualFunctions();
      this.resources.activate();
    }
    this.regs.set32(REG.CSTS, this.resources.offline ? CSTS_CFS : 0);
    this.regs.set32(REG.INTMS, 0);
    this.regs.set32(REG.INTMC, 0);
    this.regs.set32(REG.CC, 0);
    this.msixTableSize = this.resources.msixVectors;
  }

  private shutdown(): void {
    for (const ns of this.namespaces) ns.storage.flush();
  }

  /**
   * CSTS becomes CFS alone (RDY cleared). Like QEMU, only the queue that failed stops (until its
   * doorbell rings again); the others go on: the host is expected to notice and reset.
   */
  private fatal(reason: string): void {
    this.record({ kind: 'guest-error', message: `nvme: controller fatal status: ${reason}` });
    this.regs.set32(REG.CSTS, CSTS_CFS);
  }

  // ---- doorbells and queues ----

  private doorbell(offset: number, value: number): void {
    const index = (offset - DOORBELLS) >>> 2;
    const qid = index >>> 1;
    if (index & 1) {
      const cq = qid <= this.resources.ioQueuePairs ? this.cqs[qid] : undefined;
      if (!cq) {
        this.invalidDoorbell(`completion queue ${qid} head doorbell: no such queue`, EVENT_INFO.INVALID_DOORBELL_REGISTER);
        return;
      }
      if (value >= cq.size) {
        this.invalidDoorbell(`completion queue ${qid} head ${value} is beyond its ${cq.size} entries`, EVENT_INFO.INVALID_DOORBELL_VALUE);
        return;
      }
      if (cq.full) this.schedulePost(cq);
      cq.head = value;
      if (qid === 0 && cq.shadow) this.writeWord(cq.shadow.doorbell, value);
      if (cq.empty) {
        if (cq.interruptsEnabled) this.cqPending--;
        this.deassertIrq(cq);
      }
      return;
    }
    const sq = qid <= this.resources.ioQueuePairs ? this.sqs[qid] : undefined;
    if (!sq) {
      this.invalidDoorbell(`submission queue ${qid} tail doorbell: no such queue`, EVENT_INFO.INVALID_DOORBELL_REGISTER);
      return;
    }
    if (value >= sq.size) {
      this.invalidDoorbell(`submission queue ${qid} tail ${value} is beyond its ${sq.size} entries`, EVENT_INFO.INVALID_DOORBELL_VALUE);
      return;
    }
    sq.tail = value;
    if (qid === 0 && sq.shadow) this.writeWord(sq.shadow.doorbell, value);
    this.scheduleFetch(sq);
  }

  private invalidDoorbell(message: string, info: number): void {
    this.guestError(message);
    if (this.heldEvents.length) this.enqueueEvent({ type: EVENT_TYPE.ERROR, info, logPage: LOG_PAGE.ERROR });
  }

  private scheduleFetch(sq: SubmissionQueue): void {
    if (sq.scheduled) return;
    sq.scheduled = true;
    this.clock.after(this.latency, () => {
      sq.scheduled = false;
      this.fetch(sq);
    });
  }

  private fetch(sq: SubmissionQueue): void {
    if (this.sqs[sq.id] !== sq || this.halted) return;
    if (sq.shadow) sq.tail = this.readWord(sq.shadow.doorbell);
    try {
      this.fetchEntries(sq);
    } finally {
      this.storageHandsBack();
    }
  }

  private fetchEntries(sq: SubmissionQueue): void {
    while (!sq.empty && sq.outstanding < sq.size) {
      const at = sq.base + BigInt(sq.head * SQE_SIZE);
      const entry = this.readHost(at, SQE_SIZE);
      if (!entry) {
        this.fatal(`submission queue ${sq.id} entry at 0x${at.toString(16)} could not be read`);
        return;
      }
      sq.head = (sq.head + 1) % sq.size;
      sq.outstanding++;
      const command = decodeCommand(entry);
      const subject: CommandSubject = { queue: sq.id, opcode: command.opcode, cid: command.cid, nsid: command.nsid };
      if (this.fetchFaults(subject)) return;
      this.run(sq, command, subject);
      // The command may have been Doorbell Buffer Config itself.
      if (sq.shadow) {
        this.writeWord(sq.shadow.eventIndex, sq.tail);
        sq.tail = this.readWord(sq.shadow.doorbell);
      }
    }
  }

  /** The commands of the fetch that went to the storage end newest first, as QEMU's block layer hands back what has finished. */
  private storageHandsBack(): void {
    const batch = this.handedToStorage;
    for (let i = batch.length - 1; i >= 0; i--) {
      const { sq, command, outcome } = batch[i]!;
      if (this.sqs[sq.id] === sq) this.complete(sq, command.cid, outcome, command.opcode, command.nsid);
    }
    batch.length = 0;
  }

  private run(sq: SubmissionQueue, command: Command, subject: CommandSubject): void {
    const injected =
      this.faults.hit(
        sq.id === 0 ? 'admin-status' : 'io-status',
        subject,
        (p) => `completed with status 0x${p.status.toString(16)} without executing`,
      ) ??
      (this.faults.hit('dma-error', subject, () => 'no data transferred; completed with Data Transfer Error')
        ? { status: STATUS.DATA_TRANSFER_ERROR }
        : undefined);
    const outcome: Completion | typeof HELD =
      injected ?? (sq.id === 0 ? this.admin(command) : executeIo(this.context, command, this.commandSetsEnabled));
    if (outcome === HELD) {
      // An Asynchronous Event Request waits for an event.
      this.heldEvents.push({ sq, cid: command.cid });
      return;
    }
    const slow = this.faults.hit('slow-completion', subject, (p) => `completion held back ${p.microseconds} µs`);
    if (slow)
      this.clock.after(slow.microseconds, () => {
        if (this.sqs[sq.id] === sq) this.complete(sq, command.cid, outcome, command.opcode, command.nsid);
      });
    else if (outcome.viaStorage) this.handedToStorage.push({ sq, command, outcome });
    else this.complete(sq, command.cid, outcome, command.opcode, command.nsid);
  }

  /** The faults that stop the controller as it fetches a command; whether one fired. */
  private fetchFaults(subject: CommandSubject): boolean {
    if (this.faults.hit('surprise-removal', subject, () => 'the controller is gone: registers read all ones')) {
      this.fail('surprise removal (injected fault): the function no longer answers');
      return true;
    }
    if (this.faults.hit('fatal-status', subject, () => 'CSTS.CFS set; every queue stops')) {
      this.regs.set32(REG.CSTS, this.regs.get32(REG.CSTS) | CSTS_CFS);
      this.halted = true;
      return true;
    }
    if (this.faults.hit('controller-reset', subject, () => 'the controller reset itself: queues gone, CSTS.RDY 0')) {
      const ccValue = this.regs.get32(REG.CC);
      this.controllerReset();
      this.regs.set32(REG.CC, ccValue);
      return true;
    }
    return false;
  }

  private admin(command: Command): Completion | typeof HELD {
    if (command.opcode === ADMIN.ASYNC_EVENT_REQUEST && this.heldEvents.length > 3) return { status: AER_LIMIT_EXCEEDED };
    const outcome = executeAdmin(this.context, command);
    if (outcome === HELD) this.clock.after(0, () => this.deliverEvents());
    if (command.opcode === ADMIN.GET_LOG_PAGE && outcome !== HELD && outcome.status === STATUS.SUCCESS) {
      // Reading a log page without Retain Asynchronous Event re-enables events of its type.
      const type = EVENT_TYPE_OF_LOG_PAGE[command.cdw10 & 0xff];
      if (!((command.cdw10 >>> 15) & 1) && type !== undefined) {
        this.maskedEventTypes &= ~(1 << type);
        this.clock.after(0, () => this.deliverEvents());
      }
    }
    return outcome;
  }

  private enqueueEvent(event: PendingEvent): void {
    if (this.pendingEvents.length === MAX_QUEUED_EVENTS) return;
    this.pendingEvents.push(event);
    this.deliverEvents();
  }

  private deliverEvents(): void {
    for (let i = 0; i < this.pendingEvents.length && this.heldEvents.length;) {
      const event = this.pendingEvents[i]!;
      if (this.maskedEventTypes & (1 << event.type)) {
        i++;
        continue;
      }
      this.pendingEvents.splice(i, 1);
      this.maskedEventTypes |= 1 << event.type;
      // The request submitted last is answered first (QEMU keeps them as a stack).
      const request = this.heldEvents.pop()!;
      this.complete(request.sq, request.cid, { status: STATUS.SUCCESS, result: event.type | (event.info << 8) | (event.logPage << 16) });
    }
  }

  private complete(sq: SubmissionQueue, cid: number, outcome: Completion, opcode = -1, nsid = 0): void {
    const cq = this.cqs[sq.cqid];
    if (!cq) return;
    cq.waiting.push({ sq, cid, status: outcome.status, result: outcome.result ?? 0, opcode, nsid });
    this.schedulePost(cq);
  }

  private schedulePost(cq: CompletionQueue): void {
    if (cq.scheduled) return;
    cq.scheduled = true;
    this.clock.after(0, () => {
      cq.scheduled = false;
      this.post(cq);
    });
  }

  private post(cq: CompletionQueue): void {
    if (this.cqs[cq.id] !== cq || this.halted) return;
    const wasPending = !cq.empty;
    let posted = 0;
    while (posted < cq.waiting.length) {
      if (cq.shadow) {
        this.writeWord(cq.shadow.eventIndex, cq.head);
        cq.head = this.readWord(cq.shadow.doorbell);
      }
      if (cq.full) break;
      const w = cq.waiting[posted]!;
      const v = this.cqeView;
      v.setUint32(0, w.result ?? 0, true);
      v.setUint32(4, 0, true);
      v.setUint16(8, w.sq.head, true);
      v.setUint16(10, w.sq.id, true);
      v.setUint16(12, w.cid, true);
      v.setUint16(14, ((w.status << 1) | cq.phase) & 0xffff, true);
      this.completionFaults({ queue: w.sq.id, opcode: w.opcode, cid: w.cid, nsid: w.nsid }, cq.phase);
      const at = cq.base + BigInt(cq.tail * CQE_SIZE);
      if (!this.writeHost(at, this.cqe)) {
        this.fatal(`completion queue ${cq.id} entry at 0x${at.toString(16)} could not be written`);
        break;
      }
      posted++;
      cq.advanceTail();
      w.sq.outstanding--;
      if (!w.sq.empty) this.scheduleFetch(w.sq);
    }
    if (posted) cq.waiting.splice(0, posted);
    if (!cq.empty) {
      if (cq.interruptsEnabled && !wasPending) this.cqPending++;
      const irq = { cq: cq.id, vector: cq.vector };
      if (!(posted && cq.interruptsEnabled && this.faults.hit('lost-interrupt', irq, () => 'interrupt not signalled'))) this.assertIrq(cq);
      const spurious =
        posted && cq.interruptsEnabled
          ? this.faults.hit('spurious-interrupt', irq, (p) => `MSI-X vector ${p.vector} signalled as well`)
          : undefined;
      if (spurious && this.msixEnabled && spurious.vector < this.resources.msixVectors) this.notifyMsix(spurious.vector);
    }
  }

  /** Faults that damage the completion entry in this.cqe as it is written. */
  private completionFaults(subject: CommandSubject, phase: number): void {
    const v = this.cqeView;
    if (this.faults.hit('phase-tag', subject, () => `entry written with phase ${phase ^ 1} instead of ${phase}`))
      v.setUint16(14, v.getUint16(14, true) ^ 1, true);
    const corrupt = this.faults.hit('corrupt-completion', subject, (p) => `${p.field} XOR 0x${p.xor.toString(16)}`);
    if (corrupt) {
      const at = { sqhd: 8, sqid: 10, cid: 12, status: 14 }[corrupt.field];
      v.setUint16(at, v.getUint16(at, true) ^ (corrupt.xor & (corrupt.field === 'status' ? 0xfffe : 0xffff)), true);
    }
  }

  private assertIrq(cq: CompletionQueue): void {
    if (!cq.interruptsEnabled) return;
    if (this.msixEnabled) {
      this.notifyMsix(cq.vector);
      return;
    }
    this.irqStatus |= 1 << cq.vector;
    this.checkIntx();
  }

  private deassertIrq(cq: CompletionQueue): void {
    if (!cq.interruptsEnabled || this.msixEnabled) return;
    if (!this.cqPending) this.irqStatus &= ~(1 << cq.vector);
    this.checkIntx();
  }

  private checkIntx(): void {
    if (this.msixEnabled) return;
    this.setIntx((~this.regs.get32(REG.INTMS) & this.irqStatus) !== 0);
  }

  // ---- host memory ----

  private get nowMicroseconds(): number {
    return Number(this.clock.now / 1000n);
  }

  private readHost(address: bigint, length: number): Uint8Array | undefined {
    const before = this.dmaFailures;
    const bytes = this.dma.read(address, length);
    return this.dmaFailures === before ? bytes : undefined;
  }

  /** A shadow doorbell or event index; like QEMU, a transfer that fails is not noticed. */
  private readWord(address: bigint): number {
    return new DataView(this.dma.read(address, 4).buffer).getUint32(0, true);
  }

  private writeWord(address: bigint, value: number): void {
    this.wordView.setUint32(0, value, true);
    this.dma.write(address, this.word);
  }

  private configureDoorbellBuffer(buffer: DoorbellBuffer): void {
    this.doorbellBuffer = buffer;
    for (let id = 0; id <= this.ioQueuePairs; id++) {
      const sq = this.sqs[id],
        cq = this.cqs[id];
      if (sq) {
        sq.shadow = shadowDoorbell(buffer, id, 'submission');
        this.writeWord(sq.shadow.doorbell, sq.tail);
      }
      if (cq) {
        cq.shadow = shadowDoorbell(buffer, id, 'completion');
        this.writeWord(cq.shadow.doorbell, cq.head);
      }
    }
  }

  private writeHost(address: bigint, data: Uint8Array): boolean {
    const before = this.dmaFailures;
    this.dma.write(address, data);
    return this.dmaFailures === before;
  }

  /**
   * Data of a command. QEMU maps it for the block layer and the DMA helpers: what the host does
   * not back (no IOMMU mapping, no memory at that physical address) goes through a bounce buffer,
   * so the command completes — the data read as zeroes here, or written nowhere.
   */
  private readRuns(runs: readonly DataRun[], length: number): Uint8Array {
    if (runs.length === 1) return this.dma.read(runs[0]!.address, length);
    const out = new Uint8Array(length);
    let at = 0;
    for (const r of runs) {
      out.set(this.dma.read(r.address, r.length), at);
      at += r.length;
    }
    return out;
  }

  private writeRuns(runs: readonly DataRun[], data: Uint8Array): void {
    let at = 0;
    for (const r of runs) {
      this.dma.write(r.address, data.subarray(at, at + r.length));
      at += r.length;
    }
  }

  private guestError(message: string): void {
    this.record({ kind: 'guest-error', message: `nvme: ${message}` });
  }

  /** What the command implementations see (context.ts). */
  private commandContext(): AdminContext {
    const self = this;
    const bar0 = () => this.barAddress(0);
    const prp = {
      get pageSize() {
        return self.pageSize;
      },
      readHost: (a: bigint, n: number) => this.readHost(a, n),
      isOwnRegisterSpace: (a: bigint) => a >= bar0() && a < bar0() + NVME_BAR0_SIZE,
    };
    return {
      get pageSize() {
        return self.pageSize;
      },
      mdts: this.mdts,
      maxNamespaces: MAX_NAMESPACES,
      namespace: (nsid) => (this.detachedNamespaces.has(nsid) ? undefined : this.ownNamespace(nsid)),
      dataRuns: (c, length) => walkPrps(prp, c.prp1, c.prp2, length),
      sglRuns: (c, length) => walkSgl(prp, c.prp1, c.prp2, length),
      discard: this.discard,
      readRuns: (runs, length) => this.readRuns(runs, length),
      writeRuns: (runs, data) => this.writeRuns(runs, data),
      get ioQueuePairs() {
        return self.resources.ioQueuePairs;
      },
      maxQueueEntries: CAP.mqes,
      get interruptVectors() {
        return self.resources.msixVectors;
      },
      resources: this.resources,
      controllerId: this.controllerId,
      subsystemControllers: () => this.subsystemControllers(),
      subsystemController: (cntlid) => this.subsystemController(cntlid),
      subsystemNamespace: (nsid) => (this.options.subsystem === undefined ? undefined : this.ownNamespace(nsid)),
      takeChangedNamespaces: () => {
        const ids = [...this.changedNamespaces].sort((a, b) => a - b);
        this.changedNamespaces.clear();
        return ids;
      },
      virtualFunctions: this.virtualFunctions,
      get msixEnabled() {
        return self.msixEnabled;
      },
      get queuesCreated() {
        return self.queuesCreated;
      },
      submissionQueue: (id) => this.sqs[id],
      completionQueue: (id) => this.cqs[id],
      createSubmissionQueue: (id, base, size, cqid) => {
        const sq = new SubmissionQueue(id, base, size, cqid);
        if (this.doorbellBuffer) sq.shadow = shadowDoorbell(this.doorbellBuffer, id, 'submission');
        this.sqs[id] = sq;
        this.cqs[cqid]!.sqs.add(sq);
        this.queuesCreated = true;
      },
      createCompletionQueue: (id, base, size, vector, ien) => {
        const cq = new CompletionQueue(id, base, size, vector, ien);
        if (this.doorbellBuffer) cq.shadow = shadowDoorbell(this.doorbellBuffer, id, 'completion');
        this.cqs[id] = cq;
        this.queuesCreated = true;
      },
      deleteSubmissionQueue: (id) => {
        const sq = this.sqs[id]!;
        const cq = this.cqs[sq.cqid];
        if (cq) {
          cq.sqs.delete(sq);
          this.post(cq);
          // Completions that did not fit are dropped with their queue.
          for (let i = cq.waiting.length - 1; i >= 0; i--) if (cq.waiting[i]!.sq === sq) cq.waiting.splice(i, 1);
        }
        this.sqs[id] = undefined;
      },
      deleteCompletionQueue: (id) => {
        const cq = this.cqs[id]!;
        if (cq.interruptsEnabled && !cq.empty) this.cqPending--;
        this.deassertIrq(cq);
        this.cqs[id] = undefined;
      },
      configureDoorbellBuffer: (buffer) => this.configureDoorbellBuffer(buffer),
      enqueueEvent: (type, info, logPage) => this.enqueueEvent({ type, info, logPage }),
      identifyController: this.identity,
      get features() {
        return self.features;
      },
      get nowMicroseconds() {
        return self.nowMicroseconds;
      },
      toHost: (c, data) => {
        const runs = walkPrps(prp, c.prp1, c.prp2, data.length);
        if (typeof runs === 'number') return { status: runs };
        this.writeRuns(runs, data);
        return { status: STATUS.SUCCESS };
      },
      fromHost: (c, length) => {
        const runs = walkPrps(prp, c.prp1, c.prp2, length);
        if (typeof runs === 'number') return { status: runs };
        return this.readRuns(runs, length);
      },
    };
  }
}

/** PCI_EXT_CAP_ID_ARI. */
const PCI_EXT_CAP_ID_ARI = 0x0e;

/** The ARI capability's registers after its header: no MFVC/ACS function groups, the next function number. */
function ariData(nextFunction: number): Uint8Array {
  const data = new Uint8Array(4);
  data[1] = nextFunction;
  return data;
}

/** nvme_check_constraints' SR-IOV rules of QEMU 7.2, with its messages. */
function checkSriovResources(o: NvmeOptions, maxVfs: number): void {
  const vq = o.sriovVqFlexible ?? 0,
    vi = o.sriovViFlexible ?? 0;
  const bad = (m: string) => new RangeError(`NvmeController: ${m}`);
  if (!vq || !vi) throw bad('both sriov_vq_flexible and sriov_vi_flexible must be set for the use of SR-IOV');
  if (vq < maxVfs * 2) throw bad(`sriov_vq_flexible must be greater than or equal to ${maxVfs * 2} (sriov_max_vfs * 2)`);
  if ((o.ioQueuePairs ?? 64) < vq + 2) throw bad('(max_ioqpairs - sriov_vq_flexible) must be greater than or equal to 2');
  if (vi < maxVfs) throw bad(`sriov_vi_flexible must be greater than or equal to ${maxVfs} (sriov_max_vfs)`);
  if ((o.msixVectors ?? 65) < vi + 1) throw bad('(msix_qsize - sriov_vi_flexible) must be greater than or equal to 1');
}
