/**
 * The allocation case (nvme-allocation-case.ts) on the NVMe model, in a process of its own. The
 * model's kernel and controller share the driver's heap, and V8 inlines what a doorbell write
 * calls into the driver's frames, where the heap profiler would count the model's allocations as
 * the driver's. Here the model kernel's MMIO entry is marked never to be optimized, which also
 * keeps it from being inlined: the driver's frames hold only the driver. The mark needs V8's
 * natives syntax, a flag for this process alone; a fresh process also makes the result
 * independent of what earlier tests taught V8 about the driver.
 */
import { fork } from 'node:child_process';
import { runInThisContext } from 'node:vm';
import { openDevice } from '../../lib';
import { createModelKernel } from '../../lib/model';
import { NvmeController } from '../../lib/devices/nvme';
import { allocationCase, type AllocationReport } from './nvme-allocation-case';

const BDF = '0000:00:04.0';

type ChildMessage = { report: AllocationReport } | { error: string };

/** Runs the case on a noiommu model in a child process and returns its report. */
export function allocationCaseOnModel(): Promise<AllocationReport> {
  return new Promise((resolve, reject) => {
    const child = fork(__filename, [], { execArgv: ['--allow-natives-syntax'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    let message: ChildMessage | undefined;
    child.on('message', (m: ChildMessage) => (message = m));
    child.on('error', reject);
    child.on('exit', (code, signal) => {
      if (message && 'report' in message && code === 0) resolve(message.report);
      else if (message && 'error' in message) reject(new Error(`the model's allocation case failed in its process: ${message.error}`));
      else reject(new Error(`the model's allocation case process exited with ${signal ?? `status ${code}`} and no report`));
    });
  });
}

async function child(): Promise<AllocationReport> {
  const kernel = createModelKernel({
    base: 'linux-7.3-noiommu',
    withoutBaseDevices: true,
    devices: [{ address: BDF, model: new NvmeController() }],
  });
  // Compiled from source here, not written in this file, so that this file parses without the natives flag.
  const neverOptimize = runInThisContext('(f) => %NeverOptimizeFunction(f)') as (f: unknown) => void;
  neverOptimize(kernel.mmioWrite);
  const device = openDevice(BDF, { kernel });
  try {
    // No spin: the model's controller runs on this event loop.
    return await allocationCase(device, { spinMicroseconds: 0 });
  } finally {
    device.close();
  }
}

if (require.main === module) {
  child().then(
    (report) => process.send!({ report } satisfies ChildMessage, () => process.exit(0)),
    (e: unknown) =>
      process.send!({ error: e instanceof Error ? (e.stack ?? e.message) : String(e) } satisfies ChildMessage, () => process.exit(1)),
  );
}
