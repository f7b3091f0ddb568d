/**
 * The example driver's queue pair on its own, with the test playing the controller: it reads the
 * submission ring where the queue pair wrote it (noiommu model, so bus addresses are physical
 * ones) and posts completions into the completion ring itself. What is checked is the ring's
 * bookkeeping that no device answer shows: the I/O path writes only the dwords a read or write
 * sets, so a slot another command left other dwords set in must be cleared before it is reused.
 */
import assert from 'node:assert/strict';
import { DmaBuffer, openDevice, type Mmio } from '../../lib';
import { createModelKernel } from '../../lib/model';
import { NvmeController } from '../../lib/devices/nvme';
import { busAddress, busPages } from '../../examples/nvme/bus-pages';
import { QueuePair } from '../../examples/nvme/queue-pair';

const BDF = '0000:00:04.0';
const DEPTH = 4;
/** I/O queue 1's tail doorbell at a doorbell stride of 4 bytes. */
const SQ1_TAIL = 0x1000 + 2 * 4;

function setUp() {
  const kernel = createModelKernel({
    base: 'linux-7.3-noiommu',
    withoutBaseDevices: true,
    devices: [{ address: BDF, model: new NvmeController() }],
  });
  const device = openDevice(BDF, { kernel });
  const tailWrites: number[] = [];
  // The doorbells only: the controller is the test, so nothing is written to the real BAR.
  const doorbells = { write32: (offset: number, value: number) => void (offset === SQ1_TAIL && tailWrites.push(value)) } as unknown as Mmio;
  const qp = new QueuePair(doorbells, device.dmaSpace, 1, DEPTH, 4, new Float64Array(1));
  const data = DmaBuffer.allocate(4096, { space: device.dmaSpace });
  let cqSlot = 0,
    phase = 1,
    sqHead = 0;
  return {
    kernel,
    device,
    qp,
    data,
    tailWrites,
    /** The 16 dwords of submission-ring slot `slot`, as the controller would fetch them. */
    entry(slot: number): number[] {
      const bytes = kernel.memory.dmaRead(qp.sqAddress + BigInt(slot * 64), 64);
      return Array.from(new Uint32Array(bytes.buffer, bytes.byteOffset, 16));
    },
    /** Posts a successful completion for `cid` and lets the queue pair consume it. */
    complete(cid: number): void {
      sqHead = (sqHead + 1) % DEPTH;
      const cqe = new Uint32Array([0, 0, sqHead | (1 << 16), cid | (phase << 16)]);
      kernel.memory.dmaWrite(qp.cqAddress + BigInt(cqSlot * 16), new Uint8Array(cqe.buffer));
      if (++cqSlot === DEPTH) {
        cqSlot = 0;
        phase ^= 1;
      }
      assert.equal(qp.poll(), 1);
    },
    close(): void {
      qp.close();
      data.close();
      device.close();
    },
  };
}

describe('example: the NVMe driver queue pair, the test as the controller', () => {
  it('a read reusing the slot of a command that set dwords 13-15 carries zeroes there, as every other read does', () => {
    const t = setUp();
    try {
      const pages = busPages(t.data);
      const statuses: number[] = [];
      const done = (status: number) => void statuses.push(status);
      // Slot 0: a command with CDW13-15 set (what commandWithFlags() can send on an I/O queue).
      const cid = t.qp.reserve();
      t.qp.submit(cid, 0x02, 0, 1, busAddress(pages, 0), 0, 5, 0, 7, 0x1313_1313, 0x1414_1414, 0x1515_1515, 0, done);
      assert.deepEqual(t.entry(0).slice(13), [0x1313_1313, 0x1414_1414, 0x1515_1515]);
      t.complete(cid);
      // Slots 1-3, then slot 0 again: reads through the I/O path.
      const cids: number[] = [];
      for (let i = 1; i <= DEPTH; i++) {
        const before = t.qp.outstanding;
        assert.ok(t.qp.transfer(0x02, 1, pages, 0, 4096, 100 + i, 0, 7, done));
        assert.equal(t.qp.outstanding, before + 1);
        const slot = i % DEPTH;
        const e = t.entry(slot);
        cids.push(e[0]! >>> 16);
        assert.deepEqual(
          { opcode: e[0]! & 0xff, nsid: e[1], zeroes: [...e.slice(2, 6), ...e.slice(13)], lba: e[10], blocks: e[12] },
          { opcode: 0x02, nsid: 1, zeroes: [0, 0, 0, 0, 0, 0, 0], lba: 100 + i, blocks: 7 },
          `slot ${slot}`,
        );
        assert.deepEqual([e[6], e[7], e[8], e[9]], [pages[0], pages[1], 0, 0], `slot ${slot}: PRP1 and PRP2`);
        t.complete(cids[cids.length - 1]!);
      }
      assert.deepEqual(statuses, [0, 0, 0, 0, 0]);
      // Outside a poll pass every submission rang its tail doorbell at once.
      assert.deepEqual(t.tailWrites, [1, 2, 3, 0, 1]);
    } finally {
      t.close();
    }
  });
});
