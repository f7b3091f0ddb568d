/**
 * A worker thread of the parallel init (parallel-init.ts) on the native kernel: waits at the
 * start barrier with its siblings, sets its unit up, waits at the second barrier until every
 * sibling is done (so no unit's cleanup overlaps another's init, as in the kernel's test), closes
 * its fds and reports. The fds it is given (the shared container or iommufd) are the process's,
 * valid in every thread.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { performance } from 'node:perf_hooks';
import { nativeKernel } from '../sys/native-kernel';
import { initUnit, type InitUnit, type SharedIommu } from './parallel-init';

export interface WorkerInput {
  readonly unit: InitUnit;
  readonly shared: SharedIommu;
  /** Int32 counters of the two barriers, shared by the siblings. */
  readonly barriers: SharedArrayBuffer;
  readonly parties: number;
  /** The main thread's performance.timeOrigin, so the times are comparable across threads. */
  readonly timeOrigin: number;
}

/** pthread_barrier_wait on a counter: arrive, wake the waiting, then sleep until every party has arrived. */
function arrive(counters: Int32Array, index: number, parties: number): void {
  Atomics.add(counters, index, 1);
  Atomics.notify(counters, index);
  for (;;) {
    const arrived = Atomics.load(counters, index);
    if (arrived >= parties) return;
    Atomics.wait(counters, index, arrived, 10_000);
  }
}

async function main(input: WorkerInput): Promise<void> {
  const kernel = nativeKernel();
  const counters = new Int32Array(input.barriers);
  const now = () => performance.timeOrigin + performance.now() - input.timeOrigin;
  arrive(counters, 0, input.parties);
  const { result, fds } = await initUnit(kernel, input.unit, input.shared, () => Promise.resolve(), now);
  arrive(counters, 1, input.parties);
  for (const fd of fds.reverse()) kernel.close(fd);
  parentPort!.postMessage(result);
}

if (parentPort) {
  main(workerData as WorkerInput).catch((e: unknown) => {
    throw e;
  });
}
