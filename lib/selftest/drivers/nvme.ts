/**
 * The selftest driver for QEMU 7.2's NVMe controller (hw/nvme, 1b36:0010), raw on the device fd:
 * the kernel's drivers copy memory with a DMA engine, and an NVMe controller has none that copies
 * host memory to host memory (its Copy command copies between blocks of a namespace), so a memcpy
 * is a Write of [src, src + size) to the first blocks of namespace 1 followed by a Read of them to
 * [dst, dst + size): the device reads every source byte and writes every destination byte by DMA.
 * The lab's nvme machine gets a fresh image each boot, so those blocks are scratch.
 *
 * Bring-up is the specification's (CC.EN 0, wait for !RDY, admin queues, CC.EN 1, wait for RDY;
 * Identify Namespace for the block size), with two I/O queue pairs in the driver's region: pair 1
 * for the copies with interrupts off (IEN 0: the ops guarantee none during a memcpy), pair 2 whose
 * completion queue interrupts on MSI-X vector 1 — send_msi is a Flush on it. MSI-X is enabled with
 * an eventfd on vector 1 only, so the admin queue's completions (vector 0) signal nothing.
 * Completions are polled by their phase tag; a copy's error is the status of its Write or Read.
 * A transfer the IOMMU blocks is not one: QEMU 7.2 maps a command's data through its DMA helpers,
 * which bounce what the host does not back, so the command completes successfully with zeroes
 * read or the data written nowhere (the model does the same, lib/devices/nvme/controller.ts
 * readRuns); only an unreadable PRP list page is a Data Transfer Error. A copy is at most two pages (PRP1 and PRP2,
 * no PRP list), page-aligned, each page addressed separately, so no physical contiguity is needed.
 */
import type { Mapping } from '../../sys/kernel';
import { pollUntil, type DriverDevice, type SelftestDriver, type SelftestDriverFactory } from './driver';

/** QEMU's NVMe controller: Red Hat's vendor ID, QEMU's device 0x0010. */
const NVME_VENDOR_ID = 0x1b36;
const NVME_DEVICE_ID = 0x0010;
const PAGE = 4096;
const REG = { CAP: 0x00, CC: 0x14, CSTS: 0x1c, AQA: 0x24, ASQ: 0x28, ACQ: 0x30 } as const;
const CC_EN = 1 << 0;
/** IOSQES 6 (64-byte entries), IOCQES 4 (16-byte entries), NVM command set, 4 KiB pages. */
const CC_ENTRY_SIZES = (6 << 16) | (4 << 20);
const CSTS_RDY = 1 << 0;
const CSTS_CFS = 1 << 1;
const ADMIN = { DELETE_SQ: 0x00, CREATE_SQ: 0x01, DELETE_CQ: 0x04, CREATE_CQ: 0x05, IDENTIFY: 0x06 } as const;
const NVM = { FLUSH: 0x00, WRITE: 0x01, READ: 0x02 } as const;
const SQE = 64;
const CQE = 16;
const DEPTH = 16;
const NSID = 1;
/** Pages of the driver's region: the rings of the admin queue and of the two I/O queue pairs, and an Identify buffer. */
const SLOT = { ADMIN_SQ: 0, ADMIN_CQ: 1, COPY_SQ: 2, COPY_CQ: 3, MSI_SQ: 4, MSI_CQ: 5, IDENTIFY: 6 } as const;
const REGION_PAGES = 7;
const COPY_QUEUE = 1;
const MSI_QUEUE = 2;
const MSI_VECTOR = 1;
const MAX_COPY = 2 * PAGE;

/** One submission ring and its completion ring in the driver's region, polled. */
class Queue {
  private tail = 0;
  private head = 0;
  private phase = 1;
  private cid = 0;

  constructor(
    private readonly dev: DriverDevice,
    private readonly bar0: Mapping,
    readonly id: number,
    private readonly sqSlot: number,
    private readonly cqSlot: number,
    private readonly stride: number,
  ) {
    this.page(sqSlot).fill(0);
    this.page(cqSlot).fill(0);
  }

  get sqBus(): bigint {
    return slotBus(this.dev, this.sqSlot);
  }

  get cqBus(): bigint {
    return slotBus(this.dev, this.cqSlot);
  }

  private page(slot: number): Uint8Array {
    return this.dev.region.bytes.subarray(slot * PAGE, (slot + 1) * PAGE);
  }

  /** Submits one command (dwords 0..15 as given, CID filled in) and polls for its completion; returns the status field. */
  async run(opcode: number, dwords: { nsid?: number; prp1?: bigint; prp2?: bigint; cdw?: readonly number[] }): Promise<number> {
    const sqe = new DataView(this.dev.region.bytes.buffer, this.dev.region.bytes.byteOffset + this.sqSlot * PAGE + this.tail * SQE, SQE);
    for (let i = 0; i < SQE; i += 4) sqe.setUint32(i, 0, true);
    const cid = (this.cid = (this.cid + 1) & 0xffff);
    sqe.setUint32(0, (opcode | (cid << 16)) >>> 0, true);
    sqe.setUint32(4, dwords.nsid ?? 0, true);
    sqe.setBigUint64(24, dwords.prp1 ?? 0n, true);
    sqe.setBigUint64(32, dwords.prp2 ?? 0n, true);
    (dwords.cdw ?? []).forEach((v, i) => sqe.setUint32(40 + 4 * i, v >>> 0, true));
    this.tail = (this.tail + 1) % DEPTH;
    const { kernel } = this.dev.t;
    kernel.mmioWrite(this.bar0, 0x1000 + 2 * this.id * this.stride, 32, this.tail);
    const cq = new DataView(this.dev.region.bytes.buffer, this.dev.region.bytes.byteOffset + this.cqSlot * PAGE, PAGE);
    const phaseOf = () => (cq.getUint16(this.head * CQE + 14, true) & 1) === this.phase;
    await pollUntil(
      () => phaseOf() || (kernel.mmioRead(this.bar0, REG.CSTS, 32) & CSTS_CFS) !== 0,
      `NVMe queue ${this.id}: completion of opcode 0x${opcode.toString(16)}`,
    );
    if (!phaseOf()) throw new Error(`NVMe: controller fatal status while queue ${this.id} waited for opcode 0x${opcode.toString(16)}`);
    const gotCid = cq.getUint16(this.head * CQE + 12, true);
    const status = cq.getUint16(this.head * CQE + 14, true) >> 1;
    this.head = (this.head + 1) % DEPTH;
    if (this.head === 0) this.phase ^= 1;
    kernel.mmioWrite(this.bar0, 0x1000 + (2 * this.id + 1) * this.stride, 32, this.head);
    if (gotCid !== cid) throw new Error(`NVMe queue ${this.id}: completion for CID ${gotCid}, expected ${cid}`);
    return status;
  }
}

function slotBus(dev: DriverDevice, slot: number): bigint {
  return dev.busAddress(dev.region.iova + BigInt(slot * PAGE)).address;
}

function describeStatus(status: number): string {
  return `status 0x${status.toString(16)} (SCT ${(status >> 8) & 7}, SC 0x${(status & 0xff).toString(16)})`;
}

class NvmeSelftestDriver implements SelftestDriver {
  readonly maxMemcpySize = MAX_COPY;
  readonly maxMemcpyCount = 64;
  readonly msi = MSI_VECTOR;
  /** See the header: QEMU's NVMe completes a blocked data transfer successfully. */
  readonly reportsDmaErrors = false;
  private admin: Queue | undefined;
  private copyQueue: Queue | undefined;
  private msiQueue: Queue | undefined;
  private blockSize = 512;
  private pending: Promise<string | null> = Promise.resolve(null);

  constructor(private readonly dev: DriverDevice) {}

  private get bar0(): Mapping {
    return this.dev.bar(0);
  }

  private reg32(offset: number): number {
    return this.dev.t.kernel.mmioRead(this.bar0, offset, 32);
  }

  private write32(offset: number, value: number): void {
    this.dev.t.kernel.mmioWrite(this.bar0, offset, 32, value >>> 0);
  }

  private write64(offset: number, value: bigint): void {
    this.write32(offset, Number(value & 0xffff_ffffn));
    this.write32(offset + 4, Number(value >> 32n));
  }

  private async adminOk(what: string, opcode: number, dwords: Parameters<Queue['run']>[1]): Promise<void> {
    const status = await this.admin!.run(opcode, dwords);
    if (status !== 0) throw new Error(`NVMe ${what}: ${describeStatus(status)}`);
  }

  async init(): Promise<void> {
    const cap = this.dev.t.kernel.mmioRead(this.bar0, REG.CAP, 64);
    if (cap === 0xffff_ffff_ffff_ffffn) throw new Error('NVMe: CAP reads all ones');
    const stride = 4 << Number((cap >> 32n) & 0xfn);
    const readyMs = Math.max(500, Number((cap >> 24n) & 0xffn) * 500);
    this.dev.busMaster(true);
    this.write32(REG.CC, 0);
    await pollUntil(() => (this.reg32(REG.CSTS) & CSTS_RDY) === 0, 'NVMe: CSTS.RDY 0 after CC.EN 0', readyMs);
    this.dev.enableIrq('msix', MSI_VECTOR + 1, (v) => v === MSI_VECTOR);
    this.admin = new Queue(this.dev, this.bar0, 0, SLOT.ADMIN_SQ, SLOT.ADMIN_CQ, stride);
    this.write32(REG.AQA, ((DEPTH - 1) << 16) | (DEPTH - 1));
    this.write64(REG.ASQ, this.admin.sqBus);
    this.write64(REG.ACQ, this.admin.cqBus);
    this.write32(REG.CC, CC_EN | CC_ENTRY_SIZES);
    await pollUntil(() => (this.reg32(REG.CSTS) & (CSTS_RDY | CSTS_CFS)) !== 0, 'NVMe: CSTS.RDY 1 after CC.EN 1', readyMs);
    if (this.reg32(REG.CSTS) & CSTS_CFS) throw new Error('NVMe: controller fatal status on enable');

    const identify = this.dev.region.bytes.subarray(SLOT.IDENTIFY * PAGE, (SLOT.IDENTIFY + 1) * PAGE);
    identify.fill(0);
    await this.adminOk('Identify Namespace 1', ADMIN.IDENTIFY, { nsid: NSID, prp1: slotBus(this.dev, SLOT.IDENTIFY), cdw: [0] });
    const ns = new DataView(identify.buffer, identify.byteOffset, PAGE);
    const format = ns.getUint8(26) & 0xf;
    this.blockSize = 2 ** ((ns.getUint32(128 + 4 * format, true) >> 16) & 0xff);
    const blocks = ns.getBigUint64(0, true);
    if (blocks * BigInt(this.blockSize) < BigInt(MAX_COPY)) throw new Error(`NVMe: namespace 1 has only ${blocks} blocks`);

    this.copyQueue = await this.createPair(COPY_QUEUE, SLOT.COPY_SQ, SLOT.COPY_CQ, stride, false);
    this.msiQueue = await this.createPair(MSI_QUEUE, SLOT.MSI_SQ, SLOT.MSI_CQ, stride, true);
  }

  private async createPair(id: number, sqSlot: number, cqSlot: number, stride: number, interrupts: boolean): Promise<Queue> {
    const q = new Queue(this.dev, this.bar0, id, sqSlot, cqSlot, stride);
    const size = ((DEPTH - 1) << 16) | id;
    // CDW11: interrupt vector, IEN, physically contiguous.
    const cqFlags = interrupts ? (MSI_VECTOR << 16) | 0b11 : 0b01;
    await this.adminOk(`Create I/O CQ ${id}`, ADMIN.CREATE_CQ, { prp1: q.cqBus, cdw: [size, cqFlags] });
    await this.adminOk(`Create I/O SQ ${id}`, ADMIN.CREATE_SQ, { prp1: q.sqBus, cdw: [size, (id << 16) | 1] });
    return q;
  }

  async remove(): Promise<void> {
    for (const id of [MSI_QUEUE, COPY_QUEUE]) {
      await this.adminOk(`Delete I/O SQ ${id}`, ADMIN.DELETE_SQ, { cdw: [id] });
      await this.adminOk(`Delete I/O CQ ${id}`, ADMIN.DELETE_CQ, { cdw: [id] });
    }
    this.write32(REG.CC, 0);
    await pollUntil(() => (this.reg32(REG.CSTS) & CSTS_RDY) === 0, 'NVMe: CSTS.RDY 0 after CC.EN 0');
    this.dev.disableIrq('msix');
    this.dev.busMaster(false);
    this.admin = this.copyQueue = this.msiQueue = undefined;
  }

  memcpyStart(src: bigint, dst: bigint, size: number, count: number): void {
    this.pending = this.copy(src, dst, size, count).catch((e: unknown) => `NVMe: ${(e as Error).message}`);
  }

  memcpyWait(): Promise<string | null> {
    return this.pending;
  }

  async sendMsi(): Promise<void> {
    const status = await this.msiQueue!.run(NVM.FLUSH, { nsid: NSID });
    if (status !== 0) throw new Error(`NVMe Flush for send_msi: ${describeStatus(status)}`);
  }

  /** PRP1 and PRP2 of a page-aligned transfer of at most two pages. */
  private prps(iova: bigint, size: number): { prp1: bigint; prp2: bigint } {
    if (iova % BigInt(PAGE) !== 0n) throw new RangeError(`NVMe copies start on a page boundary, not at 0x${iova.toString(16)}`);
    return { prp1: this.dev.busAddress(iova).address, prp2: size > PAGE ? this.dev.busAddress(iova + BigInt(PAGE)).address : 0n };
  }

  private async copy(src: bigint, dst: bigint, size: number, count: number): Promise<string | null> {
    if (size % this.blockSize !== 0) throw new RangeError(`NVMe copies whole ${this.blockSize}-byte blocks, not ${size} bytes`);
    const nlb = size / this.blockSize - 1;
    for (let n = 0; n < count; n++) {
      const written = await this.copyQueue!.run(NVM.WRITE, { nsid: NSID, ...this.prps(src, size), cdw: [0, 0, nlb] });
      if (written !== 0) return `Write from 0x${src.toString(16)}: ${describeStatus(written)}`;
      const read = await this.copyQueue!.run(NVM.READ, { nsid: NSID, ...this.prps(dst, size), cdw: [0, 0, nlb] });
      if (read !== 0) return `Read to 0x${dst.toString(16)}: ${describeStatus(read)}`;
    }
    return null;
  }
}

export const nvmeSelftestDriver: SelftestDriverFactory = {
  name: 'nvme',
  regionSize: BigInt(REGION_PAGES * PAGE),
  probe: (device) => device.vendorId === NVME_VENDOR_ID && device.deviceId === NVME_DEVICE_ID,
  create: (dev) => new NvmeSelftestDriver(dev),
};
