/**
 * What the kernel logs when the IOMMU blocks a device's DMA, the same cases on the model and on
 * the real kernel (QEMU's intel-iommu under Linux 7.3): edu reading from and writing to IOVAs the
 * IOAS does not map. Linux 7.3's fault interrupt prints the fault status, then the direction, the
 * requester, the page and the reason of each record; a mapped IOVA logs nothing.
 */
import assert from 'node:assert/strict';
import type { Kernel } from '../../lib/sys/kernel';
import { openDevice } from '../../lib/vfio/open-device';
import { lastKernelLogSeq, readKernelLog } from '../../lib/sys/kernel-log';
import type { Mmio } from '../../lib/vfio/mmio';
import { EDU } from '../../lib/selftest/edu-driver';

/** An IOMMU-mode machine with edu bound to vfio-pci. */
export interface DmarFaultBench {
  readonly kernel: Kernel;
  readonly bdf: string;
  /** How long a transfer and its fault interrupt may take (QEMU's edu takes 100 ms per DMA). */
  readonly settleMs: number;
}

const EDU_BUFFER = EDU.DEVICE_BUFFER;
/** Below edu's default 28-bit DMA mask, above anything the cases map. */
const UNMAPPED_READ = 0x100000n;
const UNMAPPED_WRITE = 0x200000n;
/** intel-iommu's fault printing shares one ratelimit of 5 s: earlier suites' faults must age out. */
const RATELIMIT_INTERVAL_MS = 5000;

async function transfer(bar0: Mmio, src: bigint, dst: bigint, count: number, toRam: boolean, settleMs: number): Promise<void> {
  bar0.write64(EDU.DMA_SOURCE, src);
  bar0.write64(EDU.DMA_DESTINATION, dst);
  bar0.write64(EDU.DMA_COUNT, BigInt(count));
  bar0.write32(EDU.DMA_COMMAND, EDU.DMA_CMD_START | (toRam ? EDU.DMA_CMD_TO_RAM : 0));
  const end = Date.now() + settleMs;
  while (bar0.read32(EDU.DMA_COMMAND) & EDU.DMA_CMD_START) {
    if (Date.now() > end) throw new Error('edu DMA did not complete');
    await new Promise((r) => setTimeout(r, 5));
  }
}

async function linesAfter(kernel: Kernel, mark: bigint, settleMs: number, want: number): Promise<string[]> {
  const end = Date.now() + settleMs;
  for (;;) {
    const texts = readKernelLog(kernel, { after: mark })
      .map((r) => r.text)
      .filter((t) => t.startsWith('DMAR:'));
    if (texts.length >= want || Date.now() > end) return texts;
    await new Promise((r) => setTimeout(r, 20));
  }
}

export function dmarFaultCases(newBench: () => Promise<DmarFaultBench>): void {
  let bench: DmarFaultBench;
  before(async function () {
    this.timeout(RATELIMIT_INTERVAL_MS + 5000);
    bench = await newBench();
    await new Promise((r) => setTimeout(r, RATELIMIT_INTERVAL_MS + 100));
  });

  it('a DMA from and to unmapped IOVAs logs a DMAR fault each, with direction, requester, page and reason; a mapped one logs nothing', async () => {
    const { kernel, bdf, settleMs } = bench;
    const device = openDevice(bdf, { kernel });
    try {
      device.config.enableBusMaster();
      const bar0 = device.bar(0).mmap();
      const buffer = device.allocateDma(4096);
      let mark = lastKernelLogSeq(kernel);
      await transfer(bar0, buffer.iova!, EDU_BUFFER, 64, false, settleMs);
      assert.deepEqual(await linesAfter(kernel, mark, 300, 1), [], 'a mapped IOVA faults nothing');

      mark = lastKernelLogSeq(kernel);
      await transfer(bar0, UNMAPPED_READ + 0x10n, EDU_BUFFER, 8, false, settleMs);
      assert.deepEqual(await linesAfter(kernel, mark, settleMs, 2), [
        'DMAR: DRHD: handling fault status reg 2',
        `DMAR: [DMA Read NO_PASID] Request device [${bdf}] fault addr 0x${UNMAPPED_READ.toString(16)} [fault reason 0x06] PTE Read access is not set`,
      ]);

      mark = lastKernelLogSeq(kernel);
      await transfer(bar0, EDU_BUFFER, UNMAPPED_WRITE, 16, true, settleMs);
      assert.deepEqual(await linesAfter(kernel, mark, settleMs, 2), [
        'DMAR: DRHD: handling fault status reg 2',
        `DMAR: [DMA Write NO_PASID] Request device [${bdf}] fault addr 0x${UNMAPPED_WRITE.toString(16)} [fault reason 0x05] PTE Write access is not set`,
      ]);
      buffer.close();
    } finally {
      device.close();
    }
  });

  it('the log is readable as records: increasing sequence numbers, levels and timestamps', () => {
    const records = readKernelLog(bench.kernel);
    for (let i = 1; i < records.length; i++) assert.ok(records[i]!.seq > records[i - 1]!.seq);
    const fault = records.filter((r) => r.text.startsWith('DMAR: [DMA')).pop();
    assert.ok(fault, 'the faults of the case before are in the log');
    assert.equal(fault.level, 3, 'pr_err');
    assert.equal(fault.facility, 0, 'the kernel');
    assert.ok(fault.usec > 0n);
  });
}
