/**
 * The example driver's I/O path allocates nothing per command, as one case run on the NVMe model
 * (test/devices) and on QEMU's real controller in the lab (test/lab/nvme). V8's sampling heap
 * profiler, told to keep objects the scavenger already freed, records where every sampled
 * allocation was made; the samples whose allocating frame is the driver's I/O path (submit, the
 * PRPs, the entry, polling, completion) must come to less than a byte per I/O. A heap number or
 * an iterator per command is 16 bytes or more per I/O and fails. What the poll loop makes per
 * turn of the event loop or per clock read (Node 20's performance.now allocates) is not per
 * command and is reported, not bounded.
 *
 * On the model the doorbell writes run the model's kernel and controller on the same heap, and V8
 * inlines them into the driver's `ring` and `poll`: their allocations are then reported as those
 * frames' own. So on the model those two frames are reported but not bounded; in the lab (a real
 * controller, nothing else on the heap) every frame of the path is.
 */
import assert from 'node:assert/strict';
import { Session } from 'node:inspector';
import { DmaBuffer, type VfioDevice } from '../../lib';
import { NvmeDriver } from '../../examples/nvme/nvme-driver';

interface SamplingNode {
  callFrame: { functionName: string; url: string };
  selfSize: number;
  children: SamplingNode[];
}

/** Functions of the I/O path, by file: their own allocations are the ones bounded. */
const DOORBELL_FRAMES = /^(ring|poll)$/;
const IO_PATH: Record<string, RegExp> = {
  'nvme-driver.js': /^(submit|pollAll|outstanding)$/,
  'queue-pair.js': /^(submitTransfer|secondPrp|writeEntry|ring|reserve|poll|finish|get hasRoom|hasRoom)$/,
  'bus-pages.js': /^(setU64|fillPrpList|busAddress)$/,
};

export interface AllocationReport {
  readonly ios: number;
  /** Sampled bytes allocated by the I/O path's own frames, per I/O. */
  readonly ioPathBytesPerIo: number;
  /** Sampled bytes allocated by the driver's other frames (the poll loop's turns and clock reads), per I/O. */
  readonly pollLoopBytesPerIo: number;
  /** The I/O path's allocating frames, largest first, for the failure message. */
  readonly offenders: string[];
  /** On the model: what the doorbell frames allocated with the model inlined into them, per I/O (not bounded). */
  readonly doorbellBytesPerIo: number;
}

export async function allocationCase(
  device: VfioDevice,
  options: { spinMicroseconds: number; ios?: number; deviceOnThisHeap: boolean },
): Promise<AllocationReport> {
  const ios = options.ios ?? 4000;
  const depth = 8;
  using nvme = await NvmeDriver.open(device, { ioQueues: 1, completion: 'poll', pollSpinMicroseconds: options.spinMicroseconds });
  using buffer = DmaBuffer.allocate(depth * 4096, { space: device.dmaSpace });
  const run = (count: number) =>
    new Promise<void>((resolve, reject) => {
      let left = count,
        inFlight = 0;
      const callbacks: ((status: number) => void)[] = [];
      const submit = (slot: number) => {
        if (!nvme.submit(1, slot % 2 === 0, 1, slot * 8, 8, buffer, slot * 4096, 4096, callbacks[slot]!)) reject(new Error('queue full'));
        inFlight++;
      };
      for (let slot = 0; slot < depth; slot++)
        callbacks.push((status: number) => {
          inFlight--;
          if (status !== 0) reject(new Error(`I/O failed with status 0x${status.toString(16)}`));
          else if (--left >= depth) submit(slot);
          else if (inFlight === 0) resolve();
        });
      for (let slot = 0; slot < depth; slot++) submit(slot);
    });
  // Long enough for V8 to optimize the path (under the lab's emulation that takes a while).
  await run(4 * ios);
  const session = new Session();
  session.connect();
  const post = <T>(method: string, params: object = {}) =>
    new Promise<T>((resolve, reject) => session.post(method, params, (e, r) => (e ? reject(e) : resolve(r as T))));
  let head: SamplingNode;
  try {
    await post('HeapProfiler.enable');
    await post('HeapProfiler.startSampling', {
      samplingInterval: 64,
      includeObjectsCollectedByMinorGC: true,
      includeObjectsCollectedByMajorGC: true,
    });
    await run(ios);
    ({
      profile: { head },
    } = await post<{ profile: { head: SamplingNode } }>('HeapProfiler.stopSampling'));
  } finally {
    session.disconnect();
  }
  let ioPath = 0,
    pollLoop = 0,
    doorbells = 0;
  const offenders = new Map<string, number>();
  const visit = (node: SamplingNode) => {
    const file = node.callFrame.url.split('/').pop() ?? '';
    const inDriver = /\/examples\/nvme\//.test(node.callFrame.url);
    if (node.selfSize && inDriver) {
      const pattern = IO_PATH[file];
      if (options.deviceOnThisHeap && file === 'queue-pair.js' && DOORBELL_FRAMES.test(node.callFrame.functionName)) {
        doorbells += node.selfSize;
      } else if (pattern?.test(node.callFrame.functionName)) {
        ioPath += node.selfSize;
        const key = `${node.callFrame.functionName} (${file})`;
        offenders.set(key, (offenders.get(key) ?? 0) + node.selfSize);
      } else pollLoop += node.selfSize;
    }
    for (const child of node.children) visit(child);
  };
  visit(head);
  await nvme.shutdown();
  return {
    ios,
    ioPathBytesPerIo: ioPath / ios,
    doorbellBytesPerIo: doorbells / ios,
    pollLoopBytesPerIo: pollLoop / ios,
    offenders: [...offenders].sort((a, b) => b[1] - a[1]).map(([k, v]) => `${k}: ${(v / ios).toFixed(2)} B/IO`),
  };
}

/** The bound the case holds the I/O path to. */
export function assertAllocationFree(report: AllocationReport): void {
  assert.ok(
    report.ioPathBytesPerIo < 1,
    `the I/O path allocated ${report.ioPathBytesPerIo.toFixed(2)} bytes per I/O over ${report.ios} I/Os: ${report.offenders.join('; ')}`,
  );
}
