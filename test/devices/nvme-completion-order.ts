/**
 * The order completions are posted in, on a queue pair written by hand (one doorbell for a whole
 * batch). QEMU 7.2 ends the commands it refuses while it fetches them, so they complete first and
 * in submission order; the commands its block layer carries (reads, flushes) complete after them,
 * handed back by its thread pool newest first among those that have finished. A driver that
 * assumes completions arrive in submission order breaks on it.
 */
import { DmaBuffer, type VfioDevice } from '../../lib';
import { NvmeDriver, type AdminCommand } from '../../examples/nvme/nvme-driver';
import { HandBuiltQueuePair } from './nvme-hand-queue';
import type { Out } from './nvme-conformance';

const READ = 0x02;
const FLUSH = 0x00;
const DATASET_MANAGEMENT = 0x09;
/** Dataset Management's deallocate attribute (cdw11). */
const DEALLOCATE = 1 << 2;
/** Reads per burst, and bursts: enough that a thread pool handing back in submission order would show. */
const BURST = 8;
const BURSTS = 10;

export async function completionOrder(device: VfioDevice, out: Out, outcome: (p: Promise<unknown>) => Promise<string>): Promise<void> {
  using nvme = await NvmeDriver.open(device, { ioQueues: 1, queueDepth: 16, completion: 'poll', commandTimeoutMs: 10_000 });
  using registers = device.bar(0).mmap();
  // Pages: 0 completion ring, 1 submission ring, then one data page per command.
  using pages = DmaBuffer.allocate((2 + BURST) * 4096, { space: device.dmaSpace });
  const queue = new HandBuiltQueuePair(pages, registers, 0, 1);
  const admin = (c: AdminCommand) => outcome(nvme.adminCommand(c));
  const data = (i: number) => pages.dmaAddress((2 + i) * 4096);
  const blocks = nvme.namespaces[0]!.blocks;
  /** Queue pair 2 created on zeroed rings; the two outcomes. */
  const fresh = async () => {
    pages.bytes.fill(0, 0, 2 * 4096);
    return [await admin(queue.createCq), await admin(queue.createSq)];
  };
  const done = async () => [await admin(queue.deleteSq), await admin(queue.deleteCq)];

  out('order.mixed.create', (await fresh()).join('; '));
  queue.write(0, { opcode: READ, cid: 0x200, prp1: data(0) });
  queue.write(1, { opcode: READ, cid: 0x201, prp1: data(1), cdw10: Number(blocks & 0xffff_ffffn), cdw11: Number(blocks >> 32n) });
  queue.write(2, { opcode: READ, cid: 0x202, prp1: data(2), cdw10: 1 });
  queue.write(3, { opcode: 0x7f, cid: 0x203 });
  queue.write(4, { opcode: FLUSH, cid: 0x204 });
  queue.write(5, { opcode: READ, cid: 0x205, nsid: 0x1234, prp1: data(3) });
  // Deallocate one range: beyond the namespace (skipped, so nothing reaches the storage), then inside it.
  const range = (i: number, slba: bigint) => {
    const view = new DataView(pages.bytes.buffer, pages.bytes.byteOffset + (2 + i) * 4096, 16);
    view.setUint32(0, 0, true);
    view.setUint32(4, 1, true);
    view.setBigUint64(8, slba, true);
    return data(i);
  };
  queue.write(6, { opcode: DATASET_MANAGEMENT, cid: 0x206, prp1: range(4, blocks), cdw11: DEALLOCATE });
  queue.write(7, { opcode: DATASET_MANAGEMENT, cid: 0x207, prp1: range(5, 100n), cdw11: DEALLOCATE });
  queue.ringTail(8);
  out('order.mixed.posted', await queue.settle(8));
  // LBA out of range, invalid opcode, invalid namespace, nothing to deallocate: in submission order.
  out('order.mixed.ended-at-fetch', queue.entries(0, 4));
  out('order.mixed.from-storage', queue.entrySet(4, 8));
  out('order.mixed.delete', (await done()).join('; '));

  // What every burst must show alike (a set: any difference between bursts is a line of its own).
  const alike = { queues: new Set<string>(), posted: new Set<string>(), entries: new Set<string>() };
  let inSubmissionOrder = 0;
  for (let burst = 0; burst < BURSTS; burst++) {
    for (const o of await fresh()) alike.queues.add(o);
    for (let i = 0; i < BURST; i++) queue.write(i, { opcode: READ, cid: 0x300 + i, prp1: data(i), cdw10: i });
    queue.ringTail(BURST);
    alike.posted.add(await queue.settle(BURST));
    alike.entries.add(queue.entrySet(0, BURST));
    if (Array.from({ length: BURST }, (_, slot) => queue.cid(slot)).every((cid, slot) => cid === 0x300 + slot)) inSubmissionOrder++;
    for (const o of await done()) alike.queues.add(o);
  }
  out('order.reads.queues', [...alike.queues].join(' | '));
  out('order.reads.posted', [...alike.posted].join(' | '));
  out('order.reads.entries', [...alike.entries].join(' | '));
  // The lab's bursts come back newest first, or nearly (76543210, 65437210, 21076543, …); none in submission order.
  out('order.reads.in-submission-order', `${inSubmissionOrder} of ${BURSTS} bursts`);
  await nvme.shutdown();
}
