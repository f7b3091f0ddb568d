/**
 * Namespace Attachment in the sriov machine's NVM subsystem (QEMU 7.2: the PF is controller 0, its
 * VFs' controllers 1 and 2 while VFs are enabled, one shared namespace): the command's refusals,
 * what a controller that lost its namespace answers (Identify's active and allocated views, I/O,
 * the SMART log), the notice it raises and the Changed Namespace List that clears it, and a list
 * of several controllers, of which those before a failing one stay changed. Part of the sriov
 * observation (nvme-sriov-observations.ts); everything is attached again at the end.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { DmaBuffer, type VfioDevice } from '../../lib';
import type { NvmeDriver } from '../../examples/nvme/nvme-driver';
import { outcome, sparseHex } from './nvme-conformance';

type Out = (key: string, value: string) => void;

const NAMESPACE_ATTACHMENT = 0x15;
const IDENTIFY = 0x06;
const GET_LOG_PAGE = 0x02;
const ASYNC_EVENT_REQUEST = 0x0c;
const READ = 0x02;
const ATTACH = 0x0,
  DETACH = 0x1;
const CNS = { NAMESPACE: 0x00, ACTIVE_LIST: 0x02, DESCRIPTORS: 0x03, ALLOCATED_LIST: 0x10, ALLOCATED: 0x11, ON_NAMESPACE: 0x12 } as const;
const SMART_LOG = 0x02;
const CHANGED_NAMESPACES_LOG = 0x04;
/** How long QEMU's main loop under a loaded TCG guest may take to answer an event request. */
const SETTLE_MS = 400;

class Attachment {
  private readonly page: DmaBuffer;

  constructor(
    private readonly nvme: NvmeDriver,
    device: VfioDevice,
  ) {
    this.page = DmaBuffer.allocate(4096, { space: device.dmaSpace });
  }

  /** Namespace Attachment with `select` for the controllers `ids` (the list's count as given, or their number). */
  change(select: number, nsid: number, ids: readonly number[], count = ids.length): Promise<string> {
    const v = new DataView(this.page.bytes.buffer, this.page.bytes.byteOffset, 4096);
    this.page.bytes.fill(0);
    v.setUint16(0, count, true);
    ids.forEach((id, i) => v.setUint16(2 + 2 * i, id, true));
    return outcome(this.nvme.adminCommand({ opcode: NAMESPACE_ATTACHMENT, nsid, cdw10: select }, { buffer: this.page, length: 4096 }));
  }

  async identify(cns: number, nsid: number): Promise<string> {
    this.page.bytes.fill(0);
    const status = await outcome(this.nvme.adminCommand({ opcode: IDENTIFY, nsid, cdw10: cns }, { buffer: this.page, length: 4096 }));
    return status.startsWith('ok') ? sparseHex(this.page.bytes) : status;
  }

  /** The first 16 bytes of a log page (read in full: 4 KiB), or the status. */
  async log(lid: number, nsid: number): Promise<string> {
    this.page.bytes.fill(0);
    const cdw10 = ((4096 / 4 - 1) << 16) | lid;
    const status = await outcome(this.nvme.adminCommand({ opcode: GET_LOG_PAGE, nsid, cdw10 }, { buffer: this.page, length: 4096 }));
    return status.startsWith('ok') ? sparseHex(this.page.bytes.subarray(0, 16)) : status;
  }

  /** A read of block 0 of `nsid` on I/O queue 1. */
  read(nsid: number): Promise<string> {
    return outcome(this.nvme.commandWithFlags(1, { opcode: READ, nsid }, 0, { buffer: this.page, length: 512 }));
  }

  close(): void {
    this.page.close();
  }
}

/** The PF alone in the subsystem (no VFs enabled). */
export async function attachmentOnPrimary(nvme: NvmeDriver, pf: VfioDevice, out: Out): Promise<void> {
  const a = new Attachment(nvme, pf);
  try {
    out('ns-attach.nsid-0', await a.change(ATTACH, 0, [0]));
    out('ns-attach.nsid-without-namespace', await a.change(ATTACH, 2, [0]));
    out('ns-attach.broadcast', await a.change(ATTACH, 0xffff_ffff, [0]));
    out('ns-attach.empty-list', await a.change(ATTACH, 1, [], 0));
    out('ns-attach.vf-controller-without-vfs', await a.change(ATTACH, 1, [1]));
    out('ns-attach.already-attached', await a.change(ATTACH, 1, [0]));
    out('ns-attach.select-2', await a.change(2, 1, [0]));
    out('ns-attach.changed-list-before', await a.log(CHANGED_NAMESPACES_LOG, 0));

    let notice: string | undefined;
    void outcome(nvme.adminCommand({ opcode: ASYNC_EVENT_REQUEST })).then((s) => (notice = s));
    out('ns-detach', await a.change(DETACH, 1, [0]));
    await sleep(SETTLE_MS);
    out('ns-detach.event', notice ?? 'none');
    out('ns-detach.active-list', await a.identify(CNS.ACTIVE_LIST, 0));
    out('ns-detach.allocated-list', await a.identify(CNS.ALLOCATED_LIST, 0));
    out('ns-detach.namespace', await a.identify(CNS.NAMESPACE, 1));
    out('ns-detach.allocated-namespace', await a.identify(CNS.ALLOCATED, 1));
    out('ns-detach.descriptors', await a.identify(CNS.DESCRIPTORS, 1));
    out('ns-detach.controllers-on-namespace', await a.identify(CNS.ON_NAMESPACE, 1));
    out('ns-detach.read', await a.read(1));
    out('ns-detach.smart-log', await a.log(SMART_LOG, 1));
    out('ns-detach.again', await a.change(DETACH, 1, [0]));
    out('ns-detach.changed-list', await a.log(CHANGED_NAMESPACES_LOG, 0));
    out('ns-detach.changed-list-after-read', await a.log(CHANGED_NAMESPACES_LOG, 0));

    // The read re-enabled notices: attaching again raises one for the request waiting.
    notice = undefined;
    void outcome(nvme.adminCommand({ opcode: ASYNC_EVENT_REQUEST })).then((s) => (notice = s));
    out('ns-attach', await a.change(ATTACH, 1, [0]));
    await sleep(SETTLE_MS);
    out('ns-attach.event', notice ?? 'none');
    out('ns-attach.active-list', await a.identify(CNS.ACTIVE_LIST, 0));
    out('ns-attach.read', await a.read(1));
    out('ns-attach.changed-list', await a.log(CHANGED_NAMESPACES_LOG, 0));
  } finally {
    a.close();
  }
}

/** With both VFs enabled: their controllers are in the subsystem, the namespace attached to them. */
export async function attachmentWithVfs(nvme: NvmeDriver, pf: VfioDevice, out: Out): Promise<void> {
  const a = new Attachment(nvme, pf);
  try {
    out('vfs.ns-attach.controllers-on-namespace', await a.identify(CNS.ON_NAMESPACE, 1));
    out('vfs.ns-attach.already-attached-vf', await a.change(ATTACH, 1, [1]));
    out('vfs.ns-detach.pf-and-vf1', await a.change(DETACH, 1, [0, 1]));
    out('vfs.ns-detach.pf-and-vf1.controllers-on-namespace', await a.identify(CNS.ON_NAMESPACE, 1));
    // VF 2 first, then VF 1, which is detached already: VF 2 stays detached.
    out('vfs.ns-detach.vf2-then-vf1', await a.change(DETACH, 1, [2, 1]));
    out('vfs.ns-detach.vf2-then-vf1.controllers-on-namespace', await a.identify(CNS.ON_NAMESPACE, 1));
    out('vfs.ns-attach.unknown-after-known', await a.change(ATTACH, 1, [1, 7]));
    out('vfs.ns-attach.unknown-after-known.controllers-on-namespace', await a.identify(CNS.ON_NAMESPACE, 1));
    out('vfs.ns-attach.rest', await a.change(ATTACH, 1, [0, 2]));
    out('vfs.ns-attach.rest.controllers-on-namespace', await a.identify(CNS.ON_NAMESPACE, 1));
    out('vfs.ns-attach.changed-list', await a.log(CHANGED_NAMESPACES_LOG, 0));
  } finally {
    a.close();
  }
}
