/**
 * A controller's queue and interrupt resources as QEMU 7.2 accounts them for SR-IOV
 * (nvme_init_state, nvme_activate_virt_res, nvme_virt_mngmt).
 *
 * A primary controller (the PF) has `max_ioqpairs` queue pairs and `msix_qsize` vectors, of which
 * `sriov_vq_flexible` and `sriov_vi_flexible` are flexible, meant for its secondary controllers
 * (the VFs), and the rest private. It works with its private resources plus the flexible ones
 * allocated to it, from its next function reset on: 60 queue pairs and 63 vectors on the lab's
 * sriov machine, where a controller without SR-IOV has 64 and 65. Virtualization Management
 * assigns flexible resources to an offline secondary controller and brings it online, which
 * resets it with them; taking it offline takes them back. A secondary controller is offline
 * until then: its registers read 0 but CSTS, which says CFS, and ignore writes.
 *
 * Identify reports this as Primary Controller Capabilities (CNS 14h) and the Secondary
 * Controller List (CNS 15h).
 */
import type { Completion } from './command';
import { IDENTIFY_SIZE } from './namespace';
import { DNR, STATUS } from './status';

/** QEMU's NVME_VF_RES_GRANULARITY. */
const GRANULARITY = 1;
/** CRT: both queue and interrupt resources. */
const RESOURCE_TYPES = 0x3;
/** Virtualization Management's resource types. */
export const QUEUE_RESOURCES = 0,
  INTERRUPT_RESOURCES = 1;

export interface ResourceParameters {
  /** max_ioqpairs. */
  readonly ioQueuePairs: number;
  /** msix_qsize. */
  readonly msixVectors: number;
  /** sriov_max_vfs (0: no secondary controllers). */
  readonly maxVfs: number;
  /** sriov_vq_flexible. */
  readonly vqFlexible: number;
  /** sriov_vi_flexible. */
  readonly viFlexible: number;
}

/** An entry of the primary's Secondary Controller List, which its VF's controller reads too. */
export interface SecondaryController {
  /** SCID: the controller ID the subsystem reserved for it. */
  readonly scid: number;
  /** VFN: its VF number, from 1. */
  readonly vfn: number;
  /** SCS: online. */
  online: boolean;
  /** NVQ and NVI: the flexible resources assigned to it (its queues include its admin queue). */
  queues: number;
  vectors: number;
}

/** A PF's VFs as its resources need them: whether VF `vfn` (from 1) exists now, and resetting its controller. */
export interface VirtualFunctions {
  exists(vfn: number): boolean;
  reset(vfn: number): void;
}

/** What a controller, primary or secondary, works with and reports. */
export interface ControllerResources {
  /** I/O queue pairs the controller works with (QEMU's conf_ioqpairs). */
  readonly ioQueuePairs: number;
  /** MSI-X vectors it works with (QEMU's conf_msix_qsize), and the table size it advertises. */
  readonly msixVectors: number;
  /** A secondary controller offline: registers read 0 (CSTS: CFS), writes ignored. */
  readonly offline: boolean;
  /** At a function reset (QEMU's nvme_activate_virt_res): what was assigned comes into force. */
  activate(): void;
  /** Primary Controller Capabilities (CNS 14h) of controller `cntlid`. */
  capabilities(cntlid: number): Uint8Array;
  /** Secondary Controller List (CNS 15h) from controller ID `from` on. */
  secondaryList(from: number): Uint8Array;
  /** Virtualization Management. */
  manage(request: ManagementRequest, vfs: VirtualFunctions): Completion;
  /** At a controller reset of the primary: every secondary controller offline, its resources taken back. */
  offlineAll(vfs: VirtualFunctions): void;
}

export interface ManagementRequest {
  readonly action: number;
  readonly resourceType: number;
  readonly cntlid: number;
  readonly count: number;
}

const ACTION = { PRIMARY_ALLOCATION: 0x1, OFFLINE: 0x7, ASSIGN: 0x8, ONLINE: 0x9 } as const;
const fail = (status: number): Completion => ({ status: status | DNR });

export class PrimaryResources implements ControllerResources {
  /** VQPRT, VIPRT: the private queues (the admin queue included) and vectors. */
  private readonly privateQueues: number;
  private readonly privateVectors: number;
  /** VQFRSM, VIFRSM: the most flexible resources one secondary controller may have. */
  private readonly maxQueuesPerSecondary: number;
  private readonly maxVectorsPerSecondary: number;
  /**
   * VQRFAP, VIRFAP: the flexible resources the controller works with — all of them until its
   * first function reset, then those allocated to it for after a reset (none unless
   * Virtualization Management's primary allocation asked).
   */
  private queuesAllocated: number;
  private vectorsAllocated: number;
  private nextQueuesAllocated = 0;
  private nextVectorsAllocated = 0;
  readonly secondaries: readonly SecondaryController[];
  readonly offline = false;

  constructor(
    private readonly p: ResourceParameters,
    private readonly cntlid: number,
  ) {
    this.privateQueues = 1 + p.ioQueuePairs - p.vqFlexible;
    this.privateVectors = p.msixVectors - p.viFlexible;
    this.maxQueuesPerSecondary = Math.floor(p.vqFlexible / Math.max(p.maxVfs, 1));
    this.maxVectorsPerSecondary = Math.floor(p.viFlexible / Math.max(p.maxVfs, 1));
    this.queuesAllocated = p.vqFlexible;
    this.vectorsAllocated = p.viFlexible;
    this.secondaries = Array.from({ length: p.maxVfs }, (_, i) => ({
      scid: cntlid + 1 + i,
      vfn: i + 1,
      online: false,
      queues: 0,
      vectors: 0,
    }));
  }

  get ioQueuePairs(): number {
    return this.privateQueues + this.queuesAllocated - 1;
  }

  get msixVectors(): number {
    return this.privateVectors + this.vectorsAllocated;
  }

  activate(): void {
    if (this.p.maxVfs === 0) return;
    this.queuesAllocated = this.nextQueuesAllocated;
    this.vectorsAllocated = this.nextVectorsAllocated;
  }

  capabilities(cntlid: number): Uint8Array {
    const d = new Uint8Array(IDENTIFY_SIZE);
    const v = new DataView(d.buffer);
    v.setUint16(0, cntlid, true);
    d[4] = RESOURCE_TYPES;
    v.setUint32(32, this.p.vqFlexible, true); // VQFRT
    v.setUint32(36, this.assignedToSecondaries(QUEUE_RESOURCES), true); // VQRFA
    v.setUint16(40, this.queuesAllocated, true); // VQRFAP
    v.setUint16(42, this.privateQueues, true);
    v.setUint16(44, this.maxQueuesPerSecondary, true);
    v.setUint16(46, GRANULARITY, true);
    v.setUint32(64, this.p.viFlexible, true); // VIFRT
    v.setUint32(68, this.assignedToSecondaries(INTERRUPT_RESOURCES), true); // VIRFA
    v.setUint16(72, this.vectorsAllocated, true); // VIRFAP
    v.setUint16(74, this.privateVectors, true);
    v.setUint16(76, this.maxVectorsPerSecondary, true);
    v.setUint16(78, GRANULARITY, true);
    return d;
  }

  secondaryList(from: number): Uint8Array {
    const d = new Uint8Array(IDENTIFY_SIZE);
    const v = new DataView(d.buffer);
    const first = this.secondaries.findIndex((s) => s.scid >= from);
    if (first < 0) return d;
    d[0] = this.secondaries.length - first;
    this.secondaries.slice(first).forEach((s, i) => {
      const at = 32 + i * 32;
      v.setUint16(at, s.scid, true);
      v.setUint16(at + 2, this.cntlid, true); // PCID
      d[at + 4] = s.online ? 1 : 0; // SCS
      v.setUint16(at + 8, s.vfn, true);
      v.setUint16(at + 10, s.queues, true); // NVQ
      v.setUint16(at + 12, s.vectors, true); // NVI
    });
    return d;
  }

  manage(r: ManagementRequest, vfs: VirtualFunctions): Completion {
    if (r.resourceType !== QUEUE_RESOURCES && r.resourceType !== INTERRUPT_RESOURCES) return fail(STATUS.INVALID_RESOURCE_ID);
    switch (r.action) {
      case ACTION.ASSIGN:
        return this.assignToSecondary(r);
      case ACTION.PRIMARY_ALLOCATION:
        return this.allocateToPrimary(r);
      case ACTION.ONLINE:
      case ACTION.OFFLINE:
        return this.setState(r.cntlid, r.action === ACTION.ONLINE, vfs);
      default:
        return fail(STATUS.INVALID_FIELD);
    }
  }

  offlineAll(vfs: VirtualFunctions): void {
    for (const s of this.secondaries) this.setState(s.scid, false, vfs);
  }

  private assignedToSecondaries(type: number): number {
    return this.secondaries.reduce((sum, s) => sum + (type === INTERRUPT_RESOURCES ? s.vectors : s.queues), 0);
  }

  private flexible(type: number): number {
    return type === INTERRUPT_RESOURCES ? this.p.viFlexible : this.p.vqFlexible;
  }

  private allocateToPrimary(r: ManagementRequest): Completion {
    if (r.cntlid !== this.cntlid) return fail(STATUS.INVALID_CONTROLLER_ID);
    if (r.count > this.flexible(r.resourceType)) return fail(STATUS.INVALID_NUMBER_OF_RESOURCES);
    if (r.count > this.flexible(r.resourceType) - this.assignedToSecondaries(r.resourceType)) return fail(STATUS.INVALID_RESOURCE_ID);
    if (r.resourceType === INTERRUPT_RESOURCES) this.nextVectorsAllocated = r.count;
    else this.nextQueuesAllocated = r.count;
    return { status: STATUS.SUCCESS, result: r.count };
  }

  private assignToSecondary(r: ManagementRequest): Completion {
    const s = this.secondaries.find((c) => c.scid === r.cntlid);
    if (!s) return fail(STATUS.INVALID_CONTROLLER_ID);
    if (s.online) return fail(STATUS.INVALID_SECONDARY_CONTROLLER_STATE);
    const vectors = r.resourceType === INTERRUPT_RESOURCES;
    if (r.count > (vectors ? this.maxVectorsPerSecondary : this.maxQueuesPerSecondary)) return fail(STATUS.INVALID_NUMBER_OF_RESOURCES);
    const free =
      this.flexible(r.resourceType) - (vectors ? this.vectorsAllocated : this.queuesAllocated) - this.assignedToSecondaries(r.resourceType);
    if (r.count - (vectors ? s.vectors : s.queues) > free) return fail(STATUS.INVALID_RESOURCE_ID);
    if (vectors) s.vectors = r.count;
    else s.queues = r.count;
    return { status: STATUS.SUCCESS, result: r.count };
  }

  private setState(cntlid: number, online: boolean, vfs: VirtualFunctions): Completion {
    const s = this.secondaries.find((c) => c.scid === cntlid);
    if (!s) return fail(STATUS.INVALID_CONTROLLER_ID);
    const exists = vfs.exists(s.vfn);
    if (online) {
      // An admin queue and at least one I/O queue, an interrupt, and the VF there to run them.
      if (!s.vectors || s.queues < 2 || !exists) return fail(STATUS.INVALID_SECONDARY_CONTROLLER_STATE);
      if (!s.online) {
        s.online = true;
        vfs.reset(s.vfn);
      }
    } else {
      s.queues = 0;
      s.vectors = 0;
      if (s.online) {
        s.online = false;
        if (exists) vfs.reset(s.vfn);
      }
    }
    return { status: STATUS.SUCCESS };
  }
}

/**
 * A secondary controller's resources: those its entry in the primary's list was assigned, in
 * force from its last function reset (being brought online or offline is one).
 */
export class SecondaryResources implements ControllerResources {
  /** VQPRT and VIPRT as it reports them: 1 + its queue pairs and its vectors at first, what it was assigned after a reset. */
  private reportedQueues: number;
  private reportedVectors: number;
  ioQueuePairs: number;
  msixVectors: number;

  constructor(private readonly entry: SecondaryController) {
    this.ioQueuePairs = entry.queues ? entry.queues - 1 : 0;
    this.msixVectors = entry.vectors || 1;
    this.reportedQueues = 1 + this.ioQueuePairs;
    this.reportedVectors = this.msixVectors;
  }

  get offline(): boolean {
    return !this.entry.online;
  }

  activate(): void {
    this.ioQueuePairs = this.entry.queues ? this.entry.queues - 1 : 0;
    this.msixVectors = this.entry.vectors || 1;
    this.reportedQueues = this.entry.queues;
    this.reportedVectors = this.entry.vectors;
  }

  /** Only CRT and the private resources: no flexible ones, no granularity. */
  capabilities(cntlid: number): Uint8Array {
    const d = new Uint8Array(IDENTIFY_SIZE);
    const v = new DataView(d.buffer);
    v.setUint16(0, cntlid, true);
    d[4] = RESOURCE_TYPES;
    v.setUint16(42, this.reportedQueues, true);
    v.setUint16(74, this.reportedVectors, true);
    return d;
  }

  secondaryList(): Uint8Array {
    return new Uint8Array(IDENTIFY_SIZE);
  }

  /** A secondary controller has no secondaries and no flexible resources of its own. */
  manage(r: ManagementRequest): Completion {
    if (r.resourceType !== QUEUE_RESOURCES && r.resourceType !== INTERRUPT_RESOURCES) return fail(STATUS.INVALID_RESOURCE_ID);
    switch (r.action) {
      case ACTION.PRIMARY_ALLOCATION:
        if (r.cntlid !== this.entry.scid) return fail(STATUS.INVALID_CONTROLLER_ID);
        if (r.count > 0) return fail(STATUS.INVALID_NUMBER_OF_RESOURCES);
        return { status: STATUS.SUCCESS, result: 0 };
      case ACTION.ASSIGN:
      case ACTION.ONLINE:
      case ACTION.OFFLINE:
        return fail(STATUS.INVALID_CONTROLLER_ID);
      default:
        return fail(STATUS.INVALID_FIELD);
    }
  }

  offlineAll(): void {}
}
