/**
 * The admin command set as QEMU 7.2 executes it: queue creation and deletion with its checks and
 * status codes, Identify, Get Log Page, Get/Set Features, Abort (which never aborts anything),
 * and Asynchronous Event Request (held until an event). Admin commands must use PRPs and must not
 * be fused. Doorbell Buffer Config takes two page-aligned addresses and nothing else. Namespace
 * Attachment attaches and detaches the subsystem's namespaces to its controllers (outside a
 * subsystem there is nothing to attach); Virtualization Management is the SR-IOV resources'
 * (sriov-resources.ts). Listed as supported, like QEMU's, but not modelled — it fails with
 * Invalid Field —: Format NVM.
 */
import { dataPointerType, fusedOperation, type Command, type Completion } from './command';
import type { AdminContext } from './context';
import { getFeatures, setFeatures } from './features';
import { commandSetCombinations, identifyControllerNvm, namespaceList } from './identify-controller';
import { ADMIN_EFFECTS, getLogPage } from './log-pages';
import { dsmRangeSizeLimit } from './io-commands';
import { BROADCAST_NSID, IDENTIFY_SIZE, nsidValid } from './namespace';
import { DNR, STATUS } from './status';

export const ADMIN = {
  DELETE_SQ: 0x00,
  CREATE_SQ: 0x01,
  GET_LOG_PAGE: 0x02,
  DELETE_CQ: 0x04,
  CREATE_CQ: 0x05,
  IDENTIFY: 0x06,
  ABORT: 0x08,
  SET_FEATURES: 0x09,
  GET_FEATURES: 0x0a,
  ASYNC_EVENT_REQUEST: 0x0c,
  NAMESPACE_ATTACHMENT: 0x15,
  VIRTUALIZATION_MANAGEMENT: 0x1c,
  DOORBELL_BUFFER_CONFIG: 0x7c,
} as const;

/** An Asynchronous Event Request stays outstanding: the controller completes it later. */
export const HELD = 'held';

/** VSL: Verify size limit as a power of two of pages (QEMU's vsl property, default 7). */
const VERIFY_SIZE_LIMIT = 7;

export function executeAdmin(ctx: AdminContext, c: Command): Completion | typeof HELD {
  if (!((ADMIN_EFFECTS[c.opcode] ?? 0) & 1)) return { status: STATUS.INVALID_OPCODE | DNR };
  // SGLs are not allowed for admin commands over PCIe.
  if (dataPointerType(c) !== 0) return { status: STATUS.INVALID_FIELD | DNR };
  if (fusedOperation(c)) return { status: STATUS.INVALID_FIELD };
  switch (c.opcode) {
    case ADMIN.DELETE_SQ:
      return deleteSq(ctx, c);
    case ADMIN.CREATE_SQ:
      return createSq(ctx, c);
    case ADMIN.GET_LOG_PAGE:
      return getLogPage(ctx, c);
    case ADMIN.DELETE_CQ:
      return deleteCq(ctx, c);
    case ADMIN.CREATE_CQ:
      return createCq(ctx, c);
    case ADMIN.IDENTIFY:
      return identify(ctx, c);
    case ADMIN.ABORT:
      return abort(ctx, c);
    case ADMIN.SET_FEATURES:
      return setFeatures(ctx, c);
    case ADMIN.GET_FEATURES:
      return getFeatures(ctx, c);
    case ADMIN.ASYNC_EVENT_REQUEST:
      return HELD;
    case ADMIN.DOORBELL_BUFFER_CONFIG:
      return doorbellBufferConfig(ctx, c);
    case ADMIN.NAMESPACE_ATTACHMENT:
      return namespaceAttachment(ctx, c);
    case ADMIN.VIRTUALIZATION_MANAGEMENT:
      return virtualizationManagement(ctx, c);
    default:
      return { status: STATUS.INVALID_FIELD | DNR };
  }
}

function createCq(ctx: AdminContext, c: Command): Completion {
  const cqid = c.cdw10 & 0xffff;
  const qsize = c.cdw10 >>> 16;
  const flags = c.cdw11 & 0xffff;
  const vector = c.cdw11 >>> 16;
  if (cqid === 0 || cqid > ctx.ioQueuePairs || ctx.completionQueue(cqid)) return { status: STATUS.INVALID_QID | DNR };
  if (qsize === 0 || qsize > ctx.maxQueueEntries) return { status: STATUS.MAX_QUEUE_SIZE_EXCEEDED | DNR };
  if (c.prp1 & BigInt(ctx.pageSize - 1)) return { status: STATUS.INVALID_PRP_OFFSET | DNR };
  if (!ctx.msixEnabled && vector !== 0) return { status: STATUS.INVALID_INTERRUPT_VECTOR | DNR };
  if (vector >= ctx.interruptVectors) return { status: STATUS.INVALID_INTERRUPT_VECTOR | DNR };
  if (!(flags & 1)) return { status: STATUS.INVALID_FIELD | DNR }; // not physically contiguous
  ctx.createCompletionQueue(cqid, c.prp1, qsize + 1, vector, (flags & 2) !== 0);
  return { status: STATUS.SUCCESS };
}

function createSq(ctx: AdminContext, c: Command): Completion {
  const sqid = c.cdw10 & 0xffff;
  const qsize = c.cdw10 >>> 16;
  const flags = c.cdw11 & 0xffff;
  const cqid = c.cdw11 >>> 16;
  if (cqid === 0 || cqid > ctx.ioQueuePairs || !ctx.completionQueue(cqid)) return { status: STATUS.INVALID_CQID | DNR };
  if (sqid === 0 || sqid > ctx.ioQueuePairs || ctx.submissionQueue(sqid)) return { status: STATUS.INVALID_QID | DNR };
  if (qsize === 0 || qsize > ctx.maxQueueEntries) return { status: STATUS.MAX_QUEUE_SIZE_EXCEEDED | DNR };
  if (c.prp1 & BigInt(ctx.pageSize - 1)) return { status: STATUS.INVALID_PRP_OFFSET | DNR };
  if (!(flags & 1)) return { status: STATUS.INVALID_FIELD | DNR };
  ctx.createSubmissionQueue(sqid, c.prp1, qsize + 1, cqid);
  return { status: STATUS.SUCCESS };
}

function deleteSq(ctx: AdminContext, c: Command): Completion {
  const qid = c.cdw10 & 0xffff;
  if (qid === 0 || qid > ctx.ioQueuePairs || !ctx.submissionQueue(qid)) return { status: STATUS.INVALID_QID | DNR };
  ctx.deleteSubmissionQueue(qid);
  return { status: STATUS.SUCCESS };
}

function deleteCq(ctx: AdminContext, c: Command): Completion {
  const qid = c.cdw10 & 0xffff;
  const cq = qid === 0 || qid > ctx.ioQueuePairs ? undefined : ctx.completionQueue(qid);
  if (!cq) return { status: STATUS.INVALID_CQID | DNR };
  // A completion queue still used by a submission queue cannot go (and may be retried).
  if (cq.sqs.size) return { status: STATUS.INVALID_QUEUE_DELETION };
  ctx.deleteCompletionQueue(qid);
  return { status: STATUS.SUCCESS };
}

/** PRP1 the shadow doorbells, PRP2 the event indexes: used as addresses, not as data pointers. */
function doorbellBufferConfig(ctx: AdminContext, c: Command): Completion {
  if ((c.prp1 | c.prp2) & BigInt(ctx.pageSize - 1)) return { status: STATUS.INVALID_FIELD | DNR };
  ctx.configureDoorbellBuffer({ doorbells: c.prp1, eventIndexes: c.prp2 });
  return { status: STATUS.SUCCESS };
}

/** Namespace Attachment's select field (cdw10 bits 3:0). */
const ATTACH = 0x0,
  DETACH = 0x1;
/** A controller list holds a count and up to 2047 IDs. */
const CONTROLLER_LIST_ENTRIES = 2047;

/**
 * Namespace Attachment: the namespace ID must be one QEMU takes as valid, and only then is the
 * namespace looked for in the subsystem; then each controller of the list in turn, so that one
 * failing leaves those before it changed; each changed one gets the namespace in its Changed
 * Namespace List. The model's subsystem namespaces are all shared, so QEMU's refusal to attach a
 * private namespace to a second controller cannot arise.
 */
function namespaceAttachment(ctx: AdminContext, c: Command): Completion {
  if (!nsidValid(c.nsid, ctx.maxNamespaces)) return { status: STATUS.INVALID_NSID | DNR };
  if (!ctx.subsystemNamespace(c.nsid)) return { status: STATUS.INVALID_FIELD | DNR };
  const list = ctx.fromHost(c, IDENTIFY_SIZE);
  if (!(list instanceof Uint8Array)) return list;
  const v = new DataView(list.buffer, list.byteOffset, list.byteLength);
  const count = Math.min(v.getUint16(0, true), CONTROLLER_LIST_ENTRIES);
  if (count === 0) return { status: STATUS.CONTROLLER_LIST_INVALID | DNR };
  const select = c.cdw10 & 0xf;
  for (let i = 0; i < count; i++) {
    const controller = ctx.subsystemController(v.getUint16(2 + 2 * i, true));
    if (!controller) return { status: STATUS.CONTROLLER_LIST_INVALID | DNR };
    if (select === ATTACH) {
      if (controller.has(c.nsid)) return { status: STATUS.NAMESPACE_ALREADY_ATTACHED | DNR };
      controller.attach(c.nsid);
    } else if (select === DETACH) {
      if (!controller.has(c.nsid)) return { status: STATUS.NAMESPACE_NOT_ATTACHED | DNR };
      controller.detach(c.nsid);
    } else return { status: STATUS.INVALID_FIELD | DNR };
    controller.changed(c.nsid);
  }
  return { status: STATUS.SUCCESS };
}

/** Virtualization Management: the controller's resources answer (sriov-resources.ts). */
function virtualizationManagement(ctx: AdminContext, c: Command): Completion {
  const request = { action: c.cdw10 & 0xf, resourceType: (c.cdw10 >>> 8) & 0x7, cntlid: c.cdw10 >>> 16, count: c.cdw11 & 0xffff };
  return ctx.resources.manage(request, ctx.virtualFunctions);
}

/** Abort: the command to abort is never found (result bit 0: not aborted). */
function abort(ctx: AdminContext, c: Command): Completion {
  const sqid = c.cdw10 & 0xffff;
  if (sqid > ctx.ioQueuePairs || !ctx.submissionQueue(sqid)) return { status: STATUS.INVALID_FIELD | DNR, result: 1 };
  return { status: STATUS.SUCCESS, result: 1 };
}

const CNS = {
  NAMESPACE: 0x00,
  CONTROLLER: 0x01,
  ACTIVE_NAMESPACES: 0x02,
  NAMESPACE_DESCRIPTORS: 0x03,
  CSI_NAMESPACE: 0x05,
  CSI_CONTROLLER: 0x06,
  CSI_ACTIVE_NAMESPACES: 0x07,
  ALLOCATED_NAMESPACES: 0x10,
  ALLOCATED_NAMESPACE: 0x11,
  NAMESPACE_CONTROLLERS: 0x12,
  CONTROLLERS: 0x13,
  PRIMARY_CONTROLLER_CAPABILITIES: 0x14,
  SECONDARY_CONTROLLERS: 0x15,
  CSI_ALLOCATED_NAMESPACES: 0x1a,
  CSI_ALLOCATED_NAMESPACE: 0x1b,
  COMMAND_SETS: 0x1c,
} as const;

function identify(ctx: AdminContext, c: Command): Completion {
  const cns = c.cdw10 & 0xff;
  const csi = c.cdw11 >>> 24;
  const nsidValid = c.nsid !== 0 && c.nsid !== BROADCAST_NSID && c.nsid <= ctx.maxNamespaces;
  const empty = () => ctx.toHost(c, new Uint8Array(IDENTIFY_SIZE));
  switch (cns) {
    case CNS.NAMESPACE:
    case CNS.ALLOCATED_NAMESPACE: {
      if (!nsidValid) return { status: STATUS.INVALID_NSID | DNR };
      const ns = ctx.namespace(c.nsid) ?? (cns === CNS.ALLOCATED_NAMESPACE ? ctx.subsystemNamespace(c.nsid) : undefined);
      return ns ? ctx.toHost(c, ns.identify()) : empty();
    }
    case CNS.CSI_NAMESPACE:
    case CNS.CSI_ALLOCATED_NAMESPACE: {
      if (!nsidValid) return { status: STATUS.INVALID_NSID | DNR };
      const ns = ctx.namespace(c.nsid) ?? (cns === CNS.CSI_ALLOCATED_NAMESPACE ? ctx.subsystemNamespace(c.nsid) : undefined);
      if (!ns) return empty();
      if (csi === 0) return ctx.toHost(c, ns.identifyNvm());
      return { status: STATUS.INVALID_FIELD | DNR };
    }
    case CNS.CONTROLLER:
      return ctx.toHost(c, ctx.identifyController);
    case CNS.CSI_CONTROLLER:
      if (csi === 0) return ctx.toHost(c, identifyControllerNvm(VERIFY_SIZE_LIMIT, dsmRangeSizeLimit(everAttached(ctx))));
      if (csi === 2) return empty();
      return { status: STATUS.INVALID_FIELD | DNR };
    case CNS.ACTIVE_NAMESPACES:
    case CNS.ALLOCATED_NAMESPACES:
      if (c.nsid >= BROADCAST_NSID - 1) return { status: STATUS.INVALID_NSID | DNR };
      return ctx.toHost(c, namespaceList(namespaceIds(ctx, cns === CNS.ALLOCATED_NAMESPACES), c.nsid));
    case CNS.CSI_ACTIVE_NAMESPACES:
    case CNS.CSI_ALLOCATED_NAMESPACES:
      if (c.nsid >= BROADCAST_NSID - 1) return { status: STATUS.INVALID_NSID | DNR };
      if (csi !== 0 && csi !== 2) return { status: STATUS.INVALID_FIELD | DNR };
      return ctx.toHost(c, namespaceList(csi === 0 ? namespaceIds(ctx, cns === CNS.CSI_ALLOCATED_NAMESPACES) : [], c.nsid));
    case CNS.NAMESPACE_DESCRIPTORS: {
      if (!nsidValid) return { status: STATUS.INVALID_NSID | DNR };
      const ns = ctx.namespace(c.nsid);
      if (!ns) return { status: STATUS.INVALID_FIELD | DNR };
      return ctx.toHost(c, ns.descriptors());
    }
    case CNS.NAMESPACE_CONTROLLERS:
    case CNS.CONTROLLERS:
      return controllerList(ctx, c, cns === CNS.NAMESPACE_CONTROLLERS);
    case CNS.PRIMARY_CONTROLLER_CAPABILITIES:
      return ctx.toHost(c, ctx.resources.capabilities(ctx.controllerId));
    case CNS.SECONDARY_CONTROLLERS:
      return ctx.toHost(c, ctx.resources.secondaryList(c.cdw10 >>> 16));
    case CNS.COMMAND_SETS:
      return ctx.toHost(c, commandSetCombinations());
    default:
      return { status: STATUS.INVALID_FIELD | DNR };
  }
}

/**
 * A controller list (CNS 12h: those the namespace is attached to; 13h: the subsystem's): the
 * count, then the IDs from CDW10's CNTID on. Only a controller in an NVM subsystem has one (the
 * nvme machine's has none).
 */
function controllerList(ctx: AdminContext, c: Command, attached: boolean): Completion {
  const controllers = ctx.subsystemControllers();
  if (!controllers) return { status: STATUS.INVALID_FIELD | DNR };
  if (attached && !ctx.subsystemNamespace(c.nsid)) return { status: STATUS.INVALID_FIELD | DNR };
  const ids = controllers.filter((id) => id >= c.cdw10 >>> 16 && (!attached || ctx.subsystemController(id)?.has(c.nsid)));
  const d = new Uint8Array(IDENTIFY_SIZE);
  const v = new DataView(d.buffer);
  v.setUint16(0, ids.length, true);
  ids.forEach((id, i) => v.setUint16(2 + i * 2, id, true));
  return ctx.toHost(c, d);
}

/**
 * The namespaces the controller has had attached: QEMU lowers DMRSL as namespaces are attached
 * and never raises it again, and every namespace of the model's subsystem starts attached.
 */
function everAttached(ctx: AdminContext): Pick<AdminContext, 'namespace' | 'maxNamespaces'> {
  return { maxNamespaces: ctx.maxNamespaces, namespace: (nsid) => ctx.namespace(nsid) ?? ctx.subsystemNamespace(nsid) };
}

/** The IDs of the attached namespaces, or with `allocated` also the subsystem's others. */
function namespaceIds(ctx: AdminContext, allocated: boolean): number[] {
  const out: number[] = [];
  for (let i = 1; i <= ctx.maxNamespaces; i++) if (ctx.namespace(i) || (allocated && ctx.subsystemNamespace(i))) out.push(i);
  return out;
}
